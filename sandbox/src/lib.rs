//! Emulators of HubSpot, Pipedrive and Zoho CRM for Tandem's demo and tests: their real paths at the root of
//! a loopback server, their request and response shapes, errors and rate limits, with state that
//! survives restarts and a control API (`/_sandbox/...`) for seeding, edits and faults.

// Handlers and their helpers return `Result<_, Response>`: the error is the HTTP answer itself.
#![allow(clippy::result_large_err)]

pub mod cache;
pub mod control;
pub mod faults;
pub mod hubspot;
pub mod json;
pub mod oauth;
pub mod persist;
pub mod pipedrive;
pub mod query;
pub mod table;
pub mod time;
pub mod walk;
pub mod zoho;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use hubspot::{HubSpot, HubSpotConfig};
pub use oauth::{OAuthClient, SandboxUser};
pub use pipedrive::{Pipedrive, PipedriveConfig};
pub use zoho::{Zoho, ZohoConfig};

/// Tandem's OAuth app as the sandboxes know it out of the box (`make run`).
pub const DEMO_CLIENT_ID: &str = "tandem-sandbox-client";
pub const DEMO_CLIENT_SECRET: &str = "tandem-sandbox-secret";

/// The demo client, allowed to redirect back to Tandem at `tandem_url`.
pub fn demo_client(provider: &str, tandem_url: &str) -> OAuthClient {
    OAuthClient {
        client_id: DEMO_CLIENT_ID.into(),
        client_secret: DEMO_CLIENT_SECRET.into(),
        redirect_uris: vec![format!("{}/oauth/callback/{provider}", tandem_url.trim_end_matches('/'))],
    }
}

/// A sandbox serving on loopback until stopped.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and writes the last snapshot.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    State(#[from] persist::PersistError),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Starts the HubSpot sandbox on `addr` (port 0 for any), loading `state_file` when it exists.
pub async fn start_hubspot(
    config: HubSpotConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<HubSpot>, RunningSandbox), SandboxError> {
    let saved = load(&state_file)?;
    let listener = bind(addr).await?;
    let hubspot = HubSpot::new(config, saved);
    let mut running = serve("HubSpot", listener, hubspot::router(hubspot.clone()), hubspot.clone(), state_file)?;
    let stopped = running.stop.subscribe();
    running.tasks.push(tokio::spawn(hubspot::webhooks::deliver(hubspot.clone(), stopped)));
    Ok((hubspot, running))
}

/// Starts the Pipedrive sandbox on `addr`; its tokens name it as their `api_domain`.
pub async fn start_pipedrive(
    mut config: PipedriveConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Pipedrive>, RunningSandbox), SandboxError> {
    let saved = load(&state_file)?;
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| SandboxError::Bind { addr, source })?;
    config.api_domain = format!("http://{local}");
    let pipedrive = Pipedrive::new(config, saved);
    let mut running = serve("Pipedrive", listener, pipedrive::router(pipedrive.clone()), pipedrive.clone(), state_file)?;
    let stopped = running.stop.subscribe();
    running.tasks.push(tokio::spawn(pipedrive::webhooks::deliver(pipedrive.clone(), stopped)));
    Ok((pipedrive, running))
}

/// Starts the Zoho CRM sandbox on `addr`: accounts server and CRM API on one server, whose URL its
/// tokens name as `api_domain` and its redirects as `accounts-server`.
pub async fn start_zoho(
    mut config: ZohoConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Zoho>, RunningSandbox), SandboxError> {
    let saved = load(&state_file)?;
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| SandboxError::Bind { addr, source })?;
    config.api_domain = format!("http://{local}");
    let zoho = Zoho::new(config, saved);
    let mut running = serve("Zoho CRM", listener, zoho::router(zoho.clone()), zoho.clone(), state_file)?;
    let stopped = running.stop.subscribe();
    running.tasks.push(tokio::spawn(zoho::delivery::deliver(zoho.clone(), stopped)));
    Ok((zoho, running))
}

fn load<T: serde::de::DeserializeOwned>(state_file: &Option<PathBuf>) -> Result<Option<T>, SandboxError> {
    Ok(match state_file {
        Some(path) => persist::load(path)?,
        None => None,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SandboxError> {
    TcpListener::bind(addr).await.map_err(|source| SandboxError::Bind { addr, source })
}

fn serve<S: persist::Snapshots>(
    name: &'static str,
    listener: TcpListener,
    router: axum::Router,
    state: Arc<S>,
    state_file: Option<PathBuf>,
) -> Result<RunningSandbox, SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind { addr: "0.0.0.0:0".parse().expect("literal"), source })?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut serve_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = serve_stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, sandbox = name, "the sandbox stopped serving");
        }
    }));
    if let Some(path) = state_file {
        tasks.push(tokio::spawn(persist::run_writer(state, path, stopped)));
    }
    tracing::info!(%addr, "{name} (Sandbox) listening");
    Ok(RunningSandbox { addr, stop, tasks })
}

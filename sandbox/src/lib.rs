//! Emulators of HubSpot, Pipedrive and Zoho CRM for Tandem's demo and tests: their real paths at the root of
//! a loopback server, their request and response shapes, errors and rate limits, with state that
//! survives restarts and a control API (`/_sandbox/...`) for seeding, edits and faults.

// Handlers and their helpers return `Result<_, Response>`: the error is the HTTP answer itself.
#![allow(clippy::result_large_err)]

pub mod accounts;
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
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use accounts::{Account, Accounts, Blueprint};
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
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RunningSandbox {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and writes the last snapshot of every account.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    State(#[from] persist::PersistError),
    #[error("could not write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Starts the HubSpot sandbox on `addr` (port 0 for any), loading `state_file` when it exists.
pub async fn start_hubspot(
    config: HubSpotConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<HubSpot>, RunningSandbox), SandboxError> {
    let (portals, running) = start_hubspot_accounts(config, 1, addr, state_file).await?;
    Ok((portals.first(), running))
}

/// Starts the HubSpot sandbox with `portals` portals (the first as `config` says, the others
/// with their own ids and domains).
pub async fn start_hubspot_accounts(
    config: HubSpotConfig,
    portals: usize,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Accounts<HubSpot>>, RunningSandbox), SandboxError> {
    let listener = bind(addr).await?;
    let blueprint = Blueprint {
        make: Box::new(move |index, saved| HubSpot::new(config.for_account(index), saved)),
        router: hubspot::router,
        background: |portal, stopped| tokio::spawn(hubspot::webhooks::deliver(portal, stopped)),
    };
    serve("HubSpot", listener, blueprint, portals, state_file)
}

/// Starts the Pipedrive sandbox on `addr`; its tokens name it as their `api_domain`.
pub async fn start_pipedrive(
    config: PipedriveConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Pipedrive>, RunningSandbox), SandboxError> {
    let (companies, running) = start_pipedrive_accounts(config, 1, addr, state_file).await?;
    Ok((companies.first(), running))
}

/// Starts the Pipedrive sandbox with `companies` companies.
pub async fn start_pipedrive_accounts(
    mut config: PipedriveConfig,
    companies: usize,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Accounts<Pipedrive>>, RunningSandbox), SandboxError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| SandboxError::Bind { addr, source })?;
    config.api_domain = format!("http://{local}");
    let blueprint = Blueprint {
        make: Box::new(move |index, saved| Pipedrive::new(config.for_account(index), saved)),
        router: pipedrive::router,
        background: |company, stopped| tokio::spawn(pipedrive::webhooks::deliver(company, stopped)),
    };
    serve("Pipedrive", listener, blueprint, companies, state_file)
}

/// Starts the Zoho CRM sandbox on `addr`: accounts server and CRM API on one server, whose URL its
/// tokens name as `api_domain` and its redirects as `accounts-server`.
pub async fn start_zoho(
    config: ZohoConfig,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Zoho>, RunningSandbox), SandboxError> {
    let (organizations, running) = start_zoho_accounts(config, 1, addr, state_file).await?;
    Ok((organizations.first(), running))
}

/// Starts the Zoho CRM sandbox with `organizations` organizations.
pub async fn start_zoho_accounts(
    mut config: ZohoConfig,
    organizations: usize,
    addr: SocketAddr,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Accounts<Zoho>>, RunningSandbox), SandboxError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| SandboxError::Bind { addr, source })?;
    config.api_domain = format!("http://{local}");
    let blueprint = Blueprint {
        make: Box::new(move |index, saved| Zoho::new(config.for_account(index), saved)),
        router: zoho::router,
        background: |organization, stopped| tokio::spawn(zoho::delivery::deliver(organization, stopped)),
    };
    serve("Zoho CRM", listener, blueprint, organizations, state_file)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SandboxError> {
    TcpListener::bind(addr).await.map_err(|source| SandboxError::Bind { addr, source })
}

fn serve<A: Account>(
    name: &'static str,
    listener: TcpListener,
    blueprint: Blueprint<A>,
    accounts: usize,
    state_file: Option<PathBuf>,
) -> Result<(Arc<Accounts<A>>, RunningSandbox), SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind { addr: "0.0.0.0:0".parse().expect("literal"), source })?;
    let (stop, stopped) = watch::channel(false);
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let accounts = Accounts::open(blueprint, accounts, state_file, stopped.clone(), tasks.clone())?;
    let router = accounts.router();
    let mut serve_stop = stopped;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = serve_stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, sandbox = name, "the sandbox stopped serving");
        }
    });
    tasks.lock().unwrap_or_else(|p| p.into_inner()).push(server);
    tracing::info!(%addr, accounts = accounts.all().len(), "{name} (Sandbox) listening");
    Ok((accounts, RunningSandbox { addr, stop, tasks }))
}

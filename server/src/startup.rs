//! `Application`: opens the store, binds the listener and wires the router. Tests build it on
//! port 0 with their own database.

use std::future::Future;
use std::net::SocketAddr;

use app::api::ssr::ServerContext;
use app::{shell, App};
use axum::extract::{FromRef, Request, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use engine::crypto::SecretBox;
use engine::{AccountError, Accounts, Connections, Store, StoreError};
use http::{HeaderName, HeaderValue, StatusCode};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, AxumRouteListing, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::middleware;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the secret key for stored credentials is unusable: {0}")]
    Key(#[from] engine::crypto::KeyError),
    #[error("could not create the Super Admin from TANDEM_ADMIN_EMAIL/TANDEM_ADMIN_PASSWORD: {0}")]
    Admin(#[source] AccountError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the web server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub context: ServerContext,
    /// `scheme://host[:port]` of the public URL, for the same-origin check.
    pub public_origin: String,
    /// The host names Tandem answers to.
    pub(crate) own_hosts: middleware::OwnHosts,
    /// Whether the client's address is the last `X-Forwarded-For` entry.
    pub(crate) trust_forwarded_for: bool,
    /// Refused webhook deliveries, counted.
    pub(crate) refusals: std::sync::Arc<crate::webhooks::Refusals>,
    /// Wakes the sync engine (webhooks).
    pub wake: engine::worker::Wake,
    /// How long a page may take to answer in full.
    pub page_deadline: crate::deadline::PageDeadline,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    accounts: Accounts,
    engine: Option<engine::runner::Engine>,
    wake: engine::worker::Wake,
    store: Store,
    local_addr: SocketAddr,
    public_url: String,
    setup_code: String,
}

impl Application {
    /// Binds the listener, opens and migrates the database (a failed migration stops here) and
    /// creates the start-up admin when asked. Nothing is served until [`Application::run`].
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let listener = TcpListener::bind(config.addr).await.map_err(|source| StartupError::Bind { addr: config.addr, source })?;
        Self::build_on(config, listener).await
    }

    /// As [`Application::build`], on a listener bound already (`config.addr` is then unused):
    /// tests that must know Tandem's address before it starts bind port 0 first, so no other
    /// test can take that port in between.
    pub async fn build_on(config: Config, listener: TcpListener) -> Result<Application, StartupError> {
        let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
        store.migrate().await?;
        tracing::info!(backend = ?store.backend(), "database ready");
        let accounts = Accounts::new(store.clone());
        let secrets = SecretBox::load(config.secret_key.as_deref(), &config.data_dir)?;
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            if accounts.ensure_admin(email, password).await.map_err(StartupError::Admin)? {
                tracing::info!("Super Admin created from TANDEM_ADMIN_EMAIL");
            }
        }

        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: config.addr, source })?;
        let public_url = config.public_url.clone().map(|u| u.trim_end_matches('/').to_string()).unwrap_or_else(|| {
            let host = if local_addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { local_addr.ip().to_string() };
            format!("http://{host}:{}", local_addr.port())
        });

        let site_files = crate::caching::SiteFiles::find(&config.site_root, OUTPUT_NAME);
        let leptos_options = LeptosOptions::builder()
            .output_name(OUTPUT_NAME)
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .hash_files(site_files.hashed)
            .build();
        for provider in config.providers() {
            match provider.unavailable() {
                None => tracing::info!(provider = %provider.display_name(), authorize = %provider.authorize_url, "provider configured"),
                Some(_) => {
                    tracing::info!(provider = %provider.display_name(), "provider has no OAuth client configured; installing it is disabled")
                }
            }
        }
        // The first-run setup from another machine needs this code (DNS rebinding aside, whoever
        // reaches a fresh install over the network first would otherwise create its Super Admin).
        let setup_code: String = engine::secret::Token::generate().expose().chars().filter(char::is_ascii_alphanumeric).take(10).collect();
        if accounts.needs_setup().await.map_err(StartupError::Admin)? {
            tracing::info!(
                setup_code = %setup_code,
                "Tandem has no Super Admin yet: create one at {public_url}/setup (from another machine than this one, with this setup code)"
            );
        }
        let connections = Connections::new(store.clone(), secrets, config.providers(), &public_url);
        let engine = config.sync_engine.then(|| engine::runner::Engine::new(connections.clone(), config.engine_config()));
        let wake = engine::worker::Wake::default();
        let context = ServerContext {
            accounts: accounts.clone(),
            syncs: engine::syncs::Syncs::new(connections.clone()),
            dashboards: engine::dashboards::Dashboards::new(connections.clone()),
            connections,
            public_url: public_url.clone(),
            secure_cookies: public_url.starts_with("https://"),
            setup_code: setup_code.clone(),
        };
        let state = AppState {
            leptos_options,
            wake: wake.clone(),
            context,
            public_origin: origin_of(&public_url),
            own_hosts: middleware::OwnHosts::new(&public_url, &config.allowed_hosts),
            trust_forwarded_for: config.trust_forwarded_for,
            refusals: Default::default(),
            page_deadline: crate::deadline::PageDeadline {
                limit: std::time::Duration::from_secs(config.page_timeout_secs.max(1)),
                stylesheet: site_files.stylesheet.into(),
            },
        };
        Ok(Application { listener, router: router(state), accounts, engine, wake, store, local_addr, public_url, setup_code })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The first-run setup code (what the log shows while there is no Super Admin).
    pub fn setup_code(&self) -> &str {
        &self.setup_code
    }

    /// Where browsers reach this instance.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves until `shutdown` completes, with the engine task beside the web server; then lets
    /// in-flight requests finish, stops the engine task and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartupError> {
        let (stop_engine, engine_stopped) = watch::channel(false);
        let engine = tokio::spawn(engine::worker::run(self.accounts.clone(), self.engine.clone(), self.wake.clone(), engine_stopped));
        tracing::info!(url = %self.public_url, "Tandem is listening");
        let served = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_engine.send(true);
        let _ = engine.await;
        self.store.close().await;
        tracing::info!("Tandem stopped");
        served.map_err(StartupError::Serve)
    }
}

/// `tandem worker`: the sync engine alone, beside other instances on the same Postgres database
/// (or alone on SQLite). Stops when `shutdown` completes.
pub async fn run_worker(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartupError> {
    let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
    store.migrate().await?;
    let secrets = SecretBox::load(config.secret_key.as_deref(), &config.data_dir)?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.addr));
    let connections = Connections::new(store.clone(), secrets, config.providers(), &public_url);
    let engine = engine::runner::Engine::new(connections, config.engine_config());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(engine::worker::run(Accounts::new(store.clone()), Some(engine), engine::worker::Wake::default(), stopped));
    tracing::info!(backend = ?store.backend(), "Tandem worker running");
    shutdown.await;
    let _ = stop.send(true);
    let _ = task.await;
    store.close().await;
    tracing::info!("Tandem worker stopped");
    Ok(())
}

/// `tandem users …`: one change to the console's users, on the configured database, then exit.
pub async fn run_users_command(config: &Config, action: crate::config::UsersCommand) -> anyhow::Result<()> {
    let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
    store.migrate().await?;
    let accounts = Accounts::new(store.clone());
    let outcome = match action {
        crate::config::UsersCommand::Unlock { email } => accounts.unlock(&email).await.map(|clients| match clients {
            0 => format!("{email} had no failed logins; it can sign in."),
            n => format!("{email} can sign in again: failed logins from {n} client(s) forgotten."),
        }),
    };
    store.close().await;
    match outcome {
        Ok(message) => {
            println!("{message}");
            Ok(())
        }
        Err(AccountError::Invalid(errors)) => {
            anyhow::bail!("{}", errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" "))
        }
        Err(e) => Err(e.into()),
    }
}

/// The name cargo-leptos gives the console's script, bundle and style sheet: the project's `name`
/// in Cargo.toml's leptos metadata.
const OUTPUT_NAME: &str = "tandem";

fn origin_of(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url.to_string(),
    }
}

/// The app's routes, found once per process. Finding them renders the app with every resource
/// held back, through a switch that is global to the process: done while another server in the
/// same process (tests start many) was rendering a page, that page's data never arrived and its
/// response hung.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(state: AppState) -> Router {
    let routes = routes();
    let context = state.context.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/oauth/callback/{provider}", get(crate::oauth::callback))
        .route("/api/{*fn_name}", post(server_fn_handler))
        .route("/metrics", get(crate::exports::metrics))
        .route("/settings/integrations/syncs/{sync}/export/{file}", get(crate::exports::csv))
        .leptos_routes_with_context(&state, routes, move || provide_context(context.clone()), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::guard))
        // Providers call these; they authenticate themselves (outside the session guard).
        .route("/webhooks/hubspot", post(crate::webhooks::hubspot))
        .route("/webhooks/{app}/{connection}", post(crate::webhooks::app))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("referrer-policy", "same-origin"))
        // Over HTTPS, browsers must never come back over plain HTTP.
        .layer(tower::util::option_layer(
            state.context.secure_cookies.then(|| security_header("strict-transport-security", "max-age=31536000")),
        ))
        .layer(axum::middleware::from_fn(crate::caching::headers))
        // Pages and answers compressed (brotli or gzip, as the browser accepts); the release
        // build's files are compressed once when built (`--precompress`) and sent as they are.
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.page_deadline.clone(), crate::deadline::pages))
        .with_state(state)
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(HeaderName::from_static(name), HeaderValue::from_static(value))
}

async fn server_fn_handler(State(state): State<AppState>, request: Request) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_context(state.context.clone()), request).await
}

/// 200 once the server is up and its database answers.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.context.accounts.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database not answering");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins() {
        assert_eq!(super::origin_of("https://tandem.example.com/sub"), "https://tandem.example.com");
        assert_eq!(super::origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
    }
}

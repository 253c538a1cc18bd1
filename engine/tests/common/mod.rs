//! Shared set-up for the engine's integration tests: a scratch database (SQLite or Postgres), a
//! Super Admin, the sandboxes (HubSpot, Pipedrive, Zoho CRM) on loopback, and `Connections`
//! configured for them.

#![allow(dead_code)]

pub mod apps;
pub mod deals;
pub mod hub;
pub mod zoho;

use std::future::Future;
use std::net::SocketAddr;

use engine::connections::{CallbackParams, Connections};
use engine::connectors::{hubspot, pipedrive, zoho as zoho_connector, ProviderConfig};
use engine::crypto::SecretBox;
use engine::secret::Token;
use engine::store::scratch::ScratchDatabase;
use engine::store::Backend;
use engine::Accounts;
use model::apps::InstallResult;
use model::SessionUser;
use sandbox::walk::{consent, consent_for, Decision};
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, RunningSandbox, ZohoConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::Value;

pub const TANDEM_URL: &str = "http://127.0.0.1:3999";
pub const PD_USER: (&str, &str) = ("dana@pipedrive-sandbox.example", "sandbox");
pub const HS_USER: (&str, &str) = ("admin@hubspot-sandbox.example", "sandbox");
pub const ZOHO_USER: (&str, &str) = ("priya@zoho-sandbox.example", "sandbox");

pub struct Env {
    pub connections: Connections,
    /// Another Tandem instance on the same database and key (its own in-process locks).
    pub other_instance: Connections,
    pub admin: SessionUser,
    pub session: Token,
    pub hubspot: RunningSandbox,
    pub pipedrive: RunningSandbox,
    pub zoho: RunningSandbox,
    /// The key both instances seal credentials with.
    pub secrets: SecretBox,
    pub http: reqwest::Client,
}

pub async fn start_sandboxes(hubspot_portal: u64) -> (RunningSandbox, RunningSandbox) {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut hs_config = HubSpotConfig::new(vec![demo_client("hubspot", TANDEM_URL)]);
    hs_config.portal_id = hubspot_portal;
    let (_, hubspot) = sandbox::start_hubspot(hs_config, any, None).await.expect("HubSpot sandbox");
    let (_, pipedrive) = sandbox::start_pipedrive(PipedriveConfig::new(vec![demo_client("pipedrive", TANDEM_URL)]), any, None)
        .await
        .expect("Pipedrive sandbox");
    (hubspot, pipedrive)
}

/// A Zoho CRM sandbox on loopback (its accounts server and API on one port).
pub async fn start_zoho() -> RunningSandbox {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (_, zoho) = sandbox::start_zoho(ZohoConfig::new(vec![demo_client("zoho", TANDEM_URL)]), any, None).await.expect("Zoho sandbox");
    zoho
}

/// Zoho CRM configured with its accounts server at `accounts_url`.
pub fn zoho_provider(accounts_url: &str) -> ProviderConfig {
    zoho_connector::config(accounts_url, Some(DEMO_CLIENT_ID.to_string()), Some(DEMO_CLIENT_SECRET.to_string()))
}

pub fn providers(hubspot: &RunningSandbox, pipedrive: &RunningSandbox) -> Vec<ProviderConfig> {
    let id = || Some(DEMO_CLIENT_ID.to_string());
    let secret = || Some(DEMO_CLIENT_SECRET.to_string());
    vec![hubspot::config(&hubspot.url(), &hubspot.url(), id(), secret()), pipedrive::config(&pipedrive.url(), id(), secret())]
}

pub async fn with_env<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    let db = ScratchDatabase::create(backend).await.expect("scratch database");
    let accounts = Accounts::new(db.store.clone());
    let logged_in = accounts.create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.expect("admin");
    let (hubspot, pipedrive) = start_sandboxes(24_681_357).await;
    let zoho = start_zoho().await;
    let all = || {
        let mut all = providers(&hubspot, &pipedrive);
        all.push(zoho_provider(&zoho.url()));
        all
    };
    let secrets = SecretBox::random();
    let connections = Connections::new(db.store.clone(), secrets.clone(), all(), TANDEM_URL);
    let other_instance = Connections::new(db.store.clone(), secrets.clone(), all(), TANDEM_URL);
    let env = Env {
        connections,
        other_instance,
        admin: logged_in.user,
        session: logged_in.token,
        hubspot,
        pipedrive,
        zoho,
        secrets,
        http: reqwest::Client::new(),
    };
    let env = test(env).await;
    env.hubspot.stop().await;
    env.pipedrive.stop().await;
    env.zoho.stop().await;
    db.destroy().await;
}

#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::with_env(engine::store::Backend::Sqlite, super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::with_env(engine::store::Backend::Postgres, super::$name).await
            }
        }
    };
}

/// The sandbox user who signs in to `app`'s consent pages.
pub fn sandbox_user(app: &str) -> (&'static str, &'static str) {
    match app {
        "hubspot" => HS_USER,
        "zoho" => ZOHO_USER,
        _ => PD_USER,
    }
}

/// The query parameters of the redirect back to Tandem.
pub fn callback(location: &str) -> CallbackParams {
    assert!(location.starts_with(TANDEM_URL), "redirected to {location}");
    let url = reqwest::Url::parse(location).expect("redirect URL");
    let get = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    CallbackParams {
        code: get("code"),
        state: get("state"),
        error: get("error"),
        error_description: get("error_description"),
        accounts_server: get("accounts-server"),
    }
}

impl Env {
    pub async fn authorize(&self, app: &str, reconnect: Option<&str>, decision: Decision) -> CallbackParams {
        let url = self.connections.start(&self.admin, &self.session, app, reconnect, None).await.expect("start install");
        let (email, password) = sandbox_user(app);
        callback(&consent(&url, email, password, decision).await.expect("consent pages"))
    }

    pub async fn complete(&self, app: &str, params: &CallbackParams) -> (InstallResult, Option<String>) {
        let done = self.connections.complete(app, Some((&self.admin, &self.session)), params).await.expect("complete");
        (done.result, done.connection_id)
    }

    pub async fn install(&self, app: &str) -> String {
        let params = self.authorize(app, None, Decision::Allow).await;
        let (result, id) = self.complete(app, &params).await;
        assert_eq!(result, InstallResult::Installed);
        id.expect("connection id")
    }

    /// Adds an account (a portal, a company) to a sandbox through its control API; answers its
    /// id.
    pub async fn add_account(&self, sandbox: &RunningSandbox) -> String {
        let r = self.http.post(format!("{}/_sandbox/accounts", sandbox.url())).send().await.expect("control API");
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string()
    }

    /// Installs `app` choosing `account` on the provider's consent page, for the HubSpot
    /// connection `hub` (an app's install names one when several are connected).
    pub async fn install_account(&self, app: &str, account: &str, hub: Option<&str>) -> String {
        let url = self.connections.start(&self.admin, &self.session, app, None, hub).await.expect("start install");
        let (email, password) = sandbox_user(app);
        let params = callback(&consent_for(&url, email, password, Decision::Allow, Some(account)).await.expect("consent"));
        let (result, id) = self.complete(app, &params).await;
        assert_eq!(result, InstallResult::Installed);
        id.expect("connection id")
    }

    pub async fn control(&self, sandbox: &RunningSandbox, path: &str) -> Value {
        let r = if path.ends_with("stats") {
            self.http.get(format!("{}{path}", sandbox.url())).send().await
        } else {
            self.http.post(format!("{}{path}", sandbox.url())).send().await
        };
        r.expect("control API").json().await.expect("json")
    }

    pub async fn refreshes(&self, sandbox: &RunningSandbox) -> u64 {
        self.control(sandbox, "/_sandbox/oauth-stats").await["refresh_token"].as_u64().expect("count")
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        let page = self.connections.audit_page(None, 50).await.expect("audit");
        page.entries.into_iter().map(|e| e.action).collect()
    }
}

//! Every setting, from flags or the environment (`tandem --help` lists them).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: self-hosted two-way data sync between HubSpot and the apps your sales team uses.",
    long_about = "Tandem serves its admin console and runs its sync engine in one process.\n\
                  Every setting can be given as a flag or as the environment variable shown."
)]
pub struct Config {
    /// Address the web console listens on. Port 0 picks a free port.
    #[arg(long, env = "TANDEM_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Folder for Tandem's SQLite database and key files; created when missing.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database to use instead of SQLite in the data folder: `postgres://user@host:5432/db` (for
    /// several Tandem instances sharing the work) or `sqlite://path/to/file.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The URL browsers use to reach Tandem, used in invitation links and OAuth redirects.
    /// Defaults to http://<addr>. Cookies are marked Secure when it starts with https://.
    #[arg(long, env = "TANDEM_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Other host names browsers or a reverse proxy may use to reach Tandem, comma-separated (e.g.
    /// a container's service name). Requests naming any other host are refused, except by IP
    /// address or as localhost.
    #[arg(long, env = "TANDEM_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Take the client's address from the last `X-Forwarded-For` entry (set when Tandem runs
    /// behind one reverse proxy that sets it): login throttling counts per client.
    #[arg(long, env = "TANDEM_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// With --admin-password: create this Super Admin at start-up when Tandem has no users yet
    /// (instead of the first-run page).
    #[arg(long, env = "TANDEM_ADMIN_EMAIL", requires = "admin_password")]
    pub admin_email: Option<String>,

    /// The password for --admin-email. Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = "TANDEM_ADMIN_PASSWORD", hide_env_values = true, requires = "admin_email")]
    pub admin_password: Option<String>,

    /// Key that encrypts stored credentials (OAuth tokens): 64 hex digits or 32 bytes in base64,
    /// e.g. from `openssl rand -hex 32`. Without it Tandem creates `secret.key` (mode 0600) in the
    /// data folder at first start. Instances sharing a Postgres database must all use the same key.
    #[arg(long, env = "TANDEM_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Client id of Tandem's OAuth app registered with HubSpot (its redirect URL:
    /// <public URL>/oauth/callback/hubspot).
    #[arg(long, env = "TANDEM_HUBSPOT_CLIENT_ID")]
    pub hubspot_client_id: Option<String>,

    /// Client secret of Tandem's HubSpot OAuth app.
    #[arg(long, env = "TANDEM_HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub hubspot_client_secret: Option<String>,

    /// Where HubSpot admins sign in and authorize apps (the HubSpot sandbox for demos).
    #[arg(long, env = "TANDEM_HUBSPOT_APP_URL", default_value = engine::connectors::hubspot::APP_URL)]
    pub hubspot_app_url: String,

    /// HubSpot's API host, including its token endpoint.
    #[arg(long, env = "TANDEM_HUBSPOT_API_URL", default_value = engine::connectors::hubspot::API_URL)]
    pub hubspot_api_url: String,

    /// Client id of Tandem's OAuth app registered with Pipedrive (its callback URL:
    /// <public URL>/oauth/callback/pipedrive).
    #[arg(long, env = "TANDEM_PIPEDRIVE_CLIENT_ID")]
    pub pipedrive_client_id: Option<String>,

    /// Client secret of Tandem's Pipedrive OAuth app.
    #[arg(long, env = "TANDEM_PIPEDRIVE_CLIENT_SECRET", hide_env_values = true)]
    pub pipedrive_client_secret: Option<String>,

    /// Pipedrive's OAuth server (authorization, tokens, revocation). Each token names its
    /// company's API host.
    #[arg(long, env = "TANDEM_PIPEDRIVE_OAUTH_URL", default_value = engine::connectors::pipedrive::OAUTH_URL)]
    pub pipedrive_oauth_url: String,

    /// Client id of Tandem's OAuth app registered with Zoho's API console (its redirect URL:
    /// <public URL>/oauth/callback/zoho).
    #[arg(long, env = "TANDEM_ZOHO_CLIENT_ID")]
    pub zoho_client_id: Option<String>,

    /// Client secret of Tandem's Zoho OAuth app.
    #[arg(long, env = "TANDEM_ZOHO_CLIENT_SECRET", hide_env_values = true)]
    pub zoho_client_secret: Option<String>,

    /// Zoho's accounts server where admins sign in (the US one; Zoho sends admins of other data
    /// centres on to theirs, and Tandem then uses that one for their connection). Each token
    /// names its organization's API host.
    #[arg(long, env = "TANDEM_ZOHO_ACCOUNTS_URL", default_value = engine::connectors::zoho::ACCOUNTS_URL)]
    pub zoho_accounts_url: String,

    /// How often each sync reads changes when no webhook wakes it, in seconds.
    #[arg(long, env = "TANDEM_SYNC_INTERVAL_SECS", default_value_t = 30)]
    pub sync_interval_secs: u64,

    /// Syncs this instance runs at once (0: four per core, at least 4 and at most 32). Two syncs
    /// of one provider account still share its rate limit.
    #[arg(long, env = "TANDEM_SYNC_CONCURRENCY", default_value_t = 0)]
    pub sync_concurrency: usize,

    /// Run the sync engine in this process (turn off for a web-only instance).
    #[arg(long, env = "TANDEM_SYNC_ENGINE", default_value_t = true, action = clap::ArgAction::Set)]
    pub sync_engine: bool,

    /// The longest a page may take to answer in full, in seconds; past it the render is dropped,
    /// the browser gets a "took too long" page (503) and the log names the page.
    #[arg(long, env = "TANDEM_PAGE_TIMEOUT_SECS", default_value_t = 30)]
    pub page_timeout_secs: u64,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Folder holding the compiled site (`pkg/` with the WASM, JS and CSS), as built by
    /// `cargo leptos build`.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Log filter in tracing's syntax, e.g. `info` or `info,engine=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

/// What the process does; the admin console and the engine when none is given.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run only the sync engine: an extra instance sharing the work of a Postgres-backed Tandem.
    Worker,
    /// Manage the console's users from the command line (uses the same database settings).
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum UsersCommand {
    /// Lets an email sign in again at once: forgets its failed logins from every client (for a
    /// Super Admin locked out by someone guessing their password).
    Unlock {
        /// The email whose logins to unlock.
        email: String,
    },
}

impl Config {
    pub fn engine_config(&self) -> engine::runner::EngineConfig {
        engine::runner::EngineConfig {
            interval: std::time::Duration::from_secs(self.sync_interval_secs.max(1)),
            concurrency: match self.sync_concurrency {
                0 => engine::runner::default_concurrency(),
                n => n,
            },
            ..engine::runner::EngineConfig::default()
        }
    }

    /// The providers Tandem connects to, as configured.
    pub fn providers(&self) -> Vec<engine::connectors::ProviderConfig> {
        use engine::connectors::{hubspot, pipedrive, zoho};
        vec![
            hubspot::config(
                &self.hubspot_app_url,
                &self.hubspot_api_url,
                self.hubspot_client_id.clone(),
                self.hubspot_client_secret.clone(),
            ),
            pipedrive::config(&self.pipedrive_oauth_url, self.pipedrive_client_id.clone(), self.pipedrive_client_secret.clone()),
            zoho::config(&self.zoho_accounts_url, self.zoho_client_id.clone(), self.zoho_client_secret.clone()),
        ]
    }

    /// A configuration for tests: a free port on loopback, a random secret key, everything else
    /// default.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            public_url: None,
            allowed_hosts: Vec::new(),
            trust_forwarded_for: false,
            admin_email: None,
            admin_password: None,
            secret_key: Some(engine::crypto::generate_key_text()),
            hubspot_client_id: None,
            hubspot_client_secret: None,
            hubspot_app_url: engine::connectors::hubspot::APP_URL.into(),
            hubspot_api_url: engine::connectors::hubspot::API_URL.into(),
            pipedrive_client_id: None,
            pipedrive_client_secret: None,
            pipedrive_oauth_url: engine::connectors::pipedrive::OAUTH_URL.into(),
            zoho_client_id: None,
            zoho_client_secret: None,
            zoho_accounts_url: engine::connectors::zoho::ACCOUNTS_URL.into(),
            site_root: PathBuf::from("target/site"),
            log: "warn".into(),
            sync_interval_secs: 30,
            sync_concurrency: 0,
            sync_engine: true,
            page_timeout_secs: 30,
            command: None,
        }
    }
}

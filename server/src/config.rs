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

    /// With --admin-password: create this Super Admin at start-up when Tandem has no users yet
    /// (instead of the first-run page).
    #[arg(long, env = "TANDEM_ADMIN_EMAIL", requires = "admin_password")]
    pub admin_email: Option<String>,

    /// The password for --admin-email. Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = "TANDEM_ADMIN_PASSWORD", hide_env_values = true, requires = "admin_email")]
    pub admin_password: Option<String>,

    /// Folder holding the compiled site (`pkg/` with the WASM, JS and CSS), as built by
    /// `cargo leptos build`.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Log filter in tracing's syntax, e.g. `info` or `info,engine=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// A configuration for tests: a free port on loopback, everything else default.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            public_url: None,
            admin_email: None,
            admin_password: None,
            site_root: PathBuf::from("target/site"),
            log: "warn".into(),
        }
    }
}

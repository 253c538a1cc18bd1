use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sandbox::{
    demo_client, start_hubspot_accounts, start_pipedrive_accounts, start_zoho_accounts, HubSpotConfig, PipedriveConfig, ZohoConfig,
};

/// The sandboxes allocate and free many small values per request (parsed bodies, records,
/// answers); mimalloc keeps that cheap where glibc's allocator spent a quarter of a batch create.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// HubSpot, Pipedrive and Zoho CRM emulators for Tandem's demo and tests.
#[derive(Parser)]
#[command(name = "tandem-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HubSpot sandbox (HubSpot's real paths at the root).
    Hubspot {
        #[arg(long, env = "SANDBOX_HUBSPOT_ADDR", default_value = "127.0.0.1:4101")]
        addr: SocketAddr,
        /// Snapshot file that keeps the portal across restarts.
        #[arg(long, env = "SANDBOX_HUBSPOT_STATE", default_value = "data/sandbox-hubspot.json")]
        state: PathBuf,
        /// Where Tandem runs: its OAuth callback there is registered for the demo client.
        #[arg(long, env = "TANDEM_PUBLIC_URL", default_value = "http://127.0.0.1:3000")]
        tandem_url: String,
        /// Requests per app per ten seconds (HubSpot's default is 110); 0 turns the limit off.
        #[arg(long, env = "SANDBOX_HUBSPOT_RATE_LIMIT", default_value_t = 110)]
        rate_limit: u32,
        /// Seed this many deals, contacts and companies when a portal is new.
        #[arg(long, default_value_t = 25)]
        seed: usize,
        /// Portals the sandbox user can choose from on the consent page.
        #[arg(long, env = "SANDBOX_HUBSPOT_ACCOUNTS", default_value_t = 2)]
        accounts: usize,
    },
    /// Serve the Pipedrive sandbox (Pipedrive's real paths at the root).
    Pipedrive {
        #[arg(long, env = "SANDBOX_PIPEDRIVE_ADDR", default_value = "127.0.0.1:4102")]
        addr: SocketAddr,
        /// Snapshot file that keeps the company across restarts.
        #[arg(long, env = "SANDBOX_PIPEDRIVE_STATE", default_value = "data/sandbox-pipedrive.json")]
        state: PathBuf,
        /// Where Tandem runs: its OAuth callback there is registered for the demo client.
        #[arg(long, env = "TANDEM_PUBLIC_URL", default_value = "http://127.0.0.1:3000")]
        tandem_url: String,
        /// Requests per token per two seconds; 0 turns the limit off.
        #[arg(long, env = "SANDBOX_PIPEDRIVE_BURST_LIMIT", default_value_t = 80)]
        burst_limit: u32,
        /// Seed this many deals when a company is new.
        #[arg(long, default_value_t = 25)]
        seed: usize,
        /// Companies the sandbox user can choose from on the consent page.
        #[arg(long, env = "SANDBOX_PIPEDRIVE_ACCOUNTS", default_value_t = 2)]
        accounts: usize,
    },
    /// Serve the Zoho CRM sandbox (Zoho's accounts server and CRM API v8 paths at the root).
    Zoho {
        #[arg(long, env = "SANDBOX_ZOHO_ADDR", default_value = "127.0.0.1:4103")]
        addr: SocketAddr,
        /// Snapshot file that keeps the organisation across restarts.
        #[arg(long, env = "SANDBOX_ZOHO_STATE", default_value = "data/sandbox-zoho.json")]
        state: PathBuf,
        /// Where Tandem runs: its OAuth callback there is registered for the demo client.
        #[arg(long, env = "TANDEM_PUBLIC_URL", default_value = "http://127.0.0.1:3000")]
        tandem_url: String,
        /// API credits per rolling 24 hours for the organisation.
        #[arg(long, env = "SANDBOX_ZOHO_CREDITS", default_value_t = 55_000)]
        credits: u64,
        /// Calls in flight at once for the organisation; 0 turns the limit off.
        #[arg(long, env = "SANDBOX_ZOHO_CONCURRENCY", default_value_t = 20)]
        concurrency: u32,
        /// Seed this many deals, contacts and accounts when an organisation is new.
        #[arg(long, default_value_t = 25)]
        seed: usize,
        /// Organisations the sandbox user can choose from on the consent page.
        #[arg(long, env = "SANDBOX_ZOHO_ACCOUNTS", default_value_t = 2)]
        accounts: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    match Cli::parse().command {
        Command::Hubspot { addr, state, tandem_url, rate_limit, seed, accounts } => {
            let mut config = HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]);
            config.rate_limit = rate_limit;
            let (portals, running) = start_hubspot_accounts(config, accounts, addr, Some(state)).await?;
            for (i, portal) in portals.fresh().iter().enumerate().filter(|_| seed > 0) {
                sandbox::hubspot::seed::generate(&mut portal.write(), seed, seed, seed, 1 + i as u64, sandbox::time::now_ms());
            }
            shutdown_signal().await;
            running.stop().await;
        }
        Command::Pipedrive { addr, state, tandem_url, burst_limit, seed, accounts } => {
            let mut config = PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]);
            config.burst_limit = burst_limit;
            let (companies, running) = start_pipedrive_accounts(config, accounts, addr, Some(state)).await?;
            for (i, company) in companies.fresh().iter().enumerate().filter(|_| seed > 0) {
                sandbox::pipedrive::seed::generate(&mut company.write(), seed, 1 + i as u64, sandbox::time::now_ms());
            }
            shutdown_signal().await;
            running.stop().await;
        }
        Command::Zoho { addr, state, tandem_url, credits, concurrency, seed, accounts } => {
            let mut config = ZohoConfig::new(vec![demo_client("zoho", &tandem_url)]);
            config.daily_credits = credits;
            config.concurrency_limit = concurrency;
            let (organizations, running) = start_zoho_accounts(config, accounts, addr, Some(state)).await?;
            for (i, organization) in organizations.fresh().iter().enumerate().filter(|_| seed > 0) {
                sandbox::zoho::seed::generate(&mut organization.write(), seed, seed, seed, 1 + i as u64, sandbox::time::now_ms());
            }
            shutdown_signal().await;
            running.stop().await;
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

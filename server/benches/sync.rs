//! The sync engine's initial-sync benchmark: N deals (half in each sandbox) synced both ways by
//! the engine between HubSpot and another app (Pipedrive, Zoho CRM), with rate limits off and
//! with the providers' default limits on: HubSpot's 110 calls per ten seconds, and Zoho's limits
//! of an Enterprise organisation with five user licenses (55,000 API credits per rolling 24
//! hours, 20 calls in flight). Prints deals synced per second, API calls per deal, the share of
//! the rate-limit bound reached, the app's calls (Zoho: the credits spent) and the peak RSS of
//! the engine's process. The sandboxes run as child processes (this binary, re-run with
//! `--serve`), so their memory is not counted.
//!
//! `cargo bench -p tandem --bench sync` (all sizes, both apps, on SQLite); `BENCH_APPS=zoho`
//! picks apps (`pipedrive,zoho` by default), `BENCH_SIZES=10000` sizes, `BENCH_LIMITS=off` (or
//! `on`) one of the two settings, and `BENCH_DATABASE=postgres` runs the engine on a fresh
//! database on the Postgres server the tests use (`TANDEM_TEST_POSTGRES_URL`, else
//! 127.0.0.1:5432).

#[path = "../tests/support/seed.rs"]
mod seed;
#[path = "../tests/support/install.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::connectors::hubspot;
use engine::crypto::SecretBox;
use engine::runner::{Engine, EngineConfig, Trigger};
use engine::store::scratch::ScratchDatabase;
use engine::store::Backend;
use engine::Connections;
use engine::Store;
use model::states::RunOutcome;
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, ZohoConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use seed::{seed_hubspot, seed_pipedrive, seed_zoho};

/// HubSpot's default limit: calls per ten seconds.
const HUBSPOT_LIMIT: u32 = 110;
/// The share of an account's limit Tandem uses by default (the rest is left to the account's
/// other integrations): the bound is this share of HubSpot's limit.
const SHARE: f64 = engine::store::budgets::DEFAULT_SHARE as f64 / 100.0;
/// Deals a HubSpot call moves (a list page, a batch create): the bound in deals per second is
/// `HUBSPOT_LIMIT / 10 * SHARE * HUBSPOT_DEALS_PER_CALL`.
const HUBSPOT_DEALS_PER_CALL: f64 = 100.0;
/// Zoho CRM's API credits per rolling 24 hours for an Enterprise organisation with five user
/// licenses (50,000 plus 1,000 a license), and its concurrency limit (calls of one connected app
/// in flight at once) on that edition.
const ZOHO_CREDITS: u64 = 55_000;
const ZOHO_CONCURRENCY: u32 = 20;
const TANDEM_URL: &str = "http://127.0.0.1:3999";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if args.get(1).map(String::as_str) == Some("--serve") {
        runtime.block_on(serve(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap(), args[5].parse().unwrap()));
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let limits: Vec<bool> = match std::env::var("BENCH_LIMITS").as_deref() {
        Ok("off") => vec![false],
        Ok("on") => vec![true],
        _ => vec![false, true],
    };
    let apps: Vec<String> = std::env::var("BENCH_APPS")
        .unwrap_or_else(|_| "pipedrive,zoho".into())
        .split(',')
        .map(|a| a.trim().to_lowercase())
        .filter(|a| matches!(a.as_str(), "pipedrive" | "zoho"))
        .collect();
    let backend = match std::env::var("BENCH_DATABASE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    println!("initial sync, sandbox <-> sandbox, half of the deals in each, on {backend:?} (engine process only in RSS);");
    println!("each is followed by the run after it (\"then\"), which reads what changed while the initial one ran");
    println!(
        "{:>9} {:>8} {:>12} {:>9} {:>9} {:>9} {:>10} {:>13} {:>21} {:>9} {:>10}",
        "app",
        "deals",
        "limits",
        "seconds",
        "synced",
        "deals/s",
        "calls/deal",
        "HubSpot calls",
        "bound: calls / deals",
        "app calls",
        "peak RSS"
    );
    for app in &apps {
        for &limited in &limits {
            for &n in &sizes {
                runtime.block_on(scenario(app, n, limited, backend));
            }
        }
    }
}

/// A sandbox process: serves until killed.
async fn serve(kind: &str, port: u16, limit: u32, deals: usize) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // The deals were made yesterday, as an account's existing deals are.
    let now = engine::clock::now_ms() - 86_400_000;
    match kind {
        "hubspot" => {
            let mut config = HubSpotConfig::new(vec![demo_client("hubspot", TANDEM_URL)]);
            config.rate_limit = limit;
            config.daily_limit = u32::MAX;
            let (hub, _running) = sandbox::start_hubspot(config, addr, None).await.expect("HubSpot sandbox");
            seed_hubspot(&mut hub.write(), deals, now);
            println!("ready");
            std::future::pending::<()>().await;
        }
        "zoho" => {
            // `limit` is the concurrency limit; with it on, the organisation's credits are too.
            let mut config = ZohoConfig::new(vec![demo_client("zoho", TANDEM_URL)]);
            config.concurrency_limit = limit;
            config.daily_credits = if limit > 0 { ZOHO_CREDITS } else { u64::MAX / 4 };
            let (zoho, _running) = sandbox::start_zoho(config, addr, None).await.expect("Zoho CRM sandbox");
            seed_zoho(&mut zoho.write(), deals, now);
            println!("ready");
            std::future::pending::<()>().await;
        }
        _ => {
            let mut config = PipedriveConfig::new(vec![demo_client("pipedrive", TANDEM_URL)]);
            config.burst_limit = 0;
            config.daily_tokens = u64::MAX / 4;
            let (pd, _running) = sandbox::start_pipedrive(config, addr, None).await.expect("Pipedrive sandbox");
            seed_pipedrive(&mut pd.write(), deals, now);
            println!("ready");
            std::future::pending::<()>().await;
        }
    }
}

struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The child is killed and waited for when its [`Sandbox`] drops.
#[allow(clippy::zombie_processes)]
async fn start(kind: &str, limit: u32, deals: usize) -> (Sandbox, String) {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve", kind, &port.to_string(), &limit.to_string(), &deals.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox process");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if http.get(format!("{url}/_sandbox/summary")).send().await.is_ok_and(|r| r.status().is_success()) {
            return (Sandbox(child), url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the {kind} sandbox did not start");
}

/// HubSpot calls answered so far (from the daily counter it reports), this probe included.
async fn hubspot_calls(url: &str) -> u64 {
    let token = sandbox::walk::mint_token(url, DEMO_CLIENT_ID, &["crm.objects.deals.read"]).await.unwrap();
    let r = reqwest::Client::new().get(format!("{url}/crm/v3/objects/deals?limit=1")).bearer_auth(token).send().await.unwrap();
    let remaining: u64 = r.headers()["x-hubspot-ratelimit-daily-remaining"].to_str().unwrap().parse().unwrap();
    u32::MAX as u64 - remaining
}

/// Zoho's credits spent over the last 24 hours and the organisation's total (`None` for
/// another app).
async fn zoho_credits(app: &str, url: &str) -> Option<(u64, u64)> {
    if app != "zoho" {
        return None;
    }
    let credits: serde_json::Value =
        reqwest::Client::new().get(format!("{url}/_sandbox/credits")).send().await.unwrap().json().await.unwrap();
    Some((credits["used"].as_u64().unwrap(), credits["total"].as_u64().unwrap()))
}

/// The engine's peak resident set so far (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn scenario(app: &str, n: usize, limited: bool, backend: Backend) {
    // Resets the peak RSS, so each line shows its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let limit = if limited { HUBSPOT_LIMIT } else { 0 };
    // Pipedrive's limits stay off (HubSpot's bind first); Zoho's are on with HubSpot's.
    let app_limit = if limited && app == "zoho" { ZOHO_CONCURRENCY } else { 0 };
    let ((_hs, hubspot_url), (_app, app_url)) = tokio::join!(start("hubspot", limit, n / 2), start(app, app_limit, n / 2));
    let data_dir = std::env::temp_dir().join(format!("tandem-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = engine::crypto::generate_key_text();
    let scratch = match backend {
        Backend::Postgres => Some(ScratchDatabase::create(Backend::Postgres).await.expect("a Postgres database")),
        Backend::Sqlite => None,
    };
    let database_url = scratch.as_ref().map(|s| s.url.clone());
    let (_, sync_id) = support::install_and_sync_app_deals(
        &data_dir,
        database_url.as_deref(),
        &key,
        TANDEM_URL,
        &hubspot_url,
        app,
        &app_url,
        |settings, schemas| {
            if app == "zoho" {
                // HubSpot's default pipeline onto Zoho's Standard one, where the deals are.
                let standard = schemas.app.pipelines.iter().find(|p| p.name == "Standard").expect("Zoho's Standard pipeline");
                let mut mapping =
                    model::sync::PipelineMapping { hubspot_pipeline: "default".into(), app_pipeline: standard.id.clone(), stages: vec![] };
                mapping.set_stage("appointmentscheduled", Some("Qualification".into()));
                mapping.set_stage("closedwon", Some("Closed Won".into()));
                mapping.auto_map(schemas);
                settings.pipelines = vec![mapping];
            } else if let (Some(hub), Some(app)) = (schemas.hubspot.pipelines.get(1), schemas.app.pipelines.get(1)) {
                // Both pipelines of each side paired, every stage Auto-mapped where names allow.
                let mut second =
                    model::sync::PipelineMapping { hubspot_pipeline: hub.id.clone(), app_pipeline: app.id.clone(), stages: vec![] };
                second.auto_map(schemas);
                settings.pipelines.push(second);
            }
        },
    )
    .await;
    let store = Store::open(database_url.as_deref(), &data_dir).await.unwrap();
    let providers = vec![
        hubspot::config(&hubspot_url, &hubspot_url, Some(DEMO_CLIENT_ID.into()), Some(DEMO_CLIENT_SECRET.into())),
        support::app_provider(app, &app_url),
    ];
    let connections = Connections::new(store.clone(), SecretBox::load(Some(&key), &data_dir).unwrap(), providers, TANDEM_URL);
    let engine = Engine::new(connections, EngineConfig::default());

    // What the app's side spent: Zoho's credits (as its sandbox counts them); for Pipedrive, the
    // run's calls that were not HubSpot's.
    let credits_before = zoho_credits(app, &app_url).await;
    let calls_before = hubspot_calls(&hubspot_url).await;
    let started = Instant::now();
    let report = engine.run_sync(&sync_id, Trigger::Manual).await.expect("run").expect("the sync ran");
    let seconds = started.elapsed().as_secs_f64();
    let hub_calls = hubspot_calls(&hubspot_url).await - calls_before - 1;
    let credits_after = zoho_credits(app, &app_url).await;
    let run = report.run;
    assert_eq!(run.outcome, RunOutcome::Succeeded, "{run:?}");
    let synced = (run.created_in_app + run.created_in_hub) as f64;
    assert_eq!(synced as usize, n / 2 * 2, "every deal was created on the other side");
    let rate = synced / seconds;
    let app_calls = match (credits_before, credits_after) {
        (Some((before, _)), Some((after, _))) => after - before,
        _ => (run.api_calls as u64).saturating_sub(hub_calls),
    };
    // The bound: HubSpot's 110 calls per ten seconds, each moving 100 deals, unless the app's
    // limit is tighter. Zoho's credits are a budget over a rolling 24 hours, not a pace: a run
    // that spends fewer than the organisation has may spend them at any speed, so they bind
    // only when the run needs more (then the rest waits for credits to come back, a day after
    // they were spent). Its concurrency limit caps calls in flight, and the engine keeps fewer.
    // Tandem uses its share of each (80 % by default), leaving the rest to the account's other
    // integrations. Shown as the share of those HubSpot calls the run used (the engine keeping
    // its share saturated) and as deals per second against the bound.
    let hubspot_bound = HUBSPOT_LIMIT as f64 / 10.0 * SHARE * HUBSPOT_DEALS_PER_CALL;
    let bound = if limited {
        let credits_bind = credits_after.is_some_and(|(_, total)| app_calls > total);
        let used = hub_calls as f64 / (seconds * HUBSPOT_LIMIT as f64 * SHARE / 10.0) * 100.0;
        if credits_bind {
            let per_deal = app_calls as f64 / synced;
            let zoho_bound = ZOHO_CREDITS as f64 / per_deal / 86_400.0;
            format!("Zoho credits: {:.0}% of {zoho_bound:.0}/s", rate / zoho_bound * 100.0)
        } else {
            format!("{used:.0}% / {:.0}%", rate / hubspot_bound * 100.0)
        }
    } else {
        "-".to_string()
    };
    let limits = match (limited, app) {
        (false, _) => "off",
        (true, "zoho") => "HS 110+Zoho",
        (true, _) => "HubSpot 110",
    };
    println!(
        "{:>9} {:>8} {:>12} {:>9.1} {:>9} {:>9.0} {:>10.3} {:>13} {:>21} {:>9} {:>7.0} MB",
        app,
        n,
        limits,
        seconds,
        synced as u64,
        rate,
        run.api_calls as f64 / synced.max(1.0),
        hub_calls,
        bound,
        app_calls,
        peak_rss_mb()
    );
    if let (true, Some((used, total))) = (limited, credits_after) {
        println!(
            "{:>9} Zoho credits spent over 24 h: {used} of {total} ({:.1}%); calls of the run {app_calls}",
            "",
            used as f64 / total as f64 * 100.0
        );
    }
    // The run that follows at once: what changed on either side while the initial sync ran.
    // Here nothing did, so it reads back Tandem's own creations and writes nothing.
    let credits_before = zoho_credits(app, &app_url).await;
    let calls_before = hubspot_calls(&hubspot_url).await;
    let started = Instant::now();
    let next = engine.run_sync(&sync_id, Trigger::Scheduled).await.expect("run").expect("the sync ran").run;
    let next_seconds = started.elapsed().as_secs_f64();
    let next_hub_calls = hubspot_calls(&hubspot_url).await - calls_before - 1;
    let credits_after = zoho_credits(app, &app_url).await;
    assert_eq!(next.outcome, RunOutcome::Succeeded, "{next:?}");
    let written = next.created_in_app + next.created_in_hub + next.updated_in_app + next.updated_in_hub;
    assert_eq!(written, 0, "nothing changed meanwhile, so nothing is written: {next:?}");
    let next_app_calls = match (credits_before, credits_after) {
        (Some((before, _)), Some((after, _))) => after - before,
        _ => (next.api_calls as u64).saturating_sub(next_hub_calls),
    };
    println!(
        "{:>9} {:>8} {:>12} {:>9.1} {:>9} {:>9} {:>10} {:>13} {:>21} {:>9} {:>7.0} MB",
        "",
        "then",
        "next run",
        next_seconds,
        written,
        "-",
        "-",
        next_hub_calls,
        "-",
        next_app_calls,
        peak_rss_mb()
    );
    store.close().await;
    if let Some(scratch) = scratch {
        scratch.destroy().await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

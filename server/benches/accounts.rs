//! Several HubSpot accounts, one API budget each, shared by instances: `BENCH_ACCOUNTS` (20)
//! HubSpot accounts, each with a Pipedrive company and a deals sync of `BENCH_DEALS` (5,000)
//! deals, all in Pipedrive at first, with the providers' limits on (HubSpot's 110 calls per ten
//! seconds per portal, Pipedrive's burst window) and every budget at Tandem's default share
//! (80 %), run by one engine instance and then by three on Postgres (a fresh database and fresh
//! sandboxes each time). Prints the time the initial syncs took, deals per second, the 429s the
//! sandboxes answered, how long each sync ran, and each account's HubSpot calls per second while
//! its sync ran as a share of the rate its 80 % allows (8.8 calls a second; min, median and max
//! over the accounts).
//!
//! `cargo bench -p tandem --bench accounts`; `BENCH_ACCOUNTS=5`, `BENCH_DEALS=1000` and
//! `BENCH_INSTANCES=3` (`1,3` by default) make it smaller.

#[path = "../tests/support/seed.rs"]
mod seed;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::connections::{CallbackParams, Connections};
use engine::connectors::{hubspot, pipedrive, ProviderConfig};
use engine::crypto::SecretBox;
use engine::runner::{Engine, EngineConfig};
use engine::store::scratch::ScratchDatabase;
use engine::store::Backend;
use engine::syncs::Syncs;
use engine::worker::{self, Wake};
use engine::Accounts;
use model::apps::ObjectKind;
use model::states::RunOutcome;
use model::sync::SyncSettings;
use sandbox::walk::{consent_for, Decision};
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use tokio::sync::watch;

const TANDEM_URL: &str = "http://127.0.0.1:3999";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let number = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (accounts, deals) = (number("BENCH_ACCOUNTS", 20), number("BENCH_DEALS", 5_000));
    let instances: Vec<usize> = std::env::var("BENCH_INSTANCES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 3]);
    for n in instances {
        runtime.block_on(bench(accounts, deals, n));
    }
}

fn providers(hubspot_url: &str, pipedrive_url: &str) -> Vec<ProviderConfig> {
    let (id, secret) = (|| Some(DEMO_CLIENT_ID.to_string()), || Some(DEMO_CLIENT_SECRET.to_string()));
    vec![hubspot::config(hubspot_url, hubspot_url, id(), secret()), pipedrive::config(pipedrive_url, id(), secret())]
}

/// Installs `app` for `account` (chosen on the sandbox's consent page), for the HubSpot
/// connection `hub`: the new connection's id.
async fn install(connections: &Connections, admin: &engine::accounts::LoggedIn, app: &str, account: &str, hub: Option<&str>) -> String {
    let url = connections.start(&admin.user, &admin.token, app, None, hub).await.unwrap();
    let user = if app == "hubspot" { "admin@hubspot-sandbox.example" } else { "dana@pipedrive-sandbox.example" };
    let back = reqwest::Url::parse(&consent_for(&url, user, "sandbox", Decision::Allow, Some(account)).await.unwrap()).unwrap();
    let get = |k: &str| back.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    let params = CallbackParams { code: get("code"), state: get("state"), ..Default::default() };
    connections.complete(app, Some((&admin.user, &admin.token)), &params).await.unwrap().connection_id.unwrap()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn bench(accounts: usize, deals: usize, instances: usize) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let yesterday = engine::clock::now_ms() - 86_400_000;
    let mut hs_config = HubSpotConfig::new(vec![demo_client("hubspot", TANDEM_URL)]);
    hs_config.daily_limit = u32::MAX;
    let (portals, hubspot) = sandbox::start_hubspot_accounts(hs_config, accounts, any, None).await.expect("HubSpot sandbox");
    let mut pd_config = PipedriveConfig::new(vec![demo_client("pipedrive", TANDEM_URL)]);
    pd_config.daily_tokens = u64::MAX / 4;
    let (companies, pipedrive) = sandbox::start_pipedrive_accounts(pd_config, accounts, any, None).await.expect("Pipedrive sandbox");
    // Every deal starts in Pipedrive: the initial sync's work is HubSpot's (batch creates, 100 a
    // call), so each account's HubSpot budget is what paces it.
    for company in companies.all() {
        seed::seed_pipedrive(&mut company.write(), deals, yesterday);
    }

    // Each HubSpot account with its company and a deals sync, installed through the consent pages.
    let db = ScratchDatabase::create(Backend::Postgres).await.expect("a Postgres database");
    let store = db.store.clone();
    let admin = Accounts::new(store.clone()).create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.unwrap();
    let secrets = SecretBox::random();
    let connections = Connections::new(store.clone(), secrets.clone(), providers(&hubspot.url(), &pipedrive.url()), TANDEM_URL);
    let syncs = Syncs::new(connections.clone());
    let mut hub_of_sync: HashMap<String, String> = HashMap::new();
    for (portal, company) in portals.all().iter().zip(companies.all()) {
        let portal_id = portal.read().portal_id.to_string();
        let company_id = company.read().company_id.to_string();
        let hub = install(&connections, &admin, "hubspot", &portal_id, None).await;
        let app = install(&connections, &admin, "pipedrive", &company_id, Some(&hub)).await;
        let schemas = syncs.schemas(&app, ObjectKind::Deal).await.unwrap();
        let saved = syncs.save(&admin.user, &app, &SyncSettings::new_for(ObjectKind::Deal, &schemas)).await.unwrap();
        hub_of_sync.insert(saved.id, hub);
    }

    let before: HashMap<String, i64> =
        connections.api_usages().await.unwrap().into_iter().map(|u| (u.connection_id.clone(), u.day_calls)).collect();
    // The instances, each with its own connections (locks and limiters) on the one database.
    let started = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = (0..instances)
        .map(|_| {
            let own = Connections::new(store.clone(), secrets.clone(), providers(&hubspot.url(), &pipedrive.url()), TANDEM_URL);
            let engine = Engine::new(own, EngineConfig { interval: Duration::from_secs(3600), ..EngineConfig::default() });
            tokio::spawn(worker::run(Accounts::new(store.clone()), Some(engine), Wake::default(), stopped.clone()))
        })
        .collect();

    // Until every initial sync has ended.
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut done = 0;
        for sync in hub_of_sync.keys() {
            let initial = store.sync_state(sync).await.unwrap().is_none_or(|s| s.phase.is_initial());
            let last = store.runs(sync, 1).await.unwrap().into_iter().next();
            done += usize::from(!initial && last.is_some_and(|r| r.outcome == RunOutcome::Succeeded));
        }
        if done == hub_of_sync.len() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "the initial syncs did not end in 30 minutes");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for task in tasks {
        task.await.unwrap();
    }

    // Each account: its HubSpot calls per second while its sync ran, against what its share
    // allows (88 calls per ten seconds: 8.8 a second; a window's calls may come in a burst).
    let usages: HashMap<String, model::apps::ApiUsage> =
        connections.api_usages().await.unwrap().into_iter().map(|u| (u.connection_id.clone(), u)).collect();
    let mut ratios = Vec::new();
    let mut spans = Vec::new();
    for (sync, hub) in &hub_of_sync {
        let runs = store.runs(sync, 100).await.unwrap();
        let from = runs.iter().map(|r| r.started_at).min().unwrap();
        let to = runs.iter().filter_map(|r| r.ended_at).max().unwrap();
        let usage = &usages[hub];
        let calls = (usage.day_calls - before[hub]) as f64;
        let seconds = ((to - from) as f64 / 1000.0).max(0.001);
        let allowed_per_second = usage.allowed() as f64 * 1000.0 / usage.window_ms.max(1) as f64;
        ratios.push(calls / seconds / allowed_per_second);
        spans.push(seconds);
    }
    let refused: u64 =
        portals.all().iter().map(|p| p.rate_limited()).sum::<u64>() + companies.all().iter().map(|c| c.rate_limited()).sum::<u64>();
    let spread = |values: &mut Vec<f64>| {
        let mid = median(values);
        (values[0], mid, values[values.len() - 1])
    };
    let (low, mid, high) = spread(&mut ratios);
    let (short, typical, long) = spread(&mut spans);
    println!(
        "{accounts} HubSpot accounts x {deals} deals (from Pipedrive), {instances} instance(s) on Postgres, limits on, budgets at 80 %: \
         {elapsed:.1} s, {:.0} deals/s; 429s answered: {refused}; each sync ran {short:.1} / {typical:.1} / {long:.1} s (min / median / max) \
         and its account's HubSpot calls reached {:.0} / {:.0} / {:.0} % of the rate its share allows",
        (accounts * deals) as f64 / elapsed,
        low * 100.0,
        mid * 100.0,
        high * 100.0
    );
    hubspot.stop().await;
    pipedrive.stop().await;
    db.destroy().await;
}

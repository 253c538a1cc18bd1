//! The dashboards with a large history: seeds the store with a deal sync holding 100,000 records,
//! 20,000 runs over 30 days and 1,000,000 record events (updates, creates, conflicts, failures,
//! exclusions), then renders every dashboard page server-side through the real server over HTTP
//! and prints the time to the last byte (median and slowest of several requests), against the
//! 200 ms target. Also times `/metrics` and a one-day CSV export.
//!
//! `cargo bench -p tandem --bench dashboards` (SQLite, the default store); `BENCH_EVENTS=200000`
//! seeds fewer events.

#[path = "../tests/support/install.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::store::{EventRow, PageCommit, RecordRow, RunRow};
use engine::Store;
use model::merge::Side;
use model::states::{EventKind, RecordReason, RecordState, RunOutcome, RunTrigger};
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig};
use serde_json::json;
use tandem::{Application, Config};

const RECORDS: usize = 100_000;
const RUNS: usize = 20_000;
const TARGET_MS: f64 = 200.0;
const SAMPLES: usize = 7;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(bench());
}

fn id(prefix: u32, n: usize) -> String {
    // UUID-like ids that sort by creation, as the engine's v7 ids do.
    format!("{prefix:08x}-{:04x}-7000-8000-{n:012x}", n >> 32)
}

async fn bench() {
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tandem_url = format!("http://127.0.0.1:{port}");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (_, hubspot) = sandbox::start_hubspot(HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]), any, None).await.unwrap();
    let (_, pipedrive) =
        sandbox::start_pipedrive(PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]), any, None).await.unwrap();
    let data_dir = std::env::temp_dir().join(format!("tandem-bench-dash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = engine::crypto::generate_key_text();
    let database_url: Option<String> = None;
    let (_, sync_id) =
        support::install_and_sync_deals(&data_dir, database_url.as_deref(), &key, &tandem_url, &hubspot.url(), &pipedrive.url(), |_, _| {})
            .await;

    let store = Store::open(database_url.as_deref(), &data_dir).await.unwrap();
    let started = Instant::now();
    let (record_ids, run_ids) = seed(&store, &sync_id, events).await;
    println!(
        "seeded {} records, {} runs, {} record events on {} in {:.1} s",
        RECORDS,
        RUNS,
        events,
        if database_url.is_some() { "Postgres" } else { "SQLite" },
        started.elapsed().as_secs_f64()
    );
    store.close().await;

    let mut config = Config::for_tests(data_dir.clone(), database_url.clone());
    config.addr = SocketAddr::from(([127, 0, 0, 1], port));
    config.secret_key = Some(key);
    config.sync_engine = false;
    let app = Application::build(config).await.expect("server");
    tokio::spawn(async move { app.run(std::future::pending()).await });

    let browser = reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(60)).build().unwrap();
    let r = browser
        .post(format!("{tandem_url}/api/login"))
        .header("origin", &tandem_url)
        .form(&[("email", "ada@example.com"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "login: {}", r.status());

    let base = format!("/settings/integrations/syncs/{sync_id}");
    let failing = &record_ids[7];
    let busy_run = &run_ids[RUNS - 1];
    let today = model::timefmt::iso_date(engine::clock::now_ms());
    let pages: Vec<(&str, String)> = vec![
        ("Overview", "/settings/integrations/syncs".into()),
        ("Health (24 h chart)", base.clone()),
        ("Health (30 d chart)", format!("{base}?range=30d")),
        ("History, newest runs", format!("{base}/history")),
        (
            "History, filtered (partial, 7 days)",
            format!("{base}/history?outcome=partial&from={}", model::timefmt::iso_date(engine::clock::now_ms() - 7 * 86_400_000)),
        ),
        ("History, a page deep", String::new()),
        ("A run and its events", format!("{base}/history/{busy_run}")),
        ("Failing records", format!("{base}/records?bucket=failing")),
        ("Excluded: filter", format!("{base}/records?bucket=excluded&reason=filter")),
        ("In sync, a page deep", format!("{base}/records?bucket=in_sync&after={}", record_ids[RECORDS / 2])),
        ("Record search by name", format!("{base}/records?q=Deal%2099999")),
        ("Record search by id", format!("{base}/records?q=hs-{}", 4242)),
        ("Record timeline", format!("{base}/records/{failing}")),
        ("/metrics", "/metrics".into()),
        ("CSV export, one day of events", format!("{base}/export/events.csv?from={today}&to={today}")),
    ];
    println!("{:<40} {:>10} {:>10} {:>10}  target", "page", "median ms", "max ms", "KB");
    let mut worst: f64 = 0.0;
    for (name, mut path) in pages {
        if path.is_empty() {
            // The "Older runs" link of the first History page.
            let html = browser.get(format!("{tandem_url}{base}/history")).send().await.unwrap().text().await.unwrap();
            let start = html.find("before=").expect("an Older runs link") + "before=".len();
            let cursor: String = html[start..].chars().take_while(|c| *c != '"' && *c != '&').collect();
            path = format!("{base}/history?before={cursor}");
        }
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let r = browser.get(format!("{tandem_url}{path}")).send().await.unwrap();
            assert!(r.status().is_success(), "{name}: {}", r.status());
            let body = r.bytes().await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = body.len();
            assert!(!String::from_utf8_lossy(&body).contains("Something went wrong"), "{name} failed to render");
        }
        times.sort_by(f64::total_cmp);
        let (median, max) = (times[SAMPLES / 2], times[SAMPLES - 1]);
        if !name.starts_with("CSV") {
            worst = worst.max(median);
        }
        let verdict = if name.starts_with("CSV") {
            "(download)"
        } else if median < TARGET_MS {
            "under 200 ms"
        } else {
            "OVER 200 ms"
        };
        println!("{name:<40} {median:>10.1} {max:>10.1} {:>10.1}  {verdict}", size as f64 / 1024.0);
    }
    println!("slowest page (median): {worst:.1} ms with {events} record events in the store");
    hubspot.stop().await;
    pipedrive.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Records, runs and events, committed in pages as the engine commits them.
async fn seed(store: &Store, sync_id: &str, events: usize) -> (Vec<String>, Vec<String>) {
    let now = engine::clock::now_ms();
    store.ensure_sync_state(sync_id, 1, now).await.unwrap();
    assert!(store.claim_sync(sync_id, "bench", now, i64::MAX / 2).await.unwrap());
    let record_ids: Vec<String> = (0..RECORDS).map(|n| id(0x0190_0000, n)).collect();
    // Records: most in sync, some excluded, some failing.
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(2_000) {
        let rows: Vec<RecordRow> = chunk
            .iter()
            .map(|&n| {
                let (state, reason, message) = match n % 50 {
                    7 => (RecordState::Failed, Some("validation"), Some("Pipedrive refused the values: value must be a number")),
                    13 => (RecordState::Failed, Some("rate_limit"), Some("HubSpot kept refusing with 429 Too Many Requests")),
                    21 | 22 => (RecordState::Excluded, Some("filter"), Some("The deal does not meet the sync's filters.")),
                    31 => (
                        RecordState::Excluded,
                        Some("unmapped_stage"),
                        Some("The deal's stage is not mapped to a stage on the other side."),
                    ),
                    _ => (RecordState::Linked, None, None),
                };
                RecordRow {
                    id: record_ids[n].clone(),
                    sync_id: sync_id.to_string(),
                    hubspot_id: Some(format!("hs-{n}")),
                    app_id: (state == RecordState::Linked).then(|| format!("{}", 1_000_000 + n)),
                    state,
                    reason: reason.and_then(RecordReason::parse),
                    message: message.map(str::to_string),
                    origin: "hubspot".into(),
                    create_on: None,
                    name: format!("Deal {n}"),
                    agreed: Default::default(),
                    hub_seen_at: Some(now),
                    app_seen_at: Some(now),
                    created_at: now - 30 * 86_400_000,
                    updated_at: now - (n as i64 % 1_000) * 60_000,
                    match_key: None,
                    pending: None,
                }
            })
            .collect();
        store.save_records(&rows).await.unwrap();
    }
    // Runs spread over 30 days, each with events on its records.
    let run_ids: Vec<String> = (0..RUNS).map(|n| id(0x0191_0000, n)).collect();
    let per_run = events / RUNS;
    let span = 30 * 86_400_000i64;
    let mut pending: Vec<EventRow> = Vec::new();
    for (n, run_id) in run_ids.iter().enumerate() {
        let started = now - span + (n as i64 * span / RUNS as i64);
        let run = RunRow {
            id: run_id.clone(),
            sync_id: sync_id.to_string(),
            trigger: if n == 0 {
                RunTrigger::Initial
            } else if n % 3 == 0 {
                RunTrigger::Webhook
            } else {
                RunTrigger::Scheduled
            },
            started_at: started,
            ended_at: Some(started + 1_500),
            outcome: if n % 10 == 0 { RunOutcome::Partial } else { RunOutcome::Succeeded },
            updated_in_app: (per_run / 2) as i64,
            updated_in_hub: (per_run / 2) as i64,
            failed_to_app: if n % 10 == 0 { 2 } else { 0 },
            api_calls: 12,
            skipped: 40,
            ..RunRow::default()
        };
        store.insert_run(&run).await.unwrap();
        for e in 0..per_run {
            let record = &record_ids[(n * per_run + e) % RECORDS];
            let (kind, changes, rule, category) = match e % 20 {
                0 => (
                    EventKind::Conflict,
                    json!([{"field": "Amount", "hubspot": "7000", "app": "6500", "winner": "hubspot"}]),
                    Some("Default to HubSpot"),
                    None,
                ),
                1 => (EventKind::Failed, json!([]), None, Some("validation")),
                _ => (
                    EventKind::Updated,
                    json!([{"field": "Amount", "old": format!("{e}"), "new": format!("{}", e + 1)}, {"field": "Close date", "old": null, "new": "2027-01-31"}]),
                    None,
                    None,
                ),
            };
            pending.push(EventRow {
                id: id(0x0192_0000, n * per_run + e),
                sync_id: sync_id.to_string(),
                run_id: run_id.clone(),
                record_id: record.clone(),
                at: started + e as i64,
                kind,
                side: if e % 2 == 0 { Side::App } else { Side::HubSpot },
                changes: changes.to_string(),
                rule: rule.map(str::to_string),
                category: category.and_then(RecordReason::parse),
                message: category.map(|_| "Pipedrive refused the values".to_string()),
            });
        }
        if pending.len() >= 5_000 || n == RUNS - 1 {
            let page = PageCommit {
                sync_id,
                lease_owner: "bench",
                lease_until: i64::MAX / 2,
                events: std::mem::take(&mut pending),
                ..PageCommit::default()
            };
            store.commit_page(&page, engine::clock::now_ms()).await.unwrap();
        }
    }
    store.release_sync(sync_id, "bench", now + 3_600_000, now, true).await.unwrap();
    (record_ids, run_ids)
}

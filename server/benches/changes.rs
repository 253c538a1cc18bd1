//! A change in seconds, for a handful of calls: Tandem serving as `make run` does (its web
//! server receiving the sandboxes' webhooks, its engine on SQLite), a quiet deals sync between
//! HubSpot and Pipedrive with 10,000 deals on each side and the providers' limits on (HubSpot's
//! 110 calls per ten seconds, Pipedrive's burst window). After the initial sync, 100 single
//! changes are made one after another in each app (a deal's amount, as a user edits it), each
//! waking Tandem by the app's webhook; for each, the calls Tandem made until the other app had
//! the change and the time that took. Prints every change and the p50 and p95 of both.
//!
//! `cargo bench -p tandem --bench changes`; `BENCH_CHANGES=20` makes fewer changes,
//! `BENCH_DEALS=1000` fewer deals, `BENCH_DEBUG=1` prints the runs behind each change (trigger,
//! start and end after the change, calls by purpose, rate-limit waits, writes).

#[path = "../tests/support/seed.rs"]
mod seed;
#[path = "../tests/support/install.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::store::RunRow;
use engine::Store;
use model::states::RunOutcome;
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::json;
use tandem::{Application, Config};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(bench());
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn bench() {
    let changes = env_number("BENCH_CHANGES", 100);
    let deals = env_number("BENCH_DEALS", 10_000);
    // Tandem's port first: the sandboxes register its callback and deliver to its webhooks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tandem_url = format!("http://{}", listener.local_addr().unwrap());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let yesterday = engine::clock::now_ms() - 86_400_000;
    let mut hs_config = HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]);
    hs_config.daily_limit = u32::MAX;
    let (hub, hubspot) = sandbox::start_hubspot(hs_config, any, None).await.expect("HubSpot sandbox");
    seed::seed_hubspot(&mut hub.write(), deals, yesterday);
    let mut pd_config = PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]);
    pd_config.daily_tokens = u64::MAX / 4;
    let (pd, pipedrive) = sandbox::start_pipedrive(pd_config, any, None).await.expect("Pipedrive sandbox");
    seed::seed_pipedrive(&mut pd.write(), deals, yesterday);
    let (hubspot_url, pipedrive_url) = (hubspot.url(), pipedrive.url());

    let data_dir = std::env::temp_dir().join(format!("tandem-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = engine::crypto::generate_key_text();
    let (_, sync_id) = support::install_and_sync_deals(&data_dir, None, &key, &tandem_url, &hubspot_url, &pipedrive_url, |_, _| {}).await;

    // HubSpot's app settings: deliver deal changes to Tandem (Pipedrive's webhooks the engine
    // registers itself).
    let http = reqwest::Client::new();
    let hapikey = "hapikey=tandem-sandbox-developer-key";
    let settings = json!({"targetUrl": format!("{tandem_url}/webhooks/hubspot"), "throttling": {"maxConcurrentRequests": 5}});
    let r = http.put(format!("{hubspot_url}/webhooks/v3/1234567/settings?{hapikey}")).json(&settings).send().await.unwrap();
    assert!(r.status().is_success());
    for event in ["deal.creation", "deal.propertyChange", "deal.deletion"] {
        let mut subscription = json!({"eventType": event, "active": true});
        if event == "deal.propertyChange" {
            subscription["propertyName"] = json!("amount");
        }
        let r = http.post(format!("{hubspot_url}/webhooks/v3/1234567/subscriptions?{hapikey}")).json(&subscription).send().await.unwrap();
        assert!(r.status().is_success());
    }

    let mut config = Config::for_tests(data_dir.clone(), None);
    config.secret_key = Some(key);
    config.hubspot_app_url = hubspot_url.clone();
    config.hubspot_api_url = hubspot_url.clone();
    config.pipedrive_oauth_url = pipedrive_url.clone();
    for (id, secret) in [
        (&mut config.hubspot_client_id, &mut config.hubspot_client_secret),
        (&mut config.pipedrive_client_id, &mut config.pipedrive_client_secret),
    ] {
        *id = Some(DEMO_CLIENT_ID.into());
        *secret = Some(DEMO_CLIENT_SECRET.into());
    }
    let app = Application::build_on(config, listener).await.expect("Tandem starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = stopped.await;
        })
        .await
        .expect("Tandem runs");
    });
    let store = Store::open(None, &data_dir).await.unwrap();

    // The initial sync, and the runs that follow it.
    let started = Instant::now();
    loop {
        let runs = store.runs(&sync_id, 10).await.unwrap();
        let initial_done = store.sync_state(&sync_id).await.unwrap().is_some_and(|s| !s.phase.is_initial());
        if initial_done && runs.len() >= 2 && runs.iter().all(|r| r.outcome != RunOutcome::Running) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(900), "the initial sync did not end in 15 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    quiet(&store, &sync_id).await;
    println!(
        "deals sync, HubSpot <-> Pipedrive (Sandbox), {deals} deals each side, limits on; initial sync took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let linked: Vec<(String, String)> =
        store.all_records(&sync_id).await.unwrap().into_iter().filter_map(|r| Some((r.hubspot_id?, r.app_id?))).take(changes).collect();
    assert_eq!(linked.len(), changes, "enough deals on both sides");

    let mut measured: Vec<(&str, Vec<(f64, i64)>)> = Vec::new();
    for (from, to) in [("Pipedrive", "HubSpot"), ("HubSpot", "Pipedrive")] {
        println!("{from} → {to}: change, seconds until {to} has it, calls");
        let mut figures = Vec::new();
        for (i, (hub_id, pd_id)) in linked.iter().enumerate() {
            let amount = 100_000 + i as i64 + if from == "HubSpot" { 50_000 } else { 0 };
            let before = engine::clock::now_ms();
            let clock = Instant::now();
            let r = if from == "Pipedrive" {
                http.patch(format!("{pipedrive_url}/_sandbox/deals/{pd_id}")).json(&json!({"fields": {"value": amount}})).send().await
            } else {
                let body = json!({"properties": {"amount": amount.to_string()}});
                http.patch(format!("{hubspot_url}/_sandbox/objects/deals/{hub_id}")).json(&body).send().await
            };
            assert!(r.unwrap().status().is_success());
            let (seconds, calls) = arrival(&store, &sync_id, before, clock, from == "Pipedrive").await;
            println!("  {:>3} {seconds:>7.2} s {calls:>3} calls", i + 1);
            figures.push((seconds, calls));
            quiet(&store, &sync_id).await;
        }
        measured.push((from, figures));
    }
    println!("from       changes  seconds p50  p95   calls p50  p95");
    for (from, figures) in &measured {
        let mut seconds: Vec<f64> = figures.iter().map(|f| f.0).collect();
        let mut calls: Vec<i64> = figures.iter().map(|f| f.1).collect();
        seconds.sort_by(f64::total_cmp);
        calls.sort();
        println!(
            "{from:<10} {:>7}  {:>11.2} {:>5.2}   {:>9} {:>4}",
            figures.len(),
            percentile(&seconds, 50),
            percentile(&seconds, 95),
            percentile(&calls, 50),
            percentile(&calls, 95)
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    hubspot.stop().await;
    pipedrive.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Waits until a run that began after the change (at `since`, Unix ms) wrote it to the other
/// app (`to_hub`: HubSpot) and every run since has ended; answers the seconds from the change
/// to that run's end and the calls of every run since the change.
async fn arrival(store: &Store, sync_id: &str, since: i64, clock: Instant, to_hub: bool) -> (f64, i64) {
    loop {
        let runs: Vec<RunRow> = store.runs(sync_id, 20).await.unwrap().into_iter().filter(|r| r.started_at >= since).collect();
        let wrote = |r: &RunRow| if to_hub { r.updated_in_hub } else { r.updated_in_app } > 0;
        if let Some(run) = runs.iter().find(|r| wrote(r) && r.outcome != RunOutcome::Running) {
            if runs.iter().all(|r| r.outcome != RunOutcome::Running) {
                let seconds = (run.ended_at.unwrap_or(run.started_at) - since) as f64 / 1000.0;
                if std::env::var("BENCH_DEBUG").is_ok() {
                    for r in runs.iter().rev() {
                        println!(
                            "        {} run +{} ms to +{} ms: {} calls (reads {}, writes {}, lookups {}, schema {}), {} rate-limit waits ({} ms), wrote HubSpot {} app {}",
                            r.trigger.as_str(),
                            r.started_at - since,
                            r.ended_at.unwrap_or(r.started_at) - since,
                            r.api_calls,
                            r.calls_read,
                            r.calls_write,
                            r.calls_lookup,
                            r.calls_schema,
                            r.rate_limit_waits,
                            r.rate_limit_wait_ms,
                            r.updated_in_hub,
                            r.updated_in_app
                        );
                    }
                }
                return (seconds, runs.iter().map(|r| r.api_calls).sum());
            }
        }
        assert!(clock.elapsed() < Duration::from_secs(120), "a change did not arrive within two minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until no run is under way and none started for a second: each change is made on a
/// quiet sync (a run that began just before it would carry it unseen).
async fn quiet(store: &Store, sync_id: &str) {
    let mut calm_since = Instant::now();
    let mut last: Option<String> = None;
    loop {
        let latest = store.runs(sync_id, 1).await.unwrap().pop();
        let running = latest.as_ref().is_some_and(|r| r.outcome == RunOutcome::Running);
        let id = latest.map(|r| r.id);
        if running || id != last {
            calm_since = Instant::now();
            last = id;
        } else if calm_since.elapsed() >= Duration::from_secs(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile<T: Copy>(sorted: &[T], p: usize) -> T {
    sorted[((sorted.len() * p).div_ceil(100)).saturating_sub(1).min(sorted.len() - 1)]
}

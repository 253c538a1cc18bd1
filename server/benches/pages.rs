//! Every page of the console under load, as a stall hunt: starts both sandboxes with 200 deals
//! each and Tandem (its engine on), installs both apps and a deal sync as an admin would, waits
//! for the initial sync, then asks for every page (signed in as the Super Admin, and the sign-in
//! pages signed out) `BENCH_REQUESTS` times in all (default 100,000), `BENCH_CONCURRENCY` at a time (default 20).
//! Prints per page the requests, failures, stalls (no full answer within 10 s) and the time to
//! the last byte; exits with 1 on any stall or failure.
//!
//! `cargo bench -p tandem --bench pages` (the release build; SQLite, or `BENCH_DATABASE=postgres`).

#[path = "../tests/support/install.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig};
use tandem::{Application, Config};

const STALL: Duration = Duration::from_secs(10);
/// Deals made in each sandbox before the sync starts.
const DEALS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let clean = runtime.block_on(bench());
    std::process::exit(if clean { 0 } else { 1 });
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The first `href` in `html` that starts with `prefix`, up to its closing quote.
fn link(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    Some(html[start..].chars().take_while(|c| *c != '"').collect::<String>().replace("&amp;", "&"))
}

struct Outcome {
    page: &'static str,
    millis: f64,
    fault: Option<String>,
    stalled: bool,
}

async fn bench() -> bool {
    let requests = env_number("BENCH_REQUESTS", 100_000);
    let concurrency = env_number("BENCH_CONCURRENCY", 20);
    let postgres = std::env::var("BENCH_DATABASE").as_deref() == Ok("postgres");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tandem_url = format!("http://{}", listener.local_addr().unwrap());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut hub_config = HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]);
    hub_config.rate_limit = u32::MAX / 4;
    hub_config.daily_limit = u32::MAX;
    let mut pd_config = PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]);
    pd_config.burst_limit = 0;
    pd_config.daily_tokens = u64::MAX / 4;
    let (hub, hubspot) = sandbox::start_hubspot(hub_config, any, None).await.unwrap();
    let (pd, pipedrive) = sandbox::start_pipedrive(pd_config, any, None).await.unwrap();
    // Deals on both sides (some in stages the sync does not map), made yesterday, so that the
    // dashboards have records in sync, excluded records and events to show.
    let yesterday = engine::clock::now_ms() - 86_400_000;
    sandbox::hubspot::seed::generate(&mut hub.write(), DEALS, 0, 0, 7, yesterday);
    sandbox::pipedrive::seed::generate(&mut pd.write(), DEALS, 7, yesterday);

    let data_dir = std::env::temp_dir().join(format!("tandem-bench-pages-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let scratch = if postgres {
        Some(engine::store::scratch::ScratchDatabase::create(engine::store::Backend::Postgres).await.expect("Postgres"))
    } else {
        None
    };
    let database_url = scratch.as_ref().map(|db| db.url.clone());
    let key = engine::crypto::generate_key_text();
    let (connection, sync_id) =
        support::install_and_sync_deals(&data_dir, database_url.as_deref(), &key, &tandem_url, &hubspot.url(), &pipedrive.url(), |_, _| {})
            .await;

    let mut config = Config::for_tests(data_dir.clone(), database_url.clone());
    config.secret_key = Some(key);
    config.sync_interval_secs = 5;
    for (id, secret) in [
        (&mut config.hubspot_client_id, &mut config.hubspot_client_secret),
        (&mut config.pipedrive_client_id, &mut config.pipedrive_client_secret),
    ] {
        *id = Some(sandbox::DEMO_CLIENT_ID.into());
        *secret = Some(sandbox::DEMO_CLIENT_SECRET.into());
    }
    config.hubspot_app_url = hubspot.url();
    config.hubspot_api_url = hubspot.url();
    config.pipedrive_oauth_url = pipedrive.url();
    let app = Application::build_on(config, listener).await.expect("server");
    tokio::spawn(async move { app.run(std::future::pending()).await });

    let client = |cookies: bool| {
        reqwest::Client::builder()
            .cookie_store(cookies)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap()
    };
    let admin = client(true);
    let visitor = client(false);
    let r = admin
        .post(format!("{tandem_url}/api/login"))
        .header("origin", &tandem_url)
        .form(&[("email", "ada@example.com"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "login: {}", r.status());
    let invite: String = admin
        .post(format!("{tandem_url}/api/invite_user"))
        .header("origin", &tandem_url)
        .form(&[("email", "vic@example.com"), ("role", "viewer")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invite_path = format!("/invite/{}", invite.rsplit('/').next().unwrap());

    // The initial sync, so that the dashboards have runs and records to show.
    let base = format!("/settings/integrations/syncs/{sync_id}");
    let started = Instant::now();
    let (run, record) = loop {
        let history = admin.get(format!("{tandem_url}{base}/history")).send().await.unwrap().text().await.unwrap();
        let records = admin.get(format!("{tandem_url}{base}/records?bucket=in_sync")).send().await.unwrap().text().await.unwrap();
        if let (Some(run), Some(record)) = (link(&history, &format!("{base}/history/")), link(&records, &format!("{base}/records/"))) {
            break (run, record);
        }
        if started.elapsed() > Duration::from_secs(180) {
            let health = admin.get(format!("{tandem_url}{base}")).send().await.unwrap().text().await.unwrap();
            let text: String = health
                .split('<')
                .filter_map(|t| t.split_once('>').map(|(_, t)| t.trim()))
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" | ");
            panic!("the initial sync did not finish; its Health page says: {}", text.chars().take(1500).collect::<String>());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("initial sync done in {:.1} s", started.elapsed().as_secs_f64());

    let setup = format!("{}/pipedrive/{connection}/sync", app::CONNECTED_APPS_PATH);
    let pages: Vec<(&'static str, String, bool, u16)> = vec![
        ("Log in (signed out)", "/login".into(), false, 200),
        ("Invitation (signed out)", invite_path, false, 200),
        ("App Marketplace", "/marketplace".into(), true, 200),
        ("App page", "/marketplace/pipedrive".into(), true, 200),
        ("Connected apps", app::CONNECTED_APPS_PATH.into(), true, 200),
        ("Connected app: Pipedrive", format!("{}/pipedrive", app::CONNECTED_APPS_PATH), true, 200),
        ("Connected app: HubSpot", format!("{}/hubspot", app::CONNECTED_APPS_PATH), true, 200),
        ("Set up sync: objects", setup.clone(), true, 200),
        ("Set up sync: deal rules", format!("{setup}?object=deal"), true, 200),
        ("Sync health overview", "/settings/integrations/syncs".into(), true, 200),
        ("Sync health", base.clone(), true, 200),
        ("Sync health, 30 days", format!("{base}?range=30d"), true, 200),
        ("Sync history", format!("{base}/history"), true, 200),
        ("A run", run, true, 200),
        ("Records in sync", format!("{base}/records?bucket=in_sync"), true, 200),
        ("Record search", format!("{base}/records?q=deal"), true, 200),
        ("Record timeline", record, true, 200),
        ("Users & permissions", "/settings/users".into(), true, 200),
        ("Audit log", "/settings/audit-log".into(), true, 200),
        ("Page not found", "/settings/no-such-page".into(), true, 404),
    ];

    println!("{requests} requests over {} pages, {concurrency} at a time", pages.len());
    let started = Instant::now();
    let outcomes: Vec<Outcome> = stream::iter(0..requests)
        .map(|i| {
            let (name, path, signed_in, status) = pages[i % pages.len()].clone();
            let browser = if signed_in { admin.clone() } else { visitor.clone() };
            let url = format!("{tandem_url}{path}");
            async move {
                let t = Instant::now();
                let answer = tokio::time::timeout(STALL, async {
                    let r = browser.get(&url).send().await?;
                    let got = r.status().as_u16();
                    r.text().await.map(|body| (got, body))
                })
                .await;
                let millis = t.elapsed().as_secs_f64() * 1000.0;
                let (fault, stalled) = match answer {
                    Err(_) => (Some(format!("no full answer within {} s", STALL.as_secs())), true),
                    Ok(Err(e)) => (Some(format!("the answer broke off: {e}")), false),
                    // The document's end: leptos streams the resources it resolved after `</html>`.
                    Ok(Ok((got, body))) if got != status || !body.contains("</html>") => {
                        (Some(format!("status {got}, {} bytes", body.len())), false)
                    }
                    Ok(Ok(_)) => (None, false),
                };
                Outcome { page: name, millis, fault, stalled }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();

    let mut by_page: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in &outcomes {
        by_page.entry(o.page).or_default().push(o);
    }
    println!("{:<28} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8}", "page", "requests", "failed", "stalled", "p50 ms", "p99 ms", "max ms");
    for (page, list) in &by_page {
        let mut times: Vec<f64> = list.iter().map(|o| o.millis).collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{page:<28} {:>8} {:>8} {:>7} {:>8.1} {:>8.1} {:>8.1}",
            list.len(),
            list.iter().filter(|o| o.fault.is_some()).count(),
            list.iter().filter(|o| o.stalled).count(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    let faults: Vec<&Outcome> = outcomes.iter().filter(|o| o.fault.is_some()).collect();
    let stalls = outcomes.iter().filter(|o| o.stalled).count();
    println!(
        "{} requests in {elapsed:.1} s ({:.0}/s) on {}: {} failed, {stalls} stalled",
        outcomes.len(),
        outcomes.len() as f64 / elapsed,
        if postgres { "Postgres" } else { "SQLite" },
        faults.len()
    );
    for o in faults.iter().take(10) {
        println!("  {}: {}", o.page, o.fault.as_deref().unwrap_or_default());
    }
    hubspot.stop().await;
    pipedrive.stop().await;
    if let Some(db) = scratch {
        db.destroy().await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    faults.is_empty()
}

//! How many list and batch requests per second each sandbox serves on loopback with its limits
//! off, so that the sandbox never bounds the sync engine's benchmark. `cargo bench -p sandbox`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sandbox::{start_hubspot, start_pipedrive, start_zoho, HubSpotConfig, OAuthClient, PipedriveConfig, ZohoConfig};
use serde_json::{json, Value};

/// As the `tandem-sandbox` binary serves (its allocator): the figures are what `make run` serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

fn client() -> OAuthClient {
    OAuthClient { client_id: "bench".into(), client_secret: "bench".into(), redirect_uris: vec!["http://127.0.0.1:9/cb".into()] }
}

async fn mint(http: &reqwest::Client, base: &str, scopes: &[&str]) -> String {
    let r: Value = http
        .post(format!("{base}/_sandbox/tokens"))
        .json(&json!({"client_id": "bench", "scopes": scopes}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

/// Runs `start` (a sandbox starting) on a runtime of its own, as the `tandem-sandbox` binary
/// serves, so that the server and the benchmark's client do not share worker threads: a handler
/// waiting for the sandbox's write lock then holds up other requests, never the client.
fn apart<T: Send>(runtime: &tokio::runtime::Runtime, start: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| s.spawn(|| runtime.block_on(start)).join().expect("the sandbox starts"))
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("sandbox").build().expect("a runtime")
}

/// Sends `REQUESTS` requests from `CONCURRENCY` workers; prints and returns requests per second.
async fn hammer(label: &str, make: impl Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static) -> f64 {
    hammer_n(label, REQUESTS, make).await
}

async fn hammer_n(
    label: &str,
    requests: usize,
    make: impl Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> f64 {
    // `SANDBOX_BENCH_ONLY=POST` measures only the cases whose label holds it (to profile one).
    if std::env::var("SANDBOX_BENCH_ONLY").is_ok_and(|only| !label.contains(&only)) {
        return 0.0;
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, make, next) = (http.clone(), make.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let response = make(&http, i).send().await.expect("request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let rate = requests as f64 / started.elapsed().as_secs_f64();
    println!("{label:<56} {rate:>8.0} requests/s  ({requests} requests, {CONCURRENCY} connections)");
    rate
}

/// This process's resident memory now and at its peak, in MB (Linux).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kb| kb / 1024)
            .unwrap_or(0)
    };
    format!("RSS {} MB, peak {} MB", field("VmRSS:"), field("VmHWM:"))
}

/// Ids spread over the store (the `n` ids from `first`, starting `offset` in), so that paging
/// starts all over it and every id exists.
fn spread(first: u64, offset: u64, n: usize, count: usize) -> Vec<u64> {
    (0..count).map(|i| first + (offset + i as u64 * 7919) % n as u64).collect()
}

fn pd_cursor(id: u64) -> String {
    use base64::Engine as _;
    let raw = json!({"field": "id", "fieldValue": id, "sortDirection": "asc", "id": id}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The HubSpot sandbox with `deals` seeded deals: list, batch read and search.
async fn hubspot_at(http: &reqwest::Client, deals: usize, large: bool) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = HubSpotConfig::new(vec![client()]);
    (config.rate_limit, config.daily_limit) = (0, 0);
    let server = server_runtime();
    let (hubspot, hs) = apart(&server, start_hubspot(config, addr, None)).unwrap();
    let started = Instant::now();
    sandbox::hubspot::seed::generate(
        &mut hubspot.write(),
        deals,
        if large { 0 } else { 1_000 },
        if large { 0 } else { 1_000 },
        1,
        sandbox::time::now_ms(),
    );
    let seeded = started.elapsed();
    let base = hs.url();
    let token = mint(http, &base, &["crm.objects.deals.read", "crm.objects.deals.write"]).await;
    let first: u64 = {
        let page: Value =
            http.get(format!("{base}/crm/v3/objects/deals?limit=1")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        page["results"][0]["id"].as_str().unwrap().parse().unwrap()
    };
    println!("HubSpot (Sandbox), {deals} deals, limits off (seeded in {:.2} s; {})", seeded.as_secs_f64(), rss());
    let afters = Arc::new(spread(first, 0, deals, 997));
    for limit in [10, 100] {
        let (b, t, afters) = (base.clone(), token.clone(), afters.clone());
        let label = if large {
            format!("  GET /crm/v3/objects/deals?limit={limit}&after=(spread)")
        } else {
            format!("  GET /crm/v3/objects/deals?limit={limit}")
        };
        hammer(&label, move |c, i| {
            let after = if large { format!("&after={}", afters[i % afters.len()]) } else { String::new() };
            c.get(format!("{b}/crm/v3/objects/deals?limit={limit}{after}")).bearer_auth(&t)
        })
        .await;
    }
    for n in [10, 100] {
        let (b, t) = (base.clone(), token.clone());
        let bodies: Arc<Vec<Value>> = Arc::new(
            (0..64)
                .map(|k| {
                    let ids: Vec<Value> = spread(first, k * 13, deals, n).iter().map(|id| json!({"id": id.to_string()})).collect();
                    json!({"properties": ["dealname", "amount", "dealstage"], "inputs": ids})
                })
                .collect(),
        );
        hammer(&format!("  POST /crm/v3/objects/deals/batch/read ({n} ids)"), move |c, i| {
            c.post(format!("{b}/crm/v3/objects/deals/batch/read")).bearer_auth(&t).json(&bodies[i % bodies.len()])
        })
        .await;
    }
    if large {
        // The engine's incremental read: what changed since its last run (here 200 deals, changed
        // after the seed), a new search each time (a different threshold), answered from the
        // modification-date index rather than by reading every record.
        let seeded_at = hubspot.read().records(sandbox::hubspot::data::ObjectType::Deals).map(|r| r.updated_at).max().unwrap_or(0);
        {
            let mut data = hubspot.write();
            for (k, id) in spread(first, 5, deals, 200).into_iter().enumerate() {
                let properties = std::collections::BTreeMap::from([("amount".to_string(), (1000 + k).to_string())]);
                data.update_record(sandbox::hubspot::data::ObjectType::Deals, id, properties, seeded_at + 1 + k as i64, "CRM_UI");
            }
        }
        let (b, t) = (base.clone(), token.clone());
        hammer("  POST /crm/v3/objects/deals/search (modified since, 100; new search)", move |c, i| {
            let since = (seeded_at + 1 + (i % 100) as i64).to_string();
            let body = json!({
                "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since}]}],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": ["dealname", "amount", "dealstage"],
                "limit": 100,
            });
            c.post(format!("{b}/crm/v3/objects/deals/search")).bearer_auth(&t).json(&body)
        })
        .await;
        let (b, t) = (base.clone(), token.clone());
        // A new search each time (a different threshold) on a property no index answers: every
        // record is scanned and the hits sorted. Then the next pages of one search, which share its sorted hits.
        hammer_n("  POST /crm/v3/objects/deals/search (amount > 40000+i, 100; new search)", 64, move |c, i| {
            let body = json!({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": (40_000 + i).to_string()}]}], "limit": 100});
            c.post(format!("{b}/crm/v3/objects/deals/search")).bearer_auth(&t).json(&body)
        })
        .await;
        let (b, t) = (base.clone(), token.clone());
        hammer("  POST /crm/v3/objects/deals/search (one search's next pages, 100)", move |c, i| {
            let body = json!({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": "40000"}]}], "limit": 100, "after": ((i % 99) * 100).to_string()});
            c.post(format!("{b}/crm/v3/objects/deals/search")).bearer_auth(&t).json(&body)
        })
        .await;
    }
    hs.stop().await;
    drop(hubspot);
    server.shutdown_background();
}

/// The Pipedrive sandbox with `deals` seeded deals: list by id (the default) and by update time.
async fn pipedrive_at(http: &reqwest::Client, deals: usize, large: bool) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = PipedriveConfig::new(vec![client()]);
    config.burst_limit = 0;
    config.daily_tokens = u64::MAX / 2;
    let server = server_runtime();
    let (pipedrive, pd) = apart(&server, start_pipedrive(config, addr, None)).unwrap();
    let started = Instant::now();
    sandbox::pipedrive::seed::generate(&mut pipedrive.write(), deals, 1, sandbox::time::now_ms());
    let seeded = started.elapsed();
    let base = pd.url();
    let token = mint(http, &base, &["deals:full"]).await;
    println!("Pipedrive (Sandbox), {deals} deals, limits off (seeded in {:.2} s; {})", seeded.as_secs_f64(), rss());
    let first = pipedrive.read().deals.keys().next().copied().unwrap_or(0);
    let cursors = Arc::new(spread(first, 0, deals, 997).into_iter().map(pd_cursor).collect::<Vec<_>>());
    for limit in [10, 100, 500] {
        let (b, t, cursors) = (base.clone(), token.clone(), cursors.clone());
        let label =
            if large { format!("  GET /api/v2/deals?limit={limit}&cursor=(spread)") } else { format!("  GET /api/v2/deals?limit={limit}") };
        hammer(&label, move |c, i| {
            let cursor = if large { format!("&cursor={}", cursors[i % cursors.len()]) } else { String::new() };
            c.get(format!("{b}/api/v2/deals?limit={limit}{cursor}")).bearer_auth(&t)
        })
        .await;
    }
    if large {
        // A new list each time (a different updated_since), read forward from it in the update
        // time order.
        let (b, t) = (base.clone(), token.clone());
        hammer_n("  GET /api/v2/deals?limit=100&sort_by=update_time (new list)", 200, move |c, i| {
            let since = sandbox::time::iso_seconds(sandbox::time::now_ms() - 86_400_000 - i as i64 * 1000);
            c.get(format!("{b}/api/v2/deals?limit=100&sort_by=update_time&updated_since={since}")).bearer_auth(&t)
        })
        .await;
        // The next pages of one list, which share its order: cursors collected by paging it.
        let mut cursors: Vec<String> = Vec::new();
        let mut next: Option<String> = None;
        while cursors.len() < 200 {
            let url = match &next {
                None => format!("{base}/api/v2/deals?limit=100&sort_by=update_time"),
                Some(c) => format!("{base}/api/v2/deals?limit=100&sort_by=update_time&cursor={c}"),
            };
            let page: Value = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            match page["additional_data"]["next_cursor"].as_str() {
                Some(c) => {
                    cursors.push(c.to_string());
                    next = Some(c.to_string());
                }
                None => break,
            }
        }
        let (b, t, cursors) = (base.clone(), token.clone(), Arc::new(cursors));
        hammer("  GET /api/v2/deals?limit=100&sort_by=update_time (one list's next pages)", move |c, i| {
            c.get(format!("{b}/api/v2/deals?limit=100&sort_by=update_time&cursor={}", cursors[i % cursors.len()])).bearer_auth(&t)
        })
        .await;
    }
    pd.stop().await;
    drop(pipedrive);
    server.shutdown_background();
}

/// The Zoho CRM sandbox with `deals` seeded deals (a day old), 1,000 contacts and 100 accounts:
/// lists at Zoho's default page size (200) by page and, past the first 2,000 records, by
/// `page_token`; what changed (`If-Modified-Since`); searches; batch writes of 100 and of 10.
async fn zoho_at(http: &reqwest::Client, deals: usize, large: bool) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = ZohoConfig::new(vec![client()]);
    (config.daily_credits, config.concurrency_limit) = (u64::MAX / 2, 0);
    let server = server_runtime();
    let (zoho, zs) = apart(&server, start_zoho(config, addr, None)).unwrap();
    let started = Instant::now();
    let day_ago = sandbox::time::now_ms() - 86_400_000;
    sandbox::zoho::seed::generate(&mut zoho.write(), deals, 1_000, 100, 1, day_ago);
    let seeded = started.elapsed();
    let base = zs.url();
    let token = mint(http, &base, &["ZohoCRM.modules.ALL"]).await;
    let auth = format!("Zoho-oauthtoken {token}");
    println!("Zoho CRM (Sandbox), {deals} deals, limits off (seeded in {:.2} s; {})", seeded.as_secs_f64(), rss());
    const FIELDS: &str = "Deal_Name,Stage,Amount,Closing_Date,Account_Name,Contact_Name,Modified_Time";
    for per_page in [10, 200] {
        let pages = (2_000 / per_page).min(deals / per_page).max(1);
        let (b, a) = (base.clone(), auth.clone());
        hammer(&format!("  GET /crm/v8/Deals?fields=…&per_page={per_page}&page=(1..{pages})"), move |c, i| {
            c.get(format!("{b}/crm/v8/Deals?fields={FIELDS}&per_page={per_page}&page={}", 1 + i % pages)).header("Authorization", &a)
        })
        .await;
    }
    let (b, a) = (base.clone(), auth.clone());
    let get = |url: String| {
        let (http, a) = (http.clone(), a.clone());
        async move { http.get(url).header("Authorization", a).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    if large {
        // Past the first 2,000 records: the tokens collected by paging one list.
        let mut tokens: Vec<String> = Vec::new();
        let mut page = get(format!("{b}/crm/v8/Deals?fields={FIELDS}&per_page=200&page=10")).await;
        while tokens.len() < 100 {
            let Some(next) = page["info"]["next_page_token"].as_str().map(str::to_string) else { break };
            tokens.push(next.clone());
            page = get(format!("{b}/crm/v8/Deals?fields={FIELDS}&per_page=200&page_token={next}")).await;
        }
        let tokens = Arc::new(tokens);
        let (b, a) = (base.clone(), auth.clone());
        hammer("  GET /crm/v8/Deals?fields=…&per_page=200&page_token=(past 2,000)", move |c, i| {
            c.get(format!("{b}/crm/v8/Deals?fields={FIELDS}&per_page=200&page_token={}", tokens[i % tokens.len()]))
                .header("Authorization", &a)
        })
        .await;
    }
    // What changed: 200 deals edited now, read with If-Modified-Since an hour ago (the engine's
    // incremental read), oldest change first.
    let ids: Vec<String> = get(format!("{b}/crm/v8/Deals?fields=Deal_Name&per_page=200&sort_by=id&sort_order=asc")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    for chunk in ids.chunks(100) {
        let data: Vec<Value> = chunk.iter().enumerate().map(|(k, id)| json!({"id": id, "Amount": 1000 + k})).collect();
        let r = http.put(format!("{b}/crm/v8/Deals")).header("Authorization", &a).json(&json!({ "data": data })).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let since = sandbox::zoho::zoho_time(sandbox::time::now_ms() - 3_600_000);
    let (b2, a2) = (base.clone(), auth.clone());
    hammer("  GET /crm/v8/Deals (If-Modified-Since, sort_by=Modified_Time, 200)", move |c, _| {
        c.get(format!("{b2}/crm/v8/Deals?fields={FIELDS}&per_page=200&sort_by=Modified_Time&sort_order=asc"))
            .header("Authorization", &a2)
            .header("If-Modified-Since", &since)
    })
    .await;
    // Records by id, 100 a call: how the engine reads back what a batch wrote.
    let by_ids: Arc<Vec<String>> = Arc::new(ids.chunks(100).map(|chunk| chunk.join(",")).collect());
    let (b2, a2) = (base.clone(), auth.clone());
    hammer(&format!("  GET /crm/v8/Deals?ids=(100)&fields=… ({deals} deals)"), move |c, i| {
        c.get(format!("{b2}/crm/v8/Deals?ids={}&fields={FIELDS}&per_page=200", by_ids[i % by_ids.len()])).header("Authorization", &a2)
    })
    .await;
    // Searches: a contact by email (the engine's match on email) and deals by a criteria.
    let emails: Arc<Vec<String>> = Arc::new(
        get(format!("{b}/crm/v8/Contacts?fields=Email&per_page=200")).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["Email"].as_str().map(str::to_string))
            .collect(),
    );
    let (b2, a2) = (base.clone(), auth.clone());
    hammer("  GET /crm/v8/Contacts/search?email=… (1,000 contacts)", move |c, i| {
        c.get(format!("{b2}/crm/v8/Contacts/search?email={}", emails[i % emails.len()])).header("Authorization", &a2)
    })
    .await;
    // A criteria no index answers: the deals are read in id order until the page (and one more
    // record) is found. At 1k fewer deals match than a page holds (about 160 of 800, the 200
    // lowest ids having had their amounts set to 1,000-1,099 above), so every search reads every
    // deal; at 100k the thresholds stay under 40,100 (a fifth of the deals match: about 1,200
    // read a search), and a search that matches nothing, reading every deal, is measured on its
    // own.
    let (b2, a2) = (base.clone(), auth.clone());
    hammer(&format!("  GET /crm/v8/Deals/search?criteria=(Amount:greater_than:…) ({deals} deals)"), move |c, i| {
        let threshold = 40_000 + if large { i % 64 } else { i };
        c.get(format!("{b2}/crm/v8/Deals/search?criteria=(Amount:greater_than:{threshold})&per_page=200")).header("Authorization", &a2)
    })
    .await;
    if large {
        let (b2, a2) = (base.clone(), auth.clone());
        hammer_n("  GET /crm/v8/Deals/search?criteria=(Amount:greater_than:60000+i) (none match)", 64, move |c, i| {
            c.get(format!("{b2}/crm/v8/Deals/search?criteria=(Amount:greater_than:{})&per_page=200", 60_000 + i))
                .header("Authorization", &a2)
        })
        .await;
    }
    // Batch writes of 100 (Zoho's most a call) and of 10 (a more usual size): updates of
    // existing deals, then creates.
    for size in [100, 10] {
        // Bodies serialized before the clock starts: the client shares the machine with the
        // sandbox, and building a body of 100 records each call measured the client as much.
        let calls = 500_000 / size;
        let bodies: Arc<Vec<String>> = Arc::new(
            ids.chunks(size)
                .map(|chunk| {
                    json!({"data": chunk.iter().map(|id| json!({"id": id, "Description": "benchmark"})).collect::<Vec<_>>()}).to_string()
                })
                .collect(),
        );
        let (b2, a2) = (base.clone(), auth.clone());
        hammer_n(&format!("  PUT /crm/v8/Deals ({size} records)"), calls, move |c, i| {
            c.put(format!("{b2}/crm/v8/Deals"))
                .header("Authorization", &a2)
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].clone())
        })
        .await;
        let (b2, a2) = (base.clone(), auth.clone());
        // As many calls as the updates, enough to last seconds (fewer measured mostly the opening
        // of 32 connections and the first allocations), each creating deals of its own names.
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..calls)
                .map(|i| {
                    let data: Vec<Value> =
                        (0..size).map(|k| json!({"Deal_Name": format!("Bench {i}-{k}"), "Stage": "Qualification", "Amount": k})).collect();
                    json!({ "data": data }).to_string()
                })
                .collect(),
        );
        hammer_n(&format!("  POST /crm/v8/Deals ({size} records)"), calls, move |c, i| {
            c.post(format!("{b2}/crm/v8/Deals"))
                .header("Authorization", &a2)
                .header("content-type", "application/json")
                .body(bodies[i].clone())
        })
        .await;
    }
    zs.stop().await;
    drop(zoho);
    server.shutdown_background();
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::new();
    let sizes: Vec<usize> = match std::env::var("SANDBOX_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 100_000, 1_000_000],
    };
    // `SANDBOX_BENCH_APPS=zoho` (or a comma-separated list) picks sandboxes; all by default.
    let apps = std::env::var("SANDBOX_BENCH_APPS").unwrap_or_else(|_| "hubspot,pipedrive,zoho".into());
    let wanted = |app: &str| apps.split(',').any(|a| a.trim() == app);
    for &deals in &sizes {
        if wanted("hubspot") {
            hubspot_at(&http, deals, deals > 1_000).await;
        }
    }
    for &deals in &sizes {
        if wanted("pipedrive") {
            pipedrive_at(&http, deals, deals > 1_000).await;
        }
    }
    for &deals in &sizes {
        if wanted("zoho") {
            zoho_at(&http, deals, deals > 1_000).await;
        }
    }
}

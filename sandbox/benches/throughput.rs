//! How many list and batch requests per second each sandbox serves on loopback with its limits
//! off, so that the sandbox never bounds the sync engine's benchmark. `cargo bench -p sandbox`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sandbox::{start_hubspot, start_pipedrive, HubSpotConfig, OAuthClient, PipedriveConfig};
use serde_json::{json, Value};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

fn client() -> OAuthClient {
    OAuthClient { client_id: "bench".into(), client_secret: "bench".into(), redirect_uris: vec!["http://127.0.0.1:9/cb".into()] }
}

async fn mint(http: &reqwest::Client, base: &str, scopes: &[&str]) -> String {
    let r: Value = http.post(format!("{base}/_sandbox/tokens")).json(&json!({"client_id": "bench", "scopes": scopes})).send().await.unwrap().json().await.unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

/// Sends `REQUESTS` requests from `CONCURRENCY` workers; prints and returns requests per second.
async fn hammer(label: &str, make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, make, next) = (http.clone(), make.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                    let response = make(&http).send().await.expect("request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
    println!("{label:<48} {rate:>8.0} requests/s  ({REQUESTS} requests, {CONCURRENCY} connections)");
    rate
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let http = reqwest::Client::new();

    let mut config = HubSpotConfig::new(vec![client()]);
    config.rate_limit = 0;
    let (hubspot, hs) = start_hubspot(config, addr, None).await.unwrap();
    sandbox::hubspot::seed::generate(&mut hubspot.write(), 1_000, 1_000, 1_000, 1, sandbox::time::now_ms());
    let base = hs.url();
    let token = mint(&http, &base, &["crm.objects.deals.read", "crm.objects.deals.write"]).await;
    let ids: Vec<Value> = {
        let page: Value = http.get(format!("{base}/crm/v3/objects/deals?limit=100")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        page["results"].as_array().unwrap().iter().map(|r| json!({"id": r["id"]})).collect()
    };
    println!("HubSpot (Sandbox), 1,000 deals, limits off");
    for limit in [10, 100] {
        let (b, t) = (base.clone(), token.clone());
        hammer(&format!("  GET /crm/v3/objects/deals?limit={limit}"), move |c| {
            c.get(format!("{b}/crm/v3/objects/deals?limit={limit}")).bearer_auth(&t)
        })
        .await;
    }
    for n in [10, 100] {
        let (b, t) = (base.clone(), token.clone());
        let body = json!({"properties": ["dealname", "amount", "dealstage"], "inputs": ids[..n]});
        hammer(&format!("  POST /crm/v3/objects/deals/batch/read ({n} ids)"), move |c| {
            c.post(format!("{b}/crm/v3/objects/deals/batch/read")).bearer_auth(&t).json(&body)
        })
        .await;
    }
    hs.stop().await;

    let mut config = PipedriveConfig::new(vec![client()]);
    config.burst_limit = 0;
    config.daily_tokens = u64::MAX / 2;
    let (pipedrive, pd) = start_pipedrive(config, addr, None).await.unwrap();
    sandbox::pipedrive::seed::generate(&mut pipedrive.write(), 1_000, 1, sandbox::time::now_ms());
    let base = pd.url();
    let token = mint(&http, &base, &["deals:full"]).await;
    println!("Pipedrive (Sandbox), 1,000 deals, limits off");
    for limit in [10, 100, 500] {
        let (b, t) = (base.clone(), token.clone());
        hammer(&format!("  GET /api/v2/deals?limit={limit}"), move |c| c.get(format!("{b}/api/v2/deals?limit={limit}")).bearer_auth(&t)).await;
    }
    pd.stop().await;
}

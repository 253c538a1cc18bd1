//! The Pipedrive sandbox's daily token budget and its reset at midnight UTC, the spec's token
//! costs (`x-token-cost`), persistence across a restart, and the control API's reset and faults,
//! over HTTP. The calls are `getDeals`, `addDeal`, `getDeal`, `addPerson`, `getPerson`,
//! `getPipelines` (v2), `getDealsSummary` (v1) and `refresh-tokens` (oauth).

#[path = "support/pipedrive.rs"]
mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_failure, start, start_with};

fn at(rfc3339: &str) -> i64 {
    sandbox::time::parse_rfc3339(rfc3339).unwrap()
}

/// The company's daily budget: each call spends its `x-token-cost` (`getDeals` 10) and says what
/// is left in `x-daily-requests-left`; once spent, 429 in Pipedrive's shape until midnight UTC,
/// when it is whole again.
#[tokio::test]
async fn a_spent_daily_budget_is_restored_the_next_day() {
    let s = start_with(|c| (c.daily_tokens, c.burst_limit) = (25, 0), None).await;
    let token = s.mint(&["deals:read"]).await;
    let set_clock = |now: i64| s.control(Method::PUT, "/_sandbox/clock", json!({"now": now}));
    assert_eq!(set_clock(at("2026-05-04T23:59:00Z")).await.status, 200);
    for left in [15, 5] {
        let a = s.call(Method::GET, "/api/v2/deals", &token, None).await;
        assert_eq!((a.status, a.daily_left()), (200, left));
    }
    let spent = s.call(Method::GET, "/api/v2/deals", &token, None).await;
    assert_failure(&spent, 429, "Request over limit");
    // A call that costs less than what is left still goes through: `getDeal` costs 1.
    let one = s.call(Method::GET, "/api/v2/deals/1", &token, None).await;
    assert_eq!((one.status, one.daily_left()), (404, 4), "{}", one.body);

    assert_eq!(set_clock(at("2026-05-04T23:59:58Z")).await.status, 200);
    assert_eq!(s.call(Method::GET, "/api/v2/deals", &token, None).await.status, 429, "still the same day");
    assert_eq!(set_clock(at("2026-05-05T00:00:00Z")).await.status, 200);
    let restored = s.call(Method::GET, "/api/v2/deals", &token, None).await;
    assert_eq!((restored.status, restored.daily_left()), (200, 15));
    s.running.stop().await;
}

/// `getDealsSummary` costs 40 tokens (`x-token-cost: 40` in the v1 spec), `getDeals` 10,
/// `addDeal` 5, `getPipelines` 5, `getDeal` 1.
#[tokio::test]
async fn calls_cost_the_specs_token_costs() {
    let s = start().await;
    let token = s.mint(&["deals:full"]).await;
    let mut left = s.call(Method::GET, "/api/v1/users/me", &token, None).await.daily_left();
    for (method, path, body, cost) in [
        (Method::GET, "/api/v1/deals/summary", None, 40),
        (Method::GET, "/api/v2/deals", None, 10),
        (Method::POST, "/api/v2/deals", Some(json!({"title": "Costed"})), 5),
        (Method::GET, "/api/v2/pipelines", None, 5),
        (Method::GET, "/api/v2/pipelines/1", None, 1),
    ] {
        let a = s.call(method, path, &token, body).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert_eq!(left - a.daily_left(), cost, "{path}");
        left = a.daily_left();
    }
    s.running.stop().await;
}

/// The company, its deals and persons, and the app's tokens survive a restart (the snapshot
/// file); the refresh token still rotates afterwards.
#[tokio::test]
async fn the_company_and_its_tokens_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("sandbox-test-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("pipedrive.json");
    let s = start_with(|_| {}, Some(file.clone())).await;
    let minted =
        s.control(Method::POST, "/_sandbox/tokens", json!({"client_id": "pd-app", "scopes": ["deals:full", "contacts:full"]})).await;
    let (token, refresh) =
        (minted.body["access_token"].as_str().unwrap().to_string(), minted.body["refresh_token"].as_str().unwrap().to_string());
    let deal = s.call(Method::POST, "/api/v2/deals", &token, Some(json!({"title": "Survivor", "value": 1200, "currency": "EUR"}))).await;
    let person = s.call(Method::POST, "/api/v2/persons", &token, Some(json!({"name": "Kept Person"}))).await;
    let (deal, person) = (deal.body["data"]["id"].as_u64().unwrap(), person.body["data"]["id"].as_u64().unwrap());
    s.running.stop().await;
    assert!(file.exists(), "the snapshot was written");

    let s = start_with(|_| {}, Some(file.clone())).await;
    let got = s.call(Method::GET, &format!("/api/v2/deals/{deal}"), &token, None).await;
    assert_eq!(got.status, 200, "the token and the deal were kept: {}", got.body);
    assert_eq!((got.body["data"]["title"].as_str(), got.body["data"]["value"].as_f64()), (Some("Survivor"), Some(1200.0)));
    let got = s.call(Method::GET, &format!("/api/v2/persons/{person}"), &token, None).await;
    assert_eq!(got.body["data"]["name"], "Kept Person");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("pd-app:pd-secret"));
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .header("authorization", basic)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), refresh);
    s.running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `POST /_sandbox/reset`: the freshly seeded company again (deals made since are gone, the
/// budget spent is back), the app's tokens still valid.
#[tokio::test]
async fn reset_brings_back_the_fresh_company() {
    let s = start().await;
    let token = s.mint(&["deals:full"]).await;
    let full = s.call(Method::GET, "/api/v2/deals", &token, None).await.daily_left() + 10;
    let made = s.call(Method::POST, "/api/v2/deals", &token, Some(json!({"title": "Made before the reset"}))).await;
    let id = made.body["data"]["id"].as_u64().unwrap();
    assert_eq!(s.control(Method::POST, "/_sandbox/reset", json!({})).await.status, 204);
    let gone = s.call(Method::GET, &format!("/api/v2/deals/{id}"), &token, None).await;
    assert_failure(&gone, 404, "not found");
    assert_eq!(gone.daily_left(), full - 1, "the budget is whole again, less this call");
    let summary = s.control(Method::GET, "/_sandbox/summary", Value::Null).await;
    assert_eq!(summary.body["deals"]["live"], 0);
    s.running.stop().await;
}

/// `PUT /_sandbox/faults` on Pipedrive: injected 429, 500, 503 and 400 in Pipedrive's error shape,
/// dropped connections, latency, scoped to a method and path.
#[tokio::test]
async fn injected_faults_answer_in_pipedrives_shape() {
    let s = start().await;
    let token = s.mint(&["deals:full"]).await;
    let set = |faults: Value| s.control(Method::PUT, "/_sandbox/faults", faults);
    for (fault, status, expected) in [
        ("rate_429", 429, "Too Many Requests"),
        ("rate_500", 500, "Internal Server Error"),
        ("rate_503", 503, "Service Unavailable"),
        ("rate_400", 400, "Validation failed"),
    ] {
        let mut faults = json!({});
        faults[fault] = json!(1.0);
        assert_eq!(set(faults).await.status, 200);
        assert_failure(&s.call(Method::GET, "/api/v2/deals", &token, None).await, status, expected);
    }
    set(json!({"rate_drop": 1.0})).await;
    let dropped = async { s.http.get(format!("{}/api/v2/deals", s.url)).bearer_auth(&token).send().await?.bytes().await };
    assert!(dropped.await.is_err(), "the connection must fail");

    set(json!({"rate_500": 1.0, "only_method": "POST", "only_path": "/api/v2/deals"})).await;
    assert_eq!(s.call(Method::GET, "/api/v2/deals", &token, None).await.status, 200);
    assert_failure(&s.call(Method::POST, "/api/v2/deals", &token, Some(json!({"title": "Refused"}))).await, 500, "Internal Server Error");
    assert_eq!(s.control(Method::GET, "/_sandbox/summary", Value::Null).await.body["deals"]["live"], 0, "nothing was stored");

    set(json!({"latency_ms": 200})).await;
    let started = Instant::now();
    assert_eq!(s.call(Method::GET, "/api/v2/pipelines", &token, None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    set(json!({})).await;
    assert_eq!(s.call(Method::POST, "/api/v2/deals", &token, Some(json!({"title": "Stored"}))).await.status, 200);
    s.running.stop().await;
}

//! HubSpot's rate limits (the ten-second window, the daily limit and its reset at the portal's
//! midnight, search's own limit) and search's operators and caps, over HTTP. The calls are
//! `get-/crm/v3/objects/0-3_getPage` and `post-/crm/v3/objects/0-3/search_doSearch`; the 429
//! bodies and `X-HubSpot-RateLimit-*` headers are those of HubSpot's usage guidelines.

#[path = "support/hubspot.rs"]
mod support;

use reqwest::Method;
use sandbox::HubSpotConfig;
use serde_json::json;
use support::{assert_error, client, start, start_configured, Answer, Sandbox};

fn header(a: &Answer, name: &str) -> String {
    a.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap().to_string()
}

fn at(rfc3339: &str) -> i64 {
    sandbox::time::parse_rfc3339(rfc3339).unwrap()
}

async fn set_clock(s: &Sandbox, now: i64) {
    let r = s.control(Method::PUT, "/_sandbox/clock", json!({"now": now})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!((r.body["now"].as_i64().unwrap() - now).abs() < 5_000, "{}", r.body);
}

/// The ten-second window: each answer carries `X-HubSpot-RateLimit-Max`, `-Remaining`,
/// `-Interval-Milliseconds` (and the sandbox's daily counters); the one over the limit is a 429
/// with `category` `RATE_LIMITS`, a `correlationId`, `errorType` and `policyName`, and the
/// headers still say what is left.
#[tokio::test]
async fn the_429_body_and_headers_are_hubspots() {
    let s = start().await;
    let token = s.token().await;
    assert_eq!(s.control(Method::PUT, "/_sandbox/rate-limit", json!({"limit": 2})).await.status, 204);
    for remaining in ["1", "0"] {
        let a = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
        assert_eq!(a.status, 200);
        assert_eq!((header(&a, "x-hubspot-ratelimit-max"), header(&a, "x-hubspot-ratelimit-remaining")), ("2".into(), remaining.into()));
        assert_eq!(header(&a, "x-hubspot-ratelimit-interval-milliseconds"), "10000");
        // OAuth calls have no daily limit, so no daily headers.
        assert!(a.headers.get("x-hubspot-ratelimit-daily").is_none() && a.headers.get("x-hubspot-ratelimit-daily-remaining").is_none());
    }
    let limited = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_error(&limited, 429, "RATE_LIMITS");
    assert_eq!(limited.body["status"], "error");
    assert_eq!(
        (limited.body["errorType"].as_str(), limited.body["policyName"].as_str()),
        (Some("RATE_LIMIT"), Some("TEN_SECONDLY_ROLLING"))
    );
    assert_eq!(limited.body["message"], "You have reached your ten_secondly_rolling limit.");
    assert_eq!((header(&limited, "x-hubspot-ratelimit-max"), header(&limited, "x-hubspot-ratelimit-remaining")), ("2".into(), "0".into()));
    // Limits off: no ten-second headers, no 429.
    assert_eq!(s.control(Method::PUT, "/_sandbox/rate-limit", json!({"limit": 0})).await.status, 204);
    let free = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_eq!(free.status, 200);
    assert!(free.headers.get("x-hubspot-ratelimit-max").is_none());
    s.running.stop().await;

    // With a daily limit (as a private app has), the daily headers count the calls.
    let mut config = HubSpotConfig::new(vec![client()]);
    config.daily_limit = 250_000;
    let s = start_configured(config, None).await;
    let a = s.call(Method::GET, "/crm/v3/objects/deals", &s.token().await, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (header(&a, "x-hubspot-ratelimit-daily"), header(&a, "x-hubspot-ratelimit-daily-remaining")),
        ("250000".into(), "249999".into())
    );
    assert_eq!(header(&a, "x-hubspot-ratelimit-max"), "110");
    s.running.stop().await;
}

/// The daily limit (per account) answers 429 with `policyName` `DAILY` once spent, and starts
/// again at midnight in the portal's time zone (US/Eastern, UTC-5, as
/// `get-/account-info/v3/details_get` says), not at midnight UTC.
#[tokio::test]
async fn the_daily_limit_starts_again_at_the_portals_midnight() {
    let mut config = HubSpotConfig::new(vec![client()]);
    (config.daily_limit, config.rate_limit) = (3, 0);
    let s = start_configured(config, None).await;
    let token = s.token().await;
    // 23:59 on 10 March in Boston is 04:59 on 11 March UTC.
    set_clock(&s, at("2026-03-11T04:59:00Z")).await;
    for remaining in ["2", "1", "0"] {
        let a = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
        assert_eq!((a.status, header(&a, "x-hubspot-ratelimit-daily-remaining")), (200, remaining.to_string()));
        assert_eq!(header(&a, "x-hubspot-ratelimit-daily"), "3");
    }
    let spent = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_error(&spent, 429, "RATE_LIMITS");
    assert_eq!(
        (spent.body["policyName"].as_str(), spent.body["message"].as_str()),
        (Some("DAILY"), Some("You have reached your daily limit."))
    );
    assert_eq!(header(&spent, "x-hubspot-ratelimit-daily-remaining"), "0");
    set_clock(&s, at("2026-03-11T04:59:58Z")).await;
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await.status, 429, "still the same day");
    set_clock(&s, at("2026-03-11T05:00:00Z")).await;
    let next_day = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_eq!((next_day.status, header(&next_day, "x-hubspot-ratelimit-daily-remaining")), (200, "2".to_string()));

    // Spent just before midnight UTC: still spent just after it.
    for _ in 0..2 {
        s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    }
    set_clock(&s, at("2026-03-12T00:00:01Z")).await;
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await.status, 429, "UTC midnight is not the portal's");
    // Back to the real time (offset 0): another day again.
    let r = s.control(Method::PUT, "/_sandbox/clock", json!({"offset_ms": 0})).await;
    assert_eq!(r.body["offset_ms"], 0);
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await.status, 200);
    assert_eq!(s.control(Method::PUT, "/_sandbox/clock", json!({})).await.status, 400, "now or offset_ms");
    s.running.stop().await;
}

/// Search's operators `NEQ`, `LT`, `LTE` and `NOT_CONTAINS_TOKEN`; `limit` above 200 refused;
/// paging ends at the 10,000th result: the last page still offers its `after`, as HubSpot's does,
/// and following it is a 400 (`after` + `limit` beyond the cap).
#[tokio::test]
async fn search_operators_and_caps() {
    let s = start().await;
    let token = s.token().await;
    assert_eq!(s.control(Method::PUT, "/_sandbox/rate-limit", json!({"limit": 0})).await.status, 204);
    for (name, amount) in [("Alpha deal", "100"), ("Beta deal", "250"), ("Gamma order", "900")] {
        s.create(&token, "deals", json!({"dealname": name, "amount": amount})).await;
    }
    let names = |a: &Answer| {
        let mut n: Vec<String> =
            a.body["results"].as_array().unwrap().iter().map(|r| r["properties"]["dealname"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    for (property, operator, value, expected) in [
        ("amount", "NEQ", "250", vec!["Alpha deal", "Gamma order"]),
        ("amount", "LT", "250", vec!["Alpha deal"]),
        ("amount", "LTE", "250", vec!["Alpha deal", "Beta deal"]),
        ("amount", "LT", "99", vec![]),
        ("dealname", "NOT_CONTAINS_TOKEN", "deal", vec!["Gamma order"]),
        ("dealname", "NEQ", "BETA DEAL", vec!["Alpha deal", "Gamma order"]),
    ] {
        let body = json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": operator, "value": value}]}], "properties": ["dealname"]});
        let a = s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(body)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(names(&a), expected, "{property} {operator} {value}");
        assert_eq!(a.body["total"], expected.len(), "{operator}");
    }
    let r = s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(json!({"limit": 201}))).await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(json!({"limit": 200}))).await.status, 200);
    let r = s
        .call(
            Method::POST,
            "/crm/v3/objects/deals/search",
            &token,
            Some(json!({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "LIKE", "value": "1"}]}]})),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    // A malformed filter is refused whatever the records hold, even behind one that matches
    // nothing (until 2026-12-03 the sandbox answered 200 when no record reached it).
    for bad in [
        json!({"propertyName": "amount", "operator": "EQ"}),
        json!({"propertyName": "amount", "operator": "BETWEEN", "value": "1"}),
        json!({"propertyName": "amount", "operator": "IN", "value": "1"}),
        json!({"propertyName": "amount", "operator": "LIKE", "value": "1"}),
    ] {
        let nothing = json!({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "4102444800000"});
        let body = json!({"filterGroups": [{"filters": [nothing, bad]}]});
        let r = s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(body)).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }

    sandbox::hubspot::seed::generate(&mut s.hubspot.write(), 10_050, 0, 0, 3, sandbox::time::now_ms());
    let last = s
        .call(
            Method::POST,
            "/crm/v3/objects/deals/search",
            &token,
            Some(json!({"after": "9900", "limit": 100, "properties": ["dealname"]})),
        )
        .await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!((last.body["total"].as_u64(), last.body["results"].as_array().unwrap().len()), (Some(10_053), 100));
    let beyond = s
        .call(
            Method::POST,
            "/crm/v3/objects/deals/search",
            &token,
            Some(json!({"after": last.body["paging"]["next"]["after"], "limit": 1})),
        )
        .await;
    assert_error(&beyond, 400, "VALIDATION_ERROR");
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3/search_doSearch`: the pages of one search follow one order, and a
/// write between two requests is in the next answer (the sandbox keeps a search's sorted hits
/// between its pages only while nothing was written); with `search_lag_ms` set, records written
/// within the lag are not found yet, as HubSpot's index trails its writes.
#[tokio::test]
async fn search_pages_see_every_write_and_the_index_can_trail() {
    let s = start().await;
    let token = s.token().await;
    assert_eq!(s.control(Method::PUT, "/_sandbox/rate-limit", json!({"limit": 0})).await.status, 204);
    let mut ids = Vec::new();
    for amount in [0, 10, 20, 30, 40] {
        ids.push(s.create(&token, "deals", json!({"dealname": format!("Deal {amount}"), "amount": amount.to_string()})).await);
    }
    let page = |after: u32| {
        json!({
            "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
            "properties": ["amount"], "limit": 2, "after": after.to_string(),
        })
    };
    let amounts = |a: &Answer| -> Vec<String> {
        a.body["results"].as_array().unwrap().iter().map(|r| r["properties"]["amount"].as_str().unwrap().to_string()).collect()
    };
    let search = |body| s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(body));
    assert_eq!(amounts(&search(page(0)).await), ["40", "30"]);
    assert_eq!(amounts(&search(page(2)).await), ["20", "10"]);
    let edited =
        s.call(Method::PATCH, &format!("/crm/v3/objects/deals/{}", ids[0]), &token, Some(json!({"properties": {"amount": "100"}}))).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(amounts(&search(page(0)).await), ["100", "40"]);
    s.create(&token, "deals", json!({"dealname": "Deal 35", "amount": "35"})).await;
    let second = search(page(2)).await;
    assert_eq!((amounts(&second), second.body["total"].as_u64()), (vec!["35".to_string(), "30".to_string()], Some(6)));

    let r = s.control(Method::PUT, "/_sandbox/faults", json!({"search_lag_ms": 60_000})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lagging = search(page(0)).await;
    assert_eq!((lagging.body["total"].as_u64(), amounts(&lagging)), (Some(0), vec![]), "every deal was written moments ago");
    assert_eq!(s.call(Method::GET, &format!("/crm/v3/objects/deals/{}", ids[1]), &token, None).await.status, 200, "reads by id see it");
    s.running.stop().await;
}

//! The HubSpot sandbox's control API (`/_sandbox/reset`, `/_sandbox/faults`) seen through the
//! emulated API, and webhook events for contacts and companies. The API calls are
//! `get-/crm/v3/objects/0-3_getPage`, `post-/crm/v3/objects/contacts_create`,
//! `post-/crm/v3/pipelines/{objectType}_create` and `get-/crm/v3/pipelines/{objectType}_getAll`;
//! the webhooks are `put-/webhooks/v3/{appId}/settings_configure` and
//! `post-/webhooks/v3/{appId}/subscriptions_create` of `v3/webhooks.json`.

#[path = "support/hubspot.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_error, start};

/// `POST /_sandbox/reset` brings back the freshly installed portal: records and pipelines made
/// since are gone, the seeded ones are back, and the app's tokens still work.
#[tokio::test]
async fn reset_brings_back_the_fresh_portal() {
    let s = start().await;
    let token = s.token().await;
    let deal = s.create(&token, "deals", json!({"dealname": "Before the reset"})).await;
    let body = json!({"label": "Temporary", "displayOrder": 9, "stages": [{"label": "Only", "displayOrder": 0, "metadata": {"probability": "0.5"}}]});
    assert_eq!(s.call(Method::POST, "/crm/v3/pipelines/deals", &token, Some(body)).await.status, 201);
    assert_eq!(s.call(Method::DELETE, "/crm/v3/pipelines/deals/default", &token, None).await.status, 204);

    let reset = s.control(Method::POST, "/_sandbox/reset", json!({})).await;
    assert_eq!(reset.status, 204);
    assert_error(&s.call(Method::GET, &format!("/crm/v3/objects/deals/{deal}"), &token, None).await, 404, "OBJECT_NOT_FOUND");
    let list = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_eq!((list.status, list.body["results"].as_array().map(Vec::len)), (200, Some(0)), "the token still works");
    let pipelines = s.call(Method::GET, "/crm/v3/pipelines/deals", &token, None).await;
    let labels: Vec<&str> = pipelines.body["results"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Sales Pipeline", "Partner Deals"]);
    let summary = s.control(Method::GET, "/_sandbox/summary", Value::Null).await;
    assert_eq!(summary.body["records"]["deals"], json!({"live": 0, "archived": 0}));
    s.running.stop().await;
}

/// `PUT /_sandbox/faults`: added latency, and injected 429s and 500s in HubSpot's error shape
/// (a 429 as the ten-second limit answers it); the token endpoint is slowed but never fails.
#[tokio::test]
async fn injected_latency_429s_and_500s() {
    let s = start().await;
    let token = s.token().await;
    let set = |faults: Value| s.control(Method::PUT, "/_sandbox/faults", faults);
    let echoed = set(json!({"latency_ms": 250})).await;
    assert_eq!(echoed.body["latency_ms"], 250);
    let started = Instant::now();
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());

    set(json!({"rate_429": 1.0})).await;
    let limited = s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await;
    assert_error(&limited, 429, "RATE_LIMITS");
    assert_eq!(
        (limited.body["errorType"].as_str(), limited.body["policyName"].as_str()),
        (Some("RATE_LIMIT"), Some("TEN_SECONDLY_ROLLING"))
    );

    set(json!({"rate_500": 1.0, "only_path": "/contacts"})).await;
    assert_error(&s.call(Method::GET, "/crm/v3/objects/contacts", &token, None).await, 500, "INTERNAL_ERROR");
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/deals", &token, None).await.status, 200, "only the named path fails");
    let current = s.control(Method::GET, "/_sandbox/faults", Value::Null).await;
    assert_eq!((current.body["rate_500"].as_f64(), current.body["only_path"].as_str()), (Some(1.0), Some("/contacts")));

    set(json!({})).await;
    let code = s.code().await;
    set(json!({"rate_500": 1.0, "latency_ms": 100})).await;
    let r = s
        .http
        .post(format!("{}/oauth/v1/token", s.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app-1"),
            ("client_secret", "secret-1"),
            ("redirect_uri", support::REDIRECT),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the token endpoint draws no faults");
    set(json!({})).await;
    assert_eq!(s.call(Method::GET, "/crm/v3/objects/contacts", &token, None).await.status, 200);
    s.running.stop().await;
}

/// `contact.creation`, `contact.propertyChange`, `contact.deletion` and `company.creation`,
/// `company.propertyChange`, `company.deletion` events, delivered in HubSpot's payload shape.
#[tokio::test]
async fn contact_and_company_events_are_delivered() {
    use axum::routing::post;
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        post(move |axum::Json(events): axum::Json<Vec<Value>>| {
            let store = store.clone();
            async move {
                store.lock().unwrap().extend(events);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = start().await;
    let key = "hapikey=tandem-sandbox-developer-key";
    let settings = json!({"targetUrl": target, "throttling": {"maxConcurrentRequests": 10}});
    let r = s.http.put(format!("{}/webhooks/v3/1234567/settings?{key}", s.url)).json(&settings).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for (event, property) in [
        ("contact.creation", None),
        ("contact.propertyChange", Some("jobtitle")),
        ("contact.deletion", None),
        ("company.creation", None),
        ("company.propertyChange", Some("city")),
        ("company.deletion", None),
    ] {
        let mut body = json!({"eventType": event, "active": true});
        if let Some(p) = property {
            body["propertyName"] = json!(p);
        }
        let r = s.http.post(format!("{}/webhooks/v3/1234567/subscriptions?{key}", s.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{event}");
    }
    let token = s.token().await;
    let contact = s.create(&token, "contacts", json!({"email": "ada@example.com"})).await;
    let company = s.create(&token, "0-2", json!({"name": "Engines"})).await;
    for (object, id, properties) in
        [("contacts", &contact, json!({"jobtitle": "Analyst", "lastname": "Lovelace"})), ("companies", &company, json!({"city": "London"}))]
    {
        assert_eq!(
            s.call(Method::PATCH, &format!("/crm/v3/objects/{object}/{id}"), &token, Some(json!({"properties": properties}))).await.status,
            200
        );
        assert_eq!(s.call(Method::DELETE, &format!("/crm/v3/objects/{object}/{id}"), &token, None).await.status, 204);
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = got.lock().unwrap().clone();
    let seen: Vec<(String, String)> =
        events.iter().map(|e| (e["subscriptionType"].as_str().unwrap().to_string(), e["objectId"].as_u64().unwrap().to_string())).collect();
    let expected: Vec<(String, String)> = [
        ("contact.creation", &contact),
        ("company.creation", &company),
        ("contact.propertyChange", &contact),
        ("contact.deletion", &contact),
        ("company.propertyChange", &company),
        ("company.deletion", &company),
    ]
    .iter()
    .map(|(kind, id)| (kind.to_string(), id.to_string()))
    .collect();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_seen, sorted_expected, "{events:?}");
    let change = events.iter().find(|e| e["subscriptionType"] == "contact.propertyChange").unwrap();
    assert_eq!(
        (change["propertyName"].as_str(), change["propertyValue"].as_str()),
        (Some("jobtitle"), Some("Analyst")),
        "lastname has no subscription"
    );
    assert!(events
        .iter()
        .all(|e| e["portalId"] == 24_681_357 && e["appId"] == 1_234_567 && e["occurredAt"].is_u64() && e["eventId"].is_u64()));
    s.running.stop().await;
}

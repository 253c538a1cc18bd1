//! The Pipedrive sandbox over real HTTP, checked against Pipedrive's OpenAPI specs (v1 and v2;
//! each test names the operations it covers by their `operationId`).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use sandbox::{start_pipedrive, OAuthClient, Pipedrive, PipedriveConfig, RunningSandbox};
use serde_json::{json, Value};

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/pipedrive";

struct Sandbox {
    url: String,
    pipedrive: Arc<Pipedrive>,
    running: RunningSandbox,
    http: reqwest::Client,
}

async fn start() -> Sandbox {
    start_with(|_| {}).await
}

async fn start_with(adjust: impl FnOnce(&mut PipedriveConfig)) -> Sandbox {
    let client = OAuthClient { client_id: "pd-app".into(), client_secret: "pd-secret".into(), redirect_uris: vec![REDIRECT.into()] };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = PipedriveConfig::new(vec![client]);
    adjust(&mut config);
    let (pipedrive, running) = start_pipedrive(config, addr, None).await.unwrap();
    Sandbox { url: running.url(), pipedrive, running, http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap() }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

impl Sandbox {
    async fn code(&self, scope: &str) -> String {
        let params = [("client_id", "pd-app"), ("redirect_uri", REDIRECT), ("scope", scope), ("state", "s1")];
        let html = self.http.get(format!("{}/oauth/authorize", self.url)).query(&params).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("Log in to Pipedrive (Sandbox)"));
        let mut form = params.to_vec();
        form.extend([("email", "dana@pipedrive-sandbox.example"), ("password", "sandbox")]);
        let consent = self.http.post(format!("{}/oauth/authorize/login", self.url)).form(&form).send().await.unwrap().text().await.unwrap();
        let pending = hidden(&consent, "pending");
        let r = self
            .http
            .post(format!("{}/oauth/authorize/decision", self.url))
            .form(&[("pending", pending.as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        let location = r.headers()["location"].to_str().unwrap().to_string();
        location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string()
    }

    async fn token(&self, auth: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}/oauth/token", self.url)).header("authorization", auth).form(form).send().await.unwrap()
    }

    async fn connect(&self, scope: &str) -> Value {
        let code = self.code(scope).await;
        let r = self
            .token(&basic("pd-app", "pd-secret"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn api(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    /// An access token with `scope`, through the consent flow.
    async fn bearer(&self, scope: &str) -> String {
        self.connect(scope).await["access_token"].as_str().unwrap().to_string()
    }

    /// The status and JSON body of an API call (`body` for POST and PATCH).
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let request = self.api(method, path, token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Every page of a v2 list, following `next_cursor`.
    async fn all_pages(&self, path: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                None => path.to_string(),
                Some(c) => format!("{path}{sep}cursor={c}"),
            };
            let (status, page) = self.call(Method::GET, &url, token, None).await;
            assert_eq!(status, 200, "{page}");
            items.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["additional_data"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }
}

fn ids(items: &[Value]) -> Vec<u64> {
    items.iter().map(|i| i["id"].as_u64().unwrap()).collect()
}

/// A 400 in Pipedrive's error shape whose message mentions `expected`.
fn assert_refused(status: u16, body: &Value, expected: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!((body["success"].as_bool(), body["errorCode"].as_u64()), (Some(false), Some(400)), "{body}");
    assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    assert!(body["error_info"].is_string() && body["data"].is_null(), "{body}");
}

/// `authorize`, `get-tokens` and `refresh-tokens` (v1 spec, oauth server): Basic client auth,
/// `expires_in` 3599, `api_domain`, and a refresh token that rotates.
#[tokio::test]
async fn oauth_with_basic_auth_and_rotating_refresh_tokens() {
    let s = start().await;
    let tokens = s.connect("deals:full").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["api_domain"], s.url.as_str());
    assert!(tokens["scope"].as_str().unwrap().contains("deals:full"));
    assert!(tokens["access_token"].as_str().unwrap().starts_with("v1u:"));

    let old_refresh = tokens["refresh_token"].as_str().unwrap();
    let r = s.token(&basic("pd-app", "pd-secret"), &[("grant_type", "refresh_token"), ("refresh_token", old_refresh)]).await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), old_refresh, "Pipedrive rotates refresh tokens");
    let reused = s.token(&basic("pd-app", "pd-secret"), &[("grant_type", "refresh_token"), ("refresh_token", old_refresh)]).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let code = s.code("deals:full").await;
    let bad =
        s.token(&basic("pd-app", "wrong"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_client");
    let no_auth = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    // The code's redirect_uri must come again (RFC 6749 §4.1.3); the refused request leaves the code usable.
    let no_redirect = s.token(&basic("pd-app", "pd-secret"), &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(no_redirect.status(), 400);
    assert_eq!(no_redirect.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r =
        s.token(&basic("pd-app", "pd-secret"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(r.status(), 200);
    s.running.stop().await;
}

/// `authorize` (v1 spec, oauth server) takes `client_id`, `redirect_uri` and `state`, no `scope`:
/// the app's scopes are those registered with it, and a token from a request that names none
/// (as the official `pipedrive` client builds it) reads pipelines and deals. The sandbox used to
/// grant only the scopes a request named, so such a token was refused with 403 "Scope and URL
/// mismatch". `get-tokens`, `getPipelines` and `getDeals` (v2) with that token.
#[tokio::test]
async fn authorize_without_scope_grants_the_apps_registered_scopes() {
    let s = start().await;
    let url = format!("{}/oauth/authorize?client_id=pd-app&redirect_uri={}&state=s1", s.url, sandbox::oauth::url_encode(REDIRECT));
    let consent = s.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(consent.contains("Log in to Pipedrive (Sandbox)"), "{consent}");
    let location = sandbox::walk::consent(&url, "dana@pipedrive-sandbox.example", "sandbox", sandbox::walk::Decision::Allow).await.unwrap();
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let r =
        s.token(&basic("pd-app", "pd-secret"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let granted: Vec<&str> = tokens["scope"].as_str().unwrap().split(',').collect();
    for scope in sandbox::pipedrive::DEMO_APP_SCOPES {
        assert!(granted.contains(&scope), "{scope} missing from {granted:?}");
    }
    let token = tokens["access_token"].as_str().unwrap();
    for path in ["/api/v2/pipelines", "/api/v2/deals", "/api/v1/users"] {
        let (status, body) = s.call(Method::GET, path, token, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // A request that names its scopes still gets just those.
    let narrow = s.connect("deals:read").await;
    let (status, body) = s.call(Method::GET, "/api/v1/users", narrow["access_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 403, "{body}");
    s.running.stop().await;
}

/// `getCurrentUser` (v1), `getPipelines`, `getStages` (v2), `getDealFields` (v1).
#[tokio::test]
async fn account_pipelines_stages_and_fields() {
    let s = start().await;
    let token = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    let me: Value = s.api(Method::GET, "/api/v1/users/me", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["success"], true);
    assert_eq!(
        (me["data"]["company_id"].as_u64(), me["data"]["email"].as_str()),
        (Some(7_701_234), Some("dana@pipedrive-sandbox.example"))
    );

    let pipelines: Value = s.api(Method::GET, "/api/v2/pipelines", &token).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = pipelines["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Sales", "Renewals"]);
    assert_eq!(pipelines["additional_data"]["next_cursor"], Value::Null);

    let r = s.api(Method::GET, "/api/v2/stages?pipeline_id=1", &token).send().await.unwrap();
    assert_eq!(r.headers()["x-ratelimit-reset"], "2");
    let stages: Value = r.json().await.unwrap();
    let stage_names: Vec<&str> = stages["data"].as_array().unwrap().iter().map(|st| st["name"].as_str().unwrap()).collect();
    assert_eq!(stage_names, ["Qualified", "Contact Made", "Meeting Scheduled", "Proposal Made", "Negotiations Started"]);
    assert!(stages["data"].as_array().unwrap().iter().all(|st| st["pipeline_id"] == 1));

    let fields: Value = s.api(Method::GET, "/api/v1/dealFields", &token).send().await.unwrap().json().await.unwrap();
    let custom = fields["data"].as_array().unwrap().iter().find(|f| f["name"] == "Lead source").unwrap();
    assert_eq!(custom["key"].as_str().unwrap().len(), 40);
    assert_eq!(custom["options"][1]["label"], "Referral");
    assert_eq!(fields["additional_data"]["pagination"]["more_items_in_collection"], false);
    s.running.stop().await;
}

/// `addDeal`, `getDeal`, `updateDeal`, `deleteDeal` (v2) and `getDealChangelog` (v1).
#[tokio::test]
async fn deals_lifecycle_with_soft_delete_and_changelog() {
    let s = start().await;
    let token = s.connect("deals:full").await["access_token"].as_str().unwrap().to_string();
    let r = s
        .api(Method::POST, "/api/v2/deals", &token)
        .json(&json!({"title": "Northwind expansion", "value": 4200, "currency": "EUR", "pipeline_id": 2,
                      "custom_fields": {"9dc80c50d78a15643bfc4ca79d76156a73a1ca0e": 102}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deal: Value = r.json().await.unwrap();
    let id = deal["data"]["id"].as_u64().unwrap();
    assert_eq!(deal["data"]["stage_id"], 21, "a pipeline alone puts the deal in its first stage");
    assert_eq!(deal["data"]["status"], "open");
    assert!(deal["data"]["add_time"].as_str().unwrap().ends_with('Z'));

    let r =
        s.api(Method::PATCH, &format!("/api/v2/deals/{id}"), &token).json(&json!({"stage_id": 23, "status": "won"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["data"]["stage_id"], 23);
    assert!(updated["data"]["won_time"].as_str().is_some());
    assert!(updated["data"]["stage_change_time"].as_str().is_some());

    // A custom field's change is logged under its key, as every other field's.
    let custom = "9dc80c50d78a15643bfc4ca79d76156a73a1ca0e";
    let r =
        s.api(Method::PATCH, &format!("/api/v2/deals/{id}"), &token).json(&json!({"custom_fields": {custom: 103}})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let log: Value = s.api(Method::GET, &format!("/api/v1/deals/{id}/changelog"), &token).send().await.unwrap().json().await.unwrap();
    let fields: Vec<&str> = log["data"].as_array().unwrap().iter().map(|c| c["field_key"].as_str().unwrap()).collect();
    assert!(fields.contains(&"stage_id") && fields.contains(&"status"), "{fields:?}");
    let entry = &log["data"][0];
    assert_eq!(
        (entry["field_key"].as_str(), entry["old_value"].as_str(), entry["new_value"].as_str()),
        (Some(custom), Some("102"), Some("103")),
        "newest first: {log}"
    );

    let r = s.api(Method::DELETE, &format!("/api/v2/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"success": true, "data": {"id": id}}));
    let got: Value = s.api(Method::GET, &format!("/api/v2/deals/{id}"), &token).send().await.unwrap().json().await.unwrap();
    assert_eq!((got["data"]["is_deleted"].as_bool(), got["data"]["status"].as_str()), (Some(true), Some("deleted")));
    let listed: Value = s.api(Method::GET, "/api/v2/deals", &token).send().await.unwrap().json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty(), "deleted deals leave the default list");
    let deleted: Value = s.api(Method::GET, "/api/v2/deals?status=deleted", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(deleted["data"].as_array().unwrap().len(), 1);
    let gone = s.api(Method::GET, "/api/v2/deals/999999", &token).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.json::<Value>().await.unwrap()["success"], false);
    s.running.stop().await;
}

/// `getDealsSummary` (v1): counts and values of the deals that are not deleted, by currency,
/// filtered by status and pipeline; a bad status is 400, a token without deal scopes 403.
#[tokio::test]
async fn deals_summary_counts_live_deals_by_currency() {
    let s = start().await;
    let token = s.connect("deals:full").await["access_token"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (title, value, currency, pipeline) in [("A", 100, "EUR", 1), ("B", 250, "EUR", 2), ("C", 40, "USD", 1), ("D", 999, "EUR", 1)] {
        let r = s
            .api(Method::POST, "/api/v2/deals", &token)
            .json(&json!({"title": title, "value": value, "currency": currency, "pipeline_id": pipeline}))
            .send()
            .await
            .unwrap();
        ids.push(r.json::<Value>().await.unwrap()["data"]["id"].as_u64().unwrap());
    }
    s.api(Method::PATCH, &format!("/api/v2/deals/{}", ids[2]), &token).json(&json!({"status": "won"})).send().await.unwrap();
    s.api(Method::DELETE, &format!("/api/v2/deals/{}", ids[3]), &token).send().await.unwrap();

    let all: Value = s.api(Method::GET, "/api/v1/deals/summary", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["success"], true);
    assert_eq!(all["data"]["total_count"], 3, "the deleted deal is not counted: {all}");
    assert_eq!(all["data"]["values_total"]["EUR"]["value"], 350.0);
    assert_eq!(all["data"]["values_total"]["EUR"]["count"], 2);
    assert_eq!(all["data"]["values_total"]["USD"]["count"], 1);
    let won: Value = s.api(Method::GET, "/api/v1/deals/summary?status=won", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(won["data"]["total_count"], 1);
    let pipeline: Value = s.api(Method::GET, "/api/v1/deals/summary?pipeline_id=2", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(pipeline["data"]["total_count"], 1);

    let bad = s.api(Method::GET, "/api/v1/deals/summary?status=archived", &token).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["success"], false);
    let other = s.connect("contacts:read").await["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.api(Method::GET, "/api/v1/deals/summary", &other).send().await.unwrap().status(), 403);
    s.running.stop().await;
}

/// `getDeals`: `limit` (≤ 500), `cursor`, `updated_since`, `sort_by`, filters.
#[tokio::test]
async fn deal_lists_page_by_cursor_and_filter_by_update_time() {
    let s = start().await;
    let t0 = sandbox::time::now_ms() - 3_600_000;
    sandbox::pipedrive::seed::generate(&mut s.pipedrive.write(), 120, 3, t0);
    let token = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v2/deals?limit=50".to_string(),
            Some(c) => format!("/api/v2/deals?limit=50&cursor={c}"),
        };
        let page: Value = s.api(Method::GET, &path, &token).send().await.unwrap().json().await.unwrap();
        ids.extend(page["data"].as_array().unwrap().iter().map(|d| d["id"].as_u64().unwrap()));
        match page["additional_data"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 120);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id, no repeats");

    // A user edits one deal now: only it is updated since a minute ago.
    let edited = ids[7];
    let r = s
        .http
        .patch(format!("{}/_sandbox/deals/{edited}", s.url))
        .json(&json!({"fields": {"title": "Edited in Pipedrive"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let since = sandbox::time::iso_seconds(sandbox::time::now_ms() - 60_000);
    let recent: Value = s
        .api(Method::GET, &format!("/api/v2/deals?updated_since={since}&sort_by=update_time"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recent_ids: Vec<u64> = recent["data"].as_array().unwrap().iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert_eq!(recent_ids, [edited]);

    let by_pipeline: Value =
        s.api(Method::GET, "/api/v2/deals?pipeline_id=2&limit=500", &token).send().await.unwrap().json().await.unwrap();
    assert!(by_pipeline["data"].as_array().unwrap().iter().all(|d| d["pipeline_id"] == 2));
    let too_many = s.api(Method::GET, "/api/v2/deals?limit=501", &token).send().await.unwrap();
    assert_eq!(too_many.status(), 400);
    s.running.stop().await;
}

/// `getDeals` sorted by `update_time`: the pages of one list follow one order (the sandbox keeps
/// it between pages while nothing is written), and a write between two pages is in the next one:
/// a deal edited after the first page moves to the end.
#[tokio::test]
async fn deal_pages_by_update_time_see_every_write() {
    let s = start().await;
    let t0 = sandbox::time::now_ms() - 3_600_000;
    sandbox::pipedrive::seed::generate(&mut s.pipedrive.write(), 4, 3, t0);
    let token = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    let page = |cursor: Option<&str>| {
        let path = match cursor {
            None => "/api/v2/deals?sort_by=update_time&limit=2".to_string(),
            Some(c) => format!("/api/v2/deals?sort_by=update_time&limit=2&cursor={c}"),
        };
        s.api(Method::GET, &path, &token).send()
    };
    let ids = |v: &Value| -> Vec<u64> { v["data"].as_array().unwrap().iter().map(|d| d["id"].as_u64().unwrap()).collect() };
    let first: Value = page(None).await.unwrap().json().await.unwrap();
    let again: Value = page(None).await.unwrap().json().await.unwrap();
    assert_eq!(ids(&first), ids(&again), "the same list twice, the same page");
    let (a, b) = (ids(&first)[0], ids(&first)[1]);
    let r = s
        .http
        .patch(format!("{}/_sandbox/deals/{a}", s.url))
        .json(&json!({"fields": {"title": "Edited in Pipedrive"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut seen = vec![a, b];
    let mut cursor = first["additional_data"]["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let next: Value = page(Some(&c)).await.unwrap().json().await.unwrap();
        seen.extend(ids(&next));
        cursor = next["additional_data"]["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5, "the edited deal comes again, last: {seen:?}");
    assert_eq!(seen.last(), Some(&a));
    s.running.stop().await;
}

/// `addDeal` (v2) with bad input (400) and without the scope (403); `getDeals` without a token or
/// with an expired one (401); `getPipelines` under the two-second burst limit (429).
#[tokio::test]
async fn bad_input_scopes_tokens_and_limits_answer_as_pipedrive_does() {
    let s = start().await;
    let read_only = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    let r = s.api(Method::POST, "/api/v2/deals", &read_only).json(&json!({"title": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Scope and URL mismatch");

    let token = s.connect("deals:full").await["access_token"].as_str().unwrap().to_string();
    for (body, expected) in [
        (json!({"value": 5}), "title"),
        (json!({"title": "x", "stage_id": 999}), "stage_id"),
        (json!({"title": "x", "pipeline_id": 1, "stage_id": 21}), "does not belong"),
        (json!({"title": "x", "custom_fields": {"9dc80c50d78a15643bfc4ca79d76156a73a1ca0e": 999}}), "options"),
        (json!({"title": "x", "no_such_field": 1}), "unknown field"),
    ] {
        let r = s.api(Method::POST, "/api/v2/deals", &token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["success"], false);
        assert!(err["error"].as_str().unwrap().contains(expected), "{err}");
    }
    let malformed = s.api(Method::POST, "/api/v2/deals", &token).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let summary: Value = s.http.get(format!("{}/_sandbox/summary", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["deals"]["live"], 0, "nothing was stored");

    let r = s.http.get(format!("{}/api/v2/deals", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized access");
    s.http.post(format!("{}/_sandbox/expire-tokens", s.url)).send().await.unwrap();
    let r = s.api(Method::GET, "/api/v2/deals", &token).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let fresh = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    s.http.put(format!("{}/_sandbox/rate-limit", s.url)).json(&json!({"limit": 2})).send().await.unwrap();
    for remaining in ["1", "0"] {
        let r = s.api(Method::GET, "/api/v2/pipelines", &fresh).send().await.unwrap();
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    }
    let r = s.api(Method::GET, "/api/v2/pipelines", &fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Request over limit");
    s.running.stop().await;
}

/// The control API mints tokens for a registered app (tests, demos, benchmarks), never for others.
///
/// `POST /_sandbox/tokens`, checked with `getDeals` (200) and `addDeal` (403 for a read scope).
#[tokio::test]
async fn control_api_mints_tokens_for_registered_apps_only() {
    let s = start().await;
    let r = s
        .http
        .post(format!("{}/_sandbox/tokens", s.url))
        .json(&json!({"client_id": "pd-app", "scopes": ["deals:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.api(Method::GET, "/api/v2/deals", &token).send().await.unwrap().status(), 200);
    assert_eq!(s.api(Method::POST, "/api/v2/deals", &token).json(&json!({"title": "x"})).send().await.unwrap().status(), 403);
    let r = s.http.post(format!("{}/_sandbox/tokens", s.url)).json(&json!({"client_id": "stranger"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    s.running.stop().await;
}

const CONTACT_TYPE_KEY: &str = "dfdd6544a7ece4ff9397896b0109b1cea522ef3d";
const INDUSTRY_KEY: &str = "ec881dc64d14d2f5e539e2f56f36625bb4a2be70";

/// `addPerson`, `getPerson`, `updatePerson`, `deletePerson` and `getPersons` (v2): the v2 person
/// shape, a name split into first and last, a primary email, and a soft delete after which the
/// person is neither listed nor fetched.
#[tokio::test]
async fn persons_lifecycle_with_soft_delete() {
    let s = start().await;
    let token = s.bearer("contacts:full").await;
    let body = json!({
        "name": "Mira van der Berg", "org_id": 101, "visible_to": 7,
        "emails": [{"value": "mira@northwind.example", "label": "work"}, {"value": "mira@home.example", "label": "home"}],
        "phones": [{"value": "+49 30 5550 1299", "primary": true, "label": "mobile"}],
        "custom_fields": {CONTACT_TYPE_KEY: 112},
    });
    let (status, created) = s.call(Method::POST, "/api/v2/persons", &token, Some(body)).await;
    assert_eq!(status, 200, "{created}");
    let person = &created["data"];
    let id = person["id"].as_u64().unwrap();
    assert_eq!((person["first_name"].as_str(), person["last_name"].as_str()), (Some("Mira"), Some("van der Berg")));
    assert_eq!(
        (person["org_id"].as_u64(), person["owner_id"].as_u64(), person["visible_to"].as_i64()),
        (Some(101), Some(13_540_001), Some(7))
    );
    assert_eq!(person["emails"][0], json!({"value": "mira@northwind.example", "primary": true, "label": "work"}));
    assert_eq!(person["emails"][1]["primary"], false);
    assert_eq!(person["phones"][0]["label"], "mobile");
    assert_eq!(person["custom_fields"][CONTACT_TYPE_KEY], 112);
    assert_eq!(person["is_deleted"], false);
    assert!(person["add_time"].as_str().unwrap().ends_with('Z') && person["update_time"] == person["add_time"]);

    let (status, got) = s.call(Method::GET, &format!("/api/v2/persons/{id}"), &token, None).await;
    assert_eq!((status, &got["data"]), (200, person));

    let patch = json!({"name": "Mira Berg", "org_id": null, "phones": [], "custom_fields": {CONTACT_TYPE_KEY: null}});
    let (status, updated) = s.call(Method::PATCH, &format!("/api/v2/persons/{id}"), &token, Some(patch)).await;
    assert_eq!(status, 200, "{updated}");
    let updated = &updated["data"];
    assert_eq!((updated["name"].as_str(), updated["last_name"].as_str()), (Some("Mira Berg"), Some("Berg")));
    assert_eq!((updated["org_id"].clone(), updated["phones"].clone()), (Value::Null, json!([])));
    assert_eq!(updated["custom_fields"], json!({}));
    assert_eq!(updated["emails"], person["emails"], "fields not sent stay");

    let (status, deleted) = s.call(Method::DELETE, &format!("/api/v2/persons/{id}"), &token, None).await;
    assert_eq!((status, deleted), (200, json!({"success": true, "data": {"id": id}})));
    let (status, gone) = s.call(Method::GET, &format!("/api/v2/persons/{id}"), &token, None).await;
    assert_eq!((status, gone["success"].as_bool(), gone["error"].as_str()), (404, Some(false), Some("Person not found")));
    let (status, _) = s.call(Method::PATCH, &format!("/api/v2/persons/{id}"), &token, Some(json!({"name": "x"}))).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(Method::DELETE, &format!("/api/v2/persons/{id}"), &token, None).await;
    assert_eq!(status, 404);
    let listed = s.all_pages("/api/v2/persons?limit=500", &token).await;
    assert_eq!(listed.len(), 12, "the twelve seeded persons, not the deleted one");
    assert!(!ids(&listed).contains(&id));
    let summary: Value = s.http.get(format!("{}/_sandbox/summary", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["persons"], json!({"live": 12, "deleted": 1}));
    s.running.stop().await;
}

/// `getPersons` (v2): `limit`, `cursor`, `updated_since`, `sort_by`/`sort_direction`, the
/// `org_id`, `owner_id` and `deal_id` filters; persons and deals from the control API's seed.
#[tokio::test]
async fn person_lists_page_by_cursor_and_filter_by_update_time() {
    let s = start().await;
    let r = s
        .http
        .post(format!("{}/_sandbox/seed", s.url))
        .json(&json!({"organizations": 3, "persons": 40, "deals": 30, "seed": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["seeded"], json!({"deals": 30, "persons": 40, "organizations": 3}));
    let token = s.bearer("contacts:read deals:read").await;

    let all = s.all_pages("/api/v2/persons?limit=7", &token).await;
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 52, "12 seeded and 40 generated");
    assert!(all_ids.windows(2).all(|w| w[0] < w[1]), "sorted by id, no repeats");
    let desc = ids(&s.all_pages("/api/v2/persons?limit=9&sort_by=add_time&sort_direction=desc", &token).await);
    assert_eq!(desc.len(), 52);
    assert_eq!(desc.first(), all_ids.last(), "the newest first");
    let orgs = ids(&s.all_pages("/api/v2/organizations?limit=5", &token).await);
    assert_eq!(orgs.len(), 13);
    for person in &all {
        let org = person["org_id"].as_u64().expect("every seeded person has an organization");
        assert!(orgs.contains(&org));
        let email = person["emails"][0]["value"].as_str().unwrap();
        assert!(email.contains('@') && email.ends_with(".example"), "{email}");
    }

    let at_northwind = s.all_pages("/api/v2/persons?org_id=101", &token).await;
    assert!(at_northwind.iter().all(|p| p["org_id"] == 101));
    assert_eq!(at_northwind.iter().take(2).map(|p| p["name"].as_str().unwrap()).collect::<Vec<_>>(), ["Anna Keller", "Jonas Weber"]);
    let rays = s.all_pages("/api/v2/persons?owner_id=13540002&limit=500", &token).await;
    assert!(!rays.is_empty() && rays.iter().all(|p| p["owner_id"] == 13_540_002));

    // Generated deals named after a seeded company are linked to it and one of its persons.
    let deals = s.all_pages("/api/v2/deals?limit=500", &token).await;
    let linked = deals.iter().find(|d| d["person_id"].is_u64()).expect("a linked deal");
    let (deal_id, person_id) = (linked["id"].as_u64().unwrap(), linked["person_id"].as_u64().unwrap());
    assert_eq!(ids(&s.all_pages(&format!("/api/v2/persons?deal_id={deal_id}"), &token).await), [person_id]);
    let (_, person) = s.call(Method::GET, &format!("/api/v2/persons/{person_id}"), &token, None).await;
    assert_eq!(person["data"]["org_id"], linked["org_id"]);

    // A user edits one person a little later than the seed: the latest update.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edited = all_ids[20];
    let r = s
        .http
        .patch(format!("{}/_sandbox/persons/{edited}", s.url))
        .json(&json!({"fields": {"name": "Edited In Pipedrive"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let since = sandbox::time::iso_seconds(sandbox::time::now_ms() - 60_000);
    let recent = s.all_pages(&format!("/api/v2/persons?updated_since={since}&sort_by=update_time"), &token).await;
    // The generated persons were added now too; the edit makes `edited` the latest.
    assert_eq!(recent.last().unwrap()["id"].as_u64(), Some(edited));
    assert!(ids(&recent).iter().all(|id| *id >= 1000), "seeded persons are from 2025");
    let until = s.all_pages("/api/v2/persons?updated_until=2025-02-01T00:00:00Z", &token).await;
    assert_eq!(until.len(), 12);

    for bad in ["limit=501", "limit=0", "sort_by=name", "updated_since=yesterday", "cursor=nope", "org_id=x"] {
        let (status, body) = s.call(Method::GET, &format!("/api/v2/persons?{bad}"), &token, None).await;
        assert_refused(status, &body, "Validation failed");
    }
    s.running.stop().await;
}

/// `addOrganization`, `getOrganization`, `updateOrganization`, `deleteOrganization` and
/// `getOrganizations` (v2), and the control API's `POST /_sandbox/organizations`.
#[tokio::test]
async fn organizations_lifecycle_with_soft_delete() {
    let s = start().await;
    let token = s.bearer("contacts:full").await;
    let seeded = s.all_pages("/api/v2/organizations", &token).await;
    assert_eq!(seeded.len(), 10);
    assert_eq!(seeded[0]["name"], "Northwind Traders");
    assert_eq!(seeded[0]["custom_fields"][INDUSTRY_KEY], "Wholesale");
    assert_eq!(seeded[0]["address"]["value"], "Friedrichstraße 68, 10117 Berlin, Germany");

    let body = json!({"name": "Globex Corporation", "owner_id": 13_540_002, "address": {"value": "1 Globex Plaza, Cypress Creek", "country": "USA"},
                      "website": "https://globex.example", "employee_count": 250, "custom_fields": {INDUSTRY_KEY: "Energy"}});
    let (status, created) = s.call(Method::POST, "/api/v2/organizations", &token, Some(body)).await;
    assert_eq!(status, 200, "{created}");
    let org = &created["data"];
    let id = org["id"].as_u64().unwrap();
    assert_eq!((org["owner_id"].as_u64(), org["address"].clone()), (Some(13_540_002), json!({"value": "1 Globex Plaza, Cypress Creek"})));
    assert_eq!(
        (org["employee_count"].as_i64(), org["industry"].clone(), org["is_deleted"].as_bool()),
        (Some(250), Value::Null, Some(false))
    );
    assert_eq!(org["custom_fields"], json!({INDUSTRY_KEY: "Energy"}));
    let (status, got) = s.call(Method::GET, &format!("/api/v2/organizations/{id}"), &token, None).await;
    assert_eq!((status, &got["data"]), (200, org));

    let (status, updated) =
        s.call(Method::PATCH, &format!("/api/v2/organizations/{id}"), &token, Some(json!({"name": "Globex Corp", "address": null}))).await;
    assert_eq!(status, 200);
    assert_eq!((updated["data"]["name"].as_str(), updated["data"]["address"].clone()), (Some("Globex Corp"), Value::Null));
    assert_eq!(updated["data"]["website"], "https://globex.example");

    // A person joins it, then it is deleted: gone from lists and gets, and no longer linkable.
    let (status, _) = s.call(Method::POST, "/api/v2/persons", &token, Some(json!({"name": "Hank Scorpio", "org_id": id}))).await;
    assert_eq!(status, 200);
    let (status, deleted) = s.call(Method::DELETE, &format!("/api/v2/organizations/{id}"), &token, None).await;
    assert_eq!((status, deleted), (200, json!({"success": true, "data": {"id": id}})));
    let (status, gone) = s.call(Method::GET, &format!("/api/v2/organizations/{id}"), &token, None).await;
    assert_eq!((status, gone["error"].as_str()), (404, Some("Organization not found")));
    assert_eq!(s.all_pages("/api/v2/organizations", &token).await.len(), 10);
    let (status, body) = s.call(Method::POST, "/api/v2/persons", &token, Some(json!({"name": "Late Joiner", "org_id": id}))).await;
    assert_refused(status, &body, "org_id");

    let r = s
        .http
        .post(format!("{}/_sandbox/organizations", s.url))
        .json(&json!({"fields": {"name": "Made In The App"}, "timestamp": 1_700_000_000_000_i64}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let (_, got) = s.call(Method::GET, &format!("/api/v2/organizations/{made}"), &token, None).await;
    assert_eq!(got["data"]["update_time"], "2023-11-14T22:13:20Z");
    s.running.stop().await;
}

/// `addPerson`, `updatePerson` and `addOrganization` (v2) refuse bad input with 400 in
/// Pipedrive's error shape and store nothing: an organization that does not exist, a missing name,
/// unknown fields and custom field values that are not the field's options.
#[tokio::test]
async fn bad_person_and_organization_input_is_refused() {
    let s = start().await;
    let token = s.bearer("contacts:full").await;
    for (body, expected) in [
        (json!({"name": "Nobody's Contact", "org_id": 999_999}), "org_id"),
        (json!({"org_id": 101}), "name: is required"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "x", "owner_id": 42}), "owner_id"),
        (json!({"name": "x", "emails": "a@b.example"}), "emails"),
        (json!({"name": "x", "emails": [{"label": "work"}]}), "emails.value"),
        (json!({"name": "x", "phones": [{"value": "1", "primary": true}, {"value": "2", "primary": true}]}), "primary"),
        (json!({"name": "x", "visible_to": 2}), "visible_to"),
        (json!({"name": "x", "custom_fields": {CONTACT_TYPE_KEY: 999}}), "options"),
        (json!({"name": "x", "custom_fields": {INDUSTRY_KEY: "Energy"}}), "unknown field"),
        (json!({"name": "x", "job_title": "CEO"}), "unknown field"),
    ] {
        let (status, err) = s.call(Method::POST, "/api/v2/persons", &token, Some(body.clone())).await;
        assert_refused(status, &err, expected);
    }
    let (status, err) = s.call(Method::PATCH, "/api/v2/persons/201", &token, Some(json!({"org_id": 424_242}))).await;
    assert_refused(status, &err, "org_id");
    for (body, expected) in [
        (json!({"address": {"value": "x"}}), "name: is required"),
        (json!({"name": "x", "address": "Main St 1"}), "address"),
        (json!({"name": "x", "custom_fields": {INDUSTRY_KEY: 7}}), "must be a string"),
    ] {
        let (status, err) = s.call(Method::POST, "/api/v2/organizations", &token, Some(body)).await;
        assert_refused(status, &err, expected);
    }
    let (status, _) = s.call(Method::GET, "/api/v2/persons/abc", &token, None).await;
    assert_eq!(status, 400);
    let summary: Value = s.http.get(format!("{}/_sandbox/summary", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (summary["persons"]["live"].as_u64(), summary["organizations"]["live"].as_u64()),
        (Some(12), Some(10)),
        "nothing was stored"
    );
    let (_, anna) = s.call(Method::GET, "/api/v2/persons/201", &token, None).await;
    assert_eq!(anna["data"]["org_id"], 101, "a refused update changes nothing");
    s.running.stop().await;
}

/// The spec's scopes for `getPersons`, `getPerson`, `getOrganizations`, `getOrganization`,
/// `getPersonFields`, `getOrganizationFields`, `addPerson`, `updatePerson`, `deleteOrganization`
/// and `getDealFields`: reading persons and organizations needs `contacts:read`
/// (or `:full`), writing `contacts:full`; a deals-only token gets 403.
#[tokio::test]
async fn contacts_need_contacts_scopes() {
    let s = start().await;
    let deals_only = s.bearer("deals:full").await;
    for path in [
        "/api/v2/persons",
        "/api/v2/persons/201",
        "/api/v2/organizations",
        "/api/v2/organizations/101",
        "/api/v1/personFields",
        "/api/v1/organizationFields",
    ] {
        let (status, body) = s.call(Method::GET, path, &deals_only, None).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("Scope and URL mismatch")), "{path}");
    }
    let read_only = s.bearer("contacts:read").await;
    let (status, _) = s.call(Method::GET, "/api/v2/persons/201", &read_only, None).await;
    assert_eq!(status, 200);
    for (method, path) in
        [(Method::POST, "/api/v2/persons"), (Method::PATCH, "/api/v2/persons/201"), (Method::DELETE, "/api/v2/organizations/101")]
    {
        let (status, body) = s.call(method, path, &read_only, Some(json!({"name": "x"}))).await;
        assert_eq!((status, body["success"].as_bool()), (403, Some(false)), "{path}");
    }
    let (status, _) = s.call(Method::GET, "/api/v1/dealFields", &read_only, None).await;
    assert_eq!(status, 403, "contacts scopes do not read deal fields");
    let (status, _) = s.call(Method::GET, "/api/v1/personFields", &s.bearer("contact-fields:full").await, None).await;
    assert_eq!(status, 200);
    s.running.stop().await;
}

/// `getPersonFields` and `getOrganizationFields` (v1): built-in fields by name and the custom ones
/// under 40-character keys, in `getDealFields`' shape; each list costs 20 tokens.
#[tokio::test]
async fn person_and_organization_fields_list_custom_fields() {
    let s = start().await;
    let token = s.bearer("contacts:read").await;
    let r = s.api(Method::GET, "/api/v1/personFields", &token).send().await.unwrap();
    let before: u64 = r.headers()["x-daily-requests-left"].to_str().unwrap().parse().unwrap();
    let fields: Value = r.json().await.unwrap();
    assert_eq!(fields["additional_data"]["pagination"]["more_items_in_collection"], false);
    let by_key = |fields: &Value, key: &str| fields["data"].as_array().unwrap().iter().find(|f| f["key"] == key).cloned().unwrap();
    assert_eq!(by_key(&fields, "email")["field_type"], "varchar");
    assert_eq!(by_key(&fields, "org_id")["field_type"], "org");
    assert_eq!(by_key(&fields, "owner_id")["field_type"], "user");
    assert_eq!(by_key(&fields, "name")["mandatory_flag"], true);
    let contact_type = fields["data"].as_array().unwrap().iter().find(|f| f["name"] == "Contact type").unwrap();
    assert_eq!(contact_type["key"].as_str().unwrap().len(), 40);
    assert_eq!(contact_type["key"], CONTACT_TYPE_KEY);
    assert_eq!((contact_type["field_type"].as_str(), contact_type["edit_flag"].as_bool()), (Some("enum"), Some(true)));
    assert_eq!(contact_type["options"][1], json!({"id": 112, "label": "Partner"}));

    let r = s.api(Method::GET, "/api/v1/organizationFields", &token).send().await.unwrap();
    let after: u64 = r.headers()["x-daily-requests-left"].to_str().unwrap().parse().unwrap();
    assert_eq!(before - after, 20, "x-token-cost 20");
    let fields: Value = r.json().await.unwrap();
    assert_eq!(by_key(&fields, "address")["field_type"], "address");
    let industry = fields["data"].as_array().unwrap().iter().find(|f| f["name"] == "Industry").unwrap();
    assert_eq!((industry["key"].as_str().unwrap().len(), industry["field_type"].as_str()), (40, Some("varchar")));
    assert_eq!(industry["key"], INDUSTRY_KEY);
    s.running.stop().await;
}

/// `addDealField` (v1, `deal-fields:full` or `admin`): a custom field keyed by a new 40-character
/// hash that deals then accept under `custom_fields`; `getUsers` (v1, `users:read`) lists the
/// company's users with their emails.
#[tokio::test]
async fn deal_fields_can_be_added_and_users_listed() {
    let s = start().await;
    let reader = s.bearer("deals:full").await;
    let body = json!({"name": "Tandem record ID", "field_type": "varchar"});
    let (status, refused) = s.call(Method::POST, "/api/v1/dealFields", &reader, Some(body.clone())).await;
    assert_eq!(status, 403, "{refused}");
    let admin = s.bearer("deals:full admin").await;
    let (status, created) = s.call(Method::POST, "/api/v1/dealFields", &admin, Some(body)).await;
    assert_eq!(status, 200, "{created}");
    let key = created["data"]["key"].as_str().unwrap().to_string();
    assert_eq!(
        (key.len(), created["data"]["field_type"].as_str(), created["data"]["edit_flag"].as_bool()),
        (40, Some("varchar"), Some(true))
    );
    let (_, fields) = s.call(Method::GET, "/api/v1/dealFields", &admin, None).await;
    assert!(fields["data"].as_array().unwrap().iter().any(|f| f["key"] == key.as_str() && f["name"] == "Tandem record ID"));

    let mut tagged = json!({"title": "Tagged", "custom_fields": {}});
    tagged["custom_fields"][key.as_str()] = json!("t-1");
    let (status, deal) = s.call(Method::POST, "/api/v2/deals", &admin, Some(tagged)).await;
    assert_eq!(status, 200, "{deal}");
    assert_eq!(deal["data"]["custom_fields"][key.as_str()], "t-1");

    let (status, bad) = s.call(Method::POST, "/api/v1/dealFields", &admin, Some(json!({"name": "Kind", "field_type": "enum"}))).await;
    assert_refused(status, &bad, "options");
    let (status, bad) = s.call(Method::POST, "/api/v1/dealFields", &admin, Some(json!({"name": "X", "field_type": "blob"}))).await;
    assert_refused(status, &bad, "field_type");
    let (status, enumerated) = s
        .call(
            Method::POST,
            "/api/v1/dealFields",
            &admin,
            Some(json!({"name": "Tier", "field_type": "enum", "options": [{"label": "Gold"}, {"label": "Silver"}]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(enumerated["data"]["options"][1]["label"], "Silver");

    let (status, users) = s.call(Method::GET, "/api/v1/users", &reader, None).await;
    assert_eq!(status, 403, "users need users:read: {users}");
    let users_token = s.bearer("users:read").await;
    let (status, users) = s.call(Method::GET, "/api/v1/users", &users_token, None).await;
    assert_eq!(status, 200);
    let emails: Vec<&str> = users["data"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert!(emails.contains(&"dana@pipedrive-sandbox.example") && emails.contains(&"alex.morgan@sandbox-portal.example"), "{emails:?}");
    s.running.stop().await;
}

/// `getDealFields`, `getPersonFields` and `getOrganizationFields` (v2): `field_code`,
/// `field_name`, `field_type`, `options`, `subfields` (monetary and address fields),
/// `is_custom_field`, `is_optional_response_field`; `include_fields` adds the UI namespaces; pages of
/// `limit` (at most 500) by `cursor`; `x-token-cost` 10. The sandbox used to answer these paths 404.
#[tokio::test]
async fn get_fields_v2_pages_by_cursor_in_the_v2_shape() {
    let s = start().await;
    let deals = s.bearer("deals:read").await;
    let r = s.api(Method::GET, "/api/v2/dealFields", &deals).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let all: Value = r.json().await.unwrap();
    assert_eq!(all["success"], true);
    assert!(all["additional_data"]["next_cursor"].is_null(), "{}", all["additional_data"]);
    let list = all["data"].as_array().unwrap();
    let by_code = |code: &str| list.iter().find(|f| f["field_code"] == code).cloned().unwrap_or_else(|| panic!("no {code}"));
    let title = by_code("title");
    assert_eq!((title["field_name"].as_str(), title["field_type"].as_str()), (Some("Title"), Some("varchar")), "{title}");
    assert_eq!((title["is_custom_field"].as_bool(), title["is_optional_response_field"].as_bool()), (Some(false), Some(false)));
    assert!(title["options"].is_null() && title["subfields"].is_null() && title.get("key").is_none(), "{title}");
    assert!(title.get("ui_visibility").is_none(), "namespaces only when asked for");
    let value = by_code("value");
    assert_eq!(value["field_type"], "monetary");
    let subfields: Vec<&str> = value["subfields"].as_array().unwrap().iter().map(|f| f["field_code"].as_str().unwrap()).collect();
    assert_eq!(subfields, vec!["value", "currency"]);
    let lead = by_code(sandbox::pipedrive::seed::LEAD_SOURCE_KEY);
    assert_eq!((lead["field_name"].as_str(), lead["is_custom_field"].as_bool()), (Some("Lead source"), Some(true)));

    // Pages of two, by cursor, cover the same fields in the same order.
    let paged = s.all_pages("/api/v2/dealFields?limit=2", &deals).await;
    assert_eq!(paged, *list);
    let left = |r: &reqwest::Response| -> u64 { r.headers()["x-daily-requests-left"].to_str().unwrap().parse().unwrap() };
    let before = left(&s.api(Method::GET, "/api/v2/dealFields?limit=2", &deals).send().await.unwrap());
    let r = s.api(Method::GET, "/api/v2/dealFields?limit=2", &deals).send().await.unwrap();
    let after = left(&r);
    assert_eq!(before - after, 10, "x-token-cost 10");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["additional_data"]["next_cursor"].is_string());

    let (_, asked) = s.call(Method::GET, "/api/v2/dealFields?include_fields=ui_visibility,required_fields", &deals, None).await;
    let title = asked["data"].as_array().unwrap().iter().find(|f| f["field_code"] == "title").unwrap();
    assert_eq!(title["ui_visibility"]["add_visible_flag"], true);
    assert_eq!(title["required_fields"]["enabled"], true);
    assert!(title.get("important_fields").is_none());
    for bad in ["/api/v2/dealFields?limit=501", "/api/v2/dealFields?cursor=nonsense", "/api/v2/dealFields?include_fields=everything"] {
        let (status, body) = s.call(Method::GET, bad, &deals, None).await;
        assert_refused(
            status,
            &body,
            if bad.contains("limit") {
                "limit"
            } else if bad.contains("cursor") {
                "cursor"
            } else {
                "include_fields"
            },
        );
    }

    let (status, body) = s.call(Method::GET, "/api/v2/personFields", &deals, None).await;
    assert_eq!(status, 403, "person fields need a contacts scope: {body}");
    let contacts = s.bearer("contacts:read").await;
    let persons = s.all_pages("/api/v2/personFields", &contacts).await;
    let contact_type = persons.iter().find(|f| f["field_code"] == CONTACT_TYPE_KEY).unwrap();
    assert_eq!((contact_type["field_type"].as_str(), contact_type["is_custom_field"].as_bool()), (Some("enum"), Some(true)));
    assert_eq!(contact_type["options"][1], json!({"id": 112, "label": "Partner"}));
    let organizations = s.all_pages("/api/v2/organizationFields", &contacts).await;
    let address = organizations.iter().find(|f| f["field_code"] == "address").unwrap();
    assert!(address["subfields"].as_array().is_some_and(|s| !s.is_empty()), "{address}");
    assert!(organizations.iter().any(|f| f["field_code"] == INDUSTRY_KEY && f["field_name"] == "Industry"));
    s.running.stop().await;
}

/// `addDealField`, `addPersonField` and `addOrganizationField` (v2, `admin` or the fields'
/// `:full` scope): `field_name` and `field_type` (the 16 types the v2 spec lists), options as
/// `[{label}]`; the answer in the v2 shape, and the field then listed under v1 and v2.
#[tokio::test]
async fn add_fields_v2() {
    let s = start().await;
    let reader = s.bearer("deals:full").await;
    let body = json!({"field_name": "Tandem record ID", "field_type": "varchar"});
    let (status, refused) = s.call(Method::POST, "/api/v2/dealFields", &reader, Some(body.clone())).await;
    assert_eq!(status, 403, "{refused}");
    let admin = s.bearer("deals:full contacts:full admin").await;
    let (status, created) = s.call(Method::POST, "/api/v2/dealFields", &admin, Some(body)).await;
    assert_eq!(status, 200, "{created}");
    let code = created["data"]["field_code"].as_str().unwrap().to_string();
    assert_eq!((code.len(), created["data"]["is_custom_field"].as_bool()), (40, Some(true)));
    assert_eq!(created["data"]["field_name"], "Tandem record ID");
    let v2 = s.all_pages("/api/v2/dealFields", &admin).await;
    assert!(v2.iter().any(|f| f["field_code"] == code.as_str()));
    let (_, v1) = s.call(Method::GET, "/api/v1/dealFields", &admin, None).await;
    assert!(v1["data"].as_array().unwrap().iter().any(|f| f["key"] == code.as_str() && f["name"] == "Tandem record ID"));

    let (status, bad) =
        s.call(Method::POST, "/api/v2/dealFields", &admin, Some(json!({"name": "Old shape", "field_type": "varchar"}))).await;
    assert_refused(status, &bad, "field_name");
    let (status, bad) =
        s.call(Method::POST, "/api/v2/dealFields", &admin, Some(json!({"field_name": "X", "field_type": "visible_to"}))).await;
    assert_refused(status, &bad, "field_type");
    let tier = json!({"field_name": "Tier", "field_type": "enum", "options": [{"label": "Gold"}, {"label": "Silver"}]});
    let (status, person_field) = s.call(Method::POST, "/api/v2/personFields", &admin, Some(tier.clone())).await;
    assert_eq!(status, 200, "{person_field}");
    assert_eq!(person_field["data"]["options"][1]["label"], "Silver");
    let (status, org_field) = s.call(Method::POST, "/api/v2/organizationFields", &admin, Some(tier)).await;
    assert_eq!(status, 200, "{org_field}");
    assert_ne!(org_field["data"]["field_code"], person_field["data"]["field_code"]);
    s.running.stop().await;
}

/// `addPipeline`, `updatePipeline`, `deletePipeline`, `addStage`, `updateStage` and `deleteStage`
/// (v2, the `admin` scope): soft deletes, a stage with deals cannot be deleted, deleted stages and
/// pipelines leave `getStages` and `getPipelines`.
#[tokio::test]
async fn pipelines_and_stages_add_update_delete() {
    let s = start().await;
    let deals_full = s.bearer("deals:full").await;
    let (status, body) = s.call(Method::POST, "/api/v2/pipelines", &deals_full, Some(json!({"name": "Partners"}))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Scope and URL mismatch")), "the spec asks for admin");
    let admin = s.bearer("admin").await;

    let (status, created) = s.call(Method::POST, "/api/v2/pipelines", &admin, Some(json!({"name": "Partners"}))).await;
    assert_eq!(status, 200, "{created}");
    let pipeline = created["data"]["id"].as_u64().unwrap();
    assert_eq!((created["data"]["order_nr"].as_i64(), created["data"]["is_deal_probability_enabled"].as_bool()), (Some(2), Some(false)));
    let (status, err) = s.call(Method::POST, "/api/v2/deals", &admin, Some(json!({"title": "x", "pipeline_id": pipeline}))).await;
    assert_refused(status, &err, "no stages");

    let (status, first) = s
        .call(Method::POST, "/api/v2/stages", &admin, Some(json!({"name": "Intro", "pipeline_id": pipeline, "deal_probability": 20})))
        .await;
    assert_eq!(status, 200, "{first}");
    let first = first["data"].clone();
    assert_eq!(
        (first["order_nr"].as_i64(), first["deal_probability"].as_i64(), first["is_deleted"].as_bool()),
        (Some(1), Some(20), Some(false))
    );
    let (_, second) = s.call(Method::POST, "/api/v2/stages", &admin, Some(json!({"name": "Signed", "pipeline_id": pipeline}))).await;
    let second = second["data"].clone();
    assert_eq!((second["order_nr"].as_i64(), second["deal_probability"].as_i64()), (Some(2), Some(100)));
    let (first_id, second_id) = (first["id"].as_u64().unwrap(), second["id"].as_u64().unwrap());
    for (body, expected) in [
        (json!({"name": "x"}), "pipeline_id: is required"),
        (json!({"pipeline_id": pipeline}), "name: is required"),
        (json!({"name": "x", "pipeline_id": 999}), "no such pipeline"),
        (json!({"name": "x", "pipeline_id": pipeline, "deal_probability": 101}), "deal_probability"),
    ] {
        let (status, err) = s.call(Method::POST, "/api/v2/stages", &admin, Some(body)).await;
        assert_refused(status, &err, expected);
    }

    let patch = json!({"name": "Introduction", "is_deal_rot_enabled": true, "days_to_rotten": 14});
    let (status, updated) = s.call(Method::PATCH, &format!("/api/v2/stages/{first_id}"), &admin, Some(patch)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["data"]["name"].as_str(), updated["data"]["days_to_rotten"].as_i64()), (Some("Introduction"), Some(14)));
    let (status, renamed) = s
        .call(
            Method::PATCH,
            &format!("/api/v2/pipelines/{pipeline}"),
            &admin,
            Some(json!({"name": "Partner deals", "is_deal_probability_enabled": true})),
        )
        .await;
    assert_eq!(
        (status, renamed["data"]["name"].as_str(), renamed["data"]["is_deal_probability_enabled"].as_bool()),
        (200, Some("Partner deals"), Some(true))
    );
    let stages = s.all_pages(&format!("/api/v2/stages?pipeline_id={pipeline}"), &admin).await;
    assert_eq!(stages.iter().map(|st| st["name"].as_str().unwrap()).collect::<Vec<_>>(), ["Introduction", "Signed"]);

    // A deal in the first stage keeps it (and the pipeline) from being deleted.
    let (status, deal) =
        s.call(Method::POST, "/api/v2/deals", &admin, Some(json!({"title": "Partner deal", "pipeline_id": pipeline}))).await;
    assert_eq!((status, deal["data"]["stage_id"].as_u64()), (200, Some(first_id)));
    let (status, err) = s.call(Method::DELETE, &format!("/api/v2/stages/{first_id}"), &admin, None).await;
    assert_refused(status, &err, "still has 1 deal");
    let (status, err) = s.call(Method::DELETE, &format!("/api/v2/pipelines/{pipeline}"), &admin, None).await;
    assert_refused(status, &err, "still has 1 deal");
    let deal_id = deal["data"]["id"].as_u64().unwrap();
    let (status, _) = s.call(Method::DELETE, &format!("/api/v2/deals/{deal_id}"), &admin, None).await;
    assert_eq!(status, 200);

    let (status, deleted) = s.call(Method::DELETE, &format!("/api/v2/stages/{first_id}"), &admin, None).await;
    assert_eq!((status, deleted), (200, json!({"success": true, "data": {"id": first_id}})));
    let (_, got) = s.call(Method::GET, &format!("/api/v2/stages/{first_id}"), &admin, None).await;
    assert_eq!(got["data"]["is_deleted"], true);
    assert_eq!(ids(&s.all_pages(&format!("/api/v2/stages?pipeline_id={pipeline}"), &admin).await), [second_id]);
    let (status, _) = s.call(Method::PATCH, &format!("/api/v2/stages/{first_id}"), &admin, Some(json!({"name": "x"}))).await;
    assert_eq!(status, 404);

    let (status, deleted) = s.call(Method::DELETE, &format!("/api/v2/pipelines/{pipeline}"), &admin, None).await;
    assert_eq!((status, deleted), (200, json!({"success": true, "data": {"id": pipeline}})));
    let (_, got) = s.call(Method::GET, &format!("/api/v2/pipelines/{pipeline}"), &admin, None).await;
    assert_eq!(got["data"]["is_deleted"], true);
    let names: Vec<String> =
        s.all_pages("/api/v2/pipelines", &admin).await.iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["Sales", "Renewals"]);
    let (_, stage) = s.call(Method::GET, &format!("/api/v2/stages/{second_id}"), &admin, None).await;
    assert_eq!(stage["data"]["is_deleted"], true, "a deleted pipeline's stages go with it");

    // The last pipeline cannot go: Renewals (no deals) can, Sales then cannot.
    let (status, _) = s.call(Method::DELETE, "/api/v2/pipelines/2", &admin, None).await;
    assert_eq!(status, 200);
    let (status, err) = s.call(Method::DELETE, "/api/v2/pipelines/1", &admin, None).await;
    assert_refused(status, &err, "only pipeline");
    s.running.stop().await;
}

/// A snapshot saved before persons and organizations existed still loads, with the built-in
/// person and organization fields and no persons or organizations.
///
/// No HTTP: the snapshot format behind every operation.
#[test]
fn snapshots_from_before_contacts_still_load() {
    let mut saved = serde_json::to_value(sandbox::pipedrive::seed::fresh(1)).unwrap();
    for key in ["persons", "organizations", "person_fields", "organization_fields"] {
        saved.as_object_mut().unwrap().remove(key);
    }
    let data: sandbox::pipedrive::data::PdData = serde_json::from_value(saved).unwrap();
    assert!(data.persons.is_empty() && data.organizations.is_empty());
    assert!(data.person_fields.iter().any(|f| f.key == CONTACT_TYPE_KEY));
    assert!(data.organization_fields.iter().any(|f| f.key == INDUSTRY_KEY));
}

/// What a subscription URL received: the Authorization header and the body, per request.
type Deliveries = Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// A local subscription URL that records deliveries, failing the first `fail_first`.
async fn receiver(fail_first: usize) -> (String, Deliveries) {
    use axum::routing::post;
    let got: Deliveries = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (store, count) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hooks/pipedrive",
        post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let (store, count) = (store.clone(), count.clone());
            async move {
                if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                    return axum::http::StatusCode::BAD_GATEWAY;
                }
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                store.lock().unwrap().push((auth, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/pipedrive", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// `addWebhook`, `getWebhooks`, `deleteWebhook` (v1, `admin` scope) and delivery: one v2.0 payload
/// (`data`, `previous`, `meta`) per event, with HTTP Basic auth, retried after a failure.
#[tokio::test]
async fn webhooks_deliver_v2_payloads_with_basic_auth() {
    let s = start_with(|c| c.webhook_retry_base_ms = 50).await;
    let (url, got) = receiver(1).await;
    let plain = s.connect("deals:full").await;
    let plain = plain["access_token"].as_str().unwrap();
    let hook = json!({"subscription_url": url, "event_action": "*", "event_object": "deal", "name": "Tandem", "http_auth_user": "tandem", "http_auth_password": "hook-secret", "version": "2.0"});
    let refused = s.api(Method::POST, "/api/v1/webhooks", plain).json(&hook).send().await.unwrap();
    assert_eq!(refused.status(), 403, "webhooks need the admin scope");

    let admin = s.connect("deals:full admin").await;
    let token = admin["access_token"].as_str().unwrap();
    let bad = s
        .api(Method::POST, "/api/v1/webhooks", token)
        .json(&json!({"subscription_url": url, "event_action": "sometimes", "event_object": "deal", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let created = s.api(Method::POST, "/api/v1/webhooks", token).json(&hook).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let hook_id = created["data"]["id"].as_u64().unwrap();
    assert_eq!(created["data"]["http_auth_password"], "******", "the password is never echoed");
    let list: Value = s.api(Method::GET, "/api/v1/webhooks", token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let deal: Value =
        s.api(Method::POST, "/api/v2/deals", token).json(&json!({"title": "Hooked"})).send().await.unwrap().json().await.unwrap();
    let id = deal["data"]["id"].as_u64().unwrap();
    let r = s.api(Method::PATCH, &format!("/api/v2/deals/{id}"), token).json(&json!({"title": "Renamed"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.api(Method::DELETE, &format!("/api/v2/deals/{id}"), token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while got.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliveries = got.lock().unwrap().clone();
    let actions: Vec<&str> = deliveries.iter().map(|(_, b)| b["meta"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["create", "change", "delete"]);
    let expected_auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("tandem:hook-secret"));
    assert!(deliveries.iter().all(|(auth, _)| auth.as_deref() == Some(expected_auth.as_str())));
    let (_, change) = &deliveries[1];
    assert_eq!(change["data"]["title"], "Renamed");
    assert_eq!(change["previous"]["title"], "Hooked", "previous holds the old values of what changed");
    assert!(change["previous"].get("value").is_none(), "and only what changed");
    assert_eq!(change["meta"]["entity"], "deal");
    assert_eq!(change["meta"]["entity_id"], id.to_string());
    assert_eq!(change["meta"]["version"], "2.0");
    assert_eq!(deliveries[0].1["meta"]["attempt"], 2, "the first delivery was refused once and retried");
    assert!(deliveries[2].1["data"].is_null() && deliveries[2].1["previous"]["title"] == "Renamed");

    let r = s.api(Method::DELETE, &format!("/api/v1/webhooks/{hook_id}"), token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.api(Method::POST, "/api/v2/deals", token).json(&json!({"title": "Quiet"})).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(got.lock().unwrap().len(), 3, "no webhook, no delivery");
    s.running.stop().await;
}

/// Stopping the sandbox while deliveries to an unreachable subscription URL are being retried
/// returns promptly (it used to wait forever: the stop signal, once seen, never woke the next
/// retry's wait).
///
/// `addWebhook` (v1) and `addDeal` (v2) with an unreachable subscription URL.
#[tokio::test]
async fn stopping_during_webhook_retries_returns_promptly() {
    let s = start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let admin = s.connect("deals:full admin").await;
    let token = admin["access_token"].as_str().unwrap();
    let hook = json!({"subscription_url": format!("http://{dead}/hooks"), "event_action": "*", "event_object": "deal", "name": "Gone", "version": "2.0"});
    assert_eq!(s.api(Method::POST, "/api/v1/webhooks", token).json(&hook).send().await.unwrap().status(), 201);
    for title in ["One", "Two", "Three"] {
        let r = s.api(Method::POST, "/api/v2/deals", token).json(&json!({"title": title})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Let the first delivery fail and its retry begin.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), s.running.stop()).await.expect("the sandbox stops within five seconds");
}

/// A subscription URL that accepts connections and never answers; the count of connections it
/// accepted.
async fn silent_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/pipedrive", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (url, accepted)
}

/// Every request the logging receivers got, in the order they arrived: the receiver, the deal's
/// title and the delivery's `meta.attempt`.
type Arrivals = Arc<std::sync::Mutex<Vec<(&'static str, String, u64)>>>;

/// A subscription URL that answers every request with `status`, logging it in `log` as `name`.
async fn logging_receiver(name: &'static str, status: u16, log: Arrivals) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hooks/pipedrive",
        post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let title = body["data"]["title"].as_str().unwrap_or_default().to_string();
                log.lock().unwrap().push((name, title, body["meta"]["attempt"].as_u64().unwrap_or_default()));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/pipedrive", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The titles `name` got, in order.
fn titles_at(log: &Arrivals, name: &str) -> Vec<String> {
    log.lock().unwrap().iter().filter(|(n, ..)| *n == name).map(|(_, title, _)| title.clone()).collect()
}

/// Waits (at most thirty seconds) until `done`.
async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Each webhook is delivered on its own, as Pipedrive does: a subscription URL that answers 500
/// to every attempt, and one that never answers, delay neither each other nor a good one, which
/// receives every event while the others are still being retried (they used to share one
/// sequential loop: a deal reached the good receiver only after the others' retries).
///
/// The retries wait ten seconds and more, and each attempt at the silent URL ten seconds, so the
/// good receiver must have everything before the failing one's first retry: the order of
/// arrival decides, by a wide margin, not the clock (the deadline only bounds the wait).
///
/// `addWebhook` (v1) and `addDeal` (v2) with three subscription URLs.
#[tokio::test]
async fn each_webhook_is_delivered_independently() {
    let s = start_with(|c| c.webhook_retry_base_ms = 10_000).await;
    let log: Arrivals = Arc::default();
    let failing = logging_receiver("failing", 500, log.clone()).await;
    let (silent, _) = silent_receiver().await;
    let good = logging_receiver("good", 200, log.clone()).await;
    let admin = s.connect("deals:full admin").await;
    let token = admin["access_token"].as_str().unwrap();
    // The failing and silent webhooks are registered first, so a shared loop would reach them first.
    for (name, url) in [("Failing", &failing), ("Silent", &silent), ("Good", &good)] {
        let hook = json!({"subscription_url": url, "event_action": "*", "event_object": "deal", "name": name, "version": "2.0"});
        assert_eq!(s.api(Method::POST, "/api/v1/webhooks", token).json(&hook).send().await.unwrap().status(), 201);
    }
    for title in ["One", "Two", "Three"] {
        let r = s.api(Method::POST, "/api/v2/deals", token).json(&json!({"title": title})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    wait_for(|| titles_at(&log, "good").len() >= 3 && !titles_at(&log, "failing").is_empty()).await;
    assert_eq!(titles_at(&log, "good"), vec!["One", "Two", "Three"], "the good receiver got its events in order: {log:?}");
    let arrivals = log.lock().unwrap().clone();
    let last_good = arrivals.iter().rposition(|(name, ..)| *name == "good").unwrap();
    let failing_before: Vec<_> = arrivals[..last_good].iter().filter(|(name, ..)| *name == "failing").collect();
    assert!(
        failing_before.iter().all(|(_, title, attempt)| title == "One" && *attempt == 1),
        "the good receiver had everything before the failing one's first retry: {arrivals:?}"
    );
    let stats = s.pipedrive.webhook_stats.failed_attempts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(stats >= 1, "the failing receiver was tried");
    assert_eq!(s.pipedrive.webhook_stats.delivered.load(std::sync::atomic::Ordering::Relaxed), 3, "only the good receiver accepted");
    tokio::time::timeout(std::time::Duration::from_secs(5), s.running.stop()).await.expect("the sandbox stops within five seconds");
}

/// After a reset webhook ids start again: a webhook that takes the id of one from before is
/// delivered on its own, at its own URL, and what was queued for the old one is not sent (the
/// old webhook's worker, known by id alone, used to serve the new one: its events waited behind
/// the old URL's retries, and the old queue went on to the old URL).
///
/// `addWebhook` (v1), `addDeal` (v2) and `POST /_sandbox/reset`, with an old subscription URL that
/// never answers.
#[tokio::test]
async fn a_webhook_taking_an_old_id_after_a_reset_is_delivered_on_its_own() {
    let s = start_with(|c| c.webhook_retry_base_ms = 10_000).await;
    let (silent, accepted) = silent_receiver().await;
    let log: Arrivals = Arc::default();
    let good = logging_receiver("good", 200, log.clone()).await;
    let add = |token: String, name: &'static str, url: String| {
        let request = s
            .api(Method::POST, "/api/v1/webhooks", &token)
            .json(&json!({"subscription_url": url, "event_action": "*", "event_object": "deal", "name": name, "version": "2.0"}));
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["data"]["id"].as_u64().unwrap()
        }
    };
    let token = s.bearer("deals:full admin").await;
    let old = add(token.clone(), "Old", silent).await;
    for title in ["One", "Two"] {
        let r = s.api(Method::POST, "/api/v2/deals", &token).json(&json!({"title": title})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // "One" is being sent to the old URL (which holds it ten seconds), "Two" waits behind it.
    wait_for(|| accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1).await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "the old URL was tried");

    assert_eq!(s.http.post(format!("{}/_sandbox/reset", s.url)).send().await.unwrap().status(), 204);
    let token = s.bearer("deals:full admin").await;
    let new = add(token.clone(), "New", good).await;
    assert_eq!(new, old, "ids start again after a reset");
    let r = s.api(Method::POST, "/api/v2/deals", &token).json(&json!({"title": "After"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_for(|| !titles_at(&log, "good").is_empty()).await;
    assert_eq!(titles_at(&log, "good"), vec!["After"], "the new webhook got its own event, not the old queue: {log:?}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "nothing more went to the old URL");
    tokio::time::timeout(std::time::Duration::from_secs(5), s.running.stop()).await.expect("the sandbox stops within five seconds");
}

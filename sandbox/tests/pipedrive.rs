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
    let client = OAuthClient { client_id: "pd-app".into(), client_secret: "pd-secret".into(), redirect_uris: vec![REDIRECT.into()] };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (pipedrive, running) = start_pipedrive(PipedriveConfig::new(vec![client]), addr, None).await.unwrap();
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
        let r = self.token(&basic("pd-app", "pd-secret"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn api(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }
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
    let bad = s.token(&basic("pd-app", "wrong"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_client");
    let no_auth = s.http.post(format!("{}/oauth/token", s.url)).form(&[("grant_type", "authorization_code"), ("code", code.as_str())]).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    s.running.stop().await;
}

/// `getCurrentUser` (v1), `getPipelines`, `getStages` (v2), `getDealFields` (v1).
#[tokio::test]
async fn account_pipelines_stages_and_fields() {
    let s = start().await;
    let token = s.connect("deals:read").await["access_token"].as_str().unwrap().to_string();
    let me: Value = s.api(Method::GET, "/api/v1/users/me", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["success"], true);
    assert_eq!((me["data"]["company_id"].as_u64(), me["data"]["email"].as_str()), (Some(7_701_234), Some("dana@pipedrive-sandbox.example")));

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

    let r = s.api(Method::PATCH, &format!("/api/v2/deals/{id}"), &token).json(&json!({"stage_id": 23, "status": "won"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["data"]["stage_id"], 23);
    assert!(updated["data"]["won_time"].as_str().is_some());
    assert!(updated["data"]["stage_change_time"].as_str().is_some());

    let log: Value = s.api(Method::GET, &format!("/api/v1/deals/{id}/changelog"), &token).send().await.unwrap().json().await.unwrap();
    let fields: Vec<&str> = log["data"].as_array().unwrap().iter().map(|c| c["field_key"].as_str().unwrap()).collect();
    assert!(fields.contains(&"stage_id") && fields.contains(&"status"), "{fields:?}");

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
    let r = s.http.patch(format!("{}/_sandbox/deals/{edited}", s.url)).json(&json!({"fields": {"title": "Edited in Pipedrive"}})).send().await.unwrap();
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

    let by_pipeline: Value = s.api(Method::GET, "/api/v2/deals?pipeline_id=2&limit=500", &token).send().await.unwrap().json().await.unwrap();
    assert!(by_pipeline["data"].as_array().unwrap().iter().all(|d| d["pipeline_id"] == 2));
    let too_many = s.api(Method::GET, "/api/v2/deals?limit=501", &token).send().await.unwrap();
    assert_eq!(too_many.status(), 400);
    s.running.stop().await;
}

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
#[tokio::test]
async fn control_api_mints_tokens_for_registered_apps_only() {
    let s = start().await;
    let r = s.http.post(format!("{}/_sandbox/tokens", s.url)).json(&json!({"client_id": "pd-app", "scopes": ["deals:read"]})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.api(Method::GET, "/api/v2/deals", &token).send().await.unwrap().status(), 200);
    assert_eq!(s.api(Method::POST, "/api/v2/deals", &token).json(&json!({"title": "x"})).send().await.unwrap().status(), 403);
    let r = s.http.post(format!("{}/_sandbox/tokens", s.url)).json(&json!({"client_id": "stranger"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    s.running.stop().await;
}

//! The HubSpot sandbox over real HTTP, checked against HubSpot's OpenAPI specs (each test names the
//! operations it covers by their `operationId`).

use std::net::SocketAddr;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use sandbox::{start_hubspot, HubSpot, HubSpotConfig, OAuthClient, RunningSandbox};
use serde_json::{json, Value};
use std::sync::Arc;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/hubspot";
const SCOPES: &str = "crm.objects.deals.read crm.objects.deals.write crm.objects.contacts.read crm.schemas.deals.write";

struct Sandbox {
    url: String,
    hubspot: Arc<HubSpot>,
    running: RunningSandbox,
    http: reqwest::Client,
}

fn client() -> OAuthClient {
    OAuthClient { client_id: "app-1".into(), client_secret: "secret-1".into(), redirect_uris: vec![REDIRECT.into()] }
}

async fn start_with(state: Option<std::path::PathBuf>) -> Sandbox {
    start_configured(HubSpotConfig::new(vec![client()]), state).await
}

async fn start_configured(config: HubSpotConfig, state: Option<std::path::PathBuf>) -> Sandbox {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (hubspot, running) = start_hubspot(config, addr, state).await.unwrap();
    Sandbox { url: running.url(), hubspot, running, http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap() }
}

async fn start() -> Sandbox {
    start_with(None).await
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn query_value(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_string))
}

impl Sandbox {
    /// The user logs in on the authorization page and answers the consent page; returns where the
    /// browser is sent.
    async fn authorize(&self, extra: &[(&str, &str)], allow: bool) -> String {
        let mut params = vec![("client_id", "app-1"), ("redirect_uri", REDIRECT), ("scope", SCOPES), ("state", "st-42")];
        params.extend_from_slice(extra);
        let page = self.http.get(format!("{}/oauth/authorize", self.url)).query(&params).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Log in to HubSpot (Sandbox)"), "{html}");
        let mut form: Vec<(&str, &str)> = params.clone();
        form.push(("email", "admin@hubspot-sandbox.example"));
        form.push(("password", "sandbox"));
        let consent = self.http.post(format!("{}/oauth/authorize/login", self.url)).form(&form).send().await.unwrap();
        assert_eq!(consent.status(), 200);
        let html = consent.text().await.unwrap();
        assert!(html.contains("crm.objects.deals.write") && html.contains(">Allow<") && html.contains(">Deny<"), "{html}");
        let pending = hidden(&html, "pending");
        let decision = if allow { "allow" } else { "deny" };
        let r = self
            .http
            .post(format!("{}/oauth/authorize/decision", self.url))
            .form(&[("pending", pending.as_str()), ("decision", decision)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        r.headers()["location"].to_str().unwrap().to_string()
    }

    async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}/oauth/v1/token", self.url)).form(form).send().await.unwrap()
    }

    /// A fresh access token through the whole authorization-code flow.
    async fn connect(&self) -> (String, String) {
        let location = self.authorize(&[], true).await;
        let code = query_value(&location, "code").unwrap();
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", "app-1"),
                ("client_secret", "secret-1"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ])
            .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
    }

    fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    async fn create_deal(&self, token: &str, properties: Value) -> Value {
        let r =
            self.api(reqwest::Method::POST, "/crm/v3/objects/deals", token).json(&json!({"properties": properties})).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }
}

/// GET /oauth/authorize (the oauth2 authorizationUrl) and `post-/oauth/v1/token_create`,
/// `get-/oauth/v1/access-tokens/{token}_get`.
#[tokio::test]
async fn authorization_code_flow_issues_tokens_once() {
    let s = start().await;
    let location = s.authorize(&[], true).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_value(&location, "state").as_deref(), Some("st-42"));
    let code = query_value(&location, "code").unwrap();

    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "app-1"),
        ("client_secret", "secret-1"),
        ("redirect_uri", REDIRECT),
        ("code", code.as_str()),
    ];
    let r = s.token(&form).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    let access = body["access_token"].as_str().unwrap();

    // A code works once.
    let again = s.token(&form).await;
    assert_eq!(again.status(), 400);
    let err: Value = again.json().await.unwrap();
    assert_eq!((err["status"].as_str(), err["error"].as_str()), (Some("BAD_AUTH_CODE"), Some("invalid_grant")));
    assert!(err["correlationId"].as_str().is_some());

    let info: Value = s.http.get(format!("{}/oauth/v1/access-tokens/{access}", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["hub_id"], 24_681_357);
    assert_eq!(info["user"], "admin@hubspot-sandbox.example");
    let scopes: Vec<&str> = info["scopes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(scopes.contains(&"oauth") && scopes.contains(&"crm.objects.deals.write"), "{scopes:?}");
    assert!(info["expires_in"].as_i64().unwrap() > 1700);
    s.running.stop().await;
}

/// GET /oauth/authorize (the oauth2 authorizationUrl: Deny, a wrong login, an unregistered
/// redirect URI) and `post-/oauth/v1/token_create` with a wrong client secret.
#[tokio::test]
async fn deny_wrong_login_wrong_redirect_and_wrong_secret_are_refused() {
    let s = start().await;
    let location = s.authorize(&[], false).await;
    assert_eq!(query_value(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_value(&location, "state").as_deref(), Some("st-42"));
    assert!(query_value(&location, "code").is_none());

    let bad_login = s
        .http
        .post(format!("{}/oauth/authorize/login", s.url))
        .form(&[("client_id", "app-1"), ("redirect_uri", REDIRECT), ("email", "admin@hubspot-sandbox.example"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_login.status(), 401);
    assert!(bad_login.text().await.unwrap().contains("don't match the sandbox account"));

    // An unregistered redirect URI is answered on the page, never redirected to.
    let r = s
        .http
        .get(format!("{}/oauth/authorize", s.url))
        .query(&[("client_id", "app-1"), ("redirect_uri", "https://evil.example/cb"), ("scope", SCOPES)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("does not match the app's registered redirect URLs"));

    let code = query_value(&s.authorize(&[], true).await, "code").unwrap();
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app-1"),
            ("client_secret", "wrong"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    s.running.stop().await;
}

/// `post-/oauth/v1/token_create` (authorization_code grant) needs the `redirect_uri` of the
/// authorization request: without it the request is refused (and the code stays usable), with
/// another one the code is refused; HubSpot names both `BAD_REDIRECT_URI`.
#[tokio::test]
async fn the_code_exchange_needs_the_same_redirect_uri() {
    let s = start().await;
    let code = query_value(&s.authorize(&[], true).await, "code").unwrap();
    let base = [("grant_type", "authorization_code"), ("client_id", "app-1"), ("client_secret", "secret-1"), ("code", code.as_str())];
    let r = s.token(&base).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!((err["status"].as_str(), err["error"].as_str()), (Some("BAD_REDIRECT_URI"), Some("invalid_request")), "{err}");
    assert!(err["message"].as_str().unwrap().contains("redirect_uri") && err["correlationId"].is_string());

    let mut other = base.to_vec();
    other.push(("redirect_uri", "http://127.0.0.1:9/somewhere-else"));
    let r = s.token(&other).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!((err["status"].as_str(), err["error"].as_str()), (Some("BAD_REDIRECT_URI"), Some("invalid_grant")), "{err}");

    let code = query_value(&s.authorize(&[], true).await, "code").unwrap();
    let r = s.token(&[("grant_type", "authorization_code"), ("client_id", "app-1"), ("client_secret", "secret-1"), ("code", &code)]).await;
    assert_eq!(r.status(), 400);
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app-1"),
            ("client_secret", "secret-1"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert_eq!(r.status(), 200, "the refused request left the code usable");
    s.running.stop().await;
}

/// PKCE (RFC 7636, S256) on `post-/oauth/v1/token_create`.
#[tokio::test]
async fn pkce_verifier_must_match_the_challenge() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let s = start().await;
    let verifier = "a-long-random-verifier-string-with-enough-entropy-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];

    let code = query_value(&s.authorize(&pkce, true).await, "code").unwrap();
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", "app-1"),
        ("client_secret", "secret-1"),
        ("redirect_uri", REDIRECT),
        ("code", code.as_str()),
    ];
    let mut wrong = base.to_vec();
    wrong.push(("code_verifier", "not-the-verifier"));
    let r = s.token(&wrong).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let code = query_value(&s.authorize(&pkce, true).await, "code").unwrap();
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app-1"),
            ("client_secret", "secret-1"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
            ("code_verifier", verifier),
        ])
        .await;
    assert_eq!(r.status(), 200);
    s.running.stop().await;
}

/// `post-/oauth/v1/token_create` (refresh_token grant), `get-/oauth/v1/refresh-tokens/{token}_get`,
/// `delete-/oauth/v1/refresh-tokens/{token}_archive`.
#[tokio::test]
async fn refresh_tokens_refresh_until_revoked() {
    let s = start().await;
    let (access, refresh) = s.connect().await;
    let form =
        [("grant_type", "refresh_token"), ("client_id", "app-1"), ("client_secret", "secret-1"), ("refresh_token", refresh.as_str())];
    let r = s.token(&form).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["access_token"].as_str().unwrap(), access);
    assert_eq!(body["refresh_token"].as_str().unwrap(), refresh, "HubSpot keeps the refresh token");

    let info: Value = s.http.get(format!("{}/oauth/v1/refresh-tokens/{refresh}", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["client_id"], "app-1");

    let revoked = s.http.delete(format!("{}/oauth/v1/refresh-tokens/{refresh}", s.url)).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    let r = s.token(&form).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!((err["status"].as_str(), err["error"].as_str()), (Some("BAD_REFRESH_TOKEN"), Some("invalid_grant")));
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3_create`, `get-/crm/v3/objects/0-3/{dealId}_getById`,
/// `patch-/crm/v3/objects/0-3/{dealId}_update`, `delete-/crm/v3/objects/0-3/{dealId}_archive`.
#[tokio::test]
async fn deals_are_created_read_updated_and_archived() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let created = s
        .create_deal(&token, json!({"dealname": "Acme renewal", "amount": "1500", "pipeline": "default", "dealstage": "qualifiedtobuy"}))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["properties"]["dealname"], "Acme renewal");
    assert_eq!(created["properties"]["hs_object_id"], id.as_str());
    assert!(created["properties"]["createdate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["archived"], false);

    // By name and by type id; unset requested properties come back as null.
    let got: Value = s
        .api(Method::GET, &format!("/crm/v3/objects/0-3/{id}?properties=dealname,closedate"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["properties"]["dealname"], "Acme renewal");
    assert_eq!(got["properties"]["closedate"], Value::Null);
    assert!(got["properties"].get("amount").is_none(), "only what was asked for");

    let r = s
        .api(Method::PATCH, &format!("/crm/v3/objects/deals/{id}"), &token)
        .json(&json!({"properties": {"amount": 2000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["properties"]["amount"], "2000", "values are strings");
    let history: Value = s
        .api(Method::GET, &format!("/crm/v3/objects/deals/{id}?propertiesWithHistory=amount"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let amounts: Vec<&str> =
        history["propertiesWithHistory"]["amount"].as_array().unwrap().iter().map(|h| h["value"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["2000", "1500"], "newest first");

    let r = s.api(Method::DELETE, &format!("/crm/v3/objects/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = s.api(Method::GET, &format!("/crm/v3/objects/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["category"], "OBJECT_NOT_FOUND");
    let archived: Value =
        s.api(Method::GET, &format!("/crm/v3/objects/deals/{id}?archived=true"), &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(archived["archived"], true);
    assert!(archived["archivedAt"].as_str().is_some());
    s.running.stop().await;
}

/// `get-/crm/v3/objects/0-3_getPage`: `limit` (≤ 100) and the `after` cursor.
#[tokio::test]
async fn deal_lists_page_with_after() {
    use reqwest::Method;
    let s = start().await;
    sandbox::hubspot::seed::generate(&mut s.hubspot.write(), 25, 0, 0, 7, sandbox::time::now_ms());
    let (token, _) = s.connect().await;
    let mut seen = Vec::new();
    let mut path = "/crm/v3/objects/deals?limit=10".to_string();
    loop {
        let page: Value = s.api(Method::GET, &path, &token).send().await.unwrap().json().await.unwrap();
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 10);
        seen.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page["paging"]["next"]["after"].as_str() {
            Some(after) => path = format!("/crm/v3/objects/deals?limit=10&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 25, "no record twice");
    let r = s.api(Method::GET, "/crm/v3/objects/deals?limit=101", &token).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["category"], "VALIDATION_ERROR");
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3_create`: unknown, mistyped, read-only properties and a stage of another
/// pipeline are 400 `VALIDATION_ERROR`, as is a body that is not JSON; nothing is stored.
#[tokio::test]
async fn invalid_properties_and_stages_are_refused_as_hubspot_does() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let cases = [
        (json!({"dealname": "x", "no_such_property": "1"}), "PROPERTY_DOESNT_EXIST"),
        (json!({"dealname": "x", "amount": "lots"}), "INVALID_DECIMAL"),
        (json!({"dealname": "x", "pipeline": "default", "dealstage": "1294825"}), "INVALID_OPTION"),
        (json!({"dealname": "x", "hs_object_id": "5"}), "READ_ONLY_VALUE"),
    ];
    for (properties, code) in cases {
        let r = s.api(Method::POST, "/crm/v3/objects/deals", &token).json(&json!({"properties": properties})).send().await.unwrap();
        assert_eq!(r.status(), 400, "{properties}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert!(body["message"].as_str().unwrap().contains(code), "{body}");
    }
    let r = s
        .api(Method::POST, "/crm/v3/objects/deals", &token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let live: Value = s.http.get(format!("{}/_sandbox/summary", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(live["records"]["deals"]["live"], 0, "nothing was stored");
    s.running.stop().await;
}

/// `get-/crm/v3/objects/0-3_getPage` and `get-/crm/v3/objects/companies_getPage` without a token,
/// with an unknown or expired one (401) and without the scope (403 `MISSING_SCOPES`).
#[tokio::test]
async fn missing_unknown_and_expired_tokens_and_scopes() {
    use reqwest::Method;
    let s = start().await;
    let r = s.http.get(format!("{}/crm/v3/objects/deals", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["category"], "INVALID_AUTHENTICATION");
    let r = s.api(Method::GET, "/crm/v3/objects/deals", "made-up").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let (token, _) = s.connect().await;
    // The grant has no companies scope.
    let r = s.api(Method::GET, "/crm/v3/objects/companies", &token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["category"], "MISSING_SCOPES");
    assert_eq!(body["errors"][0]["context"]["requiredGranularScopes"][0], "crm.objects.companies.read");

    s.http.post(format!("{}/_sandbox/expire-tokens", s.url)).send().await.unwrap();
    let r = s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["category"], "EXPIRED_AUTHENTICATION");
    s.running.stop().await;
}

/// `get-/crm/v3/objects/0-3_getPage` under the ten-second limit: `X-HubSpot-RateLimit-*` headers,
/// then the 429 (more in `hubspot_limits.rs`).
#[tokio::test]
async fn the_ten_second_limit_answers_429_with_hubspots_body_and_headers() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let r = s.http.put(format!("{}/_sandbox/rate-limit", s.url)).json(&json!({"limit": 3})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for remaining in [2, 1, 0] {
        let r = s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "3");
        assert_eq!(r.headers()["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let r = s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["errorType"].as_str(), body["policyName"].as_str()), (Some("RATE_LIMIT"), Some("TEN_SECONDLY_ROLLING")));
    s.running.stop().await;
}

/// `get-/crm/v3/objects/0-3_getPage` and `post-/crm/v3/objects/0-3/batch/create_create` with faults
/// injected through `PUT /_sandbox/faults`: 503, a dropped connection, a scoped 400.
#[tokio::test]
async fn injected_faults_answer_errors_or_drop_the_connection() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let set = |faults: Value| s.http.put(format!("{}/_sandbox/faults", s.url)).json(&faults).send();
    set(json!({"rate_503": 1.0})).await.unwrap();
    assert_eq!(s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap().status(), 503);
    set(json!({"rate_drop": 1.0})).await.unwrap();
    let dropped = async { s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await?.bytes().await };
    assert!(dropped.await.is_err(), "the connection must fail");
    // Scoped faults: only batch creates answer 400 as HubSpot's validation error; reads pass.
    set(json!({"rate_400": 1.0, "only_method": "POST", "only_path": "/batch/create"})).await.unwrap();
    assert_eq!(s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap().status(), 200);
    let refused = s
        .api(Method::POST, "/crm/v3/objects/deals/batch/create", &token)
        .json(&json!({"inputs": [{"properties": {"dealname": "Refused"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["category"], "VALIDATION_ERROR");
    set(json!({})).await.unwrap();
    assert_eq!(s.api(Method::GET, "/crm/v3/objects/deals", &token).send().await.unwrap().status(), 200);
    s.running.stop().await;
}

/// Edits "as a user of HubSpot" at a chosen time, seen through `propertiesWithHistory` of
/// `get-/crm/v3/objects/0-3/{dealId}_getById`.
#[tokio::test]
async fn user_edits_carry_their_timestamp() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let id = s.create_deal(&token, json!({"dealname": "Globex"})).await["id"].as_str().unwrap().to_string();
    let at = sandbox::time::now_ms() + 60_000;
    let r = s
        .http
        .patch(format!("{}/_sandbox/objects/deals/{id}", s.url))
        .json(&json!({"properties": {"dealname": "Globex (edited)"}, "timestamp": at}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got: Value = s
        .api(Method::GET, &format!("/crm/v3/objects/deals/{id}?propertiesWithHistory=dealname"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["properties"]["hs_lastmodifieddate"], sandbox::time::iso_ms(at).as_str());
    let newest = &got["propertiesWithHistory"]["dealname"][0];
    assert_eq!((newest["value"].as_str(), newest["sourceType"].as_str()), (Some("Globex (edited)"), Some("CRM_UI")));
    s.running.stop().await;
}

/// `get-/crm/v3/pipelines/{objectType}_getAll`, `get-/crm/v3/properties/{objectType}_getAll`.
#[tokio::test]
async fn pipelines_and_properties_describe_the_portal() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let pipelines: Value = s.api(Method::GET, "/crm/v3/pipelines/deals", &token).send().await.unwrap().json().await.unwrap();
    let sales = &pipelines["results"][0];
    assert_eq!(sales["label"], "Sales Pipeline");
    let won = sales["stages"].as_array().unwrap().iter().find(|st| st["id"] == "closedwon").unwrap();
    assert_eq!((won["metadata"]["probability"].as_str(), won["metadata"]["isClosed"].as_str()), (Some("1.0"), Some("true")));
    assert_eq!(pipelines["results"][1]["label"], "Partner Deals");

    let props: Value = s.api(Method::GET, "/crm/v3/properties/deals", &token).send().await.unwrap().json().await.unwrap();
    let stage = props["results"].as_array().unwrap().iter().find(|p| p["name"] == "dealstage").unwrap();
    assert_eq!(stage["type"], "enumeration");
    assert!(stage["options"].as_array().unwrap().iter().any(|o| o["value"] == "closedwon"));
    s.running.stop().await;
}

/// `post-/crm/v3/pipelines/{objectType}_create`, `..._update`, `..._archive` and
/// `.../stages_create`: a pipeline for synced deals, with probabilities and closed stages.
#[tokio::test]
async fn pipelines_are_created_renamed_and_archived() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let body = json!({"label": "Synced from Pipedrive", "displayOrder": 5, "stages": [
        {"label": "Qualified", "displayOrder": 0, "metadata": {"probability": "0.1"}},
        {"label": "Won", "displayOrder": 1, "metadata": {"probability": "1.0", "isClosed": "true"}},
    ]});
    let created = s.api(Method::POST, "/crm/v3/pipelines/deals", &token).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["stages"][1]["metadata"]["isClosed"], "true");
    let again = s.api(Method::POST, "/crm/v3/pipelines/deals", &token).json(&body).send().await.unwrap();
    assert_eq!(again.status(), 409, "labels are unique");
    let missing = json!({"label": "Bad", "displayOrder": 1, "stages": [{"label": "X", "displayOrder": 0, "metadata": {}}]});
    let r = s.api(Method::POST, "/crm/v3/pipelines/deals", &token).json(&missing).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("probability"));

    let stage = s
        .api(Method::POST, &format!("/crm/v3/pipelines/deals/{id}/stages"), &token)
        .json(&json!({"label": "Lost", "displayOrder": 2, "metadata": {"probability": "0.0", "isClosed": "true"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stage.status(), 201);
    let renamed: Value = s
        .api(Method::PATCH, &format!("/crm/v3/pipelines/deals/{id}"), &token)
        .json(&json!({"label": "Pipedrive deals"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((renamed["label"].as_str(), renamed["stages"].as_array().unwrap().len()), (Some("Pipedrive deals"), 3));
    let gone = s.api(Method::DELETE, &format!("/crm/v3/pipelines/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(gone.status(), 204);
    let list: Value = s.api(Method::GET, "/crm/v3/pipelines/deals", &token).send().await.unwrap().json().await.unwrap();
    assert!(list["results"].as_array().unwrap().iter().all(|p| p["id"] != id.as_str()));
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3_create` before and `get-/crm/v3/objects/0-3/{dealId}_getById` after a
/// restart from the snapshot file, with the same token.
#[tokio::test]
async fn the_portal_and_its_tokens_survive_a_restart() {
    use reqwest::Method;
    let dir = std::env::temp_dir().join(format!("sandbox-test-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("hubspot.json");
    let s = start_with(Some(file.clone())).await;
    let (token, _) = s.connect().await;
    let id = s.create_deal(&token, json!({"dealname": "Survivor"})).await["id"].as_str().unwrap().to_string();
    s.running.stop().await;

    let s = start_with(Some(file)).await;
    let got = s.api(Method::GET, &format!("/crm/v3/objects/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(got.status(), 200, "the token and the deal were kept");
    assert_eq!(got.json::<Value>().await.unwrap()["properties"]["dealname"], "Survivor");
    s.running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `post-/crm/v3/objects/0-3/search_doSearch`: filter groups, operators, sorts, paging, the cap.
#[tokio::test]
async fn search_filters_sorts_and_pages() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    // Many searches in a row: lift the limits (their own test is below).
    s.http.put(format!("{}/_sandbox/rate-limit", s.url)).json(&json!({"limit": 0})).send().await.unwrap();
    let t0 = sandbox::time::now_ms() - 3_600_000;
    for (i, (name, amount, stage)) in
        [("Alpha", 100, "closedwon"), ("Beta", 250, "qualifiedtobuy"), ("Gamma", 900, "closedwon"), ("Delta", 50, "contractsent")]
            .iter()
            .enumerate()
    {
        let r = s
            .http
            .post(format!("{}/_sandbox/objects/deals", s.url))
            .json(&json!({"properties": {"dealname": name, "amount": amount.to_string(), "dealstage": stage}, "timestamp": t0 + i as i64 * 60_000}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let search = |body: Value| s.api(Method::POST, "/crm/v3/objects/deals/search", &token).json(&body).send();

    // (stage = closedwon AND amount > 500) OR dealname = beta
    let r = search(json!({
        "filterGroups": [
            {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}, {"propertyName": "amount", "operator": "GT", "value": "500"}]},
            {"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "beta"}]}
        ],
        "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
        "properties": ["dealname", "amount"]
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["total"], 2);
    let names: Vec<&str> = body["results"].as_array().unwrap().iter().map(|d| d["properties"]["dealname"].as_str().unwrap()).collect();
    assert_eq!(names, ["Gamma", "Beta"]);

    // Incremental reads: modified since a time, oldest first, two at a time.
    let since = (t0 + 30_000).to_string();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut body = json!({
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["dealname"], "limit": 2
        });
        if let Some(a) = &after {
            body["after"] = json!(a);
        }
        let page: Value = search(body).await.unwrap().json().await.unwrap();
        assert_eq!(page["total"], 3);
        seen.extend(page["results"].as_array().unwrap().iter().map(|d| d["properties"]["dealname"].as_str().unwrap().to_string()));
        match page["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["Beta", "Gamma", "Delta"]);

    for (operator, extra, expected) in [
        ("IN", json!({"values": ["closedwon", "contractsent"]}), 3),
        ("NOT_IN", json!({"values": ["closedwon"]}), 2),
        ("BETWEEN", json!({"value": "100", "highValue": "250"}), 2),
        ("HAS_PROPERTY", json!({}), 4),
        ("NOT_HAS_PROPERTY", json!({}), 0),
    ] {
        let property = if operator == "BETWEEN" { "amount" } else { "dealstage" };
        let mut filter = json!({"propertyName": property, "operator": operator});
        filter.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let body: Value = search(json!({"filterGroups": [{"filters": [filter]}]})).await.unwrap().json().await.unwrap();
        assert_eq!(body["total"], expected, "{operator}");
    }
    let tokens: Value =
        search(json!({"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "gam*"}]}]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tokens["total"], 1);

    assert_eq!(search(json!({"limit": 201})).await.unwrap().status(), 400);
    assert_eq!(search(json!({"after": "9990", "limit": 20})).await.unwrap().status(), 400, "the 10,000-result cap");
    let six: Vec<Value> = (0..6).map(|_| json!({"filters": [{"propertyName": "dealname", "operator": "HAS_PROPERTY"}]})).collect();
    assert_eq!(search(json!({"filterGroups": six})).await.unwrap().status(), 400);
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3/search_doSearch`: its own limit of five requests a second (`SECONDLY`).
#[tokio::test]
async fn search_allows_five_requests_a_second() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = s.api(Method::POST, "/crm/v3/objects/deals/search", &token).json(&json!({})).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[200; 5]);
    assert_eq!(statuses[5], 429);
    s.running.stop().await;
}

/// The batch endpoints (`..._batch/read_read`, `_create_create`, `_update_update`, `_upsert_upsert`,
/// `_archive_archive`) and `post-/crm/v3/properties/{objectType}_create`.
#[tokio::test]
async fn batches_report_per_item_errors_and_upsert_on_a_unique_property() {
    use reqwest::Method;
    let s = start().await;
    let (token, _) = s.connect().await;
    let call = |path: &str, body: Value| s.api(Method::POST, path, &token).json(&body).send();

    let r = call(
        "/crm/v3/objects/deals/batch/create",
        json!({"inputs": [{"properties": {"dealname": "One"}}, {"properties": {"dealname": "Two", "amount": "oops"}}, {"properties": {"dealname": "Three"}}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["results"].as_array().unwrap().len(), body["numErrors"].as_u64()), (2, Some(1)));
    assert_eq!(body["status"], "COMPLETE");
    let ids: Vec<String> = body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();

    let r = call("/crm/v3/objects/deals/batch/read", json!({"properties": ["dealname"], "inputs": [{"id": ids[0]}, {"id": "424242"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["properties"]["dealname"], "One");
    assert_eq!(body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(body["errors"][0]["context"]["ids"][0], "424242");

    let r = call("/crm/v3/objects/deals/batch/update", json!({"inputs": [{"id": ids[1], "properties": {"amount": "75"}}]})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["results"][0]["properties"]["amount"], "75");

    let too_many: Vec<Value> = (0..101).map(|i| json!({"properties": {"dealname": format!("d{i}")}})).collect();
    assert_eq!(call("/crm/v3/objects/deals/batch/create", json!({"inputs": too_many})).await.unwrap().status(), 400);

    // A unique property of our own makes upserts idempotent.
    let r = call(
        "/crm/v3/properties/deals",
        json!({"name": "tandem_id", "label": "Tandem ID", "type": "string", "fieldType": "text", "groupName": "dealinformation", "hasUniqueValue": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let again = call(
        "/crm/v3/properties/deals",
        json!({"name": "tandem_id", "label": "Tandem ID", "type": "string", "fieldType": "text", "groupName": "dealinformation"}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 409);
    let upsert = json!({"inputs": [{"idProperty": "tandem_id", "id": "t-1", "properties": {"dealname": "Upserted"}}]});
    let first: Value = call("/crm/v3/objects/deals/batch/upsert", upsert.clone()).await.unwrap().json().await.unwrap();
    let second: Value = call("/crm/v3/objects/deals/batch/upsert", upsert).await.unwrap().json().await.unwrap();
    assert_eq!((first["results"][0]["new"].as_bool(), second["results"][0]["new"].as_bool()), (Some(true), Some(false)));
    assert_eq!(first["results"][0]["id"], second["results"][0]["id"]);
    let not_unique =
        call("/crm/v3/objects/deals/batch/upsert", json!({"inputs": [{"idProperty": "dealname", "id": "x", "properties": {}}]}))
            .await
            .unwrap();
    assert_eq!(not_unique.status(), 400);

    let r = call("/crm/v3/objects/deals/batch/archive", json!({"inputs": [{"id": ids[0]}]})).await.unwrap();
    assert_eq!(r.status(), 204);
    let summary: Value = s.http.get(format!("{}/_sandbox/summary", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!((summary["records"]["deals"]["live"].as_u64(), summary["records"]["deals"]["archived"].as_u64()), (Some(2), Some(1)));
    s.running.stop().await;
}

/// Associations v4: `..._createDefault` (single and batch), `..._getPage`, `..._archive`, batch read.
#[tokio::test]
async fn default_associations_link_deals_contacts_and_companies() {
    use reqwest::Method;
    let s = start().await;
    let r: Value = s
        .http
        .post(format!("{}/_sandbox/tokens", s.url))
        .json(&json!({"client_id": "app-1", "scopes": ["crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.contacts.read", "crm.objects.contacts.write"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap().to_string();
    let deal = s.create_deal(&token, json!({"dealname": "Linked"})).await["id"].as_str().unwrap().to_string();
    let mut contacts = Vec::new();
    for email in ["a@x.example", "b@x.example"] {
        let r =
            s.api(Method::POST, "/crm/v3/objects/contacts", &token).json(&json!({"properties": {"email": email}})).send().await.unwrap();
        contacts.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }

    let r = s
        .api(Method::PUT, &format!("/crm/v4/objects/deals/{deal}/associations/default/contacts/{}", contacts[0]), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["associationSpec"]["associationTypeId"], 3);
    let r = s
        .api(Method::POST, "/crm/v4/associations/contacts/deals/batch/associate/default", &token)
        .json(&json!({"inputs": [{"from": {"id": contacts[1]}, "to": {"id": deal}}, {"from": {"id": "999999"}, "to": {"id": deal}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207, "the missing contact fails alone");

    // Seen from the deal and from a contact.
    let listed: Value = s
        .api(Method::GET, &format!("/crm/v4/objects/deals/{deal}/associations/contacts"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = listed["results"].as_array().unwrap().iter().map(|r| r["toObjectId"].to_string()).collect();
    assert_eq!(ids, contacts);
    let back: Value = s
        .api(Method::GET, &format!("/crm/v4/objects/contacts/{}/associations/deals", contacts[0]), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["results"][0]["associationTypes"][0]["typeId"], 4);

    let r =
        s.api(Method::DELETE, &format!("/crm/v4/objects/deals/{deal}/associations/contacts/{}", contacts[0]), &token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let read: Value = s
        .api(Method::POST, "/crm/v4/associations/deals/contacts/batch/read", &token)
        .json(&json!({"inputs": [{"id": deal}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["results"][0]["to"].as_array().unwrap().len(), 1);
    assert_eq!(read["results"][0]["to"][0]["toObjectId"].to_string(), contacts[1]);
    s.running.stop().await;
}

/// A local target URL that records what HubSpot delivers, failing the first `fail_first` requests.
struct Receiver {
    url: String,
    got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    use axum::routing::post;
    let got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (store, count) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hooks/hubspot",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (store, count) = (store.clone(), count.clone());
            async move {
                if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                store.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

/// `put-/webhooks/v3/{appId}/settings_configure`, `post-/webhooks/v3/{appId}/subscriptions_create`,
/// `get-/webhooks/v3/{appId}/subscriptions_getAll`, `patch-..._update`, `delete-..._archive`, and
/// delivery: batched events, signed (v3), retried after a failure.
#[tokio::test]
async fn webhooks_deliver_signed_batches_and_retry() {
    use reqwest::Method;
    let mut config = HubSpotConfig::new(vec![client()]);
    config.webhook_retry_base_ms = 50;
    let s = start_configured(config, None).await;
    let target = receiver(1).await;
    let key = "hapikey=tandem-sandbox-developer-key";
    let app = "/webhooks/v3/1234567";

    let r = s
        .http
        .put(format!("{}{app}/settings", s.url))
        .json(&json!({"targetUrl": target.url, "throttling": {"maxConcurrentRequests": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the developer key is required");
    let r = s
        .http
        .put(format!("{}{app}/settings?{key}", s.url))
        .json(&json!({"targetUrl": target.url, "throttling": {"maxConcurrentRequests": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (event, property) in [("deal.creation", None), ("deal.propertyChange", Some("dealname")), ("deal.deletion", None)] {
        let mut body = json!({"eventType": event, "active": true});
        if let Some(p) = property {
            body["propertyName"] = json!(p);
        }
        let r = s.http.post(format!("{}{app}/subscriptions?{key}", s.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{event}");
    }
    let bad =
        s.http.post(format!("{}{app}/subscriptions?{key}", s.url)).json(&json!({"eventType": "deal.propertyChange"})).send().await.unwrap();
    assert_eq!(bad.status(), 400, "propertyChange needs a propertyName");
    let list: Value = s.http.get(format!("{}{app}/subscriptions?{key}", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["results"].as_array().unwrap().len(), 3);

    let (token, _) = s.connect().await;
    let id = s.create_deal(&token, json!({"dealname": "Hooked", "amount": "10"})).await["id"].as_str().unwrap().to_string();
    let r = s
        .api(Method::PATCH, &format!("/crm/v3/objects/deals/{id}"), &token)
        .json(&json!({"properties": {"dealname": "Renamed", "amount": "20"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.api(Method::DELETE, &format!("/crm/v3/objects/deals/{id}"), &token).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // Wait (bounded) for the three events; the first attempt was refused and retried.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events: Vec<Value> = loop {
        let all: Vec<Value> =
            target.got.lock().unwrap().iter().flat_map(|(_, body)| serde_json::from_str::<Vec<Value>>(body).unwrap()).collect();
        if all.len() >= 3 || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // HubSpot does not promise events in order (a retried batch may come after a later one):
    // they are put back in order by their ids.
    let mut events = events;
    events.sort_by_key(|e| e["eventId"].as_u64());
    let kinds: Vec<&str> = events.iter().map(|e| e["subscriptionType"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["deal.creation", "deal.propertyChange", "deal.deletion"], "{events:?}");
    assert_eq!(events[1]["propertyName"], "dealname", "amount has no subscription");
    assert_eq!(events[1]["propertyValue"], "Renamed");
    assert!(events.iter().all(|e| e["objectId"].as_u64().map(|n| n.to_string()).as_deref() == Some(id.as_str())));
    assert!(events.iter().all(|e| e["portalId"] == 24_681_357 && e["appId"] == 1_234_567));
    assert!(events.iter().any(|e| e["attemptNumber"] == 1), "the refused batch came again: {events:?}");

    // The signature: base64(HMAC-SHA256(client secret, method + URI + body + timestamp)).
    {
        let got = target.got.lock().unwrap();
        let (headers, body) = &got[0];
        let timestamp = headers["x-hubspot-request-timestamp"].to_str().unwrap();
        let expected = sandbox::hubspot::webhooks::signature_v3("secret-1", "POST", &target.url, body, timestamp);
        assert_eq!(headers["x-hubspot-signature-v3"].to_str().unwrap(), expected);
    }
    let stats: Value = s.http.get(format!("{}/_sandbox/webhooks", s.url)).send().await.unwrap().json().await.unwrap();
    assert!(stats["failed_attempts"].as_u64().unwrap() >= 1);

    // Pausing the subscriptions stops delivery.
    for sub in list["results"].as_array().unwrap() {
        let r = s
            .http
            .patch(format!("{}{app}/subscriptions/{}?{key}", s.url, sub["id"].as_str().unwrap()))
            .json(&json!({"active": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    s.create_deal(&token, json!({"dealname": "Quiet"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let delivered: usize = target.got.lock().unwrap().iter().map(|(_, b)| serde_json::from_str::<Vec<Value>>(b).unwrap().len()).sum();
    assert_eq!(delivered, 3);
    s.running.stop().await;
}

/// Stopping the sandbox while a batch for an unreachable target URL is being retried returns
/// promptly (it used to wait forever: the stop signal, once seen, never woke the next wait).
///
/// `put-/webhooks/v3/{appId}/settings_configure`, `post-/webhooks/v3/{appId}/subscriptions_create`
/// and `post-/crm/v3/objects/0-3_create` with an unreachable target URL.
#[tokio::test]
async fn stopping_during_webhook_retries_returns_promptly() {
    let s = start_configured(HubSpotConfig::new(vec![client()]), None).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let key = "hapikey=tandem-sandbox-developer-key";
    let app = "/webhooks/v3/1234567";
    let r = s
        .http
        .put(format!("{}{app}/settings?{key}", s.url))
        .json(&json!({"targetUrl": format!("http://{dead}/hooks"), "throttling": {"maxConcurrentRequests": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .post(format!("{}{app}/subscriptions?{key}", s.url))
        .json(&json!({"eventType": "deal.creation", "active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (token, _) = s.connect().await;
    for name in ["One", "Two"] {
        s.create_deal(&token, json!({"dealname": name})).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), s.running.stop()).await.expect("the sandbox stops within five seconds");
}

/// A batch whose delivery failed is retried on its own: a later batch reaches the target before
/// the failed one's retry (they used to be delivered one after another, so every later event
/// waited for the failed batch's retries, a second and more each). The retry waits ten seconds,
/// so the order is decided by a wide margin even on a busy machine.
///
/// `put-/webhooks/v3/{appId}/settings_configure`, `post-/webhooks/v3/{appId}/subscriptions_create`
/// and `post-/crm/v3/objects/0-3_create`, with a target that answers 500 to its first request.
#[tokio::test]
async fn a_failing_batch_delays_only_itself() {
    use axum::routing::post;
    let mut config = HubSpotConfig::new(vec![client()]);
    config.webhook_retry_base_ms = 10_000;
    let s = start_configured(config, None).await;
    // Every request: its status and the deal ids it carried.
    type Seen = Vec<(u16, Vec<u64>)>;
    let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hooks/hubspot",
        post(move |body: String| {
            let store = store.clone();
            async move {
                let ids: Vec<u64> =
                    serde_json::from_str::<Vec<Value>>(&body).unwrap().iter().filter_map(|e| e["objectId"].as_u64()).collect();
                let mut seen = store.lock().unwrap();
                let status = if seen.is_empty() { 500 } else { 204 };
                seen.push((status, ids));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let key = "hapikey=tandem-sandbox-developer-key";
    let app = "/webhooks/v3/1234567";
    let settings = json!({"targetUrl": target, "throttling": {"maxConcurrentRequests": 10}});
    assert_eq!(s.http.put(format!("{}{app}/settings?{key}", s.url)).json(&settings).send().await.unwrap().status(), 200);
    let subscription = json!({"eventType": "deal.creation", "active": true});
    assert_eq!(s.http.post(format!("{}{app}/subscriptions?{key}", s.url)).json(&subscription).send().await.unwrap().status(), 201);
    let (token, _) = s.connect().await;
    let until = |n: usize| {
        let seen = seen.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while seen.lock().unwrap().len() < n && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    let first: u64 = s.create_deal(&token, json!({"dealname": "First"})).await["id"].as_str().unwrap().parse().unwrap();
    until(1).await;
    // The first batch was refused; its retry waits ten seconds, while the second goes at once.
    let second: u64 = s.create_deal(&token, json!({"dealname": "Second"})).await["id"].as_str().unwrap().parse().unwrap();
    until(3).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(500, vec![first]), (204, vec![second]), (204, vec![first])], "the second batch went ahead of the retry");
    s.running.stop().await;
}

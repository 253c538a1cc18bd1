//! A Zoho CRM sandbox on port 0 and the calls the tests make to it over HTTP, as Zoho's clients
//! make them (`Authorization: Zoho-oauthtoken …`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::Method;
use sandbox::walk::{consent, Decision};
use sandbox::{start_zoho, OAuthClient, RunningSandbox, Zoho, ZohoConfig};
use serde_json::{json, Value};

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/zoho";
pub const CLIENT_ID: &str = "1000.ZOHOSANDBOXAPP";
pub const CLIENT_SECRET: &str = "zoho-app-secret";
pub const ALL_SCOPES: &[&str] =
    &["ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.users.READ", "ZohoCRM.org.READ", "ZohoCRM.notifications.ALL"];

pub struct Sandbox {
    pub url: String,
    pub zoho: Arc<Zoho>,
    pub running: RunningSandbox,
    pub http: reqwest::Client,
}

/// What a call answered.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

pub fn client() -> OAuthClient {
    OAuthClient { client_id: CLIENT_ID.into(), client_secret: CLIENT_SECRET.into(), redirect_uris: vec![REDIRECT.into()] }
}

pub async fn start() -> Sandbox {
    start_with(|_| {}, None).await
}

pub async fn start_with(adjust: impl FnOnce(&mut ZohoConfig), state: Option<PathBuf>) -> Sandbox {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = ZohoConfig::new(vec![client()]);
    adjust(&mut config);
    let (zoho, running) = start_zoho(config, addr, state).await.unwrap();
    Sandbox { url: running.url(), zoho, running, http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap() }
}

/// A token answer fit for an assertion message: its tokens left out.
pub fn redacted(body: &Value) -> Value {
    let mut shown = body.clone();
    for secret in ["access_token", "refresh_token"] {
        if let Some(v) = shown.get_mut(secret) {
            *v = json!("(redacted)");
        }
    }
    shown
}

/// Polls `ready` every 20 ms until it holds; fails the test after 20 s.
pub async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The query parameters of a URL.
pub fn query_of(location: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Sandbox {
    /// An access token with `scopes` for the registered app (`POST /_sandbox/tokens`).
    pub async fn mint(&self, scopes: &[&str]) -> String {
        let r = self.control(Method::POST, "/_sandbox/tokens", json!({"client_id": CLIENT_ID, "scopes": scopes})).await;
        assert_eq!(r.status, 200, "{}", redacted(&r.body));
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// A token with every scope Tandem asks for.
    pub async fn token(&self) -> String {
        self.mint(ALL_SCOPES).await
    }

    /// The authorization URL Tandem opens, with `extra` parameters.
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.READ,ZohoCRM.org.READ"),
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "st-42"),
        ];
        params.extend_from_slice(extra);
        reqwest::Url::parse_with_params(&format!("{}/oauth/v2/auth", self.url), &params).unwrap().to_string()
    }

    /// The sign-in page, then the consent page, then **Accept** or **Reject** (the shared walker,
    /// `sandbox::walk::consent`): the redirect back.
    pub async fn consent(&self, extra: &[(&str, &str)], decision: &str) -> String {
        let decision = if decision == "accept" { Decision::Allow } else { Decision::Deny };
        consent(&self.authorize_url(extra), "priya@zoho-sandbox.example", "sandbox", decision).await.unwrap()
    }

    /// `POST /oauth/v2/token` with the form body `form`.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Answer {
        answer(self.http.post(format!("{}/oauth/v2/token", self.url)).form(form).send().await.unwrap()).await
    }

    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let request = self.http.request(method, format!("{}{path}", self.url)).header("authorization", format!("Zoho-oauthtoken {token}"));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        answer(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// A `GET` with its query encoded from `query`.
    pub async fn get_query(&self, path: &str, query: &[(&str, &str)], token: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.url)).query(query).header("authorization", format!("Zoho-oauthtoken {token}"));
        answer(request.send().await.unwrap()).await
    }

    /// A `GET` with an `If-Modified-Since` header.
    pub async fn get_since(&self, path: &str, since: &str, token: &str) -> Answer {
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .header("authorization", format!("Zoho-oauthtoken {token}"))
            .header("If-Modified-Since", since);
        answer(request.send().await.unwrap()).await
    }

    /// A control API call (`/_sandbox/...`).
    pub async fn control(&self, method: Method, path: &str, body: Value) -> Answer {
        answer(self.http.request(method, format!("{}{path}", self.url)).json(&body).send().await.unwrap()).await
    }

    pub async fn seed(&self, deals: usize, contacts: usize, accounts: usize) {
        let r = self
            .control(Method::POST, "/_sandbox/seed", json!({"deals": deals, "contacts": contacts, "accounts": accounts, "seed": 7}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// Zoho's error shape: `{code, details, message, status: "error"}`.
pub fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["code"], code, "{}", a.body);
    assert_eq!(a.body["status"], "error", "{}", a.body);
    assert!(a.body["message"].is_string() && a.body["details"].is_object(), "{}", a.body);
}

/// The ids of a `{data: [...]}` answer.
pub fn ids(a: &Answer) -> Vec<String> {
    a.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {}", a.body))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

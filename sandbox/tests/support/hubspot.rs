//! A HubSpot sandbox on port 0 and the calls the tests make to it over HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::Method;
use sandbox::{start_hubspot, HubSpot, HubSpotConfig, OAuthClient, RunningSandbox};
use serde_json::{json, Value};

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/hubspot";
/// Every scope the sandbox checks, for tests about what an endpoint answers rather than who may call it.
pub const ALL_SCOPES: [&str; 9] = [
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.owners.read",
    "crm.schemas.deals.write",
    "crm.schemas.contacts.write",
];

pub struct Sandbox {
    pub url: String,
    pub hubspot: Arc<HubSpot>,
    pub running: RunningSandbox,
    pub http: reqwest::Client,
}

/// What an API call answered.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

pub fn client() -> OAuthClient {
    OAuthClient { client_id: "app-1".into(), client_secret: "secret-1".into(), redirect_uris: vec![REDIRECT.into()] }
}

pub async fn start() -> Sandbox {
    start_configured(HubSpotConfig::new(vec![client()]), None).await
}

pub async fn start_configured(config: HubSpotConfig, state: Option<PathBuf>) -> Sandbox {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (hubspot, running) = start_hubspot(config, addr, state).await.unwrap();
    Sandbox { url: running.url(), hubspot, running, http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap() }
}

impl Sandbox {
    /// An access token with `scopes` for the registered app (`POST /_sandbox/tokens`).
    pub async fn mint(&self, scopes: &[&str]) -> String {
        let r = self
            .http
            .post(format!("{}/_sandbox/tokens", self.url))
            .json(&json!({"client_id": "app-1", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
    }

    /// A token with every scope.
    pub async fn token(&self) -> String {
        self.mint(&ALL_SCOPES).await
    }

    /// The authorization code the user's **Allow** sends back to the redirect URI.
    pub async fn code(&self) -> String {
        let url = format!("{}/oauth/authorize?client_id=app-1&redirect_uri={REDIRECT}&scope=crm.objects.deals.read&state=s", self.url);
        let location =
            sandbox::walk::consent(&url, "admin@hubspot-sandbox.example", "sandbox", sandbox::walk::Decision::Allow).await.unwrap();
        let query = location.split_once('?').unwrap().1;
        query.split('&').find_map(|p| p.strip_prefix("code=")).unwrap().to_string()
    }

    pub fn api(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    /// An API call with an optional JSON body; the body answered is `null` when empty.
    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let request = self.api(method, path, token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let r = request.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")) };
        Answer { status, headers, body }
    }

    /// A control API call (`/_sandbox/...`).
    pub async fn control(&self, method: Method, path: &str, body: Value) -> Answer {
        let r = self.http.request(method, format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    /// Creates a record through `POST /crm/v3/objects/{objectType}` and answers its id.
    pub async fn create(&self, token: &str, object: &str, properties: Value) -> String {
        let a = self.call(Method::POST, &format!("/crm/v3/objects/{object}"), token, Some(json!({"properties": properties}))).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }
}

/// A HubSpot error body: `category`, a `correlationId` (a UUID) and a `message`.
pub fn assert_error(answer: &Answer, status: u16, category: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["category"], category, "{}", answer.body);
    let correlation = answer.body["correlationId"].as_str().unwrap_or_default();
    assert_eq!(correlation.len(), 36, "{}", answer.body);
    assert!(answer.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.body);
}

//! A Pipedrive sandbox on port 0 and the calls the tests make to it over HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::Method;
use sandbox::{start_pipedrive, OAuthClient, Pipedrive, PipedriveConfig, RunningSandbox};
use serde_json::{json, Value};

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/pipedrive";

pub struct Sandbox {
    pub url: String,
    pub pipedrive: Arc<Pipedrive>,
    pub running: RunningSandbox,
    pub http: reqwest::Client,
}

/// What a call answered.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// `x-daily-requests-left`: the company's tokens left today.
    pub fn daily_left(&self) -> u64 {
        self.headers["x-daily-requests-left"].to_str().unwrap().parse().unwrap()
    }
}

pub fn client() -> OAuthClient {
    OAuthClient { client_id: "pd-app".into(), client_secret: "pd-secret".into(), redirect_uris: vec![REDIRECT.into()] }
}

pub async fn start() -> Sandbox {
    start_with(|_| {}, None).await
}

pub async fn start_with(adjust: impl FnOnce(&mut PipedriveConfig), state: Option<PathBuf>) -> Sandbox {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = PipedriveConfig::new(vec![client()]);
    adjust(&mut config);
    let (pipedrive, running) = start_pipedrive(config, addr, state).await.unwrap();
    Sandbox { url: running.url(), pipedrive, running, http: reqwest::Client::new() }
}

impl Sandbox {
    /// An access token with `scopes` for the registered app (`POST /_sandbox/tokens`).
    pub async fn mint(&self, scopes: &[&str]) -> String {
        let r = self
            .http
            .post(format!("{}/_sandbox/tokens", self.url))
            .json(&json!({"client_id": "pd-app", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
    }

    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        answer(request.send().await.unwrap()).await
    }

    /// A control API call (`/_sandbox/...`).
    pub async fn control(&self, method: Method, path: &str, body: Value) -> Answer {
        answer(self.http.request(method, format!("{}{path}", self.url)).json(&body).send().await.unwrap()).await
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// Pipedrive's error shape: `success: false`, the status again as `errorCode`, `error` holding
/// `expected`, an `error_info`, and `data: null`.
pub fn assert_failure(a: &Answer, status: u16, expected: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!((a.body["success"].as_bool(), a.body["errorCode"].as_u64()), (Some(false), Some(u64::from(status))), "{}", a.body);
    assert!(a.body["error"].as_str().is_some_and(|e| e.contains(expected)), "{}", a.body);
    assert!(a.body["error_info"].is_string() && a.body["data"].is_null(), "{}", a.body);
}

//! Faults a test or demo can switch on: a share of requests answering 429 / 500 / 503 / 400, added
//! latency, dropped connections, and every token treated as expired. Off by default; every fault
//! served is logged.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Share of API requests (0.0–1.0) answered 429.
    pub rate_429: f64,
    pub rate_500: f64,
    pub rate_503: f64,
    /// Share answered 400 as a validation error (a permanent failure).
    pub rate_400: f64,
    /// Share of API requests whose connection drops before a response.
    pub rate_drop: f64,
    /// Added to every API request.
    pub latency_ms: u64,
    /// Every access token is refused as expired.
    pub expire_tokens: bool,
    /// Only requests with this method (e.g. `POST`) draw faults.
    pub only_method: Option<String>,
    /// Only requests whose path contains this draw faults (e.g. `/batch/create`).
    pub only_path: Option<String>,
    /// HubSpot: search leaves out records created or changed within this many milliseconds, as
    /// HubSpot's search index trails its writes (by a few seconds, more under load).
    pub search_lag_ms: u64,
}

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    Status(StatusCode),
    Drop,
}

#[derive(Clone, Default)]
pub struct Faults(Arc<Shared>);

#[derive(Default)]
struct Shared {
    config: RwLock<FaultConfig>,
    /// Woken when the faults change: a call waiting out a latency the new faults no longer have
    /// goes on at once.
    changed: tokio::sync::Notify,
}

impl Faults {
    pub fn get(&self) -> FaultConfig {
        self.0.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn set(&self, config: FaultConfig) {
        tracing::warn!(?config, "sandbox faults changed");
        if let Ok(mut c) = self.0.config.write() {
            *c = config;
        }
        self.0.changed.notify_waiters();
    }

    pub fn tokens_expired(&self) -> bool {
        self.get().expire_tokens
    }

    /// Waits the configured latency (token endpoints are slow too, but never fail by fault),
    /// counted from the start of the call: when the faults change meanwhile, the new latency.
    pub async fn delay(&self) {
        let started = tokio::time::Instant::now();
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            // Registered before the latency is read: a change after this wakes the wait.
            changed.as_mut().enable();
            let latency = Duration::from_millis(self.get().latency_ms);
            if started.elapsed() >= latency {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(started + latency) => return,
                _ = &mut changed => {}
            }
        }
    }

    /// Waits the configured latency, then draws this request's fault, if any.
    pub async fn draw(&self, method: &str, path: &str) -> Option<Fault> {
        self.delay().await;
        let config = self.get();
        if config.only_method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method))
            || config.only_path.as_deref().is_some_and(|p| !path.contains(p))
        {
            return None;
        }
        let roll: f64 = rand::thread_rng().gen();
        let mut edge = 0.0;
        for (rate, fault) in [
            (config.rate_drop, Fault::Drop),
            (config.rate_429, Fault::Status(StatusCode::TOO_MANY_REQUESTS)),
            (config.rate_500, Fault::Status(StatusCode::INTERNAL_SERVER_ERROR)),
            (config.rate_503, Fault::Status(StatusCode::SERVICE_UNAVAILABLE)),
            (config.rate_400, Fault::Status(StatusCode::BAD_REQUEST)),
        ] {
            edge += rate;
            if roll < edge {
                tracing::warn!(?fault, "sandbox fault injected");
                return Some(fault);
            }
        }
        None
    }
}

/// A response whose body fails at once: the client sees the connection close mid-response.
pub fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(failing))
        .unwrap_or_default()
}

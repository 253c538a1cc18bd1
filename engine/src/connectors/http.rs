//! Calls to a provider on behalf of one connection: its rate limiter (following the provider's
//! headers), retries (429: wait as told; 5xx, timeouts and dropped connections: exponential
//! backoff with full jitter, bounded), a token refresh when a token is refused, and errors sorted
//! into the categories the dashboards show.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::connections::{AccessToken, ConnectionError, Connections};
use crate::connectors::{LimitSignal, Provider, Refusal};

/// Attempts for a call that fails with 5xx, a timeout or a dropped connection.
const MAX_ATTEMPTS: u32 = 6;
/// Waits for a call answered 429 before giving up on it.
const MAX_RATE_LIMITED: u32 = 30;
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_CAP_MS: u64 = 8_000;
/// HubSpot's search endpoints allow five requests a second.
const SEARCH_PER_SECOND: usize = 5;

/// Why a record or a run failed, as the Health tab groups them.
pub use model::states::Category;

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub category: Category,
    pub status: Option<u16>,
    pub message: String,
    /// The connection lost its authorization: its syncs wait for a reconnection.
    pub reconnect: bool,
    /// The provider's own words, where `message` wraps them.
    pub provider_message: Option<String>,
}

impl ApiError {
    pub fn new(category: Category, status: Option<u16>, message: impl Into<String>) -> ApiError {
        ApiError { category, status, message: message.into(), reconnect: false, provider_message: None }
    }
}

/// Whether a failed call may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads and idempotent writes.
    Always,
    /// Creates: sent again only when the provider's answer proves it did nothing (429, 401);
    /// anything else leaves the outcome unknown, for the recovery step to settle.
    Unprocessed,
}

/// What a call to a provider is for, as a run's history counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Reading records: every record (the initial sync) or what changed since the cursor.
    Read,
    /// Creating and updating records, and their associations.
    Write,
    /// Reading particular records again: by id, by Tandem id, by email or domain, their
    /// associations and field histories.
    Lookup,
    /// What the records are read with: properties and fields, pipelines, owners, the Tandem id
    /// fields and the webhook registrations.
    Schema,
}

tokio::task_local! {
    static PURPOSE: Purpose;
}

/// Runs `work`, counting the provider calls it makes as `purpose` (calls made outside any
/// purpose count as reads).
pub async fn counted_as<F: std::future::Future>(purpose: Purpose, work: F) -> F::Output {
    PURPOSE.scope(purpose, work).await
}

/// Calls (in all and by purpose), rate-limit waits and time spent waiting, for a run's history.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls: AtomicI64,
    by_purpose: [AtomicI64; 4],
    pub waits: AtomicI64,
    pub wait_ms: AtomicI64,
}

impl Stats {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let purpose = PURPOSE.try_with(|p| *p).unwrap_or(Purpose::Read);
        self.by_purpose[purpose as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The calls made for `purpose`.
    pub fn calls_for(&self, purpose: Purpose) -> i64 {
        self.by_purpose[purpose as usize].load(Ordering::Relaxed)
    }

    fn waited(&self, d: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.wait_ms.fetch_add(d.as_millis() as i64, Ordering::Relaxed);
    }
}

/// One connection's pace: a rolling window mirroring the provider's (learned from its headers),
/// HubSpot's search limit, and a pause until a provider's reset when it says nothing is left.
#[derive(Debug, Default)]
pub struct Limiter {
    state: tokio::sync::Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    max: usize,
    interval: Duration,
    sent: VecDeque<Instant>,
    searches: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Window {
    fn prune(q: &mut VecDeque<Instant>, interval: Duration, now: Instant) {
        while q.front().is_some_and(|t| *t + interval <= now) {
            q.pop_front();
        }
    }
}

/// Each connection's limiter, shared by everything one server calls a provider for (two servers
/// in one process, as tests start, keep their own).
#[derive(Clone, Debug, Default)]
pub struct Limiters(Arc<StdMutex<HashMap<String, Arc<Limiter>>>>);

impl Limiters {
    /// The limiter of a connection.
    pub fn of(&self, connection_id: &str) -> Arc<Limiter> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(connection_id.to_string()).or_default().clone()
    }
}

impl Limiter {
    /// Waits until a call may be sent, and counts it as sent.
    async fn acquire(&self, search: bool, stats: &Stats) {
        let slack = Duration::from_millis(15);
        loop {
            let mut w = self.state.lock().await;
            let now = Instant::now();
            let mut until = w.paused_until.filter(|t| *t > now);
            if until.is_none() && w.max > 0 {
                let interval = w.interval;
                Window::prune(&mut w.sent, interval, now);
                if w.sent.len() >= w.max {
                    until = w.sent.front().map(|t| *t + interval + slack);
                }
            }
            // HubSpot's search limit applies where its limits do (it sends their headers).
            if until.is_none() && search && w.max > 0 {
                Window::prune(&mut w.searches, Duration::from_secs(1), now);
                if w.searches.len() >= SEARCH_PER_SECOND {
                    until = w.searches.front().map(|t| *t + Duration::from_secs(1) + slack);
                }
            }
            match until {
                None => {
                    if w.max > 0 {
                        w.sent.push_back(now);
                    }
                    if search && w.max > 0 {
                        w.searches.push_back(now);
                    }
                    return;
                }
                Some(t) => {
                    drop(w);
                    stats.waited(t - now);
                    tokio::time::sleep_until(t).await;
                }
            }
        }
    }

    /// Learns the window from a response's headers, as the provider's policy reads them.
    async fn observe(&self, provider: Provider, headers: &HeaderMap) {
        let mut w = self.state.lock().await;
        match provider.limit_signal(headers) {
            LimitSignal::Window { max, interval } => {
                w.max = max;
                w.interval = interval;
            }
            LimitSignal::NoWindow => w.max = 0,
            LimitSignal::PauseFor(d) => w.paused_until = Some(Instant::now() + d),
            LimitSignal::Nothing => {}
        }
    }

    async fn pause(&self, d: Duration) {
        let mut w = self.state.lock().await;
        let until = Instant::now() + d;
        if w.paused_until.is_none_or(|t| t < until) {
            w.paused_until = Some(until);
        }
    }
}

/// A connection's API, as a run uses it.
pub struct Api {
    pub provider: Provider,
    connections: Connections,
    connection_id: String,
    http: reqwest::Client,
    token: tokio::sync::RwLock<AccessToken>,
    limiter: Arc<Limiter>,
    pub stats: Arc<Stats>,
}

impl Api {
    pub async fn open(
        connections: &Connections,
        connection_id: &str,
        provider: Provider,
        limiter: Arc<Limiter>,
        stats: Arc<Stats>,
    ) -> Result<Api, ApiError> {
        let token = connections.access_token(connection_id).await.map_err(connection_error)?;
        Ok(Api {
            provider,
            connections: connections.clone(),
            connection_id: connection_id.to_string(),
            http: crate::connectors::http_client(),
            token: tokio::sync::RwLock::new(token),
            limiter,
            stats,
        })
    }

    /// The fields of `object` (and for deals the pipelines), as the sync setup and a run read
    /// them: each of its calls through the limiter, retried and refreshed like any call.
    pub async fn schema(&self, object: model::apps::ObjectKind) -> Result<model::sync::SideSchema, ApiError> {
        self.provider.schema(self, object).await
    }

    /// A `GET` whose answer is read as `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
        let answer = self.get(path, query).await?;
        serde_json::from_value(answer).map_err(|e| {
            ApiError::new(Category::Provider, Some(200), format!("{} answered {path} with an unexpected body: {e}", self.provider.name()))
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.call(Method::GET, path, query, None, Retry::Always).await
    }

    /// A `GET` with request headers of its own (Zoho's `If-Modified-Since`). A 304 Not Modified
    /// answers `Null`, as an empty list does.
    pub async fn get_with_headers(&self, path: &str, query: &[(&str, String)], headers: &[(&str, String)]) -> Result<Value, ApiError> {
        self.send(Call { method: Method::GET, path, query, headers, body: None, retry: Retry::Always, batch: false }).await
    }

    /// Sends one call, waiting, retrying and refreshing the token as needed. `path` is relative
    /// to the connection's API base. Answers the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Value, ApiError> {
        self.send(Call { method, path, query, headers: &[], body, retry, batch: false }).await
    }

    /// A write of several records that the provider answers record by record: when it refuses
    /// every one of them with 400 (Zoho), its body (each record's error) is the answer too, for
    /// the caller to read record by record.
    pub async fn call_batch(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
        retry: Retry,
    ) -> Result<Value, ApiError> {
        self.send(Call { method, path, query, headers: &[], body: Some(body), retry, batch: true }).await
    }

    async fn send(&self, call: Call<'_>) -> Result<Value, ApiError> {
        let Call { method, path, query, headers, body, retry, batch } = call;
        let name = self.provider.name();
        let search = self.provider.is_search(path);
        let (mut failures, mut limited, mut refreshed) = (0u32, 0u32, false);
        loop {
            self.limiter.acquire(search, &self.stats).await;
            let token = self.token.read().await.clone();
            let url = format!("{}{path}", token.api_base.trim_end_matches('/'));
            // Marked sensitive, as `bearer_auth` marks it: never shown in a request's `Debug`.
            let Ok(mut authorization) = HeaderValue::from_str(&format!("{} {}", self.provider.auth_scheme(), token.token)) else {
                return Err(ApiError::new(Category::Authentication, None, format!("{name}'s token cannot be sent in a header")));
            };
            authorization.set_sensitive(true);
            let mut request = self.http.request(method.clone(), url).header(reqwest::header::AUTHORIZATION, authorization);
            if !query.is_empty() {
                request = request.query(query);
            }
            for (header, value) in headers {
                request = request.header(*header, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            self.stats.called();
            let outcome = match request.send().await {
                Ok(response) => {
                    self.limiter.observe(self.provider, response.headers()).await;
                    let status = response.status();
                    let retry_after =
                        response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, retry_after, bytes)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let (status, retry_after, bytes) = match outcome {
                Ok(answer) => answer,
                Err(e) => {
                    failures += 1;
                    let message = format!("{name} could not be reached: {}", describe(&e));
                    if retry == Retry::Always && failures < MAX_ATTEMPTS {
                        self.backoff(failures).await;
                        continue;
                    }
                    return Err(ApiError::new(Category::Network, None, message));
                }
            };
            // Nothing changed since the `If-Modified-Since` the call gave: nothing to read.
            if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::new(Category::Provider, Some(status.as_u16()), format!("{name} answered with an unreadable body: {e}"))
                });
            }
            let message = crate::connectors::error_message(&bytes);
            // The provider's own words ride along, for a page that shows them as they were.
            let refused = |category: Category, status: u16, text: String| ApiError {
                provider_message: Some(message.clone()),
                ..ApiError::new(category, Some(status), text)
            };
            if batch && status == reqwest::StatusCode::BAD_REQUEST {
                if let Ok(answer) = serde_json::from_slice::<Value>(&bytes) {
                    return Ok(answer);
                }
            }
            // What the provider's own error code says beyond the status (Zoho's).
            match self.provider.refusal(status.as_u16(), &bytes) {
                Some(Refusal::Permission) => {
                    return Err(refused(Category::Permission, status.as_u16(), format!("{name} refused: {message}")));
                }
                Some(Refusal::Exhausted) => {
                    return Err(refused(
                        Category::RateLimit,
                        status.as_u16(),
                        format!("{name} allows no more API calls for now: {message}"),
                    ));
                }
                Some(Refusal::Wait(wait)) => {
                    limited += 1;
                    if limited > MAX_RATE_LIMITED {
                        return Err(refused(
                            Category::RateLimit,
                            status.as_u16(),
                            format!("{name} kept refusing with {status}: {message}"),
                        ));
                    }
                    self.limiter.pause(wait).await;
                    continue;
                }
                None => {}
            }
            match status.as_u16() {
                429 => {
                    limited += 1;
                    if limited > MAX_RATE_LIMITED {
                        return Err(refused(
                            Category::RateLimit,
                            429,
                            format!("{name} kept refusing with 429 Too Many Requests: {message}"),
                        ));
                    }
                    let wait = match retry_after {
                        Some(secs) => Duration::from_secs(secs.max(1)),
                        None => self.provider.wait_after_429(&message),
                    };
                    self.limiter.pause(wait).await;
                }
                401 if !refreshed => {
                    refreshed = true;
                    let fresh =
                        self.connections.access_token_after_rejection(&self.connection_id, &token).await.map_err(connection_error)?;
                    *self.token.write().await = fresh;
                }
                401 => return Err(refused(Category::Authentication, 401, format!("{name} refused Tandem's token: {message}"))),
                status @ 500..=599 => {
                    failures += 1;
                    if retry == Retry::Always && failures < MAX_ATTEMPTS {
                        self.backoff(failures).await;
                        continue;
                    }
                    return Err(refused(Category::Provider, status, format!("{name} answered {status}: {message}")));
                }
                403 => return Err(refused(Category::Permission, 403, format!("{name} refused: {message}"))),
                404 | 410 => return Err(refused(Category::NotFound, status.as_u16(), format!("{name} has no such record: {message}"))),
                status => return Err(refused(Category::Validation, status, format!("{name} refused the values: {message}"))),
            }
        }
    }

    /// Full jitter: a random wait up to the exponential bound.
    async fn backoff(&self, failures: u32) {
        let bound = (BACKOFF_BASE_MS << failures.min(10)).min(BACKOFF_CAP_MS);
        let wait = Duration::from_millis(rand::thread_rng().gen_range(0..=bound));
        tokio::time::sleep(wait).await;
    }
}

/// One call as [`Api::send`] makes it.
struct Call<'a> {
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, String)],
    headers: &'a [(&'a str, String)],
    body: Option<&'a Value>,
    retry: Retry,
    /// A write answered record by record (see [`Api::call_batch`]).
    batch: bool,
}

/// A failed request in words, without its URL (which may hold a token).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".to_string()
    } else if e.is_connect() {
        "the connection was refused".to_string()
    } else {
        "the connection dropped before an answer".to_string()
    }
}

pub fn connection_error(e: ConnectionError) -> ApiError {
    match e {
        ConnectionError::NeedsReconnection(message) => {
            ApiError { category: Category::Authentication, status: Some(401), message, reconnect: true, provider_message: None }
        }
        ConnectionError::Uninstalled => ApiError {
            category: Category::Authentication,
            status: None,
            message: "The app was uninstalled; its syncs are paused.".into(),
            reconnect: true,
            provider_message: None,
        },
        ConnectionError::Token { provider, detail } => {
            ApiError::new(Category::Authentication, None, format!("{provider} did not refresh Tandem's token: {detail}"))
        }
        other => ApiError::new(Category::Provider, None, other.to_string()),
    }
}

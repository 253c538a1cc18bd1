//! Calls to a provider on behalf of one connection: its rate limiter (following the provider's
//! headers), retries (429: wait as told; 5xx, timeouts and dropped connections: exponential
//! backoff with full jitter, bounded), a token refresh when a token is refused, and errors sorted
//! into the categories the dashboards show.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::clock::now_ms;
use crate::connections::{AccessToken, ConnectionError, Connections};
use crate::connectors::{LimitSignal, Provider, Refusal};
use crate::store::budgets::Turn;
use crate::store::Store;

/// Attempts for a call that fails with 5xx, a timeout or a dropped connection.
const MAX_ATTEMPTS: u32 = 6;
/// Waits for a call answered 429 before giving up on it.
const MAX_RATE_LIMITED: u32 = 30;
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_CAP_MS: u64 = 8_000;
/// HubSpot's search endpoints allow five requests a second.
const SEARCH_PER_SECOND: i64 = 5;

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

/// One provider account's pace, as every instance shares it: each call takes its turn from the
/// account's budget in the store ([`crate::store::budgets`]) while a window applies (the
/// provider's, learned from its headers, at the share an admin set) or a pause lasts (a 429
/// slows every sync and instance on the account at once). With no window (limits off) calls go
/// at once and are counted in the store about once a second.
#[derive(Debug)]
pub struct Limiter {
    store: Store,
    connection_id: String,
    /// Calls take their turns in the order they asked (tokio's mutex is fair): one waits for room
    /// at a time, so a call waits behind the calls already waiting, never behind every call that
    /// happens to wake first.
    turn: tokio::sync::Mutex<()>,
    /// Bulk calls (an initial sync's) queue here first, one at a time, so that any other call (a
    /// change's, the sync setup's) waits behind one bulk call at most: a long initial sync never
    /// holds back another sync's change, though both spend the account's one budget.
    bulk: tokio::sync::Mutex<()>,
    state: tokio::sync::Mutex<Local>,
}

#[derive(Debug, Default)]
struct Local {
    /// The window this process last stored from the provider's answers: (max, ms).
    learned: Option<(i64, i64)>,
    /// Whether each call must take its turn in the store; unknown until the first call asks.
    governed: Option<bool>,
    /// No call before this (Unix ms): this process's own pause, and the store's as last read.
    paused_until: i64,
    /// Calls sent without taking turns and not yet counted in the store.
    unsaved: i64,
    saved_at: Option<Instant>,
}

/// How often calls sent without turns are counted in the store (and the store's budget read).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Each connection's limiter, shared by everything one server calls a provider for; servers and
/// instances on one database share each account's budget through it.
#[derive(Clone, Debug)]
pub struct Limiters {
    store: Store,
    all: Arc<StdMutex<HashMap<String, Arc<Limiter>>>>,
}

impl Limiters {
    pub fn new(store: Store) -> Limiters {
        Limiters { store, all: Arc::default() }
    }

    /// The limiter of a connection.
    pub fn of(&self, connection_id: &str) -> Arc<Limiter> {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(connection_id.to_string())
            .or_insert_with(|| {
                Arc::new(Limiter {
                    store: self.store.clone(),
                    connection_id: connection_id.to_string(),
                    turn: Default::default(),
                    bulk: Default::default(),
                    state: Default::default(),
                })
            })
            .clone()
    }
}

impl Limiter {
    /// Waits until a call may be sent, and counts it as sent. A `bulk` call lets others go first.
    async fn acquire(&self, search: bool, bulk: bool, stats: &Stats) {
        let slack = Duration::from_millis(15);
        let _bulk = match bulk {
            true => Some(self.bulk.lock().await),
            false => None,
        };
        let _turn = self.turn.lock().await;
        loop {
            let mut local = self.state.lock().await;
            let now = now_ms();
            let until = if local.paused_until > now {
                Some(local.paused_until)
            } else if local.governed == Some(false) {
                if local.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
                    self.save(&mut local, now).await;
                    // Another instance learned a window or paused the account meanwhile: this
                    // call takes its turn after all.
                    if local.governed != Some(false) || local.paused_until > now {
                        continue;
                    }
                }
                local.unsaved += 1;
                return;
            } else {
                if local.unsaved > 0 {
                    self.save(&mut local, now).await;
                }
                match self.store.take_call(&self.connection_id, now, search, SEARCH_PER_SECOND).await {
                    Ok(Turn::Go { governed }) => {
                        local.governed = Some(governed);
                        if !governed && local.learned.is_some_and(|(max, _)| max > 0) {
                            // The store says no window (another instance saw the limits off):
                            // the next answer's window is stored again.
                            local.learned = None;
                        }
                        local.saved_at = Some(Instant::now());
                        return;
                    }
                    Ok(Turn::WaitUntil(until)) => Some(until),
                    Err(e) => {
                        // The database will fail the run soon enough; the call is not held for it.
                        tracing::warn!(connection = %self.connection_id, error = %e, "the API budget could not be read");
                        return;
                    }
                }
            };
            drop(local);
            if let Some(until) = until {
                let wait = Duration::from_millis((until - now).max(0) as u64) + slack;
                stats.waited(wait);
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Counts the calls sent without turns in the store, and reads the budget back.
    async fn save(&self, local: &mut Local, now: i64) {
        let calls = std::mem::take(&mut local.unsaved);
        local.saved_at = Some(Instant::now());
        match self.store.count_calls(&self.connection_id, now, calls).await {
            Ok(budget) => {
                local.governed = Some(budget.governed(now));
                local.paused_until = local.paused_until.max(budget.paused_until);
                if local.learned.is_some_and(|(max, _)| max != budget.window_max) {
                    // Another instance stored another window: the next answer's is stored again.
                    local.learned = None;
                }
            }
            Err(e) => {
                local.unsaved += calls;
                tracing::warn!(connection = %self.connection_id, error = %e, "the API calls could not be counted");
            }
        }
    }

    /// Learns the window from a response's headers, as the provider's policy reads them.
    /// An error answered before the provider counted the call (a refused token) may carry no
    /// limit headers at all, nor do HubSpot's searches (limited apart): only another call's
    /// success says there is no window.
    async fn observe(&self, provider: Provider, status: reqwest::StatusCode, search: bool, headers: &HeaderMap) {
        let window = match provider.limit_signal(headers) {
            LimitSignal::Window { max, interval } => (max as i64, interval.as_millis() as i64),
            LimitSignal::NoWindow if status.is_success() && !search => (0, 0),
            LimitSignal::NoWindow => return,
            LimitSignal::PauseFor(d) => return self.pause(d).await,
            LimitSignal::Nothing => return,
        };
        let mut local = self.state.lock().await;
        if local.learned == Some(window) {
            return;
        }
        match self.store.learn_window(&self.connection_id, window.0, window.1).await {
            Ok(()) => {
                local.learned = Some(window);
                // Asked again by the next call (a pause may still hold the account).
                local.governed = None;
            }
            Err(e) => tracing::warn!(connection = %self.connection_id, error = %e, "the API window could not be stored"),
        }
    }

    /// No call on the account for `d`, from any instance.
    async fn pause(&self, d: Duration) {
        let until = now_ms() + d.as_millis() as i64;
        let mut local = self.state.lock().await;
        local.paused_until = local.paused_until.max(until);
        if let Err(e) = self.store.pause_calls(&self.connection_id, until).await {
            tracing::warn!(connection = %self.connection_id, error = %e, "the API pause could not be stored");
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
    /// An initial sync's calls: they let other calls on the account go first.
    bulk: bool,
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
            bulk: false,
        })
    }

    /// Marks the calls as bulk (an initial sync's): other calls on the account go first.
    pub fn in_bulk(mut self, bulk: bool) -> Api {
        self.bulk = bulk;
        self
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
            self.limiter.acquire(search, self.bulk, &self.stats).await;
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
                    self.limiter.observe(self.provider, response.status(), search, response.headers()).await;
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

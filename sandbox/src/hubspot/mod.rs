//! The HubSpot sandbox: HubSpot's real paths at the root (`/oauth/authorize`, `/oauth/v1/token`,
//! `/crm/v3/...`), its error shape (`status`, `message`, `correlationId`, `category`) and its
//! per-app ten-second rate limit.

pub mod associations;
mod batch;
pub mod data;
mod objects;
mod pipelines;
mod properties;
mod search;
pub mod seed;
mod stages;
mod tokens;
pub mod webhooks;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::faults::{dropped_connection, Fault, Faults};
use crate::oauth::{self, AccessToken, OAuthClient, OAuthConfig, OAuthServer, SandboxUser};
use crate::persist::Snapshots;
use crate::time::Clock;
use data::HubData;

pub use objects::validate as objects_validate;

pub const ACCESS_TOKEN_TTL_SECS: i64 = 1800;
pub const RATE_WINDOW_MS: i64 = 10_000;
pub const SEARCH_PER_SECOND: usize = 5;
/// The portal's time zone (US/Eastern, as the account details say, without daylight saving): its
/// midnight starts a new day for the daily limit, as HubSpot's does.
pub const PORTAL_UTC_OFFSET_MS: i64 = -18_000_000;

/// What the rate limits have counted: each app's ten-second window and the account's requests
/// today.
#[derive(Default)]
struct Limits {
    windows: HashMap<String, VecDeque<i64>>,
    day: i64,
    today: u64,
}

/// One request as the limits counted it: what is left, and the 429 when it is over a limit.
struct Counted {
    remaining: u32,
    daily_remaining: u64,
    refused: Option<Response>,
}

#[derive(Clone, Debug)]
pub struct HubSpotConfig {
    pub portal_id: u64,
    /// The portal's domain: what token information names it by.
    pub hub_domain: String,
    pub clients: Vec<OAuthClient>,
    pub user: SandboxUser,
    /// Requests per app per ten seconds; 0 turns the limit off.
    pub rate_limit: u32,
    /// Requests per account per day, counted from the portal's midnight; 0 (the default) turns
    /// the limit off. HubSpot sets no daily limit on OAuth calls (its usage guidelines), only on
    /// private apps: a test or benchmark sets one to count calls by the daily headers.
    pub daily_limit: u32,
    /// The id of the app (Tandem) whose webhooks the portal delivers.
    pub app_id: u64,
    /// Delivery attempts per webhook batch before it is dropped.
    pub webhook_max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub webhook_retry_base_ms: u64,
}

impl HubSpotConfig {
    pub fn new(clients: Vec<OAuthClient>) -> HubSpotConfig {
        HubSpotConfig {
            portal_id: 24_681_357,
            hub_domain: "sandbox-portal.example".into(),
            clients,
            user: SandboxUser { email: "admin@hubspot-sandbox.example".into(), password: "sandbox".into(), name: "Sandbox Admin".into() },
            rate_limit: 110,
            daily_limit: 0,
            app_id: 1_234_567,
            webhook_max_attempts: 5,
            webhook_retry_base_ms: 1_000,
        }
    }

    /// The `index`th portal of the sandbox (0 is this one): its own id and domain.
    pub fn for_account(&self, index: usize) -> HubSpotConfig {
        let mut config = self.clone();
        if index > 0 {
            config.portal_id += index as u64;
            config.hub_domain = format!("sandbox-portal-{}.example", index + 1);
        }
        config
    }
}

pub struct HubSpot {
    config: HubSpotConfig,
    data: RwLock<HubData>,
    pub oauth: OAuthServer,
    pub faults: Faults,
    limiter: Mutex<Limits>,
    search_limiter: Mutex<HashMap<String, VecDeque<i64>>>,
    clock: Clock,
    dirty: AtomicBool,
    /// Bumped by every write: what cached search results are checked against.
    version: std::sync::atomic::AtomicU64,
    search_cache: crate::cache::Versioned<Vec<u64>>,
    rate_limit: std::sync::atomic::AtomicU32,
    pub webhook_stats: webhooks::DeliveryStats,
    /// Refuse request bodies that lack what the spec marks required (`PUT /_sandbox/strict`).
    strict: AtomicBool,
    /// Requests answered 429 for a limit (the ten-second window, search's, the daily one).
    rate_limited: std::sync::atomic::AtomicU64,
}

impl HubSpot {
    /// A portal from a snapshot, or a fresh one.
    pub fn new(config: HubSpotConfig, saved: Option<HubData>) -> Arc<HubSpot> {
        let mut data = saved.unwrap_or_else(|| HubData::new(config.portal_id));
        let oauth_data = std::mem::take(&mut data.oauth);
        let oauth = OAuthServer::new(
            OAuthConfig {
                provider: "HubSpot",
                clients: config.clients.clone(),
                user: config.user.clone(),
                access_ttl_secs: ACCESS_TOKEN_TTL_SECS,
                rotate_refresh_tokens: false,
                implied_scopes: vec!["oauth".into()],
                token_prefix: "CJ",
            },
            oauth_data,
        );
        Arc::new(HubSpot {
            rate_limit: std::sync::atomic::AtomicU32::new(config.rate_limit),
            config,
            data: RwLock::new(data),
            oauth,
            faults: Faults::default(),
            limiter: Mutex::new(Limits::default()),
            search_limiter: Mutex::new(HashMap::new()),
            clock: Clock::default(),
            dirty: AtomicBool::new(false),
            version: std::sync::atomic::AtomicU64::new(0),
            search_cache: crate::cache::Versioned::default(),
            webhook_stats: webhooks::DeliveryStats::default(),
            strict: AtomicBool::new(false),
            rate_limited: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Requests the portal refused for its rate limits since it started.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    pub fn read(&self) -> RwLockReadGuard<'_, HubData> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, HubData> {
        let guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        // Marked once the lock is held: a snapshot taken meanwhile waits for this change, and one
        // that cleared the flag before cannot miss it.
        self.dirty.store(true, Ordering::Relaxed);
        // Bumped while the lock is held: a reader sees the new number only with the new data.
        self.version.fetch_add(1, Ordering::SeqCst);
        guard
    }

    /// The data's version: changes with every write.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// The data without marking it changed (the webhook outbox is not part of the snapshot).
    pub(crate) fn data_quiet(&self) -> RwLockWriteGuard<'_, HubData> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_rate_limit(&self, per_ten_seconds: u32) {
        self.rate_limit.store(per_ten_seconds, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        let mut data = self.write();
        *data = HubData::new(self.config.portal_id);
        *self.limiter.lock().unwrap_or_else(|p| p.into_inner()) = Limits::default();
        self.search_limiter.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Counts a request of `app` against its ten-second window and the account's daily limit
    /// (which starts again at the portal's midnight).
    fn count_request(&self, app: &str) -> Counted {
        let max = self.rate_limit.load(Ordering::Relaxed);
        let daily_max = u64::from(self.config.daily_limit);
        let now = self.clock.now();
        let mut limits = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let today = crate::time::day_number(now, PORTAL_UTC_OFFSET_MS);
        if limits.day != today {
            limits.day = today;
            limits.today = 0;
        }
        let used_today = limits.today;
        let window = limits.windows.entry(app.to_string()).or_default();
        while window.front().is_some_and(|t| *t <= now - RATE_WINDOW_MS) {
            window.pop_front();
        }
        let in_window = window.len() as u32;
        let refused = if daily_max > 0 && used_today >= daily_max {
            Some(rate_limited("DAILY", "You have reached your daily limit."))
        } else if max > 0 && in_window >= max {
            Some(rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit."))
        } else {
            None
        };
        if refused.is_none() {
            window.push_back(now);
            limits.today += 1;
        } else {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let in_window = in_window + u32::from(refused.is_none());
        Counted { remaining: max.saturating_sub(in_window), daily_remaining: daily_max.saturating_sub(limits.today), refused }
    }
}

impl HubSpot {
    /// Search has its own limit: five requests per second per app (when limits are on).
    fn count_search(&self, app: &str) -> Result<(), Response> {
        if self.rate_limit.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        let mut limiter = self.search_limiter.lock().unwrap_or_else(|p| p.into_inner());
        let window = limiter.entry(app.to_string()).or_default();
        while window.front().is_some_and(|t| *t <= now - 1000) {
            window.pop_front();
        }
        if window.len() >= SEARCH_PER_SECOND {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(rate_limited("SECONDLY", "You have reached your secondly limit."));
        }
        window.push_back(now);
        Ok(())
    }
}

impl crate::control::Controlled for HubSpot {
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn oauth(&self) -> &OAuthServer {
        &self.oauth
    }

    fn reset(&self) {
        HubSpot::reset(self)
    }

    fn set_rate_limit(&self, limit: u32) {
        HubSpot::set_rate_limit(self, limit)
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn move_clock(&self, offset_ms: i64) {
        self.clock.set_offset(offset_ms);
        self.limiter.lock().unwrap_or_else(|p| p.into_inner()).windows.clear();
        self.search_limiter.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl crate::accounts::Account for HubSpot {
    fn account_id(&self) -> String {
        self.config.portal_id.to_string()
    }

    fn account_name(&self) -> String {
        self.config.hub_domain.clone()
    }

    /// Webhook settings and subscriptions belong to the app and reach every portal that
    /// installed it.
    fn shared(method: &axum::http::Method, path: &str) -> bool {
        method != axum::http::Method::GET && path.starts_with("/webhooks/v3/")
    }

    /// A portal added later has the app's webhook settings and subscriptions too.
    fn share_from(&self, first: &Self) {
        let webhooks = first.read().webhooks.clone();
        self.write().webhooks = webhooks;
    }
}

impl Snapshots for HubSpot {
    type Data = HubData;

    fn take_dirty(&self) -> bool {
        // Both flags are cleared: one snapshot covers both.
        let data = self.dirty.swap(false, Ordering::Relaxed);
        let oauth = self.oauth.take_dirty();
        data || oauth
    }

    fn write_snapshot(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(b"{\"records\":{")?;
        for (i, object) in data::ObjectType::ALL.into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            crate::persist::write_map_chunked(out, object.name(), &|f| f(self.read().records.get(&object).map(|t| &**t)))?;
        }
        out.write_all(b"}")?;
        let data = self.read();
        // Every field but the records, written under one lock (a new field fails to compile here).
        let HubData { portal_id, next_id, pipelines, properties, records: _, owners, associations, oauth: _, webhooks, outbox: _ } = &*data;
        use crate::persist::write_field;
        write_field(out, "portal_id", portal_id)?;
        write_field(out, "next_id", next_id)?;
        write_field(out, "pipelines", pipelines)?;
        write_field(out, "properties", properties)?;
        write_field(out, "owners", owners)?;
        write_field(out, "associations", associations)?;
        write_field(out, "webhooks", webhooks)?;
        drop(data);
        write_field(out, "oauth", &self.oauth.snapshot())?;
        out.write_all(b"}")
    }
}

pub fn router(hubspot: Arc<HubSpot>) -> Router {
    let authorize = Router::new()
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/authorize/login", post(oauth::login))
        .route("/oauth/authorize/decision", post(oauth::decide))
        .with_state(hubspot.oauth.clone());
    let api = Router::new()
        .route("/crm/v3/objects/{object_type}", get(objects::list).post(objects::create))
        .route("/crm/v3/objects/{object_type}/{id}", get(objects::get_one).patch(objects::update).delete(objects::archive))
        .route("/crm/v3/objects/{object_type}/search", post(search::search))
        .route("/crm/v3/objects/{object_type}/batch/read", post(batch::read))
        .route("/crm/v3/objects/{object_type}/batch/create", post(batch::create))
        .route("/crm/v3/objects/{object_type}/batch/update", post(batch::update))
        .route("/crm/v3/objects/{object_type}/batch/upsert", post(batch::upsert))
        .route("/crm/v3/objects/{object_type}/batch/archive", post(batch::archive))
        .route(
            "/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}",
            axum::routing::put(associations::create_default),
        )
        .route("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}", get(associations::list))
        .route(
            "/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}",
            axum::routing::put(associations::create_labelled).delete(associations::remove),
        )
        .route("/crm/v4/associations/{from_type}/{to_type}/batch/associate/default", post(associations::batch_create_default))
        .route("/crm/v4/associations/{from_type}/{to_type}/batch/archive", post(associations::batch_archive))
        .route("/crm/v4/associations/{from_type}/{to_type}/batch/read", post(associations::batch_read))
        .route("/crm/v3/pipelines/{object_type}", get(pipelines::list).post(pipelines::create))
        .route(
            "/crm/v3/pipelines/{object_type}/{pipeline_id}",
            get(pipelines::get_one).put(pipelines::replace).patch(pipelines::update).delete(pipelines::archive),
        )
        .route("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages", get(stages::list).post(stages::create))
        .route(
            "/crm/v3/pipelines/{object_type}/{pipeline_id}/stages/{stage_id}",
            get(stages::get_one).put(stages::replace).patch(stages::update).delete(stages::archive),
        )
        .route("/crm/v3/properties/{object_type}", get(properties::list).post(properties::create))
        .route("/crm/v3/properties/{object_type}/{property_name}", get(properties::get_one))
        .route("/crm/v3/owners", get(properties::owners))
        .route("/crm/v3/owners/{owner_id}", get(properties::owner))
        .route("/account-info/v3/details", get(account_details))
        .layer(from_fn_with_state(hubspot.clone(), api_guard))
        .with_state(hubspot.clone());
    let tokens = Router::new()
        .route("/oauth/v1/token", post(tokens::token))
        .route("/oauth/v1/access-tokens/{token}", get(tokens::access_token_info))
        .route("/oauth/v1/refresh-tokens/{token}", get(tokens::refresh_token_info).delete(tokens::revoke_refresh_token))
        .with_state(hubspot.clone());
    authorize
        .merge(api)
        .merge(tokens)
        .merge(webhooks::routes(hubspot.clone()))
        .merge(Router::new().route("/_sandbox/strict", get(strict).put(set_strict)).with_state(hubspot.clone()))
        .merge(crate::control::hubspot_routes(hubspot))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "Unable to route request: no such path.") })
}

// ---- Required fields ----

/// Whether the sandbox refuses request bodies that lack fields the spec marks required.
#[derive(serde::Deserialize, serde::Serialize)]
struct Strict {
    required_fields: bool,
}

/// GET /_sandbox/strict
async fn strict(State(hubspot): State<Arc<HubSpot>>) -> Json<Strict> {
    Json(Strict { required_fields: hubspot.strict.load(Ordering::Relaxed) })
}

/// PUT /_sandbox/strict `{"required_fields": true}`: from now on a search body without `after`,
/// `filterGroups`, `limit`, `properties` and `sorts`, or a create input without `properties` and
/// `associations`, is refused with HubSpot's 400 for a body it cannot build. HubSpot itself
/// accepts them (its own guides leave `after`, `sorts` and `associations` out), so the sandbox
/// does too unless asked: tests turn this on to check that a client sends what the spec requires,
/// as the official clients do.
async fn set_strict(State(hubspot): State<Arc<HubSpot>>, Json(wanted): Json<Strict>) -> Json<Strict> {
    hubspot.strict.store(wanted.required_fields, Ordering::Relaxed);
    Json(wanted)
}

impl HubSpot {
    /// With strict checks on, the 400 for a `body` (of the spec's schema `schema`) that lacks any
    /// of `required`.
    pub(crate) fn check_required(&self, schema: &str, body: &serde_json::Map<String, Value>, required: &[&str]) -> Result<(), Response> {
        if !self.strict.load(Ordering::Relaxed) {
            return Ok(());
        }
        let missing: Vec<&str> = required.iter().copied().filter(|name| body.get(*name).is_none_or(Value::is_null)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("Invalid input JSON: Cannot build {schema}, some of required attributes are not set [{}]", missing.join(", ")),
        ))
    }
}

// ---- Errors in HubSpot's shape ----

pub fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn error(status: StatusCode, category: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"status": "error", "message": message.into(), "correlationId": correlation_id(), "category": category})))
        .into_response()
}

/// HubSpot's refusal of a second contact with an email another contact has (409 CONFLICT),
/// naming the contact that has it.
pub fn contact_exists(existing: u64) -> Response {
    error(StatusCode::CONFLICT, "CONFLICT", format!("Contact already exists. Existing ID: {existing}"))
}

fn rate_limited(policy: &str, message: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": policy,
            "category": "RATE_LIMITS",
        })),
    )
        .into_response()
}

/// A 400 listing invalid property values as HubSpot does.
pub fn invalid_properties(problems: Vec<Value>) -> Response {
    let list = serde_json::to_string(&problems).unwrap_or_default();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": "error",
            "message": format!("Property values were not valid: {list}"),
            "correlationId": correlation_id(),
            "category": "VALIDATION_ERROR",
        })),
    )
        .into_response()
}

/// 403 when the token lacks `scope`.
pub fn require_scope(token: &AccessToken, scope: &str) -> Result<(), Response> {
    if token.grant.scopes.iter().any(|s| s == scope) {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        Json(json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": correlation_id(),
            "errors": [{"message": "One or more of the following scopes are required.", "context": {"requiredGranularScopes": [scope]}}],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        })),
    )
        .into_response())
}

/// Faults, authentication and the rate limit, for every CRM and account call.
async fn api_guard(State(hubspot): State<Arc<HubSpot>>, mut request: Request, next: Next) -> Response {
    match hubspot.faults.draw(request.method().as_str(), request.uri().path()).await {
        Some(Fault::Drop) => return dropped_connection(),
        Some(Fault::Status(StatusCode::TOO_MANY_REQUESTS)) => {
            return rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
        }
        Some(Fault::Status(StatusCode::BAD_REQUEST)) => {
            return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "Property values were not valid (sandbox fault)")
        }
        Some(Fault::Status(status)) => return error(status, "INTERNAL_ERROR", "internal error"),
        None => {}
    }
    let Some(token) = oauth::bearer(request.headers()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        );
    };
    let access = match hubspot.oauth.access(&token) {
        Ok(access) if !hubspot.faults.tokens_expired() => access,
        Ok(_) | Err(true) => {
            return error(StatusCode::UNAUTHORIZED, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
        }
        Err(false) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. The access token is unknown or was revoked.",
            )
        }
    };
    let counted = hubspot.count_request(&access.grant.client_id);
    let mut response = match counted.refused {
        Some(refused) => refused,
        None => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
    };
    let max = hubspot.rate_limit.load(Ordering::Relaxed);
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    // The daily headers come only with a daily limit (HubSpot sends none for OAuth calls).
    if hubspot.config.daily_limit > 0 {
        set("x-hubspot-ratelimit-daily", hubspot.config.daily_limit.to_string());
        set("x-hubspot-ratelimit-daily-remaining", counted.daily_remaining.to_string());
    }
    if max > 0 {
        set("x-hubspot-ratelimit-interval-milliseconds", RATE_WINDOW_MS.to_string());
        set("x-hubspot-ratelimit-max", max.to_string());
        set("x-hubspot-ratelimit-remaining", counted.remaining.to_string());
    }
    response
}

async fn account_details(State(hubspot): State<Arc<HubSpot>>, Extension(_token): Extension<AccessToken>) -> Response {
    let portal_id = hubspot.read().portal_id;
    Json(json!({
        "portalId": portal_id,
        "accountType": "SANDBOX",
        "timeZone": "US/Eastern",
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": PORTAL_UTC_OFFSET_MS,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }))
    .into_response()
}

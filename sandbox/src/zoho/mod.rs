//! The Zoho CRM sandbox: Zoho's accounts server (`/oauth/v2/auth`, `/oauth/v2/token`) and CRM
//! API v8 (`/crm/v8/...`) at the root of one loopback server, with Zoho's `{data, info}`
//! envelopes, per-record answers and error shape, and its limits: the organisation's API credits
//! over a rolling 24 hours (one a call) and its concurrency limit (calls of one connected app in
//! flight at once).

mod answers;
mod control;
pub mod data;
pub mod delivery;
mod errors;
mod listing;
mod matching;
mod paging;
mod records;
mod render;
mod search;
pub mod seed;
mod settings;
mod tokens;
mod users;
mod values;
pub mod watch;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::faults::{dropped_connection, Fault, Faults};
use crate::oauth::{self, AccessToken, OAuthClient, OAuthConfig, OAuthPages, OAuthServer, SandboxUser};
use crate::persist::Snapshots;
use crate::time::{Clock, DAY_MS};
use data::ZohoData;
pub use errors::{
    body_invalid, error, invalid_module, member_invalid, member_missing, module_for, param_invalid, param_missing, param_unsupported,
    params_ambiguous, path_id_invalid,
};

pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;

/// Zoho's ids: 19 digits, the organisation's number followed by a counter.
pub mod ids {
    pub fn base(org_id: u64) -> u64 {
        (org_id % 10_000_000) * 1_000_000_000_000
    }
}

#[derive(Clone, Debug)]
pub struct ZohoConfig {
    pub org_id: u64,
    /// Which organization of the sandbox this is (0 the first): later ones get their own name.
    pub account_index: usize,
    pub clients: Vec<OAuthClient>,
    pub user: SandboxUser,
    /// API credits per rolling 24 hours for the organisation (Enterprise: 50,000 plus 1,000 a
    /// user license).
    pub daily_credits: u64,
    /// Calls of one connected app in flight at once (Enterprise: 20); 0 turns the limit off.
    pub concurrency_limit: u32,
    /// The sandbox's own URL: the `api_domain` of its tokens and the `accounts-server` of its
    /// redirects.
    pub api_domain: String,
    /// The data centre the redirect names as `location`.
    pub location: String,
    /// Delivery attempts per notification (the first and its retries).
    pub notify_max_attempts: u32,
    pub notify_retry_base_ms: u64,
}

impl ZohoConfig {
    pub fn new(clients: Vec<OAuthClient>) -> ZohoConfig {
        ZohoConfig {
            org_id: 5_725_767,
            account_index: 0,
            clients,
            user: SandboxUser { email: "priya@zoho-sandbox.example".into(), password: "sandbox".into(), name: "Priya Raman".into() },
            daily_credits: 55_000,
            concurrency_limit: 20,
            api_domain: String::new(),
            location: "us".into(),
            notify_max_attempts: 3,
            notify_retry_base_ms: 1_000,
        }
    }

    /// The `index`th organization of the sandbox (0 is this one).
    pub fn for_account(&self, index: usize) -> ZohoConfig {
        let mut config = self.clone();
        config.org_id += index as u64;
        config.account_index = index;
        config
    }

    /// A new organization as this config describes it.
    fn fresh(&self) -> ZohoData {
        let mut data = seed::fresh(self.org_id);
        if self.account_index > 0 {
            data.company_name = format!("{} {}", data.company_name, self.account_index + 1);
        }
        data
    }
}

pub struct Zoho {
    config: ZohoConfig,
    data: RwLock<ZohoData>,
    pub oauth: OAuthServer,
    pub faults: Faults,
    /// Credits spent over the last 24 hours: by when, and their running total.
    credits: Mutex<Credits>,
    daily_credits: AtomicU64,
    /// Calls in flight, by connected app (Zoho's concurrency limit is per organisation and app).
    in_flight: Mutex<HashMap<String, u32>>,
    concurrency_limit: AtomicU32,
    clock: Clock,
    dirty: AtomicBool,
    pub notify_stats: delivery::DeliveryStats,
}

impl Zoho {
    pub fn new(config: ZohoConfig, saved: Option<ZohoData>) -> Arc<Zoho> {
        let mut data = saved.unwrap_or_else(|| config.fresh());
        let oauth_data = std::mem::take(&mut data.oauth);
        let oauth = OAuthServer::new(
            OAuthConfig {
                provider: "Zoho CRM",
                clients: config.clients.clone(),
                user: config.user.clone(),
                access_ttl_secs: ACCESS_TOKEN_TTL_SECS,
                rotate_refresh_tokens: false,
                implied_scopes: vec![],
                token_prefix: "1000.",
            },
            oauth_data,
        )
        .with_pages(OAuthPages {
            login_path: "/oauth/v2/auth/login",
            decision_path: "/oauth/v2/auth/decision",
            allow: "Accept",
            deny: "Reject",
            redirect_extras: vec![("location".into(), config.location.clone()), ("accounts-server".into(), config.api_domain.clone())],
        });
        Arc::new(Zoho {
            daily_credits: AtomicU64::new(config.daily_credits),
            concurrency_limit: AtomicU32::new(config.concurrency_limit),
            config,
            data: RwLock::new(data),
            oauth,
            faults: Faults::default(),
            credits: Mutex::new(Credits::default()),
            in_flight: Mutex::new(HashMap::new()),
            clock: Clock::default(),
            dirty: AtomicBool::new(false),
            notify_stats: delivery::DeliveryStats::default(),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, ZohoData> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, ZohoData> {
        let guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        // Marked once the lock is held, so a snapshot cannot clear the flag before the change.
        self.dirty.store(true, Ordering::Relaxed);
        guard
    }

    /// The data without marking it changed (the notification outbox is not in the snapshot).
    pub(crate) fn data_quiet(&self) -> RwLockWriteGuard<'_, ZohoData> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &ZohoConfig {
        &self.config
    }

    /// Now by the sandbox's clock, to the second (as Zoho keeps times).
    pub fn now_seconds(&self) -> i64 {
        self.clock.now() / 1000 * 1000
    }

    /// Calls in flight now, by connected app (control API).
    pub fn in_flight(&self) -> HashMap<String, u32> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Credits spent over the 24 hours before now (by the sandbox's clock).
    pub fn credits_used(&self) -> u64 {
        self.credits.lock().unwrap_or_else(|p| p.into_inner()).used(self.clock.now())
    }

    pub fn credits_total(&self) -> u64 {
        self.daily_credits.load(Ordering::Relaxed)
    }

    pub fn set_credits_total(&self, total: u64) {
        self.daily_credits.store(total, Ordering::Relaxed);
    }

    /// Spends `cost` credits, or refuses the call with Zoho's 429 `LIMIT_EXCEEDED` when the
    /// rolling 24 hours hold too few.
    pub fn charge(&self, cost: u64) -> Result<(), Response> {
        let now = self.clock.now();
        let total = self.credits_total();
        let mut credits = self.credits.lock().unwrap_or_else(|p| p.into_inner());
        let used = credits.used(now);
        if used.saturating_add(cost) > total {
            drop(credits);
            tracing::warn!(used, cost, total, "Zoho sandbox: API credits exhausted");
            return Err(error(
                StatusCode::TOO_MANY_REQUESTS,
                "LIMIT_EXCEEDED",
                "API credits limit exceeded for the last 24 hours",
                json!({"limit": total, "used": used}),
            ));
        }
        credits.spend(now, cost);
        Ok(())
    }

    fn reset_limits(&self) {
        *self.credits.lock().unwrap_or_else(|p| p.into_inner()) = Credits::default();
    }
}

/// Credits spent, by when, and their sum: expired entries are popped from the front and taken
/// off the sum, so a call costs O(1) amortized instead of a walk over the day's calls.
#[derive(Default)]
struct Credits {
    spent: VecDeque<(i64, u64)>,
    total: u64,
}

impl Credits {
    /// Credits spent over the 24 hours before `now`.
    fn used(&mut self, now: i64) -> u64 {
        while let Some(&(t, cost)) = self.spent.front() {
            if t > now - DAY_MS {
                break;
            }
            self.spent.pop_front();
            self.total -= cost;
        }
        self.total
    }

    fn spend(&mut self, now: i64, cost: u64) {
        // Calls of one millisecond share an entry.
        match self.spent.back_mut() {
            Some((t, c)) if *t == now => *c += cost,
            _ => self.spent.push_back((now, cost)),
        }
        self.total += cost;
    }
}

impl crate::control::Controlled for Zoho {
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn oauth(&self) -> &OAuthServer {
        &self.oauth
    }

    fn reset(&self) {
        *self.write() = self.config.fresh();
        self.reset_limits();
    }

    /// The short-term limit of Zoho is its concurrency limit.
    fn set_rate_limit(&self, limit: u32) {
        self.concurrency_limit.store(limit, Ordering::Relaxed);
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn move_clock(&self, offset_ms: i64) {
        self.clock.set_offset(offset_ms);
    }
}

impl crate::accounts::Account for Zoho {
    fn account_id(&self) -> String {
        self.config.org_id.to_string()
    }

    fn account_name(&self) -> String {
        self.read().company_name.clone()
    }
}

impl Snapshots for Zoho {
    type Data = ZohoData;

    fn take_dirty(&self) -> bool {
        let data = self.dirty.swap(false, Ordering::Relaxed);
        let oauth = self.oauth.take_dirty();
        data || oauth
    }

    fn write_snapshot(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use crate::persist::{write_field, write_map_chunked};
        out.write_all(b"{")?;
        write_map_chunked(out, "deals", &|f| f(Some(&*self.read().deals)))?;
        out.write_all(b",")?;
        write_map_chunked(out, "contacts", &|f| f(Some(&*self.read().contacts)))?;
        out.write_all(b",")?;
        write_map_chunked(out, "accounts", &|f| f(Some(&*self.read().accounts)))?;
        let data = self.read();
        // Every other field, written under one lock (a new field fails to compile here).
        let ZohoData {
            org_id,
            company_name,
            next_id,
            users,
            fields,
            pipelines,
            deals: _,
            contacts: _,
            accounts: _,
            deleted,
            modules_modified,
            oauth: _,
            watches,
            outbox: _,
            outbox_dropped: _,
            settings_version: _,
        } = &*data;
        write_field(out, "org_id", org_id)?;
        write_field(out, "company_name", company_name)?;
        write_field(out, "next_id", next_id)?;
        write_field(out, "users", users)?;
        write_field(out, "fields", fields)?;
        write_field(out, "pipelines", pipelines)?;
        write_field(out, "deleted", deleted)?;
        write_field(out, "modules_modified", modules_modified)?;
        write_field(out, "watches", watches)?;
        drop(data);
        write_field(out, "oauth", &self.oauth.snapshot())?;
        out.write_all(b"}")
    }
}

pub fn router(zoho: Arc<Zoho>) -> Router {
    let authorize = Router::new()
        .route("/oauth/v2/auth", get(oauth::authorize))
        .route("/oauth/v2/auth/login", post(oauth::login))
        .route("/oauth/v2/auth/decision", post(oauth::decide))
        .with_state(zoho.oauth.clone());
    let accounts = Router::new()
        .route("/oauth/v2/token", post(tokens::token))
        .route("/oauth/v2/token/revoke", post(tokens::revoke))
        .with_state(zoho.clone());
    let api = Router::new()
        .route("/crm/v8/settings/modules", get(settings::modules))
        .route("/crm/v8/settings/modules/{api_name}", get(settings::module))
        .route("/crm/v8/settings/fields", get(settings::fields).post(settings::create_field))
        .route("/crm/v8/settings/layouts", get(settings::layouts))
        .route("/crm/v8/settings/pipeline", get(settings::pipelines))
        // Every other settings and users path is not served: never a module's record.
        .route("/crm/v8/settings/{*rest}", any(errors::url_pattern_invalid))
        .route("/crm/v8/users", get(users::users))
        .route("/crm/v8/users/actions/count", get(users::users_count))
        .route("/crm/v8/users/{id}", get(users::user))
        .route("/crm/v8/users/{id}/{*rest}", any(errors::url_pattern_invalid))
        .route("/crm/v8/org", get(users::org))
        .route("/crm/v8/actions/watch", get(watch::list).post(watch::enable).put(watch::update).patch(watch::disable).delete(watch::delete))
        .route("/crm/v8/{module}", get(listing::list).post(records::create).put(records::update).delete(records::delete))
        .route("/crm/v8/{module}/upsert", post(records::upsert))
        .route("/crm/v8/{module}/search", get(search::search))
        .route("/crm/v8/{module}/deleted", get(listing::deleted))
        .route("/crm/v8/{module}/actions/count", get(search::count))
        .route("/crm/v8/{module}/{id}", get(records::get_one).put(records::update_one).delete(records::delete_one))
        .fallback(errors::url_pattern_invalid)
        .method_not_allowed_fallback(errors::method_invalid)
        .layer(from_fn_with_state(zoho.clone(), api_guard))
        .with_state(zoho.clone());
    Router::new()
        .merge(authorize)
        .merge(accounts)
        .merge(api)
        .merge(control::routes(zoho.clone()))
        .merge(crate::control::common_routes(zoho))
}

/// A request body read as JSON whatever its `Content-Type` (Zoho's SDKs send their JSON bodies
/// without one); `None` when it is not JSON.
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        Ok(JsonBody(serde_json::from_slice(&bytes).ok()))
    }
}

/// `2026-12-06T10:15:30+00:00`: Zoho's times, to the second, with the organisation's offset.
pub fn zoho_time(unix_ms: i64) -> String {
    let text = crate::time::iso_seconds(unix_ms);
    match text.strip_suffix('Z') {
        Some(head) => format!("{head}+00:00"),
        None => text,
    }
}

/// The access token of a request: `Authorization: Zoho-oauthtoken …` as Zoho's clients send it
/// (`Bearer …` is taken too).
fn zoho_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token =
        value.strip_prefix("Zoho-oauthtoken ").or_else(|| value.strip_prefix("Bearer ")).or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Whether the grant holds a scope for `service` (`modules`, `settings`, `users`, `org`,
/// `notifications`), optionally narrowed to `sub` (a module or a settings resource) and the
/// operation (`READ`, `CREATE`, `UPDATE`, `DELETE`): `ZohoCRM.modules.ALL` covers every module
/// and operation, `ZohoCRM.modules.deals.READ` only reading deals.
pub fn require_scope(token: &AccessToken, service: &str, sub: Option<&str>, operation: &str) -> Result<(), Response> {
    let mut allowed = vec![format!("zohocrm.{service}.all"), format!("zohocrm.{service}.{operation}").to_lowercase()];
    if let Some(sub) = sub {
        allowed.push(format!("zohocrm.{service}.{sub}.all").to_lowercase());
        allowed.push(format!("zohocrm.{service}.{sub}.{operation}").to_lowercase());
    }
    if token.grant.scopes.iter().any(|s| allowed.contains(&s.to_lowercase())) {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", json!({})))
    }
}

/// A call's slot in its app's concurrency limit, given back when dropped.
struct InFlight<'a> {
    zoho: &'a Zoho,
    app: String,
}

impl Zoho {
    /// Takes a slot for a call of `app`, unless `limit` calls of it are in flight already.
    fn enter(&self, app: &str, limit: u32) -> Option<InFlight<'_>> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = in_flight.entry(app.to_string()).or_default();
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(InFlight { zoho: self, app: app.to_string() })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.zoho.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = in_flight.get_mut(&self.app) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn api_guard(State(zoho): State<Arc<Zoho>>, mut request: Request, next: Next) -> Response {
    let Some(token) = zoho_token(request.headers()) else {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "Authentication failed", json!({}));
    };
    let access = match zoho.oauth.access(&token) {
        Ok(access) if !zoho.faults.tokens_expired() => access,
        _ => return error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "invalid oauth token", json!({})),
    };
    // The call holds one of the organisation's concurrent slots until it is answered (added
    // latency included, as a slow call would).
    let limit = zoho.concurrency_limit.load(Ordering::Relaxed);
    let Some(_slot) = zoho.enter(&access.grant.client_id, limit) else {
        tracing::warn!(limit, "Zoho sandbox: concurrency limit reached");
        return error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "concurrency limit exceeded", json!({"limit": limit}));
    };
    match zoho.faults.draw(request.method().as_str(), request.uri().path()).await {
        Some(Fault::Drop) => return dropped_connection(),
        Some(Fault::Status(StatusCode::TOO_MANY_REQUESTS)) => {
            return error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "too many requests (sandbox fault)", json!({}))
        }
        Some(Fault::Status(StatusCode::BAD_REQUEST)) => {
            return error(StatusCode::BAD_REQUEST, "INVALID_DATA", "invalid data (sandbox fault)", json!({}))
        }
        Some(Fault::Status(status)) => {
            return error(status, "INTERNAL_ERROR", "Internal server error occurred.", json!({"status": status.as_u16()}))
        }
        None => {}
    }
    // Every call costs one credit (Zoho's dearer calls, such as lead conversion or bulk jobs,
    // are not served here).
    if let Err(refused) = zoho.charge(1) {
        return refused;
    }
    request.extensions_mut().insert(access);
    next.run(request).await
}

//! The Pipedrive sandbox: Pipedrive's real paths at the root (`/oauth/authorize`, `/oauth/token`,
//! `/api/v1/...`, `/api/v2/...`), its `{success, data, additional_data}` envelopes and error
//! shape, and its rate limits (a two-second burst window per token and a daily budget spent by
//! each operation's token cost).

mod authorize;
mod contacts;
pub mod data;
mod deals;
mod fields;
mod listing;
mod organizations;
mod persons;
mod pipelines;
pub mod seed;
pub mod webhooks;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::{dropped_connection, Fault, Faults};
use crate::oauth::{self, AccessToken, OAuthClient, OAuthConfig, OAuthServer, SandboxUser, TokenError};
use crate::persist::Snapshots;
use crate::time::Clock;
use data::{Organization, PdData, Person};

pub const ACCESS_TOKEN_TTL_SECS: i64 = 3599;
pub const BURST_WINDOW_MS: i64 = 2_000;

#[derive(Clone, Debug)]
pub struct PipedriveConfig {
    pub company_id: u64,
    /// Which company of the sandbox this is (0 the first): later ones get their own name.
    pub account_index: usize,
    pub clients: Vec<OAuthClient>,
    pub user: SandboxUser,
    /// Requests per token per two seconds; 0 turns the limit off.
    pub burst_limit: u32,
    /// Token budget per company per day (each operation costs its `x-token-cost`).
    pub daily_tokens: u64,
    /// The sandbox's own URL, returned as `api_domain` with tokens.
    pub api_domain: String,
    /// Delivery attempts per webhook event (Pipedrive retries a failed delivery three times).
    pub webhook_max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub webhook_retry_base_ms: u64,
    /// The scopes registered with each app (by client id), as in Pipedrive's Developer Hub: what
    /// an authorization request, which names no scope, is granted.
    pub app_scopes: HashMap<String, Vec<String>>,
}

/// The scopes Tandem's demo app registers: deals, persons and organizations, users, and webhooks.
pub const DEMO_APP_SCOPES: [&str; 4] = ["deals:full", "contacts:full", "users:read", "admin"];

impl PipedriveConfig {
    /// A company with `clients` registered, each with the demo app's scopes.
    pub fn new(clients: Vec<OAuthClient>) -> PipedriveConfig {
        let app_scopes = clients.iter().map(|c| (c.client_id.clone(), DEMO_APP_SCOPES.map(String::from).to_vec())).collect();
        PipedriveConfig {
            company_id: 7_701_234,
            account_index: 0,
            clients,
            user: SandboxUser { email: "dana@pipedrive-sandbox.example".into(), password: "sandbox".into(), name: "Dana Whitfield".into() },
            burst_limit: 80,
            daily_tokens: 300_000,
            api_domain: String::new(),
            webhook_max_attempts: 4,
            webhook_retry_base_ms: 1_000,
            app_scopes,
        }
    }

    /// The `index`th company of the sandbox (0 is this one).
    pub fn for_account(&self, index: usize) -> PipedriveConfig {
        let mut config = self.clone();
        config.company_id += index as u64;
        config.account_index = index;
        config
    }

    /// A new company as this config describes it.
    fn fresh(&self) -> PdData {
        let mut data = seed::fresh(self.company_id);
        if self.account_index > 0 {
            data.company_name = format!("{} {}", data.company_name, self.account_index + 1);
            data.company_domain = format!("{}-{}", data.company_domain, self.account_index + 1);
        }
        data
    }
}

pub struct Pipedrive {
    config: PipedriveConfig,
    data: RwLock<PdData>,
    pub oauth: OAuthServer,
    pub faults: Faults,
    burst: Mutex<HashMap<String, VecDeque<i64>>>,
    /// The day (UTC) the budget is being spent on, and the tokens spent on it.
    spent_today: Mutex<(i64, u64)>,
    clock: Clock,
    burst_limit: AtomicU32,
    dirty: AtomicBool,
    pub webhook_stats: webhooks::DeliveryStats,
    /// Requests answered 429 (the burst window or the daily token budget).
    rate_limited: std::sync::atomic::AtomicU64,
}

impl Pipedrive {
    pub fn new(config: PipedriveConfig, saved: Option<PdData>) -> Arc<Pipedrive> {
        let mut data = saved.unwrap_or_else(|| config.fresh());
        let oauth_data = std::mem::take(&mut data.oauth);
        let oauth = OAuthServer::new(
            OAuthConfig {
                provider: "Pipedrive",
                clients: config.clients.clone(),
                user: config.user.clone(),
                access_ttl_secs: ACCESS_TOKEN_TTL_SECS,
                rotate_refresh_tokens: true,
                implied_scopes: vec!["base".into()],
                token_prefix: "v1u:",
            },
            oauth_data,
        );
        Arc::new(Pipedrive {
            burst_limit: AtomicU32::new(config.burst_limit),
            config,
            data: RwLock::new(data),
            oauth,
            faults: Faults::default(),
            burst: Mutex::new(HashMap::new()),
            spent_today: Mutex::new((0, 0)),
            clock: Clock::default(),
            dirty: AtomicBool::new(false),
            webhook_stats: webhooks::DeliveryStats::default(),
            rate_limited: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, PdData> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, PdData> {
        let guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        // Marked once the lock is held, so a snapshot cannot clear the flag before the change.
        self.dirty.store(true, Ordering::Relaxed);
        guard
    }

    /// The data without marking it changed (the webhook outbox is not part of the snapshot).
    pub(crate) fn data_quiet(&self) -> RwLockWriteGuard<'_, PdData> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_api_domain(&mut self, url: String) {
        self.config.api_domain = url;
    }

    /// Requests the company refused for its limits since it started.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Counts a request of `cost` tokens against the token's two-second window and the company's
    /// daily budget, which starts again at midnight UTC; `Err` is the 429.
    fn count_request(&self, token: &str, cost: u64) -> Result<(u32, u32, u64), Response> {
        let max = self.burst_limit.load(Ordering::Relaxed);
        let now = self.clock.now();
        let mut burst = self.burst.lock().unwrap_or_else(|p| p.into_inner());
        let window = burst.entry(token.to_string()).or_default();
        while window.front().is_some_and(|t| *t <= now - BURST_WINDOW_MS) {
            window.pop_front();
        }
        let mut today = self.spent_today.lock().unwrap_or_else(|p| p.into_inner());
        let day = crate::time::day_number(now, 0);
        if today.0 != day {
            *today = (day, 0);
        }
        let spent = &mut today.1;
        if (max > 0 && window.len() as u32 >= max) || *spent + cost > self.config.daily_tokens {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(failure(StatusCode::TOO_MANY_REQUESTS, "Request over limit"));
        }
        window.push_back(now);
        *spent += cost;
        Ok((max, max.saturating_sub(window.len() as u32), self.config.daily_tokens - *spent))
    }
}

impl crate::control::Controlled for Pipedrive {
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn oauth(&self) -> &OAuthServer {
        &self.oauth
    }

    fn reset(&self) {
        *self.write() = self.config.fresh();
        self.burst.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.spent_today.lock().unwrap_or_else(|p| p.into_inner()) = (0, 0);
    }

    fn set_rate_limit(&self, limit: u32) {
        self.burst_limit.store(limit, Ordering::Relaxed);
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn move_clock(&self, offset_ms: i64) {
        self.clock.set_offset(offset_ms);
        self.burst.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl crate::accounts::Account for Pipedrive {
    fn account_id(&self) -> String {
        self.config.company_id.to_string()
    }

    fn account_name(&self) -> String {
        self.read().company_name.clone()
    }
}

impl Snapshots for Pipedrive {
    type Data = PdData;

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
        write_map_chunked(out, "persons", &|f| f(Some(&*self.read().persons)))?;
        out.write_all(b",")?;
        write_map_chunked(out, "organizations", &|f| f(Some(&*self.read().organizations)))?;
        let data = self.read();
        // Every other field, written under one lock (a new field fails to compile here).
        let PdData {
            company_id,
            company_name,
            company_domain,
            next_id,
            users,
            pipelines,
            stages,
            deal_fields,
            deals: _,
            changelog,
            person_fields,
            organization_fields,
            persons: _,
            organizations: _,
            oauth: _,
            webhooks,
            outbox: _,
        } = &*data;
        write_field(out, "company_id", company_id)?;
        write_field(out, "company_name", company_name)?;
        write_field(out, "company_domain", company_domain)?;
        write_field(out, "next_id", next_id)?;
        write_field(out, "users", users)?;
        write_field(out, "pipelines", pipelines)?;
        write_field(out, "stages", stages)?;
        write_field(out, "deal_fields", deal_fields)?;
        write_field(out, "changelog", changelog)?;
        write_field(out, "person_fields", person_fields)?;
        write_field(out, "organization_fields", organization_fields)?;
        write_field(out, "webhooks", webhooks)?;
        drop(data);
        write_field(out, "oauth", &self.oauth.snapshot())?;
        out.write_all(b"}")
    }
}

pub fn router(pipedrive: Arc<Pipedrive>) -> Router {
    // The sign-in page and form know the apps' registered scopes; the decision is the shared one.
    let authorize = Router::new()
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/authorize/login", post(authorize::login))
        .with_state(pipedrive.clone())
        .merge(Router::new().route("/oauth/authorize/decision", post(oauth::decide)).with_state(pipedrive.oauth.clone()));
    let api = Router::new()
        .route("/api/v2/deals", get(deals::list).post(deals::create))
        .route("/api/v2/deals/{id}", get(deals::get_one).patch(deals::update).delete(deals::delete))
        .route("/api/v2/persons", get(contacts::list::<Person>).post(contacts::create::<Person>))
        .route(
            "/api/v2/persons/{id}",
            get(contacts::get_one::<Person>).patch(contacts::update::<Person>).delete(contacts::delete::<Person>),
        )
        .route("/api/v2/organizations", get(contacts::list::<Organization>).post(contacts::create::<Organization>))
        .route(
            "/api/v2/organizations/{id}",
            get(contacts::get_one::<Organization>).patch(contacts::update::<Organization>).delete(contacts::delete::<Organization>),
        )
        .route("/api/v2/pipelines", get(pipelines::list_pipelines).post(pipelines::add_pipeline))
        .route("/api/v2/pipelines/{id}", get(pipelines::get_pipeline).patch(pipelines::update_pipeline).delete(pipelines::delete_pipeline))
        .route("/api/v2/stages", get(pipelines::list_stages).post(pipelines::add_stage))
        .route("/api/v2/stages/{id}", get(pipelines::get_stage).patch(pipelines::update_stage).delete(pipelines::delete_stage))
        .route("/api/v2/dealFields", get(fields::deal_fields_v2).post(fields::add_deal_field_v2))
        .route("/api/v2/personFields", get(fields::person_fields_v2).post(fields::add_person_field_v2))
        .route("/api/v2/organizationFields", get(fields::organization_fields_v2).post(fields::add_organization_field_v2))
        .route("/api/v1/dealFields", get(fields::deal_fields).post(fields::add_deal_field))
        .route("/api/v1/personFields", get(fields::person_fields).post(fields::add_person_field))
        .route("/api/v1/organizationFields", get(fields::organization_fields).post(fields::add_organization_field))
        .route("/api/v1/deals/summary", get(deals::deals_summary))
        .route("/api/v1/deals/{id}/changelog", get(deals::changelog))
        .route("/api/v1/users/me", get(users_me))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::add))
        .route("/api/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .layer(from_fn_with_state(pipedrive.clone(), api_guard))
        .with_state(pipedrive.clone());
    let tokens = Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/token/", post(token))
        .route("/oauth/revoke", post(revoke))
        .with_state(pipedrive.clone());
    authorize
        .merge(api)
        .merge(tokens)
        .merge(deals::control_routes(pipedrive.clone()))
        .merge(contacts::control_routes(pipedrive.clone()))
        .merge(Router::new().route("/_sandbox/webhooks", get(webhooks::stats)).with_state(pipedrive.clone()))
        .merge(crate::control::common_routes(pipedrive))
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "Unknown method .") })
}

// ---- Envelopes and errors in Pipedrive's shape ----

pub fn failure(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({
            "success": false,
            "error": error,
            "errorCode": status.as_u16(),
            "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
            "data": null,
            "additional_data": null,
        })),
    )
        .into_response()
}

pub fn ok(data: Value) -> Response {
    Json(json!({"success": true, "data": data})).into_response()
}

/// The scopes that allow a call: a `:full` scope covers its `:read`.
pub fn require_scope(token: &AccessToken, read: &str) -> Result<(), Response> {
    let full = read.replace(":read", ":full");
    if token.grant.scopes.iter().any(|s| s == read || s == &full || s == "admin") {
        Ok(())
    } else {
        Err(failure(StatusCode::FORBIDDEN, "Scope and URL mismatch"))
    }
}

/// The scopes that allow a call when the spec lists them one by one (`admin` always does).
pub fn require_any_scope(token: &AccessToken, scopes: &[&str]) -> Result<(), Response> {
    if token.grant.scopes.iter().any(|s| s == "admin" || scopes.contains(&s.as_str())) {
        Ok(())
    } else {
        Err(failure(StatusCode::FORBIDDEN, "Scope and URL mismatch"))
    }
}

/// A 400 for a body or query that does not validate.
pub fn invalid(message: &str) -> Response {
    failure(StatusCode::BAD_REQUEST, &format!("Validation failed: {message}"))
}

/// A path id, which must be an integer.
pub fn parse_id(raw: &str) -> Result<u64, Response> {
    raw.parse::<u64>().map_err(|_| invalid("id: must be an integer"))
}

/// A JSON object body, or the 400 Pipedrive answers.
pub fn json_body(body: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> Result<serde_json::Map<String, Value>, Response> {
    match body {
        Ok(Json(Value::Object(map))) => Ok(map),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(e) => Err(failure(StatusCode::BAD_REQUEST, &format!("Invalid JSON body: {e}"))),
    }
}

/// The token cost of an operation (the spec's `x-token-cost`).
fn token_cost(method: &Method, path: &str) -> u64 {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v2", "deals" | "persons" | "organizations"]) => 10,
        ("GET", ["api", "v2", "pipelines" | "stages"]) => 5,
        ("GET", ["api", "v1", "dealFields" | "personFields" | "organizationFields"]) => 20,
        ("GET", ["api", "v2", "dealFields" | "personFields" | "organizationFields"]) => 10,
        ("GET", ["api", "v1", "deals", "summary"]) => 40,
        ("GET", ["api", "v1", "deals", _, "changelog"]) => 20,
        ("GET", ["api", "v1", "users", "me"]) => 2,
        ("GET", ["api", "v1", "users"]) => 20,
        ("POST", ["api", "v1", "users"]) => 10,
        ("POST", ["api", "v1", "dealFields" | "personFields" | "organizationFields"]) => 10,
        ("GET" | "POST", ["api", "v1", "webhooks"]) => 10,
        ("DELETE", ["api", "v1", "webhooks", _]) => 6,
        ("GET", _) => 1,
        ("POST" | "PATCH" | "PUT", _) => 5,
        ("DELETE", _) => 3,
        _ => 1,
    }
}

async fn api_guard(State(pipedrive): State<Arc<Pipedrive>>, mut request: Request, next: Next) -> Response {
    match pipedrive.faults.draw(request.method().as_str(), request.uri().path()).await {
        Some(Fault::Drop) => return dropped_connection(),
        Some(Fault::Status(StatusCode::BAD_REQUEST)) => return invalid("the values were refused (sandbox fault)"),
        Some(Fault::Status(status)) => return failure(status, status.canonical_reason().unwrap_or("error")),
        None => {}
    }
    let Some(token) = oauth::bearer(request.headers()) else {
        return failure(StatusCode::UNAUTHORIZED, "unauthorized access");
    };
    let access = match pipedrive.oauth.access(&token) {
        Ok(access) if !pipedrive.faults.tokens_expired() => access,
        Ok(_) | Err(true) => return failure(StatusCode::UNAUTHORIZED, "Access token expired"),
        Err(false) => return failure(StatusCode::UNAUTHORIZED, "unauthorized access"),
    };
    let cost = token_cost(request.method(), request.uri().path());
    let (limit, remaining, daily_left) = match pipedrive.count_request(&token, cost) {
        Ok(counts) => counts,
        Err(response) => return response,
    };
    request.extensions_mut().insert(access);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    set_header(headers, "x-ratelimit-limit", limit.to_string());
    set_header(headers, "x-ratelimit-remaining", remaining.to_string());
    set_header(headers, "x-ratelimit-reset", "2".to_string());
    set_header(headers, "x-daily-requests-left", daily_left.to_string());
    response
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

// ---- Tokens (HTTP Basic client authentication) ----

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
    code_verifier: Option<String>,
}

fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (id, secret) = String::from_utf8(decoded).ok()?.split_once(':').map(|(a, b)| (a.to_string(), b.to_string()))?;
    Some((id, secret))
}

fn token_error(e: TokenError) -> Response {
    let (status, error, description) = match e {
        TokenError::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client credentials".to_string()),
        TokenError::InvalidGrant(m) => (StatusCode::BAD_REQUEST, "invalid_grant", m.to_string()),
        TokenError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.to_string()),
        TokenError::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type".to_string()),
    };
    (status, Json(json!({"success": false, "error": error, "error_description": description, "message": description}))).into_response()
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
}

/// POST /oauth/revoke: revokes a refresh token (and with it the app's access), HTTP Basic client
/// auth. Pipedrive answers 200 with an empty body.
async fn revoke(State(pipedrive): State<Arc<Pipedrive>>, headers: HeaderMap, Form(form): Form<RevokeForm>) -> Response {
    let Some((client_id, secret)) = basic_client(&headers) else {
        return token_error(TokenError::InvalidClient);
    };
    if let Err(e) = pipedrive.oauth.authenticate_client(&client_id, &secret) {
        return token_error(e);
    }
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return token_error(TokenError::InvalidRequest("missing token"));
    };
    if form.token_type_hint.as_deref().is_some_and(|h| h != "refresh_token") {
        return token_error(TokenError::InvalidRequest("only refresh tokens can be revoked"));
    }
    if pipedrive.oauth.refresh_grant(&token).is_some_and(|g| g.client_id != client_id) {
        return token_error(TokenError::InvalidGrant("refresh token was issued to another client"));
    }
    pipedrive.oauth.revoke_refresh(&token);
    StatusCode::OK.into_response()
}

/// POST /oauth/token (`get-tokens` and `refresh-tokens`).
async fn token(State(pipedrive): State<Arc<Pipedrive>>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    pipedrive.faults.delay().await;
    let Some((client_id, secret)) = basic_client(&headers) else {
        return token_error(TokenError::InvalidClient);
    };
    if let Err(e) = pipedrive.oauth.authenticate_client(&client_id, &secret) {
        return token_error(e);
    }
    let issued = match form.grant_type.as_deref().unwrap_or("authorization_code") {
        "authorization_code" => match form.code.as_deref() {
            None => Err(TokenError::InvalidRequest("missing code")),
            Some(code) => pipedrive.oauth.exchange_code(&client_id, form.redirect_uri.as_deref(), code, form.code_verifier.as_deref()),
        },
        "refresh_token" => match form.refresh_token.as_deref() {
            None => Err(TokenError::InvalidRequest("missing refresh_token")),
            Some(refresh) => pipedrive.oauth.refresh(&client_id, refresh),
        },
        _ => Err(TokenError::UnsupportedGrantType),
    };
    match issued {
        Err(e) => token_error(e),
        Ok(issued) => Json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": issued.grant.scopes.join(","),
            "api_domain": pipedrive.config.api_domain,
        }))
        .into_response(),
    }
}

// ---- Users ----

/// GET /api/v1/users (`getUsers`): every user of the company (Tandem matches deal owners to
/// HubSpot owners by their email).
async fn users(State(pipedrive): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    if let Err(r) = require_any_scope(&token, &["users:read", "admin"]) {
        return r;
    }
    let data = pipedrive.read();
    let users: Vec<Value> = data.users.iter().map(|u| user_json(u, &token)).collect();
    ok(json!(users))
}

fn user_json(u: &data::User, token: &AccessToken) -> Value {
    json!({
        "id": u.id, "name": u.name, "email": u.email, "lang": 1, "locale": "en_US", "timezone_name": "Europe/Berlin",
        "timezone_offset": "+01:00", "default_currency": "USD", "icon_url": null, "active_flag": true, "is_deleted": false,
        "is_admin": 1, "role_id": 1, "activated": true, "last_login": "2026-01-01 09:00:00", "created": "2024-01-01 09:00:00",
        "modified": null, "has_created_company": true, "access": [{"app": "sales", "admin": true, "permission_set_id": "sandbox-admin"}],
        "phone": null, "is_you": u.email == token.grant.user_email,
    })
}

/// POST /api/v1/users (`addUser`, the `admin` scope): a user added to the company by email
/// (required; one user per email), named after it until they set their name.
async fn add_user(
    State(pipedrive): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(email) = body.get("email").and_then(Value::as_str).map(str::trim).filter(|e| e.contains('@')) else {
        return invalid("email: is required and must be an email address");
    };
    let email = email.to_ascii_lowercase();
    let mut data = pipedrive.write();
    if data.users.iter().any(|u| u.email.eq_ignore_ascii_case(&email)) {
        return invalid("A user with this email already exists in the company");
    }
    let name =
        body.get("name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| email.split('@').next().unwrap_or_default().into());
    let user = data::User { id: data.next_id(), name, email };
    data.users.push(user.clone());
    let json = user_json(&user, &token);
    data.emit("user", user.id, None, Some(json.clone()), crate::time::now_ms(), "api");
    ok(json)
}

async fn users_me(State(pipedrive): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    let data = pipedrive.read();
    let user = data.users.iter().find(|u| u.email == token.grant.user_email).or(data.users.first());
    let Some(user) = user else { return failure(StatusCode::NOT_FOUND, "User not found or not accessible.") };
    let mut me = user_json(user, &token);
    let company = json!({
        "company_id": data.company_id, "company_name": data.company_name, "company_domain": data.company_domain,
        "company_country": "DE", "company_industry": "Software", "language": {"language_code": "en", "country_code": "US"},
        "is_you": true,
    });
    if let (Some(me), Some(company)) = (me.as_object_mut(), company.as_object()) {
        me.extend(company.clone());
    }
    ok(me)
}

//! The control API for tests and demos, under `/_sandbox/` (never part of the emulated API):
//! reset, seed, edit a record "as a user of that app" at a chosen time, faults, rate limit, token
//! expiry.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::faults::{FaultConfig, Faults};
use crate::hubspot::data::ObjectType;
use crate::hubspot::{self, HubSpot};
use crate::oauth::OAuthServer;
use crate::time::now_ms;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SeedRequest {
    pub deals: usize,
    pub contacts: usize,
    pub companies: usize,
    pub seed: u64,
}

#[derive(Deserialize)]
pub struct EditRequest {
    pub properties: Map<String, Value>,
    /// When the user made the edit (Unix ms); now when absent.
    pub timestamp: Option<i64>,
}

#[derive(Deserialize)]
pub struct RateLimitRequest {
    /// Requests per window (HubSpot: per ten seconds; Pipedrive: per two seconds); 0 = off.
    pub limit: u32,
}

/// What every sandbox lets tests control.
pub trait Controlled: Send + Sync + 'static {
    fn faults(&self) -> &Faults;
    fn oauth(&self) -> &OAuthServer;
    /// Back to the freshly installed account (registered apps and their tokens stay).
    fn reset(&self);
    /// The provider's short-window request limit; 0 turns it off.
    fn set_rate_limit(&self, limit: u32);
    /// The clock the rate limits count by.
    fn clock(&self) -> &crate::time::Clock;
    /// Moves that clock (the short windows start afresh; the daily budgets follow the new day).
    fn move_clock(&self, offset_ms: i64);
}

#[derive(Deserialize)]
pub struct ClockRequest {
    /// The time the rate limits should read now (Unix ms)...
    pub now: Option<i64>,
    /// ...or their offset from the real time; `{"offset_ms": 0}` goes back to it.
    pub offset_ms: Option<i64>,
}

/// Reset, faults, rate limit and token expiry, the same for every sandbox.
pub fn common_routes<S: Controlled>(sandbox: Arc<S>) -> Router {
    Router::new()
        .route("/_sandbox/reset", post(reset::<S>))
        .route("/_sandbox/faults", get(faults::<S>).put(set_faults::<S>))
        .route("/_sandbox/rate-limit", put(rate_limit::<S>))
        .route("/_sandbox/expire-tokens", post(expire_tokens::<S>))
        .route("/_sandbox/tokens", post(mint_token::<S>))
        .route("/_sandbox/revoke-tokens", post(revoke_tokens::<S>))
        .route("/_sandbox/oauth-stats", get(oauth_stats::<S>))
        .route("/_sandbox/clock", get(clock::<S>).put(set_clock::<S>))
        .with_state(sandbox)
}

async fn reset<S: Controlled>(State(sandbox): State<Arc<S>>) -> StatusCode {
    tracing::info!("sandbox reset");
    sandbox.reset();
    StatusCode::NO_CONTENT
}

async fn faults<S: Controlled>(State(sandbox): State<Arc<S>>) -> Json<FaultConfig> {
    Json(sandbox.faults().get())
}

async fn set_faults<S: Controlled>(State(sandbox): State<Arc<S>>, Json(config): Json<FaultConfig>) -> Json<FaultConfig> {
    sandbox.faults().set(config);
    Json(sandbox.faults().get())
}

async fn rate_limit<S: Controlled>(State(sandbox): State<Arc<S>>, Json(req): Json<RateLimitRequest>) -> StatusCode {
    tracing::warn!(limit = req.limit, "sandbox rate limit changed");
    sandbox.set_rate_limit(req.limit);
    StatusCode::NO_CONTENT
}

fn clock_json(clock: &crate::time::Clock) -> Json<Value> {
    Json(json!({"now": clock.now(), "offset_ms": clock.offset()}))
}

async fn clock<S: Controlled>(State(sandbox): State<Arc<S>>) -> Json<Value> {
    clock_json(sandbox.clock())
}

/// Moves the clock the rate limits count by, so that a test reaches the next day at once.
async fn set_clock<S: Controlled>(State(sandbox): State<Arc<S>>, Json(req): Json<ClockRequest>) -> Response {
    let offset = match (req.now, req.offset_ms) {
        (Some(now), None) => now - now_ms(),
        (None, Some(offset)) => offset,
        _ => return bad("give either \"now\" (Unix ms) or \"offset_ms\"".to_string()),
    };
    tracing::warn!(offset_ms = offset, "sandbox rate-limit clock moved");
    sandbox.move_clock(offset);
    clock_json(sandbox.clock()).into_response()
}

async fn expire_tokens<S: Controlled>(State(sandbox): State<Arc<S>>) -> Json<Value> {
    let n = sandbox.oauth().expire_access_tokens();
    tracing::warn!(tokens = n, "sandbox expired every access token");
    Json(json!({"expired": n}))
}

/// Revokes every token, as when the account's admin removes the app on the provider's side.
async fn revoke_tokens<S: Controlled>(State(sandbox): State<Arc<S>>) -> Json<Value> {
    let n = sandbox.oauth().revoke_all();
    tracing::warn!(refresh_tokens = n, "sandbox revoked every token");
    Json(json!({"revoked": n}))
}

/// Token requests answered so far, by grant.
async fn oauth_stats<S: Controlled>(State(sandbox): State<Arc<S>>) -> Json<crate::oauth::GrantStats> {
    Json(sandbox.oauth().stats())
}

#[derive(Deserialize)]
pub struct MintRequest {
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Tokens for a registered app without the browser flow.
async fn mint_token<S: Controlled>(State(sandbox): State<Arc<S>>, Json(req): Json<MintRequest>) -> Response {
    match sandbox.oauth().mint(&req.client_id, req.scopes) {
        None => bad(format!("no registered app with client_id {:?}", req.client_id)),
        Some(issued) => Json(json!({
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "scopes": issued.grant.scopes,
        }))
        .into_response(),
    }
}

pub fn hubspot_routes(hubspot: Arc<HubSpot>) -> Router {
    Router::new()
        .route("/_sandbox/seed", post(hs_seed))
        .route("/_sandbox/summary", get(hs_summary))
        .route("/_sandbox/objects/{object_type}", post(hs_create_as_user))
        .route("/_sandbox/objects/{object_type}/{id}", patch(hs_edit_as_user))
        .with_state(hubspot.clone())
        .merge(common_routes(hubspot))
}

async fn hs_seed(State(hubspot): State<Arc<HubSpot>>, Json(req): Json<SeedRequest>) -> Json<Value> {
    let started = std::time::Instant::now();
    hubspot::seed::generate(&mut hubspot.write(), req.deals, req.contacts, req.companies, req.seed, now_ms());
    tracing::info!(deals = req.deals, contacts = req.contacts, companies = req.companies, "sandbox seeded");
    Json(
        json!({"seeded": {"deals": req.deals, "contacts": req.contacts, "companies": req.companies}, "ms": started.elapsed().as_millis() as u64}),
    )
}

async fn hs_summary(State(hubspot): State<Arc<HubSpot>>) -> Json<Value> {
    let data = hubspot.read();
    let counts: Map<String, Value> = ObjectType::ALL
        .iter()
        .map(|o| {
            let live = data.records(*o).filter(|r| !r.archived).count();
            let archived = data.records(*o).filter(|r| r.archived).count();
            (o.name().to_string(), json!({"live": live, "archived": archived}))
        })
        .collect();
    Json(json!({
        "portalId": data.portal_id,
        "records": counts,
        "pipelines": data.pipelines.len(),
        "rateLimited": hubspot.rate_limited(),
    }))
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"message": message}))).into_response()
}

/// Creates a record as a user of HubSpot would, at a chosen time.
async fn hs_create_as_user(State(hubspot): State<Arc<HubSpot>>, Path(raw): Path<String>, Json(req): Json<EditRequest>) -> Response {
    let Some(object) = ObjectType::parse(&raw) else { return bad(format!("unknown object type {raw}")) };
    let mut data = hubspot.write();
    let properties = match hubspot::objects_validate(&data, object, None, &req.properties) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let id = data.insert_record(object, properties, req.timestamp.unwrap_or_else(now_ms), "CRM_UI");
    (StatusCode::CREATED, Json(json!({"id": id.to_string()}))).into_response()
}

/// Edits a record as a user of HubSpot would, at a chosen time (property history and the
/// modification date follow that time).
async fn hs_edit_as_user(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, u64)>,
    Json(req): Json<EditRequest>,
) -> Response {
    let Some(object) = ObjectType::parse(&raw) else { return bad(format!("unknown object type {raw}")) };
    let mut data = hubspot.write();
    let Some(existing) = data.records.get(&object).and_then(|m| m.get(&id)).cloned() else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": format!("no {raw} with id {id}")}))).into_response();
    };
    let properties: BTreeMap<String, String> = match hubspot::objects_validate(&data, object, Some(&existing), &req.properties) {
        Ok(p) => p,
        Err(response) => return response,
    };
    data.update_record(object, id, properties, req.timestamp.unwrap_or_else(now_ms), "CRM_UI");
    StatusCode::NO_CONTENT.into_response()
}

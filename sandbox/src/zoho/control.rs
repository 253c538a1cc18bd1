//! The Zoho sandbox's own control routes (beside the common ones): seed, summary, create and edit
//! a record as a Zoho user at a chosen time, the organisation's API credits, notification figures.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::answers::Answer;
use super::data::Module;
use super::records::{create_record, update_record};
use super::Zoho;

#[derive(Deserialize, Default)]
#[serde(default)]
struct SeedRequest {
    deals: usize,
    contacts: usize,
    accounts: usize,
    seed: u64,
}

#[derive(Deserialize)]
struct UserEdit {
    /// The record's fields as the API takes them.
    fields: Map<String, Value>,
    /// When the user made the change (Unix ms); now when absent.
    timestamp: Option<i64>,
    /// Who made it (a user's email); the organisation's first user when absent.
    user: Option<String>,
}

#[derive(Deserialize)]
struct CreditsRequest {
    total: u64,
}

pub fn routes(zoho: Arc<Zoho>) -> Router {
    Router::new()
        .route("/_sandbox/seed", post(seed))
        .route("/_sandbox/summary", get(summary))
        .route("/_sandbox/credits", get(credits).put(set_credits))
        .route("/_sandbox/notifications", get(super::delivery::stats))
        .route("/_sandbox/in-flight", get(in_flight))
        .route("/_sandbox/{module}", post(create_as_user))
        .route("/_sandbox/{module}/{id}", patch(edit_as_user))
        .with_state(zoho)
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"message": message}))).into_response()
}

/// `POST /_sandbox/seed` (`{"accounts": N, "contacts": N, "deals": N, "seed": S}`): accounts
/// first, then contacts on them, then deals linked to both.
async fn seed(State(zoho): State<Arc<Zoho>>, Json(req): Json<SeedRequest>) -> Json<Value> {
    super::seed::generate(&mut zoho.write(), req.deals, req.contacts, req.accounts, req.seed, zoho.clock.now());
    tracing::info!(deals = req.deals, contacts = req.contacts, accounts = req.accounts, "Zoho sandbox seeded");
    Json(json!({"seeded": {"deals": req.deals, "contacts": req.contacts, "accounts": req.accounts}}))
}

async fn summary(State(zoho): State<Arc<Zoho>>) -> Json<Value> {
    let data = zoho.read();
    let mut out = Map::new();
    out.insert("org_id".into(), json!(data.org_id.to_string()));
    for m in Module::ALL {
        let deleted = data.deleted.get(&m).map(|d| d.len()).unwrap_or(0);
        out.insert(m.api_name().to_lowercase(), json!({"live": data.table(m).len(), "deleted": deleted}));
    }
    out.insert("pipelines".into(), json!(data.pipelines.len()));
    out.insert("channels".into(), json!(data.watches.len()));
    Json(Value::Object(out))
}

/// `GET /_sandbox/in-flight`: the calls each connected app has in flight now (what the
/// concurrency limit counts).
async fn in_flight(State(zoho): State<Arc<Zoho>>) -> Json<Value> {
    Json(json!(zoho.in_flight()))
}

async fn credits(State(zoho): State<Arc<Zoho>>) -> Json<Value> {
    let (used, total) = (zoho.credits_used(), zoho.credits_total());
    Json(json!({"total": total, "used": used, "remaining": total.saturating_sub(used)}))
}

async fn set_credits(State(zoho): State<Arc<Zoho>>, Json(req): Json<CreditsRequest>) -> Json<Value> {
    tracing::warn!(total = req.total, "Zoho sandbox: API credit total changed");
    zoho.set_credits_total(req.total);
    credits(State(zoho)).await
}

fn user_of(zoho: &Zoho, email: Option<&str>) -> Result<u64, Response> {
    let data = zoho.read();
    match email {
        None => data.users.first().map(|u| u.id).ok_or_else(|| bad("the organisation has no users".into())),
        Some(e) => {
            data.users.iter().find(|u| u.email.eq_ignore_ascii_case(e)).map(|u| u.id).ok_or_else(|| bad(format!("no user with email {e}")))
        }
    }
}

/// The answer of a write as the control API gives it: the record's own answer, 201 or 204 on
/// success, 400 otherwise.
fn answered(answer: Answer, ok: StatusCode) -> Response {
    match (answer, ok) {
        (Answer::Failed(error), _) => (StatusCode::BAD_REQUEST, Json(error)).into_response(),
        (_, StatusCode::NO_CONTENT) => ok.into_response(),
        (answer, _) => (ok, Json(json!({"id": answer.id().map(|id| id.to_string())}))).into_response(),
    }
}

/// `POST /_sandbox/{module}`: creates a record as a Zoho user would, at `timestamp`.
async fn create_as_user(State(zoho): State<Arc<Zoho>>, Path(raw): Path<String>, Json(req): Json<UserEdit>) -> Response {
    let Some(module) = Module::parse(&raw) else { return bad(format!("unknown module {raw}")) };
    let user = match user_of(&zoho, req.user.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let at = req.timestamp.unwrap_or_else(|| zoho.clock.now()) / 1000 * 1000;
    let answer = create_record(&mut zoho.write(), module, &req.fields, 0, user, at);
    answered(answer, StatusCode::CREATED)
}

/// `PATCH /_sandbox/{module}/{id}`: edits a record as a Zoho user would, at `timestamp` (its
/// `Modified_Time` follows that time).
async fn edit_as_user(State(zoho): State<Arc<Zoho>>, Path((raw, id)): Path<(String, u64)>, Json(req): Json<UserEdit>) -> Response {
    let Some(module) = Module::parse(&raw) else { return bad(format!("unknown module {raw}")) };
    let user = match user_of(&zoho, req.user.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let at = req.timestamp.unwrap_or_else(|| zoho.clock.now()) / 1000 * 1000;
    let mut data = zoho.write();
    if !data.table(module).contains_key(&id) {
        return (StatusCode::NOT_FOUND, Json(json!({"message": format!("no {} record with id {id}", module.api_name())}))).into_response();
    }
    let answer = update_record(&mut data, module, id, &req.fields, 0, user, at);
    answered(answer, StatusCode::NO_CONTENT)
}

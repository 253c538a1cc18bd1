//! API v2 persons and organizations, one set of handlers for both: list (cursor, filters,
//! `updated_since`/`updated_until`, sorting), get, add, update and a soft delete (deleted records
//! leave lists and answer 404). Reading needs `contacts:read`, writing `contacts:full`. Also the
//! control routes that add or edit them as a Pipedrive user at a chosen time.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::data::{Organization, PdData, Person};
use super::listing::{data_written, list_written, ListQuery};
use super::{failure, invalid, json_body, ok, parse_id, require_scope, Pipedrive};
use crate::oauth::AccessToken;
use crate::table::{Row, Table};
use crate::time::{now_ms, parse_rfc3339};

/// What the shared handlers need of a person or an organization.
pub trait Contact: Row + Clone + Send + Sync + 'static {
    /// The 404 message.
    const NOT_FOUND: &'static str;
    /// The webhook `event_object` (`person`, `organization`).
    const ENTITY: &'static str;
    /// The integer filters of the list operation.
    const FILTERS: &'static [&'static str];
    fn blank(owner_id: u64, at: i64) -> Self;
    fn set_id(&mut self, id: u64);
    fn all(data: &PdData) -> &Table<Self>;
    fn all_mut(data: &mut PdData) -> &mut Table<Self>;
    fn is_deleted(&self) -> bool;
    fn mark_deleted(&mut self, at: i64);
    fn touch(&mut self, at: i64);
    /// Whether the record passes the list filter `name=value`.
    fn matches(&self, data: &PdData, name: &str, value: u64) -> bool;
    /// Applies the fields of an add or update body, checking each.
    fn apply(&mut self, data: &PdData, body: &Map<String, Value>, creating: bool) -> Result<(), Response>;
    /// Writes the record in the API v2 shape straight from the store (see [`crate::json::Object`]).
    fn write(&self, out: &mut Vec<u8>);
    /// The record in the API v2 shape, as a JSON value.
    fn to_json(&self) -> Value {
        let mut out = Vec::with_capacity(1024);
        self.write(&mut out);
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }
}

// ---- Checks shared by persons and organizations ----

pub fn owner(data: &PdData, value: &Value) -> Result<u64, Response> {
    let id = value.as_u64().ok_or_else(|| invalid("owner_id: must be an integer"))?;
    if data.users.iter().any(|u| u.id == id) {
        Ok(id)
    } else {
        Err(invalid("owner_id: no such user"))
    }
}

pub fn name(value: &Value) -> Result<String, Response> {
    match value.as_str().map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(invalid("name: must be a non-empty string")),
    }
}

/// `visible_to`: 1 (owner only), 3 (owner's visibility group), 5 (and sub-groups), 7 (everyone).
pub fn visible_to(value: &Value) -> Result<i64, Response> {
    match value.as_i64() {
        Some(v @ (1 | 3 | 5 | 7)) => Ok(v),
        _ => Err(invalid("visible_to: must be one of 1, 3, 5, 7")),
    }
}

pub fn label_ids(value: &Value) -> Result<Vec<u64>, Response> {
    serde_json::from_value(value.clone()).map_err(|_| invalid("label_ids: must be an array of integers"))
}

/// `add_time` on add: an RFC 3339 date-time.
pub fn add_time(value: &Value) -> Result<i64, Response> {
    value.as_str().and_then(parse_rfc3339).ok_or_else(|| invalid("add_time: must be an RFC 3339 date-time, e.g. 2025-01-01T10:20:00Z"))
}

pub fn opt_string(value: &Value, key: &str) -> Result<Option<String>, Response> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(invalid(&format!("{key}: must be a string or null"))),
    }
}

pub fn opt_integer(value: &Value, key: &str) -> Result<Option<i64>, Response> {
    match value {
        Value::Null => Ok(None),
        v => v.as_i64().map(Some).ok_or_else(|| invalid(&format!("{key}: must be an integer or null"))),
    }
}

// ---- Handlers ----

/// GET /api/v2/persons (`getPersons`), GET /api/v2/organizations (`getOrganizations`)
pub async fn list<T: Contact>(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = require_scope(&token, "contacts:read") {
        return r;
    }
    let query = match ListQuery::parse(raw.as_deref(), T::FILTERS) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let data = pd.read();
    let keep = |r: &T| !r.is_deleted() && query.keeps(r, |name, v| r.matches(&data, name, v));
    let (page, next) = query.page(T::all(&data), keep);
    list_written(&page, T::write, next)
}

/// GET /api/v2/persons/{id} (`getPerson`), GET /api/v2/organizations/{id} (`getOrganization`)
pub async fn get_one<T: Contact>(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
) -> Response {
    if let Err(r) = require_scope(&token, "contacts:read") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match T::all(&pd.read()).get(&id).filter(|r| !r.is_deleted()) {
        Some(r) => data_written(r, T::write),
        None => failure(StatusCode::NOT_FOUND, T::NOT_FOUND),
    }
}

fn create_record<T: Contact>(pd: &Pipedrive, body: &Map<String, Value>, at: i64) -> Result<T, Response> {
    let mut data = pd.write();
    let owner = data.users.first().map(|u| u.id).unwrap_or_default();
    let mut record = T::blank(owner, at);
    record.apply(&data, body, true)?;
    record.set_id(data.next_id());
    T::all_mut(&mut data).insert(record.id(), record.clone());
    data.emit(T::ENTITY, record.id(), None, Some(record.to_json()), at, "api");
    Ok(record)
}

fn update_record<T: Contact>(pd: &Pipedrive, id: u64, body: &Map<String, Value>, at: i64) -> Result<T, Response> {
    let mut data = pd.write();
    let Some(mut record) = T::all(&data).get(&id).filter(|r| !r.is_deleted()).cloned() else {
        return Err(failure(StatusCode::NOT_FOUND, T::NOT_FOUND));
    };
    let before = record.to_json();
    record.apply(&data, body, false)?;
    record.touch(at);
    T::all_mut(&mut data).insert(id, record.clone());
    data.emit(T::ENTITY, id, Some(before), Some(record.to_json()), at, "api");
    Ok(record)
}

/// POST /api/v2/persons (`addPerson`), POST /api/v2/organizations (`addOrganization`)
pub async fn create<T: Contact>(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "contacts:full") {
        return r;
    }
    match json_body(body).and_then(|b| create_record::<T>(&pd, &b, now_ms())) {
        Ok(record) => ok(record.to_json()),
        Err(r) => r,
    }
}

/// PATCH /api/v2/persons/{id} (`updatePerson`), PATCH /api/v2/organizations/{id} (`updateOrganization`)
pub async fn update<T: Contact>(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "contacts:full") {
        return r;
    }
    match parse_id(&raw).and_then(|id| json_body(body).and_then(|b| update_record::<T>(&pd, id, &b, now_ms()))) {
        Ok(record) => ok(record.to_json()),
        Err(r) => r,
    }
}

/// DELETE /api/v2/persons/{id} (`deletePerson`), DELETE /api/v2/organizations/{id}
/// (`deleteOrganization`): marks the record deleted.
pub async fn delete<T: Contact>(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
) -> Response {
    if let Err(r) = require_scope(&token, "contacts:full") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = pd.write();
    let now = now_ms();
    let before = T::all_mut(&mut data).get_mut(&id).filter(|r| !r.is_deleted()).map(|mut record| {
        let before = record.to_json();
        record.mark_deleted(now);
        before
    });
    match before {
        Some(before) => {
            data.emit(T::ENTITY, id, Some(before), None, now, "api");
            ok(json!({"id": id}))
        }
        None => failure(StatusCode::NOT_FOUND, T::NOT_FOUND),
    }
}

// ---- Control: acting as a Pipedrive user ----

#[derive(Deserialize)]
struct UserEdit {
    /// The fields as an API v2 body would give them.
    fields: Map<String, Value>,
    /// When the user made the change (Unix ms); now when absent.
    timestamp: Option<i64>,
}

/// `POST /_sandbox/persons` and `/_sandbox/organizations` (201 `{"id"}`), `PATCH .../{id}` (204).
pub fn control_routes(pd: Arc<Pipedrive>) -> Router {
    Router::new()
        .route("/_sandbox/persons", post(create_as_user::<Person>))
        .route("/_sandbox/persons/{id}", patch(edit_as_user::<Person>))
        .route("/_sandbox/organizations", post(create_as_user::<Organization>))
        .route("/_sandbox/organizations/{id}", patch(edit_as_user::<Organization>))
        .with_state(pd)
}

async fn create_as_user<T: Contact>(State(pd): State<Arc<Pipedrive>>, Json(req): Json<UserEdit>) -> Response {
    match create_record::<T>(&pd, &req.fields, req.timestamp.unwrap_or_else(now_ms)) {
        Ok(record) => (StatusCode::CREATED, Json(json!({"id": record.id()}))).into_response(),
        Err(r) => r,
    }
}

async fn edit_as_user<T: Contact>(State(pd): State<Arc<Pipedrive>>, Path(id): Path<u64>, Json(req): Json<UserEdit>) -> Response {
    match update_record::<T>(&pd, id, &req.fields, req.timestamp.unwrap_or_else(now_ms)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

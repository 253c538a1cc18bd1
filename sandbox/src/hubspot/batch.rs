//! Batch endpoints: read, create, update, upsert and archive, at most 100 inputs, answering 207
//! with per-item errors when some inputs fail.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::data::{HubData, ObjectType};
use super::objects::{record_json, validate, Fields};
use super::{error, require_scope, HubSpot};
use crate::json::IsoMs;
use crate::oauth::AccessToken;
use crate::time::now_ms;

pub const MAX_INPUTS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    inputs: Vec<Map<String, Value>>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    id_property: Option<String>,
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// One failed input, in HubSpot's `StandardError` shape.
fn item_error(category: &str, message: String, context: Value) -> Value {
    json!({"status": "error", "category": category, "message": message, "context": context, "errors": [], "links": {}})
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody<R> {
    status: &'static str,
    results: R,
    requested_at: IsoMs,
    started_at: IsoMs,
    completed_at: IsoMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_errors: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Value>,
}

/// The batch answer: `ok_status` when every input worked, else 207 with the errors.
fn batch_response<R: Serialize>(ok_status: StatusCode, results: R, errors: Vec<Value>, started: i64) -> Response {
    let status = if errors.is_empty() { ok_status } else { StatusCode::MULTI_STATUS };
    let body = BatchBody {
        status: "COMPLETE",
        results,
        requested_at: IsoMs(started),
        started_at: IsoMs(started),
        completed_at: IsoMs(now_ms()),
        num_errors: (!errors.is_empty()).then_some(errors.len()),
        errors,
    };
    crate::json::respond(status, &body)
}

/// Runs `each` on every input of a write batch under one lock: `Ok(Ok(result))` or `Ok(Err(error))`
/// per input; `Err` refuses the whole batch.
fn write_batch(
    hubspot: &HubSpot,
    input: &BatchInput,
    ok_status: StatusCode,
    each: impl FnMut(&mut HubData, usize, &Map<String, Value>) -> Result<Result<Value, Value>, Response>,
) -> Result<Response, Response> {
    write_batch_locked(&mut hubspot.write(), input, ok_status, each)
}

/// The same, under a write lock the caller already holds (having checked the batch under it).
fn write_batch_locked(
    data: &mut HubData,
    input: &BatchInput,
    ok_status: StatusCode,
    mut each: impl FnMut(&mut HubData, usize, &Map<String, Value>) -> Result<Result<Value, Value>, Response>,
) -> Result<Response, Response> {
    let started = now_ms();
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for (index, item) in input.inputs.iter().enumerate() {
        match each(data, index, item)? {
            Ok(result) => results.push(result),
            Err(error) => errors.push(error),
        }
    }
    Ok(batch_response(ok_status, results, errors, started))
}

fn parse(raw: &str, body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>) -> Result<(ObjectType, BatchInput), Response> {
    let object = ObjectType::parse(raw).ok_or_else(|| bad(format!("Unable to infer object type from: {raw}")))?;
    let Json(input) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    if input.inputs.len() > MAX_INPUTS {
        return Err(bad(format!("Batch input limit exceeded: at most {MAX_INPUTS} inputs, got {}", input.inputs.len())));
    }
    Ok((object, input))
}

fn input_id(input: &Map<String, Value>) -> Option<String> {
    input.get("id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The live records whose `property` holds one of `keys`, by (property, value): read from the
/// lookup index for email and domain, else found in one pass over the records (not one per input).
fn index_by(data: &HubData, object: ObjectType, keys: &[(String, String)]) -> HashMap<(String, String), u64> {
    let mut wanted: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut found = HashMap::new();
    for (property, key) in keys {
        match data.indexed_with(object, property, key) {
            Some(ids) => {
                if let Some(id) = ids.first() {
                    found.insert((property.clone(), key.clone()), *id);
                }
            }
            None => {
                wanted.entry(property.as_str()).or_default().insert(key.as_str());
            }
        }
    }
    if wanted.is_empty() {
        return found;
    }
    for record in data.records(object).filter(|r| !r.archived) {
        for (property, keys) in &wanted {
            if let Some(value) = record.properties.get(*property).filter(|v| keys.contains(v.as_str())) {
                found.entry((property.to_string(), value.clone())).or_insert(record.id);
            }
        }
    }
    found
}

fn input_properties(input: &Map<String, Value>) -> Map<String, Value> {
    input.get("properties").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// POST /crm/v3/objects/{objectType}/batch/read (`post-/crm/v3/objects/0-3/batch/read_read`)
pub async fn read(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (object, input) = parse(&raw, body)?;
    require_scope(&token, &object.scope(false))?;
    let started = now_ms();
    let fields = Fields::new(object, &input.properties, &input.properties_with_history);
    let data = hubspot.read();
    let by_property = match input.id_property.as_deref() {
        None | Some("hs_object_id") => None,
        Some(property) => {
            let keys: Vec<(String, String)> =
                input.inputs.iter().map(|item| (property.to_string(), input_id(item).unwrap_or_default())).collect();
            Some((property, index_by(&data, object, &keys)))
        }
    };
    let records = data.records.get(&object);
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for item in &input.inputs {
        let id = input_id(item).unwrap_or_default();
        let record_id = match &by_property {
            None => id.parse::<u64>().ok(),
            Some((property, index)) => index.get(&(property.to_string(), id.clone())).copied(),
        };
        let found = record_id.and_then(|n| records?.get(&n));
        match found.filter(|r| !r.archived) {
            Some(record) => results.push(fields.view(record)),
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![item_error(
            "OBJECT_NOT_FOUND",
            format!(
                "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                object.name().to_uppercase()
            ),
            json!({"ids": missing}),
        )]
    };
    Ok(batch_response(StatusCode::OK, results, errors, started))
}

/// POST /crm/v3/objects/{objectType}/batch/create (`post-/crm/v3/objects/0-3/batch/create_create`): 201.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (object, input) = parse(&raw, body)?;
    require_scope(&token, &object.scope(true))?;
    for item in &input.inputs {
        hubspot.check_required("SimplePublicObjectInputForCreate", item, &["associations", "properties"])?;
    }
    let mut emails: HashSet<String> = HashSet::new();
    if object == ObjectType::Contacts {
        for item in &input.inputs {
            let Some(email) =
                input_properties(item).get("email").and_then(Value::as_str).map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty())
            else {
                continue;
            };
            if !emails.insert(email) {
                return Err(super::error(StatusCode::CONFLICT, "CONFLICT", "Duplicate emails found in the batch inputs"));
            }
        }
    }
    // One email per contact: a batch holding an email that a contact has is refused whole,
    // naming the first contact that has it; nothing is created. Checked under the lock the
    // batch is written under, so batches sent together cannot each pass it.
    let mut data = hubspot.write();
    if let Some(existing) = data.contact_with_email(&emails, None) {
        return Err(super::contact_exists(existing));
    }
    write_batch_locked(&mut data, &input, StatusCode::CREATED, |data, index, item| {
        let properties = input_properties(item);
        Ok(match validate(data, object, None, &properties) {
            Err(_) => Err(item_error(
                "VALIDATION_ERROR",
                format!("Input {index} has invalid property values"),
                json!({"index": [index.to_string()]}),
            )),
            Ok(values) => {
                let id = data.insert_record(object, values, now_ms(), "INTEGRATION");
                let wanted: Vec<String> = properties.keys().cloned().collect();
                Ok(record_json(&data.records[&object][&id], object, &wanted, &[]))
            }
        })
    })
}

/// POST /crm/v3/objects/{objectType}/batch/update (`post-/crm/v3/objects/0-3/batch/update_update`)
pub async fn update(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (object, input) = parse(&raw, body)?;
    require_scope(&token, &object.scope(true))?;
    write_batch(&hubspot, &input, StatusCode::OK, |data, _, item| {
        let id = input_id(item).unwrap_or_default();
        let properties = input_properties(item);
        let existing = id.parse::<u64>().ok().and_then(|n| data.records.get(&object)?.get(&n)).filter(|r| !r.archived).cloned();
        let Some(existing) = existing else {
            return Ok(Err(item_error("OBJECT_NOT_FOUND", format!("Object {id} not found"), json!({"ids": [id]}))));
        };
        let values = match validate(data, object, Some(&existing), &properties) {
            Err(_) => {
                return Ok(Err(item_error("VALIDATION_ERROR", format!("Object {id} has invalid property values"), json!({"ids": [id]}))))
            }
            Ok(values) => values,
        };
        data.update_record(object, existing.id, values, now_ms(), "INTEGRATION");
        Ok(Ok(record_json(&data.records[&object][&existing.id], object, &properties.keys().cloned().collect::<Vec<_>>(), &[])))
    })
}

/// POST /crm/v3/objects/{objectType}/batch/upsert (`post-/crm/v3/objects/0-3/batch/upsert_upsert`):
/// matches on a unique property (`idProperty`), creating what is missing; each result says `new`.
pub async fn upsert(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (object, input) = parse(&raw, body)?;
    require_scope(&token, &object.scope(true))?;
    let id_property_of =
        |item: &Map<String, Value>| item.get("idProperty").and_then(Value::as_str).map(str::to_string).or(input.id_property.clone());
    let keys: Vec<(String, String)> =
        input.inputs.iter().filter_map(|item| Some((id_property_of(item)?, input_id(item).unwrap_or_default()))).collect();
    let mut index: Option<HashMap<(String, String), u64>> = None;
    write_batch(&hubspot, &input, StatusCode::OK, |data, _, item| {
        let Some(id_property) = id_property_of(item) else {
            return Err(bad("upsert needs an idProperty naming a unique property"));
        };
        let unique =
            data.property(object, &id_property).is_some_and(|p| p.unique) || (object == ObjectType::Contacts && id_property == "email");
        if !unique {
            return Err(bad(format!("{id_property} is not a unique property and cannot be used as idProperty")));
        }
        let key = input_id(item).unwrap_or_default();
        let mut properties = input_properties(item);
        properties.insert(id_property.clone(), Value::String(key.clone()));
        // Matched through an index of the batch's keys, built once under the write lock.
        let index = index.get_or_insert_with(|| index_by(data, object, &keys));
        let existing = index
            .get(&(id_property.clone(), key.clone()))
            .and_then(|id| data.records.get(&object)?.get(id))
            .filter(|r| !r.archived)
            .cloned();
        let values = match validate(data, object, existing.as_ref(), &properties) {
            Err(_) => {
                return Ok(Err(item_error("VALIDATION_ERROR", format!("Input {key} has invalid property values"), json!({"ids": [key]}))))
            }
            Ok(values) => values,
        };
        let (id, new) = match existing {
            Some(record) => {
                data.update_record(object, record.id, values, now_ms(), "INTEGRATION");
                (record.id, false)
            }
            None => {
                let id = data.insert_record(object, values, now_ms(), "INTEGRATION");
                index.insert((id_property.clone(), key.clone()), id);
                (id, true)
            }
        };
        let wanted: Vec<String> = properties.keys().cloned().collect();
        let mut result = record_json(&data.records[&object][&id], object, &wanted, &[]);
        result["new"] = json!(new);
        Ok(Ok(result))
    })
}

/// POST /crm/v3/objects/{objectType}/batch/archive (`post-/crm/v3/objects/0-3/batch/archive_archive`): 204.
pub async fn archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<BatchInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (object, input) = parse(&raw, body)?;
    require_scope(&token, &object.scope(true))?;
    let now = now_ms();
    let mut data = hubspot.write();
    for item in &input.inputs {
        if let Some(id) = input_id(item).and_then(|id| id.parse::<u64>().ok()) {
            data.archive_record(object, id, now);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

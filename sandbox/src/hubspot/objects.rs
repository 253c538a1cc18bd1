//! CRM v3 objects (deals, contacts, companies), by name or type id: list, get, create, update,
//! archive.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::data::{HubData, ObjectType, Record};
use super::{error, invalid_properties, query_list, query_one, query_pairs, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::time::{iso_ms, now_ms, parse_hubspot_time};

pub const MAX_PAGE: usize = 100;
const ALWAYS: [&str; 3] = ["hs_object_id", "createdate", "hs_lastmodifieddate"];

type Reply = Result<Response, Response>;

fn object_type(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw).ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unable to infer object type from: {raw}"))
    })
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("resource not found: no object with id {id}"))
}

/// A record as the API returns it: the requested properties (null when unset) and the always-on
/// ones; history when asked.
pub fn record_json(record: &Record, object: ObjectType, wanted: &[String], with_history: &[String]) -> Value {
    let mut properties = Map::new();
    let defaults: Vec<String> = object.default_properties().iter().map(|s| s.to_string()).collect();
    let wanted = if wanted.is_empty() { &defaults } else { wanted };
    for name in wanted.iter().map(String::as_str).chain(ALWAYS) {
        properties.insert(name.to_string(), record.properties.get(name).map(|v| Value::String(v.clone())).unwrap_or(Value::Null));
    }
    let mut out = json!({
        "id": record.id.to_string(),
        "properties": properties,
        "createdAt": iso_ms(record.created_at),
        "updatedAt": iso_ms(record.updated_at),
        "archived": record.archived,
    });
    if let Some(at) = record.archived_at {
        out["archivedAt"] = json!(iso_ms(at));
    }
    if !with_history.is_empty() {
        let history: Map<String, Value> = with_history
            .iter()
            .map(|name| {
                let entries: Vec<Value> = record
                    .history
                    .get(name)
                    .map(|h| {
                        h.iter()
                            .map(|c| json!({"value": c.value, "timestamp": iso_ms(c.timestamp), "sourceType": c.source_type}))
                            .collect()
                    })
                    .unwrap_or_default();
                (name.clone(), Value::Array(entries))
            })
            .collect();
        out["propertiesWithHistory"] = Value::Object(history);
    }
    out
}

/// GET /crm/v3/objects/{objectType} (`get-/crm/v3/objects/0-3_getPage`)
pub async fn list(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw_type): Path<String>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(false))?;
    let q = query_pairs(raw.as_deref());
    let limit = match query_one(&q, "limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("limit must be a whole number from 1 to {MAX_PAGE}"),
            ))
        }
    };
    let after = match query_one(&q, "after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "after must be a paging cursor returned by a previous page")),
    };
    let archived = query_one(&q, "archived") == Some("true");
    let wanted = query_list(&q, "properties");
    let history = query_list(&q, "propertiesWithHistory");
    let data = hubspot.read();
    let page: Vec<&Record> = data
        .records
        .get(&object)
        .into_iter()
        .flat_map(|m| m.range((Bound::Excluded(after), Bound::Unbounded)).map(|(_, r)| r))
        .filter(|r| r.archived == archived)
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let results: Vec<Value> = page.iter().take(limit).map(|r| record_json(r, object, &wanted, &history)).collect();
    let mut body = json!({ "results": results });
    if more {
        let last = page[limit - 1].id.to_string();
        body["paging"] = json!({"next": {"after": last, "link": format!("?after={last}")}});
    }
    Ok(Json(body).into_response())
}

/// GET /crm/v3/objects/{objectType}/{id} (`get-/crm/v3/objects/0-3/{dealId}_getById`)
pub async fn get_one(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(false))?;
    let q = query_pairs(raw.as_deref());
    let archived = query_one(&q, "archived") == Some("true");
    let data = hubspot.read();
    let record = find(&data, object, &id, query_one(&q, "idProperty"))
        .filter(|r| r.archived == archived)
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(record_json(record, object, &query_list(&q, "properties"), &query_list(&q, "propertiesWithHistory"))).into_response())
}

fn find<'a>(data: &'a HubData, object: ObjectType, id: &str, id_property: Option<&str>) -> Option<&'a Record> {
    match id_property {
        None | Some("hs_object_id") => id.parse::<u64>().ok().and_then(|n| data.records.get(&object)?.get(&n)),
        Some(property) => data.records(object).find(|r| !r.archived && r.properties.get(property).map(String::as_str) == Some(id)),
    }
}

/// The `properties` object of a create or update body.
fn properties_of(body: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> Result<Map<String, Value>, Response> {
    let Json(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    match body {
        Value::Object(mut fields) => match fields.remove("properties") {
            Some(Value::Object(properties)) => Ok(properties),
            _ => Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "Invalid input JSON: the request body must have an object `properties`")),
        },
        _ => Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "Invalid input JSON: the request body must be an object")),
    }
}

/// POST /crm/v3/objects/{objectType} (`post-/crm/v3/objects/0-3_create`): 201 with the record.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw_type): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    let input = &properties_of(body)?;
    let mut data = hubspot.write();
    let properties = validate(&data, object, None, input)?;
    let id = data.insert_record(object, properties, now_ms(), "INTEGRATION");
    let record = &data.records[&object][&id];
    Ok((StatusCode::CREATED, Json(record_json(record, object, &input.keys().cloned().collect::<Vec<_>>(), &[]))).into_response())
}

/// PATCH /crm/v3/objects/{objectType}/{id} (`patch-/crm/v3/objects/0-3/{dealId}_update`)
pub async fn update(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    let input = &properties_of(body)?;
    let q = query_pairs(raw.as_deref());
    let mut data = hubspot.write();
    let record_id = find(&data, object, &id, query_one(&q, "idProperty"))
        .filter(|r| !r.archived)
        .map(|r| r.id)
        .ok_or_else(|| not_found(&id))?;
    let existing = data.records[&object][&record_id].clone();
    let properties = validate(&data, object, Some(&existing), input)?;
    if !data.update_record(object, record_id, properties, now_ms(), "INTEGRATION") {
        return Err(not_found(&id));
    }
    Ok(Json(record_json(&data.records[&object][&record_id], object, &input.keys().cloned().collect::<Vec<_>>(), &[])).into_response())
}

/// DELETE /crm/v3/objects/{objectType}/{id} (`delete-/crm/v3/objects/0-3/{dealId}_archive`): 204.
pub async fn archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    let mut data = hubspot.write();
    // Archiving an unknown or archived record answers 204 too, as HubSpot does.
    if let Ok(n) = id.parse::<u64>() {
        data.archive_record(object, n, now_ms());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn problem(name: &str, error: &str, message: String) -> Value {
    json!({"isValid": false, "message": message, "error": error, "name": name, "localizedErrorMessage": message})
}

/// Checks submitted values against the property definitions (and, for deals, that the stage
/// belongs to the pipeline); returns them as strings.
pub fn validate(
    data: &HubData,
    object: ObjectType,
    existing: Option<&Record>,
    input: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, Response> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, raw) in input {
        let value = match raw {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            _ => {
                problems.push(problem(name, "INVALID_PROPERTY_VALUE", format!("{raw} is not a valid value for property {name}")));
                continue;
            }
        };
        let Some(def) = data.property(object, name) else {
            problems.push(problem(name, "PROPERTY_DOESNT_EXIST", format!("Property \"{name}\" does not exist")));
            continue;
        };
        if def.read_only {
            problems.push(problem(name, "READ_ONLY_VALUE", format!("\"{name}\" is a read only property; its value cannot be set.")));
            continue;
        }
        if !value.is_empty() {
            let ok = match def.kind.as_str() {
                "number" => value.parse::<f64>().is_ok(),
                "date" | "datetime" => parse_hubspot_time(&value).is_some(),
                "bool" => matches!(value.as_str(), "true" | "false"),
                "enumeration" if !def.options.is_empty() => {
                    value.split(';').all(|v| def.options.iter().any(|o| o.value == v))
                }
                _ => true,
            };
            if !ok {
                let code = match def.kind.as_str() {
                    "number" => "INVALID_DECIMAL",
                    "date" | "datetime" => "INVALID_DATE",
                    "enumeration" => "INVALID_OPTION",
                    _ => "INVALID_PROPERTY_VALUE",
                };
                problems.push(problem(name, code, format!("{value} was not a valid value for property {name}")));
                continue;
            }
        }
        out.insert(name.clone(), value);
    }
    if object == ObjectType::Deals {
        let current = |name: &str| existing.and_then(|r| r.properties.get(name).cloned());
        let pipeline_id = out.get("pipeline").cloned().or_else(|| current("pipeline")).unwrap_or_else(|| "default".into());
        match data.pipeline(&pipeline_id) {
            None => problems.push(problem("pipeline", "INVALID_OPTION", format!("{pipeline_id} was not one of the allowed options: the portal has no such deal pipeline"))),
            Some(pipeline) => {
                let stage = out.get("dealstage").cloned().or_else(|| current("dealstage"));
                if let Some(stage) = stage.filter(|s| !s.is_empty()) {
                    if !pipeline.stages.iter().any(|s| s.id == stage && !s.archived) {
                        problems.push(problem(
                            "dealstage",
                            "INVALID_OPTION",
                            format!("{stage} is not a valid stage of pipeline {pipeline_id}"),
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(invalid_properties(problems))
    }
}

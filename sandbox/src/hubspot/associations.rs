//! Associations v4 between deals, contacts and companies: default associations one at a time
//! (with or without naming the type) and in batches, listing, and removal one at a time and in
//! batches. Every association is stored once and read from both ends.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::data::{HubData, ObjectType};
use super::{error, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};
use crate::time::{iso_ms, now_ms};

/// One stored association, always kept in the direction (`a` < `b`) by object type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub from: (ObjectType, u64),
    pub to: (ObjectType, u64),
}

/// HubSpot's default (unlabelled) association type id from one object type to another.
pub fn default_type_id(from: ObjectType, to: ObjectType) -> Option<i64> {
    use ObjectType::*;
    match (from, to) {
        (Deals, Contacts) => Some(3),
        (Contacts, Deals) => Some(4),
        (Deals, Companies) => Some(341),
        (Companies, Deals) => Some(342),
        (Contacts, Companies) => Some(279),
        (Companies, Contacts) => Some(280),
        _ => None,
    }
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn object(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw).ok_or_else(|| bad(format!("Unable to infer object type from: {raw}")))
}

fn exists(data: &HubData, object: ObjectType, id: u64) -> bool {
    data.records.get(&object).and_then(|m| m.get(&id)).is_some_and(|r| !r.archived)
}

fn normalised(a: (ObjectType, u64), b: (ObjectType, u64)) -> Association {
    if a <= b {
        Association { from: a, to: b }
    } else {
        Association { from: b, to: a }
    }
}

/// Ids of `to_type` objects associated with (`from_type`, `id`).
pub fn associated(data: &HubData, from: ObjectType, id: u64, to: ObjectType) -> Vec<u64> {
    let mut ids: Vec<u64> = data
        .associations
        .iter()
        .filter_map(|a| {
            if a.from == (from, id) && a.to.0 == to {
                Some(a.to.1)
            } else if a.to == (from, id) && a.from.0 == to {
                Some(a.from.1)
            } else {
                None
            }
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn link(data: &mut HubData, from: (ObjectType, u64), to: (ObjectType, u64)) -> Result<Value, String> {
    let type_id = default_type_id(from.0, to.0).ok_or_else(|| format!("{} cannot be associated with {}", from.0.name(), to.0.name()))?;
    for (object, id) in [from, to] {
        if !exists(data, object, id) {
            return Err(format!("{} {id} does not exist", object.name()));
        }
    }
    let association = normalised(from, to);
    if !data.associations.contains(&association) {
        data.associations.push(association);
    }
    Ok(json!({
        "from": {"id": from.1.to_string()},
        "to": {"id": to.1.to_string()},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
    }))
}

fn batch_body(results: Vec<Value>, errors: Vec<Value>, started: i64) -> Response {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    let mut body = json!({"status": "COMPLETE", "results": results, "startedAt": iso_ms(started), "completedAt": iso_ms(now_ms())});
    if !errors.is_empty() {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
    }
    (status, Json(body)).into_response()
}

fn id(raw: &str) -> Result<u64, Response> {
    raw.parse().map_err(|_| bad(format!("{raw} is not a valid object id")))
}

/// PUT /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}
/// (`..._createDefault`)
pub async fn create_default(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(true))?;
    let (from_id, to_id) = (id(&from_id)?, id(&to_id)?);
    let started = now_ms();
    let result = link(&mut hubspot.write(), (from, from_id), (to, to_id)).map_err(bad)?;
    Ok(batch_body(vec![result], Vec::new(), started))
}

fn labelled(from: ObjectType, to: ObjectType, to_id: u64) -> Value {
    json!({
        "toObjectId": to_id,
        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": default_type_id(from, to), "label": null}],
    })
}

/// GET /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType} (`..._getPage`)
pub async fn list(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, from_id, to_type)): Path<(String, String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(false))?;
    let from_id = id(&from_id)?;
    let q = query_pairs(raw.as_deref());
    let limit: usize =
        query_one(&q, "limit").map(str::parse).transpose().map_err(|_| bad("limit must be a number"))?.unwrap_or(500).min(500);
    let after: u64 = query_one(&q, "after").map(str::parse).transpose().map_err(|_| bad("after must be a paging cursor"))?.unwrap_or(0);
    let data = hubspot.read();
    if !exists(&data, from, from_id) {
        return Err(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("{} {from_id} does not exist", from.name())));
    }
    let ids: Vec<u64> = associated(&data, from, from_id, to).into_iter().filter(|i| *i > after).collect();
    let page: Vec<Value> = ids.iter().take(limit).map(|to_id| labelled(from, to, *to_id)).collect();
    let mut body = json!({"results": page});
    if ids.len() > limit {
        let last = ids[limit - 1].to_string();
        body["paging"] = json!({"next": {"after": last, "link": format!("?after={last}")}});
    }
    Ok(Json(body).into_response())
}

/// DELETE /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId} (`..._archive`)
pub async fn remove(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(true))?;
    let association = normalised((from, id(&from_id)?), (to, id(&to_id)?));
    hubspot.write().associations.retain(|a| *a != association);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationSpec {
    association_category: String,
    association_type_id: i64,
}

/// PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}
/// (`put-..._create`): associates two records with the types in the body (`AssociationSpec`s);
/// 201 with `LabelsBetweenObjectPair`. The sandbox knows HubSpot's default (unlabelled) type of
/// each pair, so labels are always empty; other type ids are refused.
pub async fn create_labelled(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Vec<AssociationSpec>>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(true))?;
    let (from_id, to_id) = (id(&from_id)?, id(&to_id)?);
    let Json(specs) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    let default = default_type_id(from, to).ok_or_else(|| bad(format!("{} cannot be associated with {}", from.name(), to.name())))?;
    if specs.is_empty() {
        return Err(bad("At least one association type is required"));
    }
    if let Some(unknown) = specs.iter().find(|s| s.association_category != "HUBSPOT_DEFINED" || s.association_type_id != default) {
        return Err(bad(format!(
            "association type {} ({}) is not defined from {} to {}",
            unknown.association_type_id,
            unknown.association_category,
            from.name(),
            to.name()
        )));
    }
    link(&mut hubspot.write(), (from, from_id), (to, to_id)).map_err(bad)?;
    let location = format!("/crm/v4/objects/{}/{from_id}/associations/{}", from.name(), to.name());
    let body = json!({
        "fromObjectTypeId": from.type_id(), "fromObjectId": from_id.to_string(),
        "toObjectTypeId": to.type_id(), "toObjectId": to_id.to_string(), "labels": [],
    });
    Ok((StatusCode::CREATED, [(axum::http::header::LOCATION, location)], Json(body)).into_response())
}

#[derive(Deserialize)]
pub struct ArchiveInputs {
    inputs: Vec<ArchivePair>,
}

#[derive(Deserialize)]
struct ArchivePair {
    from: IdRef,
    to: Vec<IdRef>,
}

/// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive (`..._archive`): removes
/// every association between each `from` and its `to` ids (at most 100 inputs); 204.
pub async fn batch_archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, to_type)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<ArchiveInputs>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(true))?;
    let Json(input) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    if input.inputs.len() > 100 {
        return Err(bad(format!("Batch input limit exceeded: at most 100 inputs, got {}", input.inputs.len())));
    }
    let mut gone = Vec::new();
    for pair in &input.inputs {
        let from_id = id_of(&pair.from.id).ok_or_else(|| bad("ids must be numeric"))?;
        for target in &pair.to {
            let to_id = id_of(&target.id).ok_or_else(|| bad("ids must be numeric"))?;
            gone.push(normalised((from, from_id), (to, to_id)));
        }
    }
    hubspot.write().associations.retain(|a| !gone.contains(a));
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct PairInputs {
    inputs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    from: IdRef,
    to: IdRef,
}

#[derive(Deserialize)]
struct IdRef {
    id: Value,
}

fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default (`..._createDefault`)
pub async fn batch_create_default(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, to_type)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<PairInputs>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(true))?;
    let Json(input) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    if input.inputs.len() > 100 {
        return Err(bad("Batch input limit exceeded: at most 100 inputs"));
    }
    let started = now_ms();
    let mut data = hubspot.write();
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for pair in &input.inputs {
        let linked = match (id_of(&pair.from.id), id_of(&pair.to.id)) {
            (Some(a), Some(b)) => link(&mut data, (from, a), (to, b)),
            _ => Err("ids must be numeric".to_string()),
        };
        match linked {
            Ok(result) => results.push(result),
            Err(message) => errors.push(
                json!({"status": "error", "category": "VALIDATION_ERROR", "message": message, "context": {}, "errors": [], "links": {}}),
            ),
        }
    }
    Ok(batch_body(results, errors, started))
}

#[derive(Deserialize)]
pub struct IdInputs {
    inputs: Vec<IdRef>,
}

/// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read (`..._getPage`)
pub async fn batch_read(
    State(hubspot): State<Arc<HubSpot>>,
    Path((from_type, to_type)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<IdInputs>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let (from, to) = (object(&from_type)?, object(&to_type)?);
    require_scope(&token, &from.scope(false))?;
    let Json(input) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    let started = now_ms();
    let data = hubspot.read();
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for item in &input.inputs {
        match id_of(&item.id).filter(|i| exists(&data, from, *i)) {
            None => missing.push(item.id.clone()),
            Some(from_id) => {
                let to_ids = associated(&data, from, from_id, to);
                if to_ids.is_empty() {
                    missing.push(item.id.clone());
                } else {
                    let to_values: Vec<Value> = to_ids.into_iter().map(|t| labelled(from, to, t)).collect();
                    results.push(json!({"from": {"id": from_id.to_string()}, "to": to_values}));
                }
            }
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": format!("No {} is associated with some of the {} ids", to.name(), from.name()),
            "context": {"fromObjectId": missing}, "errors": [], "links": {},
        })]
    };
    Ok(batch_body(results, errors, started))
}

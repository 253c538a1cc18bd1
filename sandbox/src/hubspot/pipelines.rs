//! Deal pipelines and stages, property definitions and owners (read side).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{ObjectType, Pipeline, Stage};
use super::{error, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::time::iso_ms;

type Reply = Result<Response, Response>;

fn deals_only(raw: &str) -> Result<(), Response> {
    match ObjectType::parse(raw) {
        Some(ObjectType::Deals) => Ok(()),
        _ => Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Pipelines are not supported for object type {raw} in this sandbox"))),
    }
}

fn stage_json(s: &Stage) -> Value {
    json!({
        "id": s.id,
        "label": s.label,
        "displayOrder": s.display_order,
        "metadata": {"probability": s.probability, "isClosed": s.is_closed.to_string()},
        "createdAt": iso_ms(s.created_at),
        "updatedAt": iso_ms(s.updated_at),
        "archived": s.archived,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    })
}

fn pipeline_json(p: &Pipeline) -> Value {
    json!({
        "id": p.id,
        "label": p.label,
        "displayOrder": p.display_order,
        "stages": p.stages.iter().filter(|s| !s.archived).map(stage_json).collect::<Vec<_>>(),
        "createdAt": iso_ms(p.created_at),
        "updatedAt": iso_ms(p.updated_at),
        "archived": p.archived,
    })
}

fn read_scope(token: &AccessToken) -> Result<(), Response> {
    // HubSpot accepts any of many scopes here; the deals read scope is the one apps hold.
    if token.grant.scopes.iter().any(|s| s == "crm.schemas.deals.read") {
        return Ok(());
    }
    require_scope(token, "crm.objects.deals.read")
}

/// GET /crm/v3/pipelines/{objectType} (`get-/crm/v3/pipelines/{objectType}_getAll`)
pub async fn list(State(hubspot): State<Arc<HubSpot>>, Path(raw): Path<String>, Extension(token): Extension<AccessToken>) -> Reply {
    deals_only(&raw)?;
    read_scope(&token)?;
    let data = hubspot.read();
    let results: Vec<Value> = data.pipelines.iter().filter(|p| !p.archived).map(pipeline_json).collect();
    Ok(Json(json!({ "results": results })).into_response())
}

fn pipeline_not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("Unable to find pipeline {id}"))
}

/// GET /crm/v3/pipelines/{objectType}/{pipelineId} (`..._getById`)
pub async fn get_one(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    deals_only(&raw)?;
    read_scope(&token)?;
    let data = hubspot.read();
    let pipeline = data.pipeline(&id).ok_or_else(|| pipeline_not_found(&id))?;
    Ok(Json(pipeline_json(pipeline)).into_response())
}

/// GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages (`.../stages_getAll`)
pub async fn stages(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    deals_only(&raw)?;
    read_scope(&token)?;
    let data = hubspot.read();
    let pipeline = data.pipeline(&id).ok_or_else(|| pipeline_not_found(&id))?;
    let results: Vec<Value> = pipeline.stages.iter().filter(|s| !s.archived).map(stage_json).collect();
    Ok(Json(json!({ "results": results })).into_response())
}

/// GET /crm/v3/properties/{objectType} (`get-/crm/v3/properties/{objectType}_getAll`)
pub async fn properties(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    let object = ObjectType::parse(&raw)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unable to infer object type from: {raw}")))?;
    require_scope(&token, &object.scope(false))?;
    let data = hubspot.read();
    let results: Vec<Value> = data
        .properties
        .get(&object)
        .into_iter()
        .flatten()
        .map(|p| {
            let options: Vec<Value> = if p.name == "pipeline" && object == ObjectType::Deals {
                data.pipelines.iter().map(|pl| json!({"label": pl.label, "value": pl.id, "displayOrder": pl.display_order, "hidden": false})).collect()
            } else if p.name == "dealstage" && object == ObjectType::Deals {
                data.pipelines
                    .iter()
                    .flat_map(|pl| pl.stages.iter())
                    .map(|s| json!({"label": s.label, "value": s.id, "displayOrder": s.display_order, "hidden": false}))
                    .collect()
            } else {
                p.options.iter().map(|o| json!({"label": o.label, "value": o.value, "displayOrder": o.display_order, "hidden": o.hidden})).collect()
            };
            json!({
                "name": p.name,
                "label": p.label,
                "type": p.kind,
                "fieldType": p.field_type,
                "groupName": p.group_name,
                "description": p.description,
                "options": options,
                "hubspotDefined": p.hubspot_defined,
                "calculated": false,
                "externalOptions": false,
                "hidden": false,
                "formField": !p.read_only,
                "displayOrder": -1,
                "hasUniqueValue": p.unique || p.name == "hs_object_id",
                "createdAt": iso_ms(p.created_at),
                "updatedAt": iso_ms(p.created_at),
                "archived": false,
                "modificationMetadata": {"archivable": !p.hubspot_defined, "readOnlyDefinition": p.hubspot_defined, "readOnlyValue": p.read_only},
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

/// GET /crm/v3/owners (`get-/crm/v3/owners_/crm/v3/owners`)
pub async fn owners(State(hubspot): State<Arc<HubSpot>>, Extension(token): Extension<AccessToken>) -> Reply {
    if !token.grant.scopes.iter().any(|s| s == "crm.objects.owners.read") {
        require_scope(&token, "crm.objects.owners.read")?;
    }
    let data = hubspot.read();
    let results: Vec<Value> = data
        .owners
        .iter()
        .map(|o| {
            json!({
                "id": o.id, "email": o.email, "firstName": o.first_name, "lastName": o.last_name,
                "userId": o.user_id, "userIdIncludingInactive": o.user_id, "type": "PERSON",
                "createdAt": iso_ms(0), "updatedAt": iso_ms(0), "archived": false, "teams": [],
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyCreate {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    field_type: String,
    group_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    options: Vec<Value>,
    #[serde(default)]
    has_unique_value: bool,
}

/// POST /crm/v3/properties/{objectType} (`post-/crm/v3/properties/{objectType}_create`): 201.
pub async fn create_property(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<PropertyCreate>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = ObjectType::parse(&raw)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unable to infer object type from: {raw}")))?;
    require_scope(&token, &format!("crm.schemas.{}.write", object.name()))?;
    let Json(input) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    const KINDS: [&str; 7] = ["bool", "date", "datetime", "enumeration", "number", "phone_number", "string"];
    let name_ok = !input.name.is_empty() && input.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok || !KINDS.contains(&input.kind.as_str()) {
        return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "name must be lowercase letters, digits and _; type must be one of bool, date, datetime, enumeration, number, phone_number, string"));
    }
    let mut data = hubspot.write();
    if data.property(object, &input.name).is_some() {
        return Err(error(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", format!("Property named '{}' already exists.", input.name)));
    }
    let options = input
        .options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            Some(super::data::PropertyOption {
                label: o.get("label")?.as_str()?.to_string(),
                value: o.get("value")?.as_str()?.to_string(),
                display_order: o.get("displayOrder").and_then(Value::as_i64).unwrap_or(i as i64) as i32,
                hidden: o.get("hidden").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect();
    let def = super::data::PropertyDef {
        name: input.name,
        label: input.label,
        kind: input.kind,
        field_type: input.field_type,
        group_name: input.group_name,
        description: input.description,
        options,
        hubspot_defined: false,
        read_only: false,
        unique: input.has_unique_value,
        created_at: crate::time::now_ms(),
    };
    let out = json!({
        "name": def.name, "label": def.label, "type": def.kind, "fieldType": def.field_type, "groupName": def.group_name,
        "description": def.description, "hasUniqueValue": def.unique, "hubspotDefined": false,
        "options": def.options.iter().map(|o| json!({"label": o.label, "value": o.value, "displayOrder": o.display_order, "hidden": o.hidden})).collect::<Vec<_>>(),
        "createdAt": iso_ms(def.created_at), "updatedAt": iso_ms(def.created_at), "archived": false,
        "modificationMetadata": {"archivable": true, "readOnlyDefinition": false, "readOnlyValue": false},
    });
    data.properties.entry(object).or_default().push(def);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

// ---- Pipelines and stages: write side ----

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    label: Option<String>,
    display_order: Option<i32>,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInput {
    label: Option<String>,
    display_order: Option<i32>,
    stages: Option<Vec<StageInput>>,
}

fn write_scope(token: &AccessToken) -> Result<(), Response> {
    require_scope(token, "crm.schemas.deals.write")
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// A stage from its input: deals stages need `metadata.probability` (0.0–1.0); `isClosed` is
/// "true" for won/lost stages.
fn new_stage(input: StageInput, order: i32, now: i64) -> Result<Stage, Response> {
    let label = input.label.filter(|l| !l.trim().is_empty()).ok_or_else(|| invalid("Stage label is required"))?;
    let probability = input
        .metadata
        .get("probability")
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .ok_or_else(|| invalid(format!("Stage {label} is missing required metadata: probability")))?;
    if !probability.parse::<f64>().is_ok_and(|p| (0.0..=1.0).contains(&p)) {
        return Err(invalid(format!("Stage {label}: probability must be a number between 0.0 and 1.0")));
    }
    let is_closed = input.metadata.get("isClosed").is_some_and(|c| c == "true" || c == &Value::Bool(true));
    Ok(Stage {
        id: uuid::Uuid::new_v4().to_string(),
        label,
        display_order: input.display_order.unwrap_or(order),
        probability,
        is_closed,
        created_at: now,
        updated_at: now,
        archived: false,
    })
}

/// POST /crm/v3/pipelines/{objectType} (`..._create`): 201 with the pipeline.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<PipelineInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let Json(input) = body.map_err(|e| invalid(format!("Invalid input JSON: {e}")))?;
    let label = input.label.filter(|l| !l.trim().is_empty()).ok_or_else(|| invalid("Pipeline label is required"))?;
    let stages = input.stages.ok_or_else(|| invalid("Pipeline stages are required"))?;
    if stages.is_empty() {
        return Err(invalid("A pipeline needs at least one stage"));
    }
    let now = crate::time::now_ms();
    let mut seen = std::collections::HashSet::new();
    let mut built = Vec::new();
    for (i, s) in stages.into_iter().enumerate() {
        let stage = new_stage(s, i as i32, now)?;
        if !seen.insert(stage.label.to_lowercase()) {
            return Err(invalid(format!("Stage labels must be unique within a pipeline: {}", stage.label)));
        }
        built.push(stage);
    }
    let mut data = hubspot.write();
    if data.pipelines.iter().any(|p| !p.archived && p.label.eq_ignore_ascii_case(&label)) {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("A pipeline with label {label} already exists")));
    }
    let pipeline = Pipeline {
        id: uuid::Uuid::new_v4().to_string(),
        label,
        display_order: input.display_order.unwrap_or(data.pipelines.len() as i32),
        stages: built,
        created_at: now,
        updated_at: now,
        archived: false,
    };
    let out = pipeline_json(&pipeline);
    data.pipelines.push(pipeline);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// PATCH /crm/v3/pipelines/{objectType}/{pipelineId} (`..._update`): label and display order.
pub async fn update(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<PipelineInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let Json(input) = body.map_err(|e| invalid(format!("Invalid input JSON: {e}")))?;
    let mut data = hubspot.write();
    let pipeline = data.pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(&id))?;
    if let Some(label) = input.label.filter(|l| !l.trim().is_empty()) {
        pipeline.label = label;
    }
    if let Some(order) = input.display_order {
        pipeline.display_order = order;
    }
    pipeline.updated_at = crate::time::now_ms();
    Ok(Json(pipeline_json(pipeline)).into_response())
}

/// DELETE /crm/v3/pipelines/{objectType}/{pipelineId} (`..._archive`): 204. With
/// `validateReferencesBeforeDelete=true`, a pipeline that still holds deals is refused.
pub async fn archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let validate = super::query_one(&super::query_pairs(query.as_deref()), "validateReferencesBeforeDelete") == Some("true");
    let mut data = hubspot.write();
    let in_use = data.records(ObjectType::Deals).any(|r| !r.archived && r.properties.get("pipeline").is_some_and(|p| p == &id));
    let pipeline = data.pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(&id))?;
    if validate && in_use {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("Pipeline {id} still has deals; move them first")));
    }
    pipeline.archived = true;
    pipeline.updated_at = crate::time::now_ms();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /crm/v3/pipelines/{objectType}/{pipelineId}/stages (`.../stages_create`): 201.
pub async fn create_stage(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<StageInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let Json(input) = body.map_err(|e| invalid(format!("Invalid input JSON: {e}")))?;
    let mut data = hubspot.write();
    let pipeline = data.pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(&id))?;
    let now = crate::time::now_ms();
    let stage = new_stage(input, pipeline.stages.len() as i32, now)?;
    if pipeline.stages.iter().any(|s| !s.archived && s.label.eq_ignore_ascii_case(&stage.label)) {
        return Err(invalid(format!("Stage labels must be unique within a pipeline: {}", stage.label)));
    }
    let out = stage_json(&stage);
    pipeline.stages.push(stage);
    pipeline.updated_at = now;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

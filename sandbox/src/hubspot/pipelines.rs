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

//! Deal pipelines: read, create, update, replace and archive (stages are in `stages.rs`).

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

pub(super) fn deals_only(raw: &str) -> Result<(), Response> {
    match ObjectType::parse(raw) {
        Some(ObjectType::Deals) => Ok(()),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("Pipelines are not supported for object type {raw} in this sandbox"),
        )),
    }
}

pub(super) fn stage_json(s: &Stage) -> Value {
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

pub(super) fn pipeline_json(p: &Pipeline) -> Value {
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

pub(super) fn read_scope(token: &AccessToken) -> Result<(), Response> {
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

pub(super) fn pipeline_not_found(id: &str) -> Response {
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

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    pub(super) label: Option<String>,
    pub(super) display_order: Option<i32>,
    /// Absent and empty differ: replacing a stage needs its metadata.
    pub(super) metadata: Option<serde_json::Map<String, Value>>,
    /// In a pipeline replacement: the stage this input keeps (its deals stay in it).
    pub(super) stage_id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInput {
    label: Option<String>,
    display_order: Option<i32>,
    stages: Option<Vec<StageInput>>,
}

pub(super) fn write_scope(token: &AccessToken) -> Result<(), Response> {
    require_scope(token, "crm.schemas.deals.write")
}

pub(super) fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// A stage from its input: deals stages need `metadata.probability` (0.0–1.0); `isClosed` is
/// "true" for won/lost stages.
pub(super) fn new_stage(input: StageInput, order: i32, now: i64) -> Result<Stage, Response> {
    let label = input.label.filter(|l| !l.trim().is_empty()).ok_or_else(|| invalid("Stage label is required"))?;
    let metadata = input.metadata.unwrap_or_default();
    let probability = metadata
        .get("probability")
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .ok_or_else(|| invalid(format!("Stage {label} is missing required metadata: probability")))?;
    if !probability.parse::<f64>().is_ok_and(|p| (0.0..=1.0).contains(&p)) {
        return Err(invalid(format!("Stage {label}: probability must be a number between 0.0 and 1.0")));
    }
    let is_closed = metadata.get("isClosed").is_some_and(|c| c == "true" || c == &Value::Bool(true));
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

/// A pipeline's stages from their inputs: at least one, labels unique. An input naming one of
/// `existing` by `stageId` keeps that stage's id and creation time.
fn build_stages(inputs: Option<Vec<StageInput>>, existing: &[Stage], now: i64) -> Result<Vec<Stage>, Response> {
    let inputs = inputs.ok_or_else(|| invalid("Pipeline stages are required"))?;
    if inputs.is_empty() {
        return Err(invalid("A pipeline needs at least one stage"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut built = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let kept = input.stage_id.as_deref().and_then(|id| existing.iter().find(|s| s.id == id)).map(|s| (s.id.clone(), s.created_at));
        let mut stage = new_stage(input, i as i32, now)?;
        if let Some((id, created_at)) = kept {
            (stage.id, stage.created_at) = (id, created_at);
        }
        if !seen.insert(stage.label.to_lowercase()) {
            return Err(invalid(format!("Stage labels must be unique within a pipeline: {}", stage.label)));
        }
        built.push(stage);
    }
    Ok(built)
}

/// Whether a live deal sits in `pipeline` (and `stage`, when given).
pub(super) fn has_deals(data: &super::data::HubData, pipeline: &str, stage: Option<&str>) -> bool {
    data.records(ObjectType::Deals).any(|r| {
        !r.archived
            && r.properties.get("pipeline").is_some_and(|p| p == pipeline)
            && stage.is_none_or(|st| r.properties.get("dealstage").is_some_and(|d| d == st))
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
    let now = crate::time::now_ms();
    let built = build_stages(input.stages, &[], now)?;
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
    let validate = crate::query::query_one(&crate::query::query_pairs(query.as_deref()), "validateReferencesBeforeDelete") == Some("true");
    let mut data = hubspot.write();
    let in_use = has_deals(&data, &id, None);
    let pipeline = data.pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(&id))?;
    if validate && in_use {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("Pipeline {id} still has deals; move them first")));
    }
    pipeline.archived = true;
    pipeline.updated_at = crate::time::now_ms();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// PUT /crm/v3/pipelines/{objectType}/{pipelineId} (`put-/crm/v3/pipelines/{objectType}/{pipelineId}_replace`):
/// label, display order and stages all given (`PipelineReplaceInput`); a stage input with the
/// `stageId` of a current stage keeps it, the stages left out are archived. With
/// `validateReferencesBeforeDelete=true` (or `validateDealStageUsagesBeforeDelete=true`), leaving
/// out a stage that holds deals is refused.
pub async fn replace(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Result<Json<PipelineInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let q = crate::query::query_pairs(query.as_deref());
    let validate = ["validateReferencesBeforeDelete", "validateDealStageUsagesBeforeDelete"]
        .iter()
        .any(|n| crate::query::query_one(&q, n) == Some("true"));
    let Json(input) = body.map_err(|e| invalid(format!("Invalid input JSON: {e}")))?;
    let label = input.label.filter(|l| !l.trim().is_empty()).ok_or_else(|| invalid("Pipeline label is required"))?;
    let display_order = input.display_order.ok_or_else(|| invalid("Pipeline displayOrder is required"))?;
    if input.stages.iter().flatten().any(|s| s.metadata.is_none() || s.display_order.is_none()) {
        return Err(invalid("Every stage needs its label, displayOrder and metadata"));
    }
    let now = crate::time::now_ms();
    let mut data = hubspot.write();
    let current = data.pipeline(&id).ok_or_else(|| pipeline_not_found(&id))?;
    let built = build_stages(input.stages, &current.stages, now)?;
    let dropped: Vec<Stage> = current.stages.iter().filter(|s| !s.archived && !built.iter().any(|b| b.id == s.id)).cloned().collect();
    if validate {
        if let Some(busy) = dropped.iter().find(|s| has_deals(&data, &id, Some(&s.id))) {
            return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("Stage {} still has deals; move them first", busy.id)));
        }
    }
    if data.pipelines.iter().any(|p| !p.archived && p.id != id && p.label.eq_ignore_ascii_case(&label)) {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("A pipeline with label {label} already exists")));
    }
    let pipeline = data.pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(&id))?;
    let archived_before: Vec<Stage> = pipeline.stages.iter().filter(|s| s.archived).cloned().collect();
    pipeline.label = label;
    pipeline.display_order = display_order;
    pipeline.stages = built;
    pipeline.stages.extend(dropped.into_iter().map(|mut s| {
        (s.archived, s.updated_at) = (true, now);
        s
    }));
    pipeline.stages.extend(archived_before);
    pipeline.updated_at = now;
    Ok(Json(pipeline_json(pipeline)).into_response())
}

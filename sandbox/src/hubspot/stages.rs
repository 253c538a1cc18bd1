//! A deal pipeline's stages: list, get, create, update, replace and archive.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::data::{Pipeline, Stage};
use super::pipelines::{deals_only, has_deals, invalid, new_stage, pipeline_not_found, read_scope, stage_json, write_scope, StageInput};
use super::{error, HubSpot};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};
use crate::time::now_ms;

type Reply = Result<Response, Response>;
type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn stage_not_found(pipeline: &str, stage: &str) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("Unable to find stage {stage} in pipeline {pipeline}"))
}

fn parse_body<T>(body: Body<T>) -> Result<T, Response> {
    body.map(|Json(input)| input).map_err(|e| invalid(format!("Invalid input JSON: {e}")))
}

/// The live pipeline `id`, to change.
fn pipeline_mut<'a>(pipelines: &'a mut [Pipeline], id: &str) -> Result<&'a mut Pipeline, Response> {
    pipelines.iter_mut().find(|p| p.id == id && !p.archived).ok_or_else(|| pipeline_not_found(id))
}

/// No two live stages of a pipeline share a label (`except` is the stage being changed).
fn unique_label(pipeline: &Pipeline, label: &str, except: &str) -> Result<(), Response> {
    if pipeline.stages.iter().any(|s| !s.archived && s.id != except && s.label.eq_ignore_ascii_case(label)) {
        return Err(invalid(format!("Stage labels must be unique within a pipeline: {label}")));
    }
    Ok(())
}

/// GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages (`get-/crm/v3/pipelines/{objectType}/{pipelineId}/stages_getAll`)
pub async fn list(
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

/// GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId} (`..._getById`)
pub async fn get_one(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id, stage_id)): Path<(String, String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    deals_only(&raw)?;
    read_scope(&token)?;
    let data = hubspot.read();
    let pipeline = data.pipeline(&id).ok_or_else(|| pipeline_not_found(&id))?;
    let stage = pipeline.stages.iter().find(|s| s.id == stage_id && !s.archived).ok_or_else(|| stage_not_found(&id, &stage_id))?;
    Ok(Json(stage_json(stage)).into_response())
}

/// POST /crm/v3/pipelines/{objectType}/{pipelineId}/stages (`.../stages_create`): 201.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Body<StageInput>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let input = parse_body(body)?;
    let mut data = hubspot.write();
    let pipeline = pipeline_mut(&mut data.pipelines, &id)?;
    let now = now_ms();
    let stage = new_stage(input, pipeline.stages.len() as i32, now)?;
    unique_label(pipeline, &stage.label, &stage.id)?;
    let out = stage_json(&stage);
    pipeline.stages.push(stage);
    pipeline.updated_at = now;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `PipelineStagePatchInput`: `metadata` is required; the rest changes what it names.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagePatch {
    label: Option<String>,
    display_order: Option<i32>,
    archived: Option<bool>,
    metadata: Option<Map<String, Value>>,
}

/// The probability and closed flag a stage's metadata sets, checked as a new stage's are.
fn metadata_values(label: &str, metadata: &Map<String, Value>, current: &Stage) -> Result<(String, bool), Response> {
    let mut merged = Map::new();
    merged.insert("probability".into(), Value::String(current.probability.clone()));
    merged.insert("isClosed".into(), Value::String(current.is_closed.to_string()));
    merged.extend(metadata.clone());
    let checked =
        new_stage(StageInput { label: Some(label.to_string()), display_order: None, metadata: Some(merged), stage_id: None }, 0, 0)?;
    Ok((checked.probability, checked.is_closed))
}

/// PATCH /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId} (`..._update`): the label,
/// display order and metadata given; `"archived": false` restores an archived stage.
pub async fn update(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id, stage_id)): Path<(String, String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Body<StagePatch>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let input = parse_body(body)?;
    let metadata = input.metadata.ok_or_else(|| invalid("metadata is required (it may be empty: {})"))?;
    let mut data = hubspot.write();
    let pipeline = pipeline_mut(&mut data.pipelines, &id)?;
    let restoring = input.archived == Some(false);
    let index = pipeline
        .stages
        .iter()
        .position(|s| s.id == stage_id && (!s.archived || restoring))
        .ok_or_else(|| stage_not_found(&id, &stage_id))?;
    let label = match input.label {
        Some(l) if l.trim().is_empty() => return Err(invalid("Stage label cannot be empty")),
        Some(l) => l,
        None => pipeline.stages[index].label.clone(),
    };
    unique_label(pipeline, &label, &stage_id)?;
    let (probability, is_closed) = metadata_values(&label, &metadata, &pipeline.stages[index])?;
    let now = now_ms();
    let stage = &mut pipeline.stages[index];
    stage.label = label;
    stage.display_order = input.display_order.unwrap_or(stage.display_order);
    (stage.probability, stage.is_closed) = (probability, is_closed);
    stage.archived = input.archived.unwrap_or(stage.archived);
    stage.updated_at = now;
    let out = stage_json(stage);
    pipeline.updated_at = now;
    Ok(Json(out).into_response())
}

/// PUT /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId} (`..._replace`): label,
/// display order and metadata all given (`PipelineStageReplaceInput`); the id stays.
pub async fn replace(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id, stage_id)): Path<(String, String, String)>,
    Extension(token): Extension<AccessToken>,
    body: Body<StageInput>,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let input = parse_body(body)?;
    if input.display_order.is_none() || input.metadata.is_none() {
        return Err(invalid("label, displayOrder and metadata are required"));
    }
    let mut data = hubspot.write();
    let pipeline = pipeline_mut(&mut data.pipelines, &id)?;
    let index = pipeline.stages.iter().position(|s| s.id == stage_id && !s.archived).ok_or_else(|| stage_not_found(&id, &stage_id))?;
    let now = now_ms();
    let mut stage = new_stage(input, 0, now)?;
    unique_label(pipeline, &stage.label, &stage_id)?;
    (stage.id, stage.created_at) = (stage_id, pipeline.stages[index].created_at);
    let out = stage_json(&stage);
    pipeline.stages[index] = stage;
    pipeline.updated_at = now;
    Ok(Json(out).into_response())
}

/// DELETE /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId} (`..._archive`): 204. A
/// pipeline keeps at least one stage; with `validateReferencesBeforeDelete=true` a stage that
/// holds deals is refused.
pub async fn archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, id, stage_id)): Path<(String, String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
) -> Reply {
    deals_only(&raw)?;
    write_scope(&token)?;
    let validate = query_one(&query_pairs(query.as_deref()), "validateReferencesBeforeDelete") == Some("true");
    let mut data = hubspot.write();
    let busy = has_deals(&data, &id, Some(&stage_id));
    let pipeline = pipeline_mut(&mut data.pipelines, &id)?;
    let index = pipeline.stages.iter().position(|s| s.id == stage_id && !s.archived).ok_or_else(|| stage_not_found(&id, &stage_id))?;
    if validate && busy {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", format!("Stage {stage_id} still has deals; move them first")));
    }
    if pipeline.stages.iter().filter(|s| !s.archived).count() == 1 {
        return Err(invalid(format!("Stage {stage_id} is the pipeline's only stage; a pipeline needs at least one")));
    }
    let now = now_ms();
    (pipeline.stages[index].archived, pipeline.stages[index].updated_at) = (true, now);
    pipeline.updated_at = now;
    Ok(StatusCode::NO_CONTENT.into_response())
}

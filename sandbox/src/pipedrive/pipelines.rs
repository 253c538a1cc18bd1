//! API v2 pipelines and stages: list and get (`deals:read`), and add, update and delete (the
//! spec's `addPipeline`, `updatePipeline`, `deletePipeline`, `addStage`, `updateStage` and
//! `deleteStage` need the `admin` scope). Deletes are soft: the record stays, `is_deleted` set.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::data::{Deal, PdData, Pipeline, Stage};
use super::{failure, invalid, json_body, ok, parse_id, require_scope, Pipedrive};
use crate::oauth::AccessToken;
use crate::time::{iso_seconds, now_ms};

pub fn pipeline_json(p: &Pipeline) -> Value {
    json!({
        "id": p.id, "name": p.name, "order_nr": p.order_nr, "is_deleted": p.is_deleted,
        "is_deal_probability_enabled": p.is_deal_probability_enabled,
        "add_time": iso_seconds(p.add_time), "update_time": iso_seconds(p.update_time),
    })
}

pub fn stage_json(s: &Stage) -> Value {
    json!({
        "id": s.id, "order_nr": s.order_nr, "name": s.name, "is_deleted": s.is_deleted,
        "deal_probability": s.deal_probability, "pipeline_id": s.pipeline_id,
        "is_deal_rot_enabled": s.is_deal_rot_enabled, "days_to_rotten": s.days_to_rotten,
        "add_time": iso_seconds(s.add_time), "update_time": iso_seconds(s.update_time),
    })
}

fn list_envelope(items: Vec<Value>) -> Response {
    super::listing::list_response(items, None)
}

/// GET /api/v2/pipelines (`getPipelines`)
pub async fn list_pipelines(State(pipedrive): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let data = pipedrive.read();
    list_envelope(data.pipelines.values().filter(|p| !p.is_deleted).map(pipeline_json).collect())
}

/// GET /api/v2/pipelines/{id} (`getPipeline`)
pub async fn get_pipeline(
    State(pipedrive): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let data = pipedrive.read();
    match id.parse::<u64>().ok().and_then(|id| data.pipelines.get(&id)) {
        Some(p) => ok(pipeline_json(p)),
        None => failure(StatusCode::NOT_FOUND, "Pipeline not found"),
    }
}

#[derive(Deserialize)]
pub struct StageQuery {
    pipeline_id: Option<u64>,
}

/// GET /api/v2/stages (`getStages`), optionally for one pipeline.
pub async fn list_stages(
    State(pipedrive): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    query: Result<Query<StageQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let Ok(Query(query)) = query else {
        return failure(StatusCode::BAD_REQUEST, "Validation failed: pipeline_id: must be an integer");
    };
    let data = pipedrive.read();
    let mut stages: Vec<&Stage> =
        data.stages.values().filter(|s| !s.is_deleted && query.pipeline_id.is_none_or(|p| s.pipeline_id == p)).collect();
    stages.sort_by_key(|s| (s.pipeline_id, s.order_nr));
    list_envelope(stages.into_iter().map(stage_json).collect())
}

/// GET /api/v2/stages/{id} (`getStage`)
pub async fn get_stage(
    State(pipedrive): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let data = pipedrive.read();
    match id.parse::<u64>().ok().and_then(|id| data.stages.get(&id)) {
        Some(s) => ok(stage_json(s)),
        None => failure(StatusCode::NOT_FOUND, "Stage not found"),
    }
}

// ---- Writes (admin) ----

fn name_of(value: &Value) -> Result<String, Response> {
    match value.as_str().map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(invalid("name: must be a non-empty string")),
    }
}

fn flag(value: &Value, key: &str) -> Result<bool, Response> {
    value.as_bool().ok_or_else(|| invalid(&format!("{key}: must be a boolean")))
}

/// How many deals (open, won or lost; not deleted) `pick` picks.
fn deals_where(data: &PdData, pick: impl Fn(&Deal) -> bool) -> usize {
    data.deals.values().filter(|d| !d.is_deleted && pick(d)).count()
}

fn apply_pipeline(pipeline: &mut Pipeline, body: &Map<String, Value>, creating: bool) -> Result<(), Response> {
    for (key, value) in body {
        match key.as_str() {
            "name" => pipeline.name = name_of(value)?,
            "is_deal_probability_enabled" => pipeline.is_deal_probability_enabled = flag(value, key)?,
            _ => return Err(invalid(&format!("{key}: unknown field"))),
        }
    }
    if creating && !body.contains_key("name") {
        return Err(invalid("name: is required"));
    }
    Ok(())
}

/// POST /api/v2/pipelines (`addPipeline`): a pipeline without stages, last in order.
pub async fn add_pipeline(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let at = now_ms();
    let mut pipeline = Pipeline {
        id: 0,
        name: String::new(),
        order_nr: 0,
        is_deleted: false,
        is_deal_probability_enabled: false,
        add_time: at,
        update_time: at,
    };
    if let Err(r) = apply_pipeline(&mut pipeline, &body, true) {
        return r;
    }
    let mut data = pd.write();
    pipeline.order_nr = data.pipelines.values().filter(|p| !p.is_deleted).map(|p| p.order_nr + 1).max().unwrap_or(0);
    pipeline.id = data.next_id();
    data.pipelines.insert(pipeline.id, pipeline.clone());
    data.emit("pipeline", pipeline.id, None, Some(pipeline_json(&pipeline)), at, "api");
    ok(pipeline_json(&pipeline))
}

/// PATCH /api/v2/pipelines/{id} (`updatePipeline`)
pub async fn update_pipeline(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let (id, body) = match parse_id(&raw).and_then(|id| json_body(body).map(|b| (id, b))) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut data = pd.write();
    let Some(pipeline) = data.pipelines.get_mut(&id).filter(|p| !p.is_deleted) else {
        return failure(StatusCode::NOT_FOUND, "Pipeline not found");
    };
    let mut updated = pipeline.clone();
    if let Err(r) = apply_pipeline(&mut updated, &body, false) {
        return r;
    }
    let before = pipeline_json(pipeline);
    updated.update_time = now_ms();
    *pipeline = updated.clone();
    data.emit("pipeline", id, Some(before), Some(pipeline_json(&updated)), updated.update_time, "api");
    ok(pipeline_json(&updated))
}

/// DELETE /api/v2/pipelines/{id} (`deletePipeline`): marks the pipeline and its stages deleted.
/// Refused while deals sit in it, and for the company's only pipeline.
pub async fn delete_pipeline(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = pd.write();
    if data.pipelines.get(&id).is_none_or(|p| p.is_deleted) {
        return failure(StatusCode::NOT_FOUND, "Pipeline not found");
    }
    if data.pipelines.values().filter(|p| !p.is_deleted).count() == 1 {
        return failure(StatusCode::BAD_REQUEST, "The only pipeline of the company cannot be deleted");
    }
    let in_pipeline = deals_where(&data, |d| d.pipeline_id == id);
    if in_pipeline > 0 {
        return failure(
            StatusCode::BAD_REQUEST,
            &format!("The pipeline still has {in_pipeline} deal(s); move or delete them before deleting the pipeline"),
        );
    }
    let at = now_ms();
    let mut gone = Vec::new();
    for stage in data.stages.values_mut().filter(|s| s.pipeline_id == id && !s.is_deleted) {
        gone.push((stage.id, stage_json(stage)));
        stage.is_deleted = true;
        stage.update_time = at;
    }
    for (stage, before) in gone {
        data.emit("stage", stage, Some(before), None, at, "api");
    }
    if let Some(pipeline) = data.pipelines.get(&id).cloned() {
        data.emit("pipeline", id, Some(pipeline_json(&pipeline)), None, at, "api");
    }
    if let Some(pipeline) = data.pipelines.get_mut(&id) {
        pipeline.is_deleted = true;
        pipeline.update_time = at;
    }
    ok(json!({"id": id}))
}

/// Applies the fields of a stage body, checking each.
fn apply_stage(data: &PdData, stage: &mut Stage, body: &Map<String, Value>, creating: bool) -> Result<(), Response> {
    for (key, value) in body {
        match key.as_str() {
            "name" => stage.name = name_of(value)?,
            "pipeline_id" => {
                let id = value.as_u64().ok_or_else(|| invalid("pipeline_id: must be an integer"))?;
                if data.pipelines.get(&id).is_none_or(|p| p.is_deleted) {
                    return Err(invalid("pipeline_id: no such pipeline"));
                }
                stage.pipeline_id = id;
            }
            "deal_probability" => match value.as_i64() {
                Some(p) if (0..=100).contains(&p) => stage.deal_probability = p,
                _ => return Err(invalid("deal_probability: must be an integer from 0 to 100")),
            },
            "is_deal_rot_enabled" => stage.is_deal_rot_enabled = flag(value, key)?,
            "days_to_rotten" => match value {
                Value::Null => stage.days_to_rotten = None,
                v => match v.as_i64() {
                    Some(days) if days > 0 => stage.days_to_rotten = Some(days),
                    _ => return Err(invalid("days_to_rotten: must be a positive integer")),
                },
            },
            _ => return Err(invalid(&format!("{key}: unknown field"))),
        }
    }
    for required in ["name", "pipeline_id"] {
        if creating && !body.contains_key(required) {
            return Err(invalid(&format!("{required}: is required")));
        }
    }
    Ok(())
}

fn next_order(data: &PdData, pipeline_id: u64) -> i64 {
    data.stages.values().filter(|s| s.pipeline_id == pipeline_id && !s.is_deleted).map(|s| s.order_nr + 1).max().unwrap_or(1)
}

/// POST /api/v2/stages (`addStage`): the stage goes last in its pipeline; `deal_probability`
/// defaults to 100.
pub async fn add_stage(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let at = now_ms();
    let mut data = pd.write();
    let mut stage = Stage {
        id: 0,
        order_nr: 0,
        name: String::new(),
        is_deleted: false,
        deal_probability: 100,
        pipeline_id: 0,
        is_deal_rot_enabled: false,
        days_to_rotten: None,
        add_time: at,
        update_time: at,
    };
    if let Err(r) = apply_stage(&data, &mut stage, &body, true) {
        return r;
    }
    stage.order_nr = next_order(&data, stage.pipeline_id);
    stage.id = data.next_id();
    data.stages.insert(stage.id, stage.clone());
    data.emit("stage", stage.id, None, Some(stage_json(&stage)), at, "api");
    ok(stage_json(&stage))
}

/// PATCH /api/v2/stages/{id} (`updateStage`): a stage moved to another pipeline goes last there,
/// and takes its deals along.
pub async fn update_stage(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let (id, body) = match parse_id(&raw).and_then(|id| json_body(body).map(|b| (id, b))) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut data = pd.write();
    let Some(mut stage) = data.live_stage(id).cloned() else {
        return failure(StatusCode::NOT_FOUND, "Stage not found");
    };
    let before = stage.pipeline_id;
    let before_json = stage_json(&stage);
    if let Err(r) = apply_stage(&data, &mut stage, &body, false) {
        return r;
    }
    let at = now_ms();
    if stage.pipeline_id != before {
        stage.order_nr = next_order(&data, stage.pipeline_id);
        let pipeline_id = stage.pipeline_id;
        data.deals.update_all(|deal| {
            if deal.stage_id == id {
                deal.pipeline_id = pipeline_id;
                deal.update_time = at;
            }
        });
    }
    stage.update_time = at;
    data.stages.insert(id, stage.clone());
    data.emit("stage", id, Some(before_json), Some(stage_json(&stage)), at, "api");
    ok(stage_json(&stage))
}

/// DELETE /api/v2/stages/{id} (`deleteStage`): refused with 400 while deals (open, won or lost)
/// are in the stage, as they would be left without a stage.
pub async fn delete_stage(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "admin") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = pd.write();
    if data.live_stage(id).is_none() {
        return failure(StatusCode::NOT_FOUND, "Stage not found");
    }
    let deals = deals_where(&data, |d| d.stage_id == id);
    if deals > 0 {
        return failure(
            StatusCode::BAD_REQUEST,
            &format!("The stage still has {deals} deal(s); move them to another stage before deleting it"),
        );
    }
    let at = now_ms();
    if let Some(stage) = data.stages.get(&id).cloned() {
        data.emit("stage", id, Some(stage_json(&stage)), None, at, "api");
    }
    if let Some(stage) = data.stages.get_mut(&id) {
        stage.is_deleted = true;
        stage.update_time = at;
    }
    ok(json!({"id": id}))
}

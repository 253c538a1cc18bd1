//! API v2 deals: list (cursor, filters, `updated_since`, sorting), get, create, update, soft
//! delete; the v1 changelog; and the control routes that act as a Pipedrive user.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::data::{Change, Deal, PdData};
use super::fields::apply_custom_fields;
use super::listing::{data_written, list_written, ListQuery};
use super::{failure, invalid, json_body, ok, parse_id, require_scope, Pipedrive};
use crate::json::Object;
use crate::key;
use crate::oauth::AccessToken;
use crate::table::Row;
use crate::time::{iso_seconds, now_ms, parse_rfc3339};

/// Writes a deal in the API v2 shape straight from the store (see [`crate::json::Object`]).
pub fn write_deal(d: &Deal, out: &mut Vec<u8>) {
    out.reserve(1024);
    let mut o = Object::begin(out);
    o.value(key!("id"), &d.id)
        .str(key!("title"), &d.title)
        .value(key!("creator_user_id"), &d.owner_id)
        .value(key!("owner_id"), &d.owner_id)
        .value(key!("person_id"), &d.person_id)
        .value(key!("org_id"), &d.org_id)
        .value(key!("pipeline_id"), &d.pipeline_id)
        .value(key!("stage_id"), &d.stage_id)
        .value(key!("value"), &d.value)
        .str(key!("currency"), &d.currency)
        .time(key!("add_time"), Some(d.add_time))
        .time(key!("update_time"), Some(d.update_time))
        .time(key!("stage_change_time"), d.stage_change_time)
        .str(key!("status"), &d.status)
        .value(key!("is_archived"), &false)
        .value(key!("archive_time"), &())
        .value(key!("is_deleted"), &d.is_deleted)
        .value(key!("probability"), &d.probability)
        .opt_str(key!("lost_reason"), d.lost_reason.as_deref())
        .value(key!("visible_to"), &d.visible_to)
        .time(key!("close_time"), d.close_time)
        .time(key!("won_time"), d.won_time)
        .time(key!("lost_time"), d.lost_time)
        .opt_str(key!("expected_close_date"), d.expected_close_date.as_deref())
        .value(key!("label_ids"), &d.label_ids)
        .str(key!("origin"), "API")
        .value(key!("origin_id"), &())
        .value(key!("channel"), &())
        .value(key!("channel_id"), &())
        .map(key!("custom_fields"), &d.custom_fields);
    o.end();
}

pub fn deal_json(d: &Deal) -> Value {
    let mut out = Vec::with_capacity(768);
    write_deal(d, &mut out);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

impl Row for Deal {
    fn id(&self) -> u64 {
        self.id
    }
    fn add_time(&self) -> i64 {
        self.add_time
    }
    fn update_time(&self) -> i64 {
        self.update_time
    }
}

/// GET /api/v2/deals (`getDeals`)
pub async fn list(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let query = match ListQuery::parse(raw.as_deref(), &["owner_id", "pipeline_id", "stage_id", "person_id", "org_id"]) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let statuses: Vec<&str> = query.get("status").map(|s| s.split(',').collect()).unwrap_or_default();
    let data = pd.read();
    let (page, next) = query.page(&data.deals, |d| {
        let status_ok = if statuses.is_empty() { !d.is_deleted } else { statuses.contains(&d.status.as_str()) };
        status_ok
            && query.keeps(d, |name, v| match name {
                "owner_id" => d.owner_id == v,
                "pipeline_id" => d.pipeline_id == v,
                "stage_id" => d.stage_id == v,
                "person_id" => d.person_id == Some(v),
                "org_id" => d.org_id == Some(v),
                _ => false,
            })
    });
    list_written(&page, write_deal, next)
}

/// GET /api/v2/deals/{id} (`getDeal`)
pub async fn get_one(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match pd.read().deals.get(&id) {
        Some(d) => data_written(d, write_deal),
        None => failure(StatusCode::NOT_FOUND, "Deal not found"),
    }
}

/// Applies the fields of a create or update body to `deal`, checking each; logs changes.
fn apply_body(
    data: &mut PdData,
    deal: &mut Deal,
    body: &Map<String, Value>,
    creating: bool,
    at: i64,
    actor: u64,
    source: &str,
) -> Result<(), Response> {
    let before = deal.clone();
    for (key, value) in body {
        match key.as_str() {
            "title" => match value.as_str().map(str::trim) {
                Some(t) if !t.is_empty() => deal.title = t.to_string(),
                _ => return Err(invalid("title: must be a non-empty string")),
            },
            "value" => deal.value = value.as_f64().ok_or_else(|| invalid("value: must be a number"))?,
            "currency" => deal.currency = value.as_str().ok_or_else(|| invalid("currency: must be a string"))?.to_string(),
            "owner_id" => {
                let id = value.as_u64().ok_or_else(|| invalid("owner_id: must be an integer"))?;
                if !data.users.iter().any(|u| u.id == id) {
                    return Err(invalid("owner_id: no such user"));
                }
                deal.owner_id = id;
            }
            "pipeline_id" => deal.pipeline_id = value.as_u64().ok_or_else(|| invalid("pipeline_id: must be an integer"))?,
            "stage_id" => deal.stage_id = value.as_u64().ok_or_else(|| invalid("stage_id: must be an integer"))?,
            "person_id" => deal.person_id = value.as_u64(),
            "org_id" => deal.org_id = value.as_u64(),
            "status" => match value.as_str() {
                Some(s @ ("open" | "won" | "lost")) => deal.status = s.to_string(),
                _ => return Err(invalid("status: must be one of open, won, lost")),
            },
            "probability" => deal.probability = value.as_f64(),
            "lost_reason" => deal.lost_reason = value.as_str().map(str::to_string),
            "visible_to" => deal.visible_to = value.as_i64().ok_or_else(|| invalid("visible_to: must be an integer"))?,
            "expected_close_date" => match value {
                Value::Null => deal.expected_close_date = None,
                Value::String(s) if parse_rfc3339(&format!("{s}T00:00:00Z")).is_some() => deal.expected_close_date = Some(s.clone()),
                _ => return Err(invalid("expected_close_date: must be a date like 2025-01-31")),
            },
            "label_ids" => {
                deal.label_ids = serde_json::from_value(value.clone()).map_err(|_| invalid("label_ids: must be an array of integers"))?
            }
            "custom_fields" => apply_custom_fields(&data.deal_fields, &mut deal.custom_fields, value)?,
            _ => return Err(invalid(&format!("{key}: unknown field"))),
        }
    }
    if creating && !body.contains_key("title") {
        return Err(invalid("title: is required"));
    }
    // Pipeline and stage must agree; a pipeline alone puts the deal in its first stage.
    let stage_given = body.contains_key("stage_id");
    if stage_given {
        let stage = data.live_stage(deal.stage_id).ok_or_else(|| invalid("stage_id: no such stage"))?;
        if body.contains_key("pipeline_id") && stage.pipeline_id != deal.pipeline_id {
            return Err(invalid("stage_id: the stage does not belong to pipeline_id"));
        }
        deal.pipeline_id = stage.pipeline_id;
    } else if body.contains_key("pipeline_id") || creating {
        let pipeline = if body.contains_key("pipeline_id") {
            deal.pipeline_id
        } else {
            data.pipelines.values().filter(|p| !p.is_deleted).min_by_key(|p| p.order_nr).map(|p| p.id).unwrap_or(1)
        };
        if data.live_stage(deal.stage_id).map(|s| s.pipeline_id) != Some(pipeline) {
            deal.stage_id = match data.first_stage(pipeline) {
                Some(stage) => stage.id,
                None if data.pipelines.get(&pipeline).is_some_and(|p| !p.is_deleted) => {
                    return Err(invalid("pipeline_id: the pipeline has no stages"));
                }
                None => return Err(invalid("pipeline_id: no such pipeline")),
            };
        }
        deal.pipeline_id = pipeline;
    }
    if deal.stage_id != before.stage_id && !creating {
        deal.stage_change_time = Some(at);
    }
    if deal.status != before.status {
        match deal.status.as_str() {
            "won" => (deal.won_time, deal.close_time) = (Some(at), Some(at)),
            "lost" => (deal.lost_time, deal.close_time) = (Some(at), Some(at)),
            _ => deal.close_time = None,
        }
    }
    deal.update_time = at;
    if !creating {
        let id = |v: Option<u64>| v.map(|n| n.to_string());
        let mut pairs: Vec<(String, Option<String>, Option<String>)> = vec![
            ("title".into(), Some(before.title.clone()), Some(deal.title.clone())),
            ("value".into(), Some(before.value.to_string()), Some(deal.value.to_string())),
            ("stage_id".into(), Some(before.stage_id.to_string()), Some(deal.stage_id.to_string())),
            ("pipeline_id".into(), Some(before.pipeline_id.to_string()), Some(deal.pipeline_id.to_string())),
            ("status".into(), Some(before.status.clone()), Some(deal.status.clone())),
            ("expected_close_date".into(), before.expected_close_date.clone(), deal.expected_close_date.clone()),
            // The changelog names fields by their v1 keys: the owner is `user_id`.
            ("user_id".into(), Some(before.owner_id.to_string()), Some(deal.owner_id.to_string())),
            ("person_id".into(), id(before.person_id), id(deal.person_id)),
            ("org_id".into(), id(before.org_id), id(deal.org_id)),
        ];
        let shown = |v: Option<&Value>| v.filter(|v| !v.is_null()).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        let keys: std::collections::BTreeSet<&String> = before.custom_fields.keys().chain(deal.custom_fields.keys()).collect();
        for key in keys {
            pairs.push((key.clone(), shown(before.custom_fields.get(key)), shown(deal.custom_fields.get(key))));
        }
        for (field, old_value, new_value) in pairs {
            let change = Change { field_key: field, old_value, new_value, actor_user_id: actor, time: at, change_source: source.into() };
            data.log_change(deal.id, change);
        }
    }
    Ok(())
}

fn create_deal(pd: &Pipedrive, body: &Map<String, Value>, at: i64, source: &str) -> Result<Deal, Response> {
    let mut data = pd.write();
    let owner = data.users.first().map(|u| u.id).unwrap_or_default();
    let mut deal = Deal::new(0, owner, at);
    apply_body(&mut data, &mut deal, body, true, at, owner, source)?;
    deal.id = data.next_id();
    data.deals.insert(deal.id, deal.clone());
    data.emit("deal", deal.id, None, Some(deal_json(&deal)), at, source);
    Ok(deal)
}

fn update_deal(pd: &Pipedrive, id: u64, body: &Map<String, Value>, at: i64, source: &str) -> Result<Deal, Response> {
    let mut data = pd.write();
    let mut deal =
        data.deals.get(&id).filter(|d| !d.is_deleted).cloned().ok_or_else(|| failure(StatusCode::NOT_FOUND, "Deal not found"))?;
    let actor = data.users.first().map(|u| u.id).unwrap_or_default();
    let before = deal_json(&deal);
    apply_body(&mut data, &mut deal, body, false, at, actor, source)?;
    data.deals.insert(id, deal.clone());
    data.emit("deal", id, Some(before), Some(deal_json(&deal)), at, source);
    Ok(deal)
}

/// POST /api/v2/deals (`addDeal`): 200 with the deal.
pub async fn create(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:full") {
        return r;
    }
    match json_body(body).and_then(|b| create_deal(&pd, &b, now_ms(), "api")) {
        Ok(deal) => ok(deal_json(&deal)),
        Err(r) => r,
    }
}

/// PATCH /api/v2/deals/{id} (`updateDeal`)
pub async fn update(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:full") {
        return r;
    }
    let result = parse_id(&raw).and_then(|id| json_body(body).and_then(|b| update_deal(&pd, id, &b, now_ms(), "api")));
    match result {
        Ok(deal) => ok(deal_json(&deal)),
        Err(r) => r,
    }
}

/// DELETE /api/v2/deals/{id} (`deleteDeal`): a soft delete.
pub async fn delete(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "deals:full") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = pd.write();
    let now = now_ms();
    let before = data.deals.get_mut(&id).filter(|d| !d.is_deleted).map(|mut deal| {
        let before = deal_json(&deal);
        deal.is_deleted = true;
        deal.status = "deleted".into();
        deal.update_time = now;
        before
    });
    match before {
        None => failure(StatusCode::NOT_FOUND, "Deal not found"),
        Some(before) => {
            data.emit("deal", id, Some(before), None, now, "api");
            ok(json!({"id": id}))
        }
    }
}

/// GET /api/v1/deals/{id}/changelog (`getDealChangelog`)
pub async fn changelog(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let data = pd.read();
    if !data.deals.contains_key(&id) {
        return failure(StatusCode::NOT_FOUND, "Deal not found");
    }
    let entries: Vec<Value> = data
        .changelog
        .get(&id)
        .into_iter()
        .flatten()
        .rev()
        .map(|c| {
            json!({
                "field_key": c.field_key, "old_value": c.old_value, "new_value": c.new_value,
                "actor_user_id": c.actor_user_id, "time": iso_seconds(c.time).replace('T', " ").trim_end_matches('Z'),
                "change_source": c.change_source, "change_source_user_agent": null, "is_bulk_update_flag": false,
            })
        })
        .collect();
    Json(json!({"success": true, "data": entries, "additional_data": {"next_cursor": null}})).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SummaryQuery {
    status: Option<String>,
    user_id: Option<u64>,
    pipeline_id: Option<u64>,
    stage_id: Option<u64>,
}

/// GET /api/v1/deals/summary (`getDealsSummary`): counts and values of the deals that are not
/// deleted, grouped by currency.
pub async fn deals_summary(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    query: Result<axum::extract::Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = require_scope(&token, "deals:read") {
        return r;
    }
    let Ok(axum::extract::Query(q)) = query else {
        return invalid("user_id, pipeline_id and stage_id must be integers");
    };
    if q.status.as_deref().is_some_and(|s| !matches!(s, "open" | "won" | "lost")) {
        return invalid("status: must be equal to one of the allowed values: open, won, lost");
    }
    let data = pd.read();
    let mut by_currency: BTreeMap<&str, (f64, f64, u64)> = BTreeMap::new();
    let mut count = 0u64;
    for d in data.deals.values().filter(|d| !d.is_deleted) {
        if q.status.as_deref().is_some_and(|s| s != d.status)
            || q.user_id.is_some_and(|u| u != d.owner_id)
            || q.pipeline_id.is_some_and(|p| p != d.pipeline_id)
            || q.stage_id.is_some_and(|s| s != d.stage_id)
        {
            continue;
        }
        count += 1;
        let entry = by_currency.entry(d.currency.as_str()).or_default();
        entry.0 += d.value;
        entry.1 += d.value * d.probability.unwrap_or(100.0) / 100.0;
        entry.2 += 1;
    }
    let values: Map<String, Value> = by_currency
        .iter()
        .map(|(c, (v, _, n))| {
            let formatted = format!("{c} {v:.2}");
            (
                c.to_string(),
                json!({"value": v, "count": n, "value_converted": v, "value_formatted": formatted, "value_converted_formatted": formatted}),
            )
        })
        .collect();
    let weighted: Map<String, Value> = by_currency
        .iter()
        .map(|(c, (_, w, n))| (c.to_string(), json!({"value": w, "count": n, "value_formatted": format!("{c} {w:.2}")})))
        .collect();
    let total: f64 = by_currency.values().map(|v| v.0).sum();
    let weighted_total: f64 = by_currency.values().map(|v| v.1).sum();
    ok(json!({
        "values_total": values,
        "weighted_values_total": weighted,
        "total_count": count,
        "total_currency_converted_value": total,
        "total_weighted_currency_converted_value": weighted_total,
        "total_currency_converted_value_formatted": format!("{total:.2}"),
        "total_weighted_currency_converted_value_formatted": format!("{weighted_total:.2}"),
    }))
}

// ---- Control: acting as a Pipedrive user ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct SeedRequest {
    deals: usize,
    persons: usize,
    organizations: usize,
    seed: u64,
}

#[derive(Deserialize)]
struct UserEdit {
    fields: Map<String, Value>,
    timestamp: Option<i64>,
}

pub fn control_routes(pd: Arc<Pipedrive>) -> Router {
    Router::new()
        .route("/_sandbox/seed", post(seed))
        .route("/_sandbox/summary", get(summary))
        .route("/_sandbox/deals", post(create_as_user))
        .route("/_sandbox/deals/{id}", patch(edit_as_user))
        .with_state(pd)
}

/// `POST /_sandbox/seed` (`{"organizations": N, "persons": N, "deals": N, "seed": S}`): organizations
/// first, then persons linked to them, then deals.
async fn seed(State(pd): State<Arc<Pipedrive>>, Json(req): Json<SeedRequest>) -> Json<Value> {
    let at = now_ms();
    {
        let mut data = pd.write();
        super::seed::generate_contacts(&mut data, req.organizations, req.persons, req.seed, at);
        super::seed::generate(&mut data, req.deals, req.seed, at);
    }
    tracing::info!(deals = req.deals, persons = req.persons, organizations = req.organizations, "sandbox seeded");
    Json(json!({"seeded": {"deals": req.deals, "persons": req.persons, "organizations": req.organizations}}))
}

async fn summary(State(pd): State<Arc<Pipedrive>>) -> Json<Value> {
    let data = pd.read();
    let live = data.deals.values().filter(|d| !d.is_deleted).count();
    let persons = data.persons.values().filter(|p| !p.is_deleted).count();
    let organizations = data.organizations.values().filter(|o| !o.is_deleted).count();
    Json(json!({
        "companyId": data.company_id,
        "deals": {"live": live, "deleted": data.deals.len() - live},
        "persons": {"live": persons, "deleted": data.persons.len() - persons},
        "organizations": {"live": organizations, "deleted": data.organizations.len() - organizations},
        "pipelines": data.pipelines.len(),
        "rateLimited": pd.rate_limited(),
    }))
}

async fn create_as_user(State(pd): State<Arc<Pipedrive>>, Json(req): Json<UserEdit>) -> Response {
    match create_deal(&pd, &req.fields, req.timestamp.unwrap_or_else(now_ms), "app") {
        Ok(deal) => (StatusCode::CREATED, Json(json!({"id": deal.id}))).into_response(),
        Err(r) => r,
    }
}

async fn edit_as_user(State(pd): State<Arc<Pipedrive>>, Path(id): Path<u64>, Json(req): Json<UserEdit>) -> Response {
    match update_deal(&pd, id, &req.fields, req.timestamp.unwrap_or_else(now_ms), "app") {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deal_is_written_in_the_api_v2_shape() {
        let mut deal = Deal::new(42, 7, 1_609_459_200_000);
        deal.title = "Café \"Größe\" \\ deal\n\u{1}".into();
        (deal.person_id, deal.pipeline_id, deal.stage_id, deal.value) = (Some(3), 1, 2, 1500.5);
        deal.update_time = 1_609_459_261_000;
        deal.won_time = Some(1_609_459_262_000);
        (deal.status, deal.probability, deal.lost_reason) = ("won".into(), Some(0.5), None);
        deal.expected_close_date = Some("2021-02-01".into());
        deal.label_ids = vec![5, 6];
        deal.custom_fields.insert("a".repeat(40), json!(101));
        deal.custom_fields.insert("b".repeat(40), json!({"value": 10.5, "currency": "EUR"}));
        let mut out = Vec::new();
        write_deal(&deal, &mut out);
        let written: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(
            written,
            json!({
                "id": 42, "title": "Café \"Größe\" \\ deal\n\u{1}", "creator_user_id": 7, "owner_id": 7, "person_id": 3,
                "org_id": null, "pipeline_id": 1, "stage_id": 2, "value": 1500.5, "currency": "USD",
                "add_time": "2021-01-01T00:00:00Z", "update_time": "2021-01-01T00:01:01Z", "stage_change_time": null,
                "status": "won", "is_archived": false, "archive_time": null, "is_deleted": false, "probability": 0.5,
                "lost_reason": null, "visible_to": deal.visible_to, "close_time": null, "won_time": "2021-01-01T00:01:02Z",
                "lost_time": null, "expected_close_date": "2021-02-01", "label_ids": [5, 6], "origin": "API",
                "origin_id": null, "channel": null, "channel_id": null,
                "custom_fields": {"a".repeat(40): 101, "b".repeat(40): {"value": 10.5, "currency": "EUR"}},
            })
        );
        // Strings that need no escaping are copied; the others are escaped as serde_json does.
        for text in ["plain", "", "quote \" and \\", "tab\tnew\nline", "\u{7f}\u{1f}\u{0}", "ünïcødé ✓"] {
            let mut out = Vec::new();
            crate::json::write_str(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }
}

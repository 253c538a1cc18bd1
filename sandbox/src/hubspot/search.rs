//! CRM search (`post-/crm/v3/objects/0-3/search_doSearch`): filter groups (OR of ANDs) with the 13
//! operators, sorts, a text query, `after` paging up to HubSpot's 10,000-result cap, and its
//! separate limit of five search requests per second.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::data::{HubData, ObjectType, Record};
use super::objects::{Fields, RecordView};
use super::{error, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::time::parse_hubspot_time;

pub const MAX_LIMIT: usize = 200;
pub const RESULT_CAP: usize = 10_000;
pub const MAX_GROUPS: usize = 5;
pub const MAX_FILTERS_PER_GROUP: usize = 6;
pub const MAX_FILTERS: usize = 18;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchRequest {
    filter_groups: Vec<FilterGroup>,
    sorts: Vec<Value>,
    query: Option<String>,
    properties: Vec<String>,
    limit: Option<usize>,
    after: Option<Value>,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct FilterGroup {
    filters: Vec<Filter>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    property_name: String,
    operator: String,
    value: Option<Value>,
    values: Option<Vec<Value>>,
    high_value: Option<Value>,
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares a stored value with a filter value the way the property's type compares.
fn compare(data: &HubData, object: ObjectType, property: &str, stored: &str, wanted: &str) -> Option<Ordering> {
    let kind = data.property(object, property).map(|p| p.kind.as_str()).unwrap_or("string");
    match kind {
        "number" => stored.parse::<f64>().ok()?.partial_cmp(&wanted.parse::<f64>().ok()?),
        "date" | "datetime" => Some(parse_hubspot_time(stored)?.cmp(&parse_hubspot_time(wanted)?)),
        _ => Some(stored.to_lowercase().cmp(&wanted.to_lowercase())),
    }
}

/// Properties the record keeps as numbers (its id, creation and modification times): compared
/// and sorted as those numbers, without parsing their text for every record.
fn intrinsic(record: &Record, property: &str) -> Option<i64> {
    match property {
        "hs_object_id" => Some(record.id as i64),
        // Contacts keep their modification time in `lastmodifieddate`; other objects in
        // `hs_lastmodifieddate`.
        "hs_lastmodifieddate" | "lastmodifieddate" => Some(record.updated_at),
        "createdate" => Some(record.created_at),
        _ => None,
    }
}

fn matches(data: &HubData, object: ObjectType, record: &Record, filter: &Filter) -> Result<bool, Response> {
    let number = intrinsic(record, &filter.property_name);
    let stored = match number {
        Some(n) if filter.property_name == "hs_object_id" => Some(n.to_string()),
        _ => record.properties.get(&filter.property_name).cloned(),
    };
    let value = filter.value.as_ref().map(text);
    let need_value = || value.clone().ok_or_else(|| bad(format!("operator {} needs a value", filter.operator)));
    let cmp = |wanted: &str| match number {
        Some(n) => parse_hubspot_time(wanted).or_else(|| wanted.trim().parse::<f64>().ok().map(|f| f as i64)).map(|w| n.cmp(&w)),
        None => stored.as_deref().and_then(|s| compare(data, object, &filter.property_name, s, wanted)),
    };
    Ok(match filter.operator.as_str() {
        "EQ" => cmp(&need_value()?) == Some(Ordering::Equal),
        "NEQ" => cmp(&need_value()?) != Some(Ordering::Equal),
        "LT" => cmp(&need_value()?) == Some(Ordering::Less),
        "LTE" => matches!(cmp(&need_value()?), Some(Ordering::Less | Ordering::Equal)),
        "GT" => cmp(&need_value()?) == Some(Ordering::Greater),
        "GTE" => matches!(cmp(&need_value()?), Some(Ordering::Greater | Ordering::Equal)),
        "BETWEEN" => {
            let high = filter.high_value.as_ref().map(text).ok_or_else(|| bad("BETWEEN needs a highValue"))?;
            matches!(cmp(&need_value()?), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp(&high), Some(Ordering::Less | Ordering::Equal))
        }
        "IN" | "NOT_IN" => {
            let values = filter.values.as_ref().ok_or_else(|| bad(format!("{} needs values", filter.operator)))?;
            let found = values.iter().any(|v| cmp(&text(v)) == Some(Ordering::Equal));
            found == (filter.operator == "IN")
        }
        "HAS_PROPERTY" => stored.is_some(),
        "NOT_HAS_PROPERTY" => stored.is_none(),
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let token = need_value()?.to_lowercase().replace('*', "");
            let found = stored.as_deref().is_some_and(|s| s.to_lowercase().split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.').any(|w| w == token || w.contains(&token)));
            found == (filter.operator == "CONTAINS_TOKEN")
        }
        other => return Err(bad(format!("Unknown operator {other}"))),
    })
}

/// (property, descending)
fn sort_spec(v: &Value) -> Option<(String, bool)> {
    match v {
        Value::String(s) => Some(match s.strip_prefix('-') {
            Some(name) => (name.to_string(), true),
            None => (s.clone(), false),
        }),
        Value::Object(o) => Some((
            o.get("propertyName")?.as_str()?.to_string(),
            o.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
        )),
        _ => None,
    }
}

#[derive(Serialize)]
struct SearchPage<'a> {
    total: usize,
    results: Vec<RecordView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Value>,
}

pub async fn search(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<SearchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let object = ObjectType::parse(&raw).ok_or_else(|| bad(format!("Unable to infer object type from: {raw}")))?;
    require_scope(&token, &object.scope(false))?;
    hubspot.count_search(&token.grant.client_id)?;
    let Json(req) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    let limit = req.limit.unwrap_or(10);
    if limit > MAX_LIMIT {
        return Err(bad(format!("limit must be at most {MAX_LIMIT}")));
    }
    let after: usize = match &req.after {
        None => 0,
        Some(v) => text(v).parse().map_err(|_| bad("after must be a paging cursor returned by a previous page"))?,
    };
    if after + limit > RESULT_CAP {
        return Err(bad(format!("Search results are capped at {RESULT_CAP}; narrow the filters instead of paging further")));
    }
    let filters: usize = req.filter_groups.iter().map(|g| g.filters.len()).sum();
    if req.filter_groups.len() > MAX_GROUPS || req.filter_groups.iter().any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP) || filters > MAX_FILTERS {
        return Err(bad(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups of {MAX_FILTERS_PER_GROUP} filters, {MAX_FILTERS} in all"
        )));
    }
    let data = hubspot.read();
    // What the index holds: records written more than the configured lag ago (0: everything).
    let lag = hubspot.faults.get().search_lag_ms as i64;
    // The pages of one search share its sorted hits: computed once per version of the data
    // (every write bumps it), so paging through a large result is not a full scan per page.
    let key = serde_json::to_string(&(object.name(), &req.filter_groups, &req.sorts, &req.query)).unwrap_or_default();
    // (With an index lag the hits depend on the clock too: computed every time.)
    let ids: Arc<Vec<u64>> = if lag == 0 {
        hubspot.search_cache.try_get_or(key, hubspot.version(), || sorted_hits(&hubspot, &data, object, &req, lag))?
    } else {
        Arc::new(sorted_hits(&hubspot, &data, object, &req, lag)?)
    };
    let Some(all) = data.records.get(&object) else {
        return Ok(crate::json::ok(&SearchPage { total: 0, results: vec![], paging: None }));
    };
    let total = ids.len();
    let fields = Fields::new(object, &req.properties, &[]);
    let next = after + limit;
    let body = SearchPage {
        total,
        results: ids.iter().skip(after).take(limit).filter_map(|id| all.get(id)).map(|r| fields.view(r)).collect(),
        paging: (next < total).then(|| json!({"next": {"after": next.to_string(), "link": format!("?after={next}")}})),
    };
    Ok(crate::json::ok(&body))
}

/// The ids of the records a search matches, in its order (sorts, then id).
fn sorted_hits(hubspot: &HubSpot, data: &HubData, object: ObjectType, req: &SearchRequest, lag: i64) -> Result<Vec<u64>, Response> {
    let indexed_before = hubspot.clock.now() - lag;
    let query = req.query.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
    let mut hits: Vec<&Record> = Vec::new();
    for record in data.records(object).filter(|r| !r.archived && (lag == 0 || r.updated_at <= indexed_before)) {
        let mut any = req.filter_groups.is_empty();
        for group in &req.filter_groups {
            let mut all = true;
            for filter in &group.filters {
                if !matches(data, object, record, filter)? {
                    all = false;
                    break;
                }
            }
            if all {
                any = true;
                break;
            }
        }
        let text_ok = query.as_ref().is_none_or(|q| {
            object.default_properties().iter().any(|p| record.properties.get(*p).is_some_and(|v| v.to_lowercase().contains(q)))
        });
        if any && text_ok {
            hits.push(record);
        }
    }
    let sorts: Vec<(String, bool)> = req.sorts.iter().filter_map(sort_spec).collect();
    hits.sort_by(|a, b| {
        for (property, descending) in &sorts {
            let ordering = match (intrinsic(a, property), intrinsic(b, property)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => match (a.properties.get(property), b.properties.get(property)) {
                (Some(x), Some(y)) => compare(data, object, property, x, y).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
                },
            };
            let ordering = if *descending { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.id.cmp(&b.id)
    });
    Ok(hits.into_iter().map(|r| r.id).collect())
}

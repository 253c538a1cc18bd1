//! CRM search (`post-/crm/v3/objects/0-3/search_doSearch`): filter groups (OR of ANDs) with the 13
//! operators, sorts, a text query, `after` paging up to HubSpot's 10,000-result cap, and its
//! separate limit of five search requests per second. A search whose every filter group names a
//! range of modification or creation dates, ids, emails or domains reads only the records the
//! table's indexes name (see `planned_ids`); any other reads every record.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::data::{lookup_key, HubData, ObjectType, Record, LOOKUP_PROPERTIES};
use super::objects::{Fields, RecordView};
use super::{error, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::table::{Table, TimeOrder};
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

/// A filter value compared with an intrinsic number: a HubSpot time (epoch milliseconds or an ISO
/// date) or a number.
fn wanted_number(wanted: &str) -> Option<i64> {
    parse_hubspot_time(wanted).or_else(|| wanted.trim().parse::<f64>().ok().map(|f| f as i64))
}

/// Refuses a filter HubSpot refuses whatever the records hold: an unknown operator, or one
/// without the value, highValue or values it needs.
fn check(filter: &Filter) -> Result<(), Response> {
    let op = filter.operator.as_str();
    match op {
        "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "BETWEEN" | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" if filter.value.is_none() => {
            Err(bad(format!("operator {op} needs a value")))
        }
        "BETWEEN" if filter.high_value.is_none() => Err(bad("BETWEEN needs a highValue")),
        "IN" | "NOT_IN" if filter.values.is_none() => Err(bad(format!("{op} needs values"))),
        "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "BETWEEN" | "IN" | "NOT_IN" | "HAS_PROPERTY" | "NOT_HAS_PROPERTY"
        | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => Ok(()),
        other => Err(bad(format!("Unknown operator {other}"))),
    }
}

/// The ids among which the records a filter matches are, read from the table's indexes: a range
/// of modification or creation dates, ids, or emails and domains. None when the filter cannot be
/// answered from an index. Every id found is still checked against every filter.
fn indexed_ids(data: &HubData, object: ObjectType, table: &Table<Record>, filter: &Filter) -> Option<Vec<u64>> {
    let op = filter.operator.as_str();
    let value = filter.value.as_ref().map(text);
    let wanted = || -> Vec<String> {
        match op {
            "IN" => filter.values.iter().flatten().map(text).collect(),
            _ => value.clone().into_iter().collect(),
        }
    };
    match filter.property_name.as_str() {
        property @ ("hs_lastmodifieddate" | "lastmodifieddate" | "createdate") => {
            let order = if property == "createdate" { TimeOrder::Add } else { TimeOrder::Update };
            let at = value.as_deref().and_then(wanted_number);
            let high = filter.high_value.as_ref().map(text).as_deref().and_then(wanted_number);
            // Inclusive bounds; none when no time can match (a value that is not a time).
            let bounds = match op {
                "EQ" => at.map(|t| (t, t)),
                "GT" => at.and_then(|t| t.checked_add(1)).map(|t| (t, i64::MAX)),
                "GTE" => at.map(|t| (t, i64::MAX)),
                "LT" => at.and_then(|t| t.checked_sub(1)).map(|t| (i64::MIN, t)),
                "LTE" => at.map(|t| (i64::MIN, t)),
                "BETWEEN" => at.zip(high),
                _ => return None,
            };
            Some(match bounds {
                Some((low, high)) if low <= high => table.by(order).range((low, 0)..=(high, u64::MAX)).map(|(_, id)| *id).collect(),
                _ => Vec::new(),
            })
        }
        "hs_object_id" if matches!(op, "EQ" | "IN") => {
            Some(wanted().iter().filter_map(|v| u64::try_from(wanted_number(v)?).ok()).filter(|id| table.contains_key(id)).collect())
        }
        property if matches!(op, "EQ" | "IN") && LOOKUP_PROPERTIES.contains(&property) => {
            // Indexed by their trimmed lower-case text: only a property compared as text.
            let kind = data.property(object, property).map(|p| p.kind.as_str()).unwrap_or("string");
            if matches!(kind, "number" | "date" | "datetime") {
                return None;
            }
            Some(wanted().iter().filter_map(|v| lookup_key(property, v)).flat_map(|key| table.with_key(&key).iter().copied()).collect())
        }
        _ => None,
    }
}

/// The ids a search's records are among, when every filter group names one that an index answers
/// (see [`indexed_ids`]), in id order; none when the search must read every record.
fn planned_ids(data: &HubData, object: ObjectType, table: &Table<Record>, groups: &[FilterGroup]) -> Option<Vec<u64>> {
    if groups.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    for group in groups {
        ids.extend(group.filters.iter().find_map(|f| indexed_ids(data, object, table, f))?);
    }
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
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
        Some(n) => wanted_number(wanted).map(|w| n.cmp(&w)),
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
            let found = stored.as_deref().is_some_and(|s| {
                s.to_lowercase().split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.').any(|w| w == token || w.contains(&token))
            });
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
        Value::Object(o) => {
            Some((o.get("propertyName")?.as_str()?.to_string(), o.get("direction").and_then(Value::as_str) == Some("DESCENDING")))
        }
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
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let object = ObjectType::parse(&raw).ok_or_else(|| bad(format!("Unable to infer object type from: {raw}")))?;
    require_scope(&token, &object.scope(false))?;
    hubspot.count_search(&token.grant.client_id)?;
    let Json(body) = body.map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
    if let Value::Object(fields) = &body {
        hubspot.check_required("PublicObjectSearchRequest", fields, &["after", "filterGroups", "limit", "properties", "sorts"])?;
    }
    let req: SearchRequest = serde_json::from_value(body).map_err(|e| bad(format!("Invalid input JSON: {e}")))?;
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
    if req.filter_groups.len() > MAX_GROUPS
        || req.filter_groups.iter().any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
        || filters > MAX_FILTERS
    {
        return Err(bad(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups of {MAX_FILTERS_PER_GROUP} filters, {MAX_FILTERS} in all"
        )));
    }
    req.filter_groups.iter().flat_map(|g| &g.filters).try_for_each(check)?;
    let data = hubspot.read();
    // What the index holds: records written more than the configured lag ago (0: everything).
    let lag = hubspot.faults.get().search_lag_ms as i64;
    // The pages of one search share its sorted hits: computed once per version of the data
    // (every write bumps it), so paging through a large result is not a full scan per page.
    let key = serde_json::to_string(&(object.name(), &req.filter_groups, &req.sorts, &req.query)).unwrap_or_default();
    // (With an index lag the hits depend on the clock too: computed every time.)
    let ids: Arc<Vec<u64>> = if lag == 0 {
        hubspot.search_cache.try_get_or(key, hubspot.version(), || sorted_hits(&data, object, &req, None, true))?
    } else {
        Arc::new(sorted_hits(&data, object, &req, Some(hubspot.clock.now() - lag), true)?)
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

/// The ids of the records a search matches, in its order (sorts, then id): of those written by
/// `indexed_before` when the search index lags. With `use_indexes` it reads only the records the
/// table's indexes name when the filters allow (see [`planned_ids`]); without, every record.
fn sorted_hits(
    data: &HubData,
    object: ObjectType,
    req: &SearchRequest,
    indexed_before: Option<i64>,
    use_indexes: bool,
) -> Result<Vec<u64>, Response> {
    let query = req.query.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
    let Some(table) = data.records.get(&object) else {
        return Ok(Vec::new());
    };
    let planned = if use_indexes { planned_ids(data, object, table, &req.filter_groups) } else { None };
    let records: Box<dyn Iterator<Item = &Record>> = match planned {
        Some(ids) => Box::new(ids.into_iter().filter_map(|id| table.get(&id))),
        None => Box::new(table.values()),
    };
    let mut hits: Vec<&Record> = Vec::new();
    for record in records.filter(|r| !r.archived && indexed_before.is_none_or(|t| r.updated_at <= t)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const BASE: i64 = 1_700_000_000_000;

    /// 200 contacts whose times and emails collide often; some changed later (a new email, a
    /// later time), some archived.
    fn portal() -> HubData {
        let mut data = HubData::new(7);
        let mut ids = Vec::new();
        for i in 0..200i64 {
            let email = if i % 3 == 0 { format!(" Person{}@Example.com ", i % 50) } else { format!("person{}@example.com", i % 50) };
            let properties = BTreeMap::from([("email".to_string(), email), ("firstname".to_string(), format!("P{i}"))]);
            ids.push(data.insert_record(ObjectType::Contacts, properties, BASE + (i % 37) * 1000, "CRM_UI"));
        }
        for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 7 == 0) {
            let properties = BTreeMap::from([("email".to_string(), format!("moved{}@example.com", n % 5))]);
            assert!(data.update_record(ObjectType::Contacts, *id, properties, BASE + 60_000 + n as i64 * 10, "CRM_UI"));
        }
        for id in ids.iter().skip(5).step_by(11) {
            assert!(data.archive_record(ObjectType::Contacts, *id, BASE + 90_000));
        }
        data
    }

    fn request(groups: Value) -> SearchRequest {
        serde_json::from_value(json!({"filterGroups": groups, "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]}))
            .unwrap()
    }

    fn filter(property: &str, operator: &str, value: Value) -> Value {
        match operator {
            "IN" => json!({"propertyName": property, "operator": operator, "values": value}),
            "BETWEEN" => json!({"propertyName": property, "operator": operator, "value": value[0], "highValue": value[1]}),
            _ => json!({"propertyName": property, "operator": operator, "value": value}),
        }
    }

    #[test]
    fn searches_read_from_the_indexes_find_exactly_what_reading_every_record_finds() {
        let data = portal();
        let reloaded: HubData = serde_json::from_str(&serde_json::to_string(&data).unwrap()).unwrap();
        let first = *data.records[&ObjectType::Contacts].keys().next().unwrap();
        let at = |s: i64| (BASE + s * 1000).to_string();
        let indexed = [
            vec![filter("lastmodifieddate", "GTE", json!(at(20)))],
            vec![filter("hs_lastmodifieddate", "GT", json!(at(20)))],
            vec![filter("lastmodifieddate", "LT", json!(at(3)))],
            vec![filter("lastmodifieddate", "LTE", json!(crate::time::iso_ms(BASE + 3000)))],
            vec![filter("lastmodifieddate", "EQ", json!(at(36)))],
            vec![filter("lastmodifieddate", "BETWEEN", json!([at(10), at(12)]))],
            vec![filter("lastmodifieddate", "BETWEEN", json!([at(12), at(10)]))],
            vec![filter("lastmodifieddate", "GTE", json!("not a date"))],
            vec![filter("createdate", "LT", json!(at(5)))],
            vec![filter("hs_object_id", "IN", json!([first.to_string(), (first + 5).to_string(), "x", "-3"]))],
            vec![filter("hs_object_id", "EQ", json!((first + 7).to_string()))],
            vec![filter("email", "EQ", json!("PERSON3@example.com"))],
            vec![filter(
                "email",
                "IN",
                json!(["person4@example.com", " person6@example.com ", "moved2@example.com", "person0@example.com"]),
            )],
            vec![filter("email", "IN", json!(["person4@example.com"])), filter("lastmodifieddate", "GTE", json!(at(30)))],
            vec![filter("firstname", "EQ", json!("P9")), filter("email", "EQ", json!("person9@example.com"))],
        ];
        let mut found = 0;
        for filters in &indexed {
            let req = request(json!([{ "filters": filters }]));
            for portal in [&data, &reloaded] {
                let table = &portal.records[&ObjectType::Contacts];
                assert!(planned_ids(portal, ObjectType::Contacts, table, &req.filter_groups).is_some(), "{filters:?} reads an index");
                let fast = sorted_hits(portal, ObjectType::Contacts, &req, None, true).unwrap_or_else(|_| panic!("{filters:?}"));
                let full = sorted_hits(portal, ObjectType::Contacts, &req, None, false).unwrap_or_else(|_| panic!("{filters:?}"));
                assert_eq!(fast, full, "{filters:?}");
                found += fast.len();
            }
        }
        assert!(found > 400, "the searches find records ({found})");
        // A group no index answers makes the search read every record, with the same answer.
        let req = request(
            json!([{"filters": [filter("email", "EQ", json!("person1@example.com"))]}, {"filters": [filter("firstname", "EQ", json!("P2"))]}]),
        );
        assert!(planned_ids(&data, ObjectType::Contacts, &data.records[&ObjectType::Contacts], &req.filter_groups).is_none());
        // person1@… is contacts 1, 101 and 151 (51's email has spaces around it), P2 is contact 2;
        // modified at 1 s, 27 s, 3 s and 2 s.
        let hits = sorted_hits(&data, ObjectType::Contacts, &req, None, true).unwrap();
        let names: Vec<&str> = hits.iter().map(|id| data.records[&ObjectType::Contacts][id].properties["firstname"].as_str()).collect();
        assert_eq!(names, ["P1", "P2", "P151", "P101"], "in modification order");
    }
}

//! Deals as the engine reads and writes them on each side: HubSpot's CRM v3 objects, search and
//! batch endpoints, and Pipedrive's API v2 deals. Values come back as raw text keyed by field
//! (the deal's place in a pipeline under [`STAGE`]); the runner canonicalises and translates them.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};

use model::sync::{FieldInfo, FieldKind};
use model::translate::StageTranslate;

use super::api::{Api, ApiError, Category, Retry};
use crate::connectors::Provider;

/// The key under which a deal's `pipeline/stage` travels.
pub const STAGE: &str = "__stage";
/// HubSpot's property holding the Tandem id of deals Tandem created or linked.
pub const HUB_TANDEM_PROPERTY: &str = crate::connectors::hubspot::TANDEM_PROPERTY;
/// The label of the same field on both sides.
pub const TANDEM_FIELD_LABEL: &str = crate::connectors::pipedrive::TANDEM_FIELD;
/// Deals per HubSpot batch call.
pub const HUB_BATCH: usize = 100;
/// Pipedrive writes in flight at once (it has no batch endpoints for deals).
const PIPEDRIVE_CONCURRENCY: usize = 8;

/// A deal as read from one side.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteDeal {
    pub id: String,
    pub updated_at: i64,
    pub name: String,
    pub tandem_id: Option<String>,
    /// Raw values by field key, plus [`STAGE`].
    pub values: BTreeMap<String, Option<String>>,
}

/// A page of deals and where the next one starts.
#[derive(Debug, Default)]
pub struct Page {
    pub deals: Vec<RemoteDeal>,
    pub next: Option<String>,
}

/// One side's deals: which fields to read, and where the Tandem id lives.
pub struct Deals<'a> {
    pub api: &'a Api,
    /// Field keys to read (mapped fields and filter fields).
    pub fields: Vec<String>,
    /// The field holding the Tandem id (HubSpot property name; Pipedrive custom field key).
    pub tandem_key: String,
    pub schema: &'a [FieldInfo],
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("value").and_then(text),
        Value::Array(a) => Some(a.iter().filter_map(text).collect::<Vec<_>>().join(",")),
    }
}

fn unexpected(provider: &str, what: &str) -> ApiError {
    ApiError::new(Category::Provider, None, format!("{provider} answered without {what}"))
}

impl Deals<'_> {
    fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }

    // ---- HubSpot ----

    fn hub_properties(&self) -> String {
        let mut props: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        props.extend(["dealname", "pipeline", "dealstage", "hs_lastmodifieddate", self.tandem_key.as_str()]);
        props.sort_unstable();
        props.dedup();
        props.join(",")
    }

    fn hub_deal(&self, v: &Value) -> Option<RemoteDeal> {
        let id = v.get("id").and_then(text)?;
        let props = v.get("properties")?.as_object()?;
        let get = |k: &str| props.get(k).and_then(text).filter(|s| !s.is_empty());
        let updated_at = v
            .get("updatedAt")
            .and_then(Value::as_str)
            .and_then(model::timefmt::parse_iso_ms)
            .or_else(|| get("hs_lastmodifieddate").and_then(|t| t.parse().ok().or_else(|| model::timefmt::parse_iso_ms(&t))))
            .unwrap_or(0);
        let mut values: BTreeMap<String, Option<String>> = self.fields.iter().map(|k| (k.clone(), get(k))).collect();
        let stage = match (get("pipeline"), get("dealstage")) {
            (Some(p), Some(s)) => Some(StageTranslate::value(&p, &s)),
            _ => None,
        };
        values.insert(STAGE.to_string(), stage);
        Some(RemoteDeal { id, updated_at, name: get("dealname").unwrap_or_default(), tandem_id: get(&self.tandem_key), values })
    }

    fn hub_page(&self, body: &Value) -> Result<Page, ApiError> {
        let results = body.get("results").and_then(Value::as_array).ok_or_else(|| unexpected("HubSpot", "results"))?;
        let deals = results.iter().filter_map(|v| self.hub_deal(v)).collect();
        let next = body.pointer("/paging/next/after").and_then(text);
        Ok(Page { deals, next })
    }

    /// HubSpot properties for a write: strings; blanks clear; dates as midnight UTC in ms.
    fn hub_body(&self, values: &BTreeMap<String, Option<String>>) -> Map<String, Value> {
        let mut props = Map::new();
        for (key, value) in values {
            if key == STAGE {
                if let Some((pipeline, stage)) = value.as_deref().and_then(StageTranslate::split) {
                    props.insert("pipeline".into(), json!(pipeline));
                    props.insert("dealstage".into(), json!(stage));
                }
                continue;
            }
            let text = match (self.kind(key), value) {
                (_, None) => String::new(),
                (FieldKind::Date, Some(v)) => model::timefmt::iso_date_ms(v).map(|ms| ms.to_string()).unwrap_or_else(|| v.clone()),
                (_, Some(v)) => v.clone(),
            };
            props.insert(key.clone(), Value::String(text));
        }
        props
    }

    // ---- Pipedrive ----

    /// v1 field keys that v2 names differently.
    fn pd_key(key: &str) -> &str {
        match key {
            "user_id" => "owner_id",
            other => other,
        }
    }

    fn is_custom(key: &str) -> bool {
        key.len() == 40 && key.chars().all(|c| c.is_ascii_hexdigit())
    }

    fn pd_deal(&self, v: &Value) -> Option<RemoteDeal> {
        let id = v.get("id").and_then(text)?;
        if v.get("is_deleted").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let custom = v.get("custom_fields").and_then(Value::as_object);
        let get = |key: &str| -> Option<String> {
            let raw = if Self::is_custom(key) { custom.and_then(|c| c.get(key)) } else { v.get(Self::pd_key(key)) };
            raw.and_then(text).filter(|s| !s.is_empty())
        };
        let updated_at = v.get("update_time").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms).unwrap_or(0);
        let mut values: BTreeMap<String, Option<String>> = self.fields.iter().map(|k| (k.clone(), get(k))).collect();
        let pipeline = get("pipeline_id");
        let stage = match (pipeline, v.get("status").and_then(Value::as_str), get("stage_id")) {
            (Some(p), Some("won"), _) => Some(StageTranslate::value(&p, crate::connectors::pipedrive::WON)),
            (Some(p), Some("lost"), _) => Some(StageTranslate::value(&p, crate::connectors::pipedrive::LOST)),
            (Some(p), _, Some(s)) => Some(StageTranslate::value(&p, &s)),
            _ => None,
        };
        values.insert(STAGE.to_string(), stage);
        Some(RemoteDeal { id, updated_at, name: get("title").unwrap_or_default(), tandem_id: get(&self.tandem_key), values })
    }

    fn pd_page(&self, body: &Value) -> Result<Page, ApiError> {
        let data = body.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let deals = data.iter().filter_map(|v| self.pd_deal(v)).collect();
        let next = body.pointer("/additional_data/next_cursor").and_then(text);
        Ok(Page { deals, next })
    }

    /// A Pipedrive v2 body: numbers as numbers, owners and option ids as integers, custom
    /// fields under `custom_fields`, the stage as pipeline, stage and status.
    fn pd_body(&self, values: &BTreeMap<String, Option<String>>) -> Map<String, Value> {
        let mut body = Map::new();
        let mut custom = Map::new();
        for (key, value) in values {
            if key == STAGE {
                if let Some((pipeline, stage)) = value.as_deref().and_then(StageTranslate::split) {
                    body.insert("pipeline_id".into(), pipeline.parse::<u64>().map(Value::from).unwrap_or(json!(pipeline)));
                    match stage {
                        crate::connectors::pipedrive::WON => {
                            body.insert("status".into(), json!("won"));
                        }
                        crate::connectors::pipedrive::LOST => {
                            body.insert("status".into(), json!("lost"));
                        }
                        stage => {
                            body.insert("stage_id".into(), stage.parse::<u64>().map(Value::from).unwrap_or(json!(stage)));
                            body.insert("status".into(), json!("open"));
                        }
                    }
                }
                continue;
            }
            let json_value = match (self.kind(key), value) {
                // Pipedrive requires an owner and a title: they are never cleared.
                (FieldKind::Owner, None) => continue,
                (_, None) if key == "title" => continue,
                (_, None) => Value::Null,
                (FieldKind::Number, Some(v)) => v.parse::<f64>().map(Value::from).unwrap_or_else(|_| json!(v)),
                (FieldKind::Owner | FieldKind::Enum, Some(v)) => v.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(v)),
                (_, Some(v)) => json!(v),
            };
            if Self::is_custom(key) {
                custom.insert(key.clone(), json_value);
            } else {
                body.insert(Self::pd_key(key).to_string(), json_value);
            }
        }
        if !custom.is_empty() {
            body.insert("custom_fields".into(), Value::Object(custom));
        }
        body
    }

    // ---- Both ----

    /// Every deal, page by page (the initial sync).
    pub async fn list(&self, cursor: Option<&str>) -> Result<Page, ApiError> {
        match self.api.provider {
            Provider::HubSpot => {
                let mut query = vec![("limit", "100".to_string()), ("properties", self.hub_properties())];
                if let Some(after) = cursor {
                    query.push(("after", after.to_string()));
                }
                self.hub_page(&self.api.get("/crm/v3/objects/deals", &query).await?)
            }
            Provider::Pipedrive => {
                let mut query = vec![("limit", "500".to_string()), ("sort_by", "id".to_string())];
                if let Some(c) = cursor {
                    query.push(("cursor", c.to_string()));
                }
                self.pd_page(&self.api.get("/api/v2/deals", &query).await?)
            }
        }
    }

    /// How many deals the account holds (for progress).
    pub async fn count(&self) -> Result<i64, ApiError> {
        match self.api.provider {
            Provider::HubSpot => {
                let body = json!({"filterGroups": [], "properties": ["hs_object_id"], "limit": 1});
                let answer = self.api.call(Method::POST, "/crm/v3/objects/deals/search", &[], Some(&body), Retry::Always).await?;
                Ok(answer["total"].as_i64().unwrap_or(0))
            }
            Provider::Pipedrive => {
                let answer = self.api.get("/api/v1/deals/summary", &[]).await?;
                Ok(answer["data"]["total_count"].as_i64().unwrap_or(0))
            }
        }
    }

    /// Deals changed at or after `since` (Unix ms), oldest change first. HubSpot pages by search
    /// offset (`after`), Pipedrive by cursor.
    pub async fn changed_since(&self, since: i64, cursor: Option<&str>) -> Result<Page, ApiError> {
        match self.api.provider {
            Provider::HubSpot => {
                let mut body = json!({
                    "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since.to_string()}]}],
                    "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                    "limit": 200,
                });
                if let Some(after) = cursor {
                    body["after"] = json!(after);
                }
                self.hub_page(&self.api.call(Method::POST, "/crm/v3/objects/deals/search", &[], Some(&body), Retry::Always).await?)
            }
            Provider::Pipedrive => {
                let mut query = vec![
                    ("limit", "500".to_string()),
                    ("sort_by", "update_time".to_string()),
                    ("sort_direction", "asc".to_string()),
                    ("updated_since", model::timefmt::iso_seconds(since)),
                ];
                if let Some(c) = cursor {
                    query.push(("cursor", c.to_string()));
                }
                self.pd_page(&self.api.get("/api/v2/deals", &query).await?)
            }
        }
    }

    /// The deals with these ids that still exist (a missing id was deleted).
    pub async fn read(&self, ids: &[String]) -> Result<Vec<RemoteDeal>, ApiError> {
        let mut found = Vec::new();
        match self.api.provider {
            Provider::HubSpot => {
                for chunk in ids.chunks(HUB_BATCH) {
                    let body = json!({
                        "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                        "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                    });
                    let answer = self.api.call(Method::POST, "/crm/v3/objects/deals/batch/read", &[], Some(&body), Retry::Always).await?;
                    found.extend(self.hub_page(&answer)?.deals);
                }
            }
            Provider::Pipedrive => {
                for chunk in ids.chunks(100) {
                    let query = vec![("ids", chunk.join(",")), ("limit", "500".to_string())];
                    found.extend(self.pd_page(&self.api.get("/api/v2/deals", &query).await?)?.deals);
                }
            }
        }
        Ok(found)
    }

    /// Creates deals, each carrying its Tandem id; answers per Tandem id the new deal or why it
    /// failed. A failure whose outcome is unknown (the connection dropped) is a Network error:
    /// the deal may exist, and recovery looks for it by its Tandem id before creating again.
    pub async fn create(&self, inputs: Vec<(String, BTreeMap<String, Option<String>>)>) -> HashMap<String, Result<RemoteDeal, ApiError>> {
        let mut out = HashMap::new();
        match self.api.provider {
            Provider::HubSpot => {
                for chunk in inputs.chunks(HUB_BATCH) {
                    let batch: Vec<Value> = chunk
                        .iter()
                        .map(|(tandem_id, values)| {
                            let mut props = self.hub_body(values);
                            props.insert(self.tandem_key.clone(), json!(tandem_id));
                            json!({"properties": props})
                        })
                        .collect();
                    let body = json!({"inputs": batch});
                    match self.api.call(Method::POST, "/crm/v3/objects/deals/batch/create", &[], Some(&body), Retry::Unprocessed).await {
                        Ok(answer) => {
                            if let Ok(page) = self.hub_page(&answer) {
                                for deal in page.deals {
                                    if let Some(t) = deal.tandem_id.clone() {
                                        out.insert(t, Ok(deal));
                                    }
                                }
                            }
                            let errors = hub_item_errors(&answer);
                            for (tandem_id, _) in chunk {
                                if !out.contains_key(tandem_id) {
                                    // Without an error for it, the outcome is unknown: left to recovery.
                                    let e = errors.first().cloned().unwrap_or_else(|| ApiError::new(Category::Provider, None, "HubSpot did not say whether it created the deal"));
                                    out.insert(tandem_id.clone(), Err(e));
                                }
                            }
                        }
                        Err(e) => {
                            for (tandem_id, _) in chunk {
                                out.insert(tandem_id.clone(), Err(e.clone()));
                            }
                        }
                    }
                }
            }
            Provider::Pipedrive => {
                let results: Vec<(String, Result<RemoteDeal, ApiError>)> = stream::iter(inputs)
                    .map(|(tandem_id, values)| async move {
                        let mut body = self.pd_body(&values);
                        let custom = body.entry("custom_fields").or_insert_with(|| json!({}));
                        custom[self.tandem_key.as_str()] = json!(tandem_id);
                        let result = self
                            .api
                            .call(Method::POST, "/api/v2/deals", &[], Some(&Value::Object(body)), Retry::Unprocessed)
                            .await
                            .and_then(|answer| answer.get("data").and_then(|d| self.pd_deal(d)).ok_or_else(|| unexpected("Pipedrive", "the new deal")));
                        (tandem_id, result)
                    })
                    .buffer_unordered(PIPEDRIVE_CONCURRENCY)
                    .collect()
                    .await;
                out.extend(results);
            }
        }
        out
    }

    /// Updates deals; answers per id the deal as it now is, or why it failed.
    pub async fn update(&self, inputs: Vec<(String, BTreeMap<String, Option<String>>)>) -> HashMap<String, Result<RemoteDeal, ApiError>> {
        let mut out = HashMap::new();
        match self.api.provider {
            Provider::HubSpot => {
                for chunk in inputs.chunks(HUB_BATCH) {
                    let batch: Vec<Value> = chunk.iter().map(|(id, values)| json!({"id": id, "properties": self.hub_body(values)})).collect();
                    let body = json!({"inputs": batch});
                    match self.api.call(Method::POST, "/crm/v3/objects/deals/batch/update", &[], Some(&body), Retry::Always).await {
                        Ok(answer) => {
                            let errors = hub_item_errors_by_id(&answer);
                            if let Ok(page) = self.hub_page(&answer) {
                                for deal in page.deals {
                                    out.insert(deal.id.clone(), Ok(deal));
                                }
                            }
                            for (id, _) in chunk {
                                if !out.contains_key(id) {
                                    let e = errors
                                        .get(id)
                                        .cloned()
                                        .unwrap_or_else(|| ApiError::new(Category::Validation, Some(400), "HubSpot did not update the deal"));
                                    out.insert(id.clone(), Err(e));
                                }
                            }
                        }
                        Err(e) => {
                            for (id, _) in chunk {
                                out.insert(id.clone(), Err(e.clone()));
                            }
                        }
                    }
                }
            }
            Provider::Pipedrive => {
                let results: Vec<(String, Result<RemoteDeal, ApiError>)> = stream::iter(inputs)
                    .map(|(id, values)| async move {
                        let body = Value::Object(self.pd_body(&values));
                        let result = self
                            .api
                            .call(Method::PATCH, &format!("/api/v2/deals/{id}"), &[], Some(&body), Retry::Always)
                            .await
                            .and_then(|answer| answer.get("data").and_then(|d| self.pd_deal(d)).ok_or_else(|| unexpected("Pipedrive", "the deal")));
                        (id, result)
                    })
                    .buffer_unordered(PIPEDRIVE_CONCURRENCY)
                    .collect()
                    .await;
                out.extend(results);
            }
        }
        out
    }

    /// Deals carrying one of these Tandem ids, changed at or after `since` (recovery after a
    /// create whose outcome is unknown).
    pub async fn find_tandem_ids(&self, tandem_ids: &[String], since: i64) -> Result<Vec<RemoteDeal>, ApiError> {
        let mut found = Vec::new();
        match self.api.provider {
            Provider::HubSpot => {
                for chunk in tandem_ids.chunks(100) {
                    let mut after: Option<String> = None;
                    loop {
                        let mut body = json!({
                            "filterGroups": [{"filters": [{"propertyName": self.tandem_key, "operator": "IN", "values": chunk}]}],
                            "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                            "limit": 200,
                        });
                        if let Some(a) = &after {
                            body["after"] = json!(a);
                        }
                        let page = self.hub_page(&self.api.call(Method::POST, "/crm/v3/objects/deals/search", &[], Some(&body), Retry::Always).await?)?;
                        found.extend(page.deals);
                        after = page.next;
                        if after.is_none() {
                            break;
                        }
                    }
                }
            }
            Provider::Pipedrive => {
                let wanted: std::collections::HashSet<&String> = tandem_ids.iter().collect();
                let mut cursor: Option<String> = None;
                loop {
                    let page = self.changed_since(since, cursor.as_deref()).await?;
                    found.extend(page.deals.into_iter().filter(|d| d.tandem_id.as_ref().is_some_and(|t| wanted.contains(t))));
                    cursor = page.next;
                    if cursor.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The per-item errors of a HubSpot 207 batch answer.
fn hub_item_errors(answer: &Value) -> Vec<ApiError> {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().map(hub_item_error).collect())
        .unwrap_or_default()
}

fn hub_item_error(e: &Value) -> ApiError {
    let category = match e.get("category").and_then(Value::as_str) {
        Some("OBJECT_NOT_FOUND") => Category::NotFound,
        Some("MISSING_SCOPES") => Category::Permission,
        Some("RATE_LIMITS") => Category::RateLimit,
        _ => Category::Validation,
    };
    let message = e.get("message").and_then(Value::as_str).unwrap_or("HubSpot refused the values");
    ApiError::new(category, Some(400), format!("HubSpot refused the values: {message}"))
}

fn hub_item_errors_by_id(answer: &Value) -> HashMap<String, ApiError> {
    let mut out = HashMap::new();
    for e in answer.get("errors").and_then(Value::as_array).into_iter().flatten() {
        let error = hub_item_error(e);
        for id in e.pointer("/context/ids").and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = text(id) {
                out.insert(id, error.clone());
            }
        }
    }
    out
}

/// Owners by email on each side, paired: (HubSpot owner id, Pipedrive user id).
pub async fn owner_pairs(hub: &Api, app: &Api) -> Result<model::translate::OwnerPairs, ApiError> {
    let owners = hub.get("/crm/v3/owners", &[("limit", "500".to_string())]).await?;
    let users = app.get("/api/v1/users", &[]).await?;
    let by_email = |list: Option<&Vec<Value>>| -> HashMap<String, String> {
        list.into_iter()
            .flatten()
            .filter_map(|u| Some((u.get("email")?.as_str()?.trim().to_ascii_lowercase(), text(u.get("id")?)?)))
            .collect()
    };
    let hub_owners = by_email(owners.get("results").and_then(Value::as_array));
    let app_users = by_email(users.get("data").and_then(Value::as_array));
    let mut pairs: Vec<(String, String)> =
        hub_owners.iter().filter_map(|(email, h)| app_users.get(email).map(|a| (h.clone(), a.clone()))).collect();
    pairs.sort();
    Ok(model::translate::OwnerPairs(pairs))
}

/// The field that carries Tandem ids on each side, created when missing: HubSpot's
/// `tandem_record_id` deal property, Pipedrive's "Tandem record ID" custom deal field.
pub async fn ensure_tandem_field(api: &Api) -> Result<String, ApiError> {
    match api.provider {
        Provider::HubSpot => {
            let props = api.get("/crm/v3/properties/deals", &[]).await?;
            let exists = props
                .get("results")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|p| p.get("name").and_then(Value::as_str) == Some(HUB_TANDEM_PROPERTY)));
            if !exists {
                let body = json!({
                    "name": HUB_TANDEM_PROPERTY, "label": TANDEM_FIELD_LABEL, "type": "string", "fieldType": "text",
                    "groupName": "dealinformation",
                    "description": "Set by Tandem on deals it syncs with another app, so a deal is never created twice. Do not edit.",
                });
                match api.call(Method::POST, "/crm/v3/properties/deals", &[], Some(&body), Retry::Always).await {
                    Ok(_) => {}
                    Err(e) if e.status == Some(409) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(HUB_TANDEM_PROPERTY.to_string())
        }
        Provider::Pipedrive => {
            let find = |fields: &Value| {
                fields.get("data").and_then(Value::as_array).and_then(|list| {
                    list.iter()
                        .find(|f| f.get("name").and_then(Value::as_str) == Some(TANDEM_FIELD_LABEL))
                        .and_then(|f| f.get("key").and_then(Value::as_str).map(str::to_string))
                })
            };
            if let Some(key) = find(&api.get("/api/v1/dealFields", &[]).await?) {
                return Ok(key);
            }
            let body = json!({"name": TANDEM_FIELD_LABEL, "field_type": "varchar", "add_visible_flag": false});
            let created = api.call(Method::POST, "/api/v1/dealFields", &[], Some(&body), Retry::Unprocessed).await?;
            created
                .pointer("/data/key")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| unexpected("Pipedrive", "the new field's key"))
        }
    }
}

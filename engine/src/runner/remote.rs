//! Records (deals, contacts, companies) as the engine reads and writes them on each side:
//! HubSpot's CRM v3 objects, search and batch endpoints, and Pipedrive's API v2 deals, persons and
//! organizations. Values come back as raw text keyed by field (a deal's place in a pipeline under
//! [`STAGE`]); the runner canonicalises and translates them. Contacts and companies also carry
//! the key they are matched on across the apps (email, domain).

use std::collections::{BTreeMap, HashMap};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};

use model::apps::ObjectKind;
use model::sync::{FieldInfo, FieldKind};
use model::translate::StageTranslate;

use super::api::{Api, ApiError, Category, Retry};
use crate::connectors::Provider;

/// The key under which a deal's `pipeline/stage` travels.
pub const STAGE: &str = "__stage";
/// HubSpot's property holding the Tandem id of records Tandem created or linked.
pub const HUB_TANDEM_PROPERTY: &str = crate::connectors::hubspot::TANDEM_PROPERTY;
/// The label of the same field on both sides.
pub const TANDEM_FIELD_LABEL: &str = crate::connectors::pipedrive::TANDEM_FIELD;
/// Records per HubSpot batch call.
pub const HUB_BATCH: usize = 100;
/// Pipedrive writes in flight at once (it has no batch endpoints for deals, persons or
/// organizations). The limiter still follows Pipedrive's burst window: this bounds only how many
/// wait on an answer at once (8 left an initial sync waiting on round trips).
const PIPEDRIVE_CONCURRENCY: usize = 32;
/// HubSpot batch calls in flight at once.
const HUB_CONCURRENCY: usize = 4;

/// A record as read from one side.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteRecord {
    pub id: String,
    pub updated_at: i64,
    pub name: String,
    pub tandem_id: Option<String>,
    /// Contacts and companies: the normalised email or domain they are matched on.
    pub match_key: Option<String>,
    /// Raw values by field key, plus [`STAGE`] for deals.
    pub values: BTreeMap<String, Option<String>>,
}

/// A record to write: its id (or Tandem id, for a create) and values.
type Input = (String, BTreeMap<String, Option<String>>);
/// What became of one write, by the same id.
type Outcome = (String, Result<RemoteRecord, ApiError>);

/// A page of records and where the next one starts.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<RemoteRecord>,
    pub next: Option<String>,
}

/// HubSpot's name of an object in paths (`/crm/v3/objects/{name}`).
pub fn hub_object(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "deals",
        ObjectKind::Contact => "contacts",
        ObjectKind::Company => "companies",
    }
}

/// Pipedrive's name of an object in API v2 paths.
pub fn pd_object(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "deals",
        ObjectKind::Contact => "persons",
        ObjectKind::Company => "organizations",
    }
}

/// HubSpot's modification time property: contacts keep theirs in `lastmodifieddate`.
fn hub_modified(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Contact => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// The fields each side matches contacts and companies on: (HubSpot property, app field).
/// Contacts match on email; companies on their domain (Pipedrive's organization website).
pub fn match_fields(object: ObjectKind) -> Option<(&'static str, &'static str)> {
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => Some(("email", "email")),
        ObjectKind::Company => Some(("domain", "website")),
    }
}

/// The match key of a value: an email in lower case; a domain without scheme, `www.`, path or
/// port, in lower case. `None` when there is nothing to match on.
pub fn match_key(object: ObjectKind, value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => value.contains('@').then(|| value.to_lowercase()),
        ObjectKind::Company => {
            let lower = value.to_lowercase();
            let rest = lower.split_once("://").map(|(_, r)| r).unwrap_or(&lower);
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
            let host = host.split(':').next().unwrap_or_default();
            let host = host.strip_prefix("www.").unwrap_or(host).trim_end_matches('.');
            (host.contains('.') && !host.contains(char::is_whitespace)).then(|| host.to_string())
        }
    }
}

/// One side's records of one object: which fields to read, and where the Tandem id lives.
#[derive(Clone)]
pub struct Records<'a> {
    pub api: &'a Api,
    pub object: ObjectKind,
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

impl Records<'_> {
    fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }

    // ---- HubSpot ----

    fn hub_path(&self, rest: &str) -> String {
        format!("/crm/v3/objects/{}{rest}", hub_object(self.object))
    }

    fn pd_path(&self, rest: &str) -> String {
        format!("/api/v2/{}{rest}", pd_object(self.object))
    }

    fn hub_properties(&self) -> String {
        let mut props: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        props.extend([hub_modified(self.object), self.tandem_key.as_str()]);
        match self.object {
            ObjectKind::Deal => props.extend(["dealname", "pipeline", "dealstage"]),
            ObjectKind::Contact => props.extend(["firstname", "lastname", "email"]),
            ObjectKind::Company => props.extend(["name", "domain"]),
        }
        props.sort_unstable();
        props.dedup();
        props.join(",")
    }

    fn hub_record(&self, v: &Value) -> Option<RemoteRecord> {
        let id = v.get("id").and_then(text)?;
        let props = v.get("properties")?.as_object()?;
        let get = |k: &str| props.get(k).and_then(text).filter(|s| !s.is_empty());
        let updated_at = v
            .get("updatedAt")
            .and_then(Value::as_str)
            .and_then(model::timefmt::parse_iso_ms)
            .or_else(|| get(hub_modified(self.object)).and_then(|t| t.parse().ok().or_else(|| model::timefmt::parse_iso_ms(&t))))
            .unwrap_or(0);
        let mut values: BTreeMap<String, Option<String>> = self.fields.iter().map(|k| (k.clone(), get(k))).collect();
        let name = match self.object {
            ObjectKind::Deal => {
                let stage = match (get("pipeline"), get("dealstage")) {
                    (Some(p), Some(s)) => Some(StageTranslate::value(&p, &s)),
                    _ => None,
                };
                values.insert(STAGE.to_string(), stage);
                get("dealname").unwrap_or_default()
            }
            ObjectKind::Contact => {
                let full = [get("firstname"), get("lastname")].into_iter().flatten().collect::<Vec<_>>().join(" ");
                if full.is_empty() {
                    get("email").unwrap_or_default()
                } else {
                    full
                }
            }
            ObjectKind::Company => get("name").or_else(|| get("domain")).unwrap_or_default(),
        };
        let match_key = match_fields(self.object).and_then(|(hub, _)| match_key(self.object, get(hub).as_deref()));
        Some(RemoteRecord { id, updated_at, name, tandem_id: get(&self.tandem_key), match_key, values })
    }

    fn hub_page(&self, body: &Value) -> Result<Page, ApiError> {
        let results = body.get("results").and_then(Value::as_array).ok_or_else(|| unexpected("HubSpot", "results"))?;
        let records = results.iter().filter_map(|v| self.hub_record(v)).collect();
        let next = body.pointer("/paging/next/after").and_then(text);
        Ok(Page { records, next })
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
                // HubSpot keeps a company's domain bare (`example.com`), not as a website URL.
                (_, Some(v)) if self.object == ObjectKind::Company && key == "domain" => {
                    match_key(self.object, Some(v)).unwrap_or_else(|| v.clone())
                }
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
            "email" => "emails",
            "phone" => "phones",
            other => other,
        }
    }

    /// A person's emails or phones (`[{value, primary, label}]`): the primary one, else the first.
    fn primary(list: &Value) -> Option<String> {
        let items = list.as_array()?;
        let chosen = items.iter().find(|i| i.get("primary").and_then(Value::as_bool) == Some(true)).or_else(|| items.first())?;
        chosen.get("value").and_then(text)
    }

    fn is_custom(key: &str) -> bool {
        key.len() == 40 && key.chars().all(|c| c.is_ascii_hexdigit())
    }

    fn pd_record(&self, v: &Value) -> Option<RemoteRecord> {
        let id = v.get("id").and_then(text)?;
        if v.get("is_deleted").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let custom = v.get("custom_fields").and_then(Value::as_object);
        let get = |key: &str| -> Option<String> {
            let raw = if Self::is_custom(key) { custom.and_then(|c| c.get(key)) } else { v.get(Self::pd_key(key)) };
            match (key, raw) {
                ("email" | "phone", Some(list @ Value::Array(_))) => Self::primary(list),
                (_, raw) => raw.and_then(text),
            }
            .filter(|s| !s.trim().is_empty())
        };
        let updated_at = v.get("update_time").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms).unwrap_or(0);
        let mut values: BTreeMap<String, Option<String>> = self.fields.iter().map(|k| (k.clone(), get(k))).collect();
        let tandem_id = get(&self.tandem_key);
        if self.object != ObjectKind::Deal {
            let match_key = match_fields(self.object).and_then(|(_, app)| match_key(self.object, get(app).as_deref()));
            return Some(RemoteRecord { id, updated_at, name: get("name").unwrap_or_default(), tandem_id, match_key, values });
        }
        let pipeline = get("pipeline_id");
        let stage = match (pipeline, v.get("status").and_then(Value::as_str), get("stage_id")) {
            (Some(p), Some("won"), _) => Some(StageTranslate::value(&p, crate::connectors::pipedrive::WON)),
            (Some(p), Some("lost"), _) => Some(StageTranslate::value(&p, crate::connectors::pipedrive::LOST)),
            (Some(p), _, Some(s)) => Some(StageTranslate::value(&p, &s)),
            _ => None,
        };
        values.insert(STAGE.to_string(), stage);
        Some(RemoteRecord { id, updated_at, name: get("title").unwrap_or_default(), tandem_id, match_key: None, values })
    }

    fn pd_page(&self, body: &Value) -> Result<Page, ApiError> {
        let data = body.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let records = data.iter().filter_map(|v| self.pd_record(v)).collect();
        let next = body.pointer("/additional_data/next_cursor").and_then(text);
        Ok(Page { records, next })
    }

    /// A Pipedrive v2 body: numbers as numbers, owners and option ids as integers, custom
    /// fields under `custom_fields`, the stage as pipeline, stage and status.
    fn pd_body(&self, values: &BTreeMap<String, Option<String>>) -> Map<String, Value> {
        let mut body = Map::new();
        let mut custom = Map::new();
        // API v2 persons take one `name`; Pipedrive splits it into first and last name itself.
        if self.object == ObjectKind::Contact && (values.contains_key("first_name") || values.contains_key("last_name")) {
            let part = |k: &str| values.get(k).cloned().flatten().filter(|v| !v.trim().is_empty());
            let name = [part("first_name"), part("last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
            if !name.is_empty() {
                body.insert("name".into(), json!(name));
            }
        }
        for (key, value) in values {
            if self.object == ObjectKind::Contact && matches!(key.as_str(), "first_name" | "last_name") {
                continue;
            }
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
                // The person or organization a deal (or person) belongs to: an id, or none.
                (_, Some(v)) if super::links::is_app_link_field(self.object, key) => {
                    v.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(v))
                }
                (_, None) if super::links::is_app_link_field(self.object, key) => Value::Null,
                // Pipedrive requires an owner and a title or name: they are never cleared.
                (FieldKind::Owner, None) => continue,
                (_, None) if key == "title" || key == "name" => continue,
                // A person's email and phone are lists; Tandem keeps the primary one.
                (_, None) if self.object == ObjectKind::Contact && matches!(key.as_str(), "email" | "phone") => json!([]),
                (_, Some(v)) if self.object == ObjectKind::Contact && matches!(key.as_str(), "email" | "phone") => {
                    json!([{"value": v, "primary": true, "label": "work"}])
                }
                (_, None) if self.object == ObjectKind::Company && key == "address" => Value::Null,
                (_, Some(v)) if self.object == ObjectKind::Company && key == "address" => json!({"value": v}),
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
                self.hub_page(&self.api.get(&self.hub_path(""), &query).await?)
            }
            Provider::Pipedrive => {
                let mut query = vec![("limit", "500".to_string()), ("sort_by", "id".to_string())];
                if let Some(c) = cursor {
                    query.push(("cursor", c.to_string()));
                }
                self.pd_page(&self.api.get(&self.pd_path(""), &query).await?)
            }
        }
    }

    /// Pages read one after another from `cursor` until at least `at_least` records are in hand
    /// or the list ends: the initial sync decides, writes and commits that many at once (HubSpot
    /// lists 100 a page), and answers the cursor after the last page read.
    pub async fn list_at_least(&self, cursor: Option<&str>, at_least: usize) -> Result<Page, ApiError> {
        let mut page = self.list(cursor).await?;
        while page.records.len() < at_least {
            let Some(next) = page.next.take() else { break };
            let more = self.list(Some(&next)).await?;
            page.records.extend(more.records);
            page.next = more.next;
        }
        Ok(page)
    }

    /// How many records the account holds (for progress; Pipedrive counts deals only).
    pub async fn count(&self) -> Result<i64, ApiError> {
        match self.api.provider {
            Provider::HubSpot => {
                let body = json!({"filterGroups": [], "properties": ["hs_object_id"], "limit": 1});
                let answer = self.api.call(Method::POST, &self.hub_path("/search"), &[], Some(&body), Retry::Always).await?;
                Ok(answer["total"].as_i64().unwrap_or(0))
            }
            Provider::Pipedrive if self.object != ObjectKind::Deal => {
                Err(ApiError::new(Category::Provider, None, "Pipedrive does not count persons or organizations"))
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
                    "filterGroups": [{"filters": [{"propertyName": hub_modified(self.object), "operator": "GTE", "value": since.to_string()}]}],
                    "sorts": [{"propertyName": hub_modified(self.object), "direction": "ASCENDING"}],
                    "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                    "limit": 200,
                });
                if let Some(after) = cursor {
                    body["after"] = json!(after);
                }
                self.hub_page(&self.api.call(Method::POST, &self.hub_path("/search"), &[], Some(&body), Retry::Always).await?)
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
                self.pd_page(&self.api.get(&self.pd_path(""), &query).await?)
            }
        }
    }

    /// The records with these ids that still exist (a missing id was deleted).
    pub async fn read(&self, ids: &[String]) -> Result<Vec<RemoteRecord>, ApiError> {
        let mut found = Vec::new();
        match self.api.provider {
            Provider::HubSpot => {
                for chunk in ids.chunks(HUB_BATCH) {
                    let body = json!({
                        "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                        "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                    });
                    let answer = self.api.call(Method::POST, &self.hub_path("/batch/read"), &[], Some(&body), Retry::Always).await?;
                    found.extend(self.hub_page(&answer)?.records);
                }
            }
            Provider::Pipedrive => {
                for chunk in ids.chunks(100) {
                    let query = vec![("ids", chunk.join(",")), ("limit", "500".to_string())];
                    found.extend(self.pd_page(&self.api.get(&self.pd_path(""), &query).await?)?.records);
                }
            }
        }
        Ok(found)
    }

    /// Creates records, each carrying its Tandem id; answers per Tandem id the new record or why
    /// it failed. A failure whose outcome is unknown (the connection dropped) is a Network error:
    /// the record may exist, and recovery looks for it by its Tandem id before creating again.
    pub async fn create(&self, inputs: Vec<(String, BTreeMap<String, Option<String>>)>) -> HashMap<String, Result<RemoteRecord, ApiError>> {
        let mut out = HashMap::new();
        match self.api.provider {
            Provider::HubSpot => {
                out.extend(self.hub_in_batches(inputs, Self::hub_create_batch).await);
            }
            Provider::Pipedrive => {
                let results: Vec<(String, Result<RemoteRecord, ApiError>)> = stream::iter(inputs)
                    .map(|(tandem_id, values)| async move {
                        let mut body = self.pd_body(&values);
                        let custom = body.entry("custom_fields").or_insert_with(|| json!({}));
                        custom[self.tandem_key.as_str()] = json!(tandem_id);
                        let result = self
                            .api
                            .call(Method::POST, &self.pd_path(""), &[], Some(&Value::Object(body)), Retry::Unprocessed)
                            .await
                            .and_then(|answer| {
                                answer.get("data").and_then(|d| self.pd_record(d)).ok_or_else(|| unexpected("Pipedrive", "the new record"))
                            });
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

    /// Updates records; answers per id the record as it now is, or why it failed.
    pub async fn update(&self, inputs: Vec<(String, BTreeMap<String, Option<String>>)>) -> HashMap<String, Result<RemoteRecord, ApiError>> {
        let mut out = HashMap::new();
        match self.api.provider {
            Provider::HubSpot => {
                out.extend(self.hub_in_batches(inputs, Self::hub_update_batch).await);
            }
            Provider::Pipedrive => {
                let results: Vec<(String, Result<RemoteRecord, ApiError>)> = stream::iter(inputs)
                    .map(|(id, values)| async move {
                        let body = Value::Object(self.pd_body(&values));
                        let result =
                            self.api.call(Method::PATCH, &self.pd_path(&format!("/{id}")), &[], Some(&body), Retry::Always).await.and_then(
                                |answer| {
                                    answer.get("data").and_then(|d| self.pd_record(d)).ok_or_else(|| unexpected("Pipedrive", "the record"))
                                },
                            );
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

    /// HubSpot batches of `inputs` sent by `send`, several in flight at once: the limiter paces
    /// them, so HubSpot's window stays full while earlier batches' answers are on their way.
    async fn hub_in_batches<'s>(
        &'s self,
        inputs: Vec<Input>,
        send: fn(&'s Self, Vec<Input>) -> BoxFuture<'s, Vec<Outcome>>,
    ) -> Vec<Outcome> {
        let chunks: Vec<Vec<Input>> = inputs.chunks(HUB_BATCH).map(<[_]>::to_vec).collect();
        let answers: Vec<Vec<Outcome>> = stream::iter(chunks).map(|chunk| send(self, chunk)).buffered(HUB_CONCURRENCY).collect().await;
        answers.into_iter().flatten().collect()
    }

    /// One HubSpot batch create: per Tandem id, the new record or why not.
    fn hub_create_batch(&self, chunk: Vec<Input>) -> BoxFuture<'_, Vec<Outcome>> {
        Box::pin(self.hub_create_batch_once(chunk))
    }

    async fn hub_create_batch_once(&self, chunk: Vec<Input>) -> Vec<Outcome> {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|(tandem_id, values)| {
                let mut props = self.hub_body(values);
                props.insert(self.tandem_key.clone(), json!(tandem_id));
                json!({"properties": props})
            })
            .collect();
        let body = json!({"inputs": batch});
        let mut out: HashMap<String, Result<RemoteRecord, ApiError>> = HashMap::new();
        match self.api.call(Method::POST, &self.hub_path("/batch/create"), &[], Some(&body), Retry::Unprocessed).await {
            Ok(answer) => {
                if let Ok(page) = self.hub_page(&answer) {
                    for record in page.records {
                        if let Some(t) = record.tandem_id.clone() {
                            out.insert(t, Ok(record));
                        }
                    }
                }
                let errors = hub_item_errors(&answer);
                for (tandem_id, _) in &chunk {
                    if !out.contains_key(tandem_id) {
                        // Without an error for it, the outcome is unknown: left to recovery.
                        let e = errors.first().cloned().unwrap_or_else(|| {
                            ApiError::new(Category::Provider, None, "HubSpot did not say whether it created the record")
                        });
                        out.insert(tandem_id.clone(), Err(e));
                    }
                }
            }
            Err(e) if e.status == Some(409) && chunk.len() > 1 => {
                // HubSpot refuses a whole batch when one contact's email is taken, naming only the
                // contact that has it: halves are sent again until the one is found alone.
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                let mut answers = self.hub_create_batch(first).await;
                answers.extend(self.hub_create_batch(second).await);
                return answers;
            }
            Err(e) => {
                for (tandem_id, _) in &chunk {
                    out.insert(tandem_id.clone(), Err(e.clone()));
                }
            }
        }
        out.into_iter().collect()
    }

    /// One HubSpot batch update: per record id, the record as it now is or why not.
    fn hub_update_batch(&self, chunk: Vec<Input>) -> BoxFuture<'_, Vec<Outcome>> {
        Box::pin(self.hub_update_batch_once(chunk))
    }

    async fn hub_update_batch_once(&self, chunk: Vec<Input>) -> Vec<Outcome> {
        let batch: Vec<Value> = chunk.iter().map(|(id, values)| json!({"id": id, "properties": self.hub_body(values)})).collect();
        let body = json!({"inputs": batch});
        let mut out: HashMap<String, Result<RemoteRecord, ApiError>> = HashMap::new();
        match self.api.call(Method::POST, &self.hub_path("/batch/update"), &[], Some(&body), Retry::Always).await {
            Ok(answer) => {
                let errors = hub_item_errors_by_id(&answer);
                if let Ok(page) = self.hub_page(&answer) {
                    for record in page.records {
                        out.insert(record.id.clone(), Ok(record));
                    }
                }
                for (id, _) in &chunk {
                    if !out.contains_key(id) {
                        let e = errors
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| ApiError::new(Category::Validation, Some(400), "HubSpot did not update the record"));
                        out.insert(id.clone(), Err(e));
                    }
                }
            }
            Err(e) => {
                for (id, _) in &chunk {
                    out.insert(id.clone(), Err(e.clone()));
                }
            }
        }
        out.into_iter().collect()
    }

    /// HubSpot's default associations of these records with records of `to` (`contacts`,
    /// `companies`): per record id, the associated ids in HubSpot's numeric order.
    pub async fn hub_associations(&self, to: &str, ids: &[String]) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let path = format!("/crm/v4/associations/{}/{to}/batch/read", hub_object(self.object));
        for chunk in ids.chunks(HUB_BATCH) {
            let body = json!({"inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
            let answer = self.api.call(Method::POST, &path, &[], Some(&body), Retry::Always).await?;
            for result in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
                let Some(from) = result.pointer("/from/id").and_then(text) else { continue };
                let mut linked: Vec<String> = result
                    .get("to")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.get("toObjectId").and_then(text))
                    .collect();
                linked.sort_by_key(|id| (id.len(), id.clone()));
                linked.dedup();
                out.insert(from, linked);
            }
        }
        Ok(out)
    }

    /// Adds HubSpot's default association from each record to a record of `to`, and removes the
    /// `remove` ones: (record id, associated id) pairs.
    pub async fn hub_associate(&self, to: &str, add: &[(String, String)], remove: &[(String, String)]) -> Result<(), ApiError> {
        let from = hub_object(self.object);
        for chunk in add.chunks(HUB_BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|(a, b)| json!({"from": {"id": a}, "to": {"id": b}})).collect();
            let path = format!("/crm/v4/associations/{from}/{to}/batch/associate/default");
            self.api.call(Method::POST, &path, &[], Some(&json!({"inputs": inputs})), Retry::Always).await?;
        }
        for chunk in remove.chunks(HUB_BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|(a, b)| json!({"from": {"id": a}, "to": [{"id": b}]})).collect();
            let path = format!("/crm/v4/associations/{from}/{to}/batch/archive");
            self.api.call(Method::POST, &path, &[], Some(&json!({"inputs": inputs})), Retry::Always).await?;
        }
        Ok(())
    }

    /// When each field of these Pipedrive deals last changed, by deal id, from each deal's
    /// changelog (newest first; whole seconds). Persons and organizations, and fields the
    /// changelog leaves out, are timed by the record's update time instead.
    pub async fn pd_field_times(&self, ids: &[String]) -> Result<HashMap<String, HashMap<String, i64>>, ApiError> {
        if self.api.provider != Provider::Pipedrive || self.object != ObjectKind::Deal {
            return Ok(HashMap::new());
        }
        type Times = HashMap<String, i64>;
        let answers: Vec<Result<(String, Times), ApiError>> = stream::iter(ids.to_vec())
            .map(|id| async move {
                let answer = self.api.get(&format!("/api/v1/deals/{id}/changelog"), &[]).await?;
                let mut times = Times::new();
                for entry in answer.get("data").and_then(Value::as_array).into_iter().flatten() {
                    let (Some(field), Some(at)) = (
                        entry.get("field_key").and_then(text),
                        entry.get("time").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms),
                    ) else {
                        continue;
                    };
                    let newest = times.entry(field).or_insert(at);
                    *newest = (*newest).max(at);
                }
                Ok((id, times))
            })
            .buffer_unordered(PIPEDRIVE_CONCURRENCY)
            .collect()
            .await;
        answers.into_iter().collect()
    }

    /// When each of `fields` last changed on these HubSpot records, by record id (HubSpot keeps
    /// every property's history: `propertiesWithHistory`, newest first). Records and fields
    /// without a history are left out.
    pub async fn field_times(&self, ids: &[String], fields: &[String]) -> Result<HashMap<String, HashMap<String, i64>>, ApiError> {
        let mut out = HashMap::new();
        if self.api.provider != Provider::HubSpot || fields.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(HUB_BATCH) {
            let body = json!({
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                "properties": ["hs_object_id"],
                "propertiesWithHistory": fields,
            });
            let answer = self.api.call(Method::POST, &self.hub_path("/batch/read"), &[], Some(&body), Retry::Always).await?;
            for result in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
                let (Some(id), Some(history)) =
                    (result.get("id").and_then(text), result.get("propertiesWithHistory").and_then(Value::as_object))
                else {
                    continue;
                };
                let times: HashMap<String, i64> = history
                    .iter()
                    .filter_map(|(field, changes)| {
                        let newest = changes
                            .as_array()?
                            .iter()
                            .filter_map(|c| c.get("timestamp").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms))
                            .max()?;
                        Some((field.clone(), newest))
                    })
                    .collect();
                out.insert(id, times);
            }
        }
        Ok(out)
    }

    /// Records carrying one of these Tandem ids, changed at or after `since` (recovery after a
    /// create whose outcome is unknown).
    pub async fn find_tandem_ids(&self, tandem_ids: &[String], since: i64) -> Result<Vec<RemoteRecord>, ApiError> {
        match self.api.provider {
            Provider::HubSpot => self.hub_search_in(&self.tandem_key, tandem_ids).await,
            Provider::Pipedrive => {
                let wanted: std::collections::HashSet<&String> = tandem_ids.iter().collect();
                let mut found = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = self.changed_since(since, cursor.as_deref()).await?;
                    found.extend(page.records.into_iter().filter(|d| d.tandem_id.as_ref().is_some_and(|t| wanted.contains(t))));
                    cursor = page.next;
                    if cursor.is_none() {
                        return Ok(found);
                    }
                }
            }
        }
    }

    /// HubSpot records whose match property (email, domain) holds one of these keys: contacts
    /// and companies that already exist, to be linked instead of created again.
    pub async fn find_by_match_keys(&self, keys: &[String]) -> Result<Vec<RemoteRecord>, ApiError> {
        match match_fields(self.object) {
            Some((property, _)) if self.api.provider == Provider::HubSpot => self.hub_search_in(property, keys).await,
            _ => Ok(Vec::new()),
        }
    }

    /// Every HubSpot record whose `property` is one of `values` (search, 100 values at a time).
    async fn hub_search_in(&self, property: &str, values: &[String]) -> Result<Vec<RemoteRecord>, ApiError> {
        let mut found = Vec::new();
        for chunk in values.chunks(100) {
            let mut after: Option<String> = None;
            loop {
                let mut body = json!({
                    "filterGroups": [{"filters": [{"propertyName": property, "operator": "IN", "values": chunk}]}],
                    "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                    "limit": 200,
                });
                if let Some(a) = &after {
                    body["after"] = json!(a);
                }
                let page =
                    self.hub_page(&self.api.call(Method::POST, &self.hub_path("/search"), &[], Some(&body), Retry::Always).await?)?;
                found.extend(page.records);
                after = page.next;
                if after.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// The HubSpot contact a create was refused for (409: "Contact already exists. Existing ID: 123"):
/// the email is taken by a contact the search did not show yet (its index trails its writes).
pub fn existing_contact(e: &ApiError) -> Option<String> {
    if e.status != Some(409) {
        return None;
    }
    let rest = &e.message[e.message.find("Existing ID: ")? + "Existing ID: ".len()..];
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

/// The per-item errors of a HubSpot 207 batch answer.
fn hub_item_errors(answer: &Value) -> Vec<ApiError> {
    answer.get("errors").and_then(Value::as_array).map(|errors| errors.iter().map(hub_item_error).collect()).unwrap_or_default()
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

/// The field that carries Tandem ids on each side for one object, created when missing:
/// HubSpot's `tandem_record_id` property, Pipedrive's "Tandem record ID" custom field.
pub async fn ensure_tandem_field(api: &Api, object: ObjectKind) -> Result<String, ApiError> {
    match api.provider {
        Provider::HubSpot => {
            let path = format!("/crm/v3/properties/{}", hub_object(object));
            let props = api.get(&path, &[]).await?;
            let exists = props
                .get("results")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|p| p.get("name").and_then(Value::as_str) == Some(HUB_TANDEM_PROPERTY)));
            if !exists {
                let (group, noun) = match object {
                    ObjectKind::Deal => ("dealinformation", "deal"),
                    ObjectKind::Contact => ("contactinformation", "contact"),
                    ObjectKind::Company => ("companyinformation", "company"),
                };
                let body = json!({
                    "name": HUB_TANDEM_PROPERTY, "label": TANDEM_FIELD_LABEL, "type": "string", "fieldType": "text",
                    "groupName": group,
                    "description": format!("Set by Tandem on each {noun} it syncs with another app, so a {noun} is never created twice. Do not edit."),
                });
                match api.call(Method::POST, &path, &[], Some(&body), Retry::Always).await {
                    Ok(_) => {}
                    Err(e) if e.status == Some(409) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(HUB_TANDEM_PROPERTY.to_string())
        }
        Provider::Pipedrive => {
            let path = match object {
                ObjectKind::Deal => "/api/v1/dealFields",
                ObjectKind::Contact => "/api/v1/personFields",
                ObjectKind::Company => "/api/v1/organizationFields",
            };
            let find = |fields: &Value| {
                fields.get("data").and_then(Value::as_array).and_then(|list| {
                    list.iter()
                        .find(|f| f.get("name").and_then(Value::as_str) == Some(TANDEM_FIELD_LABEL))
                        .and_then(|f| f.get("key").and_then(Value::as_str).map(str::to_string))
                })
            };
            if let Some(key) = find(&api.get(path, &[]).await?) {
                return Ok(key);
            }
            let body = json!({"name": TANDEM_FIELD_LABEL, "field_type": "varchar", "add_visible_flag": false});
            let created = api.call(Method::POST, path, &[], Some(&body), Retry::Unprocessed).await?;
            created
                .pointer("/data/key")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| unexpected("Pipedrive", "the new field's key"))
        }
    }
}

//! HubSpot's CRM records as the engine reads and writes them: v3 objects (deals, contacts,
//! companies), search, batch read, create and update (100 a call), property histories, and v4
//! associations. HubSpot is the hub of every sync, so its associations are here too.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};

use model::apps::ObjectKind;
use model::sync::{FieldInfo, FieldKind};
use model::translate::StageTranslate;

use crate::connectors::http::{Api, ApiError, Category, Retry};
use crate::connectors::record::{
    match_key, text, unexpected, FieldTimesById, HubRecords, Input, Outcomes, Page, RecordSpec, Records, RemoteRecord, STAGE,
};

/// HubSpot's property holding the Tandem id of records Tandem created or linked.
pub const TANDEM_PROPERTY: &str = super::TANDEM_PROPERTY;
/// Records per HubSpot batch call.
pub const BATCH: usize = 100;
/// HubSpot batch calls in flight at once.
const CONCURRENCY: usize = 4;

/// What became of one write, by the id it was sent with.
type Outcome = (String, Result<RemoteRecord, ApiError>);

/// HubSpot's name of an object in paths (`/crm/v3/objects/{name}`).
pub fn object_path(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "deals",
        ObjectKind::Contact => "contacts",
        ObjectKind::Company => "companies",
    }
}

/// HubSpot's modification time property: contacts keep theirs in `lastmodifieddate`.
fn hub_modified(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Contact => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// The property contacts and companies are matched on: a contact's email, a company's domain.
pub fn match_property(object: ObjectKind) -> Option<&'static str> {
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => Some("email"),
        ObjectKind::Company => Some("domain"),
    }
}

/// One object's records on one HubSpot connection.
pub struct HubSpotRecords<'a> {
    pub api: &'a Api,
    object: ObjectKind,
    fields: Vec<String>,
    tandem_key: String,
    schema: &'a [FieldInfo],
}

impl<'a> HubSpotRecords<'a> {
    pub fn new(api: &'a Api, spec: RecordSpec<'a>) -> HubSpotRecords<'a> {
        HubSpotRecords { api, object: spec.object, fields: spec.fields, tandem_key: spec.tandem_key, schema: spec.schema }
    }

    fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }

    fn hub_path(&self, rest: &str) -> String {
        format!("/crm/v3/objects/{}{rest}", object_path(self.object))
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
        let match_key = match_property(self.object).and_then(|p| match_key(self.object, get(p).as_deref()));
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

    /// HubSpot batches of `inputs` sent by `send`, several in flight at once: the limiter paces
    /// them, so HubSpot's window stays full while earlier batches' answers are on their way.
    async fn hub_in_batches<'s>(
        &'s self,
        inputs: Vec<Input>,
        send: fn(&'s Self, Vec<Input>) -> BoxFuture<'s, Vec<Outcome>>,
    ) -> Vec<Outcome> {
        let chunks: Vec<Vec<Input>> = inputs.chunks(BATCH).map(<[_]>::to_vec).collect();
        let answers: Vec<Vec<Outcome>> = stream::iter(chunks).map(|chunk| send(self, chunk)).buffered(CONCURRENCY).collect().await;
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
                // The spec requires `associations` in every input: none here (links are made
                // apart, by the v4 associations API).
                json!({"properties": props, "associations": []})
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
    async fn hub_associations(&self, to: &str, ids: &[String]) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let path = format!("/crm/v4/associations/{}/{to}/batch/read", object_path(self.object));
        for chunk in ids.chunks(BATCH) {
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
    async fn hub_associate(&self, to: &str, add: &[(String, String)], remove: &[(String, String)]) -> Result<(), ApiError> {
        let from = object_path(self.object);
        for chunk in add.chunks(BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|(a, b)| json!({"from": {"id": a}, "to": {"id": b}})).collect();
            let path = format!("/crm/v4/associations/{from}/{to}/batch/associate/default");
            self.api.call(Method::POST, &path, &[], Some(&json!({"inputs": inputs})), Retry::Always).await?;
        }
        for chunk in remove.chunks(BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|(a, b)| json!({"from": {"id": a}, "to": [{"id": b}]})).collect();
            let path = format!("/crm/v4/associations/{from}/{to}/batch/archive");
            self.api.call(Method::POST, &path, &[], Some(&json!({"inputs": inputs})), Retry::Always).await?;
        }
        Ok(())
    }

    /// Every HubSpot record whose `property` is one of `values` (search, 100 values at a time).
    async fn hub_search_in(&self, property: &str, values: &[String]) -> Result<Vec<RemoteRecord>, ApiError> {
        let mut found = Vec::new();
        for chunk in values.chunks(100) {
            let mut after: Option<String> = None;
            loop {
                let body = search_body(
                    json!([{"filters": [{"propertyName": property, "operator": "IN", "values": chunk}]}]),
                    self.hub_properties().split(',').collect(),
                    200,
                    json!([{"propertyName": "hs_object_id", "direction": "ASCENDING"}]),
                    after.as_deref(),
                );
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

    /// When each of `fields` last changed on these HubSpot records, by record id (HubSpot keeps
    /// every property's history: `propertiesWithHistory`, newest first). Records and fields
    /// without a history are left out.
    async fn property_times(&self, ids: &[String], fields: &[String]) -> Result<FieldTimesById, ApiError> {
        let mut out = HashMap::new();
        if fields.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(BATCH) {
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
}

/// A CRM search body with every field the spec requires (`PublicObjectSearchRequest`: `after`,
/// `filterGroups`, `limit`, `properties`, `sorts`); `after` is `"0"` for the first page.
pub(super) fn search_body(filter_groups: Value, properties: Vec<&str>, limit: usize, sorts: Value, after: Option<&str>) -> Value {
    json!({
        "filterGroups": filter_groups,
        "properties": properties,
        "limit": limit,
        "sorts": sorts,
        "after": after.unwrap_or("0"),
    })
}

impl Records for HubSpotRecords<'_> {
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
            let mut query = vec![("limit", "100".to_string()), ("properties", self.hub_properties())];
            if let Some(after) = cursor {
                query.push(("after", after.to_string()));
            }
            self.hub_page(&self.api.get(&self.hub_path(""), &query).await?)
        })
    }

    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>> {
        Box::pin(async move {
            let body = search_body(json!([]), vec!["hs_object_id"], 1, json!([]), None);
            let answer = self.api.call(Method::POST, &self.hub_path("/search"), &[], Some(&body), Retry::Always).await?;
            Ok(answer["total"].as_i64().unwrap_or(0))
        })
    }

    /// HubSpot's search index trails its writes by a few seconds (allowed 5 s, as when each
    /// read reached back 5 s before its cursor), and the clocks may differ by a few more.
    fn settles_within_ms(&self) -> i64 {
        10_000
    }

    /// A search on the modification time, oldest first, paged by `after`.
    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
            let body = search_body(
                json!([{"filters": [{"propertyName": hub_modified(self.object), "operator": "GTE", "value": since.to_string()}]}]),
                self.hub_properties().split(',').collect(),
                200,
                json!([{"propertyName": hub_modified(self.object), "direction": "ASCENDING"}]),
                cursor,
            );
            self.hub_page(&self.api.call(Method::POST, &self.hub_path("/search"), &[], Some(&body), Retry::Always).await?)
        })
    }

    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(BATCH) {
                let body = json!({
                    "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                    "properties": self.hub_properties().split(',').collect::<Vec<_>>(),
                });
                let answer = self.api.call(Method::POST, &self.hub_path("/batch/read"), &[], Some(&body), Retry::Always).await?;
                found.extend(self.hub_page(&answer)?.records);
            }
            Ok(found)
        })
    }

    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move { self.hub_in_batches(inputs, Self::hub_create_batch).await.into_iter().collect() })
    }

    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move { self.hub_in_batches(inputs, Self::hub_update_batch).await.into_iter().collect() })
    }

    fn field_times<'s>(&'s self, ids: &'s [String], fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>> {
        Box::pin(self.property_times(ids, fields))
    }

    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], _since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(self.hub_search_in(&self.tandem_key, tandem_ids))
    }

    /// Contacts and companies that already exist in HubSpot, to be linked instead of created
    /// again.
    fn find_by_match_keys<'s>(&'s self, keys: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            match match_property(self.object) {
                Some(property) => self.hub_search_in(property, keys).await,
                None => Ok(Vec::new()),
            }
        })
    }
}

impl HubRecords for HubSpotRecords<'_> {
    fn associations<'s>(&'s self, to: &'s str, ids: &'s [String]) -> BoxFuture<'s, Result<HashMap<String, Vec<String>>, ApiError>> {
        Box::pin(self.hub_associations(to, ids))
    }

    fn associate<'s>(
        &'s self,
        to: &'s str,
        add: &'s [(String, String)],
        remove: &'s [(String, String)],
    ) -> BoxFuture<'s, Result<(), ApiError>> {
        Box::pin(self.hub_associate(to, add, remove))
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

/// HubSpot's owners by email (in lower case): owner id.
pub async fn owners(api: &Api) -> Result<HashMap<String, String>, ApiError> {
    let owners = api.get("/crm/v3/owners", &[("limit", "500".to_string())]).await?;
    Ok(super::super::by_email(owners.get("results").and_then(Value::as_array)))
}

/// The property that carries Tandem ids on `object` (`tandem_record_id`), created when missing.
pub async fn ensure_tandem_property(api: &Api, object: ObjectKind) -> Result<String, ApiError> {
    let path = format!("/crm/v3/properties/{}", object_path(object));
    let props = api.get(&path, &[]).await?;
    let exists = props
        .get("results")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|p| p.get("name").and_then(Value::as_str) == Some(TANDEM_PROPERTY)));
    if !exists {
        let (group, noun) = match object {
            ObjectKind::Deal => ("dealinformation", "deal"),
            ObjectKind::Contact => ("contactinformation", "contact"),
            ObjectKind::Company => ("companyinformation", "company"),
        };
        let body = json!({
            "name": TANDEM_PROPERTY, "label": crate::connectors::TANDEM_FIELD_LABEL, "type": "string", "fieldType": "text",
            "groupName": group,
            "description": format!("Set by Tandem on each {noun} it syncs with another app, so a {noun} is never created twice. Do not edit."),
        });
        match api.call(Method::POST, &path, &[], Some(&body), Retry::Always).await {
            Ok(_) => {}
            Err(e) if e.status == Some(409) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(TANDEM_PROPERTY.to_string())
}

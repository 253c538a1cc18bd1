//! CRM v3 objects (deals, contacts, companies), by name or type id: list, get, create, update,
//! archive.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::data::{HubData, ObjectType, Record};
use super::{error, invalid_properties, require_scope, HubSpot};
use crate::json::IsoMs;
use crate::oauth::AccessToken;
use crate::query::{query_list, query_one, query_pairs};
use crate::time::{now_ms, parse_hubspot_time};

pub const MAX_PAGE: usize = 100;
const ALWAYS: [&str; 3] = ["hs_object_id", "createdate", "hs_lastmodifieddate"];

type Reply = Result<Response, Response>;

fn object_type(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unable to infer object type from: {raw}")))
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("resource not found: no object with id {id}"))
}

/// Which properties (and histories) a request asks for, worked out once per request: the named
/// ones, or the object's defaults when none are named, then the always-on ones; no repeats.
pub struct Fields<'a> {
    names: Vec<&'a str>,
    history: Vec<&'a str>,
}

fn dedup<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

impl<'a> Fields<'a> {
    pub fn new(object: ObjectType, wanted: &'a [String], with_history: &'a [String]) -> Fields<'a> {
        let names = if wanted.is_empty() {
            dedup(object.default_properties().iter().copied().chain(ALWAYS))
        } else {
            dedup(wanted.iter().map(String::as_str).chain(ALWAYS))
        };
        Fields { names, history: dedup(with_history.iter().map(String::as_str)) }
    }

    /// `record` as the API returns it, serialized straight from the store.
    pub fn view<'r>(&'r self, record: &'r Record) -> RecordView<'r> {
        RecordView { record, fields: self }
    }
}

/// A record as the API returns it: the requested properties (null when unset) and the always-on
/// ones; history when asked.
pub struct RecordView<'r> {
    record: &'r Record,
    fields: &'r Fields<'r>,
}

struct PropertiesView<'r>(&'r Record, &'r [&'r str]);
/// A record id as the text HubSpot gives it, written without an allocation.
struct IdText(u64);

impl Serialize for IdText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct HistoryView<'r>(&'r Record, &'r [&'r str]);
struct ChangesView<'r>(&'r [super::data::Change]);

impl Serialize for PropertiesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.1.len()))?;
        let record = self.0;
        for name in self.1 {
            // The always-on ones come from the record's own numbers (the same values its
            // properties hold), sparing a lookup each in every record's property map.
            match *name {
                "hs_object_id" => map.serialize_entry(name, &IdText(record.id))?,
                "createdate" => map.serialize_entry(name, &IsoMs(record.created_at))?,
                "hs_lastmodifieddate" if !record.archived => map.serialize_entry(name, &IsoMs(record.updated_at))?,
                _ => map.serialize_entry(name, &record.properties.get(*name))?,
            }
        }
        map.end()
    }
}

impl Serialize for ChangesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&ChangeOut { value: &c.value, timestamp: IsoMs(c.timestamp), source_type: &c.source_type })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeOut<'a> {
    value: &'a str,
    timestamp: IsoMs,
    source_type: &'a str,
}

impl Serialize for HistoryView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.1.len()))?;
        for name in self.1 {
            map.serialize_entry(name, &ChangesView(self.0.history.get(*name).map(Vec::as_slice).unwrap_or_default()))?;
        }
        map.end()
    }
}

impl Serialize for RecordView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &U64Text(r.id))?;
        map.serialize_entry("properties", &PropertiesView(r, &self.fields.names))?;
        map.serialize_entry("createdAt", &IsoMs(r.created_at))?;
        map.serialize_entry("updatedAt", &IsoMs(r.updated_at))?;
        map.serialize_entry("archived", &r.archived)?;
        if let Some(at) = r.archived_at {
            map.serialize_entry("archivedAt", &IsoMs(at))?;
        }
        if !self.fields.history.is_empty() {
            map.serialize_entry("propertiesWithHistory", &HistoryView(r, &self.fields.history))?;
        }
        map.end()
    }
}

/// A number written as a JSON string (record ids).
pub struct U64Text(pub u64);

impl Serialize for U64Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = itoa_buf(self.0);
        s.serialize_str(buf.as_str())
    }
}

/// Decimal digits of `n` without allocating.
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub fn as_str(&mut self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

pub fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut start = 20;
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start }
}

/// A record as the API returns it, as a JSON value (for answers that add to it).
pub fn record_json(record: &Record, object: ObjectType, wanted: &[String], with_history: &[String]) -> Value {
    let fields = Fields::new(object, wanted, with_history);
    serde_json::to_value(fields.view(record)).unwrap_or(Value::Null)
}

#[derive(Serialize)]
struct Page<'a> {
    results: Vec<RecordView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Value>,
}

/// GET /crm/v3/objects/{objectType} (`get-/crm/v3/objects/0-3_getPage`)
pub async fn list(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw_type): Path<String>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(false))?;
    let q = query_pairs(raw.as_deref());
    let limit = match query_one(&q, "limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("limit must be a whole number from 1 to {MAX_PAGE}")))
        }
    };
    let after = match query_one(&q, "after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "after must be a paging cursor returned by a previous page"))
        }
    };
    let archived = query_one(&q, "archived") == Some("true");
    let wanted = query_list(&q, "properties");
    let history = query_list(&q, "propertiesWithHistory");
    let data = hubspot.read();
    let page: Vec<&Record> = data
        .records
        .get(&object)
        .into_iter()
        .flat_map(|m| m.range((Bound::Excluded(after), Bound::Unbounded)).map(|(_, r)| r))
        .filter(|r| r.archived == archived)
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let fields = Fields::new(object, &wanted, &history);
    let paging = more.then(|| {
        let last = page[limit - 1].id.to_string();
        json!({"next": {"after": last, "link": format!("?after={last}")}})
    });
    let body = Page { results: page.iter().take(limit).map(|r| fields.view(r)).collect(), paging };
    Ok(crate::json::ok(&body))
}

/// GET /crm/v3/objects/{objectType}/{id} (`get-/crm/v3/objects/0-3/{dealId}_getById`)
pub async fn get_one(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(false))?;
    let q = query_pairs(raw.as_deref());
    let archived = query_one(&q, "archived") == Some("true");
    let data = hubspot.read();
    let record = find(&data, object, &id, query_one(&q, "idProperty")).filter(|r| r.archived == archived).ok_or_else(|| not_found(&id))?;
    let (wanted, history) = (query_list(&q, "properties"), query_list(&q, "propertiesWithHistory"));
    Ok(crate::json::ok(&Fields::new(object, &wanted, &history).view(record)))
}

fn find<'a>(data: &'a HubData, object: ObjectType, id: &str, id_property: Option<&str>) -> Option<&'a Record> {
    match id_property {
        None | Some("hs_object_id") => id.parse::<u64>().ok().and_then(|n| data.records.get(&object)?.get(&n)),
        Some(property) => match data.indexed_with(object, property, id) {
            Some(ids) => ids.first().and_then(|n| data.records.get(&object)?.get(n)),
            None => data.records(object).find(|r| !r.archived && r.properties.get(property).map(String::as_str) == Some(id)),
        },
    }
}

/// The `properties` object of a create or update body.
fn properties_of(body: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> Result<Map<String, Value>, Response> {
    let Json(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    match body {
        Value::Object(mut fields) => match fields.remove("properties") {
            Some(Value::Object(properties)) => Ok(properties),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Invalid input JSON: the request body must have an object `properties`",
            )),
        },
        _ => Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "Invalid input JSON: the request body must be an object")),
    }
}

/// POST /crm/v3/objects/{objectType} (`post-/crm/v3/objects/0-3_create`): 201 with the record.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw_type): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    if let Ok(Json(Value::Object(fields))) = &body {
        hubspot.check_required("SimplePublicObjectInputForCreate", fields, &["associations", "properties"])?;
    }
    let input = &properties_of(body)?;
    let mut data = hubspot.write();
    let properties = validate(&data, object, None, input)?;
    unique_email(&data, object, &properties, None)?;
    let id = data.insert_record(object, properties, now_ms(), "INTEGRATION");
    let record = &data.records[&object][&id];
    Ok((StatusCode::CREATED, Json(record_json(record, object, &input.keys().cloned().collect::<Vec<_>>(), &[]))).into_response())
}

/// HubSpot keeps one contact per email: a create, or an update setting an email, that another
/// contact already has is refused with 409 naming that contact.
fn unique_email(
    data: &super::data::HubData,
    object: ObjectType,
    properties: &std::collections::BTreeMap<String, String>,
    except: Option<u64>,
) -> Result<(), Response> {
    if object != ObjectType::Contacts {
        return Ok(());
    }
    let emails: std::collections::HashSet<String> =
        properties.get("email").map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty()).into_iter().collect();
    match data.contact_with_email(&emails, except) {
        Some(existing) => Err(super::contact_exists(existing)),
        None => Ok(()),
    }
}

/// PATCH /crm/v3/objects/{objectType}/{id} (`patch-/crm/v3/objects/0-3/{dealId}_update`)
pub async fn update(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(raw): RawQuery,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    let input = &properties_of(body)?;
    let q = query_pairs(raw.as_deref());
    let mut data = hubspot.write();
    let record_id =
        find(&data, object, &id, query_one(&q, "idProperty")).filter(|r| !r.archived).map(|r| r.id).ok_or_else(|| not_found(&id))?;
    let existing = data.records[&object][&record_id].clone();
    let properties = validate(&data, object, Some(&existing), input)?;
    unique_email(&data, object, &properties, Some(record_id))?;
    if !data.update_record(object, record_id, properties, now_ms(), "INTEGRATION") {
        return Err(not_found(&id));
    }
    Ok(Json(record_json(&data.records[&object][&record_id], object, &input.keys().cloned().collect::<Vec<_>>(), &[])).into_response())
}

/// DELETE /crm/v3/objects/{objectType}/{id} (`delete-/crm/v3/objects/0-3/{dealId}_archive`): 204.
pub async fn archive(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw_type, id)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
) -> Reply {
    let object = object_type(&raw_type)?;
    require_scope(&token, &object.scope(true))?;
    let mut data = hubspot.write();
    // Archiving an unknown or archived record answers 204 too, as HubSpot does.
    if let Ok(n) = id.parse::<u64>() {
        data.archive_record(object, n, now_ms());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn problem(name: &str, error: &str, message: String) -> Value {
    json!({"isValid": false, "message": message, "error": error, "name": name, "localizedErrorMessage": message})
}

/// Checks submitted values against the property definitions (and, for deals, that the stage
/// belongs to the pipeline); returns them as strings.
pub fn validate(
    data: &HubData,
    object: ObjectType,
    existing: Option<&Record>,
    input: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, Response> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, raw) in input {
        let value = match raw {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            _ => {
                problems.push(problem(name, "INVALID_PROPERTY_VALUE", format!("{raw} is not a valid value for property {name}")));
                continue;
            }
        };
        let Some(def) = data.property(object, name) else {
            problems.push(problem(name, "PROPERTY_DOESNT_EXIST", format!("Property \"{name}\" does not exist")));
            continue;
        };
        if def.read_only {
            problems.push(problem(name, "READ_ONLY_VALUE", format!("\"{name}\" is a read only property; its value cannot be set.")));
            continue;
        }
        if !value.is_empty() {
            let ok = match def.kind.as_str() {
                "number" => value.parse::<f64>().is_ok(),
                "date" | "datetime" => parse_hubspot_time(&value).is_some(),
                "bool" => matches!(value.as_str(), "true" | "false"),
                "enumeration" if !def.options.is_empty() => value.split(';').all(|v| def.options.iter().any(|o| o.value == v)),
                _ => true,
            };
            if !ok {
                let code = match def.kind.as_str() {
                    "number" => "INVALID_DECIMAL",
                    "date" | "datetime" => "INVALID_DATE",
                    "enumeration" => "INVALID_OPTION",
                    _ => "INVALID_PROPERTY_VALUE",
                };
                problems.push(problem(name, code, format!("{value} was not a valid value for property {name}")));
                continue;
            }
        }
        out.insert(name.clone(), value);
    }
    if object == ObjectType::Deals {
        let current = |name: &str| existing.and_then(|r| r.properties.get(name).cloned());
        let pipeline_id = out.get("pipeline").cloned().or_else(|| current("pipeline")).unwrap_or_else(|| "default".into());
        match data.pipeline(&pipeline_id) {
            None => problems.push(problem(
                "pipeline",
                "INVALID_OPTION",
                format!("{pipeline_id} was not one of the allowed options: the portal has no such deal pipeline"),
            )),
            Some(pipeline) => {
                let stage = out.get("dealstage").cloned().or_else(|| current("dealstage"));
                if let Some(stage) = stage.filter(|s| !s.is_empty()) {
                    if !pipeline.stages.iter().any(|s| s.id == stage && !s.archived) {
                        problems.push(problem(
                            "dealstage",
                            "INVALID_OPTION",
                            format!("{stage} is not a valid stage of pipeline {pipeline_id}"),
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(invalid_properties(problems))
    }
}

//! Pipedrive's records as the engine reads and writes them: API v2 deals, persons and
//! organizations (cursor pages, `updated_since`, one write a call, several in flight), and the
//! deal changelog that times a field changed on both sides. Pipedrive's quirks live here: won
//! and lost are a deal's status rather than stages, a person takes one `name` for first and last
//! name, emails and phones are lists, custom fields sit under `custom_fields`.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};

use model::apps::ObjectKind;
use model::sync::{FieldInfo, FieldKind};
use model::translate::StageTranslate;

use super::{LOST, TANDEM_FIELD, WON};
use crate::connectors::http::{Api, ApiError, Category, Retry};
use crate::connectors::record::{
    match_key, text, unexpected, FieldTimesById, Input, Outcomes, Page, RecordSpec, Records, RemoteRecord, STAGE,
};

/// Writes in flight at once (Pipedrive has no batch endpoints for deals, persons or
/// organizations). The limiter still follows Pipedrive's burst window: this bounds only how many
/// wait on an answer at once (8 left an initial sync waiting on round trips).
const CONCURRENCY: usize = 32;

/// Pipedrive's name of an object in API v2 paths.
pub fn object_path(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "deals",
        ObjectKind::Contact => "persons",
        ObjectKind::Company => "organizations",
    }
}

/// The field contacts and companies are matched on: a person's email, an organization's website.
pub fn match_field(object: ObjectKind) -> Option<&'static str> {
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => Some("email"),
        ObjectKind::Company => Some("website"),
    }
}

/// One object's records on one Pipedrive connection.
pub struct PipedriveRecords<'a> {
    pub api: &'a Api,
    object: ObjectKind,
    fields: Vec<String>,
    tandem_key: String,
    schema: &'a [FieldInfo],
}

impl<'a> PipedriveRecords<'a> {
    pub fn new(api: &'a Api, spec: RecordSpec<'a>) -> PipedriveRecords<'a> {
        PipedriveRecords { api, object: spec.object, fields: spec.fields, tandem_key: spec.tandem_key, schema: spec.schema }
    }

    fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }

    fn pd_path(&self, rest: &str) -> String {
        format!("/api/v2/{}{rest}", object_path(self.object))
    }

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
            let match_key = match_field(self.object).and_then(|f| match_key(self.object, get(f).as_deref()));
            return Some(RemoteRecord { id, updated_at, name: get("name").unwrap_or_default(), tandem_id, match_key, values });
        }
        let pipeline = get("pipeline_id");
        let stage = match (pipeline, v.get("status").and_then(Value::as_str), get("stage_id")) {
            (Some(p), Some("won"), _) => Some(StageTranslate::value(&p, WON)),
            (Some(p), Some("lost"), _) => Some(StageTranslate::value(&p, LOST)),
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
                        WON => {
                            body.insert("status".into(), json!("won"));
                        }
                        LOST => {
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
                (_, Some(v)) if super::link_fields(self.object).iter().any(|l| l.field == key) => {
                    v.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(v))
                }
                (_, None) if super::link_fields(self.object).iter().any(|l| l.field == key) => Value::Null,
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

    /// When each field of these deals last changed, by deal id, from each deal's changelog
    /// (newest first; whole seconds). Persons and organizations, and fields the changelog leaves
    /// out, are timed by the record's update time instead.
    async fn changelog_times(&self, ids: &[String]) -> Result<FieldTimesById, ApiError> {
        if self.object != ObjectKind::Deal {
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
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        answers.into_iter().collect()
    }
}

impl Records for PipedriveRecords<'_> {
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
            let mut query = vec![("limit", "500".to_string()), ("sort_by", "id".to_string())];
            if let Some(c) = cursor {
                query.push(("cursor", c.to_string()));
            }
            self.pd_page(&self.api.get(&self.pd_path(""), &query).await?)
        })
    }

    /// Deals only (`/api/v1/deals/summary`): Pipedrive does not count persons or organizations.
    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>> {
        Box::pin(async move {
            if self.object != ObjectKind::Deal {
                return Err(ApiError::new(Category::Provider, None, "Pipedrive does not count persons or organizations"));
            }
            let answer = self.api.get("/api/v1/deals/summary", &[]).await?;
            Ok(answer["data"]["total_count"].as_i64().unwrap_or(0))
        })
    }

    /// Sorted by update time from `updated_since`, paged by cursor.
    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
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
        })
    }

    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(100) {
                let query = vec![("ids", chunk.join(",")), ("limit", "500".to_string())];
                found.extend(self.pd_page(&self.api.get(&self.pd_path(""), &query).await?)?.records);
            }
            Ok(found)
        })
    }

    /// One create a call, [`CONCURRENCY`] in flight; the Tandem id in its custom field.
    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move {
            stream::iter(inputs)
                .map(|(tandem_id, values)| async move {
                    let mut body = self.pd_body(&values);
                    let custom = body.entry("custom_fields").or_insert_with(|| json!({}));
                    custom[self.tandem_key.as_str()] = json!(tandem_id);
                    let result =
                        self.api.call(Method::POST, &self.pd_path(""), &[], Some(&Value::Object(body)), Retry::Unprocessed).await.and_then(
                            |answer| {
                                answer.get("data").and_then(|d| self.pd_record(d)).ok_or_else(|| unexpected("Pipedrive", "the new record"))
                            },
                        );
                    (tandem_id, result)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        })
    }

    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move {
            stream::iter(inputs)
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
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        })
    }

    fn field_times<'s>(&'s self, ids: &'s [String], _fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>> {
        Box::pin(self.changelog_times(ids))
    }

    /// Pipedrive cannot search a custom field: the records changed since `since` are read and
    /// those carrying one of the ids kept.
    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
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
        })
    }
}

/// Pipedrive's users by email (in lower case): user id.
pub async fn users(api: &Api) -> Result<HashMap<String, String>, ApiError> {
    let users = api.get("/api/v1/users", &[]).await?;
    Ok(crate::connectors::by_email(users.get("data").and_then(Value::as_array)))
}

/// The custom field that carries Tandem ids on `object` ("Tandem record ID"), created when
/// missing (API v2 `getDealFields`/`addDealField` and the same for persons and organizations);
/// answers its 40-character key.
pub async fn ensure_tandem_field(api: &Api, object: ObjectKind) -> Result<String, ApiError> {
    let existing = super::fields(api, object).await?;
    if let Some(field) = existing.into_iter().find(|f| f.field_name == TANDEM_FIELD) {
        return Ok(field.field_code);
    }
    let body = json!({"field_name": TANDEM_FIELD, "field_type": "varchar", "ui_visibility": {"add_visible_flag": false}});
    let created = api.call(Method::POST, super::fields_path(object), &[], Some(&body), Retry::Unprocessed).await?;
    created
        .pointer("/data/field_code")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| unexpected("Pipedrive", "the new field's code"))
}

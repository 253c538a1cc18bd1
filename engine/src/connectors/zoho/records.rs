//! Zoho CRM's records as the engine reads and writes them: Get Records (`fields`, 200 a page,
//! `page_token` (or `page`, up to the 2,000th), `If-Modified-Since` for what changed), reads by
//! `ids`, writes of up to 100 records a call answered record by record, searches by `criteria`.
//! Zoho's quirks live here: lookups and owners are `{ "id": … }` objects, a deal's place is its
//! pipeline's and stage's names, a contact needs a last name, times are whole seconds.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};

use model::apps::ObjectKind;
use model::sync::{FieldInfo, FieldKind};
use model::translate::StageTranslate;

use super::{link_fields, module, TANDEM_FIELD};
use crate::connectors::http::{Api, ApiError, Category, Retry};
use crate::connectors::record::{
    match_key, text, unexpected, FieldTimesById, Input, Outcomes, Page, RecordSpec, Records, RemoteRecord, STAGE,
};

const NAME: &str = "Zoho CRM";
/// Records a page (Zoho's most).
const PER_PAGE: usize = 200;
/// Records a write or a read by ids (Zoho's most).
const PER_CALL: usize = 100;
/// Conditions a search's criteria may hold (Zoho's most).
const PER_SEARCH: usize = 10;
/// Write calls (each followed by the read that brings its records back) in flight at once: one
/// call after another left an initial sync waiting on round trips; Zoho's concurrency limit is
/// 5 calls in flight on its Free edition (10 to 25 on the paid ones), and a call over it is
/// refused and waited for.
const WRITES_IN_FLIGHT: usize = 4;

/// The key of a pipeline in the stage grid: its name, with `/` (which separates pipeline and
/// stage there) and `%` escaped. Zoho's records name their pipeline and stage, not ids.
pub fn pipeline_key(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// The pipeline's name of a [`pipeline_key`].
pub fn pipeline_name(key: &str) -> String {
    key.replace("%2F", "/").replace("%25", "%")
}

/// A value in a search's `criteria`, its parentheses, commas and backslashes escaped.
pub fn criteria_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '(' | ')' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `(a)or(b)…` of `field` equal to each value.
fn any_equal(field: &str, values: &[String]) -> String {
    values.iter().map(|v| format!("({field}:equals:{})", criteria_value(v))).collect::<Vec<_>>().join("or")
}

/// A time as Zoho takes it (`2026-12-06T10:15:30+00:00`).
pub fn zoho_time(unix_ms: i64) -> String {
    let text = model::timefmt::iso_seconds(unix_ms);
    match text.strip_suffix('Z') {
        Some(head) => format!("{head}+00:00"),
        None => text,
    }
}

/// The field a record is named by, the one a new record must hold.
fn name_field(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "Deal_Name",
        ObjectKind::Contact => "Last_Name",
        ObjectKind::Company => "Account_Name",
    }
}

/// The field contacts and accounts are matched on: a contact's email, an account's website.
pub fn match_field(object: ObjectKind) -> Option<&'static str> {
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => Some("Email"),
        ObjectKind::Company => Some("Website"),
    }
}

/// One module's records on one Zoho CRM connection.
pub struct ZohoRecords<'a> {
    pub api: &'a Api,
    object: ObjectKind,
    fields: Vec<String>,
    tandem_key: String,
    schema: &'a [FieldInfo],
}

impl<'a> ZohoRecords<'a> {
    pub fn new(api: &'a Api, spec: RecordSpec<'a>) -> ZohoRecords<'a> {
        ZohoRecords { api, object: spec.object, fields: spec.fields, tandem_key: spec.tandem_key, schema: spec.schema }
    }

    fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }

    fn path(&self, rest: &str) -> String {
        format!("/crm/v8/{}{rest}", module(self.object))
    }

    fn is_link(&self, key: &str) -> bool {
        link_fields(self.object).iter().any(|l| l.field == key)
    }

    /// The synced fields (the stage as `Pipeline` and `Stage`).
    fn synced_fields(&self) -> impl Iterator<Item = &String> {
        self.fields.iter().filter(|k| k.as_str() != STAGE && !k.starts_with('@'))
    }

    /// What a read asks for (`fields`, required by Zoho): the synced fields, the Tandem id, the
    /// name, the match field, the deal's place and the modification time.
    fn fields_param(&self) -> String {
        let mut wanted: Vec<&str> = self.synced_fields().map(String::as_str).collect();
        wanted.extend([self.tandem_key.as_str(), "Modified_Time", name_field(self.object)]);
        wanted.extend(match_field(self.object));
        match self.object {
            ObjectKind::Deal => wanted.extend(["Pipeline", "Stage"]),
            ObjectKind::Contact => wanted.extend(["First_Name", "Full_Name"]),
            ObjectKind::Company => {}
        }
        let mut seen = HashSet::new();
        wanted.retain(|f| !f.is_empty() && seen.insert(*f));
        wanted.join(",")
    }

    fn zoho_record(&self, v: &Value) -> Option<RemoteRecord> {
        let id = v.get("id").and_then(text)?;
        let get = |key: &str| -> Option<String> {
            match v.get(key)? {
                // Lookups and owners: `{"name", "id"}`.
                Value::Object(o) if o.contains_key("id") => o.get("id").and_then(text),
                other => text(other),
            }
            .filter(|s| !s.trim().is_empty())
        };
        let updated_at = v.get("Modified_Time").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms).unwrap_or(0);
        let mut values: BTreeMap<String, Option<String>> = self.synced_fields().map(|k| (k.clone(), get(k))).collect();
        let tandem_id = get(&self.tandem_key);
        let name = match self.object {
            ObjectKind::Contact => get("Full_Name")
                .unwrap_or_else(|| [get("First_Name"), get("Last_Name")].into_iter().flatten().collect::<Vec<_>>().join(" ")),
            object => get(name_field(object)).unwrap_or_default(),
        };
        if self.object == ObjectKind::Deal {
            let stage = match (get("Pipeline"), get("Stage")) {
                (Some(pipeline), Some(stage)) => Some(StageTranslate::value(&pipeline_key(&pipeline), &stage)),
                _ => None,
            };
            values.insert(STAGE.to_string(), stage);
        }
        let match_key = match_field(self.object).and_then(|f| match_key(self.object, get(f).as_deref()));
        Some(RemoteRecord { id, updated_at, name, tandem_id, match_key, values })
    }

    /// A page of a list (`Null` when Zoho answered 204 or 304: nothing) and where the next one
    /// starts.
    fn zoho_page(&self, body: &Value) -> Page {
        let records = self.records_of(body);
        let info = body.get("info");
        let more = info.and_then(|i| i.get("more_records")).and_then(Value::as_bool) == Some(true);
        // The page token where Zoho gives one: it continues after the last record read, so a
        // record changed meanwhile (moved to the end of a list by modification time) shifts no
        // other one past the page boundary; `page` reaches only the first 2,000 records.
        let next = more.then(|| {
            let token = info.and_then(|i| i.get("next_page_token")).and_then(Value::as_str).filter(|t| !t.is_empty());
            let page = info.and_then(|i| i.get("page")).and_then(Value::as_u64).unwrap_or(1);
            match token {
                Some(token) => format!("token:{token}"),
                None => format!("page:{}", page + 1),
            }
        });
        Page { records, next }
    }

    fn records_of(&self, body: &Value) -> Vec<RemoteRecord> {
        body.get("data").and_then(Value::as_array).into_iter().flatten().filter_map(|v| self.zoho_record(v)).collect()
    }

    /// The query of a list call from `cursor`.
    fn list_query(&self, sort_by: &str, cursor: Option<&str>) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("fields", self.fields_param()),
            ("per_page", PER_PAGE.to_string()),
            ("sort_by", sort_by.to_string()),
            ("sort_order", "asc".to_string()),
        ];
        match cursor.and_then(|c| c.split_once(':')) {
            Some(("token", token)) => query.push(("page_token", token.to_string())),
            Some(("page", page)) => query.push(("page", page.to_string())),
            _ => {}
        }
        query
    }

    /// A Zoho body of `values`: numbers as numbers, lookups and owners as `{ "id": … }`, the
    /// stage as pipeline and stage names. A record's name (and a deal's stage, an owner) is
    /// never cleared: Zoho requires them.
    fn zoho_body(&self, values: &BTreeMap<String, Option<String>>, creating: bool) -> Map<String, Value> {
        let mut body = Map::new();
        let mut values = values.clone();
        // Zoho requires a contact's last name: a lone first name is the last name.
        if self.object == ObjectKind::Contact && creating {
            let blank = |v: Option<&Option<String>>| v.cloned().flatten().is_none_or(|s| s.trim().is_empty());
            if blank(values.get("Last_Name")) && !blank(values.get("First_Name")) {
                let first = values.remove("First_Name").flatten();
                values.insert("Last_Name".into(), first);
            }
        }
        for (key, value) in &values {
            if key.starts_with('@') {
                continue;
            }
            if key == STAGE {
                if let Some((pipeline, stage)) = value.as_deref().and_then(StageTranslate::split) {
                    body.insert("Pipeline".into(), json!(pipeline_name(pipeline)));
                    body.insert("Stage".into(), json!(stage));
                }
                continue;
            }
            let json_value = match (self.kind(key), value.as_deref().map(str::trim).filter(|v| !v.is_empty())) {
                (_, Some(id)) if self.is_link(key) => json!({ "id": id }),
                (_, None) if self.is_link(key) => Value::Null,
                (FieldKind::Owner, Some(id)) => json!({ "id": id }),
                (FieldKind::Owner, None) => continue,
                (_, None) if key == name_field(self.object) => continue,
                (_, None) => Value::Null,
                (FieldKind::Number, Some(v)) => match (v.parse::<i64>(), v.parse::<f64>()) {
                    (Ok(n), _) => json!(n),
                    (_, Ok(n)) => json!(n),
                    _ => json!(v),
                },
                (FieldKind::Bool, Some(v)) => match v {
                    "true" => json!(true),
                    "false" => json!(false),
                    other => json!(other),
                },
                (_, Some(v)) => json!(v),
            };
            body.insert(key.clone(), json_value);
        }
        body
    }

    /// Writes `bodies` (by their keys: Tandem ids for creates, record ids for updates) up to
    /// 100 a call, [`WRITES_IN_FLIGHT`] calls at once, then reads the written records back: each
    /// key's record, or why not.
    async fn write(&self, method: Method, bodies: Vec<(String, Map<String, Value>)>, retry: Retry) -> Outcomes {
        let mut chunks: Vec<Vec<(String, Map<String, Value>)>> = Vec::new();
        let mut bodies = bodies.into_iter().peekable();
        while bodies.peek().is_some() {
            chunks.push(bodies.by_ref().take(PER_CALL).collect());
        }
        let answers: Vec<Vec<(String, Result<RemoteRecord, ApiError>)>> = stream::iter(chunks)
            .map(|chunk| self.write_call(method.clone(), chunk, retry))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        answers.into_iter().flatten().collect()
    }

    /// One write call of up to 100 records and the read that brings them back.
    async fn write_call(
        &self,
        method: Method,
        chunk: Vec<(String, Map<String, Value>)>,
        retry: Retry,
    ) -> Vec<(String, Result<RemoteRecord, ApiError>)> {
        let (keys, data): (Vec<String>, Vec<Value>) = chunk.into_iter().map(|(key, body)| (key, Value::Object(body))).unzip();
        let every = |e: ApiError| keys.iter().map(|key| (key.clone(), Err(e.clone()))).collect();
        let items = match self.api.call_batch(method, &self.path(""), &[], &json!({ "data": data }), retry).await {
            Ok(answer) => match answer.get("data").and_then(Value::as_array) {
                Some(items) => items.clone(),
                // A refusal of the whole call (`{code, message}`): every record's.
                None => return every(whole_call_error(&answer)),
            },
            Err(e) => return every(e),
        };
        let mut outcomes = Vec::with_capacity(keys.len());
        let mut written: Vec<(String, String)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match items.get(i) {
                Some(item) if item.get("status").and_then(Value::as_str) == Some("success") => {
                    match item.pointer("/details/id").and_then(text) {
                        Some(id) => written.push((key.clone(), id)),
                        None => outcomes.push((key.clone(), Err(unexpected(NAME, "the written record's id")))),
                    }
                }
                Some(item) => outcomes.push((key.clone(), Err(record_error(item)))),
                None => outcomes.push((key.clone(), Err(unexpected(NAME, "an answer for every record")))),
            }
        }
        let ids: Vec<String> = written.iter().map(|(_, id)| id.clone()).collect();
        match self.read(&ids).await {
            Ok(read) => {
                let by_id: HashMap<&str, &RemoteRecord> = read.iter().map(|r| (r.id.as_str(), r)).collect();
                for (key, id) in written {
                    let result = by_id.get(id.as_str()).map(|r| (*r).clone()).ok_or_else(|| unexpected(NAME, "the written record"));
                    outcomes.push((key, result));
                }
            }
            // Written, but not read back: for a create the outcome is unknown (recovery finds it
            // by its Tandem id); an update is sent again.
            Err(e) => {
                let e = ApiError { category: Category::Network, ..e };
                outcomes.extend(written.into_iter().map(|(key, _)| (key, Err(e.clone()))));
            }
        }
        outcomes
    }

    /// Records whose `field` equals one of `values`, 10 conditions a search, 200 a page.
    async fn search_equal(&self, field: &str, values: &[String]) -> Result<Vec<RemoteRecord>, ApiError> {
        let mut found = Vec::new();
        for chunk in values.chunks(PER_SEARCH) {
            let criteria = any_equal(field, chunk);
            found.extend(self.search(("criteria", criteria)).await?);
        }
        Ok(found)
    }

    /// Every page of one search.
    async fn search(&self, filter: (&'static str, String)) -> Result<Vec<RemoteRecord>, ApiError> {
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let query =
                vec![filter.clone(), ("fields", self.fields_param()), ("per_page", PER_PAGE.to_string()), ("page", page.to_string())];
            let answer = self.api.get(&self.path("/search"), &query).await?;
            found.extend(self.records_of(&answer));
            let more = answer.pointer("/info/more_records").and_then(Value::as_bool) == Some(true);
            if !more || page * PER_PAGE >= 2_000 {
                return Ok(found);
            }
            page += 1;
        }
    }
}

/// A refusal of a whole write call, in Zoho's words.
fn whole_call_error(answer: &Value) -> ApiError {
    let message = answer.get("message").and_then(Value::as_str).unwrap_or("the write was refused").to_string();
    ApiError {
        provider_message: Some(message.clone()),
        ..ApiError::new(Category::Validation, Some(400), format!("{NAME} refused the values: {message}"))
    }
}

/// One record's refusal (`{code, details, message, status: "error"}`), as the Health tab groups
/// it: an id Zoho does not know is a record deleted; a permission is a permission; the rest are
/// the values.
fn record_error(item: &Value) -> ApiError {
    let code = item.get("code").and_then(Value::as_str).unwrap_or_default();
    let message = item.get("message").and_then(Value::as_str).unwrap_or("refused").to_string();
    let details = item.get("details");
    let field = details.and_then(|d| d.get("api_name")).and_then(Value::as_str);
    let category = match code {
        "INVALID_DATA" if field.is_none() && details.and_then(|d| d.get("id")).is_some() => Category::NotFound,
        "NO_PERMISSION" | "PERMISSION_DENIED" | "OAUTH_SCOPE_MISMATCH" => Category::Permission,
        _ => Category::Validation,
    };
    let text = match (category, field) {
        (Category::NotFound, _) => format!("{NAME} has no such record: {message}"),
        (_, Some(field)) => format!("{NAME} refused the values: {message} ({field})"),
        (_, None) => format!("{NAME} refused the values: {message}"),
    };
    ApiError { provider_message: Some(format!("{code}: {message}")), ..ApiError::new(category, Some(400), text) }
}

impl Records for ZohoRecords<'_> {
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
            let answer = self.api.get(&self.path(""), &self.list_query("id", cursor)).await?;
            Ok(self.zoho_page(&answer))
        })
    }

    /// `GET /crm/v8/{module}/actions/count`.
    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>> {
        Box::pin(async move {
            let answer = self.api.get(&self.path("/actions/count"), &[]).await?;
            answer.get("count").and_then(Value::as_i64).ok_or_else(|| unexpected(NAME, "a count"))
        })
    }

    /// Oldest change first, by `If-Modified-Since`. Zoho's times are whole seconds and it
    /// answers what changed after the time given: a second earlier reads what changed at
    /// `since` too.
    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(async move {
            let from = since.div_euclid(1000) * 1000 - 1000;
            let headers = [("If-Modified-Since", zoho_time(from))];
            let answer = self.api.get_with_headers(&self.path(""), &self.list_query("Modified_Time", cursor), &headers).await?;
            Ok(self.zoho_page(&answer))
        })
    }

    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(PER_CALL) {
                let query = vec![("ids", chunk.join(",")), ("fields", self.fields_param()), ("per_page", PER_PAGE.to_string())];
                found.extend(self.records_of(&self.api.get(&self.path(""), &query).await?));
            }
            Ok(found)
        })
    }

    /// Up to 100 creates a call, each carrying its Tandem id.
    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move {
            let bodies = inputs
                .into_iter()
                .map(|(tandem_id, values)| {
                    let mut body = self.zoho_body(&values, true);
                    body.insert(self.tandem_key.clone(), json!(tandem_id));
                    (tandem_id, body)
                })
                .collect();
            self.write(Method::POST, bodies, Retry::Unprocessed).await
        })
    }

    /// Up to 100 updates a call (`PUT /crm/v8/{module}`), each naming its `id`.
    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(async move {
            let bodies = inputs
                .into_iter()
                .map(|(id, values)| {
                    let mut body = self.zoho_body(&values, false);
                    body.insert("id".into(), json!(id));
                    (id, body)
                })
                .collect();
            self.write(Method::PUT, bodies, Retry::Always).await
        })
    }

    /// Zoho's API keeps no per-field history Tandem reads: records are timed by their
    /// modification time.
    fn field_times<'s>(&'s self, _ids: &'s [String], _fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>> {
        Box::pin(async { Ok(HashMap::new()) })
    }

    /// A search by the Tandem id field; Zoho's search index may trail a create by moments, so
    /// the ids it does not show are looked for among the records changed since `since`.
    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            let wanted: HashSet<&String> = tandem_ids.iter().collect();
            let mut found: Vec<RemoteRecord> = self
                .search_equal(&self.tandem_key, tandem_ids)
                .await?
                .into_iter()
                .filter(|r| r.tandem_id.as_ref().is_some_and(|t| wanted.contains(t)))
                .collect();
            let seen: HashSet<String> = found.iter().filter_map(|r| r.tandem_id.clone()).collect();
            if wanted.iter().all(|t| seen.contains(*t)) {
                return Ok(found);
            }
            let mut cursor: Option<String> = None;
            loop {
                let page = self.changed_since(since, cursor.as_deref()).await?;
                for r in page.records {
                    let missing = r.tandem_id.as_ref().is_some_and(|t| wanted.contains(t) && !seen.contains(t));
                    if missing && !found.iter().any(|f| f.id == r.id) {
                        found.push(r);
                    }
                }
                cursor = page.next;
                if cursor.is_none() {
                    return Ok(found);
                }
            }
        })
    }

    /// Contacts by email (a criteria search); accounts by website, searched by the domain as a
    /// word and kept where the website's domain is the key.
    fn find_by_match_keys<'s>(&'s self, keys: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(async move {
            let wanted: HashSet<&String> = keys.iter().collect();
            let found = match self.object {
                ObjectKind::Deal => Vec::new(),
                ObjectKind::Contact => self.search_equal("Email", keys).await?,
                ObjectKind::Company => {
                    let mut found = Vec::new();
                    for key in keys {
                        found.extend(self.search(("word", key.clone())).await?);
                    }
                    found
                }
            };
            let mut ids = HashSet::new();
            Ok(found.into_iter().filter(|r| r.match_key.as_ref().is_some_and(|k| wanted.contains(k)) && ids.insert(r.id.clone())).collect())
        })
    }
}

/// Zoho's active users by email (in lower case): user id (`GET /crm/v8/users?type=ActiveUsers`).
pub async fn users(api: &Api) -> Result<HashMap<String, String>, ApiError> {
    let mut all = HashMap::new();
    let mut page = 1;
    loop {
        let query = [("type", "ActiveUsers".to_string()), ("per_page", PER_PAGE.to_string()), ("page", page.to_string())];
        let answer = api.get("/crm/v8/users", &query).await?;
        all.extend(crate::connectors::by_email(answer.get("users").and_then(Value::as_array)));
        if answer.pointer("/info/more_records").and_then(Value::as_bool) != Some(true) {
            return Ok(all);
        }
        page += 1;
    }
}

/// The API name of the module's "Tandem record ID" field, if it has one.
async fn tandem_field(api: &Api, object: ObjectKind) -> Result<Option<String>, ApiError> {
    let answer = api.get("/crm/v8/settings/fields", &[("module", module(object).to_string())]).await?;
    Ok(answer.get("fields").and_then(Value::as_array).and_then(|fields| {
        fields
            .iter()
            .find(|f| f.get("field_label").and_then(Value::as_str) == Some(TANDEM_FIELD))
            .and_then(|f| f.get("api_name").and_then(Value::as_str).map(str::to_string))
    }))
}

/// The custom field that carries Tandem ids on `object` ("Tandem record ID", a text field),
/// created when missing (`POST /crm/v8/settings/fields?module=`); answers its API name.
pub async fn ensure_tandem_field(api: &Api, object: ObjectKind) -> Result<String, ApiError> {
    if let Some(key) = tandem_field(api, object).await? {
        return Ok(key);
    }
    let body = json!({"fields": [{"field_label": TANDEM_FIELD, "data_type": "text", "length": 64}]});
    let query = [("module", module(object).to_string())];
    let answer = api.call_batch(Method::POST, "/crm/v8/settings/fields", &query, &body, Retry::Unprocessed).await?;
    let item = answer.pointer("/fields/0").cloned().unwrap_or(Value::Null);
    // Created now, or by another Tandem instance meanwhile (`DUPLICATE_DATA`): read its name.
    let created = item.get("status").and_then(Value::as_str) == Some("success");
    if !created && item.get("code").and_then(Value::as_str) != Some("DUPLICATE_DATA") {
        return Err(record_error(&item));
    }
    tandem_field(api, object).await?.ok_or_else(|| unexpected(NAME, "the new field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_keys_survive_slashes_and_criteria_escape_what_zoho_reads() {
        for name in ["Standard", "EU/UK", "100% renewals", "a%2Fb"] {
            assert!(!pipeline_key(name).contains('/'), "{name}");
            assert_eq!(pipeline_name(&pipeline_key(name)), name);
        }
        let value = StageTranslate::value(&pipeline_key("EU/UK"), "Proposal/Price Quote");
        assert_eq!(StageTranslate::split(&value), Some(("EU%2FUK", "Proposal/Price Quote")));
        assert_eq!(criteria_value(r"Acme (UK), Ltd\"), r"Acme \(UK\)\, Ltd\\");
        assert_eq!(
            any_equal("Email", &["a@x.example".into(), "b@x.example".into()]),
            "(Email:equals:a@x.example)or(Email:equals:b@x.example)"
        );
        assert_eq!(zoho_time(1_764_400_000_000), "2025-11-29T07:06:40+00:00");
    }
}

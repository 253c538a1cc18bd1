//! Record writes and reads by id: Create Records (`POST /crm/v8/{module}`), Update Records
//! (`PUT`, also `PUT /{module}/{id}`), Delete Records (`DELETE ?ids=`, also `DELETE /{module}/{id}`),
//! Upsert Records (`POST /{module}/upsert` with `duplicate_check_fields`) and Get Record. At most
//! 100 records a call, each answered on its own (`SUCCESS`, `INVALID_DATA`, `MANDATORY_NOT_FOUND`,
//! `DUPLICATE_DATA`, …).

use std::sync::{Arc, RwLockWriteGuard};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};

use super::answers::{batch_answer, Answer, Upserted, Users, Written};
use super::data::{Deleted, Module, Record, ZohoData};
use super::listing::{field_list, modified_since, not_modified};
use super::values::{apply, convert, invalid_id, record_error, By};
use super::watch::Operation;
use super::{body_invalid, error, member_invalid, member_missing, module_for, param_missing, path_id_invalid, JsonBody, Zoho};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};
use crate::table::Row;

pub const MAX_RECORDS: usize = 100;

/// The user a token acts as.
pub fn acting_user(data: &ZohoData, token: &AccessToken) -> u64 {
    data.users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(&token.grant.user_email))
        .or(data.users.first())
        .map(|u| u.id)
        .unwrap_or_default()
}

/// The records of a write body, and the rest of the body.
struct WriteBody {
    records: Vec<Map<String, Value>>,
    rest: Map<String, Value>,
}

/// A body's `data` array of objects (1 to 100), and the rest of the body.
fn body_records(body: JsonBody) -> Result<WriteBody, Response> {
    let Some(Value::Object(mut body)) = body.0 else { return Err(body_invalid()) };
    let items = match body.remove("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None => return Err(member_missing("data")),
        Some(_) => return Err(member_invalid("data", "jsonarray")),
    };
    if items.len() > MAX_RECORDS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "Record count exceeded",
            json!({"limit": MAX_RECORDS, "api_name": "data", "json_path": "$.data"}),
        ));
    }
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(o) => records.push(o),
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "invalid data",
                    json!({"api_name": "data", "json_path": format!("$.data[{i}]"), "expected_data_type": "jsonobject"}),
                ))
            }
        }
    }
    Ok(WriteBody { records, rest: body })
}

/// The answer of a batch: the users it names rendered while the data is locked, its bytes
/// written once the lock is given back.
fn reply(data: RwLockWriteGuard<'_, ZohoData>, answers: Vec<Answer>, all_ok: StatusCode) -> Response {
    let users = Users::of(&data, &answers);
    drop(data);
    batch_answer(&answers, &users, all_ok)
}

/// Writes a new record and records its creation for notifications.
fn store(data: &mut ZohoData, module: Module, record: Record) {
    let (id, at) = (record.id, record.modified_time);
    data.table_mut(module).insert(id, record);
    data.emit(module, Operation::Insert, id, at);
}

/// Creates a record from `input`; the record's answer.
pub fn create_record(data: &mut ZohoData, module: Module, input: &Map<String, Value>, index: usize, user: u64, at: i64) -> Answer {
    let id = data.next_id();
    let by = By { user, at };
    match apply(data, module, None, id, input, index, &by) {
        Ok(changes) => {
            let record = changes.into_record(id, &by);
            let written = Written::of(&record);
            store(data, module, record);
            Answer::Written { record: written, message: "record added", upsert: None }
        }
        Err(e) => {
            data.next_id -= 1;
            Answer::Failed(e)
        }
    }
}

/// Updates record `id` from `input`, in place; the record's answer.
pub fn update_record(data: &mut ZohoData, module: Module, id: u64, input: &Map<String, Value>, index: usize, user: u64, at: i64) -> Answer {
    let by = By { user, at };
    let gone = || Answer::Failed(invalid_id(json!({"id": id.to_string()})));
    let Some(existing) = data.table(module).get(&id) else { return gone() };
    let changes = match apply(data, module, Some(existing), id, input, index, &by) {
        Ok(changes) => changes,
        Err(e) => return Answer::Failed(e),
    };
    let Some(mut record) = data.table_mut(module).get_mut(&id) else { return gone() };
    changes.commit(&mut record, &by);
    let written = Written::of(&record);
    drop(record);
    data.emit(module, Operation::Update, id, at);
    Answer::Written { record: written, message: "record updated", upsert: None }
}

/// Moves record `id` to the recycle bin.
pub fn delete_record(data: &mut ZohoData, module: Module, id: u64, user: u64, at: i64) -> Answer {
    let removed = data.table_mut(module).remove(&id);
    let Some(record) = removed else {
        return Answer::Failed(invalid_id(json!({"id": id.to_string()})));
    };
    let display_name = data.display_name(module, &record);
    data.deleted.entry(module).or_default().insert(id, Deleted { record, display_name, deleted_by: user, deleted_time: at });
    data.emit(module, Operation::Delete, id, at);
    Answer::Deleted(id)
}

/// POST /crm/v8/{module} (Create Records)
pub async fn create(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Response {
    let module = match module_for(&raw, &token, "CREATE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let records = match body_records(body) {
        Ok(b) => b.records,
        Err(r) => return r,
    };
    let at = zoho.now_seconds();
    let user = |data: &ZohoData| acting_user(data, &token);
    let ready = ReadyBatch::make(&zoho.read(), module, &records, user, at);
    let mut data = zoho.write();
    let answers = ready.store(&mut data, module, &records, user, at);
    reply(data, answers, StatusCode::CREATED)
}

/// The records of a create, checked and built while other calls may read; stored under the
/// write lock, each as if it had been made there: one a concurrent change could have made wrong
/// (the settings changed, a record a lookup names deleted, its email taken since) or that failed
/// is made again under the lock, so the answers are the ones one call at a time would give.
struct ReadyBatch {
    settings_version: u64,
    user: u64,
    records: Vec<Option<Ready>>,
}

impl ReadyBatch {
    fn make(data: &ZohoData, module: Module, inputs: &[Map<String, Value>], user: impl Fn(&ZohoData) -> u64, at: i64) -> ReadyBatch {
        let user = user(data);
        let records = inputs.iter().enumerate().map(|(i, input)| Ready::make(data, module, input, i, user, at)).collect();
        ReadyBatch { settings_version: data.settings_version, user, records }
    }

    /// Stores the records; their answers.
    fn store(
        self,
        data: &mut ZohoData,
        module: Module,
        inputs: &[Map<String, Value>],
        user: impl Fn(&ZohoData) -> u64,
        at: i64,
    ) -> Vec<Answer> {
        let current = data.settings_version == self.settings_version;
        let user = if current { self.user } else { user(data) };
        inputs
            .iter()
            .zip(self.records)
            .enumerate()
            .map(|(i, (input, ready))| match ready.filter(|r| current && r.still_holds(data, module)) {
                Some(ready) => ready.store(data, module),
                None => create_record(data, module, input, i, user, at),
            })
            .collect()
    }
}

/// A record to create, checked and built from its input without the write lock; what only
/// another write could make wrong since is checked again when it is stored.
struct Ready {
    record: Record,
    /// The records its lookups name.
    lookups: Vec<(Module, u64)>,
    /// Its unique email's lookup key.
    email: Option<String>,
}

impl Ready {
    /// The record `input` makes, or `None` when it fails (made again under the write lock for
    /// its answer).
    fn make(data: &ZohoData, module: Module, input: &Map<String, Value>, index: usize, user: u64, at: i64) -> Option<Ready> {
        let by = By { user, at };
        let record = apply(data, module, None, 0, input, index, &by).ok()?.into_record(0, &by);
        let lookups = record
            .fields
            .iter()
            .filter_map(|(name, value)| {
                let field = data.field(module, name).filter(|f| f.data_type == "lookup")?;
                Some((field.lookup.unwrap_or(module), value.as_str()?.parse().ok()?))
            })
            .collect();
        let unique = data.field(module, "Email").is_some_and(|f| f.unique);
        let email = record.lookup_keys().into_iter().next().filter(|_| unique);
        Some(Ready { record, lookups, email })
    }

    /// Whether the checks made without the write lock still hold: the records its lookups name
    /// are there, and no record holds its email.
    fn still_holds(&self, data: &ZohoData, module: Module) -> bool {
        self.lookups.iter().all(|(target, id)| data.table(*target).contains_key(id))
            && self.email.as_ref().is_none_or(|key| data.table(module).with_key(key).is_empty())
    }

    /// Stores the record under a new id; its answer.
    fn store(mut self, data: &mut ZohoData, module: Module) -> Answer {
        self.record.id = data.next_id();
        let written = Written::of(&self.record);
        store(data, module, self.record);
        Answer::Written { record: written, message: "record added", upsert: None }
    }
}

fn record_id(input: &Map<String, Value>) -> Option<u64> {
    match input.get("id")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// PUT /crm/v8/{module} (Update Records): each record names its `id`.
pub async fn update(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Response {
    let module = match module_for(&raw, &token, "UPDATE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let records = match body_records(body) {
        Ok(b) => b.records,
        Err(r) => return r,
    };
    let at = zoho.now_seconds();
    let mut data = zoho.write();
    let user = acting_user(&data, &token);
    let answers = records
        .iter()
        .enumerate()
        .map(|(i, input)| match record_id(input) {
            None if input.contains_key("id") => {
                Answer::Failed(invalid_id(json!({"api_name": "id", "json_path": format!("$.data[{i}].id")})))
            }
            None => Answer::Failed(record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "id", "json_path": format!("$.data[{i}].id")}),
            )),
            Some(id) => update_record(&mut data, module, id, input, i, user, at),
        })
        .collect();
    reply(data, answers, StatusCode::OK)
}

fn path_id(raw: &str) -> Result<u64, Response> {
    raw.parse::<u64>().map_err(|_| path_id_invalid())
}

/// PUT /crm/v8/{module}/{id} (Update Record)
pub async fn update_one(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path((raw, raw_id)): Path<(String, String)>,
    body: JsonBody,
) -> Response {
    let module = match module_for(&raw, &token, "UPDATE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let id = match path_id(&raw_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let records = match body_records(body) {
        Ok(b) => b.records,
        Err(r) => return r,
    };
    // The path names one record: a body of several is refused whole, never half applied.
    if records.len() > 1 {
        return error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "Record count exceeded",
            json!({"limit": 1, "api_name": "data", "json_path": "$.data"}),
        );
    }
    let at = zoho.now_seconds();
    let mut data = zoho.write();
    let user = acting_user(&data, &token);
    let answer = update_record(&mut data, module, id, &records[0], 0, user, at);
    reply(data, vec![answer], StatusCode::OK)
}

/// DELETE /crm/v8/{module}?ids=… (Delete Records): to the recycle bin.
pub async fn delete(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let module = match module_for(&raw, &token, "DELETE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let ids: Vec<&str> =
        query_one(&pairs, "ids").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    if ids.is_empty() {
        return param_missing("ids");
    }
    if ids.len() > MAX_RECORDS {
        return error(StatusCode::BAD_REQUEST, "LIMIT_EXCEEDED", "Record count exceeded", json!({"limit": MAX_RECORDS, "param": "ids"}));
    }
    let at = zoho.now_seconds();
    let mut data = zoho.write();
    let user = acting_user(&data, &token);
    let answers = ids
        .iter()
        .map(|raw| match raw.parse::<u64>() {
            Ok(id) => delete_record(&mut data, module, id, user, at),
            Err(_) => Answer::Failed(invalid_id(json!({"id": raw}))),
        })
        .collect();
    reply(data, answers, StatusCode::OK)
}

/// DELETE /crm/v8/{module}/{id} (Delete Record)
pub async fn delete_one(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path((raw, raw_id)): Path<(String, String)>,
) -> Response {
    let module = match module_for(&raw, &token, "DELETE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let id = match path_id(&raw_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = zoho.write();
    let user = acting_user(&data, &token);
    let answer = delete_record(&mut data, module, id, user, zoho.now_seconds());
    reply(data, vec![answer], StatusCode::OK)
}

/// GET /crm/v8/{module}/{id} (Get Record): `{"data": [record]}`, 204 when there is none, 304
/// when it has not changed since `If-Modified-Since`.
pub async fn get_one(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path((raw, raw_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let module = match module_for(&raw, &token, "READ") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let id = match path_id(&raw_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let fields = field_list(&pairs);
    let since = match modified_since(&headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let data = zoho.read();
    match data.table(module).get(&id) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(record) if since.is_some_and(|s| record.modified_time <= s) => not_modified(),
        Some(record) => super::render::data_answer(&data, module, fields.as_deref(), std::iter::once(record), None),
    }
}

/// The live record whose field `api_name` holds the value `input` gives it, both read as the
/// record would store it (a lookup `{"id"}` as its id, `5` as `5.0` for a currency; names of
/// any case); emails and text compared without case.
fn duplicate_of(data: &ZohoData, module: Module, api_name: &str, input: &Map<String, Value>, index: usize) -> Option<u64> {
    let field = data.field(module, api_name)?;
    let value = input.iter().find(|(k, _)| k.eq_ignore_ascii_case(&field.api_name)).map(|(_, v)| v)?;
    let wanted = convert(data, module, field, value, index).ok()?;
    if field.data_type == "email" && module == Module::Contacts {
        let email = wanted.as_str()?.trim().to_lowercase();
        return data.table(module).with_key(&format!("email:{email}")).first().copied();
    }
    let same = |stored: &Value| match (stored, &wanted) {
        (Value::String(a), Value::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    };
    data.table(module).values().find(|r| r.fields.get(field.api_name.as_str()).is_some_and(same)).map(|r| r.id)
}

/// POST /crm/v8/{module}/upsert (Upsert Records): updates the record that `duplicate_check_fields`
/// (in order; the module's system-defined unique fields by default) find, creates one otherwise.
pub async fn upsert(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Response {
    let module = match module_for(&raw, &token, "CREATE") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let WriteBody { records, rest } = match body_records(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let named: Vec<String> = match rest.get("duplicate_check_fields") {
        None => module.default_duplicate_check().iter().map(|s| s.to_string()).collect(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => return member_invalid("duplicate_check_fields", "jsonarray"),
    };
    let at = zoho.now_seconds();
    let mut data = zoho.write();
    // The fields by their API names, whatever case the body gave them in.
    let mut checks = Vec::with_capacity(named.len());
    for (i, name) in named.iter().enumerate() {
        match data.field(module, name) {
            Some(field) => checks.push(field.api_name.clone()),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "invalid data",
                    json!({"api_name": name, "json_path": format!("$.duplicate_check_fields[{i}]")}),
                )
            }
        }
    }
    let user = acting_user(&data, &token);
    let mut answers = Vec::with_capacity(records.len());
    for (i, input) in records.iter().enumerate() {
        let found = checks.iter().find_map(|f| duplicate_of(&data, module, f, input, i).map(|id| (f.clone(), id)));
        let mut answer = match &found {
            Some((_, id)) => update_record(&mut data, module, *id, input, i, user, at),
            None => create_record(&mut data, module, input, i, user, at),
        };
        if let Answer::Written { upsert, .. } = &mut answer {
            let action = if found.is_some() { "update" } else { "insert" };
            *upsert = Some(Upserted { action, duplicate_field: found.map(|(f, _)| f) });
        }
        answers.push(answer);
    }
    reply(data, answers, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TimeOrder;

    fn input(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_update_changes_only_what_it_names_and_nothing_when_refused() {
        let mut data = crate::zoho::seed::fresh(5_725_767);
        crate::zoho::seed::generate(&mut data, 20, 5, 2, 7, 1_765_000_000_000);
        let user = data.users[0].id;
        let deal = data.deals.values().find(|d| d.text("Stage") != Some("Closed Won")).cloned().unwrap();
        let at = 1_765_100_000_000;
        // Refused (a stage the pipeline lacks): nothing changes, not even the modification time.
        let refused = update_record(&mut data, Module::Deals, deal.id, &input(json!({"Amount": 5, "Stage": "No such stage"})), 0, user, at);
        assert!(!refused.is_success());
        assert_eq!(data.deals[&deal.id], deal);
        // Accepted: the values named change (names of any case), a null clears one, the rest stay.
        let body = input(json!({"amount": 5, "Deal_Name": null, "Stage": "Closed Won"}));
        assert!(!update_record(&mut data, Module::Deals, deal.id, &body, 0, user, at).is_success(), "Deal_Name is mandatory");
        let body = input(json!({"amount": 5, "Description": null, "Stage": "Closed Won"}));
        let answer = update_record(&mut data, Module::Deals, deal.id, &body, 0, user, at);
        assert_eq!(answer.id(), Some(deal.id));
        let after = &data.deals[&deal.id];
        assert_eq!(after.fields["Amount"], json!(5.0));
        assert!(!after.fields.contains_key("Description"));
        assert_eq!(after.fields["Probability"], json!(100), "the new stage's probability");
        assert_eq!(after.fields["Deal_Name"], deal.fields["Deal_Name"]);
        assert_eq!((after.modified_time, after.modified_by, after.created_time, after.owner), (at, user, deal.created_time, deal.owner));
        assert!(data.deals.by(TimeOrder::Update).contains(&(at, deal.id)));
        assert!(!data.deals.by(TimeOrder::Update).contains(&(deal.modified_time, deal.id)));
        // A contact's full name follows its parts.
        let contact = data.contacts.values().next().map(|c| c.id).unwrap();
        let body = input(json!({"First_Name": "Ada", "Last_Name": "Lovelace"}));
        assert!(update_record(&mut data, Module::Contacts, contact, &body, 0, user, at).is_success());
        assert_eq!(data.contacts[&contact].fields["Full_Name"], json!("Ada Lovelace"));
    }

    /// Creates made ready, then a write by another call, then the creates stored: the same
    /// answers and records as if they had been made one at a time after that write.
    fn ready_then(data: &ZohoData, module: Module, inputs: &[Value], between: impl Fn(&mut ZohoData)) -> Vec<Answer> {
        let (mut data, at) = (data.clone(), 1_765_100_000_000);
        let inputs: Vec<_> = inputs.iter().cloned().map(input).collect();
        let user = |d: &ZohoData| d.users[0].id;
        let ready = ReadyBatch::make(&data, module, &inputs, user, at);
        between(&mut data);
        let mut expected = data.clone();
        let answers = ready.store(&mut data, module, &inputs, user, at);
        let who = user(&expected);
        let one_by_one: Vec<_> = inputs.iter().enumerate().map(|(i, r)| create_record(&mut expected, module, r, i, who, at)).collect();
        assert_eq!(answers, one_by_one);
        assert_eq!(**data.table(module), **expected.table(module));
        assert_eq!(
            data.table(module).with_key("email:late@northwind.example"),
            expected.table(module).with_key("email:late@northwind.example")
        );
        answers
    }

    #[test]
    fn a_create_made_ready_before_another_write_answers_as_if_made_after_it() {
        let mut data = crate::zoho::seed::fresh(5_725_767);
        crate::zoho::seed::generate(&mut data, 5, 5, 3, 7, 1_765_000_000_000);
        let account = *data.accounts.keys().next().unwrap();
        let codes = |answers: Vec<Answer>| answers.iter().map(Answer::is_success).collect::<Vec<_>>();
        let deals = [
            json!({"Deal_Name": "A", "Stage": "Qualification"}),
            json!({"Deal_Name": "B", "Stage": "Negotiation/Review", "Account_Name": {"id": account.to_string()}}),
            json!({"Deal_Name": "C", "Stage": "Needs Analysis"}),
        ];
        // Nothing in between: all made ready, stored under consecutive ids.
        let answers = ready_then(&data, Module::Deals, &deals, |_| {});
        assert_eq!(codes(answers.clone()), [true, true, true]);
        assert_eq!(answers[2].id().unwrap() - answers[0].id().unwrap(), 2);
        // The account a deal names deleted: that deal fails, the next takes the id it would have.
        let user = data.users[0].id;
        let gone = ready_then(&data, Module::Deals, &deals, |d| {
            delete_record(d, Module::Accounts, account, user, 1_765_050_000_000);
        });
        assert_eq!(codes(gone.clone()), [true, false, true]);
        assert_eq!(gone[2].id().unwrap() - gone[0].id().unwrap(), 1);
        // A stage taken out of the pipeline (settings changed): the deal in it fails.
        let renamed = ready_then(&data, Module::Deals, &deals, |d| {
            d.pipelines.iter_mut().for_each(|p| p.stages.retain(|s| s.name != "Qualification"));
            d.settings_changed();
        });
        assert_eq!(codes(renamed), [false, true, true]);
        // An email another call took, and one the batch itself takes twice.
        let contacts = [
            json!({"Last_Name": "Late", "Email": "late@northwind.example"}),
            json!({"Last_Name": "Early", "Email": "early@northwind.example"}),
            json!({"Last_Name": "Twice", "Email": "Early@northwind.example"}),
        ];
        let taken = ready_then(&data, Module::Contacts, &contacts, |d| {
            let body = input(json!({"Last_Name": "Other", "Email": "LATE@northwind.example"}));
            assert!(create_record(d, Module::Contacts, &body, 0, user, 1_765_050_000_000).is_success());
        });
        assert_eq!(codes(taken), [false, true, false]);
    }
}

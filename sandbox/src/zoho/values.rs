//! A record's values as the API takes and gives them: the check of a record in a write body
//! against the module's fields (mandatory, data types, lookups, pipeline and stage, unique email)
//! with Zoho's per-record errors, and a record written out with its system fields and lookups.

use serde_json::{json, Map, Value};

use super::data::{field_name, FieldDef, FieldName, Fields, Module, Record, ZohoData};
use super::zoho_time;

/// A per-record error in Zoho's shape (`{code, details, message, status: "error"}`).
pub fn record_error(code: &str, message: &str, details: Value) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

fn path(index: usize, field: &str) -> String {
    format!("$.data[{index}].{field}")
}

/// A record's `INVALID_DATA` with its details.
pub fn invalid_data(details: Value) -> Value {
    record_error("INVALID_DATA", "invalid data", details)
}

/// A record's `INVALID_DATA` for an id that names no record.
pub fn invalid_id(details: Value) -> Value {
    record_error("INVALID_DATA", "the id given seems to be invalid", details)
}

fn invalid(index: usize, field: &str, data_type: &str) -> Value {
    invalid_data(json!({"api_name": field, "json_path": path(index, field), "expected_data_type": data_type}))
}

/// `{"name", "id"}` of a user, or `null`.
pub fn user_ref(data: &ZohoData, id: u64, with_email: bool) -> Value {
    match data.user(id) {
        Some(u) if with_email => json!({"name": u.full_name(), "id": u.id.to_string(), "email": u.email}),
        Some(u) => json!({"name": u.full_name(), "id": u.id.to_string()}),
        None => Value::Null,
    }
}

/// The id a body gives for a lookup or owner: `{"id": "…"}`, `"…"` or a number.
fn given_id(value: &Value) -> Option<u64> {
    let id = match value {
        Value::Object(o) => o.get("id")?,
        other => other,
    };
    match id {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && crate::time::parse_rfc3339(&format!("{s}T00:00:00Z")).is_some()
}

/// Who writes, and when (Unix ms, whole seconds).
pub struct By {
    pub user: u64,
    pub at: i64,
}

/// What a write makes of a record: its owner, and the values it sets (`Some`) or clears
/// (`None`) by field API name, in order (a later one wins). Applied to the stored record in
/// place, so that an update copies nothing of what it leaves alone.
pub struct Changes {
    pub owner: u64,
    pub fields: Vec<(FieldName, Option<Value>)>,
}

impl Changes {
    /// A new record `id` holding the changes, written by `by`.
    pub fn into_record(self, id: u64, by: &By) -> Record {
        let mut record = Record {
            id,
            owner: self.owner,
            created_by: by.user,
            modified_by: by.user,
            created_time: by.at,
            modified_time: by.at,
            fields: Fields::with_capacity(self.fields.len()),
        };
        self.commit(&mut record, by);
        record
    }

    /// Applies the changes to `record`, modified by `by`.
    pub fn commit(self, record: &mut Record, by: &By) {
        record.owner = self.owner;
        for (name, value) in self.fields {
            match value {
                Some(value) => {
                    record.fields.insert(name, value);
                }
                None => {
                    record.fields.remove(&name);
                }
            }
        }
        record.fields.shrink_to_fit();
        record.modified_by = by.user;
        record.modified_time = by.at;
    }
}

/// A record as a write would leave it: the changes read over the record they start from.
struct Draft<'a> {
    base: Option<&'a Record>,
    changes: Changes,
}

impl Draft<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        match self.changes.fields.iter().rev().find(|(k, _)| &**k == name) {
            Some((_, value)) => value.as_ref(),
            None => self.base.and_then(|r| r.fields.get(name)),
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    fn set(&mut self, name: &str, value: Value) {
        if self.get(name) != Some(&value) {
            self.changes.fields.push((field_name(name), Some(value)));
        }
    }

    fn clear(&mut self, name: &str) {
        if self.get(name).is_some() {
            self.changes.fields.push((field_name(name), None));
        }
    }
}

/// What `input` (element `index` of a write body's `data`) makes of `existing` (or of a new
/// record `id`): every value checked against its field. Unknown and read-only fields are left
/// out, as Zoho leaves them. `Err` is the record's error.
pub fn apply(
    data: &ZohoData,
    module: Module,
    existing: Option<&Record>,
    id: u64,
    input: &Map<String, Value>,
    index: usize,
    by: &By,
) -> Result<Changes, Value> {
    let owner = existing.map(|r| r.owner).unwrap_or(by.user);
    let mut record = Draft { base: existing, changes: Changes { owner, fields: Vec::new() } };
    for (key, value) in input {
        if key == "id" || key.starts_with('$') {
            continue;
        }
        if key == "Owner" {
            match given_id(value).filter(|id| data.user(*id).is_some_and(|u| u.active)) {
                Some(owner) => record.changes.owner = owner,
                None => return Err(invalid(index, "Owner", "ownerlookup")),
            }
            continue;
        }
        let Some(field) = data.field(module, key) else { continue };
        if field.read_only {
            continue;
        }
        if value.is_null() || value.as_str().is_some_and(|s| s.is_empty()) && field.data_type != "text" {
            record.clear(&field.api_name);
            continue;
        }
        let stored = convert(data, module, field, value, index)?;
        record.changes.fields.push((field_name(&field.api_name), Some(stored)));
    }
    if module == Module::Deals {
        deal_stage(data, &mut record, existing, input, index)?;
    }
    if module == Module::Contacts {
        // As `ZohoData::display_name` puts a contact's name together.
        let full = format!("{} {}", record.text("First_Name").unwrap_or_default(), record.text("Last_Name").unwrap_or_default());
        record.set("Full_Name", Value::String(full.trim().to_string()));
    }
    check_mandatory(data, module, &record, index)?;
    check_unique_email(data, module, &record, id, index)?;
    Ok(record.changes)
}

/// A value of a write body as `field` stores it (a lookup as the id of the record it names, a
/// number of a currency as a float, a datetime in Zoho's format); `Err` is the record's error.
pub fn convert(data: &ZohoData, module: Module, field: &FieldDef, value: &Value, index: usize) -> Result<Value, Value> {
    let name = field.api_name.as_str();
    let wrong = |data_type: &str| invalid(index, name, data_type);
    Ok(match field.data_type.as_str() {
        "text" | "textarea" | "phone" | "website" | "email" | "picklist" => {
            let Some(s) = value.as_str() else { return Err(wrong(&field.data_type)) };
            if s.chars().count() > field.length as usize {
                return Err(invalid_data(json!({
                    "api_name": name, "json_path": path(index, name), "maximum_length": field.length.to_string(),
                })));
            }
            if field.data_type == "email" && !s.is_empty() && !valid_email(s) {
                return Err(wrong("email"));
            }
            Value::String(s.to_string())
        }
        "currency" | "double" => json!(value.as_f64().ok_or_else(|| wrong(&field.data_type))?),
        "integer" | "bigint" => json!(value.as_i64().ok_or_else(|| wrong(&field.data_type))?),
        "boolean" => json!(value.as_bool().ok_or_else(|| wrong("boolean"))?),
        "date" => json!(value.as_str().filter(|s| is_date(s)).ok_or_else(|| wrong("date"))?),
        "datetime" => json!(zoho_time(value.as_str().and_then(crate::time::parse_rfc3339).ok_or_else(|| wrong("datetime"))?)),
        "lookup" => {
            let target = field.lookup.unwrap_or(module);
            match given_id(value).filter(|id| data.table(target).contains_key(id)) {
                Some(id) => Value::String(id.to_string()),
                None => return Err(invalid_id(json!({"api_name": name, "json_path": path(index, name)}))),
            }
        }
        other => return Err(wrong(other)),
    })
}

/// Every system-mandatory field of the module holds a value.
fn check_mandatory(data: &ZohoData, module: Module, record: &Draft, index: usize) -> Result<(), Value> {
    match data
        .fields_of(module)
        .iter()
        .filter(|f| f.system_mandatory)
        .find(|f| !record.get(&f.api_name).is_some_and(|v| !v.is_null() && v.as_str() != Some("")))
    {
        Some(field) => Err(record_error(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": field.api_name, "json_path": path(index, &field.api_name)}),
        )),
        None => Ok(()),
    }
}

/// No record but `id` holds a unique email (compared without case).
fn check_unique_email(data: &ZohoData, module: Module, record: &Draft, id: u64, index: usize) -> Result<(), Value> {
    let Some(email) = record.text("Email").map(|e| e.trim().to_lowercase()) else { return Ok(()) };
    if !data.field(module, "Email").is_some_and(|f| f.unique) {
        return Ok(());
    }
    let Some(other) = data.table(module).with_key(&format!("email:{email}")).iter().find(|other| **other != id).copied() else {
        return Ok(());
    };
    let owner = data.table(module).get(&other).map(|r| r.owner).unwrap_or_default();
    Err(record_error(
        "DUPLICATE_DATA",
        "duplicate data",
        json!({
            "api_name": "Email",
            "json_path": path(index, "Email"),
            "duplicate_record": {
                "id": other.to_string(),
                "Owner": user_ref(data, owner, false),
                "module": {"api_name": module.api_name(), "id": module.id(data.org_id).to_string()},
            },
        }),
    ))
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !s.contains(char::is_whitespace)
}

/// A deal's pipeline (the default one when none is given) must hold its stage; the stage sets
/// the probability unless the body gives one.
fn deal_stage(
    data: &ZohoData,
    record: &mut Draft,
    existing: Option<&Record>,
    input: &Map<String, Value>,
    index: usize,
) -> Result<(), Value> {
    let pipeline_name = match record.text("Pipeline") {
        Some(name) => name.to_string(),
        None => data.default_pipeline().map(|p| p.name.clone()).unwrap_or_default(),
    };
    let Some(pipeline) = data.pipeline(&pipeline_name) else {
        return Err(invalid(index, "Pipeline", "picklist"));
    };
    record.set("Pipeline", Value::String(pipeline.name.clone()));
    let Some(stage_name) = record.text("Stage").map(str::to_string) else { return Ok(()) };
    let Some(stage) = pipeline.stages.iter().find(|s| s.name == stage_name) else {
        return Err(record_error(
            "INVALID_DATA",
            "Pipeline doesn't contain the Stage",
            json!({"api_name": "Stage", "json_path": path(index, "Stage")}),
        ));
    };
    let stage_changed = existing.and_then(|e| e.text("Stage")) != Some(stage.name.as_str());
    if stage_changed && !input.contains_key("Probability") {
        record.set("Probability", json!(stage.probability));
    }
    Ok(())
}

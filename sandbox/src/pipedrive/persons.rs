//! Persons in the API v2 shape (`getPersons`, `getPerson`, `addPerson`, `updatePerson`,
//! `deletePerson`); the handlers are shared with organizations in `contacts`.

use std::collections::BTreeMap;

use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::contacts::{self, Contact};
use crate::table::Table;
use super::data::{ContactPoint, PdData, Person};
use super::fields::apply_custom_fields;
use super::invalid;
use crate::table::Row;
use crate::json::IsoSeconds;

impl Row for Person {
    fn id(&self) -> u64 {
        self.id
    }
    fn add_time(&self) -> i64 {
        self.add_time
    }
    fn update_time(&self) -> i64 {
        self.update_time
    }
}

/// `emails` or `phones`: `[{value, primary, label}]`, `value` required; the first is primary when
/// none is, and at most one may be.
fn contact_points(value: &Value, key: &str) -> Result<Vec<ContactPoint>, Response> {
    let items = value.as_array().ok_or_else(|| invalid(&format!("{key}: must be an array")))?;
    let mut points = Vec::new();
    for item in items {
        let item = item.as_object().ok_or_else(|| invalid(&format!("{key}: each item must be an object")))?;
        if let Some(unknown) = item.keys().find(|k| !matches!(k.as_str(), "value" | "primary" | "label")) {
            return Err(invalid(&format!("{key}.{unknown}: unknown field")));
        }
        let text = match item.get("value").and_then(Value::as_str).map(str::trim) {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => return Err(invalid(&format!("{key}.value: must be a non-empty string"))),
        };
        let primary = match item.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid(&format!("{key}.primary: must be a boolean"))),
        };
        let label = match item.get("label") {
            None | Some(Value::Null) => "work".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid(&format!("{key}.label: must be a string"))),
        };
        points.push(ContactPoint { value: text, primary, label });
    }
    match points.iter().filter(|p| p.primary).count() {
        0 => {
            if let Some(first) = points.first_mut() {
                first.primary = true;
            }
        }
        1 => {}
        _ => return Err(invalid(&format!("{key}: only one can be primary"))),
    }
    Ok(points)
}

impl Contact for Person {
    const NOT_FOUND: &'static str = "Person not found";
    const ENTITY: &'static str = "person";
    const FILTERS: &'static [&'static str] = &["owner_id", "org_id", "deal_id"];

    fn blank(owner_id: u64, at: i64) -> Person {
        Person::new(0, owner_id, at)
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
    fn all(data: &PdData) -> &Table<Person> {
        &data.persons
    }
    fn all_mut(data: &mut PdData) -> &mut Table<Person> {
        &mut data.persons
    }
    fn is_deleted(&self) -> bool {
        self.is_deleted
    }
    fn mark_deleted(&mut self, at: i64) {
        self.is_deleted = true;
        self.update_time = at;
    }
    fn touch(&mut self, at: i64) {
        self.update_time = at;
    }

    fn matches(&self, data: &PdData, name: &str, value: u64) -> bool {
        match name {
            "owner_id" => self.owner_id == value,
            "org_id" => self.org_id == Some(value),
            "deal_id" => data.deals.get(&value).is_some_and(|d| !d.is_deleted && d.person_id == Some(self.id)),
            _ => false,
        }
    }

    fn apply(&mut self, data: &PdData, body: &Map<String, Value>, creating: bool) -> Result<(), Response> {
        for (key, value) in body {
            match key.as_str() {
                "name" => self.set_name(&contacts::name(value)?),
                "owner_id" => self.owner_id = contacts::owner(data, value)?,
                "org_id" => match value {
                    Value::Null => self.org_id = None,
                    v => {
                        let id = v.as_u64().ok_or_else(|| invalid("org_id: must be an integer"))?;
                        if data.live_organization(id).is_none() {
                            return Err(invalid(&format!("org_id: organization {id} not found")));
                        }
                        self.org_id = Some(id);
                    }
                },
                "emails" => self.emails = contact_points(value, key)?,
                "phones" => self.phones = contact_points(value, key)?,
                "visible_to" => self.visible_to = contacts::visible_to(value)?,
                "label_ids" => self.label_ids = contacts::label_ids(value)?,
                "add_time" if creating => self.add_time = contacts::add_time(value)?,
                "custom_fields" => apply_custom_fields(&data.person_fields, &mut self.custom_fields, value)?,
                _ => return Err(invalid(&format!("{key}: unknown field"))),
            }
        }
        if creating && !body.contains_key("name") {
            return Err(invalid("name: is required"));
        }
        Ok(())
    }

    type View<'a> = PersonView<'a>;

    fn view(&self) -> PersonView<'_> {
        PersonView {
            id: self.id,
            name: &self.name,
            first_name: &self.first_name,
            last_name: &self.last_name,
            owner_id: self.owner_id,
            org_id: self.org_id,
            add_time: IsoSeconds(self.add_time),
            update_time: IsoSeconds(self.update_time),
            emails: &self.emails,
            phones: &self.phones,
            is_deleted: self.is_deleted,
            visible_to: self.visible_to,
            label_ids: &self.label_ids,
            picture_id: None,
            custom_fields: &self.custom_fields,
        }
    }
}

/// A person in the API v2 shape, serialized straight from the store.
#[derive(Serialize)]
pub struct PersonView<'a> {
    id: u64,
    name: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    owner_id: u64,
    org_id: Option<u64>,
    add_time: IsoSeconds,
    update_time: IsoSeconds,
    emails: &'a [ContactPoint],
    phones: &'a [ContactPoint],
    is_deleted: bool,
    visible_to: i64,
    label_ids: &'a [u64],
    picture_id: Option<()>,
    custom_fields: &'a BTreeMap<String, Value>,
}

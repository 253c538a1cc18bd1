//! Persons in the API v2 shape (`getPersons`, `getPerson`, `addPerson`, `updatePerson`,
//! `deletePerson`); the handlers are shared with organizations in `contacts`.

use axum::response::Response;
use serde_json::{Map, Value};

use super::contacts::{self, Contact};
use super::data::{ContactPoint, PdData, Person};
use super::fields::apply_custom_fields;
use super::invalid;
use crate::json::Object;
use crate::key;
use crate::table::Row;
use crate::table::Table;

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

    fn write(&self, out: &mut Vec<u8>) {
        out.reserve(1024);
        let mut o = Object::begin(out);
        o.value(key!("id"), &self.id)
            .str(key!("name"), &self.name)
            .str(key!("first_name"), &self.first_name)
            .str(key!("last_name"), &self.last_name)
            .value(key!("owner_id"), &self.owner_id)
            .value(key!("org_id"), &self.org_id)
            .time(key!("add_time"), Some(self.add_time))
            .time(key!("update_time"), Some(self.update_time))
            .value(key!("emails"), &self.emails)
            .value(key!("phones"), &self.phones)
            .value(key!("is_deleted"), &self.is_deleted)
            .value(key!("visible_to"), &self.visible_to)
            .value(key!("label_ids"), &self.label_ids)
            .value(key!("picture_id"), &())
            .map(key!("custom_fields"), &self.custom_fields);
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipedrive::data::Organization;
    use serde_json::json;

    #[test]
    fn persons_and_organizations_are_written_in_the_api_v2_shape() {
        let mut person = Person::new(9, 7, 1_609_459_200_000);
        (person.name, person.first_name, person.last_name, person.org_id) = ("Ana \"A\" Li".into(), "Ana".into(), "Li".into(), Some(4));
        person.emails = vec![ContactPoint { value: "ana@example.com".into(), primary: true, label: "work".into() }];
        person.custom_fields.insert("c".repeat(40), json!("x"));
        assert_eq!(
            person.to_json(),
            json!({
                "id": 9, "name": "Ana \"A\" Li", "first_name": "Ana", "last_name": "Li", "owner_id": 7, "org_id": 4,
                "add_time": "2021-01-01T00:00:00Z", "update_time": "2021-01-01T00:00:00Z",
                "emails": [{"value": "ana@example.com", "primary": true, "label": "work"}], "phones": [],
                "is_deleted": false, "visible_to": person.visible_to, "label_ids": [], "picture_id": null,
                "custom_fields": {"c".repeat(40): "x"},
            })
        );
        let mut org = Organization::new(4, 7, 1_609_459_200_000);
        (org.name, org.address, org.website, org.employee_count) =
            ("Acme".into(), Some("Main St 1".into()), Some("https://acme.example".into()), Some(12));
        assert_eq!(
            org.to_json(),
            json!({
                "id": 4, "name": "Acme", "owner_id": 7, "add_time": "2021-01-01T00:00:00Z", "update_time": "2021-01-01T00:00:00Z",
                "is_deleted": false, "visible_to": org.visible_to, "address": {"value": "Main St 1"}, "label_ids": [],
                "website": "https://acme.example", "linkedin": null, "industry": null, "annual_revenue": null,
                "employee_count": 12, "custom_fields": {},
            })
        );
    }
}

//! Organizations in the API v2 shape (`getOrganizations`, `getOrganization`, `addOrganization`,
//! `updateOrganization`, `deleteOrganization`); the handlers are shared with persons in `contacts`.

use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::contacts::{self, Contact};
use super::data::{Organization, PdData};
use super::fields::apply_custom_fields;
use super::invalid;
use crate::json::Object;
use crate::key;
use crate::table::Row;
use crate::table::Table;

/// The parts of `OrganizationItemAddress` besides `value`: accepted, not kept (the sandbox keeps
/// the address as one line).
const ADDRESS_PARTS: [&str; 9] = [
    "country",
    "admin_area_level_1",
    "admin_area_level_2",
    "locality",
    "sublocality",
    "route",
    "street_number",
    "subpremise",
    "postal_code",
];

impl Row for Organization {
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

fn address(value: &Value) -> Result<Option<String>, Response> {
    let parts = match value {
        Value::Null => return Ok(None),
        Value::Object(parts) => parts,
        _ => return Err(invalid("address: must be an object like {\"value\": \"Main St 1, Berlin\"} or null")),
    };
    for (key, part) in parts {
        if key != "value" && !ADDRESS_PARTS.contains(&key.as_str()) {
            return Err(invalid(&format!("address.{key}: unknown field")));
        }
        if !part.is_string() && !part.is_null() {
            return Err(invalid(&format!("address.{key}: must be a string")));
        }
    }
    Ok(parts.get("value").and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string))
}

impl Contact for Organization {
    const NOT_FOUND: &'static str = "Organization not found";
    const ENTITY: &'static str = "organization";
    const FILTERS: &'static [&'static str] = &["owner_id"];

    fn blank(owner_id: u64, at: i64) -> Organization {
        Organization::new(0, owner_id, at)
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
    fn all(data: &PdData) -> &Table<Organization> {
        &data.organizations
    }
    fn all_mut(data: &mut PdData) -> &mut Table<Organization> {
        &mut data.organizations
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

    fn matches(&self, _data: &PdData, name: &str, value: u64) -> bool {
        name == "owner_id" && self.owner_id == value
    }

    fn apply(&mut self, data: &PdData, body: &Map<String, Value>, creating: bool) -> Result<(), Response> {
        for (key, value) in body {
            match key.as_str() {
                "name" => self.name = contacts::name(value)?,
                "owner_id" => self.owner_id = contacts::owner(data, value)?,
                "address" => self.address = address(value)?,
                "website" => self.website = contacts::opt_string(value, key)?,
                "linkedin" => self.linkedin = contacts::opt_string(value, key)?,
                "industry" => self.industry = contacts::opt_integer(value, key)?,
                "annual_revenue" => self.annual_revenue = contacts::opt_integer(value, key)?,
                "employee_count" => self.employee_count = contacts::opt_integer(value, key)?,
                "visible_to" => self.visible_to = contacts::visible_to(value)?,
                "label_ids" => self.label_ids = contacts::label_ids(value)?,
                "add_time" if creating => self.add_time = contacts::add_time(value)?,
                "custom_fields" => apply_custom_fields(&data.organization_fields, &mut self.custom_fields, value)?,
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
            .value(key!("owner_id"), &self.owner_id)
            .time(key!("add_time"), Some(self.add_time))
            .time(key!("update_time"), Some(self.update_time))
            .value(key!("is_deleted"), &self.is_deleted)
            .value(key!("visible_to"), &self.visible_to)
            .value(key!("address"), &self.address.as_deref().map(|value| Address { value }))
            .value(key!("label_ids"), &self.label_ids)
            .opt_str(key!("website"), self.website.as_deref())
            .opt_str(key!("linkedin"), self.linkedin.as_deref())
            .value(key!("industry"), &self.industry)
            .value(key!("annual_revenue"), &self.annual_revenue)
            .value(key!("employee_count"), &self.employee_count)
            .map(key!("custom_fields"), &self.custom_fields);
        o.end();
    }
}

/// An organization's `address` (`{value}`).
#[derive(Serialize)]
pub struct Address<'a> {
    value: &'a str,
}

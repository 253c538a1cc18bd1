//! Organizations in the API v2 shape (`getOrganizations`, `getOrganization`, `addOrganization`,
//! `updateOrganization`, `deleteOrganization`); the handlers are shared with persons in `contacts`.

use std::collections::BTreeMap;

use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::contacts::{self, Contact};
use crate::table::Table;
use super::data::{Organization, PdData};
use super::fields::apply_custom_fields;
use super::invalid;
use crate::table::Row;
use crate::json::IsoSeconds;

/// The parts of `OrganizationItemAddress` besides `value`: accepted, not kept (the sandbox keeps
/// the address as one line).
const ADDRESS_PARTS: [&str; 9] =
    ["country", "admin_area_level_1", "admin_area_level_2", "locality", "sublocality", "route", "street_number", "subpremise", "postal_code"];

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

    type View<'a> = OrganizationView<'a>;

    fn view(&self) -> OrganizationView<'_> {
        OrganizationView {
            id: self.id,
            name: &self.name,
            owner_id: self.owner_id,
            add_time: IsoSeconds(self.add_time),
            update_time: IsoSeconds(self.update_time),
            is_deleted: self.is_deleted,
            visible_to: self.visible_to,
            address: self.address.as_deref().map(|value| Address { value }),
            label_ids: &self.label_ids,
            website: self.website.as_deref(),
            linkedin: self.linkedin.as_deref(),
            industry: self.industry,
            annual_revenue: self.annual_revenue,
            employee_count: self.employee_count,
            custom_fields: &self.custom_fields,
        }
    }
}

#[derive(Serialize)]
pub struct Address<'a> {
    value: &'a str,
}

/// An organization in the API v2 shape, serialized straight from the store.
#[derive(Serialize)]
pub struct OrganizationView<'a> {
    id: u64,
    name: &'a str,
    owner_id: u64,
    add_time: IsoSeconds,
    update_time: IsoSeconds,
    is_deleted: bool,
    visible_to: i64,
    address: Option<Address<'a>>,
    label_ids: &'a [u64],
    website: Option<&'a str>,
    linkedin: Option<&'a str>,
    industry: Option<i64>,
    annual_revenue: Option<i64>,
    employee_count: Option<i64>,
    custom_fields: &'a BTreeMap<String, Value>,
}

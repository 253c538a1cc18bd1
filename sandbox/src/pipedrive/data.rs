//! What the Pipedrive sandbox stores: the company's users, pipelines, stages, the field definitions
//! of deals, persons and organizations, and the deals, persons and organizations themselves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oauth::OAuthData;
use crate::table::Table;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: u64,
    pub name: String,
    pub order_nr: i64,
    pub is_deleted: bool,
    pub is_deal_probability_enabled: bool,
    pub add_time: i64,
    pub update_time: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stage {
    pub id: u64,
    pub order_nr: i64,
    pub name: String,
    pub is_deleted: bool,
    pub deal_probability: i64,
    pub pipeline_id: u64,
    pub is_deal_rot_enabled: bool,
    pub days_to_rotten: Option<i64>,
    pub add_time: i64,
    pub update_time: i64,
}

/// A field definition of deals, persons or organizations (`dealFields`, `personFields`,
/// `organizationFields` share the shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DealField {
    pub id: u64,
    /// A built-in name (`title`) or a 40-character hash for custom fields.
    pub key: String,
    pub name: String,
    pub field_type: String,
    /// `[{id, label}]` for enum and set fields.
    pub options: Option<Vec<Value>>,
    pub is_custom: bool,
    pub order_nr: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Deal {
    pub id: u64,
    pub title: String,
    pub owner_id: u64,
    pub person_id: Option<u64>,
    pub org_id: Option<u64>,
    pub pipeline_id: u64,
    pub stage_id: u64,
    pub value: f64,
    pub currency: String,
    pub add_time: i64,
    pub update_time: i64,
    pub stage_change_time: Option<i64>,
    pub status: String,
    pub is_deleted: bool,
    pub probability: Option<f64>,
    pub lost_reason: Option<String>,
    pub visible_to: i64,
    pub close_time: Option<i64>,
    pub won_time: Option<i64>,
    pub lost_time: Option<i64>,
    pub expected_close_date: Option<String>,
    pub label_ids: Vec<u64>,
    pub custom_fields: BTreeMap<String, Value>,
}

impl Deal {
    /// An open deal with nothing set yet.
    pub fn new(id: u64, owner_id: u64, at: i64) -> Deal {
        Deal {
            id,
            title: String::new(),
            owner_id,
            person_id: None,
            org_id: None,
            pipeline_id: 0,
            stage_id: 0,
            value: 0.0,
            currency: "USD".into(),
            add_time: at,
            update_time: at,
            stage_change_time: None,
            status: "open".into(),
            is_deleted: false,
            probability: None,
            lost_reason: None,
            visible_to: 3,
            close_time: None,
            won_time: None,
            lost_time: None,
            expected_close_date: None,
            label_ids: Vec::new(),
            custom_fields: BTreeMap::new(),
        }
    }
}

/// One of a person's emails or phones (`PersonItemEmail`, `PersonItemPhone`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ContactPoint {
    pub value: String,
    pub primary: bool,
    pub label: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub owner_id: u64,
    pub org_id: Option<u64>,
    pub emails: Vec<ContactPoint>,
    pub phones: Vec<ContactPoint>,
    pub add_time: i64,
    pub update_time: i64,
    pub is_deleted: bool,
    pub visible_to: i64,
    pub label_ids: Vec<u64>,
    pub custom_fields: BTreeMap<String, Value>,
}

impl Person {
    /// A person with nothing set yet.
    pub fn new(id: u64, owner_id: u64, at: i64) -> Person {
        Person {
            id,
            name: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            owner_id,
            org_id: None,
            emails: Vec::new(),
            phones: Vec::new(),
            add_time: at,
            update_time: at,
            is_deleted: false,
            visible_to: 3,
            label_ids: Vec::new(),
            custom_fields: BTreeMap::new(),
        }
    }

    /// Sets `name` and splits it as Pipedrive does: the first word is the first name, the rest the last.
    pub fn set_name(&mut self, name: &str) {
        let name = name.trim();
        self.name = name.to_string();
        let (first, last) = name.split_once(char::is_whitespace).unwrap_or((name, ""));
        self.first_name = first.to_string();
        self.last_name = last.trim().to_string();
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Organization {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    /// The address as one line (`address.value`).
    pub address: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub linkedin: Option<String>,
    #[serde(default)]
    pub industry: Option<i64>,
    #[serde(default)]
    pub annual_revenue: Option<i64>,
    #[serde(default)]
    pub employee_count: Option<i64>,
    pub add_time: i64,
    pub update_time: i64,
    pub is_deleted: bool,
    pub visible_to: i64,
    pub label_ids: Vec<u64>,
    pub custom_fields: BTreeMap<String, Value>,
}

impl Organization {
    /// An organization with nothing set yet.
    pub fn new(id: u64, owner_id: u64, at: i64) -> Organization {
        Organization {
            id,
            name: String::new(),
            owner_id,
            address: None,
            website: None,
            linkedin: None,
            industry: None,
            annual_revenue: None,
            employee_count: None,
            add_time: at,
            update_time: at,
            is_deleted: false,
            visible_to: 3,
            label_ids: Vec::new(),
            custom_fields: BTreeMap::new(),
        }
    }
}

/// One entry of a deal's changelog.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Change {
    pub field_key: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub actor_user_id: u64,
    pub time: i64,
    pub change_source: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PdData {
    pub company_id: u64,
    pub company_name: String,
    pub company_domain: String,
    pub next_id: u64,
    pub users: Vec<User>,
    pub pipelines: BTreeMap<u64, Pipeline>,
    pub stages: BTreeMap<u64, Stage>,
    pub deal_fields: Vec<DealField>,
    pub deals: Table<Deal>,
    pub changelog: BTreeMap<u64, Vec<Change>>,
    /// Person field definitions; snapshots from before persons existed get the built-in ones.
    #[serde(default = "super::seed::person_fields")]
    pub person_fields: Vec<DealField>,
    #[serde(default = "super::seed::organization_fields")]
    pub organization_fields: Vec<DealField>,
    #[serde(default)]
    pub persons: Table<Person>,
    #[serde(default)]
    pub organizations: Table<Organization>,
    pub oauth: OAuthData,
    #[serde(default)]
    pub webhooks: Vec<super::webhooks::Webhook>,
    /// Changes waiting for webhook delivery (recorded only while webhooks exist).
    #[serde(skip)]
    pub outbox: Vec<super::webhooks::PdEvent>,
}

impl PdData {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn live_stage(&self, id: u64) -> Option<&Stage> {
        self.stages.get(&id).filter(|s| !s.is_deleted)
    }

    /// The first stage of a pipeline (where deals land when no stage is given).
    pub fn first_stage(&self, pipeline_id: u64) -> Option<&Stage> {
        self.stages.values().filter(|s| s.pipeline_id == pipeline_id && !s.is_deleted).min_by_key(|s| s.order_nr)
    }

    pub fn live_person(&self, id: u64) -> Option<&Person> {
        self.persons.get(&id).filter(|p| !p.is_deleted)
    }

    pub fn live_organization(&self, id: u64) -> Option<&Organization> {
        self.organizations.get(&id).filter(|o| !o.is_deleted)
    }

    /// Records a field change of a deal in its changelog.
    pub fn log_change(&mut self, deal_id: u64, change: Change) {
        if change.old_value != change.new_value {
            self.changelog.entry(deal_id).or_default().push(change);
        }
    }
}

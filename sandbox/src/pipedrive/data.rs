//! What the Pipedrive sandbox stores: the company's users, pipelines, stages, deal fields and deals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oauth::OAuthData;

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
    pub deals: BTreeMap<u64, Deal>,
    pub changelog: BTreeMap<u64, Vec<Change>>,
    pub oauth: OAuthData,
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

    /// Records a field change of a deal in its changelog.
    pub fn log_change(&mut self, deal_id: u64, change: Change) {
        if change.old_value != change.new_value {
            self.changelog.entry(deal_id).or_default().push(change);
        }
    }
}

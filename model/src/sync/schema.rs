//! What a provider says exists for a sync: its pipelines and their stages, its fields and their
//! kinds and options, and how many deals sit in each stage. Read live from both sides when a sync
//! is set up; the settings (`super`) are validated against it.

use serde::{Deserialize, Serialize};

/// What kind of values a field holds, as far as mapping and filtering care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldKind {
    Text,
    Number,
    Date,
    Enum,
    Owner,
    Bool,
}

impl FieldKind {
    pub fn label(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Enum => "dropdown",
            FieldKind::Owner => "owner",
            FieldKind::Bool => "yes/no",
        }
    }

    /// Whether values of `self` can be written into a field of kind `target`.
    pub fn flows_into(self, target: FieldKind) -> bool {
        self == target || (target == FieldKind::Text && matches!(self, FieldKind::Number | FieldKind::Date | FieldKind::Enum))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
}

/// A field (HubSpot property, app deal field) as its provider describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    #[serde(default)]
    pub options: Vec<FieldOption>,
    /// Tandem may not write it (calculated or system fields).
    #[serde(default)]
    pub read_only: bool,
    /// Created by the account rather than the provider.
    #[serde(default)]
    pub custom: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub id: String,
    pub name: String,
    /// A stage that closes the deal, as won or lost (HubSpot's closed stages, an app's won and
    /// lost outcomes); `None` while the deal is open.
    #[serde(default)]
    pub closed: Option<Outcome>,
}

/// How a closed deal ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Won,
    Lost,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineInfo {
    pub id: String,
    pub name: String,
    pub stages: Vec<StageInfo>,
}

/// One side's pipelines and deal fields, read live from its provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideSchema {
    pub pipelines: Vec<PipelineInfo>,
    pub fields: Vec<FieldInfo>,
}

impl SideSchema {
    pub fn pipeline(&self, id: &str) -> Option<&PipelineInfo> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    pub fn field(&self, key: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The names this side gives its won and lost stages (Pipedrive's Won and Lost, Zoho CRM's
    /// Closed Won and Closed Lost), from its first pipeline that has both; "Won" and "Lost"
    /// otherwise.
    pub fn closed_stage_names(&self) -> (String, String) {
        self.pipelines
            .iter()
            .find_map(|p| {
                let named = |outcome: Outcome| p.stages.iter().find(|s| s.closed == Some(outcome)).map(|s| s.name.clone());
                Some((named(Outcome::Won)?, named(Outcome::Lost)?))
            })
            .unwrap_or_else(|| ("Won".into(), "Lost".into()))
    }
}

/// How many deals sit in each stage of a pair of pipelines, on each side (stage id, count).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    pub hubspot: Vec<(String, u64)>,
    pub app: Vec<(String, u64)>,
}

impl StageCounts {
    pub fn hubspot_count(&self, stage: &str) -> u64 {
        self.hubspot.iter().find(|(id, _)| id == stage).map(|(_, n)| *n).unwrap_or(0)
    }

    pub fn app_count(&self, stage: &str) -> u64 {
        self.app.iter().find(|(id, _)| id == stage).map(|(_, n)| *n).unwrap_or(0)
    }
}

/// Both sides, for validating a sync between them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schemas {
    pub app_name: String,
    pub hubspot: SideSchema,
    pub app: SideSchema,
    /// The field mappings a new sync starts with, as (HubSpot property, app field): the app's
    /// connector knows which of its fields match HubSpot's (a deal's name, amount, close date and
    /// owner; a contact's names, email, phone and owner; a company's name, domain and address).
    #[serde(default)]
    pub defaults: Vec<(String, String)>,
}

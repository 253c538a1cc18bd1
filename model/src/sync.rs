//! A sync's settings (object, direction, pipeline and stage mappings, filters, conflict rule, field
//! mappings) and their validation against what both providers say exists. The server validates
//! every save with this; the browser uses the same rules to explain them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::apps::{ObjectKind, SyncDirection};
use crate::FieldError;

/// Who wins when the same field of the same record changed on both sides within five minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConflictRule {
    DefaultToHubSpot,
    DefaultToApp,
}

impl ConflictRule {
    pub fn label(self, app_name: &str) -> String {
        match self {
            ConflictRule::DefaultToHubSpot => "Default to HubSpot".to_string(),
            ConflictRule::DefaultToApp => format!("Default to {app_name}"),
        }
    }
}

/// One HubSpot stage paired with one app stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePair {
    pub hubspot_stage: String,
    pub app_stage: String,
    /// Proposed by Auto-map (shown as such) rather than chosen by the admin.
    #[serde(default)]
    pub auto: bool,
}

/// A HubSpot pipeline paired with an app pipeline, and their stage grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineMapping {
    pub hubspot_pipeline: String,
    pub app_pipeline: String,
    pub stages: Vec<StagePair>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FilterOp {
    Is,
    IsNot,
    Contains,
    GreaterThan,
    LessThan,
    IsKnown,
    IsUnknown,
}

impl FilterOp {
    pub const ALL: [FilterOp; 7] = [
        FilterOp::Is,
        FilterOp::IsNot,
        FilterOp::Contains,
        FilterOp::GreaterThan,
        FilterOp::LessThan,
        FilterOp::IsKnown,
        FilterOp::IsUnknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FilterOp::Is => "is",
            FilterOp::IsNot => "is not",
            FilterOp::Contains => "contains",
            FilterOp::GreaterThan => "is greater than",
            FilterOp::LessThan => "is less than",
            FilterOp::IsKnown => "is known",
            FilterOp::IsUnknown => "is unknown",
        }
    }

    pub fn needs_value(self) -> bool {
        !matches!(self, FilterOp::IsKnown | FilterOp::IsUnknown)
    }

    /// Whether the operator makes sense for a field of this kind.
    pub fn fits(self, kind: FieldKind) -> bool {
        match self {
            FilterOp::Is | FilterOp::IsNot | FilterOp::IsKnown | FilterOp::IsUnknown => true,
            FilterOp::Contains => kind == FieldKind::Text,
            FilterOp::GreaterThan | FilterOp::LessThan => matches!(kind, FieldKind::Number | FieldKind::Date),
        }
    }
}

/// A condition the app's deals must meet to sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    #[serde(default)]
    pub value: String,
}

/// A dropdown value on one side and its counterpart on the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuePair {
    pub hubspot: String,
    pub app: String,
}

/// A HubSpot property kept in step with an app field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub hubspot_property: String,
    pub app_field: String,
    pub direction: SyncDirection,
    /// For dropdown fields: which value means which.
    #[serde(default)]
    pub values: Vec<ValuePair>,
}

/// Everything a sync obeys. Saved as a new version on every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    pub object: ObjectKind,
    pub direction: SyncDirection,
    pub pipelines: Vec<PipelineMapping>,
    pub filters: Vec<Filter>,
    pub conflict_rule: ConflictRule,
    pub fields: Vec<FieldMapping>,
}

/// Whether a sync runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatus {
    On,
    Paused,
    Off,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::On => "on",
            SyncStatus::Paused => "paused",
            SyncStatus::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<SyncStatus> {
        [SyncStatus::On, SyncStatus::Paused, SyncStatus::Off].into_iter().find(|x| x.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            SyncStatus::On => "Syncing",
            SyncStatus::Paused => "Paused",
            SyncStatus::Off => "Off",
        }
    }
}

/// A sync as the console lists it: its settings in force and who saved them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub id: String,
    pub connection_id: String,
    pub status: SyncStatus,
    pub version: i64,
    pub saved_by: String,
    pub saved_at: i64,
    pub settings: SyncSettings,
}

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

impl PipelineMapping {
    /// Pairs the stages that read alike (see [`crate::automap`]), leaving every existing pair as
    /// it is. Answers how many pairs it added.
    pub fn auto_map(&mut self, schemas: &Schemas) -> usize {
        let (Some(hub), Some(app)) = (schemas.hubspot.pipeline(&self.hubspot_pipeline), schemas.app.pipeline(&self.app_pipeline)) else {
            return 0;
        };
        let taken_hub: HashSet<String> = self.stages.iter().map(|p| p.hubspot_stage.clone()).collect();
        let taken_app: HashSet<String> = self.stages.iter().map(|p| p.app_stage.clone()).collect();
        let proposals = crate::automap::auto_map(&refs(&hub.stages), &refs(&app.stages), &taken_hub, &taken_app);
        let added = proposals.len();
        self.stages.extend(proposals.into_iter().map(|p| StagePair { hubspot_stage: p.hubspot_stage, app_stage: p.app_stage, auto: true }));
        // Keep the grid in HubSpot's stage order.
        let order = |id: &str| hub.stages.iter().position(|s| s.id == id).unwrap_or(usize::MAX);
        self.stages.sort_by_key(|p| order(&p.hubspot_stage));
        added
    }

    /// The app stage paired with a HubSpot stage, if any.
    pub fn app_stage_for(&self, hubspot_stage: &str) -> Option<&StagePair> {
        self.stages.iter().find(|p| p.hubspot_stage == hubspot_stage)
    }

    /// Pairs (or unpairs, with `None`) a HubSpot stage by hand.
    pub fn set_stage(&mut self, hubspot_stage: &str, app_stage: Option<String>) {
        self.stages.retain(|p| p.hubspot_stage != hubspot_stage);
        if let Some(app_stage) = app_stage.filter(|s| !s.is_empty()) {
            self.stages.push(StagePair { hubspot_stage: hubspot_stage.to_string(), app_stage, auto: false });
        }
    }
}

fn refs(stages: &[StageInfo]) -> Vec<crate::automap::StageName<'_>> {
    stages.iter().map(|s| crate::automap::StageName { id: &s.id, name: &s.name }).collect()
}

/// The mappings a new sync starts with: the app's defaults ([`Schemas::defaults`]) where both
/// sides have the fields, then the app's custom fields named like a HubSpot property.
pub fn default_field_mappings(schemas: &Schemas) -> Vec<FieldMapping> {
    let mut mappings: Vec<FieldMapping> = schemas
        .defaults
        .iter()
        .filter(|(h, a)| schemas.hubspot.field(h).is_some() && schemas.app.field(a).is_some())
        .map(|(h, a)| FieldMapping {
            hubspot_property: h.to_string(),
            app_field: a.to_string(),
            direction: SyncDirection::TwoWay,
            values: vec![],
        })
        .collect();
    // The app's custom fields that carry the name of a HubSpot property (“Industry” ↔ “Industry”).
    for field in schemas.app.fields.iter().filter(|f| f.custom && !f.read_only) {
        let twin = schemas.hubspot.fields.iter().find(|h| {
            !h.read_only
                && h.label.trim().eq_ignore_ascii_case(field.label.trim())
                && h.kind.flows_into(field.kind)
                && field.kind.flows_into(h.kind)
        });
        let taken = mappings.iter().any(|m| Some(m.hubspot_property.as_str()) == twin.map(|t| t.key.as_str()) || m.app_field == field.key);
        if let (Some(twin), false) = (twin, taken) {
            mappings.push(FieldMapping {
                hubspot_property: twin.key.clone(),
                app_field: field.key.clone(),
                direction: SyncDirection::TwoWay,
                values: vec![],
            });
        }
    }
    mappings
}

impl SyncSettings {
    /// What a new sync of `object` starts with: two-way, conflicts to HubSpot, the first pipeline
    /// of each side paired and Auto-mapped, the default field mappings.
    pub fn new_for(object: ObjectKind, schemas: &Schemas) -> SyncSettings {
        let mut pipelines = Vec::new();
        if object == ObjectKind::Deal {
            if let (Some(hub), Some(app)) = (schemas.hubspot.pipelines.first(), schemas.app.pipelines.iter().find(|p| !p.stages.is_empty()))
            {
                let mut mapping = PipelineMapping { hubspot_pipeline: hub.id.clone(), app_pipeline: app.id.clone(), stages: vec![] };
                mapping.auto_map(schemas);
                pipelines.push(mapping);
            }
        }
        SyncSettings {
            object,
            direction: SyncDirection::TwoWay,
            pipelines,
            filters: vec![],
            conflict_rule: ConflictRule::DefaultToHubSpot,
            fields: default_field_mappings(schemas),
        }
    }
}

/// Whether values flow from HubSpot to the app (`to_app`) and from the app to HubSpot.
fn flows(direction: SyncDirection) -> (bool, bool) {
    match direction {
        SyncDirection::TwoWay => (true, true),
        SyncDirection::ToHubSpot => (false, true),
        SyncDirection::ToApp => (true, false),
    }
}

impl SyncSettings {
    /// The rule that applies: a one-way sync always follows its source.
    pub fn effective_conflict_rule(&self) -> ConflictRule {
        match self.direction {
            SyncDirection::TwoWay => self.conflict_rule,
            SyncDirection::ToHubSpot => ConflictRule::DefaultToApp,
            SyncDirection::ToApp => ConflictRule::DefaultToHubSpot,
        }
    }

    /// Every problem, each keyed to the control it belongs to (`pipelines.0.hubspot_pipeline`,
    /// `pipelines.0.stages.2`, `filters.1.value`, `fields.3.app_field`, …).
    pub fn validate(&self, schemas: &Schemas) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.object == ObjectKind::Deal {
            self.validate_pipelines(schemas, &mut errors);
        }
        self.validate_filters(schemas, &mut errors);
        self.validate_fields(schemas, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_pipelines(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        let app = &schemas.app_name;
        if self.pipelines.is_empty() {
            errors.push(FieldError::new(
                "pipelines",
                "Map at least one HubSpot pipeline to one of the app's pipelines: only deals in mapped stages sync.",
            ));
        }
        let mut hub_pipelines = HashSet::new();
        let mut app_pipelines = HashSet::new();
        for (i, mapping) in self.pipelines.iter().enumerate() {
            let problems_before = errors.len();
            let hub = schemas.hubspot.pipeline(&mapping.hubspot_pipeline);
            let other = schemas.app.pipeline(&mapping.app_pipeline);
            match hub {
                None => {
                    errors.push(FieldError::new(format!("pipelines.{i}.hubspot_pipeline"), "Select a HubSpot pipeline that still exists."))
                }
                Some(p) if !hub_pipelines.insert(p.id.clone()) => errors.push(FieldError::new(
                    format!("pipelines.{i}.hubspot_pipeline"),
                    format!("The HubSpot pipeline {} is already mapped above.", p.name),
                )),
                Some(_) => {}
            }
            match other {
                None => errors
                    .push(FieldError::new(format!("pipelines.{i}.app_pipeline"), format!("Select a {app} pipeline that still exists."))),
                Some(p) if !app_pipelines.insert(p.id.clone()) => errors.push(FieldError::new(
                    format!("pipelines.{i}.app_pipeline"),
                    format!("The {app} pipeline {} is already mapped above.", p.name),
                )),
                Some(p) if p.stages.is_empty() => errors.push(FieldError::new(
                    format!("pipelines.{i}.app_pipeline"),
                    format!("The {app} pipeline {} has no stages, so its deals cannot sync.", p.name),
                )),
                Some(_) => {}
            }
            let (Some(hub), Some(other)) = (hub, other) else { continue };
            if errors.len() > problems_before {
                continue;
            }
            let mut seen_hub = HashSet::new();
            let mut seen_app = HashSet::new();
            for (j, pair) in mapping.stages.iter().enumerate() {
                let field = format!("pipelines.{i}.stages.{j}");
                let hub_stage = hub.stages.iter().find(|s| s.id == pair.hubspot_stage);
                let app_stage = other.stages.iter().find(|s| s.id == pair.app_stage);
                match (hub_stage, app_stage) {
                    (None, _) => {
                        errors.push(FieldError::new(field, format!("This HubSpot stage is not in the pipeline {} (any more).", hub.name)))
                    }
                    (_, None) => {
                        errors.push(FieldError::new(field, format!("This {app} stage is not in the pipeline {} (any more).", other.name)))
                    }
                    (Some(h), Some(a)) => {
                        if !seen_hub.insert(h.id.clone()) {
                            errors.push(FieldError::new(field, format!("The HubSpot stage {} is mapped twice.", h.name)));
                        } else if !seen_app.insert(a.id.clone()) {
                            errors.push(FieldError::new(
                                field,
                                format!("The {app} stage {} is already mapped to another HubSpot stage; each stage maps to one.", a.name),
                            ));
                        }
                    }
                }
            }
            if mapping.stages.is_empty() {
                errors.push(FieldError::new(
                    format!("pipelines.{i}.stages"),
                    "Map at least one stage: deals in unmapped stages do not sync.",
                ));
            }
        }
    }

    fn validate_filters(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        for (i, filter) in self.filters.iter().enumerate() {
            let Some(field) = schemas.app.field(&filter.field) else {
                errors
                    .push(FieldError::new(format!("filters.{i}.field"), format!("Choose a {} field that still exists.", schemas.app_name)));
                continue;
            };
            if !filter.op.fits(field.kind) {
                errors.push(FieldError::new(
                    format!("filters.{i}.op"),
                    format!("“{}” does not apply to {}, a {} field.", filter.op.label(), field.label, field.kind.label()),
                ));
                continue;
            }
            if !filter.op.needs_value() {
                continue;
            }
            let value = filter.value.trim();
            let problem = if value.is_empty() {
                Some("Enter a value.".to_string())
            } else {
                match field.kind {
                    FieldKind::Number if value.parse::<f64>().is_err() => Some("Enter a number, like 1000 or 99.5.".into()),
                    FieldKind::Date if !is_date(value) => Some("Enter a date as YYYY-MM-DD.".into()),
                    FieldKind::Enum if !field.options.iter().any(|o| o.value == value) => {
                        Some(format!("Choose one of {}'s values.", field.label))
                    }
                    FieldKind::Bool if !matches!(value, "true" | "false") => Some("Choose yes or no.".into()),
                    _ => None,
                }
            };
            if let Some(message) = problem {
                errors.push(FieldError::new(format!("filters.{i}.value"), message));
            }
        }
    }

    fn validate_fields(&self, schemas: &Schemas, errors: &mut Vec<FieldError>) {
        let app = &schemas.app_name;
        let (sync_to_app, sync_to_hub) = flows(self.direction);
        let mut written_hub = HashSet::new();
        let mut written_app = HashSet::new();
        for (i, mapping) in self.fields.iter().enumerate() {
            let hub = schemas.hubspot.field(&mapping.hubspot_property);
            let other = schemas.app.field(&mapping.app_field);
            if hub.is_none() {
                errors.push(FieldError::new(format!("fields.{i}.hubspot_property"), "Choose a HubSpot property that still exists."));
            }
            if other.is_none() {
                errors.push(FieldError::new(format!("fields.{i}.app_field"), format!("Choose a {app} field that still exists.")));
            }
            let (Some(hub), Some(other)) = (hub, other) else { continue };
            let (to_app, to_hub) = flows(mapping.direction);
            if (to_app && !sync_to_app) || (to_hub && !sync_to_hub) {
                errors.push(FieldError::new(
                    format!("fields.{i}.direction"),
                    format!("This sync runs {}; a field cannot flow the other way.", self.direction.label(app).to_lowercase()),
                ));
                continue;
            }
            if to_hub {
                if hub.read_only {
                    errors.push(FieldError::new(
                        format!("fields.{i}.hubspot_property"),
                        format!("HubSpot does not let apps write {}.", hub.label),
                    ));
                } else if !other.kind.flows_into(hub.kind) {
                    errors.push(incompatible(i, other, hub, app, "HubSpot"));
                } else if !written_hub.insert(hub.key.clone()) {
                    errors.push(FieldError::new(
                        format!("fields.{i}.hubspot_property"),
                        format!("Another mapping already writes HubSpot's {}.", hub.label),
                    ));
                }
            }
            if to_app {
                if other.read_only {
                    errors
                        .push(FieldError::new(format!("fields.{i}.app_field"), format!("{app} does not let apps write {}.", other.label)));
                } else if !hub.kind.flows_into(other.kind) {
                    errors.push(incompatible(i, hub, other, "HubSpot", app));
                } else if !written_app.insert(other.key.clone()) {
                    errors.push(FieldError::new(
                        format!("fields.{i}.app_field"),
                        format!("Another mapping already writes {app}'s {}.", other.label),
                    ));
                }
            }
            for (j, pair) in mapping.values.iter().enumerate() {
                let known_hub = hub.options.is_empty() || hub.options.iter().any(|o| o.value == pair.hubspot);
                let known_app = other.options.is_empty() || other.options.iter().any(|o| o.value == pair.app);
                if !known_hub || !known_app {
                    errors.push(FieldError::new(format!("fields.{i}.values.{j}"), "Choose values that exist on both sides."));
                }
            }
        }
    }
}

fn incompatible(i: usize, from: &FieldInfo, to: &FieldInfo, from_side: &str, to_side: &str) -> FieldError {
    FieldError::new(
        format!("fields.{i}.direction"),
        format!(
            "{from_side}'s {} is a {} field and cannot fill {to_side}'s {}, a {} field.",
            from.label,
            from.kind.label(),
            to.label,
            to.kind.label()
        ),
    )
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            let (Ok(_), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else { return false };
            (1..=12).contains(&m) && (1..=31).contains(&d)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, kind: FieldKind) -> FieldInfo {
        FieldInfo { key: key.into(), label: key.into(), kind, options: vec![], read_only: false, custom: false }
    }

    fn pipeline(id: &str, stages: &[&str]) -> PipelineInfo {
        PipelineInfo {
            id: id.into(),
            name: format!("Pipeline {id}"),
            stages: stages.iter().map(|s| StageInfo { id: s.to_string(), name: s.to_string(), closed: None }).collect(),
        }
    }

    fn schemas() -> Schemas {
        let mut source = field("lead_source", FieldKind::Enum);
        source.options = vec![FieldOption { value: "web".into(), label: "Web".into() }];
        let mut created = field("hs_createdate", FieldKind::Date);
        created.read_only = true;
        Schemas {
            app_name: "Pipedrive".into(),
            hubspot: SideSchema {
                pipelines: vec![pipeline("default", &["s1", "s2", "won"]), pipeline("partner", &["p1"])],
                fields: vec![
                    field("dealname", FieldKind::Text),
                    field("amount", FieldKind::Number),
                    created,
                    field("closedate", FieldKind::Date),
                ],
            },
            app: SideSchema {
                pipelines: vec![pipeline("1", &["11", "12", "won"]), pipeline("2", &["21"]), pipeline("3", &[])],
                fields: vec![
                    field("title", FieldKind::Text),
                    field("value", FieldKind::Number),
                    source,
                    field("expected_close_date", FieldKind::Date),
                ],
            },
            defaults: pairs(&[
                ("dealname", "title"),
                ("amount", "value"),
                ("closedate", "expected_close_date"),
                ("hubspot_owner_id", "user_id"),
            ]),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(h, a)| (h.to_string(), a.to_string())).collect()
    }

    fn valid() -> SyncSettings {
        SyncSettings {
            object: ObjectKind::Deal,
            direction: SyncDirection::TwoWay,
            pipelines: vec![PipelineMapping {
                hubspot_pipeline: "default".into(),
                app_pipeline: "1".into(),
                stages: vec![
                    StagePair { hubspot_stage: "s1".into(), app_stage: "11".into(), auto: true },
                    StagePair { hubspot_stage: "won".into(), app_stage: "won".into(), auto: false },
                ],
            }],
            filters: vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }],
            conflict_rule: ConflictRule::DefaultToHubSpot,
            fields: vec![
                FieldMapping {
                    hubspot_property: "dealname".into(),
                    app_field: "title".into(),
                    direction: SyncDirection::TwoWay,
                    values: vec![],
                },
                FieldMapping {
                    hubspot_property: "amount".into(),
                    app_field: "value".into(),
                    direction: SyncDirection::TwoWay,
                    values: vec![],
                },
            ],
        }
    }

    fn fields_of(settings: &SyncSettings) -> Vec<String> {
        settings.validate(&schemas()).err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_complete_deal_sync_is_valid() {
        assert_eq!(valid().validate(&schemas()), Ok(()));
    }

    #[test]
    fn stages_must_belong_to_their_pipelines_and_map_once() {
        let mut s = valid();
        s.pipelines[0].stages.push(StagePair { hubspot_stage: "p1".into(), app_stage: "12".into(), auto: false });
        s.pipelines[0].stages.push(StagePair { hubspot_stage: "s2".into(), app_stage: "11".into(), auto: false });
        s.pipelines[0].stages.push(StagePair { hubspot_stage: "s1".into(), app_stage: "12".into(), auto: false });
        assert_eq!(fields_of(&s), vec!["pipelines.0.stages.2", "pipelines.0.stages.3", "pipelines.0.stages.4"]);
    }

    #[test]
    fn pipelines_exist_map_once_and_have_stages() {
        let mut s = valid();
        s.pipelines.push(PipelineMapping { hubspot_pipeline: "default".into(), app_pipeline: "3".into(), stages: vec![] });
        s.pipelines.push(PipelineMapping { hubspot_pipeline: "gone".into(), app_pipeline: "2".into(), stages: vec![] });
        assert_eq!(fields_of(&s), vec!["pipelines.1.hubspot_pipeline", "pipelines.1.app_pipeline", "pipelines.2.hubspot_pipeline"]);
        s.pipelines.clear();
        assert_eq!(fields_of(&s), vec!["pipelines"]);
    }

    #[test]
    fn filters_fit_their_field() {
        let mut s = valid();
        s.filters = vec![
            Filter { field: "title".into(), op: FilterOp::GreaterThan, value: "x".into() },
            Filter { field: "value".into(), op: FilterOp::LessThan, value: "lots".into() },
            Filter { field: "lead_source".into(), op: FilterOp::Is, value: "fax".into() },
            Filter { field: "expected_close_date".into(), op: FilterOp::GreaterThan, value: "2026-13-01".into() },
            Filter { field: "nope".into(), op: FilterOp::Is, value: "x".into() },
            Filter { field: "title".into(), op: FilterOp::Contains, value: " ".into() },
            Filter { field: "title".into(), op: FilterOp::IsKnown, value: "".into() },
            Filter { field: "lead_source".into(), op: FilterOp::IsNot, value: "web".into() },
        ];
        assert_eq!(
            fields_of(&s),
            vec!["filters.0.op", "filters.1.value", "filters.2.value", "filters.3.value", "filters.4.field", "filters.5.value"]
        );
    }

    #[test]
    fn field_mappings_are_compatible_and_write_each_target_once() {
        let mut s = valid();
        s.fields.push(FieldMapping {
            hubspot_property: "closedate".into(),
            app_field: "value".into(),
            direction: SyncDirection::TwoWay,
            values: vec![],
        });
        s.fields.push(FieldMapping {
            hubspot_property: "dealname".into(),
            app_field: "expected_close_date".into(),
            direction: SyncDirection::ToHubSpot,
            values: vec![],
        });
        s.fields.push(FieldMapping {
            hubspot_property: "hs_createdate".into(),
            app_field: "expected_close_date".into(),
            direction: SyncDirection::TwoWay,
            values: vec![],
        });
        let errors = s.validate(&schemas()).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(keys, vec!["fields.2.direction", "fields.2.direction", "fields.3.hubspot_property", "fields.4.hubspot_property"]);
        assert!(errors[0].message.contains("is a number field and cannot fill HubSpot's closedate, a date field"), "{}", errors[0].message);
        assert!(errors[2].message.contains("Another mapping already writes HubSpot's dealname"));
        assert!(errors[3].message.contains("does not let apps write"));
        // Dates, numbers and dropdowns may fill a text field one way.
        s.fields.truncate(2);
        s.fields.push(FieldMapping {
            hubspot_property: "closedate".into(),
            app_field: "expected_close_date".into(),
            direction: SyncDirection::TwoWay,
            values: vec![],
        });
        assert_eq!(s.validate(&schemas()), Ok(()));
    }

    #[test]
    fn new_settings_start_auto_mapped_and_valid() {
        let s = SyncSettings::new_for(ObjectKind::Deal, &schemas());
        assert_eq!(s.pipelines.len(), 1);
        let pairs: Vec<(&str, &str, bool)> =
            s.pipelines[0].stages.iter().map(|p| (p.hubspot_stage.as_str(), p.app_stage.as_str(), p.auto)).collect();
        assert_eq!(pairs, vec![("won", "won", true)]);
        let fields: Vec<&str> = s.fields.iter().map(|f| f.hubspot_property.as_str()).collect();
        assert_eq!(fields, vec!["dealname", "amount", "closedate"]);
        assert_eq!(s.validate(&schemas()), Ok(()));

        // A manual choice stays when Auto-map runs again.
        let mut mapping = s.pipelines[0].clone();
        mapping.set_stage("s1", Some("12".into()));
        mapping.set_stage("won", None);
        mapping.auto_map(&schemas());
        let pairs: Vec<(&str, &str, bool)> =
            mapping.stages.iter().map(|p| (p.hubspot_stage.as_str(), p.app_stage.as_str(), p.auto)).collect();
        assert_eq!(pairs, vec![("s1", "12", false), ("won", "won", true)]);
    }

    #[test]
    fn custom_fields_pair_with_their_namesakes() {
        let mut schemas = schemas();
        schemas.hubspot.fields.push(FieldInfo { label: "Industry".into(), ..field("industry", FieldKind::Text) });
        let custom = FieldInfo { label: "industry ".into(), custom: true, ..field("a1b2c3", FieldKind::Text) };
        schemas.app.fields.push(custom);
        let numeric = FieldInfo { label: "Amount".into(), custom: true, ..field("d4e5f6", FieldKind::Number) };
        schemas.app.fields.push(numeric);
        // A companies sync's defaults, whose fields these schemas lack.
        schemas.defaults = pairs(&[("name", "name"), ("domain", "website"), ("address", "address"), ("hubspot_owner_id", "owner_id")]);
        let mappings = default_field_mappings(&schemas);
        let pairs: Vec<(&str, &str)> = mappings.iter().map(|m| (m.hubspot_property.as_str(), m.app_field.as_str())).collect();
        assert_eq!(pairs, vec![("industry", "a1b2c3"), ("amount", "d4e5f6")]);
    }

    #[test]
    fn one_way_syncs_fix_the_conflict_rule_and_field_directions() {
        let mut s = valid();
        s.direction = SyncDirection::ToHubSpot;
        s.conflict_rule = ConflictRule::DefaultToHubSpot;
        assert_eq!(s.effective_conflict_rule(), ConflictRule::DefaultToApp);
        assert_eq!(fields_of(&s), vec!["fields.0.direction", "fields.1.direction"]);
        for f in &mut s.fields {
            f.direction = SyncDirection::ToHubSpot;
        }
        assert_eq!(s.validate(&schemas()), Ok(()));
        s.direction = SyncDirection::ToApp;
        assert_eq!(s.effective_conflict_rule(), ConflictRule::DefaultToHubSpot);
    }
}

//! A sync's settings (object, direction, pipeline and stage mappings, filters, conflict rule, field
//! mappings) and their validation against what both providers say exists. The server validates
//! every save with this; the browser uses the same rules to explain them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::apps::{ObjectKind, SyncDirection};

mod schema;
mod validate;
pub use schema::*;

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

    #[test]
    fn the_won_and_lost_stages_are_named_as_the_app_names_them() {
        let closing = |won: &str, lost: &str| {
            let mut p = pipeline("1", &["Qualification", won, lost]);
            p.stages[1].closed = Some(Outcome::Won);
            p.stages[2].closed = Some(Outcome::Lost);
            p
        };
        // The first pipeline with both outcomes names them; one without closed stages is passed over.
        let zoho = SideSchema { pipelines: vec![pipeline("0", &["Open"]), closing("Closed Won", "Closed Lost")], fields: vec![] };
        assert_eq!(zoho.closed_stage_names(), ("Closed Won".to_string(), "Closed Lost".to_string()));
        let pipedrive = SideSchema { pipelines: vec![closing("Won", "Lost")], fields: vec![] };
        assert_eq!(pipedrive.closed_stage_names(), ("Won".to_string(), "Lost".to_string()));
        assert_eq!(SideSchema::default().closed_stage_names(), ("Won".to_string(), "Lost".to_string()));
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

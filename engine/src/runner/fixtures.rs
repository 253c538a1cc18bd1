//! Test fixtures shared by the planner's and the runner's tests: a deals sync between HubSpot
//! and an app, with its schemas.

use model::apps::{ObjectKind, SyncDirection};
use model::sync::{
    ConflictRule, FieldInfo, FieldKind, FieldMapping, Outcome, PipelineInfo, PipelineMapping, SideSchema, StageInfo, StagePair,
    SyncSettings,
};

fn field(key: &str, label: &str, kind: FieldKind) -> FieldInfo {
    FieldInfo { key: key.into(), label: label.into(), kind, options: vec![], read_only: false, custom: false }
}

fn pipeline(id: &str, name: &str, stages: &[(&str, &str)]) -> PipelineInfo {
    PipelineInfo {
        id: id.into(),
        name: name.into(),
        stages: stages
            .iter()
            .map(|(id, name)| {
                let closed = match *id {
                    "closedwon" | "won" => Some(Outcome::Won),
                    _ => None,
                };
                StageInfo { id: (*id).into(), name: (*name).into(), closed }
            })
            .collect(),
    }
}

/// HubSpot's deals and an app's, each with a name, an amount and one pipeline.
pub fn schemas() -> (SideSchema, SideSchema) {
    let hub = SideSchema {
        pipelines: vec![pipeline("default", "Sales Pipeline", &[("a", "Appointment"), ("b", "Demo"), ("closedwon", "Closed Won")])],
        fields: vec![field("dealname", "Deal name", FieldKind::Text), field("amount", "Amount", FieldKind::Number)],
    };
    let app = SideSchema {
        pipelines: vec![pipeline("1", "Sales", &[("10", "Meeting"), ("won", "Won")])],
        fields: vec![field("title", "Title", FieldKind::Text), field("value", "Value", FieldKind::Number)],
    };
    (hub, app)
}

/// A deals sync: name and amount mapped both ways (within the sync's direction), Appointment ↔
/// Meeting and Closed Won ↔ Won; HubSpot's Demo is not mapped.
pub fn settings(direction: SyncDirection, rule: ConflictRule) -> SyncSettings {
    let mapping = |hub: &str, app: &str| FieldMapping {
        hubspot_property: hub.into(),
        app_field: app.into(),
        direction: SyncDirection::TwoWay,
        values: vec![],
    };
    let stage = |hub: &str, app: &str| StagePair { hubspot_stage: hub.into(), app_stage: app.into(), auto: false };
    SyncSettings {
        object: ObjectKind::Deal,
        direction,
        pipelines: vec![PipelineMapping {
            hubspot_pipeline: "default".into(),
            app_pipeline: "1".into(),
            stages: vec![stage("a", "10"), stage("closedwon", "won")],
        }],
        filters: vec![],
        conflict_rule: rule,
        fields: vec![mapping("dealname", "title"), mapping("amount", "value")],
    }
}

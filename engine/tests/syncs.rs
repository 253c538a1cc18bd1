//! Sync setup against the sandboxes: both providers' pipelines, stages and fields read live, Auto-map
//! on them, settings validated and saved as versions, on/pause/off. SQLite and Postgres.

mod common;

use std::collections::HashSet;

use common::*;
use engine::syncs::{SyncError, Syncs};
use model::apps::{ObjectKind, SyncDirection};
use model::automap::{auto_map, StageName};
use model::sync::{ConflictRule, FieldMapping, Filter, FilterOp, PipelineMapping, StagePair, SyncSettings, SyncStatus};

fn names(stages: &[model::sync::StageInfo]) -> Vec<StageName<'_>> {
    stages.iter().map(|s| StageName { id: &s.id, name: &s.name }).collect()
}

on_both_backends!(schemas_are_read_live_and_auto_mapped);
async fn schemas_are_read_live_and_auto_mapped(env: Env) -> Env {
    let syncs = Syncs::new(env.connections.clone());
    let pipedrive = env.install("pipedrive").await;
    assert!(matches!(syncs.schemas(&pipedrive).await, Err(SyncError::NoHubSpot)), "HubSpot comes first");
    let hubspot = env.install("hubspot").await;
    assert!(matches!(syncs.schemas(&hubspot).await, Err(SyncError::NotFound)), "HubSpot is not an app");

    let schemas = syncs.schemas(&pipedrive).await.unwrap();
    assert_eq!(schemas.app_name, "Pipedrive (Sandbox)");
    let sales = schemas.hubspot.pipelines.iter().find(|p| p.name == "Sales Pipeline").expect("HubSpot's default pipeline");
    assert_eq!(sales.stages.len(), 7);
    let pd_sales = schemas.app.pipelines.iter().find(|p| p.name == "Sales").expect("Pipedrive's Sales pipeline");
    let pd_names: Vec<&str> = pd_sales.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(pd_names, vec!["Qualified", "Contact Made", "Meeting Scheduled", "Proposal Made", "Negotiations Started", "Won", "Lost"]);
    assert!(schemas.hubspot.field("dealname").is_some() && schemas.hubspot.field("dealstage").is_none());
    assert!(schemas.hubspot.field("createdate").is_some_and(|f| f.read_only));
    assert!(schemas.app.fields.iter().any(|f| f.custom && f.label == "Lead source"), "custom fields are offered");

    let proposals = auto_map(&names(&sales.stages), &names(&pd_sales.stages), &HashSet::new(), &HashSet::new());
    let mapped: Vec<(String, String)> = proposals.iter().map(|p| (p.hubspot_stage.clone(), p.app_stage.clone())).collect();
    assert!(mapped.contains(&("closedwon".into(), "won".into())), "{mapped:?}");
    assert!(mapped.contains(&("appointmentscheduled".into(), pd_sales.stages[2].id.clone())), "{mapped:?}");
    env
}

on_both_backends!(settings_are_validated_versioned_and_audited);
async fn settings_are_validated_versioned_and_audited(env: Env) -> Env {
    let syncs = Syncs::new(env.connections.clone());
    env.install("hubspot").await;
    let pipedrive = env.install("pipedrive").await;
    let schemas = syncs.schemas(&pipedrive).await.unwrap();
    let (hub, app) = (&schemas.hubspot.pipelines[0], &schemas.app.pipelines[0]);
    let mut settings = SyncSettings {
        object: ObjectKind::Deal,
        direction: SyncDirection::TwoWay,
        pipelines: vec![PipelineMapping {
            hubspot_pipeline: hub.id.clone(),
            app_pipeline: app.id.clone(),
            stages: vec![StagePair { hubspot_stage: hub.stages[0].id.clone(), app_stage: app.stages[0].id.clone(), auto: false }],
        }],
        filters: vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }],
        conflict_rule: ConflictRule::DefaultToHubSpot,
        fields: vec![FieldMapping {
            hubspot_property: "dealname".into(),
            app_field: "title".into(),
            direction: SyncDirection::TwoWay,
            values: vec![],
        }],
    };
    let first = syncs.save(&env.admin, &pipedrive, &settings).await.unwrap();
    assert_eq!((first.version, first.status, first.saved_by.as_str()), (1, SyncStatus::On, "Ada Admin"));

    // An invalid change is refused with errors keyed to their controls, and stores nothing.
    let mut bad = settings.clone();
    bad.pipelines[0].stages.push(StagePair { hubspot_stage: "nope".into(), app_stage: app.stages[1].id.clone(), auto: false });
    bad.fields.push(FieldMapping { hubspot_property: "amount".into(), app_field: "title".into(), direction: SyncDirection::TwoWay, values: vec![] });
    match syncs.save(&env.admin, &pipedrive, &bad).await {
        Err(SyncError::Invalid(errors)) => {
            let keys: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(keys, vec!["pipelines.0.stages.1", "fields.1.direction", "fields.1.app_field"], "{errors:?}");
        }
        other => panic!("expected validation errors, got {other:?}"),
    }
    assert_eq!(syncs.list().await.unwrap()[0].version, 1);

    settings.conflict_rule = ConflictRule::DefaultToApp;
    let second = syncs.save(&env.admin, &pipedrive, &settings).await.unwrap();
    assert_eq!((second.id.as_str(), second.version), (first.id.as_str(), 2));
    let listed = syncs.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].settings, settings, "the settings read back exactly");

    let paused = syncs.set_status(&env.admin, &first.id, SyncStatus::Paused).await.unwrap();
    assert_eq!(paused.status, SyncStatus::Paused);
    let actions = env.audit_actions().await;
    assert_eq!(&actions[..3], &["sync.status", "sync.saved", "sync.saved"]);
    env
}

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
    assert!(matches!(syncs.schemas(&pipedrive, ObjectKind::Deal).await, Err(SyncError::NoHubSpot)), "HubSpot comes first");
    let hubspot = env.install("hubspot").await;
    assert!(matches!(syncs.schemas(&hubspot, ObjectKind::Deal).await, Err(SyncError::NotFound)), "HubSpot is not an app");

    let schemas = syncs.schemas(&pipedrive, ObjectKind::Deal).await.unwrap();
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
    let schemas = syncs.schemas(&pipedrive, ObjectKind::Deal).await.unwrap();
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
    bad.fields.push(FieldMapping {
        hubspot_property: "amount".into(),
        app_field: "title".into(),
        direction: SyncDirection::TwoWay,
        values: vec![],
    });
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

on_both_backends!(a_hubspot_pipeline_for_synced_deals_maps_one_to_one);
async fn a_hubspot_pipeline_for_synced_deals_maps_one_to_one(env: Env) -> Env {
    let syncs = Syncs::new(env.connections.clone());
    env.install("hubspot").await;
    let pipedrive = env.install("pipedrive").await;
    let created = syncs.create_hubspot_pipeline(&env.admin, &pipedrive, "1", "Sales (from Pipedrive)").await.unwrap();
    let names: Vec<&str> = created.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["Qualified", "Contact Made", "Meeting Scheduled", "Proposal Made", "Negotiations Started", "Won", "Lost"]);

    let schemas = syncs.schemas(&pipedrive, ObjectKind::Deal).await.unwrap();
    assert!(schemas.hubspot.pipeline(&created.id).is_some(), "HubSpot now lists it");
    let mut mapping = PipelineMapping { hubspot_pipeline: created.id.clone(), app_pipeline: "1".into(), stages: vec![] };
    assert_eq!(mapping.auto_map(&schemas), 7, "every stage pairs with its namesake");

    match syncs.create_hubspot_pipeline(&env.admin, &pipedrive, "1", "sales (FROM pipedrive)").await {
        Err(SyncError::Invalid(errors)) => assert_eq!(errors[0].field, "label"),
        other => panic!("a second pipeline of that name: {other:?}"),
    }
    assert_eq!(env.audit_actions().await[0], "hubspot.pipeline_created");
    env
}

on_both_backends!(stage_counts_say_what_unmapped_stages_hold_back);
async fn stage_counts_say_what_unmapped_stages_hold_back(env: Env) -> Env {
    let syncs = Syncs::new(env.connections.clone());
    env.install("hubspot").await;
    let pipedrive = env.install("pipedrive").await;
    for (name, stage) in [("A", "closedwon"), ("B", "closedwon"), ("C", "appointmentscheduled")] {
        let deal = serde_json::json!({"properties": {"dealname": name, "pipeline": "default", "dealstage": stage}});
        let r = env.http.post(format!("{}/_sandbox/objects/deals", env.hubspot.url())).json(&deal).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    for (title, fields) in [
        ("X", serde_json::json!({"title": "X", "pipeline_id": 1, "stage_id": 12})),
        ("Y", serde_json::json!({"title": "Y", "pipeline_id": 1, "stage_id": 12})),
        ("Z", serde_json::json!({"title": "Z", "pipeline_id": 1, "stage_id": 13, "status": "won"})),
    ] {
        let r = env
            .http
            .post(format!("{}/_sandbox/deals", env.pipedrive.url()))
            .json(&serde_json::json!({"fields": fields}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{title}: {}", r.text().await.unwrap());
    }
    let counts = syncs.stage_counts(&pipedrive, "default", "1").await.unwrap();
    assert_eq!(counts.hubspot_count("closedwon"), 2);
    assert_eq!(counts.hubspot_count("appointmentscheduled"), 1);
    assert_eq!(counts.hubspot_count("contractsent"), 0);
    assert_eq!(counts.app_count("12"), 2);
    assert_eq!(counts.app_count("won"), 1, "won deals count under Won, whatever their stage");
    assert_eq!(counts.app_count("13"), 0);
    env
}

/// The setup's stage counts read HubSpot through the connection's limiter too: while a sync
/// keeps HubSpot's ten-second window full, the counts wait for room instead of failing with 429.
/// Before, they were sent around the limiter and gave up after a few tries (failed here after
/// 19 s: "HubSpot answered 429"), and a deal schema took one place in the limiter's window for
/// its two calls, so with two places left it never got both (it failed after 30 tries). One
/// backend: the store plays no part, and the test waits out two windows (about 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_counts_wait_for_hubspots_limit_instead_of_failing() {
    with_env(engine::store::Backend::Sqlite, |env: Env| async move {
        use std::sync::Arc;
        let syncs = Syncs::new(env.connections.clone());
        let hubspot = env.install("hubspot").await;
        let pipedrive = env.install("pipedrive").await;
        let token = env.connections.access_token(&hubspot).await.unwrap();
        let pipeline = serde_json::json!({"label": "One stage", "displayOrder": 5, "stages": [
            {"label": "Signed", "displayOrder": 0, "metadata": {"probability": "1.0", "isClosed": "true"}}
        ]});
        let r = env
            .http
            .post(format!("{}/crm/v3/pipelines/deals", env.hubspot.url()))
            .bearer_auth(&token.token)
            .json(&pipeline)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let created: serde_json::Value = r.json().await.unwrap();
        let (pipeline_id, stage_id) =
            (created["id"].as_str().unwrap().to_string(), created["stages"][0]["id"].as_str().unwrap().to_string());
        let r =
            env.http.put(format!("{}/_sandbox/rate-limit", env.hubspot.url())).json(&serde_json::json!({"limit": 2})).send().await.unwrap();
        assert_eq!(r.status(), 204);
        // Tandem may use the whole window here, so that the engine's calls fill it.
        env.connections.set_api_share(&env.admin, &hubspot, 100).await.unwrap();
        // The engine's calls fill the window, through the connection's limiter.
        let stats = Arc::new(engine::runner::api::Stats::default());
        let limiter = env.connections.limiter(&hubspot);
        let api = engine::runner::api::Api::open(&env.connections, &hubspot, engine::connectors::Provider::HUBSPOT, limiter, stats)
            .await
            .unwrap();
        for _ in 0..2 {
            api.get("/crm/v3/owners", &[]).await.unwrap();
        }
        let counts = syncs.stage_counts(&pipedrive, &pipeline_id, "1").await;
        assert!(counts.is_ok(), "the counts wait for room in HubSpot's window: {:?}", counts.err());
        assert_eq!(counts.unwrap().hubspot, vec![(stage_id, 0)]);
        env
    })
    .await
}

on_both_backends!(contacts_and_companies_have_their_own_fields);
async fn contacts_and_companies_have_their_own_fields(env: Env) -> Env {
    let syncs = Syncs::new(env.connections.clone());
    env.install("hubspot").await;
    let pipedrive = env.install("pipedrive").await;

    let contacts = syncs.schemas(&pipedrive, ObjectKind::Contact).await.unwrap();
    assert!(contacts.hubspot.pipelines.is_empty() && contacts.app.pipelines.is_empty());
    assert!(contacts.hubspot.field("email").is_some() && contacts.app.field("email").is_some());
    assert!(contacts.app.fields.iter().any(|f| f.label == "Contact type" && f.custom && !f.options.is_empty()));
    let settings = SyncSettings::new_for(ObjectKind::Contact, &contacts);
    let pairs: Vec<(&str, &str)> = settings.fields.iter().map(|m| (m.hubspot_property.as_str(), m.app_field.as_str())).collect();
    assert_eq!(
        pairs,
        vec![
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("email", "email"),
            ("phone", "phone"),
            ("hubspot_owner_id", "owner_id")
        ]
    );
    let saved = syncs.save(&env.admin, &pipedrive, &settings).await.unwrap();
    assert_eq!((saved.version, saved.settings.object), (1, ObjectKind::Contact));

    let companies = syncs.schemas(&pipedrive, ObjectKind::Company).await.unwrap();
    let settings = SyncSettings::new_for(ObjectKind::Company, &companies);
    let pairs: Vec<(&str, &str)> = settings.fields.iter().map(|m| (m.hubspot_property.as_str(), m.app_field.as_str())).collect();
    // Companies match on their domain: HubSpot's domain pairs with Pipedrive's website.
    assert_eq!(pairs[..4], [("name", "name"), ("domain", "website"), ("address", "address"), ("hubspot_owner_id", "owner_id")]);
    assert!(pairs.iter().any(|(h, a)| *h == "industry" && a.len() == 40), "the custom Industry field pairs with HubSpot's: {pairs:?}");
    syncs.save(&env.admin, &pipedrive, &settings).await.unwrap();
    assert_eq!(syncs.list().await.unwrap().len(), 2);
    env
}

on_both_backends!(setup_reads_wait_for_hubspots_limit_instead_of_failing);
/// While Tandem's engine keeps HubSpot's ten-second window full (an initial sync does), an admin
/// setting up another sync reads both schemas through the same limiter: the setup waits for room
/// in the window instead of failing with HubSpot's 429 ("could not be read"). Seen in the browser
/// suite: the contacts setup failed while the deals sync's initial run was under way.
async fn setup_reads_wait_for_hubspots_limit_instead_of_failing(env: Env) -> Env {
    use std::sync::Arc;
    let syncs = Syncs::new(env.connections.clone());
    let hubspot = env.install("hubspot").await;
    let pipedrive = env.install("pipedrive").await;
    let r = env.http.put(format!("{}/_sandbox/rate-limit", env.hubspot.url())).json(&serde_json::json!({"limit": 4})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Tandem may use the whole window here, so that the engine's calls fill it.
    env.connections.set_api_share(&env.admin, &hubspot, 100).await.unwrap();
    // The engine's calls fill the window, through the connection's limiter.
    let stats = Arc::new(engine::runner::api::Stats::default());
    let limiter = env.connections.limiter(&hubspot);
    let api =
        engine::runner::api::Api::open(&env.connections, &hubspot, engine::connectors::Provider::HUBSPOT, limiter, stats).await.unwrap();
    for _ in 0..4 {
        api.get("/crm/v3/owners", &[]).await.unwrap();
    }
    let schemas = syncs.schemas(&pipedrive, ObjectKind::Contact).await;
    assert!(schemas.is_ok(), "the setup waits for room in HubSpot's window: {:?}", schemas.err());
    assert!(schemas.unwrap().hubspot.field("email").is_some());
    env
}

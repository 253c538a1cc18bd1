//! The sync engine against both sandboxes over HTTP, on SQLite and Postgres: the initial sync both
//! ways, incremental changes, conflicts each way, unmapped stages, filters, deletions never
//! propagated, injected 429 / 500 / dropped connections, token expiry mid-run, and recovery of a
//! create interrupted before Tandem recorded it.

mod common;

use std::collections::HashMap;

use common::deals::*;
use common::*;
use engine::runner::{Engine, EngineConfig, Trigger};
use engine::syncs::Syncs;
use model::apps::{ObjectKind, SyncDirection};
use model::merge::Side;
use model::states::{EventKind, RecordState, RunOutcome, RunTrigger};
use model::sync::{ConflictRule, Filter, FilterOp, SyncSettings};
use serde_json::{json, Value};

on_both_backends!(the_initial_sync_creates_each_deal_once_on_the_other_side);
async fn the_initial_sync_creates_each_deal_once_on_the_other_side(env: Env) -> Env {
    // Before the sync exists: two HubSpot deals in mapped stages, one in a stage left unmapped;
    // Pipedrive deals above and below the filter.
    let sync_probe = set_up(&env, |s, _| s.filters.clear()).await;
    let meeting = pd_stage(&sync_probe, "Meeting Scheduled");
    env.hs_create(json!({"dealname": "Acme renewal", "amount": "1500.00", "pipeline": "default", "dealstage": "appointmentscheduled", "closedate": "2027-01-31"}), None).await;
    env.hs_create(json!({"dealname": "Globex expansion", "amount": "99000", "pipeline": "default", "dealstage": "closedwon"}), None).await;
    env.hs_create(json!({"dealname": "Initech pilot", "amount": "10", "pipeline": "default", "dealstage": "contractsent"}), None).await;
    env.pd_create(json!({"title": "Umbrella deal", "value": 5000, "pipeline_id": 1, "stage_id": meeting.parse::<u64>().unwrap()}), None)
        .await;
    env.pd_create(json!({"title": "Tiny deal", "value": 50, "pipeline_id": 1, "stage_id": meeting.parse::<u64>().unwrap()}), None).await;

    // The sync as saved: contract sent unmapped, Pipedrive deals over 1,000 only.
    let syncs = Syncs::new(env.connections.clone());
    let mut settings = SyncSettings::new_for(ObjectKind::Deal, &sync_probe.schemas);
    settings.pipelines[0].set_stage("contractsent", None);
    settings.filters = vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }];
    syncs.save(&env.admin, &sync_probe.pipedrive, &settings).await.unwrap();
    let sync = sync_probe;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.trigger, RunTrigger::Initial);
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{:?}", first.message);
    assert_eq!((first.created_in_app, first.created_in_hub), (2, 1), "{first:?}");

    let pd = env.pd_deals(&sync).await;
    let acme = &pd["Acme renewal"];
    assert_eq!(acme["value"].as_f64(), Some(1500.0));
    assert_eq!(acme["expected_close_date"], "2027-01-31");
    assert_eq!(acme["stage_id"].to_string(), meeting, "appointment scheduled maps to Meeting Scheduled");
    assert_eq!(pd["Globex expansion"]["status"], "won", "closed won maps to Won");
    assert!(!pd.contains_key("Initech pilot"), "a deal in an unmapped stage stays where it is");

    let hs = env.hs_deals(&sync).await;
    let umbrella = &hs["Umbrella deal"].1;
    assert_eq!(umbrella["amount"], "5000");
    assert_eq!(umbrella["dealstage"], "appointmentscheduled");
    assert!(!hs.contains_key("Tiny deal"), "a deal that fails the filter is not synced");

    let rows = records(&env, &sync).await;
    let excluded: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.state == RecordState::Excluded)
        .map(|r| (r.name.as_str(), r.reason.map(model::states::RecordReason::as_str).unwrap()))
        .collect();
    assert_eq!(excluded.len(), 2);
    assert!(excluded.contains(&("Initech pilot", "unmapped_stage")) && excluded.contains(&("Tiny deal", "filter")), "{excluded:?}");
    assert_eq!(rows.iter().filter(|r| r.state == RecordState::Linked).count(), 3);

    // Nothing changed: a second run writes nothing and creates no copies.
    let second = run(&engine, &sync).await;
    assert_eq!(second.trigger, RunTrigger::Manual);
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");
    assert_eq!(env.pd_deals(&sync).await.len(), 4);
    assert_eq!(env.hs_deals(&sync).await.len(), 4);

    // Moving the excluded deal into a mapped stage syncs it then.
    let initech = &hs["Initech pilot"].0;
    env.hs_edit(initech, json!({"dealstage": "qualifiedtobuy"}), None).await;
    let third = run(&engine, &sync).await;
    assert_eq!(third.created_in_app, 1, "{third:?}");
    assert!(env.pd_deals(&sync).await.contains_key("Initech pilot"));
    env
}

on_both_backends!(a_field_changed_on_both_sides_is_timed_by_its_own_history);
/// HubSpot keeps each property's history: when both sides changed the amount more than five
/// minutes apart, the side that changed the amount last wins, even if the HubSpot deal changed
/// later in another field.
async fn a_field_changed_on_both_sides_is_timed_by_its_own_history(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let hs_id = env
        .hs_create(json!({"dealname": "Timing", "amount": "100", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let pd_id = env.pd_deals(&sync).await["Timing"]["id"].to_string();
    let now = model_now();
    // HubSpot's amount first, Pipedrive's six minutes later, then HubSpot's close date.
    env.hs_edit(&hs_id, json!({"amount": "200"}), Some(now + MINUTE)).await;
    env.pd_edit(&pd_id, json!({"value": 300}), Some(now + 7 * MINUTE)).await;
    env.hs_edit(&hs_id, json!({"closedate": "2027-03-31"}), Some(now + 13 * MINUTE)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 0, "six minutes apart: the later change wins, no conflict rule: {r:?}");
    let hs = env.hs_deals(&sync).await["Timing"].1.clone();
    assert_eq!(hs["amount"], "300", "Pipedrive changed the amount last");
    let pd = &env.pd_deals(&sync).await["Timing"];
    assert_eq!((pd["value"].as_f64(), pd["expected_close_date"].as_str()), (Some(300.0), Some("2027-03-31")));
    env
}

on_both_backends!(a_pipedrive_field_is_timed_by_the_deals_changelog);
/// Pipedrive keeps a changelog per deal: when both sides changed the amount more than five
/// minutes apart, HubSpot's later amount wins even though the Pipedrive deal changed later still,
/// in its title (timed by the deal's update time alone, Pipedrive's older value won).
async fn a_pipedrive_field_is_timed_by_the_deals_changelog(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let hs_id = env
        .hs_create(json!({"dealname": "Changelog", "amount": "100", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let pd_id = env.pd_deals(&sync).await["Changelog"]["id"].to_string();
    let now = model_now();
    // Pipedrive's value first, HubSpot's amount six minutes later, then Pipedrive's title.
    env.pd_edit(&pd_id, json!({"value": 200}), Some(now + MINUTE)).await;
    env.hs_edit(&hs_id, json!({"amount": "300"}), Some(now + 7 * MINUTE)).await;
    env.pd_edit(&pd_id, json!({"title": "Changelog (renamed)"}), Some(now + 13 * MINUTE)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 0, "six minutes apart: the later change wins, no conflict rule: {r:?}");
    let pd = &env.pd_deals(&sync).await["Changelog (renamed)"];
    assert_eq!(pd["value"].as_f64(), Some(300.0), "HubSpot changed the amount last: {pd}");
    let hs = env.hs_deals(&sync).await["Changelog (renamed)"].1.clone();
    assert_eq!(hs["amount"], "300");
    env
}

on_both_backends!(changes_flow_field_by_field_and_conflicts_follow_the_rule);
async fn changes_flow_field_by_field_and_conflicts_follow_the_rule(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let hs_id =
        env.hs_create(json!({"dealname": "Acme", "amount": "100", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let pd_id = env.pd_deals(&sync).await["Acme"]["id"].to_string();

    // One side changes one field, the other side another: both arrive, neither overwrites.
    let now = model_now();
    env.hs_edit(&hs_id, json!({"amount": "200"}), Some(now)).await;
    env.pd_edit(&pd_id, json!({"expected_close_date": "2027-03-01"}), Some(now)).await;
    let r = run(&engine, &sync).await;
    assert_eq!((r.updated_in_app, r.updated_in_hub, r.conflicts), (1, 1, 0), "{r:?} {:?}", records(&env, &sync).await);
    let pd = &env.pd_deals(&sync).await["Acme"];
    assert_eq!((pd["value"].as_f64(), pd["expected_close_date"].as_str()), (Some(200.0), Some("2027-03-01")));
    let hs = env.hs_deals(&sync).await["Acme"].1.clone();
    assert_eq!(model::translate::canonical_date(hs["closedate"].as_str().unwrap()).as_deref(), Some("2027-03-01"));

    // The same field on both sides two minutes apart: a conflict, HubSpot wins by the rule.
    // (Edits are dated ahead of the clock so both lie after the cursors.)
    let base = model_now();
    env.hs_edit(&hs_id, json!({"amount": "300"}), Some(base + MINUTE)).await;
    env.pd_edit(&pd_id, json!({"value": 350}), Some(base + 3 * MINUTE)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 1, "{r:?}");
    assert_eq!(env.pd_deals(&sync).await["Acme"]["value"].as_f64(), Some(300.0));
    let record = records(&env, &sync).await.into_iter().find(|r| r.name == "Acme").unwrap();
    let events = env.connections.store().record_events(&record.id).await.unwrap();
    let conflict = events.iter().find(|e| e.kind == EventKind::Conflict).expect("the conflict is recorded");
    assert_eq!(conflict.rule.as_deref(), Some("Default to HubSpot"));
    let both: Value = serde_json::from_str(&conflict.changes).unwrap();
    assert_eq!(
        (both[0]["hubspot"].as_str(), both[0]["app"].as_str(), both[0]["winner"].as_str()),
        (Some("300"), Some("350"), Some("hubspot"))
    );

    // Ten minutes apart: no conflict, the later change wins (here Pipedrive's).
    env.hs_edit(&hs_id, json!({"amount": "400"}), Some(base + 10 * MINUTE)).await;
    env.pd_edit(&pd_id, json!({"value": 450}), Some(base + 20 * MINUTE)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 0);
    assert_eq!(env.hs_deals(&sync).await["Acme"].1["amount"], "450");
    env
}

fn model_now() -> i64 {
    engine::clock::now_ms()
}

on_both_backends!(deletions_are_recorded_never_propagated);
async fn deletions_are_recorded_never_propagated(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    env.hs_create(json!({"dealname": "Doomed", "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let pd_id = env.pd_deals(&sync).await["Doomed"]["id"].to_string();
    let token = env.token(&sync.pipedrive).await;
    let r = env.http.delete(format!("{}/api/v2/deals/{pd_id}", env.pipedrive.url())).bearer_auth(&token).send().await.unwrap();
    assert!(r.status().is_success());
    // HubSpot's deal changes; its counterpart is gone.
    let hs_id = env.hs_deals(&sync).await["Doomed"].0.clone();
    env.hs_edit(&hs_id, json!({"amount": "2"}), None).await;
    let r = run(&engine, &sync).await;
    assert_eq!((r.created_in_app, r.updated_in_app), (0, 0), "the deal is not recreated: {r:?}");
    assert!(env.hs_deals(&sync).await.contains_key("Doomed"), "HubSpot keeps its deal");
    let row = records(&env, &sync).await.pop().unwrap();
    assert_eq!((row.state.as_str(), row.reason.map(model::states::RecordReason::as_str)), ("excluded", Some("deleted_in_app")));
    let events = env.connections.store().record_events(&row.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Deleted && e.side == Side::App), "{events:?}");
    env
}

on_both_backends!(one_way_syncs_never_write_back);
async fn one_way_syncs_never_write_back(env: Env) -> Env {
    let sync = set_up(&env, |s, _| {
        s.direction = SyncDirection::ToApp;
        for f in &mut s.fields {
            f.direction = SyncDirection::ToApp;
        }
    })
    .await;
    let meeting: u64 = pd_stage(&sync, "Meeting Scheduled").parse().unwrap();
    env.hs_create(json!({"dealname": "Outbound", "amount": "10", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    env.pd_create(json!({"title": "Stays in Pipedrive", "value": 5, "pipeline_id": 1, "stage_id": meeting}), None).await;
    let engine = engine(&env);
    let r = run(&engine, &sync).await;
    assert_eq!((r.created_in_app, r.created_in_hub), (1, 0), "{r:?}");
    // The engine registered its Pipedrive webhook, with credentials only Tandem can derive.
    let token = env.token(&sync.pipedrive).await;
    let hooks: Value =
        env.http.get(format!("{}/api/v1/webhooks", env.pipedrive.url())).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let url = format!("{TANDEM_URL}/webhooks/pipedrive/{}", sync.pipedrive);
    // One webhook per object: deals, and persons and organizations for contacts and companies syncs.
    let mut objects: Vec<(&str, &str)> = hooks["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["subscription_url"] == url.as_str())
        .map(|h| (h["event_object"].as_str().unwrap_or_default(), h["version"].as_str().unwrap_or_default()))
        .collect();
    objects.sort();
    assert_eq!(objects, vec![("deal", "2.0"), ("organization", "2.0"), ("person", "2.0")], "{hooks}");
    let pd_id = env.pd_deals(&sync).await["Outbound"]["id"].to_string();
    env.pd_edit(&pd_id, json!({"value": 999}), None).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.updated_in_hub, 0);
    assert_eq!(env.hs_deals(&sync).await["Outbound"].1["amount"], "10");
    assert!(!env.hs_deals(&sync).await.contains_key("Stays in Pipedrive"));
    env
}

on_both_backends!(faults_and_expired_tokens_cost_time_not_records);
async fn faults_and_expired_tokens_cost_time_not_records(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    for i in 0..120 {
        env.hs_create(
            json!({"dealname": format!("HS {i:03}"), "amount": i.to_string(), "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    let meeting: u64 = pd_stage(&sync, "Meeting Scheduled").parse().unwrap();
    for i in 0..60 {
        env.pd_create(json!({"title": format!("PD {i:03}"), "value": i, "pipeline_id": 1, "stage_id": meeting}), None).await;
    }
    env.fault_both().await;
    let engine = engine(&env);
    // Runs until everything is linked (a dropped create is settled by the next run's recovery).
    let mut runs = 0;
    loop {
        runs += 1;
        let _ = engine.run_sync(&sync.id, Trigger::Manual).await.expect("run");
        let rows = records(&env, &sync).await;
        if rows.len() == 180 && rows.iter().all(|r| r.state == RecordState::Linked) {
            break;
        }
        assert!(
            runs < 25,
            "not converged after {runs} runs: {:?}",
            rows.iter().filter(|r| r.state != RecordState::Linked).take(5).collect::<Vec<_>>()
        );
    }
    env.clear_faults().await;
    // Exactly one copy of each deal on each side (the helpers fail on a duplicate name).
    assert_eq!(env.pd_deals(&sync).await.len(), 180);
    assert_eq!(env.hs_deals(&sync).await.len(), 180);
    assert!(env.refreshes(&env.hubspot).await >= 1 && env.refreshes(&env.pipedrive).await >= 1, "expired tokens were refreshed");
    env
}

on_both_backends!(a_create_interrupted_before_it_was_recorded_is_found_not_repeated);
async fn a_create_interrupted_before_it_was_recorded_is_found_not_repeated(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    let hs_id = env
        .hs_create(json!({"dealname": "Half done", "amount": "7", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let store = env.connections.store();
    let mut row = records(&env, &sync).await.pop().unwrap();
    let pd_id = row.app_id.clone().unwrap();
    // As if Tandem had died after Pipedrive created the deal and before the link was committed.
    row.app_id = None;
    row.state = RecordState::Creating;
    row.create_on = Some("app".into());
    store.save_records(&[row.clone()]).await.unwrap();
    // Meanwhile each side changed a different field, Pipedrive's later: both changes must arrive
    // (record times alone would let Pipedrive's newer deal win the amount too).
    let now = model_now();
    env.hs_edit(&hs_id, json!({"amount": "8"}), Some(now)).await;
    env.pd_edit(&pd_id, json!({"expected_close_date": "2027-05-05"}), Some(now + 2_000)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.created_in_app, 0, "{r:?}");
    let pd = env.pd_deals(&sync).await;
    assert_eq!(pd.len(), 1, "no second copy");
    assert_eq!(pd["Half done"]["value"].as_f64(), Some(8.0), "HubSpot's change arrived");
    let hs = env.hs_deals(&sync).await["Half done"].1.clone();
    assert_eq!(
        model::translate::canonical_date(hs["closedate"].as_str().unwrap_or_default()).as_deref(),
        Some("2027-05-05"),
        "and Pipedrive's"
    );
    let linked = records(&env, &sync).await.pop().unwrap();
    assert_eq!((linked.state.as_str(), linked.app_id.as_deref()), ("linked", Some(pd_id.as_str())), "{linked:?}");
    env
}

on_both_backends!(one_runner_per_sync_and_an_expired_lease_is_taken_over);
async fn one_runner_per_sync_and_an_expired_lease_is_taken_over(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    for i in 0..30 {
        env.hs_create(
            json!({"dealname": format!("Shared {i}"), "amount": "5", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    // Two instances on the same database race for the same sync: one runs it, the other stands by.
    let (a, b) = (engine(&env), Engine::new(env.other_instance.clone(), EngineConfig::default()));
    let (ra, rb) = tokio::join!(a.run_sync(&sync.id, Trigger::Manual), b.run_sync(&sync.id, Trigger::Manual));
    let ran = [ra.unwrap(), rb.unwrap()].iter().filter(|r| r.is_some()).count();
    assert_eq!(ran, 1, "exactly one instance ran the sync");
    assert_eq!(env.pd_deals(&sync).await.len(), 30, "each deal once");

    // An instance that died holding the lease: once it expires, another takes the sync over.
    let store = env.connections.store();
    let now = model_now();
    assert!(store.claim_sync(&sync.id, "dead-instance", now, now + 60_000).await.unwrap());
    assert!(b.run_sync(&sync.id, Trigger::Manual).await.unwrap().is_none(), "a live lease is respected");
    assert!(store.claim_sync(&sync.id, "dead-instance", now - 120_000, now - 60_000).await.unwrap());
    let taken = b.run_sync(&sync.id, Trigger::Manual).await.unwrap();
    assert!(taken.is_some(), "an expired lease is taken over");
    env
}

on_both_backends!(a_burst_of_changes_larger_than_a_search_window_is_read_once);
async fn a_burst_of_changes_larger_than_a_search_window_is_read_once(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    // A search window of 50 records stands for HubSpot's 10,000-result cap.
    let engine = Engine::new(env.connections.clone(), EngineConfig { search_window: 50, ..EngineConfig::default() });
    run(&engine, &sync).await;
    // 450 deals changed within a second: more than a window, all inside the cursor's margin.
    for i in 0..450 {
        env.hs_create(
            json!({"dealname": format!("Burst {i:03}"), "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), run(&engine, &sync))
        .await
        .expect("the run ends (it used to re-read the burst forever)");
    assert_eq!(r.created_in_app, 450, "{r:?}");
    // Each deal is read back once from Pipedrive (Tandem's own creates), plus the few at the
    // edges of each new search window.
    assert!(r.skipped <= 450 + 20, "the burst was not read again and again: {r:?}");
    assert_eq!(env.pd_deals(&sync).await.len(), 450);
    env
}

on_both_backends!(a_settings_change_rereads_every_deal_once);
async fn a_settings_change_rereads_every_deal_once(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    let meeting: u64 = pd_stage(&sync, "Meeting Scheduled").parse().unwrap();
    env.pd_create(json!({"title": "Small", "value": 50, "pipeline_id": 1, "stage_id": meeting}), None).await;
    env.pd_create(json!({"title": "Large", "value": 5000, "pipeline_id": 1, "stage_id": meeting}), None).await;
    let engine = engine(&env);
    assert_eq!(run(&engine, &sync).await.created_in_hub, 2);
    // A filter added later applies to deals already synced, though they did not change.
    let syncs = Syncs::new(env.connections.clone());
    let mut settings = syncs.list().await.unwrap().pop().unwrap().settings;
    settings.filters = vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }];
    syncs.save(&env.admin, &sync.pipedrive, &settings).await.unwrap();
    run(&engine, &sync).await;
    let states: HashMap<String, (RecordState, Option<String>)> =
        records(&env, &sync).await.into_iter().map(|r| (r.name, (r.state, r.reason.map(String::from)))).collect();
    assert_eq!(states["Small"], (RecordState::Excluded, Some("filter".to_string())), "{states:?}");
    assert_eq!(states["Large"].0, RecordState::Linked);
    env
}

on_both_backends!(the_run_after_the_initial_sync_is_due_at_once_and_reads_what_changed_meanwhile);
/// The initial run ends once every deal exists on both sides; the run reading what changed while
/// it ran (from the cursor set at its start) follows at once, not an interval later.
async fn the_run_after_the_initial_sync_is_due_at_once_and_reads_what_changed_meanwhile(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let acme = env
        .hs_create(json!({"dealname": "Acme renewal", "amount": "1500", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!((first.trigger.as_str(), first.outcome.as_str(), first.created_in_app), ("initial", "succeeded", 1), "{first:?}");

    // A HubSpot user changed the amount while the initial run was under way.
    env.hs_edit(&acme, json!({"amount": "2500"}), Some(first.started_at + 1)).await;
    assert_eq!(engine.run_due(Trigger::Scheduled).await.unwrap(), 1, "the next run is due at once");
    let runs = env.connections.store().runs(&sync.id, 10).await.unwrap();
    let next = runs.iter().find(|r| r.id != first.id).expect("a second run");
    assert_eq!((next.trigger.as_str(), next.updated_in_app), ("scheduled", 1), "{next:?}");
    assert_eq!(env.pd_deals(&sync).await["Acme renewal"]["value"].as_f64(), Some(2500.0));

    // After that, the usual interval.
    assert_eq!(engine.run_due(Trigger::Scheduled).await.unwrap(), 0, "not due again for 30 s");
    env
}

on_both_backends!(an_initial_sync_over_many_pages_creates_every_deal_once);
/// The initial sync reads HubSpot 100 deals a page and decides and commits them several pages at
/// a time: every deal of every page arrives, once, and the run says so.
async fn an_initial_sync_over_many_pages_creates_every_deal_once(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    // Seven pages of HubSpot's 100: a group of five, then a group of two (the last one short).
    for i in 0..650 {
        env.hs_create(
            json!({"dealname": format!("Deal {i:03}"), "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    let r = run(&engine(&env), &sync).await;
    assert_eq!((r.created_in_app, r.failed_to_app), (650, 0), "{r:?}");
    let deals = env.pd_deals(&sync).await;
    // `pd_deals` refuses two Pipedrive deals with one title: no page was created twice.
    assert_eq!(deals.len(), 650, "a Pipedrive deal for every HubSpot deal");
    assert!((0..650).all(|i| deals.contains_key(&format!("Deal {i:03}"))), "every page arrived");
    let linked = records(&env, &sync).await.into_iter().filter(|r| r.state == RecordState::Linked).count();
    assert_eq!(linked, 650);
    env
}

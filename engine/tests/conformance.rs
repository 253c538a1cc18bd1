//! One conformance suite for every app HubSpot syncs with: each test runs against Pipedrive and
//! Zoho CRM (through [`common::apps::App`]), on SQLite and Postgres, over HTTP to the sandboxes:
//! the initial sync both ways with stages mapped, filters and unmapped stages; changes field by
//! field and conflicts by the rule or by each field's history; deletions recorded, never
//! propagated; one-way syncs; faults and expired tokens; a create interrupted before Tandem
//! recorded it; contacts matched on email and companies on domain; a deal's contact and company
//! on both sides. What only one app does is tested in that app's own file.

mod common;

use common::apps::{App, DealFields, PersonFields, Stage};
use common::deals::*;
use common::*;
use engine::runner::Trigger;
use model::apps::{ObjectKind, SyncDirection};
use model::merge::Side;
use model::states::{EventKind, RecordReason, RecordState, RunOutcome, RunTrigger};
use model::sync::{ConflictRule, Filter, FilterOp};
use serde_json::{json, Value};

fn deal<'a>(name: &'a str, amount: f64, stage: Stage) -> DealFields<'a> {
    DealFields { name: Some(name), amount: Some(amount), stage: Some(stage), ..Default::default() }
}

fn person<'a>(first: &'a str, last: &'a str, email: &'a str) -> PersonFields<'a> {
    PersonFields { first: Some(first), last: Some(last), email: Some(email), ..Default::default() }
}

fn hs_deal(name: &str, amount: &str, stage: &str) -> Value {
    json!({"dealname": name, "amount": amount, "pipeline": "default", "dealstage": stage})
}

fn now() -> i64 {
    engine::clock::now_ms()
}

/// No key (other than blank) is held by two records on one side.
fn once_each<T: std::fmt::Debug>(side: &str, records: &std::collections::HashMap<String, Vec<T>>, except: &[&str]) {
    for (key, list) in records {
        if !key.is_empty() && !except.contains(&key.as_str()) {
            assert_eq!(list.len(), 1, "{side} holds {key} more than once: {list:?}");
        }
    }
}

conformance!(the_initial_sync_creates_each_deal_once_on_the_other_side);
async fn the_initial_sync_creates_each_deal_once_on_the_other_side(env: Env, app: App) -> Env {
    // The sync as saved: contract sent left unmapped, the app's deals over 1,000 only.
    let sync = app
        .set_up(&env, ObjectKind::Deal, |s, _| {
            s.filters = vec![Filter { field: app.amount_field().into(), op: FilterOp::GreaterThan, value: "1000".into() }];
        })
        .await;
    // Two HubSpot deals in mapped stages, one in a stage left unmapped; the app's deals above and
    // below the filter, and one in a stage no HubSpot stage maps to.
    env.hs_create(json!({"dealname": "Acme renewal", "amount": "1500.00", "pipeline": "default", "dealstage": "appointmentscheduled", "closedate": "2027-01-31"}), None).await;
    env.hs_create(hs_deal("Globex expansion", "99000", "closedwon"), None).await;
    env.hs_create(hs_deal("Initech pilot", "10", "contractsent"), None).await;
    app.create_deal(&env, &sync, deal("Umbrella deal", 5000.0, Stage::Second), None).await;
    app.create_deal(&env, &sync, deal("Tiny deal", 50.0, Stage::First), None).await;
    app.create_deal(&env, &sync, deal("Parked deal", 7000.0, Stage::Unmapped), None).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.trigger, RunTrigger::Initial);
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{:?}", first.message);
    assert_eq!((first.created_in_app, first.created_in_hub), (2, 1), "{first:?}");

    let deals = app.deals(&env, &sync).await;
    let acme = &deals["Acme renewal"];
    assert_eq!((acme.amount, acme.close_date.as_deref()), (Some(1500.0), Some("2027-01-31")));
    assert_eq!(acme.stage, app.stage_name(Stage::First), "appointment scheduled maps to the first stage");
    assert_eq!(deals["Globex expansion"].stage, app.stage_name(Stage::Won), "closed won maps to won");
    assert!(!deals.contains_key("Initech pilot"), "a deal in an unmapped stage stays where it is");

    let hs = env.hs_deals(&sync).await;
    let umbrella = &hs["Umbrella deal"].1;
    assert_eq!((umbrella["amount"].as_str(), umbrella["dealstage"].as_str()), (Some("5000"), Some("qualifiedtobuy")));
    assert!(!hs.contains_key("Tiny deal"), "a deal that fails the filter is not synced");
    assert!(!hs.contains_key("Parked deal"), "a deal in an app stage no HubSpot stage maps to is not synced");

    let rows = records(&env, &sync).await;
    let mut excluded: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.state == RecordState::Excluded)
        .map(|r| (r.name.as_str(), r.reason.map(RecordReason::as_str).unwrap()))
        .collect();
    excluded.sort();
    assert_eq!(excluded, [("Initech pilot", "unmapped_stage"), ("Parked deal", "unmapped_stage"), ("Tiny deal", "filter")]);
    assert_eq!(rows.iter().filter(|r| r.state == RecordState::Linked).count(), 3);

    // Nothing changed: a second run writes nothing and creates no copies.
    let second = run(&engine, &sync).await;
    assert_eq!(second.trigger, RunTrigger::Manual);
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");
    assert_eq!(app.deals(&env, &sync).await.len(), 5);
    assert_eq!(env.hs_deals(&sync).await.len(), 4);

    // Moving the excluded deal into a mapped stage syncs it then.
    env.hs_edit(&hs["Initech pilot"].0, json!({"dealstage": "qualifiedtobuy"}), None).await;
    let third = run(&engine, &sync).await;
    assert_eq!(third.created_in_app, 1, "{third:?}");
    assert_eq!(app.deals(&env, &sync).await["Initech pilot"].stage, app.stage_name(Stage::Second));
    env
}

conformance!(changes_flow_field_by_field_and_conflicts_follow_the_rule);
async fn changes_flow_field_by_field_and_conflicts_follow_the_rule(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Deal, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let hs_id = env.hs_create(hs_deal("Acme", "100", "appointmentscheduled"), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let app_id = app.deals(&env, &sync).await["Acme"].id.clone();

    // One side changes one field, the other side another: both arrive, neither overwrites.
    let at = now();
    env.hs_edit(&hs_id, json!({"amount": "200"}), Some(at)).await;
    app.edit_deal(&env, &sync, &app_id, DealFields { close_date: Some("2027-03-01"), ..Default::default() }, at).await;
    let r = run(&engine, &sync).await;
    assert_eq!((r.updated_in_app, r.updated_in_hub, r.conflicts), (1, 1, 0), "{r:?} {:?}", records(&env, &sync).await);
    let acme = app.deals(&env, &sync).await.remove("Acme").unwrap();
    assert_eq!((acme.amount, acme.close_date.as_deref()), (Some(200.0), Some("2027-03-01")));
    let hs = env.hs_deals(&sync).await["Acme"].1.clone();
    assert_eq!(model::translate::canonical_date(hs["closedate"].as_str().unwrap()).as_deref(), Some("2027-03-01"));

    // The same field on both sides two minutes apart: a conflict, HubSpot wins by the rule.
    // (Edits are dated ahead of the clock so both lie after the cursors.)
    let base = now();
    env.hs_edit(&hs_id, json!({"amount": "300"}), Some(base + MINUTE)).await;
    app.edit_deal(&env, &sync, &app_id, DealFields { amount: Some(350.0), ..Default::default() }, base + 3 * MINUTE).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 1, "{r:?}");
    assert_eq!(app.deals(&env, &sync).await["Acme"].amount, Some(300.0));
    let record = records(&env, &sync).await.into_iter().find(|r| r.name == "Acme").unwrap();
    let events = env.connections.store().record_events(&record.id).await.unwrap();
    let conflict = events.iter().find(|e| e.kind == EventKind::Conflict).expect("the conflict is recorded");
    assert_eq!(conflict.rule.as_deref(), Some("Default to HubSpot"));
    let both: Value = serde_json::from_str(&conflict.changes).unwrap();
    assert_eq!(
        (both[0]["hubspot"].as_str(), both[0]["app"].as_str(), both[0]["winner"].as_str()),
        (Some("300"), Some("350"), Some("hubspot"))
    );

    // Ten minutes apart: no conflict, the later change wins (here the app's).
    env.hs_edit(&hs_id, json!({"amount": "400"}), Some(base + 10 * MINUTE)).await;
    app.edit_deal(&env, &sync, &app_id, DealFields { amount: Some(450.0), ..Default::default() }, base + 20 * MINUTE).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 0);
    assert_eq!(env.hs_deals(&sync).await["Acme"].1["amount"], "450");
    env
}

conformance!(a_field_changed_on_both_sides_is_timed_by_its_own_history);
/// HubSpot keeps each property's history: when both sides changed the amount more than five
/// minutes apart, the side that changed the amount last wins, even if the HubSpot deal changed
/// later in another field.
async fn a_field_changed_on_both_sides_is_timed_by_its_own_history(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Deal, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let hs_id = env.hs_create(hs_deal("Timing", "100", "appointmentscheduled"), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let app_id = app.deals(&env, &sync).await["Timing"].id.clone();
    let at = now();
    // HubSpot's amount first, the app's six minutes later, then HubSpot's close date.
    env.hs_edit(&hs_id, json!({"amount": "200"}), Some(at + MINUTE)).await;
    app.edit_deal(&env, &sync, &app_id, DealFields { amount: Some(300.0), ..Default::default() }, at + 7 * MINUTE).await;
    env.hs_edit(&hs_id, json!({"closedate": "2027-03-31"}), Some(at + 13 * MINUTE)).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.conflicts, 0, "six minutes apart: the later change wins, no conflict rule: {r:?}");
    assert_eq!(env.hs_deals(&sync).await["Timing"].1["amount"], "300", "the app changed the amount last");
    let timing = app.deals(&env, &sync).await.remove("Timing").unwrap();
    assert_eq!((timing.amount, timing.close_date.as_deref()), (Some(300.0), Some("2027-03-31")));
    env
}

conformance!(deletions_are_recorded_never_propagated);
async fn deletions_are_recorded_never_propagated(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Deal, |_, _| {}).await;
    env.hs_create(hs_deal("Doomed", "1", "appointmentscheduled"), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let app_id = app.deals(&env, &sync).await["Doomed"].id.clone();
    app.delete_deal(&env, &sync, &app_id).await;
    // HubSpot's deal changes; its counterpart is gone.
    let hs_id = env.hs_deals(&sync).await["Doomed"].0.clone();
    env.hs_edit(&hs_id, json!({"amount": "2"}), None).await;
    let r = run(&engine, &sync).await;
    assert_eq!((r.created_in_app, r.updated_in_app), (0, 0), "the deal is not recreated: {r:?}");
    assert!(env.hs_deals(&sync).await.contains_key("Doomed"), "HubSpot keeps its deal");
    assert!(app.deals(&env, &sync).await.is_empty(), "nor is it created again in the app");
    let row = records(&env, &sync).await.pop().unwrap();
    assert_eq!((row.state.as_str(), row.reason.map(RecordReason::as_str)), ("excluded", Some("deleted_in_app")));
    let events = env.connections.store().record_events(&row.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Deleted && e.side == Side::App), "{events:?}");
    env
}

conformance!(one_way_syncs_never_write_back);
async fn one_way_syncs_never_write_back(env: Env, app: App) -> Env {
    let sync = app
        .set_up(&env, ObjectKind::Deal, |s, _| {
            s.direction = SyncDirection::ToApp;
            for f in &mut s.fields {
                f.direction = SyncDirection::ToApp;
            }
        })
        .await;
    env.hs_create(hs_deal("Outbound", "10", "appointmentscheduled"), None).await;
    app.create_deal(&env, &sync, deal("Stays in the app", 5.0, Stage::First), None).await;
    let engine = engine(&env);
    let r = run(&engine, &sync).await;
    assert_eq!((r.created_in_app, r.created_in_hub), (1, 0), "{r:?}");
    let app_id = app.deals(&env, &sync).await["Outbound"].id.clone();
    app.edit_deal(&env, &sync, &app_id, DealFields { amount: Some(999.0), ..Default::default() }, None).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.updated_in_hub, 0);
    let hs = env.hs_deals(&sync).await;
    assert_eq!(hs["Outbound"].1["amount"], "10");
    assert!(!hs.contains_key("Stays in the app"));
    env
}

conformance!(faults_and_expired_tokens_cost_time_not_records);
async fn faults_and_expired_tokens_cost_time_not_records(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Deal, |_, _| {}).await;
    for i in 0..120 {
        env.hs_create(hs_deal(&format!("HS {i:03}"), &i.to_string(), "appointmentscheduled"), None).await;
    }
    for i in 0..60 {
        app.create_deal(&env, &sync, deal(&format!("APP {i:03}"), i as f64, Stage::First), None).await;
    }
    app.fault_both(&env).await;
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
    app.clear_faults(&env).await;
    // Exactly one copy of each deal on each side (the helpers fail on a duplicate name).
    assert_eq!(app.deals(&env, &sync).await.len(), 180);
    assert_eq!(env.hs_deals(&sync).await.len(), 180);
    assert!(env.refreshes(&env.hubspot).await >= 1 && env.refreshes(app.sandbox(&env)).await >= 1, "expired tokens were refreshed");
    env
}

conformance!(a_create_interrupted_before_it_was_recorded_is_found_not_repeated);
async fn a_create_interrupted_before_it_was_recorded_is_found_not_repeated(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Deal, |_, _| {}).await;
    let hs_id = env.hs_create(hs_deal("Half done", "7", "appointmentscheduled"), None).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    let mut row = records(&env, &sync).await.pop().unwrap();
    let app_id = row.app_id.clone().unwrap();
    // As if Tandem had died after the app created the deal and before the link was committed.
    (row.app_id, row.state, row.create_on) = (None, RecordState::Creating, Some("app".into()));
    env.connections.store().save_records(&[row]).await.unwrap();
    // Meanwhile each side changed a different field, the app's later: both changes must arrive
    // (record times alone would let the app's newer deal win the amount too).
    let at = now();
    env.hs_edit(&hs_id, json!({"amount": "8"}), Some(at)).await;
    app.edit_deal(&env, &sync, &app_id, DealFields { close_date: Some("2027-05-05"), ..Default::default() }, at + 2_000).await;
    let r = run(&engine, &sync).await;
    assert_eq!(r.created_in_app, 0, "{r:?}");
    let deals = app.deals(&env, &sync).await;
    assert_eq!(deals.len(), 1, "no second copy");
    assert_eq!((deals["Half done"].id.as_str(), deals["Half done"].amount), (app_id.as_str(), Some(8.0)), "HubSpot's change arrived");
    let hs = env.hs_deals(&sync).await["Half done"].1.clone();
    assert_eq!(
        model::translate::canonical_date(hs["closedate"].as_str().unwrap_or_default()).as_deref(),
        Some("2027-05-05"),
        "and the app's"
    );
    let linked = records(&env, &sync).await.pop().unwrap();
    assert_eq!((linked.state, linked.app_id.as_deref()), (RecordState::Linked, Some(app_id.as_str())), "{linked:?}");
    env
}

conformance!(contacts_match_on_email_and_sync_both_ways);
async fn contacts_match_on_email_and_sync_both_ways(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Contact, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let base = now() - 60 * MINUTE;
    // Ada is in both apps (in capitals in the app); her HubSpot record changed last.
    let ada_app = app
        .create_person(&env, PersonFields { phone: Some("+44 20 7946 0000"), ..person("Ada", "Lovelace", "Ada@Example.com") }, base)
        .await;
    let ada_hs = env
        .hs_object(
            "contacts",
            json!({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0999"}),
            base + 20 * MINUTE,
        )
        .await;
    let grace_hs = env.hs_object("contacts", json!({"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.com"}), base).await;
    let alan_app = app.create_person(&env, person("Alan", "Turing", "alan@example.com"), base).await;
    let nameless_app =
        app.create_person(&env, PersonFields { first: Some("Katherine"), last: Some("Johnson"), ..Default::default() }, base).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    assert_eq!(first.trigger, RunTrigger::Initial);
    let (hs, persons) = (env.hs_by(&sync, "contacts", "email", "firstname,lastname,email,phone").await, app.persons(&env, &sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("the app", &persons, &[]);
    // Ada is linked, not copied: HubSpot's later phone and lower-case email reach the app.
    assert_eq!(hs["ada@example.com"][0].0, ada_hs);
    let ada = &persons["ada@example.com"][0];
    assert_eq!((ada.id.as_str(), ada.email.as_str(), ada.phone.as_str()), (ada_app.as_str(), "ada@example.com", "+44 20 7946 0999"));
    // Grace reaches the app with her whole name, Alan HubSpot with his first and last name.
    assert_eq!(persons["grace@example.com"][0].name, "Grace Hopper");
    let alan = &hs["alan@example.com"][0].1;
    assert_eq!((alan["firstname"].as_str(), alan["lastname"].as_str()), (Some("Alan"), Some("Turing")), "{alan}");
    // Without an email nothing is matched: Katherine is created in HubSpot, once.
    let katherine: Vec<&(String, Value)> = hs.values().flatten().filter(|(_, p)| p["lastname"] == "Johnson").collect();
    assert_eq!(katherine.len(), 1, "{katherine:?}");

    let rows = records(&env, &sync).await;
    let ada_row = rows.iter().find(|r| r.hubspot_id.as_deref() == Some(ada_hs.as_str())).cloned().expect("Ada's record");
    assert_eq!(
        (ada_row.app_id.as_deref(), ada_row.state.as_str(), ada_row.match_key.as_deref()),
        (Some(ada_app.as_str()), "linked", Some("ada@example.com"))
    );
    let events = env.connections.store().record_events(&ada_row.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == EventKind::Matched && e.message.as_deref().unwrap_or_default().contains("ada@example.com")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.kind == EventKind::Created), "Ada is never created: {events:?}");
    let nameless = rows.iter().find(|r| r.app_id.as_deref() == Some(nameless_app.as_str())).expect("Katherine's record");
    assert_eq!((nameless.state.as_str(), nameless.match_key.as_deref()), ("linked", None));

    // A second run finds everything in sync.
    let second = run(&engine, &sync).await;
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");

    // Changes flow both ways: Grace's name in the app, Alan's phone in HubSpot (his name stays).
    let at = now();
    let grace_app = persons["grace@example.com"][0].id.clone();
    app.edit_person(&env, &grace_app, PersonFields { first: Some("Grace"), last: Some("Brewster"), ..Default::default() }, at).await;
    let alan_hs = hs["alan@example.com"][0].0.clone();
    env.hs_object_edit("contacts", &alan_hs, json!({"phone": "+44 161 496 0000"}), at).await;
    // New on both sides since: Linus in both apps (linked), Margaret in HubSpot only.
    app.create_person(&env, person("Linus", "Torvalds", "linus@example.com"), at).await;
    let linus_hs = env.hs_object("contacts", json!({"firstname": "Linus", "lastname": "Torvalds", "email": "linus@example.com"}), at).await;
    env.hs_object("contacts", json!({"firstname": "Margaret", "lastname": "Hamilton", "email": "margaret@example.com"}), at).await;
    let third = run(&engine, &sync).await;
    assert_eq!(third.trigger, RunTrigger::Manual);
    let (hs, persons) = (env.hs_by(&sync, "contacts", "email", "firstname,lastname,email,phone").await, app.persons(&env, &sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("the app", &persons, &[]);
    assert_eq!(hs["grace@example.com"][0].0, grace_hs);
    assert_eq!(hs["grace@example.com"][0].1["lastname"], "Brewster");
    let alan = &persons["alan@example.com"][0];
    assert_eq!((alan.id.as_str(), alan.phone.as_str(), alan.name.as_str()), (alan_app.as_str(), "+44 161 496 0000", "Alan Turing"));
    assert_eq!(hs["linus@example.com"][0].0, linus_hs, "linked to the HubSpot contact that was there");
    assert_eq!(persons["margaret@example.com"][0].name, "Margaret Hamilton");
    env
}

conformance!(companies_match_on_domain);
async fn companies_match_on_domain(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Company, |_, _| {}).await;
    let base = now() - 60 * MINUTE;
    // Initrode is in both apps: HubSpot knows its domain, the app its website (a full URL).
    let initrode_app = app.create_company(&env, "Initrode GmbH", "https://www.Initrode.example/about", None, base).await;
    let initrode_hs = env.hs_object("companies", json!({"name": "Initrode", "domain": "initrode.example"}), base + 20 * MINUTE).await;
    app.create_company(&env, "Umbrella Corp", "http://umbrella.example", Some("1 Raccoon Way"), base).await;
    env.hs_object("companies", json!({"name": "Hooli", "domain": "hooli.example", "address": "1 Hacker Way"}), base).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    let hs = env.hs_by(&sync, "companies", "domain", "name,domain,address").await;
    let companies = app.companies(&env, &sync).await;
    once_each("HubSpot", &hs, &[]);
    once_each("the app", &companies, &[]);
    // Linked, and HubSpot's later name wins; the website stays a website, the domain a domain.
    assert_eq!(hs["initrode.example"][0].0, initrode_hs);
    assert!(!companies.contains_key("Initrode GmbH"), "renamed after HubSpot's later change: {:?}", companies.keys());
    assert_eq!(companies["Initrode"][0].id, initrode_app);
    // Created once on the other side each; HubSpot's domain bare.
    assert_eq!(hs["umbrella.example"][0].1["name"], "Umbrella Corp");
    assert_eq!(companies["Hooli"][0].website, "hooli.example");
    if app.syncs_company_address() {
        assert_eq!(hs["umbrella.example"][0].1["address"], "1 Raccoon Way");
        assert_eq!(companies["Hooli"][0].address.as_deref(), Some("1 Hacker Way"));
    }
    let second = run(&engine, &sync).await;
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");
    env
}

conformance!(contacts_under_faults_and_an_interrupted_create_are_never_duplicated);
/// Contacts new on each side and in both, synced while both sandboxes answer 429, 5xx and drop
/// connections and the tokens expire: every email ends up once on each side. Then a create
/// interrupted before Tandem recorded it is found by its Tandem id, not repeated.
async fn contacts_under_faults_and_an_interrupted_create_are_never_duplicated(env: Env, app: App) -> Env {
    let sync = app.set_up(&env, ObjectKind::Contact, |_, _| {}).await;
    let base = now() - 60 * MINUTE;
    let mut emails = Vec::new();
    for i in 0..40 {
        let email = format!("hubspot{i:02}@example.com");
        env.hs_object("contacts", json!({"firstname": "Hub", "lastname": format!("Spot {i:02}"), "email": email}), base).await;
        emails.push(email);
    }
    for i in 0..30 {
        let email = format!("app{i:02}@example.com");
        app.create_person(&env, person("App", &format!("Person {i:02}"), &email), base).await;
        emails.push(email);
    }
    for i in 0..15 {
        let both = format!("both{i:02}@example.com");
        env.hs_object("contacts", json!({"firstname": "Both", "lastname": format!("Sides {i:02}"), "email": both}), base).await;
        app.create_person(&env, person("Both", &format!("Sides {i:02}"), &both), base).await;
        emails.push(both);
    }
    app.fault_both(&env).await;
    let engine = engine(&env);
    let mut runs = 0;
    loop {
        runs += 1;
        let _ = engine.run_sync(&sync.id, Trigger::Manual).await.expect("run");
        let rows = records(&env, &sync).await;
        let settled = rows.iter().all(|r| r.state == RecordState::Linked || r.reason.map(RecordReason::as_str) == Some("duplicate"));
        let ours = rows.iter().filter(|r| r.match_key.as_ref().is_some_and(|k| emails.contains(k))).count();
        if settled && ours == emails.len() {
            break;
        }
        assert!(
            runs < 25,
            "not converged after {runs} runs: {:?}",
            rows.iter().filter(|r| r.state != RecordState::Linked).take(5).collect::<Vec<_>>()
        );
    }
    app.clear_faults(&env).await;
    let (hs, persons) = (env.hs_by(&sync, "contacts", "email", "firstname,lastname,email,phone").await, app.persons(&env, &sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("the app", &persons, &[]);
    for e in &emails {
        assert!(hs.contains_key(e) && persons.contains_key(e), "{e} on both sides");
    }

    // As if Tandem had died after the app created a person and before the link was committed.
    let mut row = records(&env, &sync).await.into_iter().find(|r| r.match_key.as_deref() == Some("hubspot07@example.com")).unwrap();
    let created = row.app_id.clone().unwrap();
    (row.app_id, row.state, row.create_on) = (None, RecordState::Creating, Some("app".into()));
    env.connections.store().save_records(&[row]).await.unwrap();
    let r = run(&engine, &sync).await;
    assert_eq!(r.created_in_app, 0, "{r:?}");
    let persons = app.persons(&env, &sync).await;
    assert_eq!(persons["hubspot07@example.com"].len(), 1, "no second copy");
    assert_eq!(persons["hubspot07@example.com"][0].id, created);
    let linked = records(&env, &sync).await.into_iter().find(|r| r.match_key.as_deref() == Some("hubspot07@example.com")).unwrap();
    assert_eq!((linked.state.as_str(), linked.app_id.as_deref()), ("linked", Some(created.as_str())));
    env
}

conformance!(deals_keep_their_contact_and_company_on_both_sides);
async fn deals_keep_their_contact_and_company_on_both_sides(env: Env, app: App) -> Env {
    let companies = app.set_up(&env, ObjectKind::Company, |_, _| {}).await;
    let contacts = app.add_sync(&env, &companies, ObjectKind::Contact, |_, _| {}).await;
    let deals = app.add_sync(&env, &companies, ObjectKind::Deal, |s, _| s.filters.clear()).await;
    let base = now() - 60 * MINUTE;
    // The app: Peter works at Initech, and his deal is with both.
    let initech_app = app.create_company(&env, "Initech", "https://initech.example", None, base).await;
    let peter_app = app
        .create_person(&env, PersonFields { company: Some(&initech_app), ..person("Peter", "Gibbons", "peter@initech.example") }, base)
        .await;
    let tps_app = app
        .create_deal(
            &env,
            &deals,
            DealFields { person: Some(&peter_app), company: Some(&initech_app), ..deal("TPS reports", 100.0, Stage::First) },
            base,
        )
        .await;
    // HubSpot: Gavin works at Hooli, and his deal is associated with both.
    let hooli_hs = env.hs_object("companies", json!({"name": "Hooli", "domain": "hooli.example"}), base).await;
    let gavin_hs =
        env.hs_object("contacts", json!({"firstname": "Gavin", "lastname": "Belson", "email": "gavin@hooli.example"}), base).await;
    let nucleus_hs = env.hs_object("deals", hs_deal("Nucleus", "900", "appointmentscheduled"), base).await;
    env.hs_associate(&deals, "contacts", &gavin_hs, "companies", &hooli_hs).await;
    env.hs_associate(&deals, "deals", &nucleus_hs, "contacts", &gavin_hs).await;
    env.hs_associate(&deals, "deals", &nucleus_hs, "companies", &hooli_hs).await;

    let engine = engine(&env);
    for sync in [&companies, &contacts, &deals] {
        let run = run(&engine, sync).await;
        assert_eq!((run.outcome.as_str(), run.failed_to_app, run.failed_to_hub), ("succeeded", 0, 0), "{run:?}");
    }
    // Each side's records reached the other, linked as they were.
    let initech_hs = env.hs_find(&deals, "companies", "domain", "initech.example").await;
    let peter_hs = env.hs_find(&deals, "contacts", "email", "peter@initech.example").await;
    let tps_hs = env.hs_find(&deals, "deals", "dealname", "TPS reports").await;
    assert_eq!(
        env.hs_associated(&deals, "contacts", &peter_hs, "companies").await,
        [initech_hs.as_str()],
        "Peter works at Initech in HubSpot too"
    );
    assert_eq!(env.hs_associated(&deals, "deals", &tps_hs, "contacts").await, [peter_hs.as_str()]);
    assert_eq!(env.hs_associated(&deals, "deals", &tps_hs, "companies").await, [initech_hs.as_str()]);
    let hooli_app = app.companies(&env, &deals).await["Hooli"][0].id.clone();
    let gavin = app.persons(&env, &deals).await["gavin@hooli.example"][0].clone();
    assert_eq!(gavin.company.as_deref(), Some(hooli_app.as_str()), "Gavin works at Hooli in the app too");
    let nucleus = app.deals(&env, &deals).await.remove("Nucleus").unwrap();
    assert_eq!((nucleus.person.as_deref(), nucleus.company.as_deref()), (Some(gavin.id.as_str()), Some(hooli_app.as_str())));

    // Nothing changed: nothing is written again.
    let again = run(&engine, &deals).await;
    assert_eq!((again.created_in_app, again.created_in_hub, again.updated_in_app, again.updated_in_hub), (0, 0, 0, 0), "{again:?}");

    // The TPS deal moves to Gavin in the app: HubSpot's deal follows (Peter's association goes,
    // Gavin's comes). Nucleus moves to Peter in HubSpot: the app's deal follows.
    app.edit_deal(&env, &deals, &tps_app, DealFields { person: Some(&gavin.id), ..Default::default() }, now()).await;
    let token = env.token(&deals.hubspot).await;
    let archive = json!({"inputs": [{"from": {"id": nucleus_hs}, "to": [{"id": gavin_hs}]}]});
    let r = env
        .http
        .post(format!("{}/crm/v4/associations/deals/contacts/batch/archive", env.hubspot.url()))
        .bearer_auth(&token)
        .json(&archive)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    env.hs_associate(&deals, "deals", &nucleus_hs, "contacts", &peter_hs).await;
    // HubSpot's association changes leave the deal's modification time as it was: the deal is
    // read again when it changes (here its amount).
    env.hs_object_edit("deals", &nucleus_hs, json!({"amount": "950"}), now()).await;
    let moved = run(&engine, &deals).await;
    assert_eq!((moved.outcome.as_str(), moved.updated_in_app, moved.updated_in_hub), ("succeeded", 1, 1), "{moved:?}");
    assert_eq!(env.hs_associated(&deals, "deals", &tps_hs, "contacts").await, [gavin_hs.as_str()]);
    // The deal's timeline says which contact it was linked with, and which it is now.
    let rows = records(&env, &deals).await;
    let tps = rows.iter().find(|r| r.hubspot_id.as_deref() == Some(tps_hs.as_str())).expect("the TPS deal's record");
    let events = env.connections.store().record_events(&tps.id).await.unwrap();
    let update = events.iter().rev().find(|e| e.kind == EventKind::Updated && e.side == Side::HubSpot).expect("an update in HubSpot");
    let changes: Value = serde_json::from_str(&update.changes).unwrap();
    assert_eq!(changes[0]["field"], "Associated contact", "{changes}");
    assert!(
        changes[0]["old"].as_str().unwrap().starts_with("Peter Gibbons") && changes[0]["new"].as_str().unwrap().starts_with("Gavin Belson"),
        "{changes}"
    );
    assert_eq!(app.deals(&env, &deals).await["Nucleus"].person.as_deref(), Some(peter_app.as_str()));
    let settled = run(&engine, &deals).await;
    assert_eq!((settled.updated_in_app, settled.updated_in_hub), (0, 0), "{settled:?}");
    env
}

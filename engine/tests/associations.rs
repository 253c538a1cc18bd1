//! Associations between the sandboxes over HTTP, on SQLite and Postgres: with contacts, companies
//! and deals synced for one app, a deal's contact and company and a contact's company are linked
//! on both sides (HubSpot associations; Pipedrive's `person_id` and `org_id`), and a changed link
//! follows.

mod common;

use common::deals::*;
use common::*;
use model::apps::ObjectKind;
use model::merge::Side;
use model::states::EventKind;
use serde_json::{json, Value};

fn email(value: &str) -> Value {
    json!([{"value": value, "primary": true, "label": "work"}])
}

impl Env {
    /// A Pipedrive person, organization or deal as API v2 reads it.
    async fn pd_get(&self, sync: &Sync, object: &str, id: &str) -> Value {
        let token = self.token(&sync.pipedrive).await;
        let url = format!("{}/api/v2/{object}/{id}", self.pipedrive.url());
        let answer: Value = self.http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        answer["data"].clone()
    }

    /// The id of the live Pipedrive person with this email, or organization with this name.
    async fn pd_find(&self, sync: &Sync, object: &str, pick: impl Fn(&Value) -> bool) -> String {
        let token = self.token(&sync.pipedrive).await;
        let url = format!("{}/api/v2/{object}?limit=500", self.pipedrive.url());
        let page: Value = self.http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let found: Vec<&Value> = page["data"].as_array().unwrap().iter().filter(|r| pick(r)).collect();
        assert_eq!(found.len(), 1, "{object}: {found:?}");
        found[0]["id"].to_string()
    }
}

on_both_backends!(deals_keep_their_contact_and_company_on_both_sides);
async fn deals_keep_their_contact_and_company_on_both_sides(env: Env) -> Env {
    let companies = set_up_object(&env, ObjectKind::Company, |_, _| {}).await;
    let contacts = add_sync(&env, &companies, ObjectKind::Contact, |_, _| {}).await;
    let deals = add_sync(&env, &companies, ObjectKind::Deal, |s, _| s.filters.clear()).await;
    let meeting: u64 = pd_stage(&deals, "Meeting Scheduled").parse().unwrap();
    let base = engine::clock::now_ms() - 60 * MINUTE;
    // Pipedrive: Peter works at Initech, and his deal is with both.
    let initech_pd = env.pd_object("organizations", json!({"name": "Initech", "website": "https://initech.example"}), base).await;
    let peter_pd = env
        .pd_object(
            "persons",
            json!({"name": "Peter Gibbons", "emails": email("peter@initech.example"), "org_id": initech_pd.parse::<u64>().unwrap()}),
            base,
        )
        .await;
    let tps_pd = env
        .pd_object("deals", json!({"title": "TPS reports", "value": 100, "pipeline_id": 1, "stage_id": meeting, "person_id": peter_pd.parse::<u64>().unwrap(), "org_id": initech_pd.parse::<u64>().unwrap()}), base)
        .await;
    // HubSpot: Gavin works at Hooli, and his deal is associated with both.
    let hooli_hs = env.hs_object("companies", json!({"name": "Hooli", "domain": "hooli.example"}), base).await;
    let gavin_hs =
        env.hs_object("contacts", json!({"firstname": "Gavin", "lastname": "Belson", "email": "gavin@hooli.example"}), base).await;
    let nucleus_hs = env
        .hs_object(
            "deals",
            json!({"dealname": "Nucleus", "amount": "900", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            base,
        )
        .await;
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
    let hooli_pd = env.pd_find(&deals, "organizations", |o| o["name"] == "Hooli").await;
    let gavin_pd = env.pd_find(&deals, "persons", |p| p["emails"][0]["value"] == "gavin@hooli.example").await;
    assert_eq!(env.pd_get(&deals, "persons", &gavin_pd).await["org_id"].to_string(), hooli_pd, "Gavin works at Hooli in Pipedrive too");
    let nucleus_pd = env.pd_deals(&deals).await["Nucleus"].clone();
    assert_eq!((nucleus_pd["person_id"].to_string(), nucleus_pd["org_id"].to_string()), (gavin_pd.clone(), hooli_pd.clone()));

    // Nothing changed: nothing is written again.
    let again = run(&engine, &deals).await;
    assert_eq!((again.created_in_app, again.created_in_hub, again.updated_in_app, again.updated_in_hub), (0, 0, 0, 0), "{again:?}");

    // The TPS deal moves to Gavin in Pipedrive: HubSpot's deal follows (Peter's association goes,
    // Gavin's comes). Nucleus moves to Peter in HubSpot: Pipedrive's deal follows.
    env.pd_object_edit("deals", &tps_pd, json!({"person_id": gavin_pd.parse::<u64>().unwrap()}), engine::clock::now_ms()).await;
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
    env.hs_object_edit("deals", &nucleus_hs, json!({"amount": "950"}), engine::clock::now_ms()).await;
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
    assert_eq!(env.pd_deals(&deals).await["Nucleus"]["person_id"].to_string(), peter_pd);
    let settled = run(&engine, &deals).await;
    assert_eq!((settled.updated_in_app, settled.updated_in_hub), (0, 0), "{settled:?}");
    env
}

on_both_backends!(a_deal_synced_before_its_person_is_linked_once_it_changes);
/// The deals sync ran before the contacts sync: the deal is created without its contact and its
/// timeline says why; once the person is synced, the deal's next change brings the association.
async fn a_deal_synced_before_its_person_is_linked_once_it_changes(env: Env) -> Env {
    let contacts = set_up_object(&env, ObjectKind::Contact, |_, _| {}).await;
    let deals = add_sync(&env, &contacts, ObjectKind::Deal, |s, _| s.filters.clear()).await;
    let meeting: u64 = pd_stage(&deals, "Meeting Scheduled").parse().unwrap();
    let base = engine::clock::now_ms() - 60 * MINUTE;
    let milton = env.pd_object("persons", json!({"name": "Milton Waddams", "emails": email("milton@initech.example")}), base).await;
    let stapler = env
        .pd_object(
            "deals",
            json!({"title": "Red stapler", "value": 5, "pipeline_id": 1, "stage_id": meeting, "person_id": milton.parse::<u64>().unwrap()}),
            base,
        )
        .await;

    let engine = engine(&env);
    let first = run(&engine, &deals).await;
    assert_eq!((first.outcome.as_str(), first.failed_to_hub), ("succeeded", 0), "{first:?}");
    let stapler_hs = env.hs_find(&deals, "deals", "dealname", "Red stapler").await;
    assert!(env.hs_associated(&deals, "deals", &stapler_hs, "contacts").await.is_empty());
    let rows = records(&env, &deals).await;
    let row = rows.iter().find(|r| r.hubspot_id.as_deref() == Some(stapler_hs.as_str())).expect("the deal's record");
    let events = env.connections.store().record_events(&row.id).await.unwrap();
    let why = events.iter().find(|e| e.kind == EventKind::NotSynced).unwrap_or_else(|| panic!("{events:?}"));
    assert!(why.message.as_deref().unwrap_or_default().contains("not synced to HubSpot yet"), "{why:?}");
    // Reading the new HubSpot deal back (no contact there yet) never clears Pipedrive's person.
    assert_eq!(env.pd_get(&deals, "deals", &stapler).await["person_id"].to_string(), milton);

    run(&engine, &contacts).await;
    let milton_hs = env.hs_find(&deals, "contacts", "email", "milton@initech.example").await;
    env.pd_object_edit("deals", &stapler, json!({"value": 6}), engine::clock::now_ms()).await;
    let next = run(&engine, &deals).await;
    assert_eq!((next.outcome.as_str(), next.updated_in_hub), ("succeeded", 1), "{next:?}");
    assert_eq!(env.hs_associated(&deals, "deals", &stapler_hs, "contacts").await, [milton_hs.as_str()]);
    env
}

on_both_backends!(a_contacts_sync_added_later_links_deals_without_clearing_them);
/// Deals synced for a while before contacts sync too: when a deal next changes (in HubSpot, later
/// than its Pipedrive side), its Pipedrive person is not cleared by HubSpot's missing association;
/// the association is created instead.
async fn a_contacts_sync_added_later_links_deals_without_clearing_them(env: Env) -> Env {
    let deals = set_up(&env, |s, _| s.filters.clear()).await;
    let meeting: u64 = pd_stage(&deals, "Meeting Scheduled").parse().unwrap();
    let base = engine::clock::now_ms() - 60 * MINUTE;
    let bob = env.pd_object("persons", json!({"name": "Bob Slydell", "emails": email("bob@consulting.example")}), base).await;
    env.pd_object(
        "deals",
        json!({"title": "Efficiency review", "value": 50, "pipeline_id": 1, "stage_id": meeting, "person_id": bob.parse::<u64>().unwrap()}),
        base,
    )
    .await;
    let engine = engine(&env);
    run(&engine, &deals).await;
    let review_hs = env.hs_find(&deals, "deals", "dealname", "Efficiency review").await;

    let contacts = add_sync(&env, &deals, ObjectKind::Contact, |_, _| {}).await;
    run(&engine, &contacts).await;
    let bob_hs = env.hs_find(&deals, "contacts", "email", "bob@consulting.example").await;
    env.hs_object_edit("deals", &review_hs, json!({"amount": "75"}), engine::clock::now_ms()).await;
    let next = run(&engine, &deals).await;
    assert_eq!((next.outcome.as_str(), next.failed_to_app, next.failed_to_hub), ("succeeded", 0, 0), "{next:?}");
    let review_pd = env.pd_deals(&deals).await["Efficiency review"].clone();
    assert_eq!((review_pd["person_id"].to_string(), review_pd["value"].as_f64()), (bob.clone(), Some(75.0)), "{review_pd}");
    assert_eq!(env.hs_associated(&deals, "deals", &review_hs, "contacts").await, [bob_hs.as_str()]);
    env
}

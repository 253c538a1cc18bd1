//! Associations between HubSpot and Pipedrive over HTTP, on SQLite and Postgres, when the syncs
//! come one after another: a deal synced before its person is linked once it changes, and a
//! contacts sync added later links deals without clearing them. A deal's contact and company on
//! both sides, for every app, is in the conformance suite (`conformance.rs`).

mod common;

use common::deals::*;
use common::*;
use model::apps::ObjectKind;
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

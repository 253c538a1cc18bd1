//! Contacts between HubSpot and Pipedrive over HTTP, on SQLite and Postgres, where Pipedrive or
//! HubSpot is what is tested: a second Pipedrive person with an email already synced is left out
//! as a duplicate; a contact HubSpot's search does not show yet is linked, not refused. Matching
//! on email and domain for every app is in the conformance suite (`conformance.rs`).

mod common;

use std::collections::HashMap;

use common::deals::*;
use common::*;
use model::apps::ObjectKind;
use model::states::{EventKind, RunOutcome, RunTrigger};
use model::sync::ConflictRule;
use serde_json::{json, Value};

impl Env {
    /// Every live Pipedrive person or organization, by what `key` picks from it.
    async fn pd_by(&self, sync: &Sync, object: &str, key: impl Fn(&Value) -> String) -> HashMap<String, Vec<Value>> {
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        for r in self.pd_records(sync, object).await {
            out.entry(key(&r)).or_default().push(r);
        }
        out
    }

    async fn hs_contacts(&self, sync: &Sync) -> HashMap<String, Vec<(String, Value)>> {
        self.hs_by(sync, "contacts", "email", "firstname,lastname,email,phone").await
    }

    async fn pd_persons(&self, sync: &Sync) -> HashMap<String, Vec<Value>> {
        self.pd_by(sync, "persons", |p| primary(p, "emails").to_lowercase()).await
    }
}

/// A person's primary email or phone.
fn primary(person: &Value, list: &str) -> String {
    let items = person[list].as_array().cloned().unwrap_or_default();
    let chosen = items.iter().find(|i| i["primary"] == true).or(items.first()).cloned().unwrap_or(Value::Null);
    chosen["value"].as_str().unwrap_or_default().to_string()
}

fn email(value: &str) -> Value {
    json!([{"value": value, "primary": true, "label": "work"}])
}

/// No key (other than blank) is held by two records on one side.
fn once_each<T: std::fmt::Debug>(side: &str, records: &HashMap<String, Vec<T>>, except: &[&str]) {
    for (key, list) in records {
        if !key.is_empty() && !except.contains(&key.as_str()) {
            assert_eq!(list.len(), 1, "{side} holds {key} more than once: {list:?}");
        }
    }
}

on_both_backends!(two_persons_with_one_email_sync_once_and_the_other_is_left_out);
/// Pipedrive lets two persons share an email (Zoho CRM's contacts cannot): one syncs, the other
/// is left out as a duplicate, and stays out when either changes.
async fn two_persons_with_one_email_sync_once_and_the_other_is_left_out(env: Env) -> Env {
    let sync = set_up_object(&env, ObjectKind::Contact, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let base = engine::clock::now_ms() - 60 * MINUTE;
    env.pd_object("persons", json!({"name": "Dup One", "emails": email("dup@example.com")}), base).await;
    env.pd_object("persons", json!({"name": "Dup Two", "emails": email("dup@example.com")}), base).await;
    env.hs_object("contacts", json!({"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.com"}), base).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!((first.outcome, first.trigger), (RunOutcome::Succeeded, RunTrigger::Initial), "{first:?}");
    let (hs, pd) = (env.hs_contacts(&sync).await, env.pd_persons(&sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &["dup@example.com"]);
    assert_eq!((hs["dup@example.com"].len(), pd["dup@example.com"].len()), (1, 2));
    assert_eq!(pd["grace@example.com"][0]["name"], "Grace Hopper");
    let rows = records(&env, &sync).await;
    let duplicates: Vec<_> = rows.iter().filter(|r| r.reason.map(model::states::RecordReason::as_str) == Some("duplicate")).collect();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert!(duplicates[0].message.as_deref().unwrap_or_default().contains("dup@example.com"));
    let events = env.connections.store().record_events(&duplicates[0].id).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == EventKind::Created), "the duplicate is never created: {events:?}");

    // A second run finds everything in sync.
    let second = run(&engine, &sync).await;
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");
    // The duplicate changes: still left out, never created (nor is its twin copied twice).
    for dup in &pd["dup@example.com"] {
        let name = format!("{} (edited)", dup["name"].as_str().unwrap());
        env.pd_object_edit("persons", &dup["id"].to_string(), json!({"name": name}), engine::clock::now_ms()).await;
    }
    let edited = run(&engine, &sync).await;
    assert_eq!((edited.created_in_hub, edited.updated_in_hub), (0, 1), "the synced one's new name only: {edited:?}");
    assert_eq!(env.hs_contacts(&sync).await["dup@example.com"].len(), 1);
    let still: Vec<_> =
        records(&env, &sync).await.into_iter().filter(|r| r.reason.map(model::states::RecordReason::as_str) == Some("duplicate")).collect();
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(env.pd_persons(&sync).await["dup@example.com"].len(), 2, "both stay in Pipedrive");
    env
}

on_both_backends!(a_contact_the_search_does_not_show_yet_is_linked_not_refused);
/// HubSpot's search index trails its writes: a contact added in HubSpot moments ago is not found
/// by the search Tandem matches with, and HubSpot then refuses a second contact with its email
/// (409, naming the one that has it, and refusing the whole batch). Tandem links the two and
/// merges them instead of failing, and the other contacts of that batch are created.
async fn a_contact_the_search_does_not_show_yet_is_linked_not_refused(env: Env) -> Env {
    let sync = set_up_object(&env, ObjectKind::Contact, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let base = engine::clock::now_ms() - 60 * MINUTE;
    for (name, address) in [("Grace Hopper", "grace@example.com"), ("Ada Lovelace", "Ada@Example.com"), ("Alan Turing", "alan@example.com")]
    {
        env.pd_object("persons", json!({"name": name, "emails": email(address)}), base).await;
    }
    env.faults(&env.hubspot, json!({"search_lag_ms": 600_000})).await;
    let ada_hs = env
        .hs_object(
            "contacts",
            json!({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0999"}),
            None,
        )
        .await;

    let engine = engine(&env);
    let persons = env.pd_persons(&sync).await.values().map(Vec::len).sum::<usize>() as i64;
    let first = run(&engine, &sync).await;
    // Every person but Ada is created in HubSpot (the sandbox's own among them), none fails.
    assert_eq!((first.outcome.as_str(), first.created_in_hub, first.failed_to_hub), ("succeeded", persons - 1, 0), "{first:?}");
    let (hs, pd) = (env.hs_contacts(&sync).await, env.pd_persons(&sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &[]);
    for address in ["ada@example.com", "alan@example.com", "grace@example.com"] {
        assert!(hs.contains_key(address), "{address} in HubSpot: {:?}", hs.keys());
    }
    assert_eq!(hs["ada@example.com"][0].0, ada_hs, "linked to the contact that was there");
    // Merged as a match is: HubSpot's phone fills Pipedrive's blank.
    assert_eq!(primary(&pd["ada@example.com"][0], "phones"), "+44 20 7946 0999");
    let rows = records(&env, &sync).await;
    let ada = rows.iter().find(|r| r.hubspot_id.as_deref() == Some(ada_hs.as_str())).expect("Ada's record");
    assert_eq!((ada.state.as_str(), ada.reason.map(model::states::RecordReason::as_str)), ("linked", None));
    let events = env.connections.store().record_events(&ada.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Matched), "{events:?}");
    assert!(!events.iter().any(|e| e.kind == EventKind::Failed), "{events:?}");

    let second = run(&engine, &sync).await;
    assert_eq!(
        (second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub, second.failed_to_hub),
        (0, 0, 0, 0, 0),
        "{second:?}"
    );
    env
}

//! Contacts and companies between the sandboxes over HTTP, on SQLite and Postgres: contacts match
//! on email and companies on domain (Pipedrive's organization website), so a record that exists in
//! both apps is linked, never copied; the rest is created once on the other side; changes flow
//! both ways afterwards; a second record with a key already synced is left out as a duplicate.

mod common;

use std::collections::HashMap;

use common::deals::*;
use common::*;
use model::apps::ObjectKind;
use model::states::{EventKind, RecordState, RunOutcome, RunTrigger};
use model::sync::ConflictRule;
use serde_json::{json, Value};

impl Env {
    /// Every live Pipedrive person or organization, by what `key` picks from it.
    async fn pd_by(&self, sync: &Sync, object: &str, key: impl Fn(&Value) -> String) -> HashMap<String, Vec<Value>> {
        let token = self.token(&sync.pipedrive).await;
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", "500".to_string())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let url = format!("{}/api/v2/{object}", self.pipedrive.url());
            let page: Value = self.http.get(url).query(&q).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            for r in page["data"].as_array().unwrap() {
                out.entry(key(r)).or_default().push(r.clone());
            }
            cursor = page["additional_data"]["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return out;
            }
        }
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

on_both_backends!(contacts_match_on_email_and_sync_both_ways);
async fn contacts_match_on_email_and_sync_both_ways(env: Env) -> Env {
    let sync = set_up_object(&env, ObjectKind::Contact, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let base = engine::clock::now_ms() - 60 * MINUTE;
    // Ada is in both apps (in capitals in Pipedrive); her HubSpot record changed last.
    let ada_pd = env
        .pd_object(
            "persons",
            json!({"name": "Ada Lovelace", "emails": email("Ada@Example.com"), "phones": email("+44 20 7946 0000")}),
            base,
        )
        .await;
    let ada_hs = env
        .hs_object(
            "contacts",
            json!({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0999"}),
            base + 20 * MINUTE,
        )
        .await;
    let grace_hs = env.hs_object("contacts", json!({"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.com"}), base).await;
    let alan_pd = env.pd_object("persons", json!({"name": "Alan Turing", "emails": email("alan@example.com")}), base).await;
    let nameless_pd = env.pd_object("persons", json!({"name": "Katherine Johnson"}), base).await;
    // Two Pipedrive persons share an email: one syncs, the other is left out as a duplicate.
    env.pd_object("persons", json!({"name": "Dup One", "emails": email("dup@example.com")}), base).await;
    env.pd_object("persons", json!({"name": "Dup Two", "emails": email("dup@example.com")}), base).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    assert_eq!(first.trigger, RunTrigger::Initial);
    let (hs, pd) = (env.hs_contacts(&sync).await, env.pd_persons(&sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &["dup@example.com"]);
    // Ada is linked, not copied: HubSpot's later phone and lower-case email reach Pipedrive.
    assert_eq!(hs["ada@example.com"][0].0, ada_hs);
    let ada = &pd["ada@example.com"][0];
    assert_eq!(ada["id"].to_string(), ada_pd);
    assert_eq!((primary(ada, "emails"), primary(ada, "phones")), ("ada@example.com".to_string(), "+44 20 7946 0999".to_string()));
    // Grace reaches Pipedrive with her whole name, Alan HubSpot with his first and last name.
    assert_eq!(pd["grace@example.com"][0]["name"], "Grace Hopper");
    let alan = &hs["alan@example.com"][0].1;
    assert_eq!((alan["firstname"].as_str(), alan["lastname"].as_str()), (Some("Alan"), Some("Turing")), "{alan}");
    // Without an email nothing is matched: Katherine is created in HubSpot, once.
    let katherine: Vec<&(String, Value)> = hs.values().flatten().filter(|(_, p)| p["lastname"] == "Johnson").collect();
    assert_eq!(katherine.len(), 1, "{katherine:?}");
    assert_eq!((hs["dup@example.com"].len(), pd["dup@example.com"].len()), (1, 2));

    let rows = records(&env, &sync).await;
    let row_of = |hub: &str| rows.iter().find(|r| r.hubspot_id.as_deref() == Some(hub)).cloned().expect("a record");
    let ada_row = row_of(&ada_hs);
    assert_eq!(
        (ada_row.app_id.as_deref(), ada_row.state.as_str(), ada_row.match_key.as_deref()),
        (Some(ada_pd.as_str()), "linked", Some("ada@example.com"))
    );
    let events = env.connections.store().record_events(&ada_row.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == EventKind::Matched && e.message.as_deref().unwrap_or_default().contains("ada@example.com")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.kind == EventKind::Created), "Ada is never created: {events:?}");
    let duplicates: Vec<_> = rows.iter().filter(|r| r.reason.map(model::states::RecordReason::as_str) == Some("duplicate")).collect();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert!(duplicates[0].message.as_deref().unwrap_or_default().contains("dup@example.com"));
    let nameless = rows.iter().find(|r| r.app_id.as_deref() == Some(nameless_pd.as_str())).expect("Katherine's record");
    assert_eq!((nameless.state.as_str(), nameless.match_key.as_deref()), ("linked", None));

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

    // Changes flow both ways: Grace's name in Pipedrive, Alan's phone in HubSpot (his name stays).
    let now = engine::clock::now_ms();
    let grace_pd = pd["grace@example.com"][0]["id"].to_string();
    env.pd_object_edit("persons", &grace_pd, json!({"name": "Grace Brewster"}), now).await;
    let alan_hs = hs["alan@example.com"][0].0.clone();
    env.hs_object_edit("contacts", &alan_hs, json!({"phone": "+44 161 496 0000"}), now).await;
    // New on both sides since: Linus in both apps (linked), Margaret in HubSpot only.
    env.pd_object("persons", json!({"name": "Linus Torvalds", "emails": email("linus@example.com")}), now).await;
    let linus_hs =
        env.hs_object("contacts", json!({"firstname": "Linus", "lastname": "Torvalds", "email": "linus@example.com"}), now).await;
    env.hs_object("contacts", json!({"firstname": "Margaret", "lastname": "Hamilton", "email": "margaret@example.com"}), now).await;
    let third = run(&engine, &sync).await;
    assert_eq!(third.trigger, RunTrigger::Manual);
    let (hs, pd) = (env.hs_contacts(&sync).await, env.pd_persons(&sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &["dup@example.com"]);
    assert_eq!(hs["grace@example.com"][0].0, grace_hs);
    assert_eq!(hs["grace@example.com"][0].1["lastname"], "Brewster");
    let alan = &pd["alan@example.com"][0];
    assert_eq!(
        (alan["id"].to_string(), primary(alan, "phones"), alan["name"].as_str()),
        (alan_pd.clone(), "+44 161 496 0000".to_string(), Some("Alan Turing"))
    );
    assert_eq!(hs["linus@example.com"][0].0, linus_hs, "linked to the HubSpot contact that was there");
    assert_eq!(pd["margaret@example.com"][0]["name"], "Margaret Hamilton");
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

on_both_backends!(companies_match_on_domain);
async fn companies_match_on_domain(env: Env) -> Env {
    let sync = set_up_object(&env, ObjectKind::Company, |_, _| {}).await;
    let settings = model::sync::SyncSettings::new_for(ObjectKind::Company, &sync.schemas);
    let fields: Vec<(&str, &str)> = settings.fields.iter().map(|m| (m.hubspot_property.as_str(), m.app_field.as_str())).collect();
    assert!(fields.contains(&("domain", "website")), "the domain maps to the website by default: {fields:?}");
    let base = engine::clock::now_ms() - 60 * MINUTE;
    // Initrode is in both apps: HubSpot knows its domain, Pipedrive its website (a full URL).
    let initrode_pd =
        env.pd_object("organizations", json!({"name": "Initrode GmbH", "website": "https://www.Initrode.example/about"}), base).await;
    let initrode_hs = env.hs_object("companies", json!({"name": "Initrode", "domain": "initrode.example"}), base + 20 * MINUTE).await;
    env.pd_object(
        "organizations",
        json!({"name": "Umbrella Corp", "website": "http://umbrella.example", "address": {"value": "1 Raccoon Way"}}),
        base,
    )
    .await;
    env.hs_object("companies", json!({"name": "Hooli", "domain": "hooli.example", "address": "1 Hacker Way"}), base).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    let hs = env.hs_by(&sync, "companies", "domain", "name,domain,address").await;
    let pd = env.pd_by(&sync, "organizations", |o| o["name"].as_str().unwrap_or_default().to_string()).await;
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &[]);
    // Linked, and HubSpot's later name wins; the website stays a website, the domain a domain.
    assert_eq!(hs["initrode.example"][0].0, initrode_hs);
    assert!(!pd.contains_key("Initrode GmbH"), "renamed after HubSpot's later change: {:?}", pd.keys());
    assert_eq!(pd["Initrode"][0]["id"].to_string(), initrode_pd);
    // Created once on the other side each, with their addresses; HubSpot's domain bare.
    assert_eq!(hs["umbrella.example"][0].1["name"], "Umbrella Corp");
    assert_eq!(hs["umbrella.example"][0].1["address"], "1 Raccoon Way");
    assert_eq!(pd["Hooli"][0]["website"], "hooli.example");
    assert_eq!(pd["Hooli"][0]["address"]["value"], "1 Hacker Way");
    let second = run(&engine, &sync).await;
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");
    env
}

on_both_backends!(contacts_under_faults_and_an_interrupted_create_are_never_duplicated);
/// Contacts new on each side and in both, synced while both sandboxes answer 429, 5xx and drop
/// connections and the tokens expire: every email ends up once on each side. Then a create
/// interrupted before Tandem recorded it is found by its Tandem id, not repeated.
async fn contacts_under_faults_and_an_interrupted_create_are_never_duplicated(env: Env) -> Env {
    let sync = set_up_object(&env, ObjectKind::Contact, |_, _| {}).await;
    let base = engine::clock::now_ms() - 60 * MINUTE;
    let mut emails = Vec::new();
    for i in 0..40 {
        let email_hs = format!("hubspot{i:02}@example.com");
        env.hs_object("contacts", json!({"firstname": "Hub", "lastname": format!("Spot {i:02}"), "email": email_hs}), base).await;
        emails.push(email_hs);
    }
    for i in 0..30 {
        let email_pd = format!("pipedrive{i:02}@example.com");
        env.pd_object("persons", json!({"name": format!("Pipe Drive {i:02}"), "emails": email(&email_pd)}), base).await;
        emails.push(email_pd);
    }
    for i in 0..15 {
        let both = format!("both{i:02}@example.com");
        env.hs_object("contacts", json!({"firstname": "Both", "lastname": format!("Sides {i:02}"), "email": both}), base).await;
        env.pd_object("persons", json!({"name": format!("Both Sides {i:02}"), "emails": email(&both)}), base).await;
        emails.push(both);
    }
    env.fault_both().await;
    let engine = engine(&env);
    let mut runs = 0;
    loop {
        runs += 1;
        let _ = engine.run_sync(&sync.id, engine::runner::Trigger::Manual).await.expect("run");
        let rows = records(&env, &sync).await;
        let settled =
            rows.iter().all(|r| r.state == RecordState::Linked || r.reason.map(model::states::RecordReason::as_str) == Some("duplicate"));
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
    env.clear_faults().await;
    let (hs, pd) = (env.hs_contacts(&sync).await, env.pd_persons(&sync).await);
    once_each("HubSpot", &hs, &[]);
    once_each("Pipedrive", &pd, &[]);
    for e in &emails {
        assert!(hs.contains_key(e) && pd.contains_key(e), "{e} on both sides");
    }

    // As if Tandem had died after Pipedrive created a person and before the link was committed.
    let store = env.connections.store();
    let mut row = records(&env, &sync).await.into_iter().find(|r| r.match_key.as_deref() == Some("hubspot07@example.com")).unwrap();
    let person = row.app_id.clone().unwrap();
    (row.app_id, row.state, row.create_on) = (None, RecordState::Creating, Some("app".into()));
    store.save_records(&[row]).await.unwrap();
    let r = run(&engine, &sync).await;
    assert_eq!(r.created_in_app, 0, "{r:?}");
    let pd = env.pd_persons(&sync).await;
    assert_eq!(pd["hubspot07@example.com"].len(), 1, "no second copy");
    assert_eq!(pd["hubspot07@example.com"][0]["id"].to_string(), person);
    let linked = records(&env, &sync).await.into_iter().find(|r| r.match_key.as_deref() == Some("hubspot07@example.com")).unwrap();
    assert_eq!((linked.state.as_str(), linked.app_id.as_deref()), ("linked", Some(person.as_str())));
    env
}

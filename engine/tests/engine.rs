//! The sync engine against HubSpot and Pipedrive over HTTP, on SQLite and Postgres, where
//! Pipedrive is what is tested (its changelog, its webhooks), and the engine's own machinery (one
//! runner per sync, leases, search windows, settings changes, paging). What every app must do is
//! in the conformance suite (`conformance.rs`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::apps::{App, DealFields, Stage};
use common::deals::*;
use common::*;
use engine::runner::{Engine, EngineConfig, Trigger};
use engine::syncs::Syncs;
use engine::worker::{self, Wake};
use model::apps::{ObjectKind, SyncDirection};
use model::states::RecordState;
use model::sync::{ConflictRule, Filter, FilterOp, SyncSettings};
use serde_json::{json, Value};

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

fn model_now() -> i64 {
    engine::clock::now_ms()
}

on_both_backends!(the_engine_registers_one_pipedrive_webhook_per_object);
/// A sync's first run registers Tandem's Pipedrive webhooks (one-way syncs too: the conformance
/// suite checks they never write back), with credentials only Tandem can derive.
async fn the_engine_registers_one_pipedrive_webhook_per_object(env: Env) -> Env {
    let sync = set_up(&env, |s, _| {
        s.direction = SyncDirection::ToApp;
        for f in &mut s.fields {
            f.direction = SyncDirection::ToApp;
        }
    })
    .await;
    env.hs_create(json!({"dealname": "Outbound", "amount": "10", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    let engine = engine(&env);
    let r = run(&engine, &sync).await;
    assert_eq!((r.created_in_app, r.created_in_hub), (1, 0), "{r:?}");
    let token = env.token(&sync.pipedrive).await;
    let hooks: Value =
        env.http.get(format!("{}/api/v1/webhooks", env.pipedrive.url())).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let url = format!("{TANDEM_URL}/webhooks/pipedrive/{}", sync.pipedrive);
    // One webhook per object: deals, and persons and organizations for contacts and companies
    // syncs; pipelines, stages and users, whose changes the kept schema follows.
    let mut objects: Vec<(&str, &str)> = hooks["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["subscription_url"] == url.as_str())
        .map(|h| (h["event_object"].as_str().unwrap_or_default(), h["version"].as_str().unwrap_or_default()))
        .collect();
    objects.sort();
    assert_eq!(
        objects,
        vec![("deal", "2.0"), ("organization", "2.0"), ("person", "2.0"), ("pipeline", "2.0"), ("stage", "2.0"), ("user", "2.0")],
        "{hooks}"
    );
    env
}

/// The URLs of the webhooks (Pipedrive) or notification channels (Zoho CRM) registered with an
/// app, read with `token`.
async fn app_webhooks(env: &Env, app: &str, token: &str) -> Vec<String> {
    let (url, auth, list, field) = match app {
        "pipedrive" => (format!("{}/api/v1/webhooks", env.pipedrive.url()), format!("Bearer {token}"), "data", "subscription_url"),
        _ => (format!("{}/crm/v8/actions/watch", env.zoho.url()), format!("Zoho-oauthtoken {token}"), "watch", "notify_url"),
    };
    let r = env.http.get(url).header("Authorization", auth).send().await.unwrap();
    if r.status() == 204 {
        return Vec::new();
    }
    let body: Value = r.json().await.unwrap();
    body[list].as_array().into_iter().flatten().filter_map(|h| h[field].as_str().map(str::to_string)).collect()
}

/// Registers a webhook (or channel) at `url` as another install (or another integration) would.
async fn add_app_webhook(env: &Env, app: &str, token: &str, url: &str, channel: u64) {
    let r = match app {
        "pipedrive" => env.http.post(format!("{}/api/v1/webhooks", env.pipedrive.url())).bearer_auth(token).json(
            &json!({"name": "Another install", "subscription_url": url, "event_action": "*", "event_object": "deal", "version": "2.0"}),
        ),
        _ => env
            .http
            .post(format!("{}/crm/v8/actions/watch", env.zoho.url()))
            .header("Authorization", format!("Zoho-oauthtoken {token}"))
            .json(&json!({"watch": [{"channel_id": channel, "events": ["Deals.all"], "notify_url": url, "token": "old"}]})),
    };
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap());
}

/// Webhooks left at Tandem's address by an earlier install (its data folder reset) were
/// delivered, refused and retried for good, and Uninstall left the connection's own behind.
async fn webhooks_left_behind_are_removed_and_uninstall_removes_its_own(env: Env, app: &str) -> Env {
    let sync = set_up_app(&env, app, model::apps::ObjectKind::Deal, |_, _| {}).await;
    let token = env.token(&sync.app).await;
    let left = format!("{TANDEM_URL}/webhooks/{app}/0190c0de-0000-7000-8000-00000000dead");
    let foreign = format!("https://elsewhere.example/hooks/{app}");
    add_app_webhook(&env, app, &token, &left, 1_500_000_000_000_001).await;
    add_app_webhook(&env, app, &token, &foreign, 1_500_000_000_000_002).await;
    run(&engine(&env), &sync).await;
    let own = format!("{TANDEM_URL}/webhooks/{app}/{}", sync.app);
    let urls = app_webhooks(&env, app, &token).await;
    assert!(urls.contains(&own), "{urls:?}");
    assert!(!urls.contains(&left), "an earlier install's webhook is removed: {urls:?}");
    assert!(urls.contains(&foreign), "another receiver's stays: {urls:?}");

    env.connections.uninstall(&env.admin, &sync.app).await.expect("uninstall");
    // Tandem's token is revoked now: read with one of the app's own.
    let (app_sandbox, scopes) = match app {
        "pipedrive" => (&env.pipedrive, json!(["admin"])),
        _ => (&env.zoho, json!(["ZohoCRM.notifications.ALL"])),
    };
    let minted: Value = env
        .http
        .post(format!("{}/_sandbox/tokens", app_sandbox.url()))
        .json(&json!({"client_id": sandbox::DEMO_CLIENT_ID, "scopes": scopes}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let urls = app_webhooks(&env, app, minted["access_token"].as_str().unwrap()).await;
    assert!(!urls.contains(&own), "Uninstall removes the connection's webhooks: {urls:?}");
    assert!(urls.contains(&foreign), "{urls:?}");
    env
}

on_both_backends!(pipedrive_webhooks_left_behind_are_removed);
async fn pipedrive_webhooks_left_behind_are_removed(env: Env) -> Env {
    webhooks_left_behind_are_removed_and_uninstall_removes_its_own(env, "pipedrive").await
}

on_both_backends!(zoho_channels_left_behind_are_removed);
async fn zoho_channels_left_behind_are_removed(env: Env) -> Env {
    webhooks_left_behind_are_removed_and_uninstall_removes_its_own(env, "zoho").await
}

on_both_backends!(pipedrive_fields_are_read_through_api_v2);
/// Pipedrive has been removing API v1 endpoints: the fields of deals, persons and organizations
/// are read through API v2 (`getDealFields`, `getPersonFields`, `getOrganizationFields`) and
/// Tandem's own field added there (`addDealField`). With every v1 fields call refused, the setup
/// sees the custom fields and a first run creates its deal.
async fn pipedrive_fields_are_read_through_api_v2(env: Env) -> Env {
    env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_path": "/api/v1/dealFields"})).await;
    let sync = set_up(&env, |_, _| {}).await;
    let lead = sync.schemas.app.fields.iter().find(|f| f.label == "Lead source");
    assert!(lead.is_some_and(|f| f.custom && f.key.len() == 40), "{:?}", sync.schemas.app.fields);
    env.hs_create(json!({"dealname": "Over v2", "amount": "10", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    let r = run(&engine(&env), &sync).await;
    assert_eq!(r.outcome, model::states::RunOutcome::Succeeded, "{:?}", r.message);
    assert_eq!(r.created_in_app, 1, "{r:?}");
    let token = env.token(&sync.pipedrive).await;
    let fields: Value = env
        .http
        .get(format!("{}/api/v2/dealFields?limit=500", env.pipedrive.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tandem: Vec<&Value> = fields["data"].as_array().unwrap().iter().filter(|f| f["field_name"] == "Tandem record ID").collect();
    assert_eq!(tandem.len(), 1, "Tandem's field was added once: {fields}");
    let syncs = Syncs::new(env.connections.clone());
    for (path, object, custom) in [
        ("/api/v1/personFields", model::apps::ObjectKind::Contact, "Contact type"),
        ("/api/v1/organizationFields", model::apps::ObjectKind::Company, "Industry"),
    ] {
        env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_path": path})).await;
        let schemas = syncs.schemas(&sync.app, object).await.expect("schemas");
        assert!(schemas.app.fields.iter().any(|f| f.label == custom && f.custom), "{:?}", schemas.app.fields);
    }
    env.clear_faults().await;
    env
}

on_both_backends!(hubspot_requests_carry_what_its_spec_requires);
/// HubSpot's spec requires `after`, `filterGroups`, `limit`, `properties` and `sorts` in a search
/// and `associations` in a create input (Tandem's requests used to leave `after`, `sorts` and
/// `associations` out). With the HubSpot sandbox refusing bodies that lack them
/// (`/_sandbox/strict`), the stage counts, an initial sync that creates a deal in HubSpot, and a
/// run that reads what changed since all succeed.
async fn hubspot_requests_carry_what_its_spec_requires(env: Env) -> Env {
    let strict = |on: bool| {
        let request = env.http.put(format!("{}/_sandbox/strict", env.hubspot.url())).json(&json!({"required_fields": on}));
        async move { assert!(request.send().await.unwrap().status().is_success()) }
    };
    strict(true).await;
    let sync = set_up(&env, |_, _| {}).await;
    let counts = Syncs::new(env.connections.clone()).stage_counts(&sync.pipedrive, "default", "1").await.expect("stage counts");
    assert!(!counts.hubspot.is_empty(), "{counts:?}");
    let meeting: u64 = pd_stage(&sync, "Meeting Scheduled").parse().unwrap();
    env.pd_create(json!({"title": "To HubSpot", "value": 700, "pipeline_id": 1, "stage_id": meeting}), None).await;
    let hs_id = env
        .hs_create(json!({"dealname": "To Pipedrive", "amount": "300", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, model::states::RunOutcome::Succeeded, "{:?}", first.message);
    assert_eq!((first.created_in_hub, first.created_in_app), (1, 1), "{first:?}");
    env.hs_edit(&hs_id, json!({"amount": "350"}), None).await;
    let second = run(&engine, &sync).await;
    assert_eq!(second.outcome, model::states::RunOutcome::Succeeded, "{:?}", second.message);
    assert_eq!(env.pd_deals(&sync).await["To Pipedrive"]["value"].as_f64(), Some(350.0));
    assert!(env.hs_deals(&sync).await.contains_key("To HubSpot"));
    strict(false).await;
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

on_both_backends!(a_run_slower_than_its_lease_keeps_it_and_a_dead_instances_lapses);
async fn a_run_slower_than_its_lease_keeps_it_and_a_dead_instances_lapses(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    env.hs_create(json!({"dealname": "Slow", "amount": "5", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    // A lease of one second and calls that take 700 ms each: the run's first page is committed
    // long after its lease would have lapsed, had nothing renewed it.
    let short = EngineConfig { lease: Duration::from_secs(1), ..EngineConfig::default() };
    let (a, b) = (Engine::new(env.connections.clone(), short.clone()), Engine::new(env.other_instance.clone(), short));
    env.faults(&env.pipedrive, json!({"latency_ms": 700})).await;
    let running = tokio::spawn({
        let (a, id) = (a.clone(), sync.id.clone());
        async move { a.run_sync(&id, Trigger::Manual).await }
    });
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(!running.is_finished(), "the run is still reading (the test needs a slow run)");
    assert!(b.run_sync(&sync.id, Trigger::Manual).await.unwrap().is_none(), "a running sync's lease is renewed, not taken over");
    let ran = running.await.unwrap().unwrap().expect("the first instance ran the sync").run;
    assert_eq!(ran.outcome, model::states::RunOutcome::Succeeded, "{:?}", ran.message);
    env.clear_faults().await;
    assert!(env.pd_deals(&sync).await.contains_key("Slow"));

    // An instance killed while it held the lease (nothing renews it any more): the other one
    // takes the sync over once the lease's second has passed, not a minute later.
    let store = env.connections.store();
    let now = model_now();
    assert!(store.claim_sync(&sync.id, "killed-instance", now, now + 1_000).await.unwrap());
    assert!(b.run_sync(&sync.id, Trigger::Manual).await.unwrap().is_none(), "a live lease is respected");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(b.run_sync(&sync.id, Trigger::Manual).await.unwrap().is_some(), "a lapsed lease is taken over");
    env
}

on_both_backends!(hubspot_changes_read_while_tandem_writes_to_hubspot_are_never_skipped);
async fn hubspot_changes_read_while_tandem_writes_to_hubspot_are_never_skipped(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    let mut ids = Vec::new();
    // Four of HubSpot's search pages (200 deals each): the second is read while the first is
    // written, the third after.
    for i in 0..800 {
        let props = json!({"dealname": format!("Paged {i:03}"), "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"});
        ids.push(env.hs_create(props, None).await);
    }
    let engine = engine(&env);
    run(&engine, &sync).await;
    run(&engine, &sync).await;
    // Every amount changes in HubSpot, one deal after another; the first page's deals also get a
    // close date in Pipedrive, which the run writes to HubSpot while it pages through the changes
    // (HubSpot pages a search by offset: each deal it writes moves to the end of the results).
    for (i, id) in ids.iter().enumerate() {
        env.hs_edit(id, json!({"amount": format!("{}", 1000 + i)}), None).await;
    }
    let pd = env.pd_deals(&sync).await;
    for i in 0..200 {
        let id = pd[&format!("Paged {i:03}")]["id"].to_string();
        env.pd_edit(&id, json!({"expected_close_date": "2027-03-01"}), None).await;
    }
    let r = run(&engine, &sync).await;
    assert_eq!(r.outcome, model::states::RunOutcome::Succeeded, "{:?}", r.message);
    let pd = env.pd_deals(&sync).await;
    let stale: Vec<String> = (0..800)
        .filter(|i| pd[&format!("Paged {i:03}")]["value"].as_f64() != Some((1000 + i) as f64))
        .map(|i| format!("Paged {i:03}"))
        .collect();
    assert!(stale.is_empty(), "HubSpot's amounts reached Pipedrive, none skipped: {} stale ({:?}…)", stale.len(), stale.first());
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

on_both_backends!(a_bulk_change_is_read_once_not_by_every_run_after_it);
/// A bulk change (300 deals made in HubSpot within a second or two) is read by the run that
/// follows it, and not again: the next run reads only what changed since. It used to be read by
/// every run until something newer came (each run reached five seconds before the newest change
/// it had read), some 300 reads a run on a quiet account.
async fn a_bulk_change_is_read_once_not_by_every_run_after_it(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    for i in 0..300 {
        env.hs_create(
            json!({"dealname": format!("Bulk {i:03}"), "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    // Past what HubSpot's search may trail by (10 s allowed), as a run woken later would be.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let first = run(&engine, &sync).await;
    assert_eq!(first.created_in_app, 300, "{first:?}");
    let second = run(&engine, &sync).await;
    // Only the few sharing the newest one's millisecond are read again.
    assert!(second.skipped_from_hub <= 5, "the 300 deals were not read again: {second:?}");
    assert_eq!(second.calls_read, 2, "one read of each side: {second:?}");
    let third = run(&engine, &sync).await;
    assert!(third.skipped_from_hub <= 5, "{third:?}");
    assert_eq!(env.pd_deals(&sync).await.len(), 300);
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
    let acme = hs_create_acme(&env).await;
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

on_both_backends!(every_call_a_run_makes_is_counted_by_purpose);
/// A run's history tells its calls apart: reading records, writing them, looking particular ones
/// up, and the schema (fields, pipelines, owners, Tandem id fields, webhooks); they add up to
/// its calls in all. The schema a run read serves the runs that follow: a change then costs a
/// read of each side, the lookup of the record's other side and its write.
async fn every_call_a_run_makes_is_counted_by_purpose(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let acme = hs_create_acme(&env).await;
    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.created_in_app, 1, "{first:?}");
    let by_purpose = |r: &engine::store::RunRow| (r.calls_read, r.calls_write, r.calls_lookup, r.calls_schema);
    let (read, write, lookup, schema) = by_purpose(&first);
    assert_eq!(read + write + lookup + schema, first.api_calls, "{first:?}");
    assert!(read >= 2, "both sides read: {first:?}");
    assert!(write >= 1, "the deal created in Pipedrive: {first:?}");
    assert!(schema >= 6, "each side's Tandem id field, schema and owners: {first:?}");

    env.hs_edit(&acme, json!({"amount": "2500"}), None).await;
    let second = run(&engine, &sync).await;
    assert_eq!(second.updated_in_app, 1, "{second:?}");
    let (read, write, lookup, schema) = by_purpose(&second);
    assert_eq!(read + write + lookup + schema, second.api_calls, "{second:?}");
    assert_eq!((read, write, schema), (2, 1, 0), "each side read once, one write, the schema kept: {second:?}");
    assert!(second.api_calls <= 4, "{second:?}");

    // History shows them.
    let summary = engine::dashboards::run_summary(second.clone());
    assert_eq!(summary.calls_by_purpose(), format!("reads 2 · writes 1 · lookups {lookup} · schema 0"));
    env
}

on_both_backends!(the_schema_is_read_again_when_settings_change_or_a_write_is_refused);
/// The schema kept between runs is never stale where it matters: a field mapped after a run is
/// read with the settings saved, and a write the app refuses (a field gone) makes the next run
/// read the schema again.
async fn the_schema_is_read_again_when_settings_change_or_a_write_is_refused(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let acme = hs_create_acme(&env).await;
    let engine = engine(&env);
    assert!(run(&engine, &sync).await.calls_schema > 0);
    env.hs_edit(&acme, json!({"amount": "2000"}), None).await;
    assert_eq!(run(&engine, &sync).await.calls_schema, 0, "kept");

    // A settings change: the next run reads the schema for them.
    let syncs = Syncs::new(env.connections.clone());
    let mut settings = syncs.list().await.unwrap().pop().unwrap().settings;
    settings.conflict_rule = match settings.conflict_rule {
        ConflictRule::DefaultToHubSpot => ConflictRule::DefaultToApp,
        ConflictRule::DefaultToApp => ConflictRule::DefaultToHubSpot,
    };
    syncs.save(&env.admin, &sync.pipedrive, &settings).await.unwrap();
    let after_save = run(&engine, &sync).await;
    assert!(after_save.calls_schema > 0, "{after_save:?}");
    env.hs_edit(&acme, json!({"amount": "2500"}), None).await;
    assert_eq!(run(&engine, &sync).await.calls_schema, 0, "kept again");

    // A refused write: the next run reads the schema again.
    env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_method": "PATCH", "only_path": "/api/v2/deals"})).await;
    env.hs_edit(&acme, json!({"amount": "3000"}), None).await;
    let refused = run(&engine, &sync).await;
    assert_eq!(refused.failed_to_app, 1, "{refused:?}");
    assert_eq!(refused.calls_schema, 0, "{refused:?}");
    env.clear_faults().await;
    env.hs_edit(&acme, json!({"amount": "3500"}), None).await;
    let next = run(&engine, &sync).await;
    assert!(next.calls_schema > 0, "read again after the refusal: {next:?}");
    assert_eq!(env.pd_deals(&sync).await["Acme renewal"]["value"].as_f64(), Some(3500.0));
    env
}

on_both_backends!(a_long_initial_sync_never_holds_back_another_syncs_change);
/// One instance runs its syncs side by side: while a Pipedrive deals sync copies 100,000 deals,
/// a deal created in Zoho CRM reaches HubSpot within 5 s of its webhook (one after another, it
/// waited for the whole initial sync).
async fn a_long_initial_sync_never_holds_back_another_syncs_change(env: Env) -> Env {
    let seeded = env.http.post(format!("{}/_sandbox/seed", env.pipedrive.url())).json(&json!({"deals": 100_000})).send().await.unwrap();
    assert!(seeded.status().is_success());
    let big = set_up(&env, |s, _| s.filters.clear()).await;
    let zoho = env.install("zoho").await;
    let syncs = Syncs::new(env.connections.clone());
    let schemas = syncs.schemas(&zoho, ObjectKind::Deal).await.expect("Zoho's schemas");
    let mut settings = SyncSettings::new_for(ObjectKind::Deal, &schemas);
    settings.filters.clear();
    App::Zoho.map_stages(&mut settings, &schemas);
    let saved = syncs.save(&env.admin, &zoho, &settings).await.expect("the Zoho sync");
    let small = Sync { id: saved.id, pipedrive: zoho.clone(), hubspot: big.hubspot.clone(), schemas, app: zoho };

    let store = env.connections.store().clone();
    let engine = Engine::new(env.connections.clone(), EngineConfig { concurrency: 4, ..EngineConfig::default() });
    let wake = Wake::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker::run(engine::Accounts::new(store.clone()), Some(engine), wake.clone(), stopped));

    // The Zoho sync's initial sync ends while the Pipedrive one copies its deals.
    let ran = |runs: &[engine::store::RunRow]| runs.iter().any(|r| r.outcome.as_str() == "succeeded");
    let started = std::time::Instant::now();
    while !ran(&store.runs(&small.id, 10).await.unwrap()) {
        assert!(started.elapsed() < Duration::from_secs(120), "the Zoho sync's initial sync never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let name = "Side by side";
    App::Zoho
        .create_deal(
            &env,
            &small,
            DealFields { name: Some(name), amount: Some(4200.0), stage: Some(Stage::First), ..Default::default() },
            None,
        )
        .await;
    // As the webhook does: the sync is due now, and the engine is woken for it.
    let woken = std::time::Instant::now();
    store.wake_sync(&small.id, model_now()).await.unwrap();
    wake.syncs([small.id.clone()]);
    let linked = |records: Vec<engine::store::RecordRow>| records.into_iter().any(|r| r.name == name && r.hubspot_id.is_some());
    while !linked(records(&env, &small).await) {
        assert!(woken.elapsed() < Duration::from_secs(5), "the Zoho deal did not reach HubSpot within 5 s of its webhook");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = woken.elapsed();
    let state = store.sync_state(&big.id).await.unwrap().expect("the Pipedrive sync's state");
    assert!(state.phase.is_initial(), "the Pipedrive sync's initial sync was still under way: {:?}", state.phase);
    eprintln!("a Zoho change reached HubSpot {took:?} after its webhook, during a 100,000-deal initial sync");
    env.hs_find(&small, "deals", "dealname", name).await;

    stop.send(true).unwrap();
    task.await.unwrap();
    env
}

on_both_backends!(a_stage_added_in_the_app_and_a_new_hubspot_property_are_used_by_the_next_run);
/// The schema a run keeps never hides what an admin adds: a stage added in Pipedrive and a
/// property created in HubSpot (with a Pipedrive field to match), once the sync's settings map
/// them, are used by the very next run.
async fn a_stage_added_in_the_app_and_a_new_hubspot_property_are_used_by_the_next_run(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let acme = hs_create_acme(&env).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    env.hs_edit(&acme, json!({"amount": "1600"}), None).await;
    assert_eq!(run(&engine, &sync).await.calls_schema, 0, "the schema is kept");

    // In Pipedrive, a stage and a deal field; in HubSpot, a deal property (as admins add them).
    let pd_admin = sandbox::walk::mint_token(&env.pipedrive.url(), sandbox::DEMO_CLIENT_ID, &["admin"]).await.unwrap();
    let legal_stage = pd_add_stage(&env, &pd_admin, "Legal review").await;
    let field = pd_admin_post(&env, &pd_admin, "/api/v1/dealFields", json!({"name": "Legal contact", "field_type": "varchar"})).await;
    let legal_field = field["data"]["key"].as_str().unwrap_or_else(|| panic!("{field}")).to_string();
    let hs_admin = sandbox::walk::mint_token(&env.hubspot.url(), sandbox::DEMO_CLIENT_ID, &["crm.schemas.deals.write"]).await.unwrap();
    let r = env
        .http
        .post(format!("{}/crm/v3/properties/deals", env.hubspot.url()))
        .bearer_auth(&hs_admin)
        .json(&json!({"name": "legal_contact", "label": "Legal contact", "type": "string", "fieldType": "text", "groupName": "dealinformation"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // The admin maps them.
    let syncs = Syncs::new(env.connections.clone());
    let mut settings = syncs.list().await.unwrap().pop().unwrap().settings;
    settings.pipelines[0].set_stage("contractsent", Some(legal_stage.clone()));
    settings.fields.push(model::sync::FieldMapping {
        hubspot_property: "legal_contact".into(),
        app_field: legal_field.clone(),
        direction: SyncDirection::TwoWay,
        values: vec![],
    });
    syncs.save(&env.admin, &sync.pipedrive, &settings).await.expect("the new stage and field map");

    env.hs_edit(&acme, json!({"dealstage": "contractsent", "legal_contact": "Lee Counsel"}), None).await;
    let next = run(&engine, &sync).await;
    assert!(next.calls_schema > 0, "read again for the new settings: {next:?}");
    let deal = &env.pd_deals(&sync).await["Acme renewal"];
    assert_eq!(deal["stage_id"].to_string(), legal_stage, "{deal}");
    assert_eq!(deal["custom_fields"][legal_field.as_str()].as_str(), Some("Lee Counsel"), "{deal}");
    env
}

/// Adds a stage to Pipedrive's Sales pipeline as an admin does; its id.
async fn pd_add_stage(env: &Env, admin_token: &str, name: &str) -> String {
    pd_admin_post(env, admin_token, "/api/v2/stages", json!({"name": name, "pipeline_id": 1})).await["data"]["id"].to_string()
}

/// What Pipedrive answers an admin's POST to `path`.
async fn pd_admin_post(env: &Env, admin_token: &str, path: &str, body: Value) -> Value {
    let r = env.http.post(format!("{}{path}", env.pipedrive.url())).bearer_auth(admin_token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "POST {path}: {}", r.status());
    r.json().await.unwrap()
}

/// The HubSpot deal several tests start from; its id.
async fn hs_create_acme(env: &Env) -> String {
    env.hs_create(json!({"dealname": "Acme renewal", "amount": "1500", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await
}

on_both_backends!(a_stage_deleted_in_the_app_is_reported_and_the_schema_read_again);
/// A mapped stage deleted in Pipedrive after the schema was kept: the deal moved onto it fails
/// with Pipedrive's reason, as it did when every run read the schema, and the next run reads the
/// schema again.
async fn a_stage_deleted_in_the_app_is_reported_and_the_schema_read_again(env: Env) -> Env {
    let pd_admin = sandbox::walk::mint_token(&env.pipedrive.url(), sandbox::DEMO_CLIENT_ID, &["admin"]).await.unwrap();
    let legal_stage = pd_add_stage(&env, &pd_admin, "Legal review").await;
    let sync = set_up(&env, |s, _| {
        s.filters.clear();
        s.pipelines[0].set_stage("contractsent", Some(legal_stage.clone()));
    })
    .await;
    let acme = hs_create_acme(&env).await;
    let engine = engine(&env);
    assert!(run(&engine, &sync).await.calls_schema > 0);

    let r = env.http.delete(format!("{}/api/v2/stages/{legal_stage}", env.pipedrive.url())).bearer_auth(&pd_admin).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    env.hs_edit(&acme, json!({"dealstage": "contractsent"}), None).await;
    let refused = run(&engine, &sync).await;
    assert_eq!((refused.failed_to_app, refused.calls_schema), (1, 0), "{refused:?}");
    let failed = records(&env, &sync).await.into_iter().find(|r| r.name == "Acme renewal").expect("the deal's record");
    assert_eq!(failed.state, RecordState::Failed, "{failed:?}");
    assert!(failed.message.as_deref().is_some_and(|m| m.contains("no such stage")), "{failed:?}");

    env.hs_edit(&acme, json!({"amount": "1700"}), None).await;
    assert!(run(&engine, &sync).await.calls_schema > 0, "read again after the refusal");
    env
}

on_both_backends!(an_owner_added_in_the_app_after_the_schema_was_kept_is_used_by_the_next_run);
/// A Pipedrive admin adds a user, and a HubSpot deal is then given to that person: the run that
/// syncs it finds no such user in the schema kept from an earlier run, reads the schema again
/// before writing anything, and the deal's new owner reaches Pipedrive. It used to be left out
/// (the timeline said so), and stayed out even once the schema was read again, as the owner had
/// not changed since.
async fn an_owner_added_in_the_app_after_the_schema_was_kept_is_used_by_the_next_run(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let engine = engine(&env);
    run(&engine, &sync).await;
    // Sam Lee has a user in both apps.
    let deal = env
        .hs_create(
            json!({"dealname": "Garcia account", "amount": "900", "pipeline": "default", "dealstage": "appointmentscheduled", "hubspot_owner_id": "70110002"}),
            None,
        )
        .await;
    let other = hs_create_acme(&env).await;
    let first = run(&engine, &sync).await;
    assert_eq!(first.created_in_app, 2, "{first:?}");
    let sam = env.pd_deals(&sync).await["Garcia account"]["owner_id"].as_u64();
    assert_eq!(sam, Some(13_540_004), "Sam Lee's Pipedrive user");

    // Jo Garcia joins Pipedrive, and the deal is given to Jo in HubSpot.
    let pd_admin = sandbox::walk::mint_token(&env.pipedrive.url(), sandbox::DEMO_CLIENT_ID, &["admin"]).await.unwrap();
    let user =
        pd_admin_post(&env, &pd_admin, "/api/v1/users", json!({"email": "jo.garcia@sandbox-portal.example", "name": "Jo Garcia"})).await;
    let jo = user["data"]["id"].as_u64().expect("the new user's id");
    env.hs_edit(&deal, json!({"hubspot_owner_id": "70110003"}), None).await;
    // Another deal changes on the same page: written once, counted once.
    env.hs_edit(&other, json!({"amount": "1750"}), None).await;
    let next = run(&engine, &sync).await;
    assert_eq!((next.updated_in_app, next.failed_to_app), (2, 0), "{next:?}");
    assert_eq!(env.pd_deals(&sync).await["Acme renewal"]["value"].as_f64(), Some(1750.0));
    assert!(next.calls_schema > 0, "the schema is read again: {next:?}");
    let pd = &env.pd_deals(&sync).await["Garcia account"];
    assert_eq!(pd["owner_id"].as_u64(), Some(jo), "the owner reached Pipedrive: {pd}");
    let row = records(&env, &sync).await.into_iter().find(|r| r.name == "Garcia account").expect("the deal's record");
    let events = env.connections.store().record_events(&row.id).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == model::states::EventKind::NotSynced), "nothing left out: {events:?}");
    // The schema read serves the next runs.
    env.hs_edit(&deal, json!({"amount": "950"}), None).await;
    assert_eq!(run(&engine, &sync).await.calls_schema, 0);
    env
}

on_both_backends!(a_webhook_that_comes_while_its_sync_runs_is_never_lost);
/// A change whose webhook comes while its sync is running, after the run read that side, is
/// read by a run that starts as soon as that one ends, not an interval later (the end of the
/// run sets the next run's time, which would otherwise hide the webhook's).
async fn a_webhook_that_comes_while_its_sync_runs_is_never_lost(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.filters.clear()).await;
    let acme = hs_create_acme(&env).await;
    let store = env.connections.store().clone();
    let config = EngineConfig { interval: Duration::from_secs(3600), ..EngineConfig::default() };
    let engine = Engine::new(env.connections.clone(), config);
    let wake = Wake::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker::run(engine::Accounts::new(store.clone()), Some(engine), wake.clone(), stopped));
    let ended = |n: usize| {
        let store = store.clone();
        let id = sync.id.clone();
        async move { store.runs(&id, 20).await.unwrap().iter().filter(|r| r.ended_at.is_some()).count() >= n }
    };
    let started = std::time::Instant::now();
    // The initial run, and the one after it that reads what changed meanwhile.
    while !ended(2).await {
        assert!(started.elapsed() < Duration::from_secs(30), "the initial sync never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Pipedrive answers slowly: the webhook run reads HubSpot, then waits on Pipedrive.
    env.faults(&env.pipedrive, json!({"latency_ms": 2000})).await;
    // As the webhook handler does: the sync is due now, and the engine is woken for it.
    let webhook = || {
        let (store, wake, id) = (store.clone(), wake.clone(), sync.id.clone());
        async move {
            store.wake_sync(&id, model_now()).await.unwrap();
            wake.syncs([id]);
        }
    };
    env.hs_edit(&acme, json!({"amount": "2000"}), None).await;
    webhook().await;
    let running = || {
        let store = store.clone();
        let id = sync.id.clone();
        async move { store.runs(&id, 20).await.unwrap().iter().any(|r| r.ended_at.is_none()) }
    };
    while !running().await {
        assert!(started.elapsed() < Duration::from_secs(60), "the webhook's run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // HubSpot has been read; the run is waiting on Pipedrive (three calls of 2 s) when the next
    // change comes.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    env.hs_edit(&acme, json!({"amount": "3000"}), None).await;
    webhook().await;
    assert!(running().await, "the second webhook came while the run was under way");
    env.faults(&env.pipedrive, json!({"latency_ms": 0})).await;

    let changed = std::time::Instant::now();
    loop {
        let value = env.pd_deals(&sync).await["Acme renewal"]["value"].as_f64();
        if value == Some(3000.0) {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(15), "the second change waits for the next interval: Pipedrive has {value:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    env
}

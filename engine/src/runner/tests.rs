//! Whole runs over sides kept in memory: the runner, the planner and the store (SQLite) with no
//! HTTP, through the same `Records` seam the connectors implement. What a third app needs of the
//! engine, and no more.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use model::apps::{ObjectKind, SyncDirection};
use model::states::{RecordState, RunOutcome};
use model::sync::ConflictRule;
use model::translate::OwnerPairs;

use super::{Engine, EngineConfig, Holder, Stats, Trigger};
use crate::clock::now_ms;
use crate::connectors::http::ApiError;
use crate::connectors::record::{FieldTimesById, HubRecords, Input, Outcomes, Page, Records, RemoteRecord, STAGE};
use crate::store::scratch::ScratchDatabase;
use crate::store::{Backend, RunRow};

/// One side's deals in memory, listed two a page so that every read pages.
struct Memory {
    /// The record key of its name (`dealname`, `title`): the name travels in it.
    name_key: &'static str,
    prefix: &'static str,
    records: Mutex<BTreeMap<String, RemoteRecord>>,
    next: AtomicU64,
    /// Updates answer 503 and change nothing.
    refuse_updates: AtomicBool,
    /// An edit a user makes just before the next update arrives (after Tandem read the record).
    edit_before_update: Mutex<Option<(String, &'static str, &'static str)>>,
    /// What happens once the next update has landed, before its answer (another instance taking
    /// the sync over, say).
    after_update: Mutex<Option<BoxFuture<'static, ()>>>,
    /// Records the changed-since read does not show yet (a search index that has not caught up
    /// with their last change).
    unindexed: Mutex<std::collections::HashSet<String>>,
}

const PAGE: usize = 2;

impl Memory {
    fn new(name_key: &'static str, prefix: &'static str) -> Memory {
        Memory {
            name_key,
            prefix,
            records: Mutex::default(),
            next: AtomicU64::new(1),
            refuse_updates: AtomicBool::new(false),
            edit_before_update: Mutex::default(),
            after_update: Mutex::default(),
            unindexed: Mutex::default(),
        }
    }

    /// The next time a change is stamped with: never twice the same, never before now.
    fn tick(&self, records: &BTreeMap<String, RemoteRecord>) -> i64 {
        let newest = records.values().map(|r| r.updated_at).max().unwrap_or(0);
        now_ms().max(newest + 1)
    }

    /// A deal added as a user of this side would: answers its id.
    fn add(&self, values: &[(&str, &str)]) -> String {
        let mut records = self.records.lock().unwrap();
        let id = format!("{}{}", self.prefix, self.next.fetch_add(1, Ordering::SeqCst));
        let values: BTreeMap<String, Option<String>> = values.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
        let name = values.get(self.name_key).cloned().flatten().unwrap_or_default();
        let at = self.tick(&records);
        records.insert(id.clone(), RemoteRecord { id: id.clone(), updated_at: at, name, tandem_id: None, match_key: None, values });
        id
    }

    /// An edit as a user of this side would make it.
    fn edit(&self, id: &str, key: &str, value: &str) {
        let mut records = self.records.lock().unwrap();
        let at = self.tick(&records);
        let record = records.get_mut(id).expect("a record to edit");
        record.values.insert(key.to_string(), Some(value.to_string()));
        record.updated_at = at;
    }

    /// An edit stamped `ahead` milliseconds later than now (a clock that has moved on).
    fn edit_ahead(&self, id: &str, key: &str, value: &str, ahead: i64) {
        let mut records = self.records.lock().unwrap();
        let at = self.tick(&records) + ahead;
        let record = records.get_mut(id).expect("a record to edit");
        record.values.insert(key.to_string(), Some(value.to_string()));
        record.updated_at = at;
    }

    fn all(&self) -> Vec<RemoteRecord> {
        self.records.lock().unwrap().values().cloned().collect()
    }

    fn value(&self, id: &str, key: &str) -> Option<String> {
        self.records.lock().unwrap().get(id).and_then(|r| r.values.get(key).cloned().flatten())
    }

    fn page(list: Vec<RemoteRecord>, from: usize) -> Page {
        let next = (list.len() > from + PAGE).then(|| (from + PAGE).to_string());
        Page { records: list.into_iter().skip(from).take(PAGE).collect(), next }
    }

    fn write(&self, id: &str, values: &BTreeMap<String, Option<String>>, tandem_id: Option<&str>) -> RemoteRecord {
        let mut records = self.records.lock().unwrap();
        let at = self.tick(&records);
        let record = records.entry(id.to_string()).or_insert_with(|| RemoteRecord {
            id: id.to_string(),
            updated_at: at,
            name: String::new(),
            tandem_id: tandem_id.map(str::to_string),
            match_key: None,
            values: BTreeMap::new(),
        });
        for (key, value) in values {
            record.values.insert(key.clone(), value.clone());
        }
        record.name = record.values.get(self.name_key).cloned().flatten().unwrap_or_default();
        record.updated_at = at;
        record.clone()
    }
}

impl Records for Memory {
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        let from = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        Box::pin(async move { Ok(Memory::page(self.all(), from)) })
    }

    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>> {
        Box::pin(async move { Ok(self.records.lock().unwrap().len() as i64) })
    }

    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        let unindexed = self.unindexed.lock().unwrap().clone();
        let mut changed: Vec<RemoteRecord> =
            self.all().into_iter().filter(|r| r.updated_at >= since && !unindexed.contains(&r.id)).collect();
        changed.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        let from = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        Box::pin(async move { Ok(Memory::page(changed, from)) })
    }

    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        let records = self.records.lock().unwrap();
        let found = ids.iter().filter_map(|id| records.get(id).cloned()).collect();
        Box::pin(async move { Ok(found) })
    }

    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        let out = inputs
            .into_iter()
            .map(|(tandem_id, values)| {
                let id = format!("{}{}", self.prefix, self.next.fetch_add(1, Ordering::SeqCst));
                (tandem_id.clone(), Ok(self.write(&id, &values, Some(&tandem_id))))
            })
            .collect();
        Box::pin(async move { out })
    }

    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        if let Some((id, key, value)) = self.edit_before_update.lock().unwrap().take() {
            self.edit(&id, key, value);
        }
        let refuse = self.refuse_updates.load(Ordering::SeqCst);
        let out = inputs
            .into_iter()
            .map(|(id, values)| {
                let outcome = if refuse {
                    Err(ApiError::new(crate::runner::api::Category::Provider, Some(503), "Service Unavailable"))
                } else {
                    Ok(self.write(&id, &values, None))
                };
                (id.clone(), outcome)
            })
            .collect();
        if let Some(after) = self.after_update.lock().unwrap().take() {
            return Box::pin(async move {
                after.await;
                out
            });
        }
        Box::pin(async move { out })
    }

    fn field_times<'s>(&'s self, _ids: &'s [String], _fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>> {
        Box::pin(async { Ok(HashMap::new()) })
    }

    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], _since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        let found = self.all().into_iter().filter(|r| r.tandem_id.as_ref().is_some_and(|t| tandem_ids.contains(t))).collect();
        Box::pin(async move { Ok(found) })
    }
}

impl HubRecords for Memory {
    fn associations<'s>(&'s self, _to: &'s str, _ids: &'s [String]) -> BoxFuture<'s, Result<HashMap<String, Vec<String>>, ApiError>> {
        Box::pin(async { Ok(HashMap::new()) })
    }

    fn associate<'s>(
        &'s self,
        _to: &'s str,
        _add: &'s [(String, String)],
        _remove: &'s [(String, String)],
    ) -> BoxFuture<'s, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A Tandem store with a HubSpot account, an app account and a deals sync between them that is
/// on (the fixtures' settings), and an engine over it.
async fn set_up(direction: SyncDirection) -> (ScratchDatabase, Engine, String) {
    let db = ScratchDatabase::create(Backend::Sqlite).await.expect("a scratch database");
    let store = db.store.clone();
    let admin =
        crate::Accounts::new(store.clone()).create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.unwrap();
    let now = now_ms();
    for (id, provider) in [("hub-1", "hubspot"), ("app-1", "pipedrive")] {
        let account = crate::store::AuthorizedAccount {
            id,
            provider,
            account_id: "1",
            account_name: "Memory",
            account_domain: None,
            api_base: "http://memory.invalid",
            accounts_server: None,
            scopes: "",
            access_token: "unused",
            refresh_token: "unused",
            access_expires_at: now + 3_600_000,
            user_id: &admin.user.id,
            user_name: "Ada Admin",
            // The app's account syncs with the HubSpot account saved before it.
            hub_connection_id: (provider != "hubspot").then_some("hub-1"),
        };
        store.save_authorized_account(&account, now).await.unwrap();
    }
    let settings = crate::runner::fixtures::settings(direction, ConflictRule::DefaultToHubSpot);
    let version = crate::store::NewSettingsVersion {
        new_id: "sync-1",
        connection_id: "app-1",
        object: ObjectKind::Deal.key(),
        settings: &serde_json::to_string(&settings).unwrap(),
        user_id: &admin.user.id,
        user_name: "Ada Admin",
    };
    let (sync_id, _) = store.save_sync_settings(&version, now).await.unwrap();
    store.set_sync_status(&sync_id, "on", now).await.unwrap();
    let dir = std::env::temp_dir().join(format!("tandem-memory-{}", uuid::Uuid::new_v4().simple()));
    let secrets = crate::crypto::SecretBox::load(Some(&crate::crypto::generate_key_text()), &dir).unwrap();
    let connections = crate::Connections::new(store, secrets, vec![], "http://127.0.0.1:3000");
    (db, Engine::new(connections, EngineConfig::default()), sync_id)
}

/// One run of the sync over the two memories, as `run_sync` runs it over the connections' APIs.
async fn run(engine: &Engine, sync_id: &str, hub: &Memory, app: &Memory) -> RunRow {
    let (hub_schema, app_schema) = crate::runner::fixtures::schemas();
    let holder = Holder {
        hub_schema,
        app_schema,
        owners: OwnerPairs(vec![]),
        hub_key: "tandem_record_id".into(),
        app_key: "tandem".into(),
        links: vec![],
        link_infos: vec![],
        unmatched: Default::default(),
    };
    let mut began = engine.begin_run(sync_id, Trigger::Manual).await.unwrap().expect("the sync runs");
    let stats = Stats::default();
    let plan = engine.planner(&began.settings, &began.run, &holder, "Memory");
    let state = began.state.take().unwrap();
    let result = engine.execute(&mut began.run, state, plan, &holder, false, false, hub, app, &stats, &stats).await;
    engine.end_run(began, result, &stats, &stats).await.unwrap().run
}

fn deal(name: &str, amount: &str, stage: &str) -> Vec<(&'static str, String)> {
    vec![("dealname", name.to_string()), ("amount", amount.to_string()), (STAGE, format!("default/{stage}"))]
}

fn app_deal(name: &str, value: &str, stage: &str) -> Vec<(&'static str, String)> {
    vec![("title", name.to_string()), ("value", value.to_string()), (STAGE, format!("1/{stage}"))]
}

fn add(side: &Memory, values: Vec<(&'static str, String)>) -> String {
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    side.add(&values)
}

/// A deal as the assertions look at it: (id, amount or value, stage).
type Seen = (String, Option<String>, Option<String>);

/// Each side's deals by name.
fn by_name(side: &Memory, amount_key: &str) -> BTreeMap<String, Vec<Seen>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in side.all() {
        out.entry(r.name.clone()).or_default().push((
            r.id.clone(),
            r.values.get(amount_key).cloned().flatten(),
            r.values.get(STAGE).cloned().flatten(),
        ));
    }
    out
}

#[tokio::test]
async fn an_initial_and_an_incremental_pass_over_sides_in_memory() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    for i in 0..5 {
        add(&hub, deal(&format!("HubSpot deal {i}"), &format!("{}.00", 100 * (i + 1)), "a"));
        add(&app, app_deal(&format!("App deal {i}"), &(200 * (i + 1)).to_string(), "10"));
    }
    add(&hub, deal("In an unmapped stage", "5", "b"));

    // The initial pass: every deal in a mapped stage is created once on the other side, with its
    // values translated; the one in HubSpot's unmapped stage stays where it is.
    let initial = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(initial.outcome, RunOutcome::Succeeded, "{initial:?}");
    assert_eq!((initial.created_in_app, initial.created_in_hub), (5, 5));
    let (hubs, apps) = (by_name(&hub, "amount"), by_name(&app, "value"));
    assert_eq!(apps.len(), 10, "{apps:?}");
    assert_eq!(hubs.len(), 11);
    assert!(hubs.values().chain(apps.values()).all(|list| list.len() == 1), "one deal per name on each side");
    assert_eq!(apps["HubSpot deal 2"][0].1.as_deref(), Some("300"), "amounts in canonical form");
    assert_eq!(apps["HubSpot deal 2"][0].2.as_deref(), Some("1/10"), "Appointment became Meeting");
    assert_eq!(hubs["App deal 4"][0].1.as_deref(), Some("1000"));
    assert_eq!(hubs["App deal 4"][0].2.as_deref(), Some("default/a"));
    assert!(!apps.contains_key("In an unmapped stage"));
    let rows = engine.store().records_in_state(&sync_id, RecordState::Linked, 100).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.hubspot_id.is_some() && r.app_id.is_some()));

    // The run after it reads what changed while the initial one ran: its own creations, which
    // it writes nothing for.
    let settle = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((settle.created_in_app, settle.created_in_hub, settle.updated_in_app, settle.updated_in_hub), (0, 0, 0, 0), "{settle:?}");

    // An incremental pass: an edit on each side and a new deal in the app, and nothing else.
    let (app_id, _, _) = apps["HubSpot deal 1"][0].clone();
    app.edit(&app_id, "value", "250");
    let (hub_id, _, _) = hubs["App deal 3"][0].clone();
    hub.edit(&hub_id, "dealname", "App deal 3 (renamed in HubSpot)");
    add(&app, app_deal("New in the app", "75", "won"));
    let incremental = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(incremental.outcome, RunOutcome::Succeeded, "{incremental:?}");
    assert_eq!((incremental.created_in_hub, incremental.created_in_app), (1, 0));
    assert_eq!((incremental.updated_in_hub, incremental.updated_in_app), (1, 1));
    let hub_source = by_name(&hub, "amount")["HubSpot deal 1"][0].0.clone();
    assert_eq!(hub.value(&hub_source, "amount").as_deref(), Some("250"), "the app's edit reached HubSpot");
    let app_twin = by_name(&app, "value")["App deal 3 (renamed in HubSpot)"].clone();
    assert_eq!(app_twin.len(), 1, "HubSpot's rename reached the app's deal");
    let created = &by_name(&hub, "amount")["New in the app"];
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].2.as_deref(), Some("default/closedwon"), "Won became Closed Won");

    // And the pass after that has nothing left to do.
    let quiet = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((quiet.created_in_app, quiet.created_in_hub, quiet.updated_in_app, quiet.updated_in_hub), (0, 0, 0, 0), "{quiet:?}");
    db.destroy().await;
}

#[tokio::test]
async fn a_change_that_shows_late_in_the_read_is_read_by_the_next_run() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    let early = add(&hub, deal("Early", "1", "a"));
    let late = add(&hub, deal("Late", "1", "a"));
    run(&engine, &sync_id, &hub, &app).await;
    run(&engine, &sync_id, &hub, &app).await;

    // Two edits in HubSpot; the first does not show in the read yet (HubSpot's search trails its
    // writes), the second, newer one does.
    hub.edit(&early, "amount", "10");
    hub.unindexed.lock().unwrap().insert(early.clone());
    hub.edit(&late, "amount", "20");
    let first = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(first.updated_in_app, 1, "{first:?}");
    let twin = |name: &str| by_name(&app, "value")[name][0].1.clone();
    assert_eq!((twin("Early").as_deref(), twin("Late").as_deref()), (Some("1"), Some("20")));

    // It shows now: the next run reads it, though it is older than the newest change read.
    hub.unindexed.lock().unwrap().clear();
    let next = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(next.updated_in_app, 1, "{next:?}");
    assert_eq!(twin("Early").as_deref(), Some("10"));
    db.destroy().await;
}

#[tokio::test]
async fn a_one_way_pass_leaves_the_source_untouched() {
    let (db, engine, sync_id) = set_up(SyncDirection::ToApp).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    add(&hub, deal("From HubSpot", "10", "a"));
    add(&app, app_deal("Only in the app", "20", "10"));
    let initial = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((initial.created_in_app, initial.created_in_hub), (1, 0));
    assert_eq!(hub.all().len(), 1, "nothing is created in HubSpot by a sync to the app");
    let rows = engine.store().records_in_state(&sync_id, RecordState::Excluded, 100).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].reason.map(model::states::RecordReason::as_str), Some("direction"));
    db.destroy().await;
}

/// A linked deal changed on both sides, each change in a different field: the run writes each
/// side. Whatever happens to one write, the other side's change is never taken as agreed before
/// it has reached its target.
#[tokio::test]
async fn a_change_whose_write_failed_is_sent_again_though_the_other_write_succeeded() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    let hub_id = add(&hub, deal("Acme", "100", "a"));
    run(&engine, &sync_id, &hub, &app).await;
    let app_id = by_name(&app, "value")["Acme"][0].0.clone();

    // HubSpot renames the deal (flows to the app); the app changes its value (flows to HubSpot),
    // and HubSpot refuses the update with a 503.
    hub.edit(&hub_id, "dealname", "Acme (renamed)");
    app.edit(&app_id, "value", "250");
    hub.refuse_updates.store(true, Ordering::SeqCst);
    let failed = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((failed.outcome, failed.updated_in_app, failed.updated_in_hub), (RunOutcome::Partial, 1, 0), "{failed:?}");
    assert!(failed.failed_to_hub >= 1, "{failed:?}");
    assert_eq!(app.value(&app_id, "title").as_deref(), Some("Acme (renamed)"));
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("100"), "not written yet");

    // HubSpot answers again: the app's value reaches it (it was not taken as agreed when the
    // app's own update was read back).
    hub.refuse_updates.store(false, Ordering::SeqCst);
    let retried = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(retried.outcome, RunOutcome::Succeeded, "{retried:?}");
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("250"), "the app's change reached HubSpot");
    assert_eq!(app.value(&app_id, "title").as_deref(), Some("Acme (renamed)"));
    let quiet = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((quiet.updated_in_app, quiet.updated_in_hub), (0, 0), "{quiet:?}");
    db.destroy().await;
}

/// A user edits a field in the app after Tandem read the deal and before its update (of another
/// field) arrives: the update's read-back holds the edit, which must still reach HubSpot.
#[tokio::test]
async fn an_edit_made_while_tandem_writes_the_record_is_not_lost() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    let hub_id = add(&hub, deal("Globex", "100", "a"));
    run(&engine, &sync_id, &hub, &app).await;
    let app_id = by_name(&app, "value")["Globex"][0].0.clone();

    hub.edit(&hub_id, "dealname", "Globex (renamed)");
    *app.edit_before_update.lock().unwrap() = Some((app_id.clone(), "value", "999"));
    let first = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(first.updated_in_app, 1, "{first:?}");
    assert_eq!(app.value(&app_id, "value").as_deref(), Some("999"), "the user's edit stays in the app");

    run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("999"), "the edit made during the write reached HubSpot");
    assert_eq!(app.value(&app_id, "title").as_deref(), Some("Globex (renamed)"));
    db.destroy().await;
}

/// A run cut off after its update of HubSpot landed and before it committed (here: another
/// instance took the lease over meanwhile; a SIGKILL leaves the same). Then a user changes the
/// same field in the app: the value HubSpot holds is Tandem's own write, not a change of
/// HubSpot's to weigh against the user's, which reaches HubSpot.
#[tokio::test]
async fn a_write_that_landed_before_its_run_was_cut_off_is_not_taken_for_a_change() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    let hub_id = add(&hub, deal("Initech", "100", "a"));
    run(&engine, &sync_id, &hub, &app).await;
    let app_id = by_name(&app, "value")["Initech"][0].0.clone();

    app.edit(&app_id, "value", "250");
    let store = engine.store().clone();
    let sync = sync_id.clone();
    *hub.after_update.lock().unwrap() = Some(Box::pin(async move {
        store.release_all_leases(None).await.unwrap();
        let now = now_ms();
        assert!(store.claim_sync(&sync, "another-instance", now, now + 60_000).await.unwrap());
    }));
    let cut_off = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(cut_off.outcome, RunOutcome::Interrupted, "{cut_off:?}");
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("250"), "the write landed");
    engine.store().release_all_leases(None).await.unwrap();

    app.edit(&app_id, "value", "300");
    let next = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(next.outcome, RunOutcome::Succeeded, "{next:?}");
    assert_eq!(app.value(&app_id, "value").as_deref(), Some("300"), "the user's latest value stays");
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("300"), "and reaches HubSpot");
    assert_eq!(next.conflicts, 0, "Tandem's own write is no conflict");
    let quiet = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!((quiet.updated_in_app, quiet.updated_in_hub), (0, 0), "{quiet:?}");
    db.destroy().await;
}

/// A retried record whose run is cut off before its write landed (HubSpot still refusing, then
/// the lease lost): it stays a failing record, and is retried until the change lands.
#[tokio::test]
async fn a_retry_cut_off_before_its_write_landed_is_retried_again() {
    let (db, engine, sync_id) = set_up(SyncDirection::TwoWay).await;
    let (hub, app) = (Memory::new("dealname", "h"), Memory::new("title", "p"));
    let hub_id = add(&hub, deal("Umbrella", "100", "a"));
    let other_hub_id = add(&hub, deal("Other", "100", "a"));
    run(&engine, &sync_id, &hub, &app).await;
    let app_id = by_name(&app, "value")["Umbrella"][0].0.clone();
    let other_id = by_name(&app, "value")["Other"][0].0.clone();

    // The change to send, and later ones on both sides that move the cursors past the record
    // (beyond their margin): from then on only its failing state brings it back.
    app.edit(&app_id, "value", "250");
    app.edit_ahead(&other_id, "value", "120", 60_000);
    hub.edit_ahead(&other_hub_id, "dealname", "Other (renamed)", 60_000);
    hub.refuse_updates.store(true, Ordering::SeqCst);
    let failed = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(failed.outcome, RunOutcome::Partial, "{failed:?}");

    let store = engine.store().clone();
    let sync = sync_id.clone();
    *hub.after_update.lock().unwrap() = Some(Box::pin(async move {
        store.release_all_leases(None).await.unwrap();
        let now = now_ms();
        assert!(store.claim_sync(&sync, "another-instance", now, now + 60_000).await.unwrap());
    }));
    let cut_off = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(cut_off.outcome, RunOutcome::Interrupted, "{cut_off:?}");
    engine.store().release_all_leases(None).await.unwrap();

    hub.refuse_updates.store(false, Ordering::SeqCst);
    let retried = run(&engine, &sync_id, &hub, &app).await;
    assert_eq!(retried.outcome, RunOutcome::Succeeded, "{retried:?}");
    assert_eq!(hub.value(&hub_id, "amount").as_deref(), Some("250"), "the change landed on a later retry");
    db.destroy().await;
}

//! Several Tandem instances sharing the work on Postgres: three engine instances run ten syncs
//! across three HubSpot accounts; no sync is ever run by two at once (the runs table says who ran
//! what, when); an instance killed mid-run hands its syncs to the others once its lease lapses,
//! and they finish them from the last checkpoint with no record duplicated or lost.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use engine::clock::now_ms;
use engine::runner::{Engine, EngineConfig};
use engine::store::{Backend, RunRow};
use engine::syncs::Syncs;
use engine::worker::{self, Wake};
use engine::{Accounts, Connections};
use model::apps::{ObjectKind, HUBSPOT};
use model::states::RunOutcome;
use model::sync::SyncSettings;
use serde_json::{json, Value};
use tokio::sync::watch;

/// How long an instance keeps a sync without renewing its lease (the heartbeat timeout).
const LEASE: Duration = Duration::from_secs(3);

/// One sync and the accounts on both sides.
struct Pair {
    sync: String,
    object: ObjectKind,
    portal: String,
    company: String,
}

/// An engine instance: its own connections (in-process locks and limiters) on the shared
/// database, and its worker task.
struct Instance {
    engine: Engine,
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

fn start_instance(env: &Env) -> Instance {
    let mut providers = providers(&env.hubspot, &env.pipedrive);
    providers.push(zoho_provider(&env.zoho.url()));
    let connections = Connections::new(env.connections.store().clone(), env.secrets.clone(), providers, TANDEM_URL);
    // Three syncs at once each: the ten are shared out rather than all taken by the first.
    let config = EngineConfig { lease: LEASE, interval: Duration::from_secs(3600), concurrency: 3, ..EngineConfig::default() };
    let engine = Engine::new(connections, config);
    let (stop, stopped) = watch::channel(false);
    let accounts = Accounts::new(env.connections.store().clone());
    let task = tokio::spawn(worker::run(accounts, Some(engine.clone()), Wake::default(), stopped));
    Instance { engine, task, stop }
}

/// What a sandbox's control API says of one of its accounts.
async fn summary(env: &Env, sandbox: &sandbox::RunningSandbox, account: &str) -> Value {
    let r = env.http.get(format!("{}/_sandbox/accounts/{account}/summary", sandbox.url())).send().await.unwrap();
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_ten_syncs_and_take_over_from_one_killed_mid_run() {
    with_env(Backend::Postgres, three_instances).await
}

async fn three_instances(env: Env) -> Env {
    // Three HubSpot portals and four Pipedrive companies behind the sandboxes.
    let portals = [vec!["24681357".to_string()], vec![env.add_account(&env.hubspot).await, env.add_account(&env.hubspot).await]].concat();
    let mut companies = vec!["7701234".to_string()];
    for _ in 0..3 {
        companies.push(env.add_account(&env.pipedrive).await);
    }
    for (i, company) in companies.iter().enumerate() {
        let seed = json!({"deals": 120, "persons": 60, "organizations": 30, "seed": i + 1});
        let r = env.http.post(format!("{}/_sandbox/accounts/{company}/seed", env.pipedrive.url())).json(&seed).send().await.unwrap();
        assert!(r.status().is_success(), "seeded {company}");
        // Every Pipedrive call takes a while: runs last long enough to be cut short.
        let faults = json!({"latency_ms": 40});
        let r = env.http.put(format!("{}/_sandbox/accounts/{company}/faults", env.pipedrive.url())).json(&faults).send().await.unwrap();
        assert!(r.status().is_success());
    }

    // Each portal's HubSpot account; each company syncs with one: the first three with the
    // first three portals (deals, contacts and companies), the fourth with the third (deals).
    let mut hubs = Vec::new();
    for portal in &portals {
        hubs.push(env.install_account(HUBSPOT, portal, None).await);
    }
    let syncs = Syncs::new(env.connections.clone());
    let mut pairs: Vec<Pair> = Vec::new();
    for (i, company) in companies.iter().enumerate() {
        let hub = i.min(2);
        let app = env.install_account("pipedrive", company, Some(&hubs[hub])).await;
        let objects: &[ObjectKind] =
            if i < 3 { &[ObjectKind::Deal, ObjectKind::Contact, ObjectKind::Company] } else { &[ObjectKind::Deal] };
        for &object in objects {
            let schemas = syncs.schemas(&app, object).await.expect("schemas");
            let saved = syncs.save(&env.admin, &app, &SyncSettings::new_for(object, &schemas)).await.expect("save");
            pairs.push(Pair { sync: saved.id, object, portal: portals[hub].clone(), company: company.clone() });
        }
    }
    assert_eq!(pairs.len(), 10);
    let store = env.connections.store().clone();

    // Three instances; the first to be running a sync is killed mid-run.
    let mut instances: Vec<Instance> = (0..3).map(|_| start_instance(&env)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (victim, cut_short) = loop {
        assert!(Instant::now() < deadline, "no instance started a run");
        let mut running: Vec<RunRow> = Vec::new();
        for pair in &pairs {
            running.extend(store.runs(&pair.sync, 5).await.unwrap().into_iter().filter(|r| r.outcome == RunOutcome::Running));
        }
        if let Some(first) = running.first() {
            let owner = first.instance.clone().expect("runs name their instance");
            let victim = instances.iter().position(|i| i.engine.instance() == owner).expect("one of ours");
            let cut: HashSet<String> =
                running.iter().filter(|r| r.instance.as_deref() == Some(owner.as_str())).map(|r| r.sync_id.clone()).collect();
            break (victim, cut);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!cut_short.is_empty());
    // Killed: its tasks are gone at once, its leases are neither renewed nor given back.
    let killed = instances.remove(victim);
    let killed_id = killed.engine.instance().to_string();
    killed.task.abort();
    let _ = killed.task.await;
    let killed_at = now_ms();

    // The other two finish every sync.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut runs: HashMap<String, Vec<RunRow>> = HashMap::new();
    loop {
        runs.clear();
        for pair in &pairs {
            runs.insert(pair.sync.clone(), store.runs(&pair.sync, 100).await.unwrap());
        }
        if runs.values().all(|r| r.iter().any(|r| r.outcome == RunOutcome::Succeeded)) {
            break;
        }
        assert!(Instant::now() < deadline, "every sync should have run to the end: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for instance in instances {
        let _ = instance.stop.send(true);
        instance.task.await.unwrap();
    }

    let ran: HashSet<String> = runs.values().flatten().filter_map(|r| r.instance.clone()).collect();
    assert!(ran.iter().any(|i| *i != killed_id), "the other instances ran syncs: {ran:?}");
    for (sync, list) in &runs {
        let mut list = list.clone();
        list.sort_by_key(|r| (r.started_at, r.id.clone()));
        // One runner at a time: each run ended before the next began, whoever ran them.
        for pair in list.windows(2) {
            let ended = pair[0].ended_at.expect("every earlier run ended");
            assert!(ended <= pair[1].started_at, "{sync}: runs overlap: {:?} and {:?}", pair[0], pair[1]);
        }
        if cut_short.contains(sync) {
            let cut = list.iter().find(|r| r.instance.as_deref() == Some(killed_id.as_str())).expect("the killed instance's run");
            assert_eq!(cut.outcome, RunOutcome::Interrupted, "{sync}: the killed run is closed as interrupted");
            let next = list.iter().find(|r| r.started_at >= cut.started_at && r.id != cut.id).expect("a run after it");
            assert_ne!(next.instance.as_deref(), Some(killed_id.as_str()));
            // Taken over once the lease lapsed, within the heartbeat timeout plus a poll (and a
            // margin for a loaded machine).
            let waited = next.started_at - killed_at;
            assert!(waited <= (LEASE + Duration::from_secs(5)).as_millis() as i64, "{sync}: taken over {waited} ms after the kill");
        }
    }

    // No record duplicated or lost: every HubSpot record was created by its sync and is in its
    // identity map once; every Pipedrive record is in it too.
    for pair in &pairs {
        let records = store.all_records(&pair.sync).await.unwrap();
        let hub_ids: HashSet<&str> = records.iter().filter_map(|r| r.hubspot_id.as_deref()).collect();
        let app_ids: HashSet<&str> = records.iter().filter_map(|r| r.app_id.as_deref()).collect();
        let (hub_object, app_object) = match pair.object {
            ObjectKind::Deal => ("deals", "deals"),
            ObjectKind::Contact => ("contacts", "persons"),
            ObjectKind::Company => ("companies", "organizations"),
        };
        let (hub, app) = (summary(&env, &env.hubspot, &pair.portal).await, summary(&env, &env.pipedrive, &pair.company).await);
        let in_portal = hub["records"][hub_object]["live"].as_u64().unwrap() as usize;
        let in_company = app[app_object]["live"].as_u64().unwrap() as usize;
        let object = pair.object.key();
        assert!(in_company > 0, "{object} of {} were seeded", pair.company);
        // The third portal's deals come from two companies: counted together below.
        if !(pair.portal == portals[2] && pair.object == ObjectKind::Deal) {
            assert_eq!(in_portal, hub_ids.len(), "{object} in portal {}: one HubSpot record per identity", pair.portal);
        }
        assert_eq!(app_ids.len(), in_company, "{object} of {}: every Pipedrive record is known to its sync", pair.company);
        let synced = records.iter().filter(|r| r.hubspot_id.is_some() && r.app_id.is_some()).count();
        assert!(synced > 0, "{object} of {} reached portal {}", pair.company, pair.portal);
        assert_eq!(records.len(), app_ids.len().max(hub_ids.len()), "{object}: no identity without its record");
    }
    // The third portal's deals sync with two companies (each company's deals reach the portal,
    // and the portal's reach each company): every portal deal is in both maps, once.
    let third: Vec<&Pair> = pairs.iter().filter(|p| p.portal == portals[2] && p.object == ObjectKind::Deal).collect();
    let hub = summary(&env, &env.hubspot, &portals[2]).await;
    let in_portal = hub["records"]["deals"]["live"].as_u64().unwrap() as usize;
    let mut known: HashSet<String> = HashSet::new();
    for pair in &third {
        known.extend(store.all_records(&pair.sync).await.unwrap().into_iter().filter_map(|r| r.hubspot_id));
    }
    assert_eq!(known.len(), in_portal, "every deal in the third portal was created by one of its syncs, once");
    // A sync that finished before the other company's deals reached the portal reads them on its
    // next run: then each map holds every deal of the portal.
    let survivor = start_instance(&env);
    let _ = survivor.stop.send(true);
    survivor.task.await.unwrap();
    for pair in &third {
        survivor.engine.run_sync(&pair.sync, engine::runner::Trigger::Manual).await.unwrap().expect("the sync ran");
        let records = store.all_records(&pair.sync).await.unwrap();
        let hub_ids: HashSet<&str> = records.iter().filter_map(|r| r.hubspot_id.as_deref()).collect();
        assert_eq!(hub_ids.len(), in_portal, "the third portal's deals, each once in {}'s map", pair.company);
    }
    env
}

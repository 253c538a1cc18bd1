//! Sync health and history as the dashboards read them, after real syncs between the sandboxes
//! (SQLite and Postgres): Health counts per bucket and reason, Retry of a failed record once the
//! fault is gone, runs with filters, a run's events, a record's timeline with a conflict, charts,
//! the overview, the CSV export and `/metrics`.

mod common;

use common::deals::*;
use common::*;
use engine::dashboards::{DashboardError, Dashboards, ExportCursor, ExportKind};
use engine::syncs::Syncs;
use model::apps::ObjectKind;
use model::dashboard::{ChartRange, HealthStatus, RecordBucket, RunFilter};
use model::merge::Side;
use model::states::{EventKind, RecordState, RunOutcome, RunTrigger};
use model::sync::{ConflictRule, Filter, FilterOp, SyncSettings, SyncStatus};
use serde_json::json;

async fn export(d: &Dashboards, sync_id: &str, kind: ExportKind) -> String {
    let mut cursor = ExportCursor::default();
    let mut out = String::new();
    while let Some(page) = d.export_page(sync_id, kind, 0, i64::MAX, &mut cursor).await.expect("export") {
        out.push_str(&page);
    }
    out
}

on_both_backends!(health_history_retry_and_timeline_follow_the_syncs);
async fn health_history_retry_and_timeline_follow_the_syncs(env: Env) -> Env {
    let sync = set_up(&env, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let syncs = Syncs::new(env.connections.clone());
    let mut settings = SyncSettings::new_for(ObjectKind::Deal, &sync.schemas);
    settings.conflict_rule = ConflictRule::DefaultToHubSpot;
    settings.pipelines[0].set_stage("contractsent", None);
    settings.filters = vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }];
    syncs.save(&env.admin, &sync.pipedrive, &settings).await.unwrap();
    let meeting: u64 = pd_stage(&sync, "Meeting Scheduled").parse().unwrap();
    env.hs_create(json!({"dealname": "Acme renewal", "amount": "1500", "pipeline": "default", "dealstage": "appointmentscheduled"}), None)
        .await;
    env.hs_create(json!({"dealname": "Initech pilot", "amount": "10", "pipeline": "default", "dealstage": "contractsent"}), None).await;
    let umbrella_pd = env.pd_create(json!({"title": "Umbrella deal", "value": 5000, "pipeline_id": 1, "stage_id": meeting}), None).await;
    env.pd_create(json!({"title": "Tiny deal", "value": 50, "pipeline_id": 1, "stage_id": meeting}), None).await;
    // Pipedrive refuses every new deal, as a validation error would.
    env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_method": "POST", "only_path": "/api/v2/deals"})).await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!((first.outcome.as_str(), first.failed_to_app, first.created_in_hub), ("partial", 1, 1), "{first:?}");
    // Skips per direction: the excluded HubSpot deal was read from HubSpot, Tiny from Pipedrive.
    assert!(first.skipped_from_hub > 0 && first.skipped > first.skipped_from_hub, "{first:?}");

    let d = Dashboards::new(env.connections.clone());
    let health = d.health(&sync.id).await.unwrap();
    assert_eq!(health.status, HealthStatus::Syncing, "some records failing is not an error of the sync");
    assert_eq!(health.sync.title(), "Pipedrive (Sandbox) deals");
    assert_eq!(health.in_sync, 1);
    let excluded: Vec<(&str, i64)> = health.excluded.iter().map(|c| (c.reason.as_str(), c.count)).collect();
    assert!(excluded.contains(&("unmapped_stage", 1)) && excluded.contains(&("filter", 1)), "{excluded:?}");
    let failing: Vec<(&str, &str, i64)> = health.failing.iter().map(|c| (c.reason.as_str(), c.label.as_str(), c.count)).collect();
    assert_eq!(failing, vec![("validation", "Validation", 1)]);
    assert!(health.progress.is_none(), "the initial sync is over");
    assert!(health.last_success_at.is_some());

    let failed = d.records(&sync.id, RecordBucket::Failing, Some("validation"), None).await.unwrap();
    assert_eq!(failed.records.len(), 1);
    let acme = failed.records[0].clone();
    assert_eq!(acme.name, "Acme renewal");
    assert!(acme.message.as_deref().unwrap_or_default().contains("sandbox fault"), "{acme:?}");
    let filtered = d.records(&sync.id, RecordBucket::Excluded, Some("filter"), None).await.unwrap();
    assert_eq!(filtered.records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["Tiny deal"]);

    // Not retried by itself (a validation error does not pass); Retry once the fault is off.
    env.faults(&env.pipedrive, json!({})).await;
    run(&engine, &sync).await;
    assert_eq!(d.health(&sync.id).await.unwrap().failing_total(), 1);
    assert!(matches!(d.retry(&env.admin, &sync.id, Some("no-such-record"), None).await, Err(DashboardError::Invalid(_))));
    assert_eq!(d.retry(&env.admin, &sync.id, Some(&acme.id), None).await.unwrap(), 1);
    assert!(d.records(&sync.id, RecordBucket::Failing, None, None).await.unwrap().records[0].retry_requested);
    let retried = run(&engine, &sync).await;
    assert_eq!(retried.created_in_app, 1, "{retried:?}");
    assert!(env.pd_deals(&sync).await.contains_key("Acme renewal"));
    let health = d.health(&sync.id).await.unwrap();
    assert_eq!((health.in_sync, health.failing_total()), (2, 0));

    // A conflict: both sides edit Umbrella within five minutes.
    let hs = env.hs_deals(&sync).await;
    let umbrella_hs = hs["Umbrella deal"].0.clone();
    let base = engine::clock::now_ms();
    env.hs_edit(&umbrella_hs, json!({"amount": "7000"}), Some(base)).await;
    env.pd_edit(&umbrella_pd, json!({"value": 6500}), Some(base + MINUTE)).await;
    let conflicted = run(&engine, &sync).await;
    assert_eq!(conflicted.conflicts, 1, "{conflicted:?}");

    // The record timeline, found by name and by either id.
    let found = d.search(&sync.id, "umbrel").await.unwrap();
    assert_eq!(found.len(), 1);
    // HubSpot and Pipedrive ids may coincide: a search by id lists every record holding it.
    for id in [&umbrella_hs, &umbrella_pd] {
        let by_id = d.search(&sync.id, id).await.unwrap();
        assert!(by_id.iter().any(|r| r.id == found[0].id), "{by_id:?}");
        assert!(by_id.iter().all(|r| r.hubspot_id.as_ref() == Some(id) || r.app_id.as_ref() == Some(id)), "{by_id:?}");
    }
    assert!(d.search(&sync.id, "%").await.unwrap().is_empty(), "wildcards are taken literally");
    let timeline = d.timeline(&sync.id, &found[0].id, None).await.unwrap();
    let kinds: Vec<&str> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.last(), Some(&"created"), "oldest last: {kinds:?}");
    // Stages read as names, not ids.
    let created = timeline.events.last().unwrap();
    let stage = created.changes.iter().find(|c| c.field == "Deal stage").expect("the stage in the create");
    assert_eq!(stage.new.as_deref(), Some("Sales Pipeline › Appointment Scheduled"), "{created:?}");
    let conflict = timeline.events.iter().find(|e| e.kind == EventKind::Conflict).expect("a conflict event");
    assert_eq!(conflict.rule.as_deref(), Some("Default to HubSpot"));
    let c = &conflict.changes[0];
    assert_eq!((c.hubspot.as_deref(), c.app.as_deref(), c.winner.as_deref()), (Some("7000"), Some("6500"), Some("hubspot")), "{c:?}");
    assert!(matches!(d.timeline(&sync.id, "nope", None).await, Err(DashboardError::RecordNotFound)));

    // History: newest first, filtered, each run opening to its events.
    let runs = d.runs(&sync.id, &RunFilter::default(), None).await.unwrap();
    assert_eq!(runs.runs.len(), 4);
    assert_eq!(runs.runs.last().unwrap().trigger, RunTrigger::Initial);
    assert_eq!(
        (runs.runs.last().unwrap().skipped_from_hub, runs.runs.last().unwrap().skipped_from_app()),
        (first.skipped_from_hub, first.skipped - first.skipped_from_hub)
    );
    assert_eq!(runs.runs[0].conflicts, 1);
    let partial = d.runs(&sync.id, &RunFilter { outcome: Some("partial".into()), ..Default::default() }, None).await.unwrap();
    assert_eq!(partial.runs.len(), 1);
    let initial = d.runs(&sync.id, &RunFilter { trigger: Some("initial".into()), ..Default::default() }, None).await.unwrap();
    assert_eq!(initial.runs.len(), 1);
    let future = d.runs(&sync.id, &RunFilter { from: Some("2999-01-01".into()), ..Default::default() }, None).await.unwrap();
    assert!(future.runs.is_empty());
    assert!(matches!(
        d.runs(&sync.id, &RunFilter { trigger: Some("cron".into()), ..Default::default() }, None).await,
        Err(DashboardError::Invalid(_))
    ));
    let detail = d.run_detail(&sync.id, &partial.runs[0].id, None).await.unwrap();
    let names: Vec<(&str, &str)> = detail.events.events.iter().map(|e| (e.kind.as_str(), e.record_name.as_str())).collect();
    assert!(names.contains(&("failed", "Acme renewal")) && names.contains(&("created", "Umbrella deal")), "{names:?}");
    assert!(names.contains(&("excluded", "Tiny deal")) && names.contains(&("excluded", "Initech pilot")), "{names:?}");

    // Charts count what the runs wrote and failed.
    let chart = d.chart(&sync.id, ChartRange::Day).await.unwrap();
    assert_eq!(chart.buckets.len(), 24);
    let all_runs = env.connections.store().runs(&sync.id, 100).await.unwrap();
    let written: i64 = all_runs.iter().map(|r| r.created_in_app + r.created_in_hub + r.updated_in_app + r.updated_in_hub).sum();
    assert_eq!(chart.buckets.iter().map(|b| b.synced).sum::<i64>(), written);
    assert_eq!(chart.buckets.iter().map(|b| b.errors).sum::<i64>(), 1);
    assert_eq!(d.chart(&sync.id, ChartRange::Month).await.unwrap().buckets.len(), 30);

    // The overview, the CSV export and the metrics.
    let overview = d.overview().await.unwrap();
    assert_eq!(overview.len(), 1);
    assert_eq!((overview[0].in_sync, overview[0].excluded, overview[0].failing, overview[0].runs_24h), (2, 2, 0, 4));
    let csv = export(&d, &sync.id, ExportKind::Runs).await;
    assert_eq!(csv.lines().count(), 5, "a header and four runs:\n{csv}");
    assert!(csv.starts_with("run_id,started_at,"));
    let events = export(&d, &sync.id, ExportKind::Events).await;
    assert!(events.lines().any(|l| l.contains(",conflict,") && l.contains(",7000,6500,hubspot,Default to HubSpot,")), "{events}");
    assert!(events.lines().any(|l| l.contains(",failed,app,") && l.contains(",validation,")), "{events}");
    let metrics = d.metrics().await.unwrap();
    let labels = format!("sync=\"{}\",app=\"pipedrive\",object=\"deal\"", sync.id);
    for line in [
        format!("tandem_sync_records{{{labels},bucket=\"excluded\",reason=\"filter\"}} 1"),
        format!("tandem_sync_records{{{labels},bucket=\"in_sync\",reason=\"\"}} 2"),
        format!("tandem_sync_runs_total{{{labels},outcome=\"partial\"}} 1"),
        format!("tandem_sync_status{{{labels},status=\"syncing\"}} 1"),
        format!("tandem_sync_conflicts_total{{{labels}}} 1"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("# TYPE tandem_sync_api_calls_total counter"));
    env
}

on_both_backends!(retry_all_marks_a_category_and_an_initial_sync_shows_progress);
async fn retry_all_marks_a_category_and_an_initial_sync_shows_progress(env: Env) -> Env {
    let sync = set_up(&env, |_, _| {}).await;
    for i in 0..5 {
        env.hs_create(
            json!({"dealname": format!("Deal {i}"), "amount": "100", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_method": "POST", "only_path": "/api/v2/deals"})).await;
    let engine = engine(&env);
    let d = Dashboards::new(env.connections.clone());
    // Before the first run: the initial sync is due, nothing is counted yet.
    let waiting = d.progress(&sync.id).await.unwrap();
    assert_eq!(waiting, d.health(&sync.id).await.unwrap().progress);
    assert!(waiting.as_ref().is_none_or(|p| p.done == 0 && p.total.is_none()), "{waiting:?}");
    run(&engine, &sync).await;
    let state = env.connections.store().sync_state(&sync.id).await.unwrap().unwrap();
    assert_eq!(state.progress_total, Some(5), "five HubSpot deals and an empty Pipedrive");
    assert_eq!(state.progress_done, 5);
    assert_eq!(
        d.health(&sync.id).await.unwrap().failing,
        vec![model::dashboard::BucketCount { reason: "validation".into(), label: "Validation".into(), count: 5 }]
    );
    assert_eq!(d.retry(&env.admin, &sync.id, None, Some("rate_limit")).await.unwrap(), 0, "no record fails with that category");
    env.faults(&env.pipedrive, json!({})).await;
    assert_eq!(d.retry(&env.admin, &sync.id, None, Some("validation")).await.unwrap(), 5);
    let audit = env.connections.audit_page(None, 10).await.unwrap();
    assert!(audit.entries.iter().any(|e| e.summary.contains("Asked to retry 5 records failing with Validation")), "{:?}", audit.entries);
    assert_eq!(run(&engine, &sync).await.created_in_app, 5);
    assert_eq!(d.health(&sync.id).await.unwrap().in_sync, 5);

    // The status follows the sync and its connections.
    let syncs = Syncs::new(env.connections.clone());
    syncs.set_status(&env.admin, &sync.id, SyncStatus::Paused).await.unwrap();
    assert_eq!(d.health(&sync.id).await.unwrap().status, HealthStatus::Paused);
    syncs.set_status(&env.admin, &sync.id, SyncStatus::Off).await.unwrap();
    assert_eq!(d.health(&sync.id).await.unwrap().status, HealthStatus::Off);
    syncs.set_status(&env.admin, &sync.id, SyncStatus::On).await.unwrap();
    assert_eq!(d.health(&sync.id).await.unwrap().status, HealthStatus::Syncing);
    // Pipedrive's admin removes Tandem: the next refresh is refused for good.
    env.control(&env.pipedrive, "/_sandbox/revoke-tokens").await;
    let token = env.connections.access_token(&sync.pipedrive).await.unwrap();
    let _ = env.connections.access_token_at(&sync.pipedrive, token.expires_at - 60_000).await;
    let health = d.health(&sync.id).await.unwrap();
    assert_eq!(health.status, HealthStatus::NeedsReconnection);
    assert!(health.status_detail.as_deref().unwrap_or_default().contains("Reconnect"), "{health:?}");
    assert_eq!(d.overview().await.unwrap()[0].status, HealthStatus::NeedsReconnection, "problems first");
    let metrics = d.metrics().await.unwrap();
    assert!(metrics.lines().any(|l| l.contains("status=\"needs_reconnection\"} 1")), "{metrics}");
    env
}

on_both_backends!(every_list_pages_through_each_row_once);
/// Keyset pages (runs newest first, records in a bucket, a run's events, a record's timeline):
/// following `next` from the first page lists every row exactly once, in order, also when
/// many rows share one time.
async fn every_list_pages_through_each_row_once(env: Env) -> Env {
    use engine::store::{EventRow, PageCommit, RecordRow, RunRow};
    let sync = set_up(&env, |_, _| {}).await;
    let store = env.connections.store();
    let d = Dashboards::new(env.connections.clone());
    let now = engine::clock::now_ms();
    // 130 runs, in groups of three that started in the same millisecond.
    let mut runs: Vec<RunRow> = (0..130)
        .map(|n| RunRow {
            id: format!("run-{:03}", (n * 37) % 130),
            sync_id: sync.id.clone(),
            trigger: RunTrigger::Scheduled,
            started_at: now - 3_600_000 + (n / 3) as i64 * 1_000,
            ended_at: Some(now - 3_600_000 + (n / 3) as i64 * 1_000 + 500),
            outcome: if n % 4 == 0 { RunOutcome::Partial } else { RunOutcome::Succeeded },
            ..RunRow::default()
        })
        .collect();
    for run in &runs {
        store.insert_run(run).await.unwrap();
    }
    runs.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = d.runs(&sync.id, &RunFilter::default(), before.as_deref()).await.unwrap();
        assert!(page.runs.len() <= engine::dashboards::RUNS_PER_PAGE as usize);
        seen.extend(page.runs.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), "every run once, newest first");
    // Filtered pages hold only matching runs, still each once.
    let mut partial = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = d.runs(&sync.id, &RunFilter { outcome: Some("partial".into()), ..Default::default() }, before.as_deref()).await.unwrap();
        partial.extend(page.runs.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(partial, runs.iter().filter(|r| r.outcome == RunOutcome::Partial).map(|r| r.id.clone()).collect::<Vec<_>>());

    // 120 excluded records and 260 events: on one record (its timeline) and in one run.
    let record = |n: usize| RecordRow {
        id: format!("rec-{n:03}"),
        sync_id: sync.id.clone(),
        hubspot_id: Some(format!("{}", 9_000 + n)),
        app_id: None,
        state: RecordState::Excluded,
        reason: Some(model::states::Exclusion::Filter.into()),
        message: Some("The deal does not meet the sync's filters.".into()),
        origin: "hubspot".into(),
        create_on: None,
        name: format!("Paged deal {n}"),
        agreed: Default::default(),
        hub_seen_at: Some(now),
        app_seen_at: None,
        created_at: now,
        updated_at: now,
        match_key: None,
        pending: None,
    };
    store.save_records(&(0..120).map(record).collect::<Vec<_>>()).await.unwrap();
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = d.records(&sync.id, RecordBucket::Excluded, Some("filter"), after.as_deref()).await.unwrap();
        listed.extend(page.records.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, (0..120).map(|n| format!("rec-{n:03}")).collect::<Vec<_>>());

    let run_id = runs[0].id.clone();
    let events: Vec<EventRow> = (0..260)
        .map(|n| EventRow {
            id: format!("evt-{n:03}"),
            sync_id: sync.id.clone(),
            run_id: run_id.clone(),
            record_id: "rec-007".into(),
            // Five events share each millisecond.
            at: now - 60_000 + (n / 5) as i64,
            kind: EventKind::Updated,
            side: Side::App,
            changes: json!([{"field": "Amount", "old": n.to_string(), "new": (n + 1).to_string()}]).to_string(),
            rule: None,
            category: None,
            message: None,
        })
        .collect();
    store.ensure_sync_state(&sync.id, 1, now).await.unwrap();
    assert!(store.claim_sync(&sync.id, "test", now, now + 60_000).await.unwrap());
    store
        .commit_page(
            &PageCommit { sync_id: &sync.id, lease_owner: "test", lease_until: now + 60_000, events, ..PageCommit::default() },
            now,
        )
        .await
        .unwrap();
    let mut in_run = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = d.run_detail(&sync.id, &run_id, after.as_deref()).await.unwrap().events;
        in_run.extend(page.events.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(in_run, (0..260).map(|n| format!("evt-{n:03}")).collect::<Vec<_>>(), "a run's events in the order they happened");
    let mut timeline = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = d.timeline(&sync.id, "rec-007", before.as_deref()).await.unwrap();
        assert!(page.events.len() <= engine::dashboards::TIMELINE_EVENTS as usize);
        timeline.extend(page.events.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(timeline, (0..260).rev().map(|n| format!("evt-{n:03}")).collect::<Vec<_>>(), "every event of the record, newest first");
    env
}

on_both_backends!(the_overview_puts_problems_first);
/// Two syncs of one app: in name order while both are healthy; one with failing records first;
/// a paused one before those that sync.
async fn the_overview_puts_problems_first(env: Env) -> Env {
    let deals = set_up(&env, |_, _| {}).await;
    let syncs = Syncs::new(env.connections.clone());
    let schemas = syncs.schemas(&deals.pipedrive, ObjectKind::Contact).await.unwrap();
    let saved = syncs.save(&env.admin, &deals.pipedrive, &SyncSettings::new_for(ObjectKind::Contact, &schemas)).await.unwrap();
    let contacts =
        Sync { id: saved.id, pipedrive: deals.pipedrive.clone(), hubspot: deals.hubspot.clone(), schemas, app: deals.app.clone() };
    let engine = engine(&env);
    run(&engine, &deals).await;
    let contacts_run = run(&engine, &contacts).await;
    assert_eq!(contacts_run.outcome, RunOutcome::Succeeded, "{contacts_run:?}");
    let d = Dashboards::new(env.connections.clone());
    let order = |rows: Vec<model::dashboard::OverviewRow>| rows.iter().map(|r| (r.sync.object, r.status)).collect::<Vec<_>>();
    assert_eq!(
        order(d.overview().await.unwrap()),
        vec![(ObjectKind::Contact, HealthStatus::Syncing), (ObjectKind::Deal, HealthStatus::Syncing)]
    );

    env.faults(&env.pipedrive, json!({"rate_400": 1.0, "only_method": "POST", "only_path": "/api/v2/deals"})).await;
    env.hs_create(json!({"dealname": "Refused", "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}), None).await;
    run(&engine, &deals).await;
    let rows = d.overview().await.unwrap();
    assert_eq!((rows[0].sync.object, rows[0].failing), (ObjectKind::Deal, 1), "failing records first");

    syncs.set_status(&env.admin, &contacts.id, SyncStatus::Paused).await.unwrap();
    assert_eq!(
        order(d.overview().await.unwrap()),
        vec![(ObjectKind::Contact, HealthStatus::Paused), (ObjectKind::Deal, HealthStatus::Syncing)]
    );
    env
}

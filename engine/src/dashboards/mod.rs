//! Sync health and history: what the dashboards show, read from what the engine records (sync
//! state, the identity map, runs and record events), plus an admin's Retry, the CSV export and
//! the Prometheus metrics (`metrics.rs`) and the CSV export (`export.rs`).

mod export;
mod metrics;

use export::parse_cursor;
pub use export::{export_range, ExportCursor, ExportKind};

use std::collections::HashMap;

use model::apps::{ConnectionStatus, ConnectionSummary, ObjectKind};
use model::dashboard::{
    reason_label, BucketCount, Chart, ChartBucket, ChartRange, EventPage, EventSummary, FieldChange, HealthStatus, OverviewRow, Progress,
    RecordBucket, RecordPage, RecordSummary, RunDetail, RunFilter, RunPage, RunSummary, SyncHealth, SyncLabel, Timeline,
};
use model::states::{RecordReason, RecordState, RunOutcome, RunTrigger};
use model::sync::SyncStatus;
use model::{timefmt, SessionUser};

use crate::clock::now_ms;
use crate::connections::{ConnectionError, Connections};
use crate::store::{NamedEventRow, RecordRow, RunQuery, RunRow, StateCount, StoreError, SyncRow, SyncStateRow};

pub const RECORDS_PER_PAGE: i64 = 50;
pub const RUNS_PER_PAGE: i64 = 50;
pub const EVENTS_PER_PAGE: i64 = 100;
pub const TIMELINE_EVENTS: i64 = 100;
const SEARCH_RESULTS: i64 = 25;
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("That sync does not exist.")]
    SyncNotFound,
    #[error("That run does not exist.")]
    RunNotFound,
    #[error("That record does not exist.")]
    RecordNotFound,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = DashboardError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Dashboards {
    connections: Connections,
}

/// A sync with its words and what decides its status.
struct SyncContext {
    row: SyncRow,
    label: SyncLabel,
    app: Option<ConnectionSummary>,
    hub: Option<ConnectionSummary>,
}

impl Dashboards {
    pub fn new(connections: Connections) -> Dashboards {
        Dashboards { connections }
    }

    fn store(&self) -> &crate::Store {
        self.connections.store()
    }

    async fn contexts(&self) -> Result<Vec<SyncContext>> {
        let connections = self.connections.list().await?;
        let rows = self.store().syncs().await?;
        Ok(rows.into_iter().map(|row| context_of(row, &connections)).collect())
    }

    /// Every sync's newest run, by sync id.
    async fn last_runs(&self) -> Result<HashMap<String, RunSummary>> {
        Ok(self.store().last_runs().await?.into_iter().map(|r| (r.sync_id.clone(), run_summary(r))).collect())
    }

    async fn context(&self, sync_id: &str) -> Result<SyncContext> {
        let row = self.store().sync(sync_id).await?.ok_or(DashboardError::SyncNotFound)?;
        let connections = self.connections.list().await?;
        Ok(context_of(row, &connections))
    }

    /// The sync's label (for headings and links).
    pub async fn label(&self, sync_id: &str) -> Result<SyncLabel> {
        Ok(self.context(sync_id).await?.label)
    }

    /// The Health tab.
    pub async fn health(&self, sync_id: &str) -> Result<SyncHealth> {
        let ctx = self.context(sync_id).await?;
        let store = self.store();
        let (state, counts, last_run) =
            (store.sync_state(sync_id).await?, store.record_counts(Some(sync_id)).await?, store.last_run(sync_id).await?);
        Ok(health_of(&ctx, state.as_ref(), &counts, last_run.map(run_summary), now_ms()))
    }

    /// Just the initial sync's progress (what the progress bar polls): no record counts.
    pub async fn progress(&self, sync_id: &str) -> Result<Option<Progress>> {
        let ctx = self.context(sync_id).await?;
        let store = self.store();
        let (state, last_run) = (store.sync_state(sync_id).await?, store.last_run(sync_id).await?);
        Ok(health_of(&ctx, state.as_ref(), &[], last_run.map(run_summary), now_ms()).progress)
    }

    /// One page of the records in a bucket (and reason).
    pub async fn records(&self, sync_id: &str, bucket: RecordBucket, reason: Option<&str>, after: Option<&str>) -> Result<RecordPage> {
        self.context(sync_id).await?;
        let mut rows = self.store().records_in_bucket(sync_id, bucket.state(), reason, after, RECORDS_PER_PAGE + 1).await?;
        let next = if rows.len() as i64 > RECORDS_PER_PAGE {
            rows.truncate(RECORDS_PER_PAGE as usize);
            rows.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(RecordPage { records: self.summaries(rows).await?, next })
    }

    async fn summaries(&self, rows: Vec<RecordRow>) -> Result<Vec<RecordSummary>> {
        let ids: Vec<String> = rows.iter().filter(|r| r.state == RecordState::Failed).map(|r| r.id.clone()).collect();
        let requested = self.store().retry_requested(&ids).await?;
        Ok(rows.into_iter().map(|r| record_summary(&requested, r)).collect())
    }

    /// Records whose id (Tandem, HubSpot or app) is `q`, or whose name contains it.
    pub async fn search(&self, sync_id: &str, q: &str) -> Result<Vec<RecordSummary>> {
        self.context(sync_id).await?;
        let q = q.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.store().search_records(sync_id, q, SEARCH_RESULTS).await?;
        self.summaries(rows).await
    }

    /// A record and a page of its sync events, newest first; `before` (a page's `next`) pages
    /// back through every older one.
    pub async fn timeline(&self, sync_id: &str, record_id: &str, before: Option<&str>) -> Result<Timeline> {
        let ctx = self.context(sync_id).await?;
        let row = self.store().record(record_id).await?.filter(|r| r.sync_id == sync_id).ok_or(DashboardError::RecordNotFound)?;
        let mut rows = self.store().record_timeline(record_id, before.and_then(parse_cursor), TIMELINE_EVENTS + 1).await?;
        let next = if rows.len() as i64 > TIMELINE_EVENTS {
            rows.truncate(TIMELINE_EVENTS as usize);
            rows.last().map(|r| format!("{}_{}", r.event.at, r.event.id))
        } else {
            None
        };
        let record = self.summaries(vec![row]).await?.remove(0);
        Ok(Timeline { sync: ctx.label, record, events: rows.into_iter().map(event_summary).collect(), next })
    }

    /// A page of runs, newest first, filtered.
    pub async fn runs(&self, sync_id: &str, filter: &RunFilter, before: Option<&str>) -> Result<RunPage> {
        self.context(sync_id).await?;
        let mut query = run_query(filter)?;
        query.before = before.and_then(parse_cursor);
        query.limit = RUNS_PER_PAGE + 1;
        let mut rows = self.store().runs_page(sync_id, &query).await?;
        let next = if rows.len() as i64 > RUNS_PER_PAGE {
            rows.truncate(RUNS_PER_PAGE as usize);
            rows.last().map(|r| format!("{}_{}", r.started_at, r.id))
        } else {
            None
        };
        Ok(RunPage { runs: rows.into_iter().map(run_summary).collect(), next })
    }

    /// A run and a page of its record events.
    pub async fn run_detail(&self, sync_id: &str, run_id: &str, after: Option<&str>) -> Result<RunDetail> {
        let ctx = self.context(sync_id).await?;
        let run = self.store().run(run_id).await?.filter(|r| r.sync_id == sync_id).ok_or(DashboardError::RunNotFound)?;
        let mut rows = self.store().run_events(run_id, after, EVENTS_PER_PAGE + 1).await?;
        let next = if rows.len() as i64 > EVENTS_PER_PAGE {
            rows.truncate(EVENTS_PER_PAGE as usize);
            rows.last().map(|r| r.event.id.clone())
        } else {
            None
        };
        Ok(RunDetail {
            sync: ctx.label,
            run: run_summary(run),
            events: EventPage { events: rows.into_iter().map(event_summary).collect(), next },
        })
    }

    /// Records written and errors per hour or day.
    pub async fn chart(&self, sync_id: &str, range: ChartRange) -> Result<Chart> {
        self.context(sync_id).await?;
        let start = range.start(now_ms());
        let found: HashMap<i64, (i64, i64)> = self
            .store()
            .run_buckets(sync_id, start, range.bucket_ms())
            .await?
            .into_iter()
            .map(|b| (b.bucket, (b.synced, b.errors)))
            .collect();
        let buckets = (0..range.buckets())
            .map(|i| {
                let (synced, errors) = found.get(&i).copied().unwrap_or((0, 0));
                ChartBucket { start: start + i * range.bucket_ms(), synced, errors }
            })
            .collect();
        Ok(Chart { range, buckets })
    }

    /// Every sync, problems first.
    pub async fn overview(&self) -> Result<Vec<OverviewRow>> {
        let now = now_ms();
        let store = self.store();
        let contexts = self.contexts().await?;
        let states: HashMap<String, SyncStateRow> = store.sync_states().await?.into_iter().map(|s| (s.sync_id.clone(), s)).collect();
        let mut counts: HashMap<String, Vec<StateCount>> = HashMap::new();
        for c in store.record_counts(None).await? {
            counts.entry(c.sync_id.clone()).or_default().push(c);
        }
        let day: HashMap<String, _> = store.run_totals(now - 86_400_000).await?.into_iter().map(|t| (t.sync_id.clone(), t)).collect();
        let mut last_runs = self.last_runs().await?;
        let mut rows = Vec::new();
        for ctx in contexts {
            let last_run = last_runs.remove(&ctx.row.id);
            let health = health_of(&ctx, states.get(&ctx.row.id), counts.get(&ctx.row.id).map(Vec::as_slice).unwrap_or(&[]), last_run, now);
            let totals = day.get(&ctx.row.id);
            rows.push(OverviewRow {
                status: health.status,
                status_detail: health.status_detail.clone(),
                last_success_at: health.last_success_at,
                in_sync: health.in_sync,
                excluded: health.excluded_total(),
                failing: health.failing_total(),
                synced_24h: totals.map(|t| t.created_in_app + t.updated_in_app + t.created_in_hub + t.updated_in_hub).unwrap_or(0),
                errors_24h: totals.map(|t| t.failed).unwrap_or(0),
                runs_24h: totals.map(|t| t.runs).unwrap_or(0),
                sync: health.sync,
            });
        }
        rows.sort_by(|a, b| {
            (a.status.severity(), a.failing == 0, &a.sync.app_name, &a.sync.account_name, a.sync.object.label()).cmp(&(
                b.status.severity(),
                b.failing == 0,
                &b.sync.app_name,
                &b.sync.account_name,
                b.sync.object.label(),
            ))
        });
        Ok(rows)
    }

    /// Asks the engine to retry a failed record, every failed record of a category, or all of
    /// them, and wakes the sync. Answers how many records will be retried.
    pub async fn retry(&self, user: &SessionUser, sync_id: &str, record_id: Option<&str>, category: Option<&str>) -> Result<u64> {
        let ctx = self.context(sync_id).await?;
        let now = now_ms();
        let marked = self.store().request_retry(sync_id, record_id, category, now).await?;
        if record_id.is_some() && marked == 0 {
            return Err(DashboardError::Invalid("That record is not failing any more; there is nothing to retry.".into()));
        }
        if marked > 0 {
            self.store().wake_sync(sync_id, now).await?;
            let what = match (record_id, category) {
                (Some(id), _) => format!("record {id}"),
                (None, Some(c)) => format!("{marked} records failing with {}", reason_label(c)),
                (None, None) => format!("{marked} failing records"),
            };
            self.connections
                .audit(Some(user), "sync.retry", Some(sync_id), format!("Asked to retry {what} of the {}", ctx.label.title()))
                .await?;
        }
        Ok(marked)
    }
}

fn context_of(row: SyncRow, connections: &[ConnectionSummary]) -> SyncContext {
    let app = connections.iter().find(|c| c.id == row.connection_id).cloned();
    let hub = app.as_ref().and_then(|a| a.hub_in(connections)).cloned();
    let linked = app.as_ref().and_then(|a| a.linked_hub(connections)).map(|h| model::dashboard::HubAccount {
        connection_id: h.id.clone(),
        name: h.label_with_id(),
        installed_at: h.installed_at,
        uninstalled: h.status == ConnectionStatus::Uninstalled,
    });
    let object = ObjectKind::from_key(&row.object).unwrap_or(ObjectKind::Deal);
    let label = SyncLabel {
        sync_id: row.id.clone(),
        object,
        connection_id: row.connection_id.clone(),
        provider: app.as_ref().map(|a| a.provider.clone()).unwrap_or_default(),
        app_name: app.as_ref().map(|a| a.provider_name.clone()).unwrap_or_else(|| "App".into()),
        account_name: app.as_ref().map(|a| a.account_name.clone()).unwrap_or_default(),
        hub_account: linked,
    };
    SyncContext { row, label, app, hub }
}

fn health_of(ctx: &SyncContext, state: Option<&SyncStateRow>, counts: &[StateCount], last_run: Option<RunSummary>, now: i64) -> SyncHealth {
    let (status, status_detail) = status_of(ctx, last_run.as_ref());
    let bucket = |state: RecordState| -> Vec<BucketCount> {
        let mut found: Vec<BucketCount> = counts
            .iter()
            .filter(|c| c.state == state)
            .map(|c| {
                let reason = c.reason.map(RecordReason::as_str).unwrap_or("other").to_string();
                BucketCount { label: c.reason.map(RecordReason::label).unwrap_or("Other").to_string(), reason, count: c.count }
            })
            .collect();
        found.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        found
    };
    let total = |state: RecordState| counts.iter().filter(|c| c.state == state).map(|c| c.count).sum::<i64>();
    let initial = state.filter(|s| s.phase.is_initial());
    // From the moment the engine picks the (re)started initial sync up until it is done.
    let progress = initial
        .filter(|_| status == HealthStatus::Syncing)
        .map(|s| Progress::new(s.progress_done, s.progress_total, s.initial_started_at.unwrap_or(now), now));
    SyncHealth {
        sync: ctx.label.clone(),
        status,
        status_detail,
        last_success_at: state.and_then(|s| s.last_success_at),
        next_run_at: state.map(|s| s.next_run_at).filter(|_| status == HealthStatus::Syncing || status == HealthStatus::Error),
        running: state.is_some_and(|s| s.lease_until.is_some_and(|u| u >= now)),
        in_sync: total(RecordState::Linked),
        pending: total(RecordState::Creating),
        excluded: bucket(RecordState::Excluded),
        failing: bucket(RecordState::Failed),
        progress,
        last_run,
    }
}

fn status_of(ctx: &SyncContext, last_run: Option<&RunSummary>) -> (HealthStatus, Option<String>) {
    match SyncStatus::parse(&ctx.row.status) {
        Some(SyncStatus::Off) => return (HealthStatus::Off, None),
        Some(SyncStatus::Paused) | None => return (HealthStatus::Paused, None),
        Some(SyncStatus::On) => {}
    }
    match &ctx.app {
        None => return (HealthStatus::NeedsReconnection, Some("The app's connection no longer exists.".into())),
        Some(a) if a.status == ConnectionStatus::Uninstalled => {
            return (
                HealthStatus::NeedsReconnection,
                Some(format!("{} was uninstalled. Install it again to resume this sync.", a.provider_name)),
            )
        }
        Some(a) if a.status == ConnectionStatus::NeedsReconnection => {
            let why = a.status_reason.clone().unwrap_or_else(|| format!("{} refused Tandem's credentials.", a.provider_name));
            return (HealthStatus::NeedsReconnection, Some(format!("{why} Reconnect {} to resume.", a.account_name)));
        }
        Some(_) => {}
    }
    match &ctx.hub {
        None => return (HealthStatus::NeedsReconnection, Some("HubSpot is not connected. Connect HubSpot to resume.".into())),
        Some(h) if h.status == ConnectionStatus::NeedsReconnection => {
            let why = h.status_reason.clone().unwrap_or_else(|| "HubSpot refused Tandem's credentials.".into());
            return (HealthStatus::NeedsReconnection, Some(format!("{why} Reconnect HubSpot to resume.")));
        }
        Some(_) => {}
    }
    match last_run {
        Some(r) if r.outcome == RunOutcome::Failed => {
            (HealthStatus::Error, Some(r.message.clone().unwrap_or_else(|| "The last run failed.".into())))
        }
        _ => (HealthStatus::Syncing, None),
    }
}

fn record_summary(requested: &[String], r: RecordRow) -> RecordSummary {
    RecordSummary {
        bucket: RecordBucket::of(r.state),
        retry_requested: requested.contains(&r.id),
        id: r.id,
        name: r.name,
        hubspot_id: r.hubspot_id,
        app_id: r.app_id,
        reason: r.reason,
        message: r.message,
        updated_at: r.updated_at,
    }
}

pub fn run_summary(r: RunRow) -> RunSummary {
    RunSummary {
        id: r.id,
        trigger: r.trigger,
        started_at: r.started_at,
        ended_at: r.ended_at,
        outcome: r.outcome,
        message: r.message,
        created_in_app: r.created_in_app,
        updated_in_app: r.updated_in_app,
        created_in_hub: r.created_in_hub,
        updated_in_hub: r.updated_in_hub,
        skipped: r.skipped,
        skipped_from_hub: r.skipped_from_hub,
        failed_to_app: r.failed_to_app,
        failed_to_hub: r.failed_to_hub,
        conflicts: r.conflicts,
        api_calls: r.api_calls,
        calls_read: r.calls_read,
        calls_write: r.calls_write,
        calls_lookup: r.calls_lookup,
        calls_schema: r.calls_schema,
        rate_limit_waits: r.rate_limit_waits,
        rate_limit_wait_ms: r.rate_limit_wait_ms,
    }
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn event_summary(r: NamedEventRow) -> EventSummary {
    let changes: Vec<serde_json::Value> = serde_json::from_str(&r.event.changes).unwrap_or_default();
    let changes = changes
        .iter()
        .map(|c| FieldChange {
            field: c["field"].as_str().unwrap_or_default().to_string(),
            old: text(&c["old"]),
            new: text(&c["new"]),
            hubspot: text(&c["hubspot"]),
            app: text(&c["app"]),
            winner: text(&c["winner"]),
        })
        .collect();
    let e = r.event;
    EventSummary {
        id: e.id,
        run_id: e.run_id,
        record_id: e.record_id,
        record_name: r.record_name.unwrap_or_default(),
        at: e.at,
        kind: e.kind,
        side: e.side,
        changes,
        rule: e.rule,
        category: e.category,
        message: e.message,
    }
}

/// `YYYY-MM-DD` dates (UTC, both days included) and known triggers and outcomes.
fn run_query(filter: &RunFilter) -> Result<RunQuery> {
    let day = |d: &Option<String>, what: &str| -> Result<Option<i64>> {
        match d.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => Ok(None),
            Some(d) => timefmt::iso_date_ms(d)
                .map(Some)
                .ok_or_else(|| DashboardError::Invalid(format!("The {what} date must look like 2026-11-29."))),
        }
    };
    let (from, to) = (day(&filter.from, "from")?, day(&filter.to, "to")?.map(|t| t + 86_400_000));
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(DashboardError::Invalid("The from date must not be after the to date.".into()));
        }
    }
    fn pick<T>(v: &Option<String>, parse: fn(&str) -> Option<T>, what: &str) -> Result<Option<T>> {
        match v.as_deref().filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| DashboardError::Invalid(format!("Unknown {what} \"{v}\"."))),
        }
    }
    Ok(RunQuery {
        from,
        to,
        trigger: pick(&filter.trigger, RunTrigger::parse, "trigger")?,
        outcome: pick(&filter.outcome, RunOutcome::parse, "outcome")?,
        before: None,
        limit: RUNS_PER_PAGE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_filters_are_checked() {
        let q = run_query(&RunFilter { from: Some("2026-11-01".into()), to: Some("2026-11-01".into()), ..Default::default() }).unwrap();
        assert_eq!(q.to.unwrap() - q.from.unwrap(), 86_400_000, "both days are included");
        assert!(matches!(run_query(&RunFilter { from: Some("1 Nov".into()), ..Default::default() }), Err(DashboardError::Invalid(_))));
        assert!(matches!(run_query(&RunFilter { trigger: Some("cron".into()), ..Default::default() }), Err(DashboardError::Invalid(_))));
        assert!(matches!(
            run_query(&RunFilter { from: Some("2026-11-02".into()), to: Some("2026-11-01".into()), ..Default::default() }),
            Err(DashboardError::Invalid(_))
        ));
    }
}

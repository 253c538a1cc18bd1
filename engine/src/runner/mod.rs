//! The sync engine: runs every sync that is on, exactly as its saved settings say.
//!
//! A run holds the sync's lease (one runner per sync across instances), reads each side page by
//! page (every deal in the initial phase; then what changed since the cursor), decides each
//! record with [`model::merge::decide`], writes to the other side in batches, and commits the
//! page's identity-map rows, record events, run counters and cursor in one transaction. A record
//! about to be created gets its Tandem id stored first and written into the new deal, so a crash
//! between the remote create and the commit is found again by that id, never created twice.

#[cfg(test)]
mod fixtures;
pub mod links;
pub mod plan;
#[cfg(test)]
mod tests;

/// The provider client the engine calls through (it lives with the connectors).
pub use crate::connectors::http as api;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use model::apps::{ConnectionStatus, ObjectKind, HUBSPOT};
use model::merge::Side;
use model::states::{EventKind, Phase, RecordState, RunOutcome, RunTrigger};
use model::sync::{FieldInfo, SideSchema, SyncSettings, SyncStatus};
use model::translate::OwnerPairs;

use crate::clock::now_ms;
use crate::connections::Connections;
use crate::connectors::hubspot::records::{existing_contact, HubSpotRecords};
use crate::connectors::record::{list_at_least, HubRecords, Page, RecordSpec, Records, RemoteRecord};
use crate::connectors::Provider;
use crate::secret::new_id;
use crate::store::{Agreements, Checkpoint, PageCommit, RecordKey, RecordRow, RunRow, Store, StoreError};
use api::{Api, ApiError, Category, Stats};
use links::Link;
use plan::{Create, FieldTimes, Found, PagePlan, Planner, Update, Values};

/// How far back an incremental read reaches before its cursor: HubSpot's search index trails
/// its writes by a few seconds, and a record changed in the same instant as the cursor must
/// not be missed. Records already seen at their current time are skipped, so this costs reads,
/// not writes.
const CURSOR_MARGIN_MS: i64 = 5_000;
/// Records the initial sync decides, writes and commits at once (several HubSpot pages of 100,
/// one Pipedrive page of 500): fewer, larger store commits, and more creates in flight at once.
const INITIAL_GROUP: usize = 500;
/// HubSpot search stops at 10,000 results: a read restarts from its last time before that.
pub const SEARCH_WINDOW: usize = 9_800;
/// Failing records retried automatically per run (transient errors only).
const RETRY_PER_RUN: i64 = 500;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How often a sync reads changes without a webhook.
    pub interval: Duration,
    /// How long a sync's lease lasts without a renewal (a page commit renews it).
    pub lease: Duration,
    /// Records read per HubSpot search before a new search starts ([`SEARCH_WINDOW`]; smaller
    /// in tests).
    pub search_window: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { interval: Duration::from_secs(30), lease: Duration::from_secs(60), search_window: SEARCH_WINDOW }
    }
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Scheduled,
    Webhook,
    Manual,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("the stored settings are unreadable: {0}")]
    Settings(String),
}

/// How a run ended, for callers and tests.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run: RunRow,
}

#[derive(Clone)]
pub struct Engine {
    connections: Connections,
    instance: String,
    config: EngineConfig,
    /// Connections whose app webhook is registered (or cannot be reached), once per engine.
    webhooks: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl Engine {
    pub fn new(connections: Connections, config: EngineConfig) -> Engine {
        Engine { connections, instance: new_id(), config, webhooks: Arc::default() }
    }

    pub fn store(&self) -> &Store {
        self.connections.store()
    }

    /// On SQLite only one instance runs, so leases left by a process that was killed are its
    /// own: released at start-up instead of waiting for them to expire. On Postgres other
    /// instances may be alive; their leases expire on their own.
    pub async fn reclaim_after_restart(&self) -> Result<(), EngineError> {
        if self.store().backend() == crate::store::Backend::Sqlite {
            self.store().release_all_leases(None).await?;
        }
        Ok(())
    }

    /// Gives back the leases this instance holds (on shutdown).
    pub async fn release_leases(&self) -> Result<(), EngineError> {
        self.store().release_all_leases(Some(&self.instance)).await?;
        Ok(())
    }

    /// The associations a sync keeps: with each other object of the same app that is synced too.
    async fn links_of(&self, row: &crate::store::SyncRow, app: Provider, object: ObjectKind) -> Result<Vec<Link>, EngineError> {
        let syncs = self.store().syncs().await?;
        Ok(links::possible(app, object)
            .into_iter()
            .filter_map(|link| {
                let linked =
                    syncs.iter().find(|s| s.connection_id == row.connection_id && s.id != row.id && s.object == link.object.key())?;
                Some(Link { sync_id: linked.id.clone(), ..link })
            })
            .collect())
    }

    /// Registers the app's webhook once per engine and connection, when the provider can reach
    /// this server (a sandbox on loopback, or a public URL that is not loopback). A failure only
    /// means changes wait for the next interval.
    async fn register_webhook(&self, app: &model::apps::ConnectionSummary, api: &Api) {
        let done = &self.webhooks;
        if done.lock().unwrap_or_else(|p| p.into_inner()).contains(&app.id) || !api.provider.registers_webhooks() {
            return;
        }
        let name = api.provider.name();
        let url = self.connections.webhook_url(api.provider, &app.id);
        let loopback = |u: &str| {
            url::Url::parse(u).ok().and_then(|u| u.host_str().map(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"))).unwrap_or(true)
        };
        let reachable = !loopback(&url) || self.connections.provider(&app.provider).is_some_and(|p| p.is_sandbox());
        if !reachable {
            done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone());
            tracing::info!(connection_id = %app.id, app = name, "no webhook registered: TANDEM_PUBLIC_URL is not reachable from the app; changes are read every interval");
            return;
        }
        let (user, password) = self.connections.webhook_credentials(api.provider, &app.id);
        match api.provider.register_webhooks(api, &url, &user, &password).await {
            Ok(()) => {
                done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone());
            }
            Err(e) => {
                tracing::warn!(connection_id = %app.id, app = name, error = %e, "the app's webhook could not be registered; will retry")
            }
        }
    }

    /// Runs every sync that is due, one after another. Answers how many ran.
    pub async fn run_due(&self, trigger: Trigger) -> Result<usize, EngineError> {
        let mut ran = 0;
        for sync_id in self.store().due_syncs(now_ms()).await? {
            match self.run_sync(&sync_id, trigger).await {
                Ok(Some(_)) => ran += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(sync_id = %sync_id, error = %e, "sync run failed"),
            }
        }
        Ok(ran)
    }

    /// Runs one sync now if it is on, its connections are usable and no other instance holds it.
    pub async fn run_sync(&self, sync_id: &str, trigger: Trigger) -> Result<Option<RunReport>, EngineError> {
        let Some(mut began) = self.begin_run(sync_id, trigger).await? else { return Ok(None) };
        let (hub_stats, app_stats) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let result = async {
            let app_provider =
                Provider::parse(&began.app.provider).ok_or_else(|| EngineError::Settings(format!("unknown app {}", began.app.provider)))?;
            let hub_limiter = self.connections.limiter(&began.hub.id);
            let hub_api = Api::open(&self.connections, &began.hub.id, Provider::HUBSPOT, hub_limiter, hub_stats.clone()).await?;
            let app_limiter = self.connections.limiter(&began.app.id);
            let app_api = Api::open(&self.connections, &began.app.id, app_provider, app_limiter, app_stats.clone()).await?;
            let links = self.links_of(&began.row, app_provider, began.settings.object).await?;
            let holder = Holder::load(&hub_api, &app_api, began.settings.object, links).await?;
            self.register_webhook(&began.app, &app_api).await;
            let object = began.settings.object;
            let plan = self
                .planner(&began.settings, &began.run, &holder, app_provider.name())
                .with_rules(Provider::HUBSPOT.record_rules(object), app_provider.record_rules(object));
            let hub_records = HubSpotRecords::new(&hub_api, spec(object, plan.hub_fields(), &holder.hub_key, &holder.hub_schema));
            let app_records = app_provider.records(&app_api, spec(object, plan.app_fields(), &holder.app_key, &holder.app_schema));
            let state = began.state.take().ok_or_else(|| EngineError::Settings("the run has no state".into()))?;
            self.execute(&mut began.run, state, plan, &holder, &hub_records, app_records.as_ref(), &hub_stats, &app_stats).await
        }
        .await;
        self.end_run(began, result, &hub_stats, &app_stats).await.map(Some)
    }

    /// Takes the sync's lease and opens its run, when the sync is on, its connections are usable
    /// and no other instance holds it.
    async fn begin_run(&self, sync_id: &str, trigger: Trigger) -> Result<Option<Began>, EngineError> {
        let store = self.store();
        let Some(row) = store.sync(sync_id).await? else { return Ok(None) };
        if SyncStatus::parse(&row.status) != Some(SyncStatus::On) {
            return Ok(None);
        }
        let settings: SyncSettings = serde_json::from_str(&row.settings).map_err(|e| EngineError::Settings(e.to_string()))?;
        let now = now_ms();
        let interval = self.config.interval.as_millis() as i64;
        store.ensure_sync_state(sync_id, row.version, now).await?;
        let lease_ms = self.config.lease.as_millis() as i64;
        if !store.claim_sync(sync_id, &self.instance, now, now + lease_ms).await? {
            return Ok(None);
        }
        let connections = self.connections.list().await.map_err(|e| EngineError::Settings(e.to_string()))?;
        let app = connections.iter().find(|c| c.id == row.connection_id);
        let hub = connections.iter().find(|c| c.provider == HUBSPOT && c.status != ConnectionStatus::Uninstalled);
        let usable = |c: Option<&model::apps::ConnectionSummary>| c.is_some_and(|c| c.status == ConnectionStatus::Connected);
        if !usable(app) || !usable(hub) {
            // Waits for a reconnection; Health shows why.
            store.release_sync(sync_id, &self.instance, now + interval, now, false).await?;
            return Ok(None);
        }
        let (app, hub) = (app.expect("checked").clone(), hub.expect("checked").clone());
        let mut state = store.sync_state(sync_id).await?.ok_or_else(|| EngineError::Settings("the sync has no state".into()))?;
        if state.settings_version != row.version {
            store.restart_sync_state(sync_id, row.version).await?;
            state = store.sync_state(sync_id).await?.ok_or_else(|| EngineError::Settings("the sync has no state".into()))?;
        }
        store.close_abandoned_runs(sync_id, now).await?;
        let initial = state.phase.is_initial();
        let run_trigger = match trigger {
            _ if initial => RunTrigger::Initial,
            Trigger::Scheduled => RunTrigger::Scheduled,
            Trigger::Webhook => RunTrigger::Webhook,
            Trigger::Manual => RunTrigger::Manual,
        };
        let run = RunRow {
            id: new_id(),
            sync_id: sync_id.to_string(),
            trigger: run_trigger,
            started_at: now,
            outcome: RunOutcome::Running,
            ..RunRow::default()
        };
        store.insert_run(&run).await?;
        tracing::info!(sync_id, run_id = %run.id, trigger = %run_trigger, phase = %state.phase, "sync run started");
        Ok(Some(Began { row, settings, state: Some(state), run, app, hub, initial }))
    }

    /// The planner of a run's pages.
    fn planner<'a>(&self, settings: &'a SyncSettings, run: &RunRow, holder: &'a Holder, app_name: &str) -> Planner<'a> {
        let nouns: Vec<&'static str> = holder.links.iter().map(Link::noun).collect();
        Planner::new(
            &run.sync_id,
            &run.id,
            app_name,
            settings,
            &holder.hub_schema,
            &holder.app_schema,
            &holder.owners,
            &holder.link_infos,
            &nouns,
        )
    }

    /// The run itself, over both sides' records: every page read, decided, written and
    /// committed with its checkpoint.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        run: &mut RunRow,
        state: crate::store::SyncStateRow,
        plan: Planner<'_>,
        holder: &Holder,
        hub: &dyn HubRecords,
        app: &dyn Records,
        hub_stats: &Stats,
        app_stats: &Stats,
    ) -> Result<(), EngineError> {
        let mut pass = Pass {
            store: self.store(),
            instance: &self.instance,
            sync_id: run.sync_id.clone(),
            run,
            lease_ms: self.config.lease.as_millis() as i64,
            hub,
            app,
            plan,
            search_window: self.config.search_window,
            hub_stats,
            app_stats,
            links: &holder.links,
        };
        pass.execute(state).await
    }

    /// Closes the run with its outcome and counts, and gives the lease back with the next run's
    /// time.
    async fn end_run(
        &self,
        began: Began,
        result: Result<(), EngineError>,
        hub_stats: &Stats,
        app_stats: &Stats,
    ) -> Result<RunReport, EngineError> {
        let Began { mut run, initial, .. } = began;
        let store = self.store();
        let sync_id = run.sync_id.clone();
        let interval = self.config.interval.as_millis() as i64;
        let ended = now_ms();
        run.ended_at = Some(ended);
        run.api_calls = hub_stats.calls.load(Ordering::Relaxed) + app_stats.calls.load(Ordering::Relaxed);
        run.rate_limit_waits = hub_stats.waits.load(Ordering::Relaxed) + app_stats.waits.load(Ordering::Relaxed);
        run.rate_limit_wait_ms = hub_stats.wait_ms.load(Ordering::Relaxed) + app_stats.wait_ms.load(Ordering::Relaxed);
        let succeeded = match &result {
            Ok(()) => {
                run.outcome = if run.failed_to_app + run.failed_to_hub > 0 { RunOutcome::Partial } else { RunOutcome::Succeeded };
                true
            }
            Err(EngineError::Store(StoreError::LeaseLost)) => {
                run.outcome = RunOutcome::Interrupted;
                run.message = Some("Another Tandem instance took this sync over; it resumes from the last checkpoint.".into());
                false
            }
            Err(e) => {
                run.outcome = RunOutcome::Failed;
                run.message = Some(e.to_string());
                false
            }
        };
        store.update_run(&run).await?;
        // A completed initial sync is followed at once by the run that reads what changed while
        // it ran.
        let next_run = if initial && succeeded { ended } else { ended + interval };
        store.release_sync(&sync_id, &self.instance, next_run, ended, succeeded).await?;
        tracing::info!(
            sync_id, run_id = %run.id, outcome = %run.outcome, created_in_app = run.created_in_app, created_in_hub = run.created_in_hub,
            updated_in_app = run.updated_in_app, updated_in_hub = run.updated_in_hub, failed = run.failed_to_app + run.failed_to_hub,
            api_calls = run.api_calls, "sync run ended"
        );
        Ok(RunReport { run })
    }
}

/// What one side's records of a sync read: its object, the fields, the Tandem id's field.
fn spec<'a>(object: ObjectKind, fields: Vec<String>, tandem_key: &str, schema: &'a SideSchema) -> RecordSpec<'a> {
    RecordSpec { object, fields, tandem_key: tandem_key.to_string(), schema: &schema.fields }
}

/// A run under way: its sync, the sync's state (taken by the pass), its row and connections.
struct Began {
    row: crate::store::SyncRow,
    settings: SyncSettings,
    state: Option<crate::store::SyncStateRow>,
    run: RunRow,
    app: model::apps::ConnectionSummary,
    hub: model::apps::ConnectionSummary,
    initial: bool,
}

/// One run's work on one sync: the reads and writes around the planner's decisions.
struct Pass<'a> {
    store: &'a Store,
    instance: &'a str,
    sync_id: String,
    run: &'a mut RunRow,
    lease_ms: i64,
    hub: &'a dyn HubRecords,
    app: &'a dyn Records,
    /// What to do with each page (pure; see [`plan`]).
    plan: Planner<'a>,
    search_window: usize,
    hub_stats: &'a Stats,
    app_stats: &'a Stats,
    /// Associations kept with other syncs' records (their ids on each page go to the planner).
    links: &'a [Link],
}

impl<'a> Pass<'a> {
    fn on(&self, side: Side) -> &'a dyn Records {
        match side {
            Side::HubSpot => self.hub,
            Side::App => self.app,
        }
    }

    async fn execute(&mut self, mut state: crate::store::SyncStateRow) -> Result<(), EngineError> {
        self.recover_creations().await?;
        self.retry_failed().await?;
        if state.phase == Phase::InitialHubSpot || state.phase == Phase::InitialApp {
            if state.initial_started_at.is_none() {
                let at = now_ms();
                // What the progress bar counts towards: every deal on both sides (best effort).
                let (hub, app) = tokio::join!(self.hub.count(), self.app.count());
                let total = match (hub, app) {
                    (Ok(h), Ok(a)) => Some(h + a),
                    _ => None,
                };
                self.store.start_initial(&self.sync_id, at, total).await?;
                state.initial_started_at = Some(at);
            }
            let mut done = state.progress_done;
            // Contacts and companies read the app first: every app record is then known (with
            // its email or domain) when HubSpot's are matched against them.
            let order = if self.plan.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
            let phase_of = |side: Side| if side == Side::HubSpot { Phase::InitialHubSpot } else { Phase::InitialApp };
            if state.phase == Phase::InitialHubSpot && state.hub_cursor.is_none() && done == 0 && order[0] == Side::App {
                state.phase = Phase::InitialApp;
            }
            for (step, side) in order.into_iter().enumerate() {
                if state.phase != phase_of(side) {
                    continue;
                }
                if step == 1 && side == Side::App && state.app_cursor.is_none() {
                    // The app now also holds the deals just created from HubSpot: count it again.
                    if let Ok(app) = self.app.count().await {
                        self.store.set_progress_total(&self.sync_id, Some(done + app)).await?;
                    }
                }
                // The next page is read while this one is decided, written and committed.
                let reader = self.on(side);
                let mut prefetched: Option<Result<Page, ApiError>> = None;
                while state.phase == phase_of(side) {
                    let page = match prefetched.take() {
                        Some(page) => page?,
                        None => {
                            let cursor = if side == Side::HubSpot { state.hub_cursor.clone() } else { state.app_cursor.clone() };
                            list_at_least(reader, cursor.as_deref(), INITIAL_GROUP).await?
                        }
                    };
                    done += page.records.len() as i64;
                    let checkpoint = match (&page.next, step) {
                        (Some(c), _) => Checkpoint {
                            phase: phase_of(side),
                            hub_cursor: (side == Side::HubSpot).then(|| c.clone()),
                            app_cursor: (side == Side::App).then(|| c.clone()),
                            progress_done: done,
                        },
                        (None, 0) => Checkpoint { phase: phase_of(order[1]), hub_cursor: None, app_cursor: None, progress_done: done },
                        (None, _) => {
                            // From here on, read what changed since the initial sync began.
                            let since = (state.initial_started_at.unwrap_or(0) - CURSOR_MARGIN_MS).to_string();
                            Checkpoint {
                                phase: Phase::Incremental,
                                hub_cursor: Some(since.clone()),
                                app_cursor: Some(since),
                                progress_done: done,
                            }
                        }
                    };
                    match page.next.as_deref() {
                        Some(next) => {
                            let (processed, fetched) = tokio::join!(
                                self.process(side, page.records, false, Some(checkpoint.clone())),
                                list_at_least(reader, Some(next), INITIAL_GROUP)
                            );
                            processed?;
                            prefetched = Some(fetched);
                        }
                        None => self.process(side, page.records, false, Some(checkpoint.clone())).await?,
                    }
                    state.phase = checkpoint.phase;
                    state.hub_cursor = checkpoint.hub_cursor;
                    state.app_cursor = checkpoint.app_cursor;
                }
            }
            state.progress_done = done;
            // The initial run ends here, every record on both sides. What changed meanwhile
            // (from the cursor set at its start) is read by the next run, due at once: a run of
            // its own in the history, and the initial one is not held up reading back its own
            // creations.
            return Ok(());
        }
        // Incremental: each side from its cursor (a modification time in ms); the app first for
        // contacts and companies (see the initial sync).
        let sides = if self.plan.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
        for side in sides {
            let since = state.cursor(side).and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            // The margin applies to the stored cursor only; a new search window starts exactly
            // at the newest time read (with the margin, a burst of changes inside it would be
            // read again and again).
            let mut query_since = (since - CURSOR_MARGIN_MS).max(0);
            let mut newest = since;
            let mut page_cursor: Option<String> = None;
            let mut read_in_window = 0usize;
            // As in the initial sync, the next page is read while this one is processed.
            let reader = self.on(side);
            let mut prefetched: Option<Result<Page, ApiError>> = None;
            loop {
                let page = match prefetched.take() {
                    Some(page) => page?,
                    None => reader.changed_since(query_since, page_cursor.as_deref()).await?,
                };
                read_in_window += page.records.len();
                newest = page.records.iter().map(|d| d.updated_at).max().unwrap_or(newest).max(newest);
                let checkpoint = Checkpoint {
                    phase: Phase::Incremental,
                    hub_cursor: if side == Side::HubSpot { Some(newest.to_string()) } else { state.hub_cursor.clone() },
                    app_cursor: if side == Side::App { Some(newest.to_string()) } else { state.app_cursor.clone() },
                    progress_done: state.progress_done,
                };
                // The next read: the next page of this search, or (HubSpot's search stops at
                // 10,000 results) a new search from the newest time read. Should a whole window
                // share one millisecond, it steps past it (warned).
                let next_read: Option<(i64, Option<String>)> = match page.next.clone() {
                    None => None,
                    Some(_) if side == Side::HubSpot && read_in_window >= self.search_window => {
                        if newest <= query_since {
                            tracing::warn!(sync_id = %self.sync_id, at = newest, "a whole search window changed in one millisecond; moving past it");
                            newest += 1;
                        }
                        Some((newest, None))
                    }
                    Some(next) => Some((query_since, Some(next))),
                };
                match &next_read {
                    Some((since, cursor)) => {
                        let (processed, fetched) = tokio::join!(
                            self.process(side, page.records, false, Some(checkpoint.clone())),
                            reader.changed_since(*since, cursor.as_deref())
                        );
                        processed?;
                        prefetched = Some(fetched);
                    }
                    None => self.process(side, page.records, false, Some(checkpoint.clone())).await?,
                }
                state.hub_cursor = checkpoint.hub_cursor;
                state.app_cursor = checkpoint.app_cursor;
                match next_read {
                    None => break,
                    Some((since, cursor)) => {
                        if cursor.is_none() {
                            read_in_window = 0;
                        }
                        query_since = since;
                        page_cursor = cursor;
                    }
                }
            }
        }
        Ok(())
    }

    /// Creations whose outcome is unknown (a crash or a dropped connection after the request
    /// left): look for their Tandem ids on the target side and link what exists; the rest are
    /// created again by processing their source deal anew.
    async fn recover_creations(&mut self) -> Result<(), EngineError> {
        loop {
            let pending = self.store.records_in_state(&self.sync_id, RecordState::Creating, 200).await?;
            if pending.is_empty() {
                return Ok(());
            }
            for target in [Side::HubSpot, Side::App] {
                let rows: Vec<&RecordRow> = pending.iter().filter(|r| r.create_on.as_deref() == Some(target.as_str())).collect();
                if rows.is_empty() {
                    continue;
                }
                let since = rows.iter().map(|r| r.updated_at).min().unwrap_or(0) - 60_000;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let found = self.on(target).find_tandem_ids(&ids, since).await?;
                let found: HashMap<String, RemoteRecord> = found.into_iter().filter_map(|d| Some((d.tandem_id.clone()?, d))).collect();
                let mut linked = Vec::new();
                let mut redo: Vec<RecordRow> = Vec::new();
                for row in rows {
                    let mut row = row.clone();
                    match found.get(&row.id) {
                        Some(deal) => {
                            tracing::info!(record = %row.id, target = target.as_str(), "recovered a deal created before an interruption");
                            row.set_id(target, deal.id.clone());
                            // Compared on the next read against what the create sent.
                            (row.state, row.create_on, row.hub_seen_at, row.app_seen_at) = (RecordState::Linked, None, None, None);
                            row.updated_at = now_ms();
                            linked.push(row);
                        }
                        None => {
                            row.state = RecordState::Failed;
                            row.reason = Some(Category::Network.as_str().into());
                            row.message = Some("The create was interrupted before its outcome was known; it is retried.".into());
                            row.create_on = None;
                            redo.push(row);
                        }
                    }
                }
                linked.extend(redo);
                self.store.save_records(&linked).await?;
            }
        }
    }

    /// Records that failed for a passing reason (rate limit, provider error, network) are read
    /// again from their source side and processed as if they had changed.
    async fn retry_failed(&mut self) -> Result<(), EngineError> {
        let transient: Vec<&str> = Category::ALL.iter().filter(|c| c.transient()).map(|c| c.as_str()).collect();
        let retry = self.store.records_to_retry(&self.sync_id, &transient, RETRY_PER_RUN).await?;
        if retry.is_empty() {
            return Ok(());
        }
        // An admin's request is acted on once, whatever the outcome (a failure shows again).
        let ids: Vec<String> = retry.iter().map(|r| r.id.clone()).collect();
        self.store.clear_retry_requests(&self.sync_id, &ids).await?;
        for side in [Side::HubSpot, Side::App] {
            let ids: Vec<String> =
                retry.iter().filter(|r| Side::parse(&r.origin) == Some(side)).filter_map(|r| r.id_on(side).map(str::to_string)).collect();
            if ids.is_empty() {
                continue;
            }
            let deals = self.on(side).read(&ids).await?;
            self.process(side, deals, true, None).await?;
        }
        Ok(())
    }

    /// Decides, writes and commits one page of deals read from `side`. `force` compares even
    /// records whose modification time was already seen (retries). The planner decides in three
    /// steps; between them this reads what the next step needs.
    async fn process(
        &mut self,
        side: Side,
        mut deals: Vec<RemoteRecord>,
        force: bool,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), EngineError> {
        let now = now_ms();
        let key = match side {
            Side::HubSpot => RecordKey::HubSpot,
            Side::App => RecordKey::App,
        };
        let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
        let mut by_id: HashMap<String, RecordRow> = self
            .store
            .records_by(&self.sync_id, key, &ids)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.id_on(side)?.to_string(), r)))
            .collect();
        // Records Tandem created whose link was not yet recorded carry their Tandem id.
        let orphans: Vec<String> = deals.iter().filter(|d| !by_id.contains_key(&d.id)).filter_map(|d| d.tandem_id.clone()).collect();
        let by_tandem: HashMap<String, RecordRow> =
            self.store.records_by(&self.sync_id, RecordKey::Tandem, &orphans).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        for pairs in &mut self.plan.link_pairs {
            pairs.clear();
        }
        if !self.links.is_empty() {
            let agreed: HashMap<&str, &Agreements> = by_id.iter().map(|(id, r)| (id.as_str(), &r.agreed)).collect();
            self.resolve_links(side, &mut deals, &agreed).await?;
        }

        // Contacts and companies with no counterpart yet (never seen, or left out before, such
        // as a duplicate): the record they match on the other side.
        let unlinked = self.plan.needs_match(side, &deals, &by_id, &by_tandem);
        let mut matches = if unlinked.is_empty() { HashMap::new() } else { self.find_matches(side, &unlinked, now).await? };

        let mut work = PagePlan::new(side);
        let compare = self.plan.classify(side, deals, &mut by_id, &by_tandem, &mut matches, force, now, &mut work);

        // Linked records: read the other side, decide field by field.
        if !compare.is_empty() {
            let other = side.other();
            let mut read = self.on(other).read(&self.plan.counterpart_ids(side, &compare)).await?;
            if !self.links.is_empty() {
                let agreed: HashMap<&str, &Agreements> = compare.iter().filter_map(|(r, _)| Some((r.id_on(other)?, &r.agreed))).collect();
                self.resolve_links(other, &mut read, &agreed).await?;
            }
            let counterparts: HashMap<String, RemoteRecord> = read.into_iter().map(|d| (d.id.clone(), d)).collect();
            let pairs = self.plan.pair(side, compare, &counterparts, now, &mut work);
            // Where a field changed on both sides, "later" is decided by when that field changed
            // in HubSpot (its property history), not by when the record last changed.
            // Pipedrive's side likewise, by the deal's changelog.
            let contested = self.plan.contested(&pairs);
            let (mut times, mut app_times) = if contested.is_empty() {
                (HashMap::new(), HashMap::new())
            } else {
                let (fields, app_fields) = (self.plan.hub_fields(), self.plan.app_fields());
                let hub_ids: Vec<String> = contested.iter().map(|(h, _)| h.clone()).collect();
                let app_ids: Vec<String> = contested.iter().map(|(_, a)| a.clone()).collect();
                let (hub_times, app_times) =
                    tokio::join!(self.hub.field_times(&hub_ids, &fields), self.app.field_times(&app_ids, &app_fields));
                (hub_times?, app_times?)
            };
            let times = pairs
                .iter()
                .map(|(_, hub, app)| FieldTimes {
                    hub: times.remove(&hub.id).unwrap_or_default(),
                    app: app_times.remove(&app.id).unwrap_or_default(),
                })
                .collect();
            self.plan.compare_pairs(pairs, times, now, &mut work);
        }

        self.write(&mut work, now).await?;
        self.run.skipped += work.skipped;
        self.run.skipped_from_hub += work.skipped_from_hub;
        self.run.conflicts += work.conflicts;
        self.run.api_calls = self.hub_stats.calls.load(Ordering::Relaxed) + self.app_stats.calls.load(Ordering::Relaxed);
        let run = self.run.clone();
        let lease_until = now_ms() + self.lease_ms;
        let page = PageCommit {
            sync_id: &self.sync_id,
            lease_owner: self.instance,
            lease_until,
            records: std::mem::take(&mut work.records),
            events: std::mem::take(&mut work.events),
            run: Some(&run),
            checkpoint,
        };
        self.store.commit_page(&page, now_ms()).await?;
        Ok(())
    }

    /// For contacts and companies seen for the first time on `side`: the record with the same
    /// email or domain on the other side, to link instead of creating a second one. The other
    /// side's records known to Tandem are found in the identity map (the app is always read
    /// before HubSpot, so every app record is known there); HubSpot's are also searched. A
    /// record whose key is already linked to another one is a duplicate, left out.
    async fn find_matches(
        &self,
        side: Side,
        unlinked: &[(&RemoteRecord, Option<&RecordRow>)],
        now: i64,
    ) -> Result<HashMap<String, Found>, EngineError> {
        let target = side.other();
        let mut out = HashMap::new();
        let mut keys: Vec<String> = unlinked.iter().filter_map(|(r, _)| r.match_key.clone()).collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(out);
        }
        let duplicate = |key: &str| self.plan.duplicate_message(side, key);
        let linked = |key: &str| self.plan.linked_message(target, key);
        let mut by_key: HashMap<String, Vec<RecordRow>> = HashMap::new();
        for row in self.store.records_by(&self.sync_id, RecordKey::Match, &keys).await? {
            if let Some(k) = row.match_key.clone() {
                by_key.entry(k).or_default().push(row);
            }
        }
        let mut claimed: HashSet<String> = HashSet::new();
        let mut unresolved: Vec<(&RemoteRecord, Option<&RecordRow>)> = Vec::new();
        for &(record, own) in unlinked {
            let Some(key) = record.match_key.as_deref() else { continue };
            let own_id = own.map(|r| r.id.as_str());
            let rows: Vec<&RecordRow> = by_key.get(key).into_iter().flatten().filter(|r| Some(r.id.as_str()) != own_id).collect();
            let lone = rows.iter().find(|r| r.id_on(side).is_none() && r.id_on(target).is_some() && r.state != RecordState::Creating);
            if claimed.contains(key) || rows.iter().any(|r| r.id_on(side).is_some() && r.id_on(target).is_some()) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            } else if let (Some(row), None) = (lone, own) {
                claimed.insert(key.to_string());
                out.insert(record.id.clone(), Found::Link(Box::new(self.plan.link((*row).clone(), side, record, now)), linked(key)));
            } else if rows.iter().any(|r| r.state == RecordState::Creating) {
                // Being created from another record with this key right now.
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            } else {
                unresolved.push((record, own));
            }
        }
        if target == Side::HubSpot && !unresolved.is_empty() {
            self.match_in_hubspot(side, &unresolved, &mut claimed, &mut out, now).await?;
        }
        // Several new records with one key are created once: the first; the others are duplicates.
        for (record, _) in unresolved {
            let Some(key) = record.match_key.as_deref() else { continue };
            if out.contains_key(&record.id) {
                continue;
            }
            if !claimed.insert(key.to_string()) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            }
        }
        Ok(out)
    }

    /// The HubSpot contacts or companies holding the keys of app records new to Tandem.
    async fn match_in_hubspot(
        &self,
        side: Side,
        unresolved: &[(&RemoteRecord, Option<&RecordRow>)],
        claimed: &mut HashSet<String>,
        out: &mut HashMap<String, Found>,
        now: i64,
    ) -> Result<(), EngineError> {
        let target = side.other();
        let duplicate = |key: &str| self.plan.duplicate_message(side, key);
        let linked = |key: &str| self.plan.linked_message(target, key);
        let keys: Vec<String> = unresolved.iter().filter_map(|(r, _)| r.match_key.clone()).collect();
        let mut existing: HashMap<String, RemoteRecord> = HashMap::new();
        for h in self.hub.find_by_match_keys(&keys).await? {
            let Some(key) = h.match_key.clone() else { continue };
            // Several with one key (companies may share a domain): the oldest.
            let older = |a: &str, b: &str| (a.len(), a) < (b.len(), b);
            if existing.get(&key).is_none_or(|e| older(&h.id, &e.id)) {
                existing.insert(key, h);
            }
        }
        let hub_ids: Vec<String> = existing.values().map(|h| h.id.clone()).collect();
        let known: HashMap<String, RecordRow> = self
            .store
            .records_by(&self.sync_id, RecordKey::HubSpot, &hub_ids)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.hubspot_id.clone()?, r)))
            .collect();
        for &(record, own) in unresolved {
            let Some(key) = record.match_key.as_deref() else { continue };
            let Some(h) = existing.get(key) else { continue };
            if claimed.contains(key) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
                continue;
            }
            let row = match (known.get(&h.id), own) {
                (Some(row), _) if row.app_id.is_some() || row.state == RecordState::Creating => {
                    out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
                    continue;
                }
                // Both left out before, each in a row of its own: not merged; created as usual.
                (Some(_), Some(_)) => continue,
                (Some(row), None) => row.clone(),
                // A record seen before (a duplicate, say) takes the HubSpot record into its row.
                (None, Some(own)) => {
                    let mut row = own.clone();
                    row.hubspot_id = Some(h.id.clone());
                    row
                }
                (None, None) => self.plan.new_row(target, h, now),
            };
            claimed.insert(key.to_string());
            out.insert(record.id.clone(), Found::Link(Box::new(self.plan.link(row, side, record, now)), linked(key)));
        }
        Ok(())
    }

    /// Fills in the associations of records read from `side`, and learns the linked records'
    /// ids on both sides from the other syncs' identity maps. Pipedrive holds one person and one
    /// organization per deal; HubSpot may associate several: the one agreed before while it is
    /// still associated, else the first that the other sync links, else the first.
    async fn resolve_links(
        &mut self,
        side: Side,
        records: &mut [RemoteRecord],
        agreed: &HashMap<&str, &Agreements>,
    ) -> Result<(), EngineError> {
        if self.links.is_empty() || records.is_empty() {
            return Ok(());
        }
        let links = self.links;
        for (i, link) in links.iter().enumerate() {
            let mkey = self.plan.link_mapping(Side::HubSpot, link.hub_key).map(|(m, _)| m.key.clone()).unwrap_or_default();
            match side {
                Side::HubSpot => {
                    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
                    let associated = self.hub.associations(link.hub_to, &ids).await?;
                    let mut candidates: Vec<String> = associated.values().flatten().cloned().collect();
                    candidates.sort();
                    candidates.dedup();
                    for row in self.store.records_by(&link.sync_id, RecordKey::HubSpot, &candidates).await? {
                        if let (Some(h), Some(a)) = (&row.hubspot_id, &row.app_id) {
                            self.plan.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                    for record in records.iter_mut() {
                        let list = associated.get(&record.id).cloned().unwrap_or_default();
                        let before = agreed.get(record.id.as_str()).and_then(|a| a.get(&mkey)).and_then(|v| v.hub.clone());
                        let pairs = &self.plan.link_pairs[i];
                        let value = before
                            .filter(|b| list.contains(b))
                            .or_else(|| list.iter().find(|h| pairs.knows_hub(h)).cloned())
                            .or_else(|| list.first().cloned());
                        record.values.insert(link.hub_key.to_string(), value);
                    }
                }
                Side::App => {
                    let mut ids: Vec<String> = records.iter().filter_map(|r| r.values.get(link.app_key).cloned().flatten()).collect();
                    ids.sort();
                    ids.dedup();
                    for row in self.store.records_by(&link.sync_id, RecordKey::App, &ids).await? {
                        if let (Some(h), Some(a)) = (&row.hubspot_id, &row.app_id) {
                            self.plan.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends the page's creates and updates; records each outcome on its row.
    async fn write(&mut self, work: &mut PagePlan, now: i64) -> Result<(), EngineError> {
        // Creates: the rows (with their Tandem ids) are stored before anything leaves.
        let creates = std::mem::take(&mut work.creates);
        if !creates.is_empty() {
            let pending: Vec<RecordRow> = creates.iter().map(|(_, row, _, _)| row.clone()).collect();
            self.store.save_records(&pending).await?;
        }
        for target in [Side::HubSpot, Side::App] {
            let batch: Vec<&Create> = creates.iter().filter(|(t, ..)| *t == target).collect();
            if batch.is_empty() {
                continue;
            }
            let inputs: Vec<(String, Values)> =
                batch.iter().map(|(_, row, _, values)| (row.id.clone(), links::properties(values))).collect();
            let mut results = self.on(target).create(inputs).await;
            // Associations of the new HubSpot records: (record row, link key, new id, linked id).
            let mut associate: Vec<(String, String, String, String)> = Vec::new();
            let mut taken: Vec<(RecordRow, &RemoteRecord, String, ApiError)> = Vec::new();
            for (_, row, source_deal, values) in batch {
                let mut row = row.clone();
                if let Some(Err(e)) = results.get(&row.id) {
                    if let Some(existing) = existing_contact(e).filter(|_| target == Side::HubSpot) {
                        let e = e.clone();
                        taken.push((row, source_deal, existing, e));
                        continue;
                    }
                }
                match results.remove(&row.id) {
                    Some(Ok(mut created)) => {
                        for (key, value) in values.iter().filter(|(k, _)| links::is_link_key(k)) {
                            created.values.insert(key.clone(), value.clone());
                            if let Some(value) = value {
                                associate.push((row.id.clone(), key.clone(), created.id.clone(), value.clone()));
                            }
                        }
                        let source = Side::parse(&row.origin).unwrap_or(target.other());
                        let agreed = self.plan.agreed_after_create(source, source_deal, &created);
                        match target {
                            Side::HubSpot => {
                                (row.hubspot_id, row.hub_seen_at) = (Some(created.id.clone()), Some(created.updated_at));
                                self.run.created_in_hub += 1;
                            }
                            Side::App => {
                                (row.app_id, row.app_seen_at) = (Some(created.id.clone()), Some(created.updated_at));
                                self.run.created_in_app += 1;
                            }
                        }
                        row.agreed = Agreements(agreed);
                        (row.state, row.create_on, row.updated_at) = (RecordState::Linked, None, now);
                        let changes: Vec<serde_json::Value> = values
                            .iter()
                            .map(|(k, v)| json!({"field": self.plan.label(target, k), "old": null, "new": self.plan.shown(target, k, v)}))
                            .collect();
                        work.events.push(self.plan.event(&row.id, now, EventKind::Created, target, json!(changes), None, None, None));
                    }
                    Some(Err(e)) if e.category.transient() => {
                        // A dropped connection or a 5xx: the deal may or may not exist. It stays
                        // `creating`, and recovery looks for its Tandem id before creating again.
                        tracing::warn!(record = %row.id, error = %e, "create outcome unknown; recovery will look for it");
                        self.count_failure(target);
                        continue;
                    }
                    Some(Err(e)) => {
                        if e.reconnect {
                            return Err(e.into());
                        }
                        self.fail(&mut row, target, &e, now, work);
                    }
                    None => continue,
                }
                work.records.push(row);
            }
            self.link_taken(taken, now, work).await?;
            self.associate(associate, Vec::new(), now, work).await;
        }
        // Updates, batched per side.
        let updates = std::mem::take(&mut work.updates);
        for target in [Side::HubSpot, Side::App] {
            let batch: Vec<&Update> = updates.iter().filter(|(t, ..)| *t == target).collect();
            if batch.is_empty() {
                continue;
            }
            // HubSpot's associations are not properties: added (and the one agreed before
            // removed) through the associations API; a record whose only change is one is not
            // updated otherwise.
            let mut batch = batch;
            if target == Side::HubSpot && !self.links.is_empty() {
                let (mut add, mut remove) = (Vec::new(), Vec::new());
                let mut only_links = Vec::new();
                for (pos, (_, index, id, values, before)) in batch.iter().enumerate() {
                    for (key, value) in values.iter().filter(|(k, _)| links::is_link_key(k)) {
                        let row_id = work.records[*index].id.clone();
                        let old = self
                            .plan
                            .mapped
                            .iter()
                            .find(|m| m.hub.key == *key)
                            .and_then(|m| before.get(&m.key))
                            .and_then(|a| a.hub.clone());
                        if let Some(new) = value {
                            add.push((row_id.clone(), key.clone(), id.clone(), new.clone()));
                        }
                        if let Some(old) = old.filter(|o| Some(o) != value.as_ref()) {
                            remove.push((row_id, key.clone(), id.clone(), old));
                        }
                    }
                    if values.keys().all(|k| links::is_link_key(k)) {
                        only_links.push(pos);
                    }
                }
                self.associate(add, remove, now, work).await;
                for pos in only_links.into_iter().rev() {
                    batch.remove(pos);
                    self.run.updated_in_hub += 1;
                }
                if batch.is_empty() {
                    continue;
                }
            }
            let inputs = batch.iter().map(|(_, _, id, values, _)| (id.clone(), links::properties(values))).collect();
            let mut results = self.on(target).update(inputs).await;
            for (_, index, id, _, before) in batch {
                match results.remove(id) {
                    Some(Ok(updated)) => {
                        let readback = self.plan.readback(target, &updated, &work.records[*index].agreed);
                        let row = &mut work.records[*index];
                        row.agreed = readback;
                        match target {
                            Side::HubSpot => {
                                row.hub_seen_at = Some(updated.updated_at);
                                self.run.updated_in_hub += 1;
                            }
                            Side::App => {
                                row.app_seen_at = Some(updated.updated_at);
                                self.run.updated_in_app += 1;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        if e.reconnect {
                            return Err(e.into());
                        }
                        let mut row = work.records[*index].clone();
                        // Back to the agreed values from before, so the change is tried again.
                        row.agreed = before.clone();
                        self.fail(&mut row, target, &e, now, work);
                        work.records[*index] = row;
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Contacts HubSpot refused to create because another contact has their email (one the
    /// search did not show yet): linked to that contact and merged with it on this page, as a
    /// match found by the search is. A contact Tandem already links to another record makes
    /// this one a duplicate.
    async fn link_taken(
        &mut self,
        taken: Vec<(RecordRow, &RemoteRecord, String, ApiError)>,
        now: i64,
        work: &mut PagePlan,
    ) -> Result<(), EngineError> {
        if taken.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = taken.iter().map(|(_, _, id, _)| id.clone()).collect();
        let known: HashSet<String> =
            self.store.records_by(&self.sync_id, RecordKey::HubSpot, &ids).await?.into_iter().filter_map(|r| r.hubspot_id).collect();
        let mut read = self.hub.read(&ids).await?;
        self.resolve_links(Side::HubSpot, &mut read, &HashMap::new()).await?;
        let existing: HashMap<String, RemoteRecord> = read.into_iter().map(|r| (r.id.clone(), r)).collect();
        for (row, source, id, e) in taken {
            let key = row.match_key.clone().unwrap_or_default();
            match existing.get(&id) {
                _ if known.contains(&id) => {
                    let message = self.plan.duplicate_message(Side::App, &key);
                    self.plan.exclude(row, Side::App, "duplicate", message, now, work);
                }
                Some(hub) => {
                    tracing::info!(record = %row.id, hubspot_id = %id, "the email is taken by a HubSpot contact the search did not show yet; linked to it");
                    let row = self.plan.link(row, Side::HubSpot, hub, now);
                    work.events.push(self.plan.event(
                        &row.id,
                        now,
                        EventKind::Matched,
                        Side::HubSpot,
                        json!([]),
                        None,
                        None,
                        Some(&self.plan.linked_message(Side::HubSpot, &key)),
                    ));
                    self.plan.compare(row, hub.clone(), source.clone(), &FieldTimes::default(), now, work);
                }
                None => {
                    let mut row = row;
                    self.fail(&mut row, Side::HubSpot, &e, now, work);
                    work.records.push(row);
                }
            }
        }
        Ok(())
    }

    /// Adds and removes HubSpot associations: (record row, link key, HubSpot record, linked
    /// record). A failure leaves the record's fields synced and says so on its timeline.
    async fn associate(
        &mut self,
        add: Vec<(String, String, String, String)>,
        remove: Vec<(String, String, String, String)>,
        now: i64,
        work: &mut PagePlan,
    ) {
        let links = self.links;
        for link in links {
            let pick = |list: &[(String, String, String, String)]| -> Vec<(String, String)> {
                list.iter().filter(|(_, k, ..)| k == link.hub_key).map(|(_, _, a, b)| (a.clone(), b.clone())).collect()
            };
            let (adds, removes) = (pick(&add), pick(&remove));
            if adds.is_empty() && removes.is_empty() {
                continue;
            }
            if let Err(e) = self.hub.associate(link.hub_to, &adds, &removes).await {
                tracing::warn!(error = %e, "HubSpot associations could not be written");
                let message = format!("The association with the {} could not be written in HubSpot: {}", link.noun(), e.message);
                for (row_id, ..) in add.iter().chain(&remove).filter(|(_, k, ..)| k == link.hub_key) {
                    work.events.push(self.plan.event(
                        row_id,
                        now,
                        EventKind::NotSynced,
                        Side::HubSpot,
                        json!([]),
                        None,
                        Some(e.category.as_str()),
                        Some(&message),
                    ));
                }
            }
        }
    }

    fn count_failure(&mut self, target: Side) {
        match target {
            Side::HubSpot => self.run.failed_to_hub += 1,
            Side::App => self.run.failed_to_app += 1,
        }
    }

    fn fail(&mut self, row: &mut RecordRow, target: Side, e: &ApiError, now: i64, work: &mut PagePlan) {
        self.count_failure(target);
        row.state = RecordState::Failed;
        row.create_on = None;
        row.reason = Some(e.category.as_str().into());
        row.message = Some(e.message.clone());
        row.updated_at = now;
        work.events.push(self.plan.event(
            &row.id,
            now,
            EventKind::Failed,
            target,
            json!([]),
            None,
            Some(e.category.as_str()),
            Some(&e.message),
        ));
    }
}

/// What a run reads once and its mappings borrow: both schemas, the owner pairs and the fields
/// carrying Tandem ids (created when missing).
struct Holder {
    hub_schema: SideSchema,
    app_schema: SideSchema,
    owners: OwnerPairs,
    hub_key: String,
    app_key: String,
    links: Vec<Link>,
    link_infos: Vec<(model::sync::FieldMapping, FieldInfo, FieldInfo)>,
}

impl Holder {
    async fn load(hub_api: &Api, app_api: &Api, object: ObjectKind, links: Vec<Link>) -> Result<Holder, ApiError> {
        let (hub_key, app_key) =
            tokio::try_join!(hub_api.provider.ensure_tandem_field(hub_api, object), app_api.provider.ensure_tandem_field(app_api, object))?;
        let (hub_schema, app_schema) = tokio::try_join!(hub_api.schema(object), app_api.schema(object))?;
        let (owners, users) = tokio::try_join!(hub_api.provider.users_by_email(hub_api), app_api.provider.users_by_email(app_api))?;
        // Owners match by email: (HubSpot owner id, the app's user id).
        let mut pairs: Vec<(String, String)> =
            owners.iter().filter_map(|(email, h)| users.get(email).map(|a| (h.clone(), a.clone()))).collect();
        pairs.sort();
        let owners = OwnerPairs(pairs);
        let link_infos = links.iter().map(Link::infos).collect();
        Ok(Holder { hub_schema, app_schema, owners, hub_key, app_key, links, link_infos })
    }
}

//! The sync engine: runs every sync that is on, exactly as its saved settings say.
//!
//! A run holds the sync's lease (one runner per sync across instances), reads each side page by
//! page (every deal in the initial phase; then what changed since the cursor), decides each
//! record with [`model::merge::decide`], writes to the other side in batches, and commits the
//! page's identity-map rows, record events, run counters and cursor in one transaction. A record
//! about to be created gets its Tandem id stored first and written into the new deal, so a crash
//! between the remote create and the commit is found again by that id, never created twice.

pub mod api;
pub mod links;
pub mod remote;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use model::apps::{ConnectionStatus, ObjectKind, HUBSPOT};
use model::merge::{conflict_note, decide, Agreed, Decision, FieldState, Flow, Reason, Side};
use model::sync::{FieldInfo, FieldKind, Filter, FilterOp, SideSchema, SyncSettings, SyncStatus};
use model::translate::{canonical, FieldTranslate, OwnerPairs, StageTranslate};

use crate::clock::now_ms;
use crate::connections::Connections;
use crate::connectors::Provider;
use crate::secret::new_id;
use crate::store::{Checkpoint, EventRow, PageCommit, RecordKey, RecordRow, RunRow, Store, StoreError};
use api::{Api, ApiError, Category, Stats};
use links::{IdPairs, Link};
use remote::{Records, RemoteRecord, STAGE};

/// Phases of a sync's life.
pub const INITIAL_HUBSPOT: &str = "initial_hubspot";
pub const INITIAL_APP: &str = "initial_app";
pub const INCREMENTAL: &str = "incremental";

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
}

impl Engine {
    pub fn new(connections: Connections, config: EngineConfig) -> Engine {
        Engine { connections, instance: new_id(), config }
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
    async fn links_of(&self, row: &crate::store::SyncRow, object: ObjectKind) -> Result<Vec<Link>, EngineError> {
        let syncs = self.store().syncs().await?;
        Ok(links::possible(object)
            .iter()
            .filter_map(|&(hub_key, app_key, hub_to, other)| {
                let linked = syncs.iter().find(|s| s.connection_id == row.connection_id && s.id != row.id && s.object == other.key())?;
                Some(Link { hub_key, app_key, hub_to, object: other, sync_id: linked.id.clone() })
            })
            .collect())
    }

    /// Registers the app's webhook once per process and connection, when the provider can reach
    /// this server (a sandbox on loopback, or a public URL that is not loopback). A failure only
    /// means changes wait for the next interval.
    async fn register_webhook(&self, app: &model::apps::ConnectionSummary, api: &Api) {
        use std::sync::{Mutex, OnceLock};
        static DONE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
        let done = DONE.get_or_init(Default::default);
        if done.lock().unwrap_or_else(|p| p.into_inner()).contains(&app.id) || api.provider != Provider::Pipedrive {
            return;
        }
        let url = self.connections.webhook_url(Provider::Pipedrive, &app.id);
        let loopback = |u: &str| {
            url::Url::parse(u).ok().and_then(|u| u.host_str().map(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"))).unwrap_or(true)
        };
        let reachable = !loopback(&url) || self.connections.provider(&app.provider).is_some_and(|p| p.is_sandbox());
        if !reachable {
            done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone());
            tracing::info!(connection_id = %app.id, "no webhook registered: TANDEM_PUBLIC_URL is not reachable from Pipedrive; changes are read every interval");
            return;
        }
        match crate::webhooks::ensure_pipedrive_webhook(&self.connections, api, &app.id).await {
            Ok(()) => {
                done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone());
            }
            Err(e) => tracing::warn!(connection_id = %app.id, error = %e, "the Pipedrive webhook could not be registered; will retry"),
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
        let store = self.store().clone();
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
        let initial = state.phase != INCREMENTAL;
        let trigger_name = match trigger {
            _ if initial => "initial",
            Trigger::Scheduled => "scheduled",
            Trigger::Webhook => "webhook",
            Trigger::Manual => "manual",
        };
        let mut run = RunRow {
            id: new_id(),
            sync_id: sync_id.to_string(),
            trigger: trigger_name.to_string(),
            started_at: now,
            outcome: "running".into(),
            ..RunRow::default()
        };
        store.insert_run(&run).await?;
        tracing::info!(sync_id, run_id = %run.id, trigger = trigger_name, phase = %state.phase, "sync run started");

        let (hub_stats, app_stats) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let result = async {
            let app_provider =
                Provider::parse(&app.provider).ok_or_else(|| EngineError::Settings(format!("unknown app {}", app.provider)))?;
            let hub_api = Api::open(&self.connections, &hub.id, Provider::HubSpot, hub_stats.clone()).await?;
            let app_api = Api::open(&self.connections, &app.id, app_provider, app_stats.clone()).await?;
            let links = self.links_of(&row, settings.object).await?;
            let holder = Holder::load(&hub_api, &app_api, settings.object, links).await?;
            self.register_webhook(&app, &app_api).await;
            let mut pass = Pass::new(self, &store, &settings, &holder, &mut run, lease_ms, &hub_stats, &app_stats);
            pass.execute(state).await
        }
        .await;

        let ended = now_ms();
        run.ended_at = Some(ended);
        run.api_calls = hub_stats.calls.load(Ordering::Relaxed) + app_stats.calls.load(Ordering::Relaxed);
        run.rate_limit_waits = hub_stats.waits.load(Ordering::Relaxed) + app_stats.waits.load(Ordering::Relaxed);
        run.rate_limit_wait_ms = hub_stats.wait_ms.load(Ordering::Relaxed) + app_stats.wait_ms.load(Ordering::Relaxed);
        let succeeded = match &result {
            Ok(()) => {
                run.outcome = if run.failed_to_app + run.failed_to_hub > 0 { "partial" } else { "succeeded" }.into();
                true
            }
            Err(EngineError::Store(StoreError::LeaseLost)) => {
                run.outcome = "interrupted".into();
                run.message = Some("Another Tandem instance took this sync over; it resumes from the last checkpoint.".into());
                false
            }
            Err(e) => {
                run.outcome = "failed".into();
                run.message = Some(e.to_string());
                false
            }
        };
        store.update_run(&run).await?;
        // A completed initial sync is followed at once by the run that reads what changed while
        // it ran.
        let next_run = if initial && succeeded { ended } else { ended + interval };
        store.release_sync(sync_id, &self.instance, next_run, ended, succeeded).await?;
        tracing::info!(
            sync_id, run_id = %run.id, outcome = %run.outcome, created_in_app = run.created_in_app, created_in_hub = run.created_in_hub,
            updated_in_app = run.updated_in_app, updated_in_hub = run.updated_in_hub, failed = run.failed_to_app + run.failed_to_hub,
            api_calls = run.api_calls, "sync run ended"
        );
        Ok(Some(RunReport { run }))
    }
}

/// A mapped field pair usable in this run (both fields still exist).
struct Mapped<'a> {
    key: String,
    hub: &'a FieldInfo,
    app: &'a FieldInfo,
    translate: FieldTranslate<'a>,
    flow: Flow,
    /// An association (an index into the pass's links), translated through an identity map.
    link: Option<usize>,
}

/// One run's work on one sync.
struct Pass<'a> {
    store: &'a Store,
    instance: &'a str,
    settings: &'a SyncSettings,
    sync_id: String,
    run: &'a mut RunRow,
    lease_ms: i64,
    hub: Records<'a>,
    app: Records<'a>,
    hub_schema: &'a SideSchema,
    app_schema: &'a SideSchema,
    mapped: Vec<Mapped<'a>>,
    stages: StageTranslate<'a>,
    stage_flow: Flow,
    rule: model::sync::ConflictRule,
    search_window: usize,
    /// The side the page being processed was read from (skips are counted per side).
    reading: Side,
    hub_stats: &'a Stats,
    app_stats: &'a Stats,
    /// Associations kept with other syncs' records, and the ids of linked records on this page.
    links: &'a [Link],
    link_pairs: Vec<IdPairs>,
}

type Values = BTreeMap<String, Option<String>>;
type Create = (Side, RecordRow, RemoteRecord, Values);
/// (target side, row index in `records`, target id, values, the agreed values before).
type Update = (Side, usize, String, Values, String);

/// Everything a page decided, written and committed together.
#[derive(Default)]
struct PageWork {
    records: Vec<RecordRow>,
    events: Vec<EventRow>,
    /// (target side, row, source deal, values for the new deal).
    creates: Vec<Create>,
    updates: Vec<Update>,
}

impl<'a> Pass<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        engine: &'a Engine,
        store: &'a Store,
        settings: &'a SyncSettings,
        holder: &'a Holder<'a>,
        run: &'a mut RunRow,
        lease_ms: i64,
        hub_stats: &'a Stats,
        app_stats: &'a Stats,
    ) -> Pass<'a> {
        let mut mapped = Vec::new();
        for m in &settings.fields {
            let (Some(hub), Some(app)) = (holder.hub_schema.field(&m.hubspot_property), holder.app_schema.field(&m.app_field)) else {
                tracing::warn!(hubspot = %m.hubspot_property, app = %m.app_field, "a mapped field no longer exists; skipped");
                continue;
            };
            mapped.push(Mapped {
                key: format!("{}>{}", m.hubspot_property, m.app_field),
                hub,
                app,
                translate: FieldTranslate { mapping: m, hub, app, owners: &holder.owners },
                flow: Flow::of(settings.direction, m.direction),
                link: None,
            });
        }
        for (i, (mapping, hub, app)) in holder.link_infos.iter().enumerate() {
            mapped.push(Mapped {
                key: format!("{}>{}", hub.key, app.key),
                hub,
                app,
                translate: FieldTranslate { mapping, hub, app, owners: &holder.owners },
                flow: Flow::of(settings.direction, model::apps::SyncDirection::TwoWay),
                link: Some(i),
            });
        }
        let mut app_fields: Vec<String> = mapped.iter().map(|m| m.app.key.clone()).collect();
        app_fields.extend(settings.filters.iter().map(|f| f.field.clone()));
        app_fields.sort();
        app_fields.dedup();
        Pass {
            store,
            instance: &engine.instance,
            settings,
            sync_id: run.sync_id.clone(),
            run,
            lease_ms,
            hub: Records {
                api: holder.hub_api,
                object: settings.object,
                fields: mapped.iter().filter(|m| m.link.is_none()).map(|m| m.hub.key.clone()).collect(),
                tandem_key: holder.hub_key.clone(),
                schema: &holder.hub_schema.fields,
            },
            app: Records {
                api: holder.app_api,
                object: settings.object,
                fields: app_fields,
                tandem_key: holder.app_key.clone(),
                schema: &holder.app_schema.fields,
            },
            hub_schema: &holder.hub_schema,
            app_schema: &holder.app_schema,
            mapped,
            stages: StageTranslate::new(&settings.pipelines),
            stage_flow: Flow::of(settings.direction, model::apps::SyncDirection::TwoWay),
            rule: settings.effective_conflict_rule(),
            search_window: engine.config.search_window,
            hub_stats,
            app_stats,
            reading: Side::HubSpot,
            links: &holder.links,
            link_pairs: holder.links.iter().map(|l| IdPairs::new(l.noun())).collect(),
        }
    }

    /// Deals: pipelines and stages take part.
    fn deal(&self) -> bool {
        self.settings.object == ObjectKind::Deal
    }

    /// Contacts and companies: matched across the apps by email or domain.
    fn matched(&self) -> bool {
        remote::match_fields(self.settings.object).is_some()
    }

    fn noun(&self) -> &'static str {
        match self.settings.object {
            ObjectKind::Deal => "deal",
            ObjectKind::Contact => "contact",
            ObjectKind::Company => "company",
        }
    }

    fn on(&self, side: Side) -> &Records<'a> {
        match side {
            Side::HubSpot => &self.hub,
            Side::App => &self.app,
        }
    }

    async fn execute(&mut self, mut state: crate::store::SyncStateRow) -> Result<(), EngineError> {
        self.recover_creations().await?;
        self.retry_failed().await?;
        if state.phase == INITIAL_HUBSPOT || state.phase == INITIAL_APP {
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
            let order = if self.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
            let phase_of = |side: Side| if side == Side::HubSpot { INITIAL_HUBSPOT } else { INITIAL_APP };
            if state.phase == INITIAL_HUBSPOT && state.hub_cursor.is_none() && done == 0 && order[0] == Side::App {
                state.phase = INITIAL_APP.into();
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
                let reader = self.on(side).clone();
                let mut prefetched: Option<Result<remote::Page, ApiError>> = None;
                while state.phase == phase_of(side) {
                    let page = match prefetched.take() {
                        Some(page) => page?,
                        None => {
                            let cursor = if side == Side::HubSpot { state.hub_cursor.clone() } else { state.app_cursor.clone() };
                            reader.list_at_least(cursor.as_deref(), INITIAL_GROUP).await?
                        }
                    };
                    done += page.records.len() as i64;
                    let checkpoint = match (&page.next, step) {
                        (Some(c), _) => Checkpoint {
                            phase: phase_of(side).into(),
                            hub_cursor: (side == Side::HubSpot).then(|| c.clone()),
                            app_cursor: (side == Side::App).then(|| c.clone()),
                            progress_done: done,
                        },
                        (None, 0) => {
                            Checkpoint { phase: phase_of(order[1]).into(), hub_cursor: None, app_cursor: None, progress_done: done }
                        }
                        (None, _) => {
                            // From here on, read what changed since the initial sync began.
                            let since = (state.initial_started_at.unwrap_or(0) - CURSOR_MARGIN_MS).to_string();
                            Checkpoint {
                                phase: INCREMENTAL.into(),
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
                                reader.list_at_least(Some(next), INITIAL_GROUP)
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
        let sides = if self.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
        for side in sides {
            let cursor = match side {
                Side::HubSpot => &state.hub_cursor,
                Side::App => &state.app_cursor,
            };
            let since = cursor.as_deref().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            // The margin applies to the stored cursor only; a new search window starts exactly
            // at the newest time read (with the margin, a burst of changes inside it would be
            // read again and again).
            let mut query_since = (since - CURSOR_MARGIN_MS).max(0);
            let mut newest = since;
            let mut page_cursor: Option<String> = None;
            let mut read_in_window = 0usize;
            // As in the initial sync, the next page is read while this one is processed.
            let reader = self.on(side).clone();
            let mut prefetched: Option<Result<remote::Page, ApiError>> = None;
            loop {
                let page = match prefetched.take() {
                    Some(page) => page?,
                    None => reader.changed_since(query_since, page_cursor.as_deref()).await?,
                };
                read_in_window += page.records.len();
                newest = page.records.iter().map(|d| d.updated_at).max().unwrap_or(newest).max(newest);
                let checkpoint = Checkpoint {
                    phase: INCREMENTAL.into(),
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
            let pending = self.store.records_in_state(&self.sync_id, "creating", 200).await?;
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
                            match target {
                                Side::HubSpot => row.hubspot_id = Some(deal.id.clone()),
                                Side::App => row.app_id = Some(deal.id.clone()),
                            }
                            // Compared on the next read against what the create sent.
                            (row.state, row.create_on, row.hub_seen_at, row.app_seen_at) = ("linked".into(), None, None, None);
                            row.updated_at = now_ms();
                            linked.push(row);
                        }
                        None => {
                            row.state = "failed".into();
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
            let ids: Vec<String> = retry
                .iter()
                .filter(|r| Side::parse(&r.origin) == Some(side))
                .filter_map(|r| match side {
                    Side::HubSpot => r.hubspot_id.clone(),
                    Side::App => r.app_id.clone(),
                })
                .collect();
            if ids.is_empty() {
                continue;
            }
            let deals = self.on(side).read(&ids).await?;
            self.process(side, deals, true, None).await?;
        }
        Ok(())
    }

    /// Whether every mapped value of a deal (and its stage) is what this side held when both
    /// sides last agreed: then there is nothing to compare, and the other side is not read.
    /// Values, not modification times, decide: Pipedrive's times have whole seconds only.
    /// A record not yet seen since the settings changed (seen times cleared) is always compared.
    fn unchanged(&self, side: Side, row: &RecordRow, deal: &RemoteRecord) -> bool {
        let seen = match side {
            Side::HubSpot => row.hub_seen_at,
            Side::App => row.app_seen_at,
        };
        if seen.is_none() {
            return false;
        }
        let Ok(agreed) = serde_json::from_str::<BTreeMap<String, Agreed>>(&row.agreed) else { return false };
        let held = |key: &str| agreed.get(key).map(|a| if side == Side::HubSpot { &a.hub } else { &a.app });
        let stage_same = !self.deal() || held(STAGE) == Some(&deal.values.get(STAGE).cloned().flatten());
        stage_same
            && self.mapped.iter().all(|m| {
                let field = if side == Side::HubSpot { m.hub } else { m.app };
                held(&m.key) == Some(&canonical(field.kind, deal.values.get(&field.key).cloned().flatten().as_deref()))
            })
    }

    fn filters_pass(&self, app_deal: &RemoteRecord) -> bool {
        self.settings
            .filters
            .iter()
            .all(|f| filter_matches(f, self.app_schema.field(&f.field).map(|i| i.kind), app_deal.values.get(&f.field).cloned().flatten()))
    }

    /// Decides, writes and commits one page of deals read from `side`. `force` compares even
    /// records whose modification time was already seen (retries).
    async fn process(
        &mut self,
        side: Side,
        mut deals: Vec<RemoteRecord>,
        force: bool,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), EngineError> {
        self.reading = side;
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
            .filter_map(|r| Some((side_id(&r, side)?.to_string(), r)))
            .collect();
        // Records Tandem created whose link was not yet recorded carry their Tandem id.
        let orphans: Vec<String> = deals.iter().filter(|d| !by_id.contains_key(&d.id)).filter_map(|d| d.tandem_id.clone()).collect();
        let by_tandem: HashMap<String, RecordRow> =
            self.store.records_by(&self.sync_id, RecordKey::Tandem, &orphans).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        for pairs in &mut self.link_pairs {
            pairs.clear();
        }
        if !self.links.is_empty() {
            let agreed: HashMap<String, String> = by_id.iter().map(|(id, r)| (id.clone(), r.agreed.clone())).collect();
            self.resolve_links(side, &mut deals, &agreed).await?;
        }

        // Contacts and companies never seen before: the record they match on the other side.
        // Contacts and companies with no counterpart yet (never seen, or left out before, such
        // as a duplicate): the record they match on the other side.
        let mut matches = if self.matched() {
            let unlinked: Vec<(&RemoteRecord, Option<&RecordRow>)> = deals
                .iter()
                .filter(|d| !d.tandem_id.as_ref().is_some_and(|t| by_tandem.contains_key(t)))
                .filter_map(|d| match by_id.get(&d.id) {
                    None => Some((d, None)),
                    Some(row) if side_id(row, side.other()).is_none() && row.state != "creating" => Some((d, Some(row))),
                    Some(_) => None,
                })
                .collect();
            self.find_matches(side, &unlinked, now).await?
        } else {
            HashMap::new()
        };

        let mut work = PageWork::default();
        let mut compare: Vec<(RecordRow, RemoteRecord)> = Vec::new();
        for deal in deals {
            let row = by_id.remove(&deal.id).or_else(|| {
                let mut row = by_tandem.get(deal.tandem_id.as_deref()?)?.clone();
                if side_id(&row, side).is_some() {
                    return None;
                }
                match side {
                    Side::HubSpot => row.hubspot_id = Some(deal.id.clone()),
                    Side::App => row.app_id = Some(deal.id.clone()),
                }
                (row.state, row.create_on) = ("linked".into(), None);
                Some(row)
            });
            match row {
                Some(row) if row.state == "creating" => self.skip(),
                Some(row) if !force && failed_for_good(&row) && seen_at(&row, side) == Some(deal.updated_at) => {
                    // Refused for its values (validation, permission, …): sending the same
                    // values again would fail again. It waits for a change or an admin's Retry.
                    self.skip();
                }
                Some(row) if row.hubspot_id.is_some() && row.app_id.is_some() => {
                    if !force && row.state == "linked" && self.unchanged(side, &row, &deal) {
                        // Tandem's own write read back, or a change to a field no mapping covers.
                        self.skip();
                    } else {
                        compare.push((row, deal));
                    }
                }
                existing if matches.contains_key(&deal.id) => match matches.remove(&deal.id).expect("checked") {
                    Found::Link(row, message) => {
                        work.events.push(self.event(&row.id, now, "matched", side.other(), json!([]), None, None, Some(&message)));
                        compare.push((*row, deal));
                    }
                    Found::Duplicate(message) => {
                        let mut row = existing.unwrap_or_else(|| self.new_row(side, &deal, now));
                        match side {
                            Side::HubSpot => row.hub_seen_at = Some(deal.updated_at),
                            Side::App => row.app_seen_at = Some(deal.updated_at),
                        }
                        self.exclude(row, side, "duplicate", message, now, &mut work);
                    }
                },
                existing => self.consider_new(side, existing, deal, now, &mut work),
            }
        }

        // Linked records: read the other side, decide field by field.
        if !compare.is_empty() {
            let other = side.other();
            let other_ids: Vec<String> = compare.iter().filter_map(|(r, _)| side_id(r, other).map(str::to_string)).collect();
            let mut read = self.on(other).read(&other_ids).await?;
            if !self.links.is_empty() {
                let agreed: HashMap<String, String> =
                    compare.iter().filter_map(|(r, _)| Some((side_id(r, other)?.to_string(), r.agreed.clone()))).collect();
                self.resolve_links(other, &mut read, &agreed).await?;
            }
            let counterparts: HashMap<String, RemoteRecord> = read.into_iter().map(|d| (d.id.clone(), d)).collect();
            let mut pairs = Vec::new();
            for (row, deal) in compare {
                let counterpart = side_id(&row, other).and_then(|id| counterparts.get(id)).cloned();
                match counterpart {
                    None => self.deleted(row, other, deal, now, &mut work),
                    Some(counterpart) => {
                        let (hub_deal, app_deal) = match side {
                            Side::HubSpot => (deal, counterpart),
                            Side::App => (counterpart, deal),
                        };
                        pairs.push((row, hub_deal, app_deal));
                    }
                }
            }
            // Where a field changed on both sides, "later" is decided by when that field changed
            // in HubSpot (its property history), not by when the record last changed.
            // Pipedrive's side likewise, by the deal's changelog.
            let contested: Vec<(String, String)> = pairs
                .iter()
                .filter(|(row, hub, app)| self.changed_on_both(row, hub, app))
                .map(|(_, hub, app)| (hub.id.clone(), app.id.clone()))
                .collect();
            let (mut times, mut app_times) = if contested.is_empty() {
                (HashMap::new(), HashMap::new())
            } else {
                let fields: Vec<String> = self.mapped.iter().filter(|m| m.link.is_none()).map(|m| m.hub.key.clone()).collect();
                let hub_ids: Vec<String> = contested.iter().map(|(h, _)| h.clone()).collect();
                let app_ids: Vec<String> = contested.iter().map(|(_, a)| a.clone()).collect();
                let (hub_times, app_times) = tokio::join!(self.hub.field_times(&hub_ids, &fields), self.app.pd_field_times(&app_ids));
                (hub_times?, app_times?)
            };
            for (row, hub, app) in pairs {
                let times =
                    FieldTimes { hub: times.remove(&hub.id).unwrap_or_default(), app: app_times.remove(&app.id).unwrap_or_default() };
                self.compare(row, hub, app, &times, now, &mut work);
            }
        }

        self.write(&mut work, now).await?;
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

    /// The identity-map row of a record seen for the first time on `side`.
    fn new_row(&self, side: Side, record: &RemoteRecord, now: i64) -> RecordRow {
        let mut row = RecordRow {
            id: new_id(),
            sync_id: self.sync_id.clone(),
            hubspot_id: None,
            app_id: None,
            state: String::new(),
            reason: None,
            message: None,
            origin: side.as_str().into(),
            create_on: None,
            name: record.name.clone(),
            agreed: "{}".into(),
            hub_seen_at: None,
            app_seen_at: None,
            created_at: now,
            updated_at: now,
            match_key: record.match_key.clone(),
        };
        match side {
            Side::HubSpot => (row.hubspot_id, row.hub_seen_at) = (Some(record.id.clone()), Some(record.updated_at)),
            Side::App => (row.app_id, row.app_seen_at) = (Some(record.id.clone()), Some(record.updated_at)),
        }
        row
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
        let duplicate = |key: &str| self.duplicate_message(side, key);
        let linked = |key: &str| self.linked_message(target, key);
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
            let lone = rows.iter().find(|r| side_id(r, side).is_none() && side_id(r, target).is_some() && r.state != "creating");
            if claimed.contains(key) || rows.iter().any(|r| side_id(r, side).is_some() && side_id(r, target).is_some()) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            } else if let (Some(row), None) = (lone, own) {
                claimed.insert(key.to_string());
                out.insert(record.id.clone(), Found::Link(Box::new(self.link((*row).clone(), side, record, now)), linked(key)));
            } else if rows.iter().any(|r| r.state == "creating") {
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
        let duplicate = |key: &str| self.duplicate_message(side, key);
        let linked = |key: &str| self.linked_message(target, key);
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
                (Some(row), _) if row.app_id.is_some() || row.state == "creating" => {
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
                (None, None) => self.new_row(target, h, now),
            };
            claimed.insert(key.to_string());
            out.insert(record.id.clone(), Found::Link(Box::new(self.link(row, side, record, now)), linked(key)));
        }
        Ok(())
    }

    /// Why a contact or company is left out: its key is linked to another record already.
    fn duplicate_message(&self, side: Side, key: &str) -> String {
        let (what, noun) = (self.match_word(), self.noun());
        format!(
            "Another {noun} in {} has the same {what} ({key}) and is already synced; Tandem links one record to one.",
            self.side_name(side)
        )
    }

    fn linked_message(&self, target: Side, key: &str) -> String {
        let (what, noun) = (self.match_word(), self.noun());
        format!("Linked with the {noun} that already existed in {} with the {what} {key}.", self.side_name(target))
    }

    fn side_name(&self, side: Side) -> String {
        match side {
            Side::HubSpot => "HubSpot".into(),
            Side::App => self.app_name(),
        }
    }

    /// What contacts or companies are matched on, as the messages say it.
    fn match_word(&self) -> &'static str {
        if self.settings.object == ObjectKind::Contact {
            "email"
        } else {
            "domain"
        }
    }

    /// A row of the other side's record, now also holding `record` from `side`: compared on this
    /// page as two records never synced before (a value fills a blank; where both hold values,
    /// the later change wins, or the conflict rule within five minutes).
    fn link(&self, mut row: RecordRow, side: Side, record: &RemoteRecord, now: i64) -> RecordRow {
        match side {
            Side::HubSpot => row.hubspot_id = Some(record.id.clone()),
            Side::App => row.app_id = Some(record.id.clone()),
        }
        let blank: BTreeMap<String, Agreed> = self.mapped.iter().map(|m| (m.key.clone(), Agreed { hub: None, app: None })).collect();
        row.agreed = serde_json::to_string(&blank).unwrap_or_else(|_| "{}".into());
        (row.state, row.reason, row.message, row.create_on) = ("linked".into(), None, None, None);
        (row.hub_seen_at, row.app_seen_at) = (None, None);
        row.match_key = record.match_key.clone().or(row.match_key);
        row.updated_at = now;
        row
    }

    /// A record with no counterpart yet: create one on the other side, or record why not.
    fn consider_new(&mut self, side: Side, existing: Option<RecordRow>, deal: RemoteRecord, now: i64, work: &mut PageWork) {
        let target = side.other();
        let mut row = existing.unwrap_or_else(|| self.new_row(side, &deal, now));
        if deal.match_key.is_some() {
            row.match_key = deal.match_key.clone();
        }
        match side {
            Side::HubSpot => (row.hubspot_id, row.hub_seen_at) = (Some(deal.id.clone()), Some(deal.updated_at)),
            Side::App => (row.app_id, row.app_seen_at) = (Some(deal.id.clone()), Some(deal.updated_at)),
        }
        row.name = deal.name.clone();
        let flows = match target {
            Side::App => self.stage_flow.to_app,
            Side::HubSpot => self.stage_flow.to_hub,
        };
        let stage = deal.values.get(STAGE).cloned().flatten();
        let target_stage = match side {
            Side::HubSpot => model::merge::Translate::to_app(&self.stages, stage.as_deref()),
            Side::App => model::merge::Translate::to_hub(&self.stages, stage.as_deref()),
        };
        let noun = self.noun();
        let exclusion = if !flows {
            Some(("direction", format!("This sync only sends {noun} records from {}.", side_label(target))))
        } else if self.deal() && target_stage.is_err() {
            Some(("unmapped_stage", "The deal's stage is not mapped to a stage on the other side.".to_string()))
        } else if side == Side::App && !self.filters_pass(&deal) {
            Some(("filter", format!("The {noun} does not meet the sync's filters.")))
        } else {
            None
        };
        if let Some((reason, message)) = exclusion {
            self.exclude(row, side, reason, message, now, work);
            return;
        }
        // The new deal's values: every field that flows this way, translated. What both sides
        // will hold is stored with the pending row, so a create recovered after an interruption
        // is compared field by field against it (record times alone cannot tell which side
        // changed which field since).
        let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut expected: BTreeMap<String, Agreed> = BTreeMap::new();
        if self.deal() {
            let source_stage = deal.values.get(STAGE).cloned().flatten();
            let target_stage = target_stage.ok().flatten();
            expected.insert(STAGE.into(), pair(side, source_stage, target_stage.clone()));
            values.insert(STAGE.into(), target_stage);
        }
        for m in &self.mapped {
            if !m.flow.allows(target) {
                continue;
            }
            let (from, to) = match side {
                Side::HubSpot => (m.hub, m.app),
                Side::App => (m.app, m.hub),
            };
            let raw = canonical(from.kind, deal.values.get(&from.key).cloned().flatten().as_deref());
            let translated = match side {
                Side::HubSpot => self.translator(m).to_app(raw.as_deref()),
                Side::App => self.translator(m).to_hub(raw.as_deref()),
            };
            match translated {
                Ok(Some(v)) => {
                    expected.insert(m.key.clone(), pair(side, raw.clone(), Some(v.clone())));
                    values.insert(to.key.clone(), Some(v));
                }
                Ok(None) => {
                    expected.insert(m.key.clone(), pair(side, raw.clone(), None));
                }
                Err(message) => {
                    // Created without it; the timeline says why, and the value follows once it
                    // can (a link once its record is synced).
                    tracing::debug!(record = %row.id, field = %to.key, message, "value left empty on create");
                    let message = format!("{} was left empty in the new {}: {message}", self.label(target, &to.key), self.noun());
                    work.events.push(self.event(
                        &row.id,
                        now,
                        "not_synced",
                        side,
                        json!([]),
                        None,
                        Some(Category::Validation.as_str()),
                        Some(&message),
                    ));
                }
            }
        }
        // Both providers require a name (a HubSpot contact does not; a Pipedrive person's is
        // made of the first and last name when those flow).
        let name_key = match (self.settings.object, target) {
            (ObjectKind::Deal, Side::HubSpot) => Some("dealname"),
            (ObjectKind::Deal, Side::App) => Some("title"),
            (ObjectKind::Contact, Side::HubSpot) => None,
            (ObjectKind::Contact, Side::App) if values.keys().any(|k| k == "first_name" || k == "last_name") => None,
            (_, _) => Some("name"),
        };
        if let Some(name_key) = name_key.filter(|k| values.get(*k).cloned().flatten().is_none()) {
            let name = if deal.name.is_empty() { format!("{} {}", self.noun(), deal.id) } else { deal.name.clone() };
            values.insert(name_key.into(), Some(name));
        }
        row.state = "creating".into();
        row.agreed = serde_json::to_string(&expected).unwrap_or_else(|_| "{}".into());
        row.create_on = Some(target.as_str().into());
        row.reason = None;
        row.message = None;
        row.updated_at = now;
        work.creates.push((target, row, deal, values));
    }

    fn exclude(&mut self, mut row: RecordRow, seen_on: Side, reason: &str, message: String, now: i64, work: &mut PageWork) {
        let changed = row.state != "excluded" || row.reason.as_deref() != Some(reason);
        row.state = "excluded".into();
        row.reason = Some(reason.into());
        row.message = Some(message.clone());
        row.create_on = None;
        row.updated_at = now;
        if changed {
            work.events.push(self.event(&row.id, now, "excluded", seen_on, json!([]), None, Some(reason), Some(&message)));
        }
        self.skip();
        work.records.push(row);
    }

    /// The counterpart of a linked deal is gone: recorded, never propagated.
    fn deleted(&mut self, row: RecordRow, gone_from: Side, deal: RemoteRecord, now: i64, work: &mut PageWork) {
        let reason = match gone_from {
            Side::HubSpot => "deleted_in_hubspot",
            Side::App => "deleted_in_app",
        };
        let mut row = row;
        match gone_from.other() {
            Side::HubSpot => row.hub_seen_at = Some(deal.updated_at),
            Side::App => row.app_seen_at = Some(deal.updated_at),
        }
        if row.reason.as_deref() != Some(reason) {
            let noun = self.noun();
            let message = format!(
                "The {noun} was deleted in {}; Tandem never deletes, so the {} {noun} stays.",
                side_label(gone_from),
                side_label(gone_from.other())
            );
            row.state = "excluded".into();
            row.reason = Some(reason.into());
            row.message = Some(message.clone());
            row.updated_at = now;
            work.events.push(self.event(&row.id, now, "deleted", gone_from, json!([]), None, None, Some(&message)));
        }
        self.skip();
        work.records.push(row);
    }

    /// Whether some mapped field of a linked record holds a new value on both sides.
    fn changed_on_both(&self, row: &RecordRow, hub: &RemoteRecord, app: &RemoteRecord) -> bool {
        let Ok(agreed) = serde_json::from_str::<BTreeMap<String, Agreed>>(&row.agreed) else { return false };
        self.mapped.iter().any(|m| {
            agreed.get(&m.key).is_some_and(|a| {
                canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()) != a.hub
                    && canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()) != a.app
            })
        })
    }

    /// A linked record read on both sides: field-level merge against the agreed values. A field
    /// changed on both sides is timed by `field_times` (HubSpot's history of that field,
    /// Pipedrive's deal changelog) where known, else by the records' modification times.
    fn compare(
        &mut self,
        mut row: RecordRow,
        hub: RemoteRecord,
        app: RemoteRecord,
        field_times: &FieldTimes,
        now: i64,
        work: &mut PageWork,
    ) {
        row.name = if hub.name.is_empty() { app.name.clone() } else { hub.name.clone() };
        let hub_stage = hub.values.get(STAGE).cloned().flatten();
        let app_stage = app.values.get(STAGE).cloned().flatten();
        let hub_mapped = !self.deal() || hub_stage.as_deref().is_some_and(|s| self.stages.hub_mapped(s));
        let app_mapped = !self.deal() || app_stage.as_deref().is_some_and(|s| self.stages.app_mapped(s));
        if let Some(key) = hub.match_key.clone().or_else(|| app.match_key.clone()) {
            row.match_key = Some(key);
        }
        // A deal in an unmapped stage waits there; it syncs again once it moves to a mapped one.
        if !hub_mapped || !app_mapped {
            row.hub_seen_at = Some(hub.updated_at);
            row.app_seen_at = Some(app.updated_at);
            let side = if !hub_mapped { Side::HubSpot } else { Side::App };
            self.exclude(row, side, "unmapped_stage", "The deal's stage is not mapped to a stage on the other side.".into(), now, work);
            return;
        }
        if !self.filters_pass(&app) {
            row.hub_seen_at = Some(hub.updated_at);
            row.app_seen_at = Some(app.updated_at);
            let message = format!("The {} does not meet the sync's filters.", self.noun());
            self.exclude(row, Side::App, "filter", message, now, work);
            return;
        }
        let before = row.agreed.clone();
        let mut agreed: BTreeMap<String, Agreed> = serde_json::from_str(&row.agreed).unwrap_or_default();
        let mut to_hub: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut to_app: BTreeMap<String, Option<String>> = BTreeMap::new();
        let (mut hub_changes, mut app_changes) = (Vec::new(), Vec::new());
        let mut warnings: Vec<(Side, String)> = Vec::new();
        let mut fields: Vec<(String, String, String, FieldState, &dyn model::merge::Translate)> = Vec::new();
        for m in &self.mapped {
            let state = FieldState {
                hub: canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()),
                app: canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()),
                // A link never agreed on (its other object began syncing after this record did)
                // counts as blank on both sides: a link fills a blank, and is never cleared
                // because the other side's record changed later.
                agreed: agreed.get(&m.key).cloned().or_else(|| m.link.map(|_| Agreed { hub: None, app: None })),
                hub_at: field_times.hub.get(&m.hub.key).copied().unwrap_or(hub.updated_at),
                app_at: field_times.app.get(&m.app.key).copied().unwrap_or(app.updated_at),
                flow: m.flow,
            };
            fields.push((m.key.clone(), m.hub.key.clone(), m.app.key.clone(), state, self.translator(m)));
        }
        let stage_state = FieldState {
            hub: hub_stage.clone(),
            app: app_stage.clone(),
            agreed: agreed.get(STAGE).cloned(),
            hub_at: hub.updated_at,
            app_at: app.updated_at,
            flow: self.stage_flow,
        };
        if self.deal() {
            fields.push((STAGE.into(), STAGE.into(), STAGE.into(), stage_state, &self.stages));
        }
        let mut conflicts = Vec::new();
        for (key, hub_key, app_key, state, translate) in &fields {
            let decision = decide(state, self.rule, *translate);
            if let Some(note) = conflict_note(state, &decision) {
                conflicts.push((self.label(Side::HubSpot, hub_key), hub_key.clone(), app_key.clone(), note));
            }
            match decision {
                Decision::Keep { agreed: Some(a) } => {
                    agreed.insert(key.clone(), a);
                }
                Decision::Keep { agreed: None } => {}
                Decision::Untranslatable { from, message } => {
                    // The field stays as it is on both sides (the rest of the deal syncs); said
                    // once, until one of its values changes again. A link to a record not synced
                    // yet is tried again whenever the record is read, as that record may be
                    // synced by then.
                    warnings.push((from, message));
                    if !links::is_link_key(hub_key) {
                        agreed.insert(key.clone(), Agreed { hub: state.hub.clone(), app: state.app.clone() });
                    }
                }
                Decision::Write { to, value, agreed: a, reason } => {
                    let rule = matches!(reason, Reason::Conflict(_));
                    match to {
                        Side::HubSpot => {
                            hub_changes.push(json!({"field": self.label(Side::HubSpot, hub_key), "old": self.shown(Side::HubSpot, hub_key, &state.hub), "new": self.shown(Side::HubSpot, hub_key, &value), "conflict": rule}));
                            to_hub.insert(hub_key.clone(), value);
                        }
                        Side::App => {
                            app_changes.push(json!({"field": self.label(Side::App, app_key), "old": self.shown(Side::App, app_key, &state.app), "new": self.shown(Side::App, app_key, &value), "conflict": rule}));
                            to_app.insert(app_key.clone(), value);
                        }
                    }
                    agreed.insert(key.clone(), a);
                }
            }
        }
        for (field, hub_key, app_key, note) in conflicts {
            self.run.conflicts += 1;
            let rule = note.rule.label(&self.app_name());
            work.events.push(self.event(
                &row.id,
                now,
                "conflict",
                note.winner,
                json!([{"field": field, "hubspot": self.shown(Side::HubSpot, &hub_key, &note.hub), "app": self.shown(Side::App, &app_key, &note.app), "winner": note.winner.as_str()}]),
                Some(&rule),
                None,
                None,
            ));
        }
        row.agreed = serde_json::to_string(&agreed).unwrap_or_else(|_| "{}".into());
        row.hub_seen_at = Some(hub.updated_at);
        row.app_seen_at = Some(app.updated_at);
        row.state = "linked".into();
        row.reason = None;
        row.message = None;
        row.updated_at = now;
        // A Pipedrive person takes its first and last name as one `name`: both travel together.
        if self.settings.object == ObjectKind::Contact {
            for (changed, other) in [("first_name", "last_name"), ("last_name", "first_name")] {
                if to_app.contains_key(changed) && !to_app.contains_key(other) && self.mapped.iter().any(|m| m.app.key == other) {
                    to_app.insert(other.to_string(), app.values.get(other).cloned().flatten());
                }
            }
        }
        for (from, message) in warnings {
            work.events.push(self.event(
                &row.id,
                now,
                "not_synced",
                from,
                json!([]),
                None,
                Some(Category::Validation.as_str()),
                Some(&message),
            ));
        }
        if to_hub.is_empty() && to_app.is_empty() {
            if row.state == "linked" {
                self.skip();
            }
            work.records.push(row);
            return;
        }
        let index = work.records.len();
        let (hub_id, app_id) = (row.hubspot_id.clone().unwrap_or_default(), row.app_id.clone().unwrap_or_default());
        work.records.push(row);
        if !to_hub.is_empty() {
            work.events.push(self.event(&work.records[index].id, now, "updated", Side::HubSpot, json!(hub_changes), None, None, None));
            work.updates.push((Side::HubSpot, index, hub_id, to_hub, before.clone()));
        }
        if !to_app.is_empty() {
            work.events.push(self.event(&work.records[index].id, now, "updated", Side::App, json!(app_changes), None, None, None));
            work.updates.push((Side::App, index, app_id, to_app, before));
        }
    }

    /// A record read and left as it is, counted for the side it was read from.
    fn skip(&mut self) {
        self.run.skipped += 1;
        if self.reading == Side::HubSpot {
            self.run.skipped_from_hub += 1;
        }
    }

    /// How a mapped field's values translate: through the field mapping, or for an association
    /// through the linked records known on this page.
    fn translator<'s>(&'s self, m: &'s Mapped<'a>) -> &'s dyn model::merge::Translate {
        match m.link {
            Some(i) => &self.link_pairs[i],
            None => &m.translate,
        }
    }

    /// The association mapped under `key` on `side`, if `key` is one.
    fn link_mapping(&self, side: Side, key: &str) -> Option<(&Mapped<'a>, usize)> {
        self.mapped
            .iter()
            .find_map(|m| Some((m, m.link?)).filter(|_| if side == Side::HubSpot { m.hub.key == key } else { m.app.key == key }))
    }

    fn label(&self, side: Side, key: &str) -> String {
        match self.link_mapping(side, key) {
            Some((m, _)) => {
                if side == Side::HubSpot {
                    m.hub.label.clone()
                } else {
                    m.app.label.clone()
                }
            }
            None => label(if side == Side::HubSpot { self.hub_schema } else { self.app_schema }, key),
        }
    }

    fn shown(&self, side: Side, key: &str, value: &Option<String>) -> Option<String> {
        match self.link_mapping(side, key) {
            Some((_, i)) => value.as_deref().map(|id| self.link_pairs[i].shown(side == Side::HubSpot, id)),
            None => shown(if side == Side::HubSpot { self.hub_schema } else { self.app_schema }, key, value),
        }
    }

    /// Fills in the associations of records read from `side`, and learns the linked records'
    /// ids on both sides from the other syncs' identity maps. Pipedrive holds one person and one
    /// organization per deal; HubSpot may associate several: the one agreed before while it is
    /// still associated, else the first that the other sync links, else the first.
    async fn resolve_links(
        &mut self,
        side: Side,
        records: &mut [RemoteRecord],
        agreed: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        if self.links.is_empty() || records.is_empty() {
            return Ok(());
        }
        let links = self.links;
        for (i, link) in links.iter().enumerate() {
            let mkey = self.link_mapping(Side::HubSpot, link.hub_key).map(|(m, _)| m.key.clone()).unwrap_or_default();
            match side {
                Side::HubSpot => {
                    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
                    let associated = self.hub.hub_associations(link.hub_to, &ids).await?;
                    let mut candidates: Vec<String> = associated.values().flatten().cloned().collect();
                    candidates.sort();
                    candidates.dedup();
                    for row in self.store.records_by(&link.sync_id, RecordKey::HubSpot, &candidates).await? {
                        if let (Some(h), Some(a)) = (&row.hubspot_id, &row.app_id) {
                            self.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                    for record in records.iter_mut() {
                        let list = associated.get(&record.id).cloned().unwrap_or_default();
                        let before = agreed
                            .get(&record.id)
                            .and_then(|a| serde_json::from_str::<BTreeMap<String, Agreed>>(a).ok())
                            .and_then(|a| a.get(&mkey).and_then(|v| v.hub.clone()));
                        let pairs = &self.link_pairs[i];
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
                            self.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn app_name(&self) -> String {
        self.app.api.provider.name().to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        record_id: &str,
        at: i64,
        kind: &str,
        side: Side,
        changes: serde_json::Value,
        rule: Option<&str>,
        category: Option<&str>,
        message: Option<&str>,
    ) -> EventRow {
        EventRow {
            id: new_id(),
            sync_id: self.sync_id.clone(),
            run_id: self.run.id.clone(),
            record_id: record_id.to_string(),
            at,
            kind: kind.into(),
            side: side.as_str().into(),
            changes: changes.to_string(),
            rule: rule.map(str::to_string),
            category: category.map(str::to_string),
            message: message.map(str::to_string),
        }
    }

    /// Sends the page's creates and updates; records each outcome on its row.
    async fn write(&mut self, work: &mut PageWork, now: i64) -> Result<(), EngineError> {
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
                    if let Some(existing) = remote::existing_contact(e).filter(|_| target == Side::HubSpot) {
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
                        let agreed = self.agreed_after_create(source, source_deal, &created);
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
                        row.agreed = serde_json::to_string(&agreed).unwrap_or_else(|_| "{}".into());
                        (row.state, row.create_on, row.updated_at) = ("linked".into(), None, now);
                        let changes: Vec<serde_json::Value> = values
                            .iter()
                            .map(|(k, v)| json!({"field": self.label(target, k), "old": null, "new": self.shown(target, k, v)}))
                            .collect();
                        work.events.push(self.event(&row.id, now, "created", target, json!(changes), None, None, None));
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
                    let agreed: BTreeMap<String, Agreed> = serde_json::from_str(before).unwrap_or_default();
                    for (key, value) in values.iter().filter(|(k, _)| links::is_link_key(k)) {
                        let row_id = work.records[*index].id.clone();
                        let old =
                            self.mapped.iter().find(|m| m.hub.key == *key).and_then(|m| agreed.get(&m.key)).and_then(|a| a.hub.clone());
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
                        let readback = self.readback(target, &updated, &work.records[*index].agreed);
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
        work: &mut PageWork,
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
                    let message = self.duplicate_message(Side::App, &key);
                    self.exclude(row, Side::App, "duplicate", message, now, work);
                }
                Some(hub) => {
                    tracing::info!(record = %row.id, hubspot_id = %id, "the email is taken by a HubSpot contact the search did not show yet; linked to it");
                    let row = self.link(row, Side::HubSpot, hub, now);
                    work.events.push(self.event(
                        &row.id,
                        now,
                        "matched",
                        Side::HubSpot,
                        json!([]),
                        None,
                        None,
                        Some(&self.linked_message(Side::HubSpot, &key)),
                    ));
                    self.compare(row, hub.clone(), source.clone(), &FieldTimes::default(), now, work);
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
        work: &mut PageWork,
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
            if let Err(e) = self.hub.hub_associate(link.hub_to, &adds, &removes).await {
                tracing::warn!(error = %e, "HubSpot associations could not be written");
                let message = format!("The association with the {} could not be written in HubSpot: {}", link.noun(), e.message);
                for (row_id, ..) in add.iter().chain(&remove).filter(|(_, k, ..)| k == link.hub_key) {
                    work.events.push(self.event(
                        row_id,
                        now,
                        "not_synced",
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

    fn fail(&mut self, row: &mut RecordRow, target: Side, e: &ApiError, now: i64, work: &mut PageWork) {
        self.count_failure(target);
        row.state = "failed".into();
        row.create_on = None;
        row.reason = Some(e.category.as_str().into());
        row.message = Some(e.message.clone());
        row.updated_at = now;
        work.events.push(self.event(&row.id, now, "failed", target, json!([]), None, Some(e.category.as_str()), Some(&e.message)));
    }

    /// The agreed values after an update, with the target side's as the provider stored them
    /// (it may have normalised a value, or kept one it refuses to clear).
    fn readback(&self, target: Side, updated: &RemoteRecord, agreed: &str) -> String {
        let mut agreed: BTreeMap<String, Agreed> = serde_json::from_str(agreed).unwrap_or_default();
        for m in &self.mapped {
            if m.link.is_some() && target == Side::HubSpot {
                // An association is not in the record read back: it holds what was sent.
                continue;
            }
            let field = if target == Side::HubSpot { m.hub } else { m.app };
            if let Some(entry) = agreed.get_mut(&m.key) {
                let value = canonical(field.kind, updated.values.get(&field.key).cloned().flatten().as_deref());
                match target {
                    Side::HubSpot => entry.hub = value,
                    Side::App => entry.app = value,
                }
            }
        }
        if let Some(entry) = agreed.get_mut(STAGE).filter(|_| self.deal()) {
            let value = updated.values.get(STAGE).cloned().flatten();
            match target {
                Side::HubSpot => entry.hub = value,
                Side::App => entry.app = value,
            }
        }
        serde_json::to_string(&agreed).unwrap_or_else(|_| "{}".into())
    }

    /// What both sides hold after a create: the source deal's values and the new deal's as read
    /// back (they may differ where a value could not flow or the provider filled one in).
    fn agreed_after_create(&self, source: Side, source_deal: &RemoteRecord, created: &RemoteRecord) -> BTreeMap<String, Agreed> {
        let (hub, app) = match source {
            Side::HubSpot => (source_deal, created),
            Side::App => (created, source_deal),
        };
        let mut agreed = BTreeMap::new();
        for m in &self.mapped {
            let (source_value, target_value) = match source {
                Side::HubSpot => (hub.values.get(&m.hub.key), app.values.get(&m.app.key)),
                Side::App => (app.values.get(&m.app.key), hub.values.get(&m.hub.key)),
            };
            if m.link.is_some() && source_value.is_some_and(Option::is_some) && !target_value.is_some_and(Option::is_some) {
                // A link that could not be made yet (its record is not synced): agreed blank on
                // both sides, so the source's link is made once it can be.
                agreed.insert(m.key.clone(), Agreed { hub: None, app: None });
                continue;
            }
            agreed.insert(
                m.key.clone(),
                Agreed {
                    hub: canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()),
                    app: canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()),
                },
            );
        }
        if self.deal() {
            agreed.insert(
                STAGE.into(),
                Agreed { hub: hub.values.get(STAGE).cloned().flatten(), app: app.values.get(STAGE).cloned().flatten() },
            );
        }
        agreed
    }
}

/// What a run reads once and its mappings borrow: both APIs, both schemas, the owner pairs and
/// the fields carrying Tandem ids (created when missing).
struct Holder<'a> {
    hub_api: &'a Api,
    app_api: &'a Api,
    hub_schema: SideSchema,
    app_schema: SideSchema,
    owners: OwnerPairs,
    hub_key: String,
    app_key: String,
    links: Vec<Link>,
    link_infos: Vec<(model::sync::FieldMapping, FieldInfo, FieldInfo)>,
}

impl<'a> Holder<'a> {
    async fn load(hub_api: &'a Api, app_api: &'a Api, object: ObjectKind, links: Vec<Link>) -> Result<Holder<'a>, ApiError> {
        let (hub_key, app_key) =
            tokio::try_join!(remote::ensure_tandem_field(hub_api, object), remote::ensure_tandem_field(app_api, object))?;
        let (hub_schema, app_schema) = tokio::try_join!(hub_api.schema(object), app_api.schema(object))?;
        let owners = remote::owner_pairs(hub_api, app_api).await?;
        let link_infos = links.iter().map(Link::infos).collect();
        Ok(Holder { hub_api, app_api, hub_schema, app_schema, owners, hub_key, app_key, links, link_infos })
    }
}

/// When each field of a linked pair last changed, where the provider says (HubSpot's property
/// history, Pipedrive's deal changelog); other fields are timed by their record's last change.
#[derive(Debug, Default)]
struct FieldTimes {
    hub: HashMap<String, i64>,
    app: HashMap<String, i64>,
}

/// What a contact or company new to Tandem matches on the other side.
enum Found {
    /// The row linking it to the other side's record, and what the event says.
    Link(Box<RecordRow>, String),
    /// Its key is linked to another record already: left out, saying why.
    Duplicate(String),
}

/// Agreed values from a source side's value and the other side's.
fn pair(source: Side, source_value: Option<String>, target_value: Option<String>) -> Agreed {
    match source {
        Side::HubSpot => Agreed { hub: source_value, app: target_value },
        Side::App => Agreed { hub: target_value, app: source_value },
    }
}

/// A record that failed for a reason a retry of the same values cannot fix.
fn failed_for_good(row: &RecordRow) -> bool {
    row.state == "failed" && !row.reason.as_deref().and_then(Category::parse).is_some_and(|c| c.transient())
}

/// The modification time of one side that Tandem last read or wrote.
fn seen_at(row: &RecordRow, side: Side) -> Option<i64> {
    match side {
        Side::HubSpot => row.hub_seen_at,
        Side::App => row.app_seen_at,
    }
}

fn side_id(row: &RecordRow, side: Side) -> Option<&str> {
    match side {
        Side::HubSpot => row.hubspot_id.as_deref(),
        Side::App => row.app_id.as_deref(),
    }
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::HubSpot => "HubSpot",
        Side::App => "the app",
    }
}

/// A value as the history shows it: a stage by its pipeline's and its own name, the rest as is.
fn shown(schema: &SideSchema, key: &str, value: &Option<String>) -> Option<String> {
    let value = value.as_ref()?;
    if key != STAGE {
        return Some(value.clone());
    }
    let named = value.split_once('/').and_then(|(pipeline, stage)| {
        let p = schema.pipeline(pipeline)?;
        let s = p.stages.iter().find(|s| s.id == stage)?;
        Some(format!("{} › {}", p.name, s.name))
    });
    Some(named.unwrap_or_else(|| value.clone()))
}

fn label(schema: &SideSchema, key: &str) -> String {
    if key == STAGE {
        return "Deal stage".into();
    }
    schema.field(key).map(|f| f.label.clone()).unwrap_or_else(|| key.to_string())
}

/// Whether an app deal's value meets one filter.
pub fn filter_matches(filter: &Filter, kind: Option<FieldKind>, value: Option<String>) -> bool {
    let value = value.filter(|v| !v.trim().is_empty());
    let number = |s: &str| s.trim().parse::<f64>().ok();
    match filter.op {
        FilterOp::IsKnown => value.is_some(),
        FilterOp::IsUnknown => value.is_none(),
        FilterOp::Is => value.is_some_and(|v| {
            v.trim().eq_ignore_ascii_case(filter.value.trim()) || (number(&v).is_some() && number(&v) == number(&filter.value))
        }),
        FilterOp::IsNot => !value.is_some_and(|v| {
            v.trim().eq_ignore_ascii_case(filter.value.trim()) || (number(&v).is_some() && number(&v) == number(&filter.value))
        }),
        FilterOp::Contains => value.is_some_and(|v| v.to_lowercase().contains(&filter.value.trim().to_lowercase())),
        FilterOp::GreaterThan | FilterOp::LessThan => {
            let Some(v) = value else { return false };
            let ordering = match kind {
                Some(FieldKind::Date) => canonical(FieldKind::Date, Some(&v)).map(|v| v.cmp(&filter.value.trim().to_string())),
                _ => number(&v).zip(number(&filter.value)).and_then(|(a, b)| a.partial_cmp(&b)),
            };
            match filter.op {
                FilterOp::GreaterThan => ordering == Some(std::cmp::Ordering::Greater),
                _ => ordering == Some(std::cmp::Ordering::Less),
            }
        }
    }
}

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
mod matching;
mod pass;
pub mod plan;
mod purposes;
#[cfg(test)]
mod tests;
mod write;

/// The provider client the engine calls through (it lives with the connectors).
pub use crate::connectors::http as api;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use model::apps::{ConnectionStatus, ObjectKind};
use model::merge::Side;
use model::states::{EventKind, Exclusion, Phase, RecordState, RunOutcome, RunTrigger};
use model::sync::{FieldInfo, SideSchema, SyncSettings, SyncStatus};
use model::translate::OwnerPairs;

use crate::clock::now_ms;
use crate::connections::Connections;
use crate::connectors::hubspot::records::{existing_contact, HubSpotRecords};
use crate::connectors::record::{list_at_least, HubRecords, Page, RecordSpec, Records, RemoteRecord};
use crate::connectors::Provider;
use crate::secret::new_id;
use crate::store::{Agreements, Checkpoint, PageCommit, RecordKey, RecordRow, RunRow, Store, StoreError};
use api::{counted_as, Api, ApiError, Category, Purpose, Stats};
use links::Link;
use plan::{Create, FieldTimes, Found, PagePlan, Planner, Update, Values};

/// How long what a run reads before its records (both schemas, the owners, the Tandem id
/// fields) is kept for the sync's next runs, unless its settings or connections change or a
/// run's write fails first.
const SCHEMA_REFRESH: Duration = Duration::from_secs(10 * 60);

/// How often a connection's registered webhook is checked again (and renewed where it expires).
const WEBHOOK_RECHECK: Duration = Duration::from_secs(12 * 3600);

/// How far before the initial sync began the first incremental read reaches: a change made just
/// before may not have shown in HubSpot's search yet (its index trails its writes by a few
/// seconds). Records already seen at their current time are skipped, so this costs reads, not
/// writes; later runs reach back only as far as each side's `settles_within_ms` requires.
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
    /// How long a sync's lease lasts without a renewal. A running sync renews it every quarter
    /// of this ([`LeaseKeeper`]), so this is how long an instance that died (SIGKILL, power
    /// loss) keeps its syncs from the other instances; a slow page never loses it.
    pub lease: Duration,
    /// Records read per HubSpot search before a new search starts ([`SEARCH_WINDOW`]; smaller
    /// in tests).
    pub search_window: usize,
    /// Syncs one instance runs at once ([`crate::worker`]): a run mostly waits on the
    /// providers, so a long initial sync never holds back another sync's changes.
    pub concurrency: usize,
}

/// Syncs run at once by default: four per core (a run mostly waits on the providers), at least
/// four, at most 32.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 4).clamp(4, 32)
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interval: Duration::from_secs(30),
            lease: Duration::from_secs(15),
            search_window: SEARCH_WINDOW,
            concurrency: default_concurrency(),
        }
    }
}

/// Renews a running sync's lease every quarter of its length, for as long as the run lasts
/// (dropped when it ends), independently of how long the run's pages take: the lease then lapses
/// only when the instance itself stops (killed, hung or cut off from the database), and another
/// instance takes the sync over from its last checkpoint within one lease. A renewal only ever
/// extends this instance's own lease: once another instance has taken the sync, the page commit
/// finds it lost.
struct LeaseKeeper(tokio::task::JoinHandle<()>);

impl LeaseKeeper {
    fn start(store: Store, sync_id: &str, owner: &str, lease: Duration) -> LeaseKeeper {
        let (sync_id, owner) = (sync_id.to_string(), owner.to_string());
        let every = (lease / 4).max(Duration::from_millis(50));
        LeaseKeeper(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let until = now_ms() + lease.as_millis() as i64;
                match store.renew_lease(&sync_id, &owner, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(sync_id, error = %e, "could not renew the sync's lease; will retry"),
                }
            }
        }))
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
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
    /// A page met a value the schema kept from an earlier run has no counterpart for (an owner
    /// or an option added since): nothing of it was written, and the run goes on with the
    /// schema read again.
    #[error("the schema kept from an earlier run is out of date")]
    SchemaOutOfDate,
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
    /// Connections whose app webhook was registered (or found unreachable), and when.
    webhooks: Arc<std::sync::Mutex<HashMap<String, tokio::time::Instant>>>,
    /// What each sync's last run read before its records, for the runs that follow
    /// ([`SCHEMA_REFRESH`]): a webhook-woken run then reads and writes only the change.
    holders: Arc<std::sync::Mutex<HashMap<String, Kept>>>,
}

/// A sync's [`Holder`], what it was read for, and when.
struct Kept {
    key: HolderKey,
    holder: Arc<Holder>,
    read_at: tokio::time::Instant,
}

/// What a [`Holder`] depends on besides the apps themselves: the sync's settings version, both
/// connections, the syncs its associations go through, and when the app last said its schema
/// changed (a webhook, received by any instance).
#[derive(Clone, Debug, PartialEq, Eq)]
struct HolderKey {
    settings_version: i64,
    hub: String,
    app: String,
    links: Vec<(ObjectKind, String)>,
    app_schema_changes: i64,
}

impl Engine {
    pub fn new(connections: Connections, config: EngineConfig) -> Engine {
        Engine { connections, instance: new_id(), config, webhooks: Arc::default(), holders: Arc::default() }
    }

    pub fn store(&self) -> &Store {
        self.connections.store()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// This instance's id: the lease owner of the syncs it runs, and its runs' `instance`.
    pub fn instance(&self) -> &str {
        &self.instance
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

    /// Registers the app's webhook per engine and connection, when the provider can reach this
    /// server (a sandbox on loopback, or a public URL that is not loopback), and checks it again
    /// every [`WEBHOOK_RECHECK`] (Zoho's channels expire within a week; registering renews
    /// them). A failure only means changes wait for the next interval.
    async fn register_webhook(&self, app: &model::apps::ConnectionSummary, api: &Api) {
        let done = &self.webhooks;
        let recent = done.lock().unwrap_or_else(|p| p.into_inner()).get(&app.id).is_some_and(|at| at.elapsed() < WEBHOOK_RECHECK);
        if recent || !api.provider.registers_webhooks() {
            return;
        }
        let name = api.provider.name();
        let url = self.connections.webhook_url(api.provider, &app.id);
        let loopback = |u: &str| {
            url::Url::parse(u).ok().and_then(|u| u.host_str().map(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"))).unwrap_or(true)
        };
        let reachable = !loopback(&url) || self.connections.provider(&app.provider).is_some_and(|p| p.is_sandbox());
        if !reachable {
            done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone(), tokio::time::Instant::now());
            tracing::info!(connection_id = %app.id, app = name, "no webhook registered: TANDEM_PUBLIC_URL is not reachable from the app; changes are read every interval");
            return;
        }
        let (user, password) = self.connections.webhook_credentials(api.provider, &app.id);
        match api.provider.register_webhooks(api, &url, &user, &password).await {
            Ok(()) => {
                done.lock().unwrap_or_else(|p| p.into_inner()).insert(app.id.clone(), tokio::time::Instant::now());
                // Webhooks an earlier install left at Tandem's address (another data folder,
                // an uninstalled connection): each delivery to them would be refused for good.
                let prefix = url.rsplit_once('/').map(|(path, _)| format!("{path}/")).unwrap_or_default();
                match api.provider.remove_webhooks(api, &prefix, Some(&url)).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(connection_id = %app.id, app = name, removed, "removed webhooks earlier installs left"),
                    Err(e) => {
                        tracing::warn!(connection_id = %app.id, app = name, error = %e, "could not remove webhooks earlier installs left")
                    }
                }
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
        let _keeper = LeaseKeeper::start(self.store().clone(), sync_id, &self.instance, self.config.lease);
        let (hub_stats, app_stats) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let result = async {
            let app_provider =
                Provider::parse(&began.app.provider).ok_or_else(|| EngineError::Settings(format!("unknown app {}", began.app.provider)))?;
            // An initial sync's calls let other syncs' calls on the same accounts go first.
            let bulk = began.state.as_ref().is_some_and(|s| s.phase.is_initial());
            let hub_limiter = self.connections.limiter(&began.hub.id);
            let hub_api =
                Api::open(&self.connections, &began.hub.id, Provider::HUBSPOT, hub_limiter, hub_stats.clone()).await?.in_bulk(bulk);
            let app_limiter = self.connections.limiter(&began.app.id);
            let app_api = Api::open(&self.connections, &began.app.id, app_provider, app_limiter, app_stats.clone()).await?.in_bulk(bulk);
            let links = self.links_of(&began.row, app_provider, began.settings.object).await?;
            counted_as(Purpose::Schema, self.register_webhook(&began.app, &app_api)).await;
            let object = began.settings.object;
            let mut state = began.state.take().ok_or_else(|| EngineError::Settings("the run has no state".into()))?;
            let mut read_again = false;
            loop {
                let (holder, kept) = self.holder(&began, &hub_api, &app_api, links.clone(), read_again).await?;
                let plan = self
                    .planner(&began.settings, &began.run, &holder, app_provider.name())
                    .with_rules(Provider::HUBSPOT.record_rules(object), app_provider.record_rules(object));
                let hub_records = HubSpotRecords::new(&hub_api, spec(object, plan.hub_fields(), &holder.hub_key, &holder.hub_schema));
                let app_records = app_provider.records(&app_api, spec(object, plan.app_fields(), &holder.app_key, &holder.app_schema));
                let (hub_records, app_records) = (purposes::Purposed(&hub_records), purposes::Purposed(app_records.as_ref()));
                let pass = self.execute(
                    &mut began.run,
                    state,
                    plan,
                    &holder,
                    kept,
                    read_again,
                    &hub_records,
                    &app_records,
                    &hub_stats,
                    &app_stats,
                );
                match pass.await {
                    // The page stopped before anything of it was written: the schema is read
                    // again, and the run goes on from the last page committed.
                    Err(EngineError::SchemaOutOfDate) if !read_again => {
                        tracing::info!(sync_id, "a page met a value the kept schema lacks; reading the schema again");
                        read_again = true;
                        state =
                            self.store().sync_state(sync_id).await?.ok_or_else(|| EngineError::Settings("the sync has no state".into()))?;
                    }
                    other => return other,
                }
            }
        }
        .await;
        // A write refused (a property, field or stage gone) or a run cut short: the next run reads
        // the schemas again. (A value or owner with no counterpart in what was kept, a user or an
        // option added since, has the page read it again at once: see `SchemaOutOfDate`.)
        let wrote_all = result.is_ok() && began.run.failed_to_app + began.run.failed_to_hub == 0;
        if !wrote_all {
            self.holders.lock().unwrap_or_else(|p| p.into_inner()).remove(sync_id);
        }
        self.end_run(began, result, &hub_stats, &app_stats).await.map(Some)
    }

    /// What the sync's runs read before their records: kept from an earlier run when it was
    /// read for the same settings and connections less than [`SCHEMA_REFRESH`] ago and the app
    /// has not said its schema changed since, else read now (its calls counted as the schema's)
    /// and kept.
    /// Answers it, and whether it was kept; `read_again` reads it whatever was kept.
    async fn holder(
        &self,
        began: &Began,
        hub_api: &Api,
        app_api: &Api,
        links: Vec<Link>,
        read_again: bool,
    ) -> Result<(Arc<Holder>, bool), EngineError> {
        let key = HolderKey {
            settings_version: began.row.version,
            hub: began.hub.id.clone(),
            app: began.app.id.clone(),
            links: links.iter().map(|l| (l.object, l.sync_id.clone())).collect(),
            app_schema_changes: self.store().schema_changes(&began.app.id).await?,
        };
        let sync_id = &began.row.id;
        {
            let kept = self.holders.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(k) = kept.get(sync_id).filter(|k| !read_again && k.key == key && k.read_at.elapsed() < SCHEMA_REFRESH) {
                return Ok((k.holder.clone(), true));
            }
        }
        let holder = Arc::new(counted_as(Purpose::Schema, Holder::load(hub_api, app_api, began.settings.object, links)).await?);
        let kept = Kept { key, holder: holder.clone(), read_at: tokio::time::Instant::now() };
        self.holders.lock().unwrap_or_else(|p| p.into_inner()).insert(sync_id.clone(), kept);
        Ok((holder, false))
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
        let hub = app.and_then(|a| a.hub_in(&connections));
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
            instance: Some(self.instance.clone()),
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
        schema_kept: bool,
        resumed: bool,
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
            schema_kept,
            unmatched: &holder.unmatched,
        };
        pass.execute(state, resumed).await
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
        count_calls(&mut run, hub_stats, app_stats);
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

/// The run's calls to both sides, in all and by purpose.
fn count_calls(run: &mut RunRow, hub: &Stats, app: &Stats) {
    run.api_calls = hub.calls.load(Ordering::Relaxed) + app.calls.load(Ordering::Relaxed);
    let both = |purpose| hub.calls_for(purpose) + app.calls_for(purpose);
    (run.calls_read, run.calls_write, run.calls_lookup, run.calls_schema) =
        (both(Purpose::Read), both(Purpose::Write), both(Purpose::Lookup), both(Purpose::Schema));
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
    /// Whether the schema was kept from an earlier run (not read by this one).
    schema_kept: bool,
    /// Values known to have no counterpart in the schema (see [`Holder`]).
    unmatched: &'a std::sync::Mutex<std::collections::HashSet<String>>,
}

impl<'a> Pass<'a> {
    fn on(&self, side: Side) -> &'a dyn Records {
        match side {
            Side::HubSpot => self.hub,
            Side::App => self.app,
        }
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
    /// Values found to have no counterpart in this very schema (an owner with no user of that
    /// email): a page meeting only these needs no read of the schema again.
    unmatched: std::sync::Mutex<std::collections::HashSet<String>>,
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
        Ok(Holder { hub_schema, app_schema, owners, hub_key, app_key, links, link_infos, unmatched: Default::default() })
    }
}

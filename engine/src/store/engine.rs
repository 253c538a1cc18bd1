//! What the sync engine keeps: each sync's state (phase, cursors, lease), the identity map of
//! synced records, runs and record events. A page of work is committed in one transaction with
//! the cursor that covers it, so a crash resumes exactly where the last commit left off.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use model::merge::{Agreed, Side};
use model::states::{EventKind, Phase, RecordReason, RecordState, RunOutcome, RunTrigger, UnknownWord};

use super::{on_pool, Backend, Db, Result, Store, StoreError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SyncStateRow {
    pub sync_id: String,
    #[sqlx(try_from = "String")]
    pub phase: Phase,
    pub hub_cursor: Option<String>,
    pub app_cursor: Option<String>,
    pub initial_started_at: Option<i64>,
    pub settings_version: i64,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub next_run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

/// One synced (or excluded, or failing) record: the identity map's row.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordRow {
    pub id: String,
    pub sync_id: String,
    pub hubspot_id: Option<String>,
    pub app_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: RecordState,
    #[sqlx(try_from = "MaybeWord")]
    pub reason: Option<RecordReason>,
    pub message: Option<String>,
    pub origin: String,
    pub create_on: Option<String>,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub agreed: Agreements,
    pub hub_seen_at: Option<i64>,
    pub app_seen_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Contacts and companies: the normalised email or domain the record is matched on.
    pub match_key: Option<String>,
    /// Updates sent and not committed yet (see [`PendingWrites`]).
    #[sqlx(try_from = "MaybeWord")]
    pub pending: Option<PendingWrites>,
}

/// The updates of a linked record on their way: stored before they leave (with the values agreed
/// before them), and cleared when the page that sent them commits. A run cut off in between (a
/// SIGKILL, a lost lease) leaves them, so the next run knows the values its writes left on a
/// side for its own, not for a user's change that would conflict with the other side's.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingWrites {
    /// The mapping keys (and the stage's) written to HubSpot, and to the app.
    pub to_hub: Vec<String>,
    pub to_app: Vec<String>,
    /// What both sides hold once the writes have landed.
    pub agreed: BTreeMap<String, Agreed>,
}

impl PendingWrites {
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings serialize")
    }
}

impl TryFrom<MaybeWord> for Option<PendingWrites> {
    type Error = serde_json::Error;
    fn try_from(json: MaybeWord) -> std::result::Result<Option<PendingWrites>, serde_json::Error> {
        json.0.map(|j| serde_json::from_str(&j)).transpose()
    }
}

/// A nullable column holding one word (a record's reason, an event's category), as sqlx reads
/// it before it is decoded into its type.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct MaybeWord(Option<String>);

impl TryFrom<MaybeWord> for Option<RecordReason> {
    type Error = UnknownWord;
    fn try_from(word: MaybeWord) -> std::result::Result<Option<RecordReason>, UnknownWord> {
        word.0.map(RecordReason::try_from).transpose()
    }
}

impl RecordRow {
    /// Its record's id on `side`.
    pub fn id_on(&self, side: Side) -> Option<&str> {
        match side {
            Side::HubSpot => self.hubspot_id.as_deref(),
            Side::App => self.app_id.as_deref(),
        }
    }

    /// When `side`'s record last changed, as Tandem last read it.
    pub fn seen_on(&self, side: Side) -> Option<i64> {
        match side {
            Side::HubSpot => self.hub_seen_at,
            Side::App => self.app_seen_at,
        }
    }

    pub fn set_id(&mut self, side: Side, id: String) {
        *match side {
            Side::HubSpot => &mut self.hubspot_id,
            Side::App => &mut self.app_id,
        } = Some(id);
    }

    pub fn set_seen(&mut self, side: Side, at: i64) {
        *match side {
            Side::HubSpot => &mut self.hub_seen_at,
            Side::App => &mut self.app_seen_at,
        } = Some(at);
    }
}

impl SyncStateRow {
    /// Where reading `side` stands.
    pub fn cursor(&self, side: Side) -> Option<&str> {
        match side {
            Side::HubSpot => self.hub_cursor.as_deref(),
            Side::App => self.app_cursor.as_deref(),
        }
    }
}

/// The values both sides last agreed on, per mapping key (and the stage): what a side's value is
/// compared with to tell whether it changed. Kept as JSON, parsed once where a row is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreements(pub BTreeMap<String, Agreed>);

impl Agreements {
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("strings serialize")
    }
}

impl TryFrom<String> for Agreements {
    type Error = serde_json::Error;
    fn try_from(json: String) -> std::result::Result<Agreements, serde_json::Error> {
        serde_json::from_str(&json).map(Agreements)
    }
}

impl From<BTreeMap<String, Agreed>> for Agreements {
    fn from(map: BTreeMap<String, Agreed>) -> Agreements {
        Agreements(map)
    }
}

impl Deref for Agreements {
    type Target = BTreeMap<String, Agreed>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Agreements {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub sync_id: String,
    #[sqlx(try_from = "String")]
    pub trigger: RunTrigger,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub message: Option<String>,
    pub created_in_app: i64,
    pub updated_in_app: i64,
    pub created_in_hub: i64,
    pub updated_in_hub: i64,
    pub skipped: i64,
    /// Of `skipped`, those read from HubSpot (the rest were read from the app).
    pub skipped_from_hub: i64,
    pub failed_to_app: i64,
    pub failed_to_hub: i64,
    pub conflicts: i64,
    pub api_calls: i64,
    /// Of `api_calls`, those made to read records, to write them, to look particular ones up,
    /// and for the schema (properties, pipelines, owners, Tandem id fields, webhooks).
    pub calls_read: i64,
    pub calls_write: i64,
    pub calls_lookup: i64,
    pub calls_schema: i64,
    pub rate_limit_waits: i64,
    pub rate_limit_wait_ms: i64,
    /// The engine instance that ran it (`None` for runs before instances were recorded).
    pub instance: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub sync_id: String,
    pub run_id: String,
    pub record_id: String,
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    #[sqlx(try_from = "String")]
    pub side: Side,
    pub changes: String,
    pub rule: Option<String>,
    /// An excluded record's reason, or a failed write's error category.
    #[sqlx(try_from = "MaybeWord")]
    pub category: Option<RecordReason>,
    pub message: Option<String>,
}

/// Where reading stands after a page: committed together with the page's records.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub phase: Phase,
    pub hub_cursor: Option<String>,
    pub app_cursor: Option<String>,
    pub progress_done: i64,
}

/// A page of work, committed at once.
#[derive(Debug, Default)]
pub struct PageCommit<'a> {
    pub sync_id: &'a str,
    pub lease_owner: &'a str,
    pub lease_until: i64,
    pub records: Vec<RecordRow>,
    pub events: Vec<EventRow>,
    pub run: Option<&'a RunRow>,
    pub checkpoint: Option<Checkpoint>,
}

pub(super) const STATE_COLUMNS: &str = "sync_id, phase, hub_cursor, app_cursor, initial_started_at, settings_version, progress_done, \
     progress_total, last_run_at, last_success_at, next_run_at, lease_owner, lease_until";
pub(super) const RECORD_COLUMNS: &str = "id, sync_id, hubspot_id, app_id, state, reason, message, origin, create_on, name, agreed, \
     hub_seen_at, app_seen_at, created_at, updated_at, match_key, pending";
pub(super) const RUN_COLUMNS: &str = "id, sync_id, trigger, started_at, ended_at, outcome, message, created_in_app, updated_in_app, \
     created_in_hub, updated_in_hub, skipped, failed_to_app, failed_to_hub, conflicts, api_calls, rate_limit_waits, \
     rate_limit_wait_ms, skipped_from_hub, calls_read, calls_write, calls_lookup, calls_schema, instance";

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The markers of a statement's many parameters, numbered from `first`: `$n` for Postgres,
/// anonymous `?` for SQLite. sqlx binds SQLite's numbered markers by looking each one's name
/// up among all of them, so a statement's cost grew with the square of its parameters (it was
/// the engine's busiest function during an initial sync); anonymous ones have no name to look
/// up. (SQLite numbers `?` in order, so a statement must not mix the two.)
fn markers(backend: Backend, first: usize, n: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(first, n),
        Backend::Sqlite => vec!["?"; n].join(", "),
    }
}

/// Rows per multi-row statement (and ids per lookup): a page's worth in a couple of statements,
/// well under both databases' limits on parameters.
const ROWS_PER_STATEMENT: usize = 250;

const RECORD_UPSERT: &str = "INSERT INTO sync_records (id, sync_id, hubspot_id, app_id, state, reason, message, origin, create_on, name, \
         agreed, hub_seen_at, app_seen_at, created_at, updated_at, match_key, pending) VALUES ";
const RECORD_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET hubspot_id = excluded.hubspot_id, app_id = excluded.app_id, \
         state = excluded.state, reason = excluded.reason, message = excluded.message, create_on = excluded.create_on, \
         name = excluded.name, agreed = excluded.agreed, hub_seen_at = excluded.hub_seen_at, app_seen_at = excluded.app_seen_at, \
         updated_at = excluded.updated_at, match_key = excluded.match_key, pending = excluded.pending";
const EVENT_INSERT: &str =
    "INSERT INTO record_events (id, sync_id, run_id, record_id, at, kind, side, changes, rule, category, message) VALUES ";

/// `INSERT … VALUES (…), (…), …` for `rows` rows of `columns` values.
fn multi_row(backend: Backend, head: &str, rows: usize, columns: usize, tail: &str) -> String {
    let values: Vec<String> = (0..rows).map(|r| format!("({})", markers(backend, r * columns + 1, columns))).collect();
    format!("{head}{}{tail}", values.join(", "))
}

/// The lookup of a sync's records by `n` ids of one kind: the sync id, then the ids.
fn records_by_sql(backend: Backend, column: RecordKey, n: usize) -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = {} AND {} IN ({})",
        markers(backend, 1, 1),
        column.column(),
        markers(backend, 2, n)
    )
}

/// The last version of each record (a page may touch one twice), in first-seen order.
fn latest_by_id(rows: &[RecordRow]) -> Vec<&RecordRow> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<&RecordRow> = Vec::new();
    for r in rows {
        match index.get(r.id.as_str()) {
            Some(&i) => out[i] = r,
            None => {
                index.insert(&r.id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// Upserts records in multi-row statements on a connection or transaction.
macro_rules! upsert_records {
    ($conn:expr, $backend:expr, $rows:expr) => {{
        let rows = latest_by_id($rows);
        let mut result: std::result::Result<(), sqlx::Error> = Ok(());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row($backend, RECORD_UPSERT, chunk.len(), 17, RECORD_CONFLICT);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.sync_id)
                    .bind(&r.hubspot_id)
                    .bind(&r.app_id)
                    .bind(r.state.as_str())
                    .bind(r.reason.map(RecordReason::as_str))
                    .bind(&r.message)
                    .bind(&r.origin)
                    .bind(&r.create_on)
                    .bind(&r.name)
                    .bind(r.agreed.to_json())
                    .bind(r.hub_seen_at)
                    .bind(r.app_seen_at)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .bind(&r.match_key)
                    .bind(r.pending.as_ref().map(PendingWrites::to_json));
            }
            if let Err(e) = q.execute(&mut *$conn).await {
                result = Err(e);
                break;
            }
        }
        result
    }};
}

/// Inserts events in multi-row statements.
macro_rules! insert_events {
    ($conn:expr, $backend:expr, $events:expr) => {{
        let mut result: std::result::Result<(), sqlx::Error> = Ok(());
        for chunk in $events.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row($backend, EVENT_INSERT, chunk.len(), 11, "");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(&e.id)
                    .bind(&e.sync_id)
                    .bind(&e.run_id)
                    .bind(&e.record_id)
                    .bind(e.at)
                    .bind(e.kind.as_str())
                    .bind(e.side.as_str())
                    .bind(&e.changes)
                    .bind(&e.rule)
                    .bind(e.category.map(RecordReason::as_str))
                    .bind(&e.message);
            }
            if let Err(e) = q.execute(&mut *$conn).await {
                result = Err(e);
                break;
            }
        }
        result
    }};
}

macro_rules! update_run {
    ($conn:expr, $r:expr) => {
        sqlx::query(
            "UPDATE sync_runs SET ended_at = $2, outcome = $3, message = $4, created_in_app = $5, updated_in_app = $6, \
                 created_in_hub = $7, updated_in_hub = $8, skipped = $9, failed_to_app = $10, failed_to_hub = $11, \
                 conflicts = $12, api_calls = $13, rate_limit_waits = $14, rate_limit_wait_ms = $15, skipped_from_hub = $16, \
                 calls_read = $17, calls_write = $18, calls_lookup = $19, calls_schema = $20 WHERE id = $1",
        )
        .bind(&$r.id)
        .bind($r.ended_at)
        .bind($r.outcome.as_str())
        .bind(&$r.message)
        .bind($r.created_in_app)
        .bind($r.updated_in_app)
        .bind($r.created_in_hub)
        .bind($r.updated_in_hub)
        .bind($r.skipped)
        .bind($r.failed_to_app)
        .bind($r.failed_to_hub)
        .bind($r.conflicts)
        .bind($r.api_calls)
        .bind($r.rate_limit_waits)
        .bind($r.rate_limit_wait_ms)
        .bind($r.skipped_from_hub)
        .bind($r.calls_read)
        .bind($r.calls_write)
        .bind($r.calls_lookup)
        .bind($r.calls_schema)
        .execute(&mut *$conn)
        .await
    };
}

impl Store {
    pub async fn sync_state(&self, sync_id: &str) -> Result<Option<SyncStateRow>> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM sync_state WHERE sync_id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SyncStateRow>(sqlx::AssertSqlSafe(sql)).bind(sync_id).fetch_optional(pool).await)?)
    }

    /// Creates a sync's state (initial phase, due now) when it has none.
    pub async fn ensure_sync_state(&self, sync_id: &str, settings_version: i64, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO sync_state (sync_id, phase, settings_version, next_run_at) VALUES ($1, 'initial_hubspot', $2, $3) \
             ON CONFLICT (sync_id) DO NOTHING"
                )
                .bind(sync_id)
                .bind(settings_version)
                .bind(now)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// Takes (or renews) the lease on a sync for `owner` until `until`; false when another live
    /// instance holds it. On Postgres the row is claimed with `FOR UPDATE SKIP LOCKED`: a sync
    /// another instance is claiming or renewing at this moment is skipped, never waited for.
    pub async fn claim_sync(&self, sync_id: &str, owner: &str, now: i64, until: i64) -> Result<bool> {
        let sql = match self.db {
            Db::Sqlite(_) => {
                "UPDATE sync_state SET lease_owner = $2, lease_until = $4 \
                 WHERE sync_id = $1 AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < $3 OR lease_owner = $2)"
            }
            Db::Postgres(_) => {
                "UPDATE sync_state SET lease_owner = $2, lease_until = $4 WHERE sync_id = (SELECT sync_id FROM sync_state \
                 WHERE sync_id = $1 AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < $3 OR lease_owner = $2) \
                 FOR UPDATE SKIP LOCKED)"
            }
        };
        let n = on_pool!(self, exec | pool | sqlx::query(sql).bind(sync_id).bind(owner).bind(now).bind(until).execute(pool).await)?;
        Ok(n == 1)
    }

    /// Extends `owner`'s lease on a sync to `until`; false when the lease is no longer its own
    /// (given back, or taken over after it lapsed).
    pub async fn renew_lease(&self, sync_id: &str, owner: &str, until: i64) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE sync_state SET lease_until = $3 WHERE sync_id = $1 AND lease_owner = $2")
                    .bind(sync_id)
                    .bind(owner)
                    .bind(until)
                    .execute(pool)
                    .await
        )?;
        Ok(n == 1)
    }

    /// Gives the lease back and schedules the next run.
    pub async fn release_sync(&self, sync_id: &str, owner: &str, next_run_at: i64, ran_at: i64, succeeded: bool) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL, next_run_at = $3, last_run_at = $4, \
                 last_success_at = CASE WHEN $5 THEN $4 ELSE last_success_at END \
             WHERE sync_id = $1 AND lease_owner = $2"
                )
                .bind(sync_id)
                .bind(owner)
                .bind(next_run_at)
                .bind(ran_at)
                .bind(succeeded)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// Releases leases: those of `owner`, or every one when `None` (a lone SQLite instance
    /// starting again after it was killed).
    pub async fn release_all_leases(&self, owner: Option<&str>) -> Result<u64> {
        Ok(on_pool!(self, exec |pool| sqlx::query(
            "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL AND ($1 IS NULL OR lease_owner = $1)"
        )
        .bind(owner)
        .execute(pool)
        .await)?)
    }

    /// Asks for a run as soon as possible (a webhook arrived, an admin clicked Retry).
    pub async fn wake_sync(&self, sync_id: &str, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE sync_state SET next_run_at = $2 WHERE sync_id = $1 AND next_run_at > $2")
                    .bind(sync_id)
                    .bind(now)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    /// Records that the app behind a connection said its schema changed (a stage renamed).
    pub async fn mark_schema_changed(&self, connection_id: &str) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE connections SET schema_changes = schema_changes + 1 WHERE id = $1")
                    .bind(connection_id)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    /// How many times the app behind a connection said its schema changed.
    pub async fn schema_changes(&self, connection_id: &str) -> Result<i64> {
        let found: Option<(i64,)> = on_pool!(self, |pool| sqlx::query_as("SELECT schema_changes FROM connections WHERE id = $1")
            .bind(connection_id)
            .fetch_optional(pool)
            .await)?;
        Ok(found.map(|(n,)| n).unwrap_or(0))
    }

    /// Syncs that are on, due, and not leased by a live instance, with their app connection,
    /// longest due first.
    pub async fn due_syncs_with_connections(&self, now: i64) -> Result<Vec<(String, String)>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT s.id, s.connection_id FROM syncs s LEFT JOIN sync_state st ON st.sync_id = s.id \
             WHERE s.status = 'on' AND (st.sync_id IS NULL OR (st.next_run_at <= $1 AND (st.lease_until IS NULL OR st.lease_until < $1))) \
             ORDER BY COALESCE(st.next_run_at, 0), s.id"
        )
        .bind(now)
        .fetch_all(pool)
        .await)?)
    }

    /// Syncs that are on, due, and not leased by a live instance.
    pub async fn due_syncs(&self, now: i64) -> Result<Vec<String>> {
        Ok(self.due_syncs_with_connections(now).await?.into_iter().map(|(id, _)| id).collect())
    }

    /// After a settings change: read everything again from the start (records are compared, not
    /// skipped as unchanged), keeping the identity map.
    pub async fn restart_sync_state(&self, sync_id: &str, settings_version: i64) -> Result<()> {
        macro_rules! restart {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(
                    "UPDATE sync_state SET phase = 'initial_hubspot', hub_cursor = NULL, app_cursor = NULL, initial_started_at = NULL, \
                         progress_done = 0, progress_total = NULL, settings_version = $2 WHERE sync_id = $1",
                )
                .bind(sync_id)
                .bind(settings_version)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE sync_records SET hub_seen_at = NULL, app_seen_at = NULL WHERE sync_id = $1")
                    .bind(sync_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(())
            }};
        }
        on_pool!(self, |pool| restart!(pool)).map_err(StoreError::from)
    }

    pub async fn start_initial(&self, sync_id: &str, at: i64, total: Option<i64>) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE sync_state SET initial_started_at = $2, progress_total = $3, progress_done = 0 WHERE sync_id = $1")
                    .bind(sync_id)
                    .bind(at)
                    .bind(total)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    /// The records of a sync with the given ids on one side (`column` is `hubspot_id`, `app_id`
    /// or `id`).
    pub async fn records_by(&self, sync_id: &str, column: RecordKey, ids: &[String]) -> Result<Vec<RecordRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = records_by_sql(self.backend(), column, chunk.len());
            macro_rules! fetch {
                ($pool:expr) => {{
                    let mut q = sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql)).bind(sync_id);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.fetch_all($pool).await
                }};
            }
            found.extend(on_pool!(self, |pool| fetch!(pool))?);
        }
        Ok(found)
    }

    /// Records in a state, oldest change first (`creating` ones for recovery, `failed` ones for
    /// retry).
    pub async fn records_in_state(&self, sync_id: &str, state: RecordState, limit: i64) -> Result<Vec<RecordRow>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND state = $2 ORDER BY updated_at, id LIMIT $3");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql))
            .bind(sync_id)
            .bind(state.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Writes rows before anything is created remotely, so a crash after the remote create finds
    /// them (and their Tandem ids) on restart.
    pub async fn save_records(&self, rows: &[RecordRow]) -> Result<()> {
        let backend = self.backend();
        macro_rules! save {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                upsert_records!(tx, backend, rows)?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(())
            }};
        }
        on_pool!(self, |pool| save!(pool)).map_err(StoreError::from)?;
        self.written(rows.len());
        Ok(())
    }

    /// Marks the updates a page is about to send as pending on their records (each with the
    /// values agreed before them) and nothing else of the rows; fails with
    /// [`StoreError::LeaseLost`] (and marks nothing) when another instance has taken the sync
    /// over. `marks` are (record id, agreed before, pending writes).
    pub async fn mark_pending(
        &self,
        sync_id: &str,
        lease_owner: &str,
        marks: &[(String, Agreements, PendingWrites)],
        now: i64,
    ) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        macro_rules! mark {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                // A write first, as the page commit's: on SQLite a transaction that read first
                // fails at once (SQLITE_BUSY_SNAPSHOT) if another sync's run committed meanwhile.
                let held = sqlx::query(
                    "UPDATE sync_state SET lease_until = lease_until WHERE sync_id = $1 AND lease_owner = $2 AND lease_until >= $3",
                )
                .bind(sync_id)
                .bind(lease_owner)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if held != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::LeaseLost);
                }
                for (id, before, pending) in marks {
                    sqlx::query("UPDATE sync_records SET agreed = $3, pending = $4 WHERE sync_id = $1 AND id = $2")
                        .bind(sync_id)
                        .bind(id)
                        .bind(before.to_json())
                        .bind(pending.to_json())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(())
            }};
        }
        on_pool!(self, |pool| mark!(pool)).map_err(StoreError::from)?;
        Ok(())
    }

    /// Commits a page: its records, events, the run's counters and the checkpoint, renewing the
    /// lease; fails with [`StoreError::LeaseLost`] (and commits nothing) when another instance
    /// has taken the sync over.
    pub async fn commit_page(&self, page: &PageCommit<'_>, now: i64) -> Result<()> {
        let backend = self.backend();
        macro_rules! commit {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                let held =
                    sqlx::query("UPDATE sync_state SET lease_until = $3 WHERE sync_id = $1 AND lease_owner = $2 AND lease_until >= $4")
                        .bind(page.sync_id)
                        .bind(page.lease_owner)
                        .bind(page.lease_until)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if held != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::LeaseLost);
                }
                upsert_records!(tx, backend, &page.records)?;
                insert_events!(tx, backend, &page.events)?;
                if let Some(run) = page.run {
                    update_run!(tx, run)?;
                }
                if let Some(c) = &page.checkpoint {
                    sqlx::query(
                        "UPDATE sync_state SET phase = $2, hub_cursor = $3, app_cursor = $4, progress_done = $5 WHERE sync_id = $1",
                    )
                    .bind(page.sync_id)
                    .bind(c.phase.as_str())
                    .bind(&c.hub_cursor)
                    .bind(&c.app_cursor)
                    .bind(c.progress_done)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }};
        }
        on_pool!(self, |pool| commit!(pool))?;
        self.written(page.records.len() + page.events.len());
        Ok(())
    }

    pub async fn insert_run(&self, run: &RunRow) -> Result<()> {
        let sql = format!("INSERT INTO sync_runs ({RUN_COLUMNS}) VALUES ({})", placeholders(1, 24));
        on_pool!(
            self,
            exec | pool
                | sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&run.id)
                    .bind(&run.sync_id)
                    .bind(run.trigger.as_str())
                    .bind(run.started_at)
                    .bind(run.ended_at)
                    .bind(run.outcome.as_str())
                    .bind(&run.message)
                    .bind(run.created_in_app)
                    .bind(run.updated_in_app)
                    .bind(run.created_in_hub)
                    .bind(run.updated_in_hub)
                    .bind(run.skipped)
                    .bind(run.failed_to_app)
                    .bind(run.failed_to_hub)
                    .bind(run.conflicts)
                    .bind(run.api_calls)
                    .bind(run.rate_limit_waits)
                    .bind(run.rate_limit_wait_ms)
                    .bind(run.skipped_from_hub)
                    .bind(run.calls_read)
                    .bind(run.calls_write)
                    .bind(run.calls_lookup)
                    .bind(run.calls_schema)
                    .bind(&run.instance)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    pub async fn update_run(&self, run: &RunRow) -> Result<()> {
        macro_rules! update {
            ($pool:expr) => {{
                let mut conn = $pool.acquire().await?;
                update_run!(conn, run).map(|_| ())
            }};
        }
        Ok(on_pool!(self, |pool| update!(pool))?)
    }

    /// Runs left `running` by an instance that died: marked interrupted.
    pub async fn close_abandoned_runs(&self, sync_id: &str, now: i64) -> Result<u64> {
        Ok(on_pool!(self, exec |pool| sqlx::query(
            "UPDATE sync_runs SET outcome = 'interrupted', ended_at = $2, message = 'Tandem stopped during this run; the next run resumed from its last checkpoint.' \
             WHERE sync_id = $1 AND outcome = 'running'"
        )
        .bind(sync_id)
        .bind(now)
        .execute(pool)
        .await)?)
    }

    /// A sync's runs, newest first.
    pub async fn runs(&self, sync_id: &str, limit: i64) -> Result<Vec<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE sync_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql)).bind(sync_id).bind(limit).fetch_all(pool).await)?)
    }

    /// One record's events, oldest first.
    pub async fn record_events(&self, record_id: &str) -> Result<Vec<EventRow>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, EventRow>(
            "SELECT id, sync_id, run_id, record_id, at, kind, side, changes, rule, category, message FROM record_events \
             WHERE record_id = $1 ORDER BY at, id"
        )
        .bind(record_id)
        .fetch_all(pool)
        .await)?)
    }

    /// Every record of a sync (tests and small syncs only).
    pub async fn all_records(&self, sync_id: &str) -> Result<Vec<RecordRow>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 ORDER BY created_at, id");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql)).bind(sync_id).fetch_all(pool).await)?)
    }
}

/// Which id a record is looked up by.
#[derive(Clone, Copy, Debug)]
pub enum RecordKey {
    Tandem,
    HubSpot,
    App,
    /// The normalised email or domain of a contact or company.
    Match,
}

impl RecordKey {
    fn column(self) -> &'static str {
        match self {
            RecordKey::Tandem => "id",
            RecordKey::HubSpot => "hubspot_id",
            RecordKey::App => "app_id",
            RecordKey::Match => "match_key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scratch::ScratchDatabase;
    use crate::store::Db;

    #[test]
    fn agreed_values_read_back_as_written_and_garbage_is_an_error() {
        let both = |v: &str| Agreed { hub: Some(v.into()), app: Some(v.into()) };
        let agreed = Agreements(BTreeMap::from([("amount>value".to_string(), both("5000")), ("dealname>title".to_string(), both("Acme"))]));
        assert_eq!(Agreements::try_from(agreed.to_json()).unwrap(), agreed);
        assert_eq!(Agreements::try_from("{}".to_string()).unwrap(), Agreements::default());
        assert!(Agreements::try_from("not json".to_string()).is_err(), "never read as if nothing had been agreed");
    }

    fn linked(sync_id: &str, n: usize) -> RecordRow {
        RecordRow {
            id: format!("{n:036}"),
            sync_id: sync_id.into(),
            hubspot_id: Some((1_000_000 + n).to_string()),
            app_id: Some(n.to_string()),
            state: RecordState::Linked,
            reason: None,
            message: None,
            origin: "hubspot".into(),
            create_on: None,
            name: format!("Deal {n}"),
            agreed: Agreements::default(),
            hub_seen_at: Some(1),
            app_seen_at: Some(1),
            created_at: 1,
            updated_at: 1,
            match_key: None,
            pending: None,
        }
    }

    /// A first initial sync on Postgres fills the identity map faster than autovacuum refreshes
    /// its statistics. Without fresh ones Postgres took one sync's rows for a few (0.5 % of the
    /// table), and looked a page of deals up by scanning every row of the sync (the store's
    /// part of a 100,000-deal initial sync took 209 s, 186 s of it in lookups; 10 s with fresh ones).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres_the_planner_knows_how_many_records_a_growing_sync_holds() {
        let db = ScratchDatabase::create(Backend::Postgres).await.expect("scratch database");
        let store = &db.store;
        let Db::Postgres(pool) = &store.db else { unreachable!() };
        for sql in [
            "INSERT INTO connections (id, provider, account_id, account_name, api_base, status, scopes, installed_by_name, installed_at, updated_at) \
             VALUES ('c1', 'pipedrive', '1', 'Acme', 'http://127.0.0.1:1', 'connected', '', 'Ada', 0, 0)",
            "INSERT INTO syncs (id, connection_id, object, status, version, created_at, updated_at) VALUES ('s1', 'c1', 'deal', 'on', 1, 0, 0)",
            "INSERT INTO sync_state (sync_id, phase, settings_version, next_run_at, lease_owner, lease_until) VALUES ('s1', 'initial_hubspot', 1, 0, 'me', 9000000000000)",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        for page in 0..40 {
            let records = (page * 500..(page + 1) * 500).map(|n| linked("s1", n)).collect();
            let commit = PageCommit { sync_id: "s1", lease_owner: "me", lease_until: 9_000_000_000_000, records, ..Default::default() };
            store.commit_page(&commit, 0).await.unwrap();
        }

        // What misled the planner: how many of the table's rows it takes the sync to hold. It
        // is refreshed in the background, so it may take a moment.
        let mut estimate = 0.0;
        for _ in 0..100 {
            let plan: Vec<(String,)> =
                sqlx::query_as("EXPLAIN SELECT id FROM sync_records WHERE sync_id = 's1'").fetch_all(pool).await.unwrap();
            let line = &plan[0].0;
            estimate = line.split("rows=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|r| r.parse().ok()).unwrap_or(0.0);
            if estimate >= 15_000.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(estimate >= 15_000.0, "Postgres should know the sync holds about 20,000 rows, not {estimate}");
        assert_eq!(
            store.records_by("s1", RecordKey::App, &["7".to_string(), "19999".to_string(), "20000".to_string()]).await.unwrap().len(),
            2
        );
        db.destroy().await;
    }
}

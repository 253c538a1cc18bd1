//! The storage seam. One `Store` type over SQLite (the embedded default) or Postgres (for several
//! instances sharing the work). All SQL in Tandem lives in this module and its children; the SQL is
//! written once in the dialect both backends accept (`$n` parameters, `BIGINT` Unix milliseconds,
//! `TEXT` ids) and [`on_pool!`] runs it against whichever pool is open. (Statements of many rows
//! number their parameters only for Postgres: see `markers` in `engine.rs`.)

mod audit;
pub mod budgets;
mod connections;
mod dashboard;
mod engine;
mod invites;
mod login_attempts;
mod oauth_states;
pub mod scratch;
mod sessions;
mod syncs;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use audit::AuditRow;
pub use connections::{AuthorizedAccount, ConnectionRow};
pub use dashboard::{NamedEventRow, OutcomeCount, RunBucket, RunQuery, RunTotals, StateCount};
pub use engine::{Agreements, Checkpoint, EventRow, PageCommit, PendingWrites, RecordKey, RecordRow, RunRow, SyncStateRow};
pub use invites::InviteRow;
pub use login_attempts::LoginClaim;
pub use oauth_states::{NewOAuthState, OAuthStateRow};
pub use sessions::SessionRow;
pub use syncs::{NewSettingsVersion, SyncRow};
pub use users::{NewUser, UserRow};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database at {location}: {source}")]
    Connect {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a record with the same key already exists")]
    Duplicate,
    #[error("another Tandem instance has taken this sync over")]
    LeaseLost,
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            _ => StoreError::Query(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement against whichever pool the store holds.
/// `exec` runs a statement and answers the number of rows it touched.
macro_rules! on_pool {
    ($store:expr, exec |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body.map(|done| done.rows_affected()),
            $crate::store::Db::Postgres($pool) => $body.map(|done| done.rows_affected()),
        }
    };
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    statistics: Arc<Statistics>,
}

/// Postgres plans each query from its statistics of the tables, which autovacuum refreshes at
/// most once a minute. A table that grows from nothing to 100,000 rows within that minute (the
/// identity map during a first initial sync) is planned as if one sync's rows were a few: the
/// lookups by HubSpot or app id scanned every row of the sync, and the initial sync slowed with
/// the square of its records. So the store refreshes them itself each time the rows it has
/// written doubles (at 500, 1,000, 2,000, …: a handful of cheap `ANALYZE`s for any size).
#[derive(Debug)]
struct Statistics {
    written: AtomicU64,
    next: AtomicU64,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics { written: AtomicU64::new(0), next: AtomicU64::new(500) }
    }
}

impl Store {
    /// Opens `database_url` when given (`postgres://…` or `sqlite:…`), else the SQLite file
    /// `tandem.db` in `data_dir` (created when missing). Does not migrate.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Store::open_postgres(url).await,
            Some(url) => Store::open_sqlite_url(url).await,
            None => {
                std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir { path: data_dir.to_path_buf(), source })?;
                Store::open_sqlite_file(&data_dir.join("tandem.db")).await
            }
        }
    }

    pub async fn open_sqlite_file(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        Store::open_sqlite(options, &path.display().to_string()).await
    }

    async fn open_sqlite_url(url: &str) -> Result<Store> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect { location: "the SQLite URL in DATABASE_URL".into(), source })?;
        Store::open_sqlite(options.create_if_missing(true), "the SQLite URL in DATABASE_URL").await
    }

    async fn open_sqlite(options: SqliteConnectOptions, location: &str) -> Result<Store> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { location: location.to_string(), source })?;
        Ok(Store { db: Db::Sqlite(pool), statistics: Arc::default() })
    }

    pub async fn open_postgres(url: &str) -> Result<Store> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect { location: "the Postgres URL in DATABASE_URL".into(), source })?;
        Store::open_postgres_with(options).await
    }

    pub async fn open_postgres_with(options: PgConnectOptions) -> Result<Store> {
        // The URL may hold a password: name the host only.
        let location = format!("Postgres at {}:{}", options.get_host(), options.get_port());
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { location, source })?;
        Ok(Store { db: Db::Postgres(pool), statistics: Arc::default() })
    }

    /// Brings the schema up to date. A failure must stop the process: a half-migrated database
    /// is never served.
    pub async fn migrate(&self) -> Result<()> {
        on_pool!(self, |pool| MIGRATOR.run(pool).await)?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, exec | pool | sqlx::query("SELECT 1").execute(pool).await)?;
        Ok(())
    }

    /// On Postgres: counts rows written to the engine's tables and refreshes the planner's
    /// statistics of them in the background when the count has doubled (see [`Statistics`]).
    fn written(&self, rows: usize) {
        let Db::Postgres(pool) = &self.db else { return };
        let written = self.statistics.written.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        let next = self.statistics.next.load(Ordering::Relaxed);
        if written < next || self.statistics.next.compare_exchange(next, written * 2, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("ANALYZE sync_records, record_events").execute(&pool).await {
                tracing::warn!(error = %e, "could not refresh the statistics of the identity map");
            }
        });
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

//! Throwaway databases for tests and benchmarks: a fresh SQLite file in a temporary folder, or a
//! fresh Postgres database on a server the caller names. Each is dropped afterwards.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{Backend, Result, Store, StoreError};

/// The Postgres server tests use unless `TANDEM_TEST_POSTGRES_URL` names another.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct ScratchDatabase {
    /// What `DATABASE_URL` would be to open this database.
    pub url: String,
    pub store: Store,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin: Box<PgConnectOptions>, name: String },
}

impl ScratchDatabase {
    /// A migrated, empty database of the given kind.
    pub async fn create(backend: Backend) -> Result<ScratchDatabase> {
        let scratch = match backend {
            Backend::Sqlite => Self::sqlite().await?,
            Backend::Postgres => {
                let admin = std::env::var("TANDEM_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string());
                Self::postgres(&admin).await?
            }
        };
        scratch.store.migrate().await?;
        Ok(scratch)
    }

    async fn sqlite() -> Result<ScratchDatabase> {
        let dir = std::env::temp_dir().join(format!("tandem-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::DataDir { path: dir.clone(), source })?;
        let file = dir.join("tandem.db");
        let store = Store::open_sqlite_file(&file).await?;
        Ok(ScratchDatabase { url: format!("sqlite://{}", file.display()), store, cleanup: Some(Cleanup::Sqlite(dir)) })
    }

    async fn postgres(admin_url: &str) -> Result<ScratchDatabase> {
        let connect_error = |source| StoreError::Connect { location: "the test Postgres server".into(), source };
        let admin = PgConnectOptions::from_str(admin_url).map_err(connect_error)?;
        let name = format!("tandem_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.map_err(connect_error)?;
        // `name` is ours (a fixed prefix and hex digits), so it is safe to splice in.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        conn.close().await?;
        let url = format!("postgres://{}@{}:{}/{}", admin.get_username(), admin.get_host(), admin.get_port(), name);
        let store = Store::open_postgres_with(admin.clone().database(&name)).await?;
        Ok(ScratchDatabase { url, store, cleanup: Some(Cleanup::Postgres { admin: Box::new(admin), name }) })
    }

    /// Closes the store and removes the database now.
    pub async fn destroy(mut self) {
        self.store.close().await;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.run().await;
        }
    }
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin, name } => {
                if let Ok(mut conn) = admin.connect().await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
                        eprintln!("could not drop scratch database {name}: {e}");
                    }
                    let _ = conn.close().await;
                }
            }
        }
    }
}

impl Drop for ScratchDatabase {
    /// A test that panicked before `destroy` still leaves nothing behind.
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(cleanup.run());
                }
            })
            .join();
        }
    }
}

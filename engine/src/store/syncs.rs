//! Syncs and the versions of their settings.

use super::{on_pool, Result, Store, StoreError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SyncRow {
    pub id: String,
    pub connection_id: String,
    pub object: String,
    pub status: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub settings: String,
    pub saved_by_name: String,
    pub saved_at: i64,
}

/// A version of a sync's settings about to be saved.
#[derive(Clone, Copy)]
pub struct NewSettingsVersion<'a> {
    /// The id the sync gets if this is its first version.
    pub new_id: &'a str,
    pub connection_id: &'a str,
    pub object: &'a str,
    /// JSON.
    pub settings: &'a str,
    pub user_id: &'a str,
    pub user_name: &'a str,
}

const SELECT: &str = "SELECT s.id, s.connection_id, s.object, s.status, s.version, s.created_at, s.updated_at, \
         v.settings, v.saved_by_name, v.saved_at \
     FROM syncs s JOIN sync_settings v ON v.sync_id = s.id AND v.version = s.version";

impl Store {
    /// Saves `settings` as the next version of the sync of `object` for `connection_id` (creating
    /// the sync, turned on, when it is the first), in one transaction. Answers (sync id, version).
    pub async fn save_sync_settings(&self, v: &NewSettingsVersion<'_>, now: i64) -> Result<(String, i64)> {
        let NewSettingsVersion { new_id, connection_id, object, settings, user_id, user_name } = *v;
        macro_rules! save {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(
                    "INSERT INTO syncs (id, connection_id, object, status, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, 'on', 0, $4, $4) ON CONFLICT (connection_id, object) DO NOTHING",
                )
                .bind(new_id)
                .bind(connection_id)
                .bind(object)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Taking the next version under the row's write lock serialises concurrent saves.
                let (id, version): (String, i64) = sqlx::query_as(
                    "UPDATE syncs SET version = version + 1, updated_at = $3 WHERE connection_id = $1 AND object = $2 \
                     RETURNING id, version",
                )
                .bind(connection_id)
                .bind(object)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO sync_settings (sync_id, version, settings, saved_by, saved_by_name, saved_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&id)
                .bind(version)
                .bind(settings)
                .bind(user_id)
                .bind(user_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((id, version))
            }};
        }
        on_pool!(self, |pool| save!(pool)).map_err(StoreError::from)
    }

    pub async fn sync(&self, id: &str) -> Result<Option<SyncRow>> {
        let sql = format!("{SELECT} WHERE s.id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SyncRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)?)
    }

    /// Every sync with its settings in force, oldest first.
    pub async fn syncs(&self) -> Result<Vec<SyncRow>> {
        let sql = format!("{SELECT} ORDER BY s.created_at, s.id");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SyncRow>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?)
    }

    /// Sets a sync's status; true when it changed.
    pub async fn set_sync_status(&self, id: &str, status: &str, now: i64) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE syncs SET status = $2, updated_at = $3 WHERE id = $1 AND status <> $2")
                    .bind(id)
                    .bind(status)
                    .bind(now)
                    .execute(pool)
                    .await
        )?;
        Ok(n == 1)
    }
}

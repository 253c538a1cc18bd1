//! The audit log: who did what, when.

use super::{on_pool, Result, Store};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub target: Option<String>,
    pub summary: String,
}

impl Store {
    pub async fn insert_audit(&self, row: &AuditRow) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO audit_log (id, at, actor_id, actor_name, action, target, summary) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                )
                .bind(&row.id)
                .bind(row.at)
                .bind(&row.actor_id)
                .bind(&row.actor_name)
                .bind(&row.action)
                .bind(&row.target)
                .bind(&row.summary)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// Newest first, `limit` entries older than the `before` cursor (`at`, `id`) when given.
    pub async fn audit_page(&self, before: Option<(i64, &str)>, limit: i64) -> Result<Vec<AuditRow>> {
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        let unbounded = before.is_none();
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor_id, actor_name, action, target, summary FROM audit_log \
             WHERE $1 OR at < $2 OR (at = $2 AND id < $3) ORDER BY at DESC, id DESC LIMIT $4"
        )
        .bind(unbounded)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }
}

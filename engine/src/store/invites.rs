use super::{on_pool, Result, Store, UserRow};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InviteRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub expires_at: i64,
}

impl Store {
    /// Replaces any earlier invitation of this user: only the newest link works.
    pub async fn replace_invite(&self, token_hash: &str, user_id: &str, created_by: &str, now: i64, expires_at: i64) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM invites WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO invites (token_hash, user_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash)
                .bind(user_id)
                .bind(created_by)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// The pending invitation with this digest, if it is still valid.
    pub async fn invite(&self, token_hash: &str, now: i64) -> Result<Option<InviteRow>> {
        let row = on_pool!(self, |pool| sqlx::query_as::<_, InviteRow>(
            "SELECT u.id, u.email, u.name, u.role, u.password_hash, u.created_at, u.last_login_at, i.expires_at \
             FROM invites i JOIN users u ON u.id = i.user_id \
             WHERE i.token_hash = $1 AND i.expires_at > $2 AND u.password_hash IS NULL"
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
        Ok(row)
    }

    /// Uses an invitation up: `false` when it was already used (or never existed).
    pub async fn take_invite(&self, token_hash: &str) -> Result<bool> {
        let done =
            on_pool!(self, exec | pool | sqlx::query("DELETE FROM invites WHERE token_hash = $1").bind(token_hash).execute(pool).await)?;
        Ok(done == 1)
    }
}

use super::{on_pool, Result, Store, UserRow};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub started_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct SessionWithUser {
    #[sqlx(flatten)]
    user: UserRow,
    #[sqlx(flatten)]
    session: SessionRow,
}

impl Store {
    pub async fn insert_session(&self, token_hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)"
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// The live session with this digest and its user (active users only).
    pub async fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<(UserRow, SessionRow)>> {
        let row = on_pool!(self, |pool| sqlx::query_as::<_, SessionWithUser>(
            "SELECT u.id, u.email, u.name, u.role, u.password_hash, u.created_at, u.last_login_at, \
                    s.created_at AS started_at, s.last_seen_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.password_hash IS NOT NULL"
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|r| (r.user, r.session)))
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3")
                    .bind(now)
                    .bind(expires_at)
                    .bind(token_hash)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, exec | pool | sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await)?;
        Ok(())
    }

    /// Ends every session of a user (after a role change, so the new role applies at once).
    pub async fn delete_sessions_of(&self, user_id: &str) -> Result<u64> {
        let done = on_pool!(self, exec | pool | sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(pool).await)?;
        Ok(done)
    }

    /// Forgets expired sessions, invitations and stale login failures; returns how many rows went.
    pub async fn purge_expired(&self, now: i64, stale_failures_before: i64) -> Result<u64> {
        let n = on_pool!(self, |pool| {
            let a = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
            let b = sqlx::query("DELETE FROM invites WHERE expires_at <= $1").bind(now).execute(pool).await?;
            let d = sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1").bind(now).execute(pool).await?;
            let c = sqlx::query("DELETE FROM login_throttle WHERE locked_until <= $1 AND last_failure_at < $2")
                .bind(now)
                .bind(stale_failures_before)
                .execute(pool)
                .await?;
            // A browser unseen for longer than its cookie lives (400 days) is no longer known.
            let e = sqlx::query("DELETE FROM known_devices WHERE last_used_at < $1").bind(now - 400 * 24 * 3_600_000).execute(pool).await?;
            Ok::<u64, sqlx::Error>(a.rows_affected() + b.rows_affected() + c.rows_affected() + d.rows_affected() + e.rows_affected())
        })?;
        Ok(n)
    }
}

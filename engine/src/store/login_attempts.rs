use super::{on_pool, Result, Store};

impl Store {
    /// Until when logins for this email are refused (Unix ms), when they are.
    pub async fn login_locked_until(&self, email: &str, now: i64) -> Result<Option<i64>> {
        let until: Option<i64> =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT locked_until FROM login_attempts WHERE email = $1 AND locked_until > $2")
                .bind(email)
                .bind(now)
                .fetch_optional(pool)
                .await)?;
        Ok(until)
    }

    /// Counts one more consecutive failure and returns the new count.
    pub async fn record_login_failure(&self, email: &str, now: i64) -> Result<i64> {
        let failures: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO login_attempts (email, failures, last_failure_at, locked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (email) DO UPDATE SET failures = login_attempts.failures + 1, last_failure_at = $2 \
             RETURNING failures"
        )
        .bind(email)
        .bind(now)
        .fetch_one(pool)
        .await)?;
        Ok(failures)
    }

    pub async fn lock_login(&self, email: &str, until: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE login_attempts SET locked_until = $1 WHERE email = $2").bind(until).bind(email).execute(pool).await
        )?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, email: &str) -> Result<()> {
        on_pool!(self, exec | pool | sqlx::query("DELETE FROM login_attempts WHERE email = $1").bind(email).execute(pool).await)?;
        Ok(())
    }
}

//! Login throttling per email and client, and the browsers that have signed in before.

use super::{on_pool, Result, Store};

/// What a sign-in attempt found when it was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginClaim {
    /// Counted: the consecutive failures this attempt makes if it fails.
    Counted { failures: i64 },
    /// Refused until then (Unix ms); not counted.
    Locked { until: i64 },
}

impl Store {
    /// Counts an attempt for `email` from `client` before its password is checked, so that
    /// parallel guesses count too. From the `threshold`th failure on, the attempt also holds the
    /// lock until `hold_until` while its password is checked: attempts that arrive meanwhile are
    /// refused without a hash. The caller then sets the lock it decides on, or clears it.
    pub async fn claim_login_attempt(&self, email: &str, client: &str, now: i64, threshold: i64, hold_until: i64) -> Result<LoginClaim> {
        let counted: Option<i64> = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO login_throttle (email, client, failures, last_failure_at, locked_until) VALUES ($1, $2, 0, $3, 0) \
                 ON CONFLICT (email, client) DO NOTHING",
            )
            .bind(email)
            .bind(client)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query_scalar(
                "UPDATE login_throttle SET failures = failures + 1, last_failure_at = $3, \
                 locked_until = CASE WHEN failures + 1 >= $4 THEN $5 ELSE locked_until END \
                 WHERE email = $1 AND client = $2 AND locked_until <= $3 RETURNING failures",
            )
            .bind(email)
            .bind(client)
            .bind(now)
            .bind(threshold)
            .bind(hold_until)
            .fetch_optional(pool)
            .await
        })?;
        if let Some(failures) = counted {
            return Ok(LoginClaim::Counted { failures });
        }
        let until: Option<i64> =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE email = $1 AND client = $2")
                .bind(email)
                .bind(client)
                .fetch_optional(pool)
                .await)?;
        Ok(LoginClaim::Locked { until: until.unwrap_or(now) })
    }

    pub async fn lock_login(&self, email: &str, client: &str, until: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE email = $2 AND client = $3")
                    .bind(until)
                    .bind(email)
                    .bind(client)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, email: &str, client: &str) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("DELETE FROM login_throttle WHERE email = $1 AND client = $2").bind(email).bind(client).execute(pool).await
        )?;
        Ok(())
    }

    /// Forgets every failure and lock of `email` (`tandem users unlock`); returns how many
    /// clients were counted.
    pub async fn unlock_logins(&self, email: &str) -> Result<u64> {
        let done =
            on_pool!(self, exec | pool | sqlx::query("DELETE FROM login_throttle WHERE email = $1").bind(email).execute(pool).await)?;
        Ok(done)
    }

    /// Remembers a browser that signed in as `user_id`.
    pub async fn insert_known_device(&self, token_hash: &str, user_id: &str, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("INSERT INTO known_devices (token_hash, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)")
                    .bind(token_hash)
                    .bind(user_id)
                    .bind(now)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }

    /// The user a known browser signed in as.
    pub async fn known_device_user(&self, token_hash: &str) -> Result<Option<String>> {
        let user: Option<String> = on_pool!(self, |pool| sqlx::query_scalar("SELECT user_id FROM known_devices WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        Ok(user)
    }

    pub async fn touch_known_device(&self, token_hash: &str, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE known_devices SET last_used_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(token_hash)
                    .execute(pool)
                    .await
        )?;
        Ok(())
    }
}

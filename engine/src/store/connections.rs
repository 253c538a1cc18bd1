//! Connected provider accounts and their sealed credentials.

use super::{on_pool, Result, Store};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub provider: String,
    pub account_id: String,
    pub account_name: String,
    pub account_domain: Option<String>,
    pub api_base: String,
    /// The accounts server of the account's data centre (Zoho), where its tokens are refreshed
    /// and revoked; `None` where the provider has one.
    pub accounts_server: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub scopes: String,
    /// Sealed; see `crypto::SecretBox`.
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<i64>,
    pub installed_by: Option<String>,
    pub installed_by_name: String,
    pub installed_at: i64,
    pub updated_at: i64,
    /// The HubSpot connection an app's connection syncs with (`None` for HubSpot's own, and for
    /// an app installed before any HubSpot account was connected).
    pub hub_connection_id: Option<String>,
}

/// An account just authorized, with its sealed tokens.
#[derive(Debug)]
pub struct AuthorizedAccount<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub account_domain: Option<&'a str>,
    pub api_base: &'a str,
    pub accounts_server: Option<&'a str>,
    pub scopes: &'a str,
    pub access_token: &'a str,
    pub refresh_token: &'a str,
    pub access_expires_at: i64,
    pub user_id: &'a str,
    pub user_name: &'a str,
    /// For an app: the HubSpot connection it syncs with. A connection that has one keeps it.
    pub hub_connection_id: Option<&'a str>,
}

const COLUMNS: &str = "id, provider, account_id, account_name, account_domain, api_base, accounts_server, status, status_reason, scopes, \
     access_token, refresh_token, access_expires_at, installed_by, installed_by_name, installed_at, updated_at, hub_connection_id";

impl Store {
    /// Records an authorization: a new connection, or fresh credentials for the connection that
    /// already holds this provider account (reconnecting it, or reinstalling it after an
    /// uninstall, which keeps its sync settings and history). Answers the connection's id.
    pub async fn save_authorized_account(&self, a: &AuthorizedAccount<'_>, now: i64) -> Result<String> {
        let sql = "INSERT INTO connections (id, provider, account_id, account_name, account_domain, api_base, status, \
                       status_reason, scopes, access_token, refresh_token, access_expires_at, refresh_claimed_until, \
                       installed_by, installed_by_name, installed_at, updated_at, accounts_server, hub_connection_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, 'connected', NULL, $7, $8, $9, $10, NULL, $11, $12, $13, $13, $14, $15) \
                   ON CONFLICT (provider, account_id) DO UPDATE SET \
                       account_name = excluded.account_name, account_domain = excluded.account_domain, \
                       api_base = excluded.api_base, accounts_server = excluded.accounts_server, scopes = excluded.scopes, \
                       access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
                       access_expires_at = excluded.access_expires_at, refresh_claimed_until = NULL, \
                       installed_by = CASE WHEN connections.status = 'uninstalled' THEN excluded.installed_by ELSE connections.installed_by END, \
                       installed_by_name = CASE WHEN connections.status = 'uninstalled' THEN excluded.installed_by_name ELSE connections.installed_by_name END, \
                       installed_at = CASE WHEN connections.status = 'uninstalled' THEN excluded.installed_at ELSE connections.installed_at END, \
                       hub_connection_id = COALESCE(connections.hub_connection_id, excluded.hub_connection_id), \
                       status = 'connected', status_reason = NULL, updated_at = excluded.updated_at \
                   RETURNING id";
        let id: (String,) = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(a.id)
            .bind(a.provider)
            .bind(a.account_id)
            .bind(a.account_name)
            .bind(a.account_domain)
            .bind(a.api_base)
            .bind(a.scopes)
            .bind(a.access_token)
            .bind(a.refresh_token)
            .bind(a.access_expires_at)
            .bind(a.user_id)
            .bind(a.user_name)
            .bind(now)
            .bind(a.accounts_server)
            .bind(a.hub_connection_id)
            .fetch_one(pool)
            .await)?;
        Ok(id.0)
    }

    /// Apps installed before any HubSpot account was connected join `hub_connection_id`, the
    /// first one connected.
    pub async fn adopt_apps_without_hubspot(&self, hub_connection_id: &str) -> Result<u64> {
        Ok(on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE connections SET hub_connection_id = $1 WHERE provider <> 'hubspot' AND hub_connection_id IS NULL")
                    .bind(hub_connection_id)
                    .execute(pool)
                    .await
        )?)
    }

    pub async fn connection(&self, id: &str) -> Result<Option<ConnectionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM connections WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ConnectionRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)?)
    }

    /// Every connection, installed apps and uninstalled ones, oldest first.
    pub async fn connections(&self) -> Result<Vec<ConnectionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM connections ORDER BY installed_at, id");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ConnectionRow>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?)
    }

    /// Takes the refresh lease when nobody holds it and the sealed access token is still
    /// `access_token`, the one the caller read: true when this caller may refresh. (Saving
    /// refreshed tokens frees the lease: a caller that read the row before another instance's
    /// refresh landed must not take the lease and refresh again with a rotated refresh token.)
    pub async fn claim_refresh(&self, id: &str, now: i64, until: i64, access_token: &str) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE connections SET refresh_claimed_until = $3 \
             WHERE id = $1 AND status = 'connected' AND (refresh_claimed_until IS NULL OR refresh_claimed_until < $2) \
             AND access_token = $4"
                )
                .bind(id)
                .bind(now)
                .bind(until)
                .bind(access_token)
                .execute(pool)
                .await
        )?;
        Ok(n == 1)
    }

    /// Until when an instance holds the connection's refresh lease (Unix ms), if one does.
    pub async fn refresh_claimed_until(&self, id: &str) -> Result<Option<i64>> {
        let until: Option<Option<i64>> =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT refresh_claimed_until FROM connections WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await)?;
        Ok(until.flatten())
    }

    pub async fn release_refresh(&self, id: &str) -> Result<()> {
        on_pool!(
            self,
            exec | pool | sqlx::query("UPDATE connections SET refresh_claimed_until = NULL WHERE id = $1").bind(id).execute(pool).await
        )?;
        Ok(())
    }

    /// Stores refreshed (sealed) tokens and releases the refresh lease.
    pub async fn save_refreshed_tokens(&self, id: &str, access: &str, refresh: &str, expires_at: i64, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE connections SET access_token = $2, refresh_token = $3, access_expires_at = $4, \
                 refresh_claimed_until = NULL, updated_at = $5 \
             WHERE id = $1 AND status = 'connected'"
                )
                .bind(id)
                .bind(access)
                .bind(refresh)
                .bind(expires_at)
                .bind(now)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// Marks a connected account as needing the admin to reconnect it; true when this call
    /// changed it (so the change is recorded once).
    pub async fn mark_needs_reconnection(&self, id: &str, reason: &str, now: i64) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE connections SET status = 'needs_reconnection', status_reason = $2, refresh_claimed_until = NULL, \
                 updated_at = $3 \
             WHERE id = $1 AND status = 'connected'"
                )
                .bind(id)
                .bind(reason)
                .bind(now)
                .execute(pool)
                .await
        )?;
        Ok(n == 1)
    }

    /// Deletes the credentials and marks the connection uninstalled (its settings and history
    /// stay). True when this call changed it.
    pub async fn uninstall_connection(&self, id: &str, now: i64) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE connections SET status = 'uninstalled', status_reason = NULL, access_token = NULL, \
                 refresh_token = NULL, access_expires_at = NULL, refresh_claimed_until = NULL, updated_at = $2 \
             WHERE id = $1 AND status <> 'uninstalled'"
                )
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
        )?;
        Ok(n == 1)
    }
}

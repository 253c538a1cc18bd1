//! OAuth authorizations in progress.

use super::{on_pool, Result, Store};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OAuthStateRow {
    pub session_hash: String,
    pub user_id: String,
    pub provider: String,
    pub connection_id: Option<String>,
    /// Sealed.
    pub pkce_verifier: String,
    pub expires_at: i64,
    /// The HubSpot connection an app's install was started for.
    pub hub_connection_id: Option<String>,
}

pub struct NewOAuthState<'a> {
    pub state_hash: &'a str,
    pub session_hash: &'a str,
    pub user_id: &'a str,
    pub provider: &'a str,
    pub connection_id: Option<&'a str>,
    pub pkce_verifier: &'a str,
    pub expires_at: i64,
    pub hub_connection_id: Option<&'a str>,
}

impl Store {
    pub async fn insert_oauth_state(&self, s: &NewOAuthState<'_>, now: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO oauth_states (state_hash, session_hash, user_id, provider, connection_id, pkce_verifier, \
                 created_at, expires_at, hub_connection_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                )
                .bind(s.state_hash)
                .bind(s.session_hash)
                .bind(s.user_id)
                .bind(s.provider)
                .bind(s.connection_id)
                .bind(s.pkce_verifier)
                .bind(now)
                .bind(s.expires_at)
                .bind(s.hub_connection_id)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// Removes and answers the state: whoever takes it first is the only one who can use it.
    pub async fn take_oauth_state(&self, state_hash: &str) -> Result<Option<OAuthStateRow>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, OAuthStateRow>(
            "DELETE FROM oauth_states WHERE state_hash = $1 \
             RETURNING session_hash, user_id, provider, connection_id, pkce_verifier, expires_at, hub_connection_id"
        )
        .bind(state_hash)
        .fetch_optional(pool)
        .await)?)
    }
}

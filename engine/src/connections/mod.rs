//! Connecting provider accounts to Tandem: the OAuth 2.0 install flow (authorization code with
//! PKCE, a single-use `state` bound to the admin's session that expires in 10 minutes, the exact
//! redirect URI), credentials sealed at rest and refreshed ahead of expiry one at a time, and
//! uninstalling. Installs, reconnects, uninstalls and lost authorizations go to the audit log.

mod audit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::apps::{AppListing, ConnectionStatus, ConnectionSummary, InstallResult};
use model::SessionUser;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, MINUTE_MS};
use crate::connectors::{self, Account, ClientAuth, ConnectorError, Provider, ProviderConfig};
use crate::crypto::SecretBox;
use crate::secret::{new_id, Token};
use crate::store::{AuthorizedAccount, ConnectionRow, NewOAuthState, Store, StoreError};

/// How long an admin has to finish signing in on the provider's page.
pub const STATE_TTL_MS: i64 = 10 * MINUTE_MS;
/// Access tokens are refreshed when they have less than this left.
pub const REFRESH_MARGIN_MS: i64 = 5 * MINUTE_MS;
/// How long one instance may hold a connection's refresh before another may take over: twice
/// the longest a refresh can take (one token request, bounded by the HTTP client's timeout, and
/// the write of its result), counted from when the lease is taken. It was 30 s from when the
/// caller began waiting: a token endpoint that took 31 s let a second instance refresh a
/// rotating Pipedrive token the first was still refreshing.
pub const REFRESH_LEASE_MS: i64 = 2 * connectors::HTTP_TIMEOUT.as_millis() as i64;
/// How long a caller waits for a refresh another instance is doing: past its lease.
const REFRESH_WAIT: Duration = Duration::from_millis(REFRESH_LEASE_MS as u64 + 5_000);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("There is no app called {0:?} in the Marketplace.")]
    UnknownApp(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("That connection does not exist.")]
    NotFound,
    #[error("Choose the HubSpot account this app syncs with. If none is offered, reload the page: HubSpot accounts were connected or uninstalled meanwhile.")]
    ChooseHubSpot,
    #[error("{0}")]
    NeedsReconnection(String),
    #[error("This app was uninstalled; install it again to use it.")]
    Uninstalled,
    #[error("{provider} did not issue a token: {detail}")]
    Token { provider: &'static str, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the provider sent back to the redirect URI.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The accounts server of the admin's data centre (Zoho), where the code is exchanged: used
    /// only when the provider's connector accepts it as its own.
    #[serde(default, rename = "accounts-server")]
    pub accounts_server: Option<String>,
}

/// How a callback ended, for the redirect back to the app's page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub result: InstallResult,
    pub connection_id: Option<String>,
}

/// A usable access token for one connection. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub api_base: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("api_base", &self.api_base).field("expires_at", &self.expires_at).finish()
    }
}

/// What uninstalling did at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uninstalled {
    pub provider_name: String,
    /// Why access could not be revoked at the provider, when it could not.
    pub revoke_failed: Option<String>,
}

/// Extra fields of a token answer: Pipedrive and Zoho name the account's API host.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ProviderTokenFields {
    #[serde(default)]
    pub api_domain: Option<String>,
}

impl ExtraTokenFields for ProviderTokenFields {}

type ProviderTokenResponse = StandardTokenResponse<ProviderTokenFields, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;
type TokenError = RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>;

#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    secrets: SecretBox,
    providers: Vec<ProviderConfig>,
    http: reqwest::Client,
    public_url: String,
    /// One refresh at a time per connection within this process (the store's lease covers
    /// several instances).
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Each connection's rate limiter, shared by everything this server calls the provider for
    /// (the engine's runs and the sync setup's reads).
    limiters: connectors::http::Limiters,
}

impl Connections {
    pub fn new(store: Store, secrets: SecretBox, providers: Vec<ProviderConfig>, public_url: &str) -> Connections {
        let limiters = connectors::http::Limiters::new(store.clone());
        Connections {
            inner: Arc::new(Inner {
                store,
                secrets,
                providers,
                http: connectors::http_client(),
                public_url: public_url.trim_end_matches('/').to_string(),
                refreshing: Mutex::new(HashMap::new()),
                limiters,
            }),
        }
    }

    /// The rate limiter of a connection: every call this server makes for it waits its turn.
    pub fn limiter(&self, connection_id: &str) -> Arc<connectors::http::Limiter> {
        self.inner.limiters.of(connection_id)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn provider(&self, key: &str) -> Option<&ProviderConfig> {
        let provider = Provider::parse(key)?;
        self.inner.providers.iter().find(|c| c.provider == provider)
    }

    /// The Marketplace: every app Tandem has a connector for.
    pub fn catalogue(&self) -> Vec<AppListing> {
        self.inner.providers.iter().filter_map(ProviderConfig::listing).collect()
    }

    pub fn listing(&self, key: &str) -> Option<AppListing> {
        self.provider(key).and_then(ProviderConfig::listing)
    }

    /// The provider's name as the console shows it ("Pipedrive (Sandbox)").
    pub fn display_name(&self, key: &str) -> String {
        self.provider(key).map(ProviderConfig::display_name).unwrap_or_else(|| key.to_string())
    }

    /// Where the provider sends the admin back: registered with the provider exactly so.
    /// Where providers deliver webhooks for a connection: one target per connection for apps
    /// whose webhooks Tandem registers (`{public_url}/webhooks/{app}/{connection}`), else the
    /// app-wide one (HubSpot's `{public_url}/webhooks/hubspot`).
    pub fn webhook_url(&self, provider: Provider, connection_id: &str) -> String {
        if provider.registers_webhooks() {
            format!("{}/webhooks/{}/{connection_id}", self.inner.public_url, provider.key())
        } else {
            format!("{}/webhooks/{}", self.inner.public_url, provider.key())
        }
    }

    /// The user and password an app sends with webhooks for a connection (derived from the
    /// secret key, so every instance checks them alike without storing them).
    pub fn webhook_credentials(&self, provider: Provider, connection_id: &str) -> (String, String) {
        ("tandem".to_string(), self.inner.secrets.derive(&format!("{}-webhook:{connection_id}", provider.key())))
    }

    pub fn redirect_uri(&self, provider: Provider) -> String {
        format!("{}/oauth/callback/{}", self.inner.public_url, provider.key())
    }

    fn configured(&self, key: &str) -> Result<&ProviderConfig, ConnectionError> {
        let config = self.provider(key).ok_or_else(|| ConnectionError::UnknownApp(key.to_string()))?;
        match config.unavailable() {
            Some(reason) => Err(ConnectionError::Unavailable(reason)),
            None => Ok(config),
        }
    }

    fn oauth_client(&self, config: &ProviderConfig) -> Result<OAuthClient, ConnectionError> {
        let invalid = |what: &str, e: url::ParseError| {
            ConnectionError::Unavailable(format!(
                "{} is misconfigured on this Tandem server: its {what} is not a valid URL ({e}).",
                config.display_name()
            ))
        };
        Ok(oauth2::Client::new(ClientId::new(config.client_id.clone().unwrap_or_default()))
            .set_client_secret(ClientSecret::new(config.client_secret.clone().unwrap_or_default()))
            .set_auth_uri(AuthUrl::new(config.authorize_url.clone()).map_err(|e| invalid("authorization URL", e))?)
            .set_token_uri(TokenUrl::new(config.token_url.clone()).map_err(|e| invalid("token URL", e))?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri(config.provider)).map_err(|e| invalid("redirect URL", e))?)
            .set_auth_type(match config.provider.client_auth() {
                ClientAuth::RequestBody => AuthType::RequestBody,
                ClientAuth::BasicAuth => AuthType::BasicAuth,
            }))
    }

    /// Starts installing `app` (or reconnecting `reconnect`) for `user`, whose session is
    /// `session`: answers the provider's authorization URL to send the browser to.
    /// An app's install is for the HubSpot account `hub` (a HubSpot connection's id): needed
    /// when several are connected, the only one otherwise.
    pub async fn start(
        &self,
        user: &SessionUser,
        session: &Token,
        app: &str,
        reconnect: Option<&str>,
        hub: Option<&str>,
    ) -> Result<String, ConnectionError> {
        let config = self.configured(app)?;
        if let Some(id) = reconnect {
            let row = self.inner.store.connection(id).await?.ok_or(ConnectionError::NotFound)?;
            if row.provider != config.provider.key() {
                return Err(ConnectionError::NotFound);
            }
        }
        let hub = match (config.provider == Provider::HUBSPOT || reconnect.is_some(), hub) {
            (true, _) => None,
            (false, hub) => self.hub_for_install(hub).await?,
        };
        let client = self.oauth_client(config)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = Token::generate();
        let state_value = state.expose().to_string();
        let scopes = config.provider.scopes().iter().map(|(s, _)| *s);
        let mut request = client.authorize_url(move || CsrfToken::new(state_value)).set_pkce_challenge(challenge);
        request = match config.provider.scope_separator() {
            " " => request.add_scopes(scopes.map(|s| Scope::new(s.to_string()))),
            separator => request.add_extra_param("scope", scopes.collect::<Vec<_>>().join(separator)),
        };
        for (name, value) in config.provider.authorize_params() {
            request = request.add_extra_param(*name, *value);
        }
        let (url, _) = request.url();
        let now = now_ms();
        let state_hash = state.digest();
        self.inner
            .store
            .insert_oauth_state(
                &NewOAuthState {
                    state_hash: &state_hash,
                    session_hash: &session.digest(),
                    user_id: &user.id,
                    provider: config.provider.key(),
                    connection_id: reconnect,
                    pkce_verifier: &self.inner.secrets.seal(verifier.secret(), &state_context(&state_hash)),
                    expires_at: now + STATE_TTL_MS,
                    hub_connection_id: hub.as_deref(),
                },
                now,
            )
            .await?;
        tracing::info!(provider = config.provider.key(), user_id = %user.id, reconnect = reconnect.is_some(), "OAuth install started");
        Ok(url.to_string())
    }

    /// Finishes an install at the redirect URI. Nothing is stored unless every check passes:
    /// the state exists (single use), is this provider's, has not expired, and was started by
    /// this session; the provider granted access; the code exchange (with the PKCE verifier)
    /// succeeded; and the account could be identified.
    pub async fn complete(
        &self,
        app: &str,
        session: Option<(&SessionUser, &Token)>,
        params: &CallbackParams,
    ) -> Result<Completion, ConnectionError> {
        let config = self.provider(app).ok_or_else(|| ConnectionError::UnknownApp(app.to_string()))?;
        let fail = |result: InstallResult| Ok(Completion { result, connection_id: None });
        let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
            tracing::warn!(provider = app, "OAuth callback without state refused");
            return fail(InstallResult::StateInvalid);
        };
        let state_hash = Token::from_presented(state).digest();
        let Some(pending) = self.inner.store.take_oauth_state(&state_hash).await? else {
            tracing::warn!(provider = app, "OAuth callback with an unknown or already used state refused");
            return fail(InstallResult::StateInvalid);
        };
        if pending.provider != config.provider.key() {
            tracing::warn!(provider = app, started_for = %pending.provider, "OAuth callback for another provider refused");
            return fail(InstallResult::StateInvalid);
        }
        if pending.expires_at <= now_ms() {
            return fail(InstallResult::StateExpired);
        }
        let Some((user, _)) = session.filter(|(u, token)| token.digest() == pending.session_hash && u.id == pending.user_id) else {
            tracing::warn!(provider = app, "OAuth callback from another session refused");
            return fail(InstallResult::OtherSession);
        };
        if let Some(error) = &params.error {
            if error == "access_denied" {
                tracing::info!(provider = app, user_id = %user.id, "the admin denied access on the provider's page");
                return fail(InstallResult::Denied);
            }
            tracing::warn!(provider = app, error, description = ?params.error_description, "the provider refused the authorization");
            return fail(InstallResult::ExchangeFailed);
        }
        let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
            return fail(InstallResult::StateInvalid);
        };
        let Ok(verifier) = self.inner.secrets.open(&pending.pkce_verifier, &state_context(&state_hash)) else {
            tracing::error!(provider = app, "the stored PKCE verifier did not decrypt");
            return fail(InstallResult::StateInvalid);
        };

        // The admin's data centre, where the provider names one: the code is exchanged there,
        // and the connection's tokens refreshed and revoked there later. Never a host the
        // provider does not own: the client secret goes with the exchange.
        let accounts_server = match config.provider.accounts_server(config, params.accounts_server.as_deref()) {
            Ok(server) => server,
            Err(reason) => {
                tracing::warn!(provider = app, reason, "the callback named an accounts server that is not the provider's; install refused");
                return fail(InstallResult::ExchangeFailed);
            }
        };
        let at_server = accounts_server.as_deref().map(|server| config.provider.at_accounts_server(config, server));
        let client = self.oauth_client(at_server.as_ref().unwrap_or(config))?;
        let tokens = match client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.inner.http)
            .await
        {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::warn!(provider = app, error = %describe_token_error(&e), "the authorization code exchange failed");
                return fail(match e {
                    RequestTokenError::Request(_) => InstallResult::ProviderError,
                    _ => InstallResult::ExchangeFailed,
                });
            }
        };
        let Some(refresh) = tokens.refresh_token().map(|r| r.secret().clone()) else {
            tracing::warn!(provider = app, "the provider issued no refresh token");
            return fail(InstallResult::ExchangeFailed);
        };
        let access = tokens.access_token().secret().clone();
        let expires_at = now_ms() + tokens.expires_in().map(|d| d.as_millis() as i64).unwrap_or(30 * MINUTE_MS);
        let account = match self.identify(config, &access, tokens.extra_fields()).await {
            Ok(account) => account,
            Err(e) => {
                tracing::warn!(provider = app, error = %e, "could not identify the authorized account");
                return fail(InstallResult::AccountUnreadable);
            }
        };

        let existing = self.inner.store.connections().await?;
        if let Some(id) = &pending.connection_id {
            let original = existing.iter().find(|c| &c.id == id);
            if original.is_none_or(|c| c.account_id != account.id) {
                tracing::warn!(provider = app, "reconnect signed in to a different account; nothing changed");
                return fail(InstallResult::WrongAccount);
            }
        }
        let before = existing.iter().find(|c| c.provider == config.provider.key() && c.account_id == account.id);
        let reconnected = before.is_some_and(|c| c.status != ConnectionStatus::Uninstalled.as_str());
        // An app's account keeps the HubSpot account it was first linked to (its syncs' records
        // are linked there); a new one takes the account chosen at the start, still connected.
        let hub = if config.provider == Provider::HUBSPOT {
            None
        } else {
            let connected_hub = |id: &str| {
                existing
                    .iter()
                    .any(|c| c.id == id && c.provider == Provider::HUBSPOT.key() && c.status != ConnectionStatus::Uninstalled.as_str())
            };
            match (before.and_then(|c| c.hub_connection_id.clone()), pending.hub_connection_id.clone()) {
                (Some(linked), Some(chosen)) if linked != chosen => {
                    tracing::warn!(provider = app, "install for another HubSpot account than the app account's; nothing changed");
                    return fail(InstallResult::OtherHubSpotAccount);
                }
                (Some(linked), _) => Some(linked),
                (None, Some(chosen)) if !connected_hub(&chosen) => return fail(InstallResult::HubSpotGone),
                (None, Some(chosen)) => Some(chosen),
                // Started with no HubSpot account connected: the one connected since, if only one
                // (with several, none yet: it joins the next one connected).
                (None, None) => match self.hub_for_install(None).await {
                    Ok(hub) => hub,
                    Err(ConnectionError::ChooseHubSpot) => None,
                    Err(e) => return Err(e),
                },
            }
        };

        let provider_key = config.provider.key();
        let scopes = tokens
            .scopes()
            // Pipedrive lists its scopes with commas in one `scope` string.
            .map(|s| s.iter().flat_map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>()).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| config.provider.scopes().iter().map(|(s, _)| *s).collect::<Vec<_>>().join(" "));
        let id = self
            .inner
            .store
            .save_authorized_account(
                &AuthorizedAccount {
                    id: &new_id(),
                    provider: provider_key,
                    account_id: &account.id,
                    account_name: &account.name,
                    account_domain: account.domain.as_deref(),
                    api_base: &account.api_base,
                    accounts_server: accounts_server.as_deref(),
                    scopes: &scopes,
                    access_token: &self.inner.secrets.seal(&access, &token_context(provider_key, &account.id, "access_token")),
                    refresh_token: &self.inner.secrets.seal(&refresh, &token_context(provider_key, &account.id, "refresh_token")),
                    access_expires_at: expires_at,
                    user_id: &user.id,
                    user_name: &user.name,
                    hub_connection_id: hub.as_deref(),
                },
                now_ms(),
            )
            .await?;
        if config.provider == Provider::HUBSPOT {
            self.inner.store.adopt_apps_without_hubspot(&id).await?;
        }
        let name = config.display_name();
        let (action, verb, result) = if reconnected {
            ("app.reconnected", "Reconnected", InstallResult::Reconnected)
        } else {
            ("app.installed", "Installed", InstallResult::Installed)
        };
        self.audit(Some(user), action, Some(&id), format!("{verb} {name} for {}", account_label(&account.name, &account.id, provider_key)))
            .await?;
        tracing::info!(provider = provider_key, account_id = %account.id, connection_id = %id, action, "OAuth install completed");
        Ok(Completion { result, connection_id: Some(id) })
    }

    async fn identify(&self, config: &ProviderConfig, access: &str, extra: &ProviderTokenFields) -> Result<Account, ConnectorError> {
        config.provider.account(&self.inner.http, config, access, extra.api_domain.as_deref()).await
    }

    /// The HubSpot connection a new app install is for: `chosen` (a connected HubSpot account),
    /// or the only one when there is one; none when no HubSpot account is connected yet (the
    /// app joins the first one connected).
    async fn hub_for_install(&self, chosen: Option<&str>) -> Result<Option<String>, ConnectionError> {
        let hubs: Vec<ConnectionRow> = self
            .inner
            .store
            .connections()
            .await?
            .into_iter()
            .filter(|c| c.provider == Provider::HUBSPOT.key() && c.status != ConnectionStatus::Uninstalled.as_str())
            .collect();
        match chosen.filter(|c| !c.is_empty()) {
            Some(id) => hubs.iter().find(|h| h.id == id).map(|h| Some(h.id.clone())).ok_or(ConnectionError::ChooseHubSpot),
            None if hubs.len() > 1 => Err(ConnectionError::ChooseHubSpot),
            None => Ok(hubs.first().map(|h| h.id.clone())),
        }
    }

    /// Every connection, HubSpot first, then apps in the order they were installed.
    pub async fn list(&self) -> Result<Vec<ConnectionSummary>, ConnectionError> {
        let mut rows = self.inner.store.connections().await?;
        rows.sort_by_key(|r| r.provider != Provider::HUBSPOT.key());
        Ok(rows.iter().map(|r| self.summary(r)).collect())
    }

    pub async fn get(&self, id: &str) -> Result<ConnectionSummary, ConnectionError> {
        let row = self.inner.store.connection(id).await?.ok_or(ConnectionError::NotFound)?;
        Ok(self.summary(&row))
    }

    fn summary(&self, row: &ConnectionRow) -> ConnectionSummary {
        ConnectionSummary {
            id: row.id.clone(),
            provider: row.provider.clone(),
            provider_name: self.display_name(&row.provider),
            logo: self.provider(&row.provider).map_or("", ProviderConfig::logo).to_string(),
            account_kind: Provider::parse(&row.provider).map_or("account", |p| p.account_kind()).to_string(),
            account_id: row.account_id.clone(),
            account_name: row.account_name.clone(),
            account_domain: row.account_domain.clone(),
            status: ConnectionStatus::parse(&row.status).unwrap_or(ConnectionStatus::NeedsReconnection),
            status_reason: row.status_reason.clone(),
            scopes: row.scopes.split_whitespace().map(str::to_string).collect(),
            installed_by: row.installed_by_name.clone(),
            installed_at: row.installed_at,
            updated_at: row.updated_at,
            hub_connection_id: row.hub_connection_id.clone(),
        }
    }

    /// A valid access token for the connection, refreshed first when it has less than five
    /// minutes left.
    pub async fn access_token(&self, id: &str) -> Result<AccessToken, ConnectionError> {
        self.access_token_at(id, now_ms()).await
    }

    /// [`Connections::access_token`] as if the time were `now` (Unix ms). Concurrent callers
    /// share one refresh: the first takes this process's lock for the connection and the store's
    /// lease (for other instances); the others wait and use the token it got. A refresh refused
    /// with `invalid_grant` marks the connection **Needs reconnection** once; later calls fail
    /// at once without asking the provider again.
    pub async fn access_token_at(&self, id: &str, now: i64) -> Result<AccessToken, ConnectionError> {
        self.token_at(id, now, None).await
    }

    /// A new access token after the provider refused `rejected` (expired or revoked early):
    /// refreshed now, unless another caller already replaced it.
    pub async fn access_token_after_rejection(&self, id: &str, rejected: &AccessToken) -> Result<AccessToken, ConnectionError> {
        self.token_at(id, now_ms(), Some(&rejected.token)).await
    }

    async fn token_at(&self, id: &str, now: i64, rejected: Option<&str>) -> Result<AccessToken, ConnectionError> {
        let first = self.usable_row(id).await?;
        match rejected {
            None => {
                if let Some(token) = self.still_valid(&first, now)? {
                    return Ok(token);
                }
            }
            Some(rejected) => {
                let current = self.open_access(&first)?;
                if current.token != rejected {
                    return Ok(current);
                }
            }
        }
        let lock = self.refresh_lock(id);
        let started = tokio::time::Instant::now();
        let deadline = started + REFRESH_WAIT;
        loop {
            let guard = lock.lock().await;
            let row = self.usable_row(id).await?;
            if row.access_token != first.access_token {
                // Someone refreshed while this caller waited.
                return self.open_access(&row);
            }
            let read = row.access_token.as_deref().unwrap_or_default();
            // The lease runs from when it is taken, not from when this caller began waiting.
            let claimed_at = now + started.elapsed().as_millis() as i64;
            if self.inner.store.claim_refresh(id, claimed_at, claimed_at + REFRESH_LEASE_MS, read).await? {
                // In a task of its own: a caller that gives up (a page past its deadline) must
                // not abandon a refresh the provider may already have made (Pipedrive rotates the
                // refresh token) nor leave the lease taken.
                let (this, provider) = (self.clone(), provider_name(&row.provider));
                let result = tokio::spawn(async move { this.refresh(&row, now).await })
                    .await
                    .unwrap_or_else(|e| Err(ConnectionError::Token { provider, detail: format!("the token refresh stopped: {e}") }));
                drop(guard);
                return result;
            }
            drop(guard);
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectionError::Token {
                    provider: provider_name(&row.provider),
                    detail: "another Tandem instance has been refreshing this connection's token for too long".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn usable_row(&self, id: &str) -> Result<ConnectionRow, ConnectionError> {
        let row = self.inner.store.connection(id).await?.ok_or(ConnectionError::NotFound)?;
        match ConnectionStatus::parse(&row.status) {
            Some(ConnectionStatus::Connected) => Ok(row),
            Some(ConnectionStatus::Uninstalled) => Err(ConnectionError::Uninstalled),
            _ => Err(ConnectionError::NeedsReconnection(
                row.status_reason.unwrap_or_else(|| "This connection needs to be reconnected.".into()),
            )),
        }
    }

    fn still_valid(&self, row: &ConnectionRow, now: i64) -> Result<Option<AccessToken>, ConnectionError> {
        if row.access_expires_at.unwrap_or(0) - now > REFRESH_MARGIN_MS {
            self.open_access(row).map(Some)
        } else {
            Ok(None)
        }
    }

    fn open_access(&self, row: &ConnectionRow) -> Result<AccessToken, ConnectionError> {
        let sealed = row.access_token.as_deref().ok_or(ConnectionError::Uninstalled)?;
        let token = self
            .inner
            .secrets
            .open(sealed, &token_context(&row.provider, &row.account_id, "access_token"))
            .map_err(|e| ConnectionError::NeedsReconnection(e.to_string()))?;
        Ok(AccessToken { token, api_base: row.api_base.clone(), expires_at: row.access_expires_at.unwrap_or(0) })
    }

    fn refresh_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    /// Refreshes with the lease held; releases it whatever happens.
    async fn refresh(&self, row: &ConnectionRow, now: i64) -> Result<AccessToken, ConnectionError> {
        let provider = provider_name(&row.provider);
        let refresh_context = token_context(&row.provider, &row.account_id, "refresh_token");
        let refresh = match row.refresh_token.as_deref().map(|r| self.inner.secrets.open(r, &refresh_context)) {
            Some(Ok(refresh)) => refresh,
            _ => {
                let reason = "Tandem could not read this connection's stored credentials (was its secret key changed?). Reconnect to continue syncing.";
                return Err(self.lose_authorization(row, reason.to_string()).await);
            }
        };
        let config = match self.connection_config(row) {
            Some(config) => config,
            None => {
                self.inner.store.release_refresh(&row.id).await?;
                return Err(ConnectionError::UnknownApp(row.provider.clone()));
            }
        };
        let client = match self.oauth_client(&config) {
            Ok(client) => client,
            Err(e) => {
                self.inner.store.release_refresh(&row.id).await?;
                return Err(e);
            }
        };
        match client.exchange_refresh_token(&RefreshToken::new(refresh.clone())).request_async(&self.inner.http).await {
            Ok(tokens) => {
                let access = tokens.access_token().secret().clone();
                // Pipedrive rotates refresh tokens; HubSpot keeps the same one.
                let refresh = tokens.refresh_token().map(|r| r.secret().clone()).unwrap_or(refresh);
                let expires_at = now_ms() + tokens.expires_in().map(|d| d.as_millis() as i64).unwrap_or(30 * MINUTE_MS);
                self.inner
                    .store
                    .save_refreshed_tokens(
                        &row.id,
                        &self.inner.secrets.seal(&access, &token_context(&row.provider, &row.account_id, "access_token")),
                        &self.inner.secrets.seal(&refresh, &refresh_context),
                        expires_at,
                        now_ms(),
                    )
                    .await?;
                tracing::info!(connection_id = %row.id, provider = %row.provider, "access token refreshed");
                Ok(AccessToken { token: access, api_base: row.api_base.clone(), expires_at })
            }
            Err(e) if lost_grant(config.provider, &e) => {
                tracing::warn!(connection_id = %row.id, provider = %row.provider, error = %describe_token_error(&e), "refresh refused: the grant is gone");
                let reason = format!(
                    "{} no longer accepts Tandem's authorization (it may have been revoked or expired). Syncs with this account are paused until you reconnect.",
                    self.display_name(&row.provider)
                );
                Err(self.lose_authorization(row, reason).await)
            }
            Err(e) => {
                let detail = describe_token_error(&e);
                tracing::warn!(connection_id = %row.id, provider = %row.provider, error = %detail, "token refresh failed; will retry");
                self.inner.store.release_refresh(&row.id).await?;
                // The current token may still have a little life left.
                if row.access_expires_at.unwrap_or(0) > now {
                    return self.open_access(row);
                }
                Err(ConnectionError::Token { provider, detail })
            }
        }
    }

    /// Marks the connection **Needs reconnection** (recorded once) and answers the error.
    async fn lose_authorization(&self, row: &ConnectionRow, reason: String) -> ConnectionError {
        match self.inner.store.mark_needs_reconnection(&row.id, &reason, now_ms()).await {
            Ok(true) => {
                let summary = format!(
                    "{} for {} needs reconnection: {reason}",
                    self.display_name(&row.provider),
                    account_label(&row.account_name, &row.account_id, &row.provider)
                );
                if let Err(e) = self.audit(None, "app.needs_reconnection", Some(&row.id), summary).await {
                    return e;
                }
            }
            Ok(false) => {}
            Err(e) => return e.into(),
        }
        ConnectionError::NeedsReconnection(reason)
    }

    /// Every connection's API budget and what Tandem used of it.
    pub async fn api_usages(&self) -> Result<Vec<model::apps::ApiUsage>, ConnectionError> {
        let now = now_ms();
        let mut all = Vec::new();
        for row in self.inner.store.connections().await? {
            all.extend(self.usage_at(&row.id, now).await?);
        }
        Ok(all)
    }

    /// A connection's API budget and what Tandem (every instance) used of it.
    pub async fn api_usage(&self, id: &str) -> Result<model::apps::ApiUsage, ConnectionError> {
        self.usage_at(id, now_ms()).await?.ok_or(ConnectionError::NotFound)
    }

    async fn usage_at(&self, id: &str, now: i64) -> Result<Option<model::apps::ApiUsage>, ConnectionError> {
        let Some(u) = self.inner.store.api_usage(id, now).await? else { return Ok(None) };
        Ok(Some(model::apps::ApiUsage {
            connection_id: id.to_string(),
            share: u.budget.share,
            window_max: u.budget.window_max,
            window_ms: u.budget.window_ms,
            window_calls: u.window_calls,
            day_calls: u.day_calls,
            paused_until: (u.budget.paused_until > now).then_some(u.budget.paused_until),
        }))
    }

    /// Sets the share of a connection's API limit Tandem may use (a percent from 1 to 100, already
    /// checked), for every sync and instance at once; audited.
    pub async fn set_api_share(&self, user: &SessionUser, id: &str, share: i64) -> Result<model::apps::ApiUsage, ConnectionError> {
        let row = self.inner.store.connection(id).await?.ok_or(ConnectionError::NotFound)?;
        let before = self.api_usage(id).await?.share;
        self.inner.store.set_api_share(id, share).await?;
        if before != share {
            self.audit(
                Some(user),
                "app.api_share",
                Some(id),
                format!(
                    "Tandem may use {share} % of the API limit of {} for {} (was {before} %)",
                    self.display_name(&row.provider),
                    account_label(&row.account_name, &row.account_id, &row.provider)
                ),
            )
            .await?;
        }
        self.api_usage(id).await
    }

    /// Uninstalls: revokes access at the provider where it can, deletes the credentials, and
    /// keeps the connection's sync settings and history (its syncs stay paused).
    pub async fn uninstall(&self, user: &SessionUser, id: &str) -> Result<Uninstalled, ConnectionError> {
        let row = self.inner.store.connection(id).await?.ok_or(ConnectionError::NotFound)?;
        let provider_name = self.display_name(&row.provider);
        if row.status == ConnectionStatus::Uninstalled.as_str() {
            return Ok(Uninstalled { provider_name, revoke_failed: None });
        }
        self.remove_own_webhooks(&row).await;
        let revoke_failed = match self.revoke(&row).await {
            Ok(()) => None,
            Err(reason) => {
                tracing::warn!(connection_id = %id, error = %reason, "could not revoke access at the provider");
                Some(reason)
            }
        };
        if self.inner.store.uninstall_connection(id, now_ms()).await? {
            self.audit(
                Some(user),
                "app.uninstalled",
                Some(id),
                format!("Uninstalled {provider_name} for {}", account_label(&row.account_name, &row.account_id, &row.provider)),
            )
            .await?;
        }
        Ok(Uninstalled { provider_name, revoke_failed })
    }

    /// The provider's configuration as a connection uses it: on the accounts server of its
    /// account's data centre, where it has one.
    fn connection_config(&self, row: &ConnectionRow) -> Option<ProviderConfig> {
        let config = self.provider(&row.provider)?;
        Some(match row.accounts_server.as_deref() {
            Some(server) => config.provider.at_accounts_server(config, server),
            None => config.clone(),
        })
    }

    /// Deletes the connection's webhooks at the app before its access is revoked (after, Tandem
    /// could not; the app would keep delivering to a connection that is gone). A failure is
    /// logged and the uninstall goes on.
    async fn remove_own_webhooks(&self, row: &ConnectionRow) {
        let Some(provider) = Provider::parse(&row.provider).filter(|p| p.registers_webhooks()) else { return };
        let url = self.webhook_url(provider, &row.id);
        let stats = Arc::new(crate::connectors::http::Stats::default());
        let removed = match crate::connectors::http::Api::open(self, &row.id, provider, self.limiter(&row.id), stats).await {
            Ok(api) => provider.remove_webhooks(&api, &url, None).await,
            Err(e) => Err(e),
        };
        match removed {
            Ok(removed) => tracing::info!(connection_id = %row.id, removed, "the connection's webhooks removed at the app"),
            Err(e) => tracing::warn!(connection_id = %row.id, error = %e, "could not remove the connection's webhooks at the app"),
        }
    }

    async fn revoke(&self, row: &ConnectionRow) -> Result<(), String> {
        let config = self.connection_config(row).ok_or("the provider is no longer configured")?;
        let config = &config;
        let sealed = row.refresh_token.as_deref().ok_or("no stored credentials")?;
        let refresh =
            self.inner.secrets.open(sealed, &token_context(&row.provider, &row.account_id, "refresh_token")).map_err(|e| e.to_string())?;
        let result = config.provider.revoke(&self.inner.http, config, &refresh).await;
        match result {
            Ok(()) => Ok(()),
            // Already gone at the provider: nothing left to revoke.
            Err(ConnectorError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Associated data for a sealed token: it only opens for the same account and column.
fn token_context(provider: &str, account_id: &str, column: &str) -> String {
    format!("connection:{provider}:{account_id}:{column}")
}

fn state_context(state_hash: &str) -> String {
    format!("oauth_state:{state_hash}:pkce_verifier")
}

fn provider_name(key: &str) -> &'static str {
    Provider::parse(key).map(Provider::name).unwrap_or("The provider")
}

fn account_label(name: &str, id: &str, provider: &str) -> String {
    let kind = Provider::parse(provider).map(|p| p.account_kind()).unwrap_or("account");
    format!("{name} ({kind} {id})")
}

/// Whether a refused refresh means the grant is gone for good: one of the provider's codes for
/// that, whether the token endpoint answered it as an OAuth error or (Zoho) in a 200 answer.
fn lost_grant(provider: Provider, e: &TokenError) -> bool {
    let code = match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => "invalid_grant".to_string(),
            other => other.to_string(),
        },
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(answer) => answer.get("error").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
            Err(_) => return false,
        },
        _ => return false,
    };
    provider.lost_grant_errors().contains(&code.as_str())
}

/// A token error in words for the log: the provider's error code and description, never a token.
fn describe_token_error(e: &TokenError) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => {
            format!("{}{}", r.error(), r.error_description().map(|d| format!(": {d}")).unwrap_or_default())
        }
        // Not `{e}`: reqwest's error names the URL it was sending to.
        RequestTokenError::Request(oauth2::HttpClientError::Reqwest(e)) => {
            format!("request failed: {}", crate::connectors::http::describe(e))
        }
        RequestTokenError::Request(_) => "request failed".to_string(),
        // Zoho answers its refusals with 200 and `{"error": "invalid_code"}`: its code, never the body.
        RequestTokenError::Parse(e, body) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(answer) if answer.get("error").and_then(serde_json::Value::as_str).is_some() => {
                format!("refused: {}", answer["error"].as_str().unwrap_or_default())
            }
            _ => format!("unexpected answer: {e}"),
        },
        RequestTokenError::Other(e) => e.clone(),
    }
}

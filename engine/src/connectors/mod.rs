//! The providers Tandem connects to: how to reach each one (its OAuth app and hosts), what it asks
//! for, and the few calls the install flow needs (who the account is, revoking access). One module
//! per provider.

pub mod http;
pub mod hubspot;
pub mod pipedrive;
pub mod record;
pub mod zoho;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;

use model::apps::{AppListing, ObjectKind};
use serde_json::Value;

use http::{Api, ApiError};
use record::{RecordSpec, Records};

/// The label of the field that carries Tandem's record ids, on every side.
pub const TANDEM_FIELD_LABEL: &str = "Tandem record ID";

/// Everything Tandem knows of one provider: its OAuth facts, schema, records, links, webhooks
/// and rate-limit policy. Each provider's folder implements it, and one line of
/// [`Provider::ALL`] registers it.
pub trait Connector: Send + Sync {
    /// The key used in URLs and the store (`hubspot`, `pipedrive`).
    fn key(&self) -> &'static str;

    fn name(&self) -> &'static str;

    /// The path of its logo under Tandem's site (`/apps/{key}.svg`, a file in `public/apps/`).
    fn logo(&self) -> &'static str;

    /// The scopes Tandem requests, with what it uses each for.
    fn scopes(&self) -> &'static [(&'static str, &'static str)];

    /// How Tandem's OAuth client authenticates at the token endpoint.
    fn client_auth(&self) -> ClientAuth;

    /// What joins the scopes in the authorization URL's `scope` (OAuth's space; Zoho's comma).
    fn scope_separator(&self) -> &'static str {
        " "
    }

    /// Parameters the authorization URL carries besides OAuth's own (Zoho's
    /// `access_type=offline`, without which it issues no refresh token).
    fn authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The scheme of the `Authorization` header API calls carry the access token in.
    fn auth_scheme(&self) -> &'static str {
        "Bearer"
    }

    /// The accounts server an authorization callback names (Zoho's `accounts-server`, the
    /// admin's data centre), when the provider's own: where the code is exchanged and the
    /// connection's tokens are refreshed and revoked from then on. `Ok(None)` where the provider
    /// has one accounts server; `Err` (why) for a server Tandem must not send its client secret to.
    fn accounts_server(&self, config: &ProviderConfig, named: Option<&str>) -> Result<Option<String>, String> {
        let _ = (config, named);
        Ok(None)
    }

    /// `config` with its token and revocation endpoints on `accounts_server` (one that
    /// [`Connector::accounts_server`] accepted).
    fn at_accounts_server(&self, config: &ProviderConfig, accounts_server: &str) -> ProviderConfig {
        let _ = accounts_server;
        config.clone()
    }

    /// The token endpoint's error codes that mean the grant is gone for good (revoked or
    /// expired): the connection then needs reconnecting.
    fn lost_grant_errors(&self) -> &'static [&'static str] {
        &["invalid_grant"]
    }

    /// What the console calls one of its accounts ("portal", "company").
    fn account_kind(&self) -> &'static str {
        "company"
    }

    /// The Marketplace card, for apps (HubSpot itself is not one).
    fn listing(&self, config: &ProviderConfig) -> Option<AppListing> {
        let _ = config;
        None
    }

    /// Who a token belongs to. `api_domain` is the account's API host when the token answer
    /// named one.
    fn account<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        access_token: &'a str,
        api_domain: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Account, ConnectorError>>;

    /// Revokes a refresh token (uninstall).
    fn revoke<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;

    /// The fields of `object` and, for deals, the pipelines with their stages, read through the
    /// connection's `Api` (each call under its limiter, retried and refreshed like any).
    fn schema<'a>(&'a self, api: &'a Api, object: ObjectKind) -> BoxFuture<'a, Result<model::sync::SideSchema, ApiError>>;

    /// How many deals of `pipeline` sit in each of its `stages`: (stage id, count). Read through
    /// the connection's limiter, as every call the setup makes.
    fn count_deals_in_stages<'a>(
        &'a self,
        api: &'a Api,
        pipeline: &'a str,
        stages: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, ApiError>>;

    /// One object's records on a connection, as the engine reads and writes them.
    fn records<'a>(&self, api: &'a Api, spec: RecordSpec<'a>) -> Box<dyn Records + 'a>;

    /// The field that carries Tandem's record ids on `object`, created when missing: its key.
    fn ensure_tandem_field<'a>(&'a self, api: &'a Api, object: ObjectKind) -> BoxFuture<'a, Result<String, ApiError>>;

    /// The account's users (HubSpot's owners) by email in lower case: their ids, which owner
    /// fields hold.
    fn users_by_email<'a>(&'a self, api: &'a Api) -> BoxFuture<'a, Result<HashMap<String, String>, ApiError>>;

    /// How records of `object` are written here: the name a new one needs, fields written
    /// together.
    fn record_rules(&self, object: ObjectKind) -> record::RecordRules;

    /// The mappings a new sync of `object` starts with: (HubSpot property, this app's field).
    fn default_mappings(&self, object: ObjectKind) -> &'static [(&'static str, &'static str)] {
        let _ = object;
        &[]
    }

    /// The fields that link a record of `object` to a record of another object. HubSpot links
    /// records by association instead: none.
    fn link_fields(&self, object: ObjectKind) -> &'static [LinkField] {
        let _ = object;
        &[]
    }

    /// Whether Tandem registers its webhooks with each connection (with HTTP Basic
    /// credentials, or a token echoed in each delivery), rather than the admin once in Tandem's
    /// app settings (signed deliveries).
    fn registers_webhooks(&self) -> bool {
        false
    }

    /// How a delivery to `/webhooks/<app>/<connection>` proves it comes from the app.
    fn webhook_auth(&self) -> WebhookAuth {
        WebhookAuth::HttpBasic
    }

    /// The token a delivery echoes, for [`WebhookAuth::TokenInBody`] (Zoho's channel `token`).
    fn webhook_token(&self, body: &[u8]) -> Option<String> {
        let _ = body;
        None
    }

    /// Registers Tandem's webhooks on a connection where missing: deliveries to `url` with HTTP
    /// Basic `user` and `password` (or, for [`WebhookAuth::TokenInBody`], `password` as the
    /// token each delivery echoes).
    fn register_webhooks<'a>(
        &'a self,
        api: &'a Api,
        url: &'a str,
        user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        let _ = (api, url, user, password);
        Box::pin(async { Ok(()) })
    }

    /// Deletes Tandem's webhooks at the app whose URL starts with `prefix`, except `keep`: a
    /// connection's own at Uninstall, and at registration those that earlier installs left
    /// under Tandem's webhook path for this app (they would be delivered, refused and retried
    /// for good). Answers how many went.
    fn remove_webhooks<'a>(&'a self, api: &'a Api, prefix: &'a str, keep: Option<&'a str>) -> BoxFuture<'a, Result<usize, ApiError>> {
        let _ = (api, prefix, keep);
        Box::pin(async { Ok(0) })
    }

    /// The objects (`deal`, `contact`, `company`) a webhook delivery is about.
    fn webhook_objects(&self, body: &[u8]) -> Result<Vec<&'static str>, String> {
        let _ = body;
        Ok(Vec::new())
    }

    /// Whether a webhook delivery says the app's schema changed (a stage or pipeline added,
    /// renamed or deleted, a user added): what the engine keeps of it is then read again by the
    /// next run.
    fn webhook_changes_schema(&self, body: &[u8]) -> bool {
        let _ = body;
        false
    }

    /// What a response's headers say of the rate limit.
    fn limit_signal(&self, headers: &reqwest::header::HeaderMap) -> LimitSignal;

    /// How long to wait after a 429 that gave no `Retry-After`.
    fn wait_after_429(&self, message: &str) -> Duration {
        let _ = message;
        Duration::from_secs(2)
    }

    /// What a refused call's body says beyond its status (Zoho's error codes): a scope missing,
    /// the account's allowance spent, or too many calls at once.
    fn refusal(&self, status: u16, body: &[u8]) -> Option<Refusal> {
        let _ = (status, body);
        None
    }

    /// Whether a call to `path` is a search, which some providers limit apart.
    fn is_search(&self, path: &str) -> bool {
        let _ = path;
        false
    }
}

/// A field of an app's record that holds the id of a linked record (a deal's person).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkField {
    /// The linked record's object.
    pub object: ObjectKind,
    pub field: &'static str,
    /// The field's name as the app shows it ("Person").
    pub label: &'static str,
}

/// How a webhook delivery for one connection is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookAuth {
    /// HTTP Basic with the credentials Tandem registered (Pipedrive).
    HttpBasic,
    /// The secret Tandem registered, echoed in the delivery's body (Zoho's channel `token`).
    TokenInBody,
}

/// What a refused call's body says beyond its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The token lacks a scope the call needs: a permission problem, not an expired token.
    Permission,
    /// The account's allowance of calls is spent for a long while (Zoho's credits over 24
    /// hours): reported at once rather than waited for.
    Exhausted,
    /// Too many calls at once: wait this long, then send again.
    Wait(Duration),
}

/// How an OAuth client authenticates at a provider's token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
    /// HTTP Basic with the client's id and secret.
    BasicAuth,
}

/// A provider Tandem can connect to: its entry in the registry.
#[derive(Clone, Copy)]
pub struct Provider(&'static dyn Connector);

impl Provider {
    pub const HUBSPOT: Provider = Provider(&hubspot::HubSpot);
    pub const PIPEDRIVE: Provider = Provider(&pipedrive::Pipedrive);
    pub const ZOHO: Provider = Provider(&zoho::Zoho);

    /// The registry: every provider Tandem can connect to.
    pub const ALL: [Provider; 3] = [Provider::HUBSPOT, Provider::PIPEDRIVE, Provider::ZOHO];

    pub fn parse(key: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.key() == key)
    }

    /// What Tandem knows of this provider.
    pub fn connector(self) -> &'static dyn Connector {
        self.0
    }

    /// The key used in URLs and the store.
    pub fn key(self) -> &'static str {
        self.0.key()
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The scopes Tandem requests, with what it uses each for.
    pub fn scopes(self) -> &'static [(&'static str, &'static str)] {
        self.0.scopes()
    }
}

impl std::ops::Deref for Provider {
    type Target = dyn Connector;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Provider) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Provider {}

impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a provider's answer says of its rate limit, for the connection's limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSignal {
    /// A rolling window: at most `max` calls per `interval`.
    Window { max: usize, interval: Duration },
    /// No window applies (the limits are off).
    NoWindow,
    /// Nothing is left until the window resets: no call for this long.
    PauseFor(Duration),
    /// Nothing to learn from this answer.
    Nothing,
}

/// The object a provider names in its webhooks (HubSpot's `deal.propertyChange`, Pipedrive's
/// `person`, Zoho's `Accounts`): `deal`, `contact` or `company`.
pub fn object_named(name: &str) -> Option<&'static str> {
    match name.split('.').next()?.to_ascii_lowercase().as_str() {
        "deal" | "deals" => Some("deal"),
        "contact" | "contacts" | "person" | "persons" => Some("contact"),
        "company" | "companies" | "organization" | "organizations" | "account" | "accounts" => Some("company"),
        _ => None,
    }
}

/// A numeric response header.
pub(crate) fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// People listed by a provider (`[{email, id}]`) as email in lower case → id.
pub(crate) fn by_email(list: Option<&Vec<Value>>) -> HashMap<String, String> {
    list.into_iter()
        .flatten()
        .filter_map(|u| Some((u.get("email")?.as_str()?.trim().to_ascii_lowercase(), record::text(u.get("id")?)?)))
        .collect()
}

/// How Tandem reaches one provider: its OAuth app (client id and secret) and hosts. Real hosts by
/// default; the sandboxes by configuration.
#[derive(Clone)]
pub struct ProviderConfig {
    pub provider: Provider,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    /// The API base: HubSpot's host, or Pipedrive's default (each token names its account's own).
    pub api_url: String,
    pub revoke_url: Option<String>,
    /// The environment variables that configure this provider, for messages.
    pub settings_hint: &'static str,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "**redacted**"))
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider served from loopback is one of Tandem's sandboxes, never the real service.
    pub fn is_sandbox(&self) -> bool {
        url::Url::parse(&self.authorize_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .is_some_and(|host| matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]" | "::1"))
    }

    pub fn display_name(&self) -> String {
        model::apps::display_name(self.provider.name(), self.is_sandbox())
    }

    pub fn logo(&self) -> &'static str {
        self.provider.logo()
    }

    /// Why installing cannot work with this configuration, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => None,
            _ => Some(format!(
                "{} is not set up on this Tandem server yet: its administrator must register Tandem as an OAuth app with {} and set {}.",
                self.display_name(),
                self.provider.name(),
                self.settings_hint
            )),
        }
    }

    /// The Marketplace card, for apps (HubSpot itself is not one).
    pub fn listing(&self) -> Option<AppListing> {
        self.provider.listing(self)
    }
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub domain: Option<String>,
    /// Where this account's API lives.
    pub api_base: String,
}

/// A call to a provider's OAuth endpoints that failed: the account behind a new token, a revoke
/// (before a connection exists, or after it ends). Every call made on a connection goes through
/// `http::Api` and fails as its `ApiError`, classified there (retryable, permanent, needs
/// reconnection).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{provider} could not be reached: {source}")]
    Unreachable {
        provider: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{provider} answered {status}: {message}")]
    Refused { provider: &'static str, status: u16, message: String },
    #[error("{provider} answered with an unexpected body: {detail}")]
    Unexpected { provider: &'static str, detail: String },
}

/// The longest any one call to a provider may take, answer included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client every connector shares: no redirects followed (OAuth endpoints must not be
/// redirected elsewhere), bounded timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("Tandem/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A request that got no answer. reqwest's error names the URL it was sending to, and some
/// providers put a token in the path (HubSpot's token information and refresh-token revocation):
/// the URL is dropped so it reaches neither logs nor pages.
fn unreachable(provider: &'static str, source: reqwest::Error) -> ConnectorError {
    ConnectorError::Unreachable { provider, source: source.without_url() }
}

/// Sends a request and parses a JSON answer, mapping failures to [`ConnectorError`].
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    provider: Provider,
    request: reqwest::RequestBuilder,
) -> Result<T, ConnectorError> {
    let name = provider.name();
    let response = request.send().await.map_err(|source| unreachable(name, source))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|source| unreachable(name, source))?;
    if !status.is_success() {
        return Err(ConnectorError::Refused { provider: name, status: status.as_u16(), message: error_message(&body) });
    }
    serde_json::from_slice(&body).map_err(|e| ConnectorError::Unexpected { provider: name, detail: e.to_string() })
}

/// Sends a request that answers no body worth reading.
pub(crate) async fn send(provider: Provider, request: reqwest::RequestBuilder) -> Result<(), ConnectorError> {
    let name = provider.name();
    let response = request.send().await.map_err(|source| unreachable(name, source))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(ConnectorError::Refused { provider: name, status: status.as_u16(), message: error_message(&body) })
}

/// The provider's own words from an error body (HubSpot `message`, Pipedrive `error`), shortened.
pub(crate) fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| ["message", "error_description", "error"].iter().find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string)))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::Provider;

    /// HubSpot's token information is `GET /oauth/v1/access-tokens/{token}`: when the call fails
    /// before an answer, the error (logged, and shown by Uninstall) must not carry the URL.
    #[tokio::test]
    async fn an_unreachable_provider_error_never_carries_the_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let token = "CJT1-secret-access-token";
        let url = format!("http://127.0.0.1:{port}/oauth/v1/access-tokens/{token}");
        let client = super::http_client();
        let read = super::fetch_json::<serde_json::Value>(Provider::HUBSPOT, client.get(&url)).await.unwrap_err();
        let revoke = super::send(Provider::HUBSPOT, client.delete(&url)).await.unwrap_err();
        for e in [read, revoke] {
            let text = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
            assert!(text.contains("HubSpot could not be reached"), "{text}");
            assert!(!text.contains(token), "{text}");
        }
    }

    /// Every registered provider's logo is a file the site serves (`public/` is the site's assets).
    #[test]
    fn every_provider_has_its_logo_in_the_site() {
        let public = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../public");
        for provider in Provider::ALL {
            let logo = provider.logo();
            let file = logo.strip_prefix('/').map(|path| public.join(path));
            assert!(
                logo.starts_with("/apps/") && file.as_ref().is_some_and(|f| f.is_file()),
                "{}'s logo {logo} is not a file under public/apps",
                provider.name()
            );
        }
    }
}

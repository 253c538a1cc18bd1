//! The providers Tandem connects to: how to reach each one (its OAuth app and hosts), what it asks
//! for, and the few calls the install flow needs (who the account is, revoking access). One module
//! per provider.

pub mod http;
pub mod hubspot;
pub mod pipedrive;
pub mod record;

use std::collections::HashMap;
use std::time::Duration;

use model::apps::{AppListing, ObjectKind};
use serde_json::Value;

use http::{Api, ApiError};
use record::{RecordSpec, Records};

/// The label of the field that carries Tandem's record ids, on every side.
pub const TANDEM_FIELD_LABEL: &str = "Tandem record ID";

/// A provider Tandem can connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    HubSpot,
    Pipedrive,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::HubSpot, Provider::Pipedrive];

    /// The key used in URLs and the store.
    pub fn key(self) -> &'static str {
        match self {
            Provider::HubSpot => model::apps::HUBSPOT,
            Provider::Pipedrive => "pipedrive",
        }
    }

    pub fn parse(key: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.key() == key)
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::HubSpot => "HubSpot",
            Provider::Pipedrive => "Pipedrive",
        }
    }

    /// The scopes Tandem requests, with what it uses each for.
    pub fn scopes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Provider::HubSpot => hubspot::SCOPES,
            Provider::Pipedrive => pipedrive::SCOPES,
        }
    }

    /// One object's records on a connection of this provider, as the engine reads and writes
    /// them.
    pub fn records<'a>(self, api: &'a Api, spec: RecordSpec<'a>) -> Box<dyn Records + 'a> {
        match self {
            Provider::HubSpot => Box::new(hubspot::records::HubSpotRecords::new(api, spec)),
            Provider::Pipedrive => Box::new(pipedrive::records::PipedriveRecords::new(api, spec)),
        }
    }

    /// The field that carries Tandem's record ids on `object`, created when missing: its key.
    pub async fn ensure_tandem_field(self, api: &Api, object: ObjectKind) -> Result<String, ApiError> {
        match self {
            Provider::HubSpot => hubspot::records::ensure_tandem_property(api, object).await,
            Provider::Pipedrive => pipedrive::records::ensure_tandem_field(api, object).await,
        }
    }

    /// The app's fields that link a record of `object` to a record of another object (HubSpot
    /// links records by association instead: none).
    pub fn link_fields(self, object: ObjectKind) -> &'static [(ObjectKind, &'static str)] {
        match self {
            Provider::HubSpot => &[],
            Provider::Pipedrive => pipedrive::link_fields(object),
        }
    }

    /// Whether Tandem registers its webhooks with each connection of this provider (Pipedrive),
    /// rather than the admin once in Tandem's app settings (HubSpot).
    pub fn registers_webhooks(self) -> bool {
        match self {
            Provider::HubSpot => false,
            Provider::Pipedrive => true,
        }
    }

    /// Registers Tandem's webhooks on a connection where missing: deliveries to `url` with HTTP
    /// Basic `user` and `password`.
    pub async fn register_webhooks(self, api: &Api, url: &str, user: &str, password: &str) -> Result<(), ApiError> {
        match self {
            Provider::HubSpot => Ok(()),
            Provider::Pipedrive => pipedrive::webhooks::register(api, url, user, password).await,
        }
    }

    /// The account's users (HubSpot's owners) by email in lower case: their ids, which owner
    /// fields hold.
    pub async fn users_by_email(self, api: &Api) -> Result<HashMap<String, String>, ApiError> {
        match self {
            Provider::HubSpot => hubspot::records::owners(api).await,
            Provider::Pipedrive => pipedrive::records::users(api).await,
        }
    }
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
        match self.provider {
            Provider::HubSpot => None,
            Provider::Pipedrive => Some(pipedrive::listing(self)),
        }
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

/// A call to a provider that failed.
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

/// The HTTP client every connector shares: no redirects followed (OAuth endpoints must not be
/// redirected elsewhere), bounded timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("Tandem/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// Sends a request and parses a JSON answer, mapping failures to [`ConnectorError`].
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    provider: Provider,
    request: reqwest::RequestBuilder,
) -> Result<T, ConnectorError> {
    let name = provider.name();
    let response = request.send().await.map_err(|source| ConnectorError::Unreachable { provider: name, source })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|source| ConnectorError::Unreachable { provider: name, source })?;
    if !status.is_success() {
        return Err(ConnectorError::Refused { provider: name, status: status.as_u16(), message: error_message(&body) });
    }
    serde_json::from_slice(&body).map_err(|e| ConnectorError::Unexpected { provider: name, detail: e.to_string() })
}

/// Sends a request that answers no body worth reading.
pub(crate) async fn send(provider: Provider, request: reqwest::RequestBuilder) -> Result<(), ConnectorError> {
    let name = provider.name();
    let response = request.send().await.map_err(|source| ConnectorError::Unreachable { provider: name, source })?;
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

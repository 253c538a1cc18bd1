//! Zoho CRM: deals, contacts and accounts (HubSpot's companies) through CRM API v8. Zoho keeps an
//! accounts server per data centre: the admin's is named in the install's callback, and the
//! connection's tokens are exchanged, refreshed and revoked there; each token names the API host
//! of its organisation (`api_domain`).

pub mod records;
pub mod schema;
pub mod webhooks;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use model::apps::{AppListing, ObjectKind, ScopeInfo, SharedObject, SyncDirection};
use serde::Deserialize;
use serde_json::Value;

use super::http::{Api, ApiError};
use super::record::{RecordRules, RecordSpec, Records};
use super::{fetch_json, Account, ConnectorError, LinkField, Provider, ProviderConfig, Refusal, WebhookAuth};

/// Zoho's accounts server in the US data centre, where admins sign in by default (Zoho sends an
/// admin of another data centre on to theirs, and the callback names it).
pub const ACCOUNTS_URL: &str = "https://accounts.zoho.com";
/// The US API host, shown until a token names its organisation's own (`api_domain`).
pub const API_URL: &str = "https://www.zohoapis.com";

/// Zoho's accounts servers, one per data centre: the only hosts (besides the configured one) an
/// install's code is exchanged at, as Tandem's client secret goes with it.
pub const ACCOUNTS_SERVERS: [&str; 9] = [
    "https://accounts.zoho.com",
    "https://accounts.zoho.eu",
    "https://accounts.zoho.in",
    "https://accounts.zoho.com.au",
    "https://accounts.zoho.jp",
    "https://accounts.zoho.com.cn",
    "https://accounts.zoho.sa",
    "https://accounts.zoho.ca",
    "https://accounts.zohocloud.ca",
];

/// Zoho takes its scopes comma-separated.
pub const SCOPES: &[(&str, &str)] = &[
    ("ZohoCRM.modules.deals.ALL", "Read, create and update deals"),
    ("ZohoCRM.modules.contacts.ALL", "Read, create and update contacts"),
    ("ZohoCRM.modules.accounts.ALL", "Read, create and update accounts (HubSpot's companies)"),
    ("ZohoCRM.settings.fields.ALL", "Read fields for the mappings, and add the Tandem record ID field so a record is never created twice"),
    ("ZohoCRM.settings.layouts.READ", "Find the deal layouts whose pipelines the stage grid maps"),
    ("ZohoCRM.settings.pipeline.READ", "Read deal pipelines and stages, and which stages are won or lost"),
    ("ZohoCRM.users.READ", "Match deal owners with HubSpot's by their email"),
    ("ZohoCRM.org.READ", "Identify the Zoho CRM organization"),
    ("ZohoCRM.notifications.ALL", "Subscribe to changes, so they reach Tandem within seconds"),
];

/// The custom field where Tandem keeps its record ids (the engine creates it; never mapped).
pub const TANDEM_FIELD: &str = super::TANDEM_FIELD_LABEL;

/// Zoho's endpoints on the accounts server `accounts_url` (the US one by default; a sandbox's URL
/// for demos and tests).
pub fn config(accounts_url: &str, client_id: Option<String>, client_secret: Option<String>) -> ProviderConfig {
    let accounts = accounts_url.trim_end_matches('/');
    let is_real = ACCOUNTS_SERVERS.contains(&accounts);
    ProviderConfig {
        provider: Provider::ZOHO,
        client_id,
        client_secret,
        authorize_url: format!("{accounts}/oauth/v2/auth"),
        token_url: format!("{accounts}/oauth/v2/token"),
        api_url: if is_real { API_URL.to_string() } else { accounts.to_string() },
        revoke_url: Some(format!("{accounts}/oauth/v2/token/revoke")),
        settings_hint: "TANDEM_ZOHO_CLIENT_ID and TANDEM_ZOHO_CLIENT_SECRET",
    }
}

/// `config` on another accounts server (the admin's data centre), keeping its OAuth app.
pub fn at_accounts_server(config: &ProviderConfig, accounts_server: &str) -> ProviderConfig {
    let server = accounts_server.trim_end_matches('/');
    ProviderConfig {
        authorize_url: format!("{server}/oauth/v2/auth"),
        token_url: format!("{server}/oauth/v2/token"),
        revoke_url: Some(format!("{server}/oauth/v2/token/revoke")),
        ..config.clone()
    }
}

/// The accounts server a callback names, when it is one of Zoho's own or has the origin of the
/// configured one (the sandbox): its origin. Anything else is refused: the client secret would
/// go to a host taken from a query string.
pub fn accounts_server(config: &ProviderConfig, named: Option<&str>) -> Result<Option<String>, String> {
    let Some(named) = named.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    let url = url::Url::parse(named).map_err(|e| format!("{named:?} is not a URL ({e})"))?;
    let bare = matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    let origin = url.origin().ascii_serialization();
    let configured = url::Url::parse(&config.authorize_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    if bare && (ACCOUNTS_SERVERS.contains(&origin.as_str()) || origin == configured) {
        Ok(Some(origin))
    } else {
        Err(format!("{named:?} is not one of Zoho's accounts servers"))
    }
}

/// Zoho CRM's card in the App Marketplace.
pub fn listing(config: &ProviderConfig) -> AppListing {
    let all = vec![SyncDirection::TwoWay, SyncDirection::ToHubSpot, SyncDirection::ToApp];
    let sandbox = config.is_sandbox();
    let mut description = vec![
        "Keep Zoho CRM and HubSpot in step: deals, contacts and accounts sync both ways, with pipelines and deal stages mapped the way your team works.".to_string(),
        "Works with every Zoho data centre: you sign in where your organization lives, and Tandem talks to that data centre from then on.".to_string(),
        "Deals are never deduplicated or deleted by the sync: a deleted deal stays in the other app.".to_string(),
    ];
    if sandbox {
        description.push(
            "This is the Zoho CRM Sandbox: a local emulator of Zoho CRM's API that comes with Tandem for demos and tests. Install it with the sandbox account shown on its sign-in page.".to_string(),
        );
    }
    AppListing {
        key: Provider::ZOHO.key().to_string(),
        name: "Zoho CRM".to_string(),
        sandbox,
        category: "Sales".to_string(),
        tagline: "Two-way sync of deals, contacts and accounts between Zoho CRM and HubSpot.".to_string(),
        description,
        logo: config.logo().to_string(),
        publisher: "Tandem".to_string(),
        shared_data: vec![
            SharedObject { object: ObjectKind::Deal, app_object: "Deals".to_string(), directions: all.clone() },
            SharedObject { object: ObjectKind::Contact, app_object: "Contacts".to_string(), directions: all.clone() },
            SharedObject { object: ObjectKind::Company, app_object: "Accounts".to_string(), directions: all },
        ],
        scopes: SCOPES.iter().map(|(scope, purpose)| ScopeInfo { scope: scope.to_string(), purpose: purpose.to_string() }).collect(),
        requirements: vec![
            "In Tandem: the Super Admin or App Marketplace Access permission.".to_string(),
            "In Zoho CRM: an administrator of the organization you connect.".to_string(),
            "A connected HubSpot account, to set up syncs.".to_string(),
        ],
        unavailable: config.unavailable(),
    }
}

#[derive(Deserialize)]
struct Orgs {
    org: Vec<Org>,
}

#[derive(Deserialize)]
struct Org {
    id: String,
    company_name: Option<String>,
    domain_name: Option<String>,
}

/// The organization a token belongs to (`GET {api_domain}/crm/v8/org`).
pub async fn account(http: &reqwest::Client, access_token: &str, api_domain: Option<&str>) -> Result<Account, ConnectorError> {
    let provider = Provider::ZOHO;
    let api_base = api_domain
        .map(|d| d.trim().trim_end_matches('/'))
        .filter(|d| d.starts_with("https://") || d.starts_with("http://"))
        .ok_or_else(|| ConnectorError::Unexpected { provider: provider.name(), detail: "the token answer named no api_domain".into() })?;
    let request =
        http.get(format!("{api_base}/crm/v8/org")).header(reqwest::header::AUTHORIZATION, format!("Zoho-oauthtoken {access_token}"));
    let orgs: Orgs = fetch_json(provider, request).await?;
    let org = orgs
        .org
        .into_iter()
        .next()
        .ok_or_else(|| ConnectorError::Unexpected { provider: provider.name(), detail: "the answer named no organization".into() })?;
    Ok(Account {
        name: org.company_name.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("Zoho CRM organization {}", org.id)),
        id: org.id,
        domain: org.domain_name.filter(|d| !d.is_empty()),
        api_base: api_base.to_string(),
    })
}

/// Revokes a refresh token (`POST /oauth/v2/token/revoke` on the connection's accounts server;
/// the token in the form body, never in a URL). Zoho answers a token it does not know with 200
/// and `{"error": "invalid_token"}`: already gone.
pub async fn revoke(http: &reqwest::Client, config: &ProviderConfig, refresh_token: &str) -> Result<(), ConnectorError> {
    let provider = Provider::ZOHO;
    let url = config.revoke_url.clone().unwrap_or_else(|| format!("{}/revoke", config.token_url));
    let answer: Value = fetch_json(provider, http.post(url).form(&[("token", refresh_token)])).await?;
    match answer.get("error").and_then(Value::as_str) {
        None | Some("invalid_token") => Ok(()),
        Some(code) => Err(ConnectorError::Refused { provider: provider.name(), status: 200, message: code.to_string() }),
    }
}

/// The fields that link a record of `object` to another record: a deal's contact and account, a
/// contact's account (lookups, `{ "id": … }` in Zoho's records).
pub fn link_fields(object: ObjectKind) -> &'static [LinkField] {
    const CONTACT: LinkField = LinkField { object: ObjectKind::Contact, field: "Contact_Name", label: "Contact Name" };
    const ACCOUNT: LinkField = LinkField { object: ObjectKind::Company, field: "Account_Name", label: "Account Name" };
    match object {
        ObjectKind::Deal => &[CONTACT, ACCOUNT],
        ObjectKind::Contact => &[ACCOUNT],
        ObjectKind::Company => &[],
    }
}

/// Zoho's module of an object.
pub fn module(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "Deals",
        ObjectKind::Contact => "Contacts",
        ObjectKind::Company => "Accounts",
    }
}

/// What Zoho's error code says beyond the status: a token without a scope the call needs is a
/// permission problem (401 `OAUTH_SCOPE_MISMATCH`, not an expired token to refresh); the
/// organisation's API credits over 24 hours are spent (429 `LIMIT_EXCEEDED`: reported, not
/// waited for); too many calls of Tandem's in flight (429 `TOO_MANY_REQUESTS`: a short wait).
pub fn refusal(status: u16, body: &[u8]) -> Option<Refusal> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    match (status, answer.get("code").and_then(Value::as_str)?) {
        (401 | 403, "OAUTH_SCOPE_MISMATCH" | "NO_PERMISSION") => Some(Refusal::Permission),
        (429, "LIMIT_EXCEEDED") => Some(Refusal::Exhausted),
        (429, "TOO_MANY_REQUESTS") => Some(Refusal::Wait(Duration::from_secs(1))),
        _ => None,
    }
}

/// Zoho CRM in the connector registry.
pub struct Zoho;

impl super::Connector for Zoho {
    fn key(&self) -> &'static str {
        "zoho"
    }

    fn name(&self) -> &'static str {
        "Zoho CRM"
    }

    fn logo(&self) -> &'static str {
        "/apps/zoho.svg"
    }

    fn scopes(&self) -> &'static [(&'static str, &'static str)] {
        SCOPES
    }

    /// Zoho takes the client's id and secret in the form body.
    fn client_auth(&self) -> super::ClientAuth {
        super::ClientAuth::RequestBody
    }

    fn scope_separator(&self) -> &'static str {
        ","
    }

    /// `offline` for a refresh token with the first access token; `consent` so a reinstall
    /// issues a new one.
    fn authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        &[("access_type", "offline"), ("prompt", "consent")]
    }

    fn auth_scheme(&self) -> &'static str {
        "Zoho-oauthtoken"
    }

    fn accounts_server(&self, config: &ProviderConfig, named: Option<&str>) -> Result<Option<String>, String> {
        accounts_server(config, named)
    }

    fn at_accounts_server(&self, config: &ProviderConfig, accounts_server: &str) -> ProviderConfig {
        at_accounts_server(config, accounts_server)
    }

    /// Zoho answers a refresh token it no longer knows with `invalid_code`.
    fn lost_grant_errors(&self) -> &'static [&'static str] {
        &["invalid_grant", "invalid_code"]
    }

    fn account_kind(&self) -> &'static str {
        "organization"
    }

    fn listing(&self, config: &ProviderConfig) -> Option<AppListing> {
        Some(listing(config))
    }

    /// Each token names its organisation's API host (`api_domain`).
    fn account<'a>(
        &'a self,
        http: &'a reqwest::Client,
        _config: &'a ProviderConfig,
        access_token: &'a str,
        api_domain: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Account, ConnectorError>> {
        Box::pin(account(http, access_token, api_domain))
    }

    fn revoke<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(revoke(http, config, refresh_token))
    }

    fn schema<'a>(&'a self, api: &'a Api, object: ObjectKind) -> BoxFuture<'a, Result<model::sync::SideSchema, ApiError>> {
        Box::pin(schema::schema(api, object))
    }

    fn count_deals_in_stages<'a>(
        &'a self,
        api: &'a Api,
        pipeline: &'a str,
        stages: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, ApiError>> {
        Box::pin(schema::count_deals_in_stages(api, pipeline, stages))
    }

    fn records<'a>(&self, api: &'a Api, spec: RecordSpec<'a>) -> Box<dyn Records + 'a> {
        Box::new(records::ZohoRecords::new(api, spec))
    }

    /// A deal needs its `Deal_Name` (and a stage, which only deals in mapped stages carry), an
    /// account its `Account_Name`, a contact its `Last_Name`: the source's name fills it unless
    /// a first name is written (a lone first name then becomes the last name, see `records`).
    fn record_rules(&self, object: ObjectKind) -> RecordRules {
        match object {
            ObjectKind::Deal => RecordRules { name_field: Some("Deal_Name"), ..Default::default() },
            ObjectKind::Contact => RecordRules { name_field: Some("Last_Name"), name_from: &["First_Name"], ..Default::default() },
            ObjectKind::Company => RecordRules { name_field: Some("Account_Name"), ..Default::default() },
        }
    }

    fn ensure_tandem_field<'a>(&'a self, api: &'a Api, object: ObjectKind) -> BoxFuture<'a, Result<String, ApiError>> {
        Box::pin(records::ensure_tandem_field(api, object))
    }

    fn users_by_email<'a>(&'a self, api: &'a Api) -> BoxFuture<'a, Result<HashMap<String, String>, ApiError>> {
        Box::pin(records::users(api))
    }

    /// Deals: name, amount, closing date, owner; contacts: names, email, phone, owner;
    /// accounts: name, website (HubSpot's domain), phone, owner.
    fn default_mappings(&self, object: ObjectKind) -> &'static [(&'static str, &'static str)] {
        match object {
            ObjectKind::Deal => {
                &[("dealname", "Deal_Name"), ("amount", "Amount"), ("closedate", "Closing_Date"), ("hubspot_owner_id", "Owner")]
            }
            ObjectKind::Contact => &[
                ("firstname", "First_Name"),
                ("lastname", "Last_Name"),
                ("email", "Email"),
                ("phone", "Phone"),
                ("hubspot_owner_id", "Owner"),
            ],
            ObjectKind::Company => &[("name", "Account_Name"), ("domain", "Website"), ("phone", "Phone"), ("hubspot_owner_id", "Owner")],
        }
    }

    fn link_fields(&self, object: ObjectKind) -> &'static [LinkField] {
        link_fields(object)
    }

    fn registers_webhooks(&self) -> bool {
        true
    }

    /// Zoho echoes the channel's `token` in each notification instead of HTTP Basic.
    fn webhook_auth(&self) -> WebhookAuth {
        WebhookAuth::TokenInBody
    }

    fn webhook_token(&self, body: &[u8]) -> Option<String> {
        webhooks::token(body)
    }

    fn register_webhooks<'a>(
        &'a self,
        api: &'a Api,
        url: &'a str,
        _user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(webhooks::register(api, url, password))
    }

    fn remove_webhooks<'a>(&'a self, api: &'a Api, prefix: &'a str, keep: Option<&'a str>) -> BoxFuture<'a, Result<usize, ApiError>> {
        Box::pin(webhooks::remove(api, prefix, keep))
    }

    /// A notification names its `module` (`Deals`, `Contacts`, `Accounts`).
    fn webhook_objects(&self, body: &[u8]) -> Result<Vec<&'static str>, String> {
        webhooks::objects(body)
    }

    /// Zoho's limits are API credits over 24 hours and calls in flight, told in its error codes
    /// (see [`refusal`]), not in headers.
    fn limit_signal(&self, _headers: &reqwest::header::HeaderMap) -> super::LimitSignal {
        super::LimitSignal::Nothing
    }

    fn refusal(&self, status: u16, body: &[u8]) -> Option<Refusal> {
        refusal(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zohos_accounts_servers_or_the_configured_one_are_honoured() {
        let real = config(ACCOUNTS_URL, None, None);
        assert_eq!(accounts_server(&real, None), Ok(None));
        assert_eq!(accounts_server(&real, Some("https://accounts.zoho.eu")), Ok(Some("https://accounts.zoho.eu".into())));
        assert_eq!(accounts_server(&real, Some("https://accounts.zohocloud.ca/")), Ok(Some("https://accounts.zohocloud.ca".into())));
        for foreign in [
            "https://accounts.zoho.eu.evil.example",
            "http://accounts.zoho.eu",
            "https://evil.example",
            "https://accounts.zoho.eu/oauth?x=1",
            "https://user@accounts.zoho.eu",
            "not a url",
        ] {
            assert!(accounts_server(&real, Some(foreign)).is_err(), "{foreign} was honoured");
        }
        let sandbox = config("http://127.0.0.1:4103", None, None);
        assert_eq!(accounts_server(&sandbox, Some("http://127.0.0.1:4103")), Ok(Some("http://127.0.0.1:4103".into())));
        assert!(accounts_server(&sandbox, Some("http://127.0.0.1:4104")).is_err());
        let eu = at_accounts_server(&real, "https://accounts.zoho.eu");
        assert_eq!(
            (eu.token_url.as_str(), eu.revoke_url.as_deref()),
            ("https://accounts.zoho.eu/oauth/v2/token", Some("https://accounts.zoho.eu/oauth/v2/token/revoke"))
        );
    }

    #[test]
    fn zohos_error_codes_say_what_a_refusal_is() {
        let body = |code: &str| format!(r#"{{"code":"{code}","details":{{}},"message":"m","status":"error"}}"#).into_bytes();
        assert_eq!(refusal(401, &body("OAUTH_SCOPE_MISMATCH")), Some(Refusal::Permission));
        assert_eq!(refusal(401, &body("INVALID_TOKEN")), None, "an expired token is refreshed");
        assert_eq!(refusal(429, &body("LIMIT_EXCEEDED")), Some(Refusal::Exhausted));
        assert_eq!(refusal(429, &body("TOO_MANY_REQUESTS")), Some(Refusal::Wait(Duration::from_secs(1))));
        assert_eq!(refusal(400, &body("LIMIT_EXCEEDED")), None, "too many records in one call is not the credits");
        assert_eq!(refusal(429, b"not json"), None);
    }
}

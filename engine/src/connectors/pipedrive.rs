//! Pipedrive: the first app of the Marketplace.

use model::apps::{AppListing, ObjectKind, ScopeInfo, SharedObject, SyncDirection};
use serde::Deserialize;

use super::{fetch_json, send, Account, ConnectorError, Provider, ProviderConfig};

pub const OAUTH_URL: &str = "https://oauth.pipedrive.com";
/// Used until a token names its company's own `api_domain`.
pub const API_URL: &str = "https://api.pipedrive.com";

pub const SCOPES: &[(&str, &str)] = &[
    ("deals:full", "Read, create and update deals, pipelines and stages"),
    ("contacts:full", "Read, create and update persons and organizations"),
    ("users:read", "Identify the Pipedrive company and match deal owners"),
];

pub fn config(oauth_url: &str, client_id: Option<String>, client_secret: Option<String>) -> ProviderConfig {
    let oauth = oauth_url.trim_end_matches('/');
    let sandbox_api = oauth.to_string();
    let is_real = oauth == OAUTH_URL;
    ProviderConfig {
        provider: Provider::Pipedrive,
        client_id,
        client_secret,
        authorize_url: format!("{oauth}/oauth/authorize"),
        token_url: format!("{oauth}/oauth/token"),
        api_url: if is_real { API_URL.to_string() } else { sandbox_api },
        revoke_url: Some(format!("{oauth}/oauth/revoke")),
        settings_hint: "TANDEM_PIPEDRIVE_CLIENT_ID and TANDEM_PIPEDRIVE_CLIENT_SECRET",
    }
}

/// Pipedrive's card in the App Marketplace.
pub fn listing(config: &ProviderConfig) -> AppListing {
    let all = vec![SyncDirection::TwoWay, SyncDirection::ToHubSpot, SyncDirection::ToApp];
    let sandbox = config.is_sandbox();
    let mut description = vec![
        "Keep Pipedrive and HubSpot in step: deals, persons and organizations sync both ways, with pipelines and deal stages mapped the way your team works.".to_string(),
        "Changes flow within seconds of being made. Field-level merging means an edit on one side never overwrites an unrelated edit on the other, and conflicts follow the rule you choose.".to_string(),
        "Deals are never deduplicated or deleted by the sync: a deleted deal stays in the other app.".to_string(),
    ];
    if sandbox {
        description.push(
            "This is the Pipedrive Sandbox: a local emulator of Pipedrive's API that comes with Tandem for demos and tests. Install it with the sandbox account shown on its sign-in page.".to_string(),
        );
    }
    AppListing {
        key: Provider::Pipedrive.key().to_string(),
        name: "Pipedrive".to_string(),
        sandbox,
        category: "Sales".to_string(),
        tagline: "Two-way sync of deals, persons and organizations between Pipedrive and HubSpot.".to_string(),
        description,
        logo: "/apps/pipedrive.svg".to_string(),
        publisher: "Tandem".to_string(),
        shared_data: vec![
            SharedObject { object: ObjectKind::Deal, app_object: "Deal".to_string(), directions: all.clone() },
            SharedObject { object: ObjectKind::Contact, app_object: "Person".to_string(), directions: all.clone() },
            SharedObject { object: ObjectKind::Company, app_object: "Organization".to_string(), directions: all },
        ],
        scopes: SCOPES.iter().map(|(scope, purpose)| ScopeInfo { scope: scope.to_string(), purpose: purpose.to_string() }).collect(),
        requirements: vec![
            "In Tandem: the Super Admin or App Marketplace Access permission.".to_string(),
            "In Pipedrive: an admin user of the company account you connect.".to_string(),
            "A connected HubSpot account, to set up syncs.".to_string(),
        ],
        unavailable: config.unavailable(),
    }
}

#[derive(Deserialize)]
struct Me {
    data: MeData,
}

#[derive(Deserialize)]
struct MeData {
    company_id: u64,
    company_name: Option<String>,
    company_domain: Option<String>,
}

/// The company a token belongs to (`GET /api/v1/users/me` on the token's `api_domain`).
pub async fn account(http: &reqwest::Client, api_base: &str, access_token: &str) -> Result<Account, ConnectorError> {
    let api_base = api_base.trim_end_matches('/');
    let me: Me = fetch_json(Provider::Pipedrive, http.get(format!("{api_base}/api/v1/users/me")).bearer_auth(access_token)).await?;
    let domain = me.data.company_domain.filter(|d| !d.is_empty());
    Ok(Account {
        id: me.data.company_id.to_string(),
        name: me.data.company_name.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("Pipedrive company {}", me.data.company_id)),
        domain,
        api_base: api_base.to_string(),
    })
}

/// Revokes a refresh token (`POST /oauth/revoke`, HTTP Basic client authentication).
pub async fn revoke(http: &reqwest::Client, config: &ProviderConfig, refresh_token: &str) -> Result<(), ConnectorError> {
    let url = config.revoke_url.clone().unwrap_or_else(|| config.token_url.replace("/token", "/revoke"));
    let request = http
        .post(url)
        .basic_auth(config.client_id.as_deref().unwrap_or_default(), config.client_secret.as_deref())
        .form(&[("token", refresh_token), ("token_type_hint", "refresh_token")]);
    send(Provider::Pipedrive, request).await
}

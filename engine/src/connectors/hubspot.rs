//! HubSpot: the hub every sync runs against.

use serde::Deserialize;

use super::{fetch_json, send, Account, ConnectorError, Provider, ProviderConfig};

pub const APP_URL: &str = "https://app.hubspot.com";
pub const API_URL: &str = "https://api.hubapi.com";

pub const SCOPES: &[(&str, &str)] = &[
    ("oauth", "Identify the HubSpot account"),
    ("crm.objects.deals.read", "Read deals to sync them to the app"),
    ("crm.objects.deals.write", "Create and update deals synced from the app"),
    ("crm.objects.contacts.read", "Read contacts to sync them to the app"),
    ("crm.objects.contacts.write", "Create and update contacts synced from the app"),
    ("crm.objects.companies.read", "Read companies to sync them to the app"),
    ("crm.objects.companies.write", "Create and update companies synced from the app"),
    ("crm.schemas.deals.read", "Read deal pipelines, stages and properties for the mappings"),
];

/// HubSpot's endpoints under `app_url` (where admins log in) and `api_url`.
pub fn config(app_url: &str, api_url: &str, client_id: Option<String>, client_secret: Option<String>) -> ProviderConfig {
    let app = app_url.trim_end_matches('/');
    let api = api_url.trim_end_matches('/');
    ProviderConfig {
        provider: Provider::HubSpot,
        client_id,
        client_secret,
        authorize_url: format!("{app}/oauth/authorize"),
        token_url: format!("{api}/oauth/v1/token"),
        api_url: api.to_string(),
        revoke_url: Some(format!("{api}/oauth/v1/refresh-tokens")),
        settings_hint: "TANDEM_HUBSPOT_CLIENT_ID and TANDEM_HUBSPOT_CLIENT_SECRET",
    }
}

#[derive(Deserialize)]
struct TokenInfo {
    hub_id: u64,
    hub_domain: Option<String>,
}

/// The portal a token belongs to (`GET /oauth/v1/access-tokens/{token}`).
pub async fn account(http: &reqwest::Client, config: &ProviderConfig, access_token: &str) -> Result<Account, ConnectorError> {
    let url = format!("{}/oauth/v1/access-tokens/{}", config.api_url, urlencode(access_token));
    let info: TokenInfo = fetch_json(Provider::HubSpot, http.get(url)).await?;
    let domain = info.hub_domain.filter(|d| !d.is_empty());
    Ok(Account {
        id: info.hub_id.to_string(),
        name: domain.clone().unwrap_or_else(|| format!("HubSpot account {}", info.hub_id)),
        domain,
        api_base: config.api_url.clone(),
    })
}

/// Revokes a refresh token (`DELETE /oauth/v1/refresh-tokens/{token}`).
pub async fn revoke(http: &reqwest::Client, config: &ProviderConfig, refresh_token: &str) -> Result<(), ConnectorError> {
    let base = config.revoke_url.clone().unwrap_or_else(|| format!("{}/oauth/v1/refresh-tokens", config.api_url));
    send(Provider::HubSpot, http.delete(format!("{base}/{}", urlencode(refresh_token)))).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
struct Results<T> {
    results: Vec<T>,
}

#[derive(Deserialize)]
struct PipelineJson {
    id: String,
    label: String,
    #[serde(default)]
    stages: Vec<StageJson>,
}

#[derive(Deserialize)]
struct StageJson {
    id: String,
    label: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyJson {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    field_type: String,
    #[serde(default)]
    options: Vec<OptionJson>,
    #[serde(default)]
    modification_metadata: Option<ModificationJson>,
    #[serde(default)]
    calculated: bool,
    #[serde(default)]
    hubspot_defined: Option<bool>,
}

#[derive(Deserialize)]
struct OptionJson {
    label: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModificationJson {
    #[serde(default)]
    read_only_value: bool,
}

/// Properties the stage grid handles, never mapped as fields.
const GRID_PROPERTIES: [&str; 2] = ["pipeline", "dealstage"];

/// Deal pipelines with their stages, and deal properties (`GET /crm/v3/pipelines/deals`,
/// `GET /crm/v3/properties/deals`).
pub async fn deal_schema(http: &reqwest::Client, api_base: &str, token: &str) -> Result<model::sync::SideSchema, ConnectorError> {
    use model::sync::{FieldInfo, FieldKind, FieldOption, PipelineInfo, SideSchema, StageInfo};
    let pipelines: Results<PipelineJson> =
        fetch_json(Provider::HubSpot, http.get(format!("{api_base}/crm/v3/pipelines/deals")).bearer_auth(token)).await?;
    let properties: Results<PropertyJson> =
        fetch_json(Provider::HubSpot, http.get(format!("{api_base}/crm/v3/properties/deals")).bearer_auth(token)).await?;
    let pipelines = pipelines
        .results
        .into_iter()
        .map(|p| PipelineInfo {
            id: p.id,
            name: p.label,
            stages: p.stages.into_iter().map(|s| StageInfo { id: s.id, name: s.label }).collect(),
        })
        .collect();
    let fields = properties
        .results
        .into_iter()
        .filter(|p| !GRID_PROPERTIES.contains(&p.name.as_str()))
        .map(|p| {
            let kind = match (p.kind.as_str(), p.field_type.as_str()) {
                _ if p.name == "hubspot_owner_id" => FieldKind::Owner,
                ("bool", _) | (_, "booleancheckbox") => FieldKind::Bool,
                ("number", _) => FieldKind::Number,
                ("date" | "datetime", _) => FieldKind::Date,
                ("enumeration", _) => FieldKind::Enum,
                _ => FieldKind::Text,
            };
            let read_only = p.calculated || p.modification_metadata.is_some_and(|m| m.read_only_value);
            FieldInfo {
                options: if kind == FieldKind::Enum {
                    p.options.into_iter().map(|o| FieldOption { value: o.value, label: o.label }).collect()
                } else {
                    Vec::new()
                },
                key: p.name,
                label: p.label,
                kind,
                read_only,
                custom: p.hubspot_defined == Some(false),
            }
        })
        .collect();
    Ok(SideSchema { pipelines, fields })
}

//! HubSpot: the hub every sync runs against.

pub mod records;

use serde::Deserialize;

use std::collections::HashMap;

use futures_util::future::BoxFuture;

use super::http::{Api, ApiError, Category, Retry};
use super::record::{RecordSpec, Records};
use super::{fetch_json, send, Account, ConnectorError, Provider, ProviderConfig};
use reqwest::Method;

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
    ("crm.schemas.deals.write", "Create a HubSpot pipeline for synced deals, when you ask for one"),
    ("crm.schemas.contacts.write", "Add the Tandem record ID property to contacts, so a contact is never created twice"),
    ("crm.schemas.companies.write", "Add the Tandem record ID property to companies, so a company is never created twice"),
    ("crm.objects.owners.read", "Match deal owners with the app's users by their email"),
];

/// HubSpot's endpoints under `app_url` (where admins log in) and `api_url`.
pub fn config(app_url: &str, api_url: &str, client_id: Option<String>, client_secret: Option<String>) -> ProviderConfig {
    let app = app_url.trim_end_matches('/');
    let api = api_url.trim_end_matches('/');
    ProviderConfig {
        provider: Provider::HUBSPOT,
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
    let info: TokenInfo = fetch_json(Provider::HUBSPOT, http.get(url)).await?;
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
    send(Provider::HUBSPOT, http.delete(format!("{base}/{}", urlencode(refresh_token)))).await
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
    #[serde(default)]
    metadata: StageMetadata,
}

/// A HubSpot stage's metadata: values are strings (`"true"`, `"1.0"`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StageMetadata {
    is_closed: Option<String>,
    probability: Option<String>,
}

impl StageJson {
    /// A closed stage is won when its probability is 1.0, else lost.
    fn closed(&self) -> Option<model::sync::Outcome> {
        (self.metadata.is_closed.as_deref() == Some("true")).then(|| {
            match self.metadata.probability.as_deref().and_then(|p| p.parse::<f64>().ok()) {
                Some(p) if p >= 1.0 => model::sync::Outcome::Won,
                _ => model::sync::Outcome::Lost,
            }
        })
    }
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

/// HubSpot's per-app ten-second window, from `X-HubSpot-RateLimit-Max` and
/// `X-HubSpot-RateLimit-Interval-Milliseconds`; without them, no window applies.
pub fn limit_signal(headers: &reqwest::header::HeaderMap) -> super::LimitSignal {
    match (
        super::header_number(headers, "x-hubspot-ratelimit-max"),
        super::header_number(headers, "x-hubspot-ratelimit-interval-milliseconds"),
    ) {
        (Some(max), Some(interval)) => {
            super::LimitSignal::Window { max: max as usize, interval: std::time::Duration::from_millis(interval) }
        }
        _ => super::LimitSignal::NoWindow,
    }
}

/// After a 429 without `Retry-After`: a second for the secondly (search) limit, else two.
pub fn wait_after_429(message: &str) -> std::time::Duration {
    if message.contains("secondly") && !message.contains("ten_secondly") {
        std::time::Duration::from_secs(1)
    } else {
        std::time::Duration::from_secs(2)
    }
}

/// HubSpot's daily limit spent (429 with `policyName` `DAILY`): reported at once, not waited
/// for (it resets at midnight in the account's time zone). The ten-second and search limits'
/// 429s are waited out.
pub fn refusal(status: u16, body: &[u8]) -> Option<super::Refusal> {
    if status != 429 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    (answer.get("policyName")?.as_str()? == "DAILY").then_some(super::Refusal::Exhausted)
}

/// The property where Tandem keeps its record ids (the engine creates it; never mapped).
pub const TANDEM_PROPERTY: &str = "tandem_record_id";

/// Properties the stage grid handles, never mapped as fields.
const GRID_PROPERTIES: [&str; 2] = ["pipeline", "dealstage"];

/// An object's properties, and for deals the pipelines with their stages
/// (`GET /crm/v3/properties/{objectType}`, `GET /crm/v3/pipelines/deals`).
pub async fn schema(api: &Api, object: model::apps::ObjectKind) -> Result<model::sync::SideSchema, ApiError> {
    use model::apps::ObjectKind;
    use model::sync::{FieldInfo, FieldKind, FieldOption, PipelineInfo, SideSchema, StageInfo};
    let path = match object {
        ObjectKind::Deal => "deals",
        ObjectKind::Contact => "contacts",
        ObjectKind::Company => "companies",
    };
    let pipelines: Results<PipelineJson> =
        if object == ObjectKind::Deal { api.get_json("/crm/v3/pipelines/deals", &[]).await? } else { Results { results: Vec::new() } };
    let properties: Results<PropertyJson> = api.get_json(&format!("/crm/v3/properties/{path}"), &[]).await?;
    let pipelines = pipelines
        .results
        .into_iter()
        .map(|p| PipelineInfo {
            id: p.id,
            name: p.label,
            stages: p.stages.into_iter().map(|s| StageInfo { closed: s.closed(), id: s.id, name: s.label }).collect(),
        })
        .collect();
    let fields = properties
        .results
        .into_iter()
        .filter(|p| !GRID_PROPERTIES.contains(&p.name.as_str()) && p.name != TANDEM_PROPERTY)
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

/// Creates a deal pipeline whose stages are `stages` in order (`POST /crm/v3/pipelines/deals`).
/// Each stage is (label, closed, won): closed stages get probability 1.0 when won, else 0.0; open
/// stages rise evenly.
pub async fn create_pipeline(api: &Api, label: &str, stages: &[(String, bool, bool)]) -> Result<model::sync::PipelineInfo, ApiError> {
    let open = stages.iter().filter(|(_, closed, _)| !closed).count().max(1);
    let mut step = 0;
    let inputs: Vec<serde_json::Value> = stages
        .iter()
        .enumerate()
        .map(|(i, (name, closed, won))| {
            let probability = if *closed {
                if *won {
                    "1.0".to_string()
                } else {
                    "0.0".to_string()
                }
            } else {
                step += 1;
                format!("{:.1}", (step as f64 / (open + 1) as f64 * 10.0).round() / 10.0)
            };
            serde_json::json!({
                "label": name,
                "displayOrder": i,
                "metadata": {"probability": probability, "isClosed": closed.to_string()},
            })
        })
        .collect();
    let body = serde_json::json!({"label": label, "displayOrder": 99, "stages": inputs});
    // Sent again only when HubSpot's answer proves it created nothing (a 429, a refused token).
    let created = api.call(Method::POST, "/crm/v3/pipelines/deals", &[], Some(&body), Retry::Unprocessed).await?;
    let created: PipelineJson = serde_json::from_value(created)
        .map_err(|e| ApiError::new(Category::Provider, Some(201), format!("HubSpot answered the new pipeline unreadably: {e}")))?;
    Ok(model::sync::PipelineInfo {
        id: created.id,
        name: created.label,
        stages: created.stages.into_iter().map(|s| model::sync::StageInfo { closed: s.closed(), id: s.id, name: s.label }).collect(),
    })
}

#[derive(Deserialize)]
struct SearchTotal {
    total: u64,
}

/// How many deals sit in each of `stages` of `pipeline`: one search per stage, each through the
/// connection's limiter, whose five searches a second and ten-second window a running sync's
/// calls share (a 429 waits there and the search is sent again).
pub async fn count_deals_in_stages(api: &Api, pipeline: &str, stages: &[String]) -> Result<Vec<(String, u64)>, ApiError> {
    let mut counts = Vec::new();
    for stage in stages {
        let body = records::search_body(
            serde_json::json!([{"filters": [
                {"propertyName": "pipeline", "operator": "EQ", "value": pipeline},
                {"propertyName": "dealstage", "operator": "EQ", "value": stage},
            ]}]),
            vec!["dealstage"],
            1,
            serde_json::json!([]),
            None,
        );
        let found = api.call(Method::POST, "/crm/v3/objects/deals/search", &[], Some(&body), Retry::Always).await?;
        let found: SearchTotal = serde_json::from_value(found)
            .map_err(|e| ApiError::new(Category::Provider, Some(200), format!("HubSpot answered a deal search unreadably: {e}")))?;
        counts.push((stage.clone(), found.total));
    }
    Ok(counts)
}

/// How old a webhook request may be before it is refused as a possible replay (HubSpot's advice).
pub const WEBHOOK_MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// Why a webhook request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    #[error("the X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header is missing")]
    MissingHeaders,
    #[error("the request timestamp is more than five minutes away from now")]
    Stale,
    #[error("the signature does not match the request")]
    BadSignature,
}

/// Checks a webhook request HubSpot signed with version 3: base64 of HMAC-SHA256, keyed with the
/// app's client secret, over method + full URI + body + timestamp, and a timestamp within five
/// minutes of `now_ms`. The comparison is over digests, so it does not leak where they differ.
pub fn verify_webhook_v3(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now_ms: i64,
) -> Result<(), WebhookRefusal> {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(WebhookRefusal::MissingHeaders);
    };
    let at: i64 = timestamp.trim().parse().map_err(|_| WebhookRefusal::Stale)?;
    if (now_ms - at).abs() > WEBHOOK_MAX_AGE_MS {
        return Err(WebhookRefusal::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).map_err(|_| WebhookRefusal::BadSignature)?;
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if Sha256::digest(expected.as_bytes()) == Sha256::digest(signature.trim().as_bytes()) {
        Ok(())
    } else {
        Err(WebhookRefusal::BadSignature)
    }
}

/// HubSpot, the hub of every sync, in the connector registry.
pub struct HubSpot;

impl super::Connector for HubSpot {
    fn key(&self) -> &'static str {
        model::apps::HUBSPOT
    }

    fn name(&self) -> &'static str {
        "HubSpot"
    }

    fn logo(&self) -> &'static str {
        model::apps::HUBSPOT_LOGO
    }

    fn scopes(&self) -> &'static [(&'static str, &'static str)] {
        SCOPES
    }

    /// HubSpot takes the client's credentials in the form.
    fn client_auth(&self) -> super::ClientAuth {
        super::ClientAuth::RequestBody
    }

    fn account_kind(&self) -> &'static str {
        "portal"
    }

    fn account<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        access_token: &'a str,
        _api_domain: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Account, ConnectorError>> {
        Box::pin(account(http, config, access_token))
    }

    fn revoke<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(revoke(http, config, refresh_token))
    }

    fn schema<'a>(&'a self, api: &'a Api, object: model::apps::ObjectKind) -> BoxFuture<'a, Result<model::sync::SideSchema, ApiError>> {
        Box::pin(schema(api, object))
    }

    fn count_deals_in_stages<'a>(
        &'a self,
        api: &'a Api,
        pipeline: &'a str,
        stages: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, ApiError>> {
        Box::pin(count_deals_in_stages(api, pipeline, stages))
    }

    fn records<'a>(&self, api: &'a Api, spec: RecordSpec<'a>) -> Box<dyn Records + 'a> {
        Box::new(records::HubSpotRecords::new(api, spec))
    }

    /// A deal needs its `dealname`, a company its `name`; a contact may have none.
    fn record_rules(&self, object: model::apps::ObjectKind) -> super::record::RecordRules {
        use model::apps::ObjectKind;
        let name_field = match object {
            ObjectKind::Deal => Some("dealname"),
            ObjectKind::Contact => None,
            ObjectKind::Company => Some("name"),
        };
        super::record::RecordRules { name_field, ..Default::default() }
    }

    fn ensure_tandem_field<'a>(&'a self, api: &'a Api, object: model::apps::ObjectKind) -> BoxFuture<'a, Result<String, ApiError>> {
        Box::pin(records::ensure_tandem_property(api, object))
    }

    fn users_by_email<'a>(&'a self, api: &'a Api) -> BoxFuture<'a, Result<HashMap<String, String>, ApiError>> {
        Box::pin(records::owners(api))
    }

    fn limit_signal(&self, headers: &reqwest::header::HeaderMap) -> super::LimitSignal {
        limit_signal(headers)
    }

    fn wait_after_429(&self, message: &str) -> std::time::Duration {
        wait_after_429(message)
    }

    /// Search allows five requests a second, apart from the ten-second window.
    fn is_search(&self, path: &str) -> bool {
        path.ends_with("/search")
    }

    fn refusal(&self, status: u16, body: &[u8]) -> Option<super::Refusal> {
        refusal(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature the HubSpot sandbox computes (`sandbox::hubspot::webhooks::signature_v3`) for
    /// secret "secret", POST https://tandem.example/webhooks/hubspot, body `[]`, timestamp
    /// 1700000000000, checked against an independent HMAC here.
    fn sign(secret: &str, uri: &str, body: &str, ts: &str) -> String {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{uri}{body}{ts}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn a_spent_daily_limit_is_reported_and_the_ten_second_window_waited_out() {
        let body = |policy: &str| serde_json::json!({"status": "error", "errorType": "RATE_LIMIT", "policyName": policy}).to_string();
        assert_eq!(refusal(429, body("DAILY").as_bytes()), Some(super::super::Refusal::Exhausted));
        assert_eq!(refusal(429, body("TEN_SECONDLY_ROLLING").as_bytes()), None);
        assert_eq!(refusal(429, body("SECONDLY").as_bytes()), None);
        assert_eq!(refusal(400, body("DAILY").as_bytes()), None);
        assert_eq!(refusal(429, b"not json"), None);
    }

    #[test]
    fn webhook_signatures_v3() {
        let uri = "https://tandem.example/webhooks/hubspot";
        let ts = "1700000000000";
        let good = sign("secret", uri, "[]", ts);
        let now = 1_700_000_060_000;
        assert_eq!(verify_webhook_v3("secret", "POST", uri, b"[]", Some(ts), Some(&good), now), Ok(()));
        assert_eq!(verify_webhook_v3("other", "POST", uri, b"[]", Some(ts), Some(&good), now), Err(WebhookRefusal::BadSignature));
        assert_eq!(verify_webhook_v3("secret", "POST", uri, b"[{}]", Some(ts), Some(&good), now), Err(WebhookRefusal::BadSignature));
        assert_eq!(verify_webhook_v3("secret", "POST", uri, b"[]", Some(ts), None, now), Err(WebhookRefusal::MissingHeaders));
        let late = now + WEBHOOK_MAX_AGE_MS;
        assert_eq!(verify_webhook_v3("secret", "POST", uri, b"[]", Some(ts), Some(&good), late), Err(WebhookRefusal::Stale));
    }
}

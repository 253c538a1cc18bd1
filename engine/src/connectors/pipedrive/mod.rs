//! Pipedrive: the first app of the Marketplace.

pub mod records;
pub mod webhooks;

use model::apps::{AppListing, ObjectKind, ScopeInfo, SharedObject, SyncDirection};
use serde::Deserialize;

use std::collections::HashMap;

use futures_util::future::BoxFuture;

use super::http::{Api, ApiError, Category};
use super::record::{RecordRules, RecordSpec, Records};
use super::{fetch_json, send, Account, ConnectorError, LinkField, Provider, ProviderConfig};

pub const OAUTH_URL: &str = "https://oauth.pipedrive.com";
/// Used until a token names its company's own `api_domain`.
pub const API_URL: &str = "https://api.pipedrive.com";

/// The scopes Tandem's Pipedrive app is registered with (in Pipedrive's Developer Hub, not in the
/// authorization request).
pub const SCOPES: &[(&str, &str)] = &[
    ("deals:full", "Read, create and update deals, pipelines and stages"),
    ("contacts:full", "Read, create and update persons and organizations"),
    ("users:read", "Identify the Pipedrive company and match deal owners"),
    ("admin", "Register webhooks, so changes reach Tandem within seconds"),
];

pub fn config(oauth_url: &str, client_id: Option<String>, client_secret: Option<String>) -> ProviderConfig {
    let oauth = oauth_url.trim_end_matches('/');
    let sandbox_api = oauth.to_string();
    let is_real = oauth == OAUTH_URL;
    ProviderConfig {
        provider: Provider::PIPEDRIVE,
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
        key: Provider::PIPEDRIVE.key().to_string(),
        name: "Pipedrive".to_string(),
        sandbox,
        category: "Sales".to_string(),
        tagline: "Two-way sync of deals, persons and organizations between Pipedrive and HubSpot.".to_string(),
        description,
        logo: config.logo().to_string(),
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
    let me: Me = fetch_json(Provider::PIPEDRIVE, http.get(format!("{api_base}/api/v1/users/me")).bearer_auth(access_token)).await?;
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
    send(Provider::PIPEDRIVE, request).await
}

#[derive(Deserialize)]
struct List<T> {
    data: Option<Vec<T>>,
}

#[derive(Deserialize)]
struct PipelineJson {
    id: u64,
    name: String,
    #[serde(default)]
    is_deleted: bool,
}

#[derive(Deserialize)]
struct StageJson {
    id: u64,
    name: String,
    pipeline_id: u64,
    #[serde(default)]
    order_nr: i64,
    #[serde(default)]
    is_deleted: bool,
}

/// A field definition in API v2's shape (`getDealFields`, `getPersonFields`,
/// `getOrganizationFields`).
#[derive(Deserialize)]
pub struct FieldJson {
    pub field_code: String,
    pub field_name: String,
    pub field_type: String,
    #[serde(default)]
    options: Option<Vec<OptionJson>>,
    #[serde(default)]
    pub is_custom_field: bool,
}

#[derive(Deserialize)]
struct FieldPage {
    data: Option<Vec<FieldJson>>,
    additional_data: Option<Paging>,
}

/// Where API v2 lists and adds the fields of `object`.
pub fn fields_path(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Deal => "/api/v2/dealFields",
        ObjectKind::Contact => "/api/v2/personFields",
        ObjectKind::Company => "/api/v2/organizationFields",
    }
}

/// Every field of `object` (API v2, 500 a page, following `next_cursor`).
pub async fn fields(api: &Api, object: ObjectKind) -> Result<Vec<FieldJson>, ApiError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "500".to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page: FieldPage = api.get_json(fields_path(object), &query).await?;
        all.extend(page.data.unwrap_or_default());
        cursor = page.additional_data.and_then(|a| a.next_cursor);
        if cursor.is_none() {
            return Ok(all);
        }
    }
}

#[derive(Deserialize)]
struct OptionJson {
    id: serde_json::Value,
    label: String,
}

/// The fields that link a record of `object` to another record. A deal belongs to one person and
/// one organization, a person to one organization.
pub fn link_fields(object: ObjectKind) -> &'static [LinkField] {
    const PERSON: LinkField = LinkField { object: ObjectKind::Contact, field: "person_id", label: "Person" };
    const ORGANIZATION: LinkField = LinkField { object: ObjectKind::Company, field: "org_id", label: "Organization" };
    match object {
        ObjectKind::Deal => &[PERSON, ORGANIZATION],
        ObjectKind::Contact => &[ORGANIZATION],
        ObjectKind::Company => &[],
    }
}

/// How long Pipedrive's burst window is: `x-ratelimit-limit` calls per rolling two seconds.
pub const BURST_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// Pipedrive's burst window: `x-ratelimit-limit` calls per [`BURST_WINDOW`], which the account's
/// budget paces; when `x-ratelimit-remaining` reaches 0 anyway (another integration spent it),
/// nothing more until `x-ratelimit-reset` seconds have passed. A limit of 0 means no window (the
/// sandbox with its limits off); an answer without the header says nothing.
pub fn limit_signal(headers: &reqwest::header::HeaderMap) -> super::LimitSignal {
    let num = |name: &str| super::header_number(headers, name);
    match num("x-ratelimit-limit") {
        Some(limit) if limit > 0 && num("x-ratelimit-remaining") == Some(0) => {
            super::LimitSignal::PauseFor(std::time::Duration::from_secs(num("x-ratelimit-reset").unwrap_or(2)))
        }
        Some(limit) if limit > 0 => super::LimitSignal::Window { max: limit as usize, interval: BURST_WINDOW },
        Some(_) => super::LimitSignal::NoWindow,
        None => super::LimitSignal::Nothing,
    }
}

/// Pipedrive keeps won and lost as a deal's status, not as stages; the stage grid offers them as
/// the last two stages of every pipeline.
pub const WON: &str = "won";
pub const LOST: &str = "lost";

/// The custom field where Tandem keeps its record ids (the engine creates it; never mapped).
pub const TANDEM_FIELD: &str = super::TANDEM_FIELD_LABEL;

/// Fields the stage grid and associations handle, never mapped as fields.
const NOT_MAPPABLE: [&str; 8] = ["pipeline_id", "stage_id", "status", "person_id", "org_id", "id", "currency", "visible_to"];
/// Fields Pipedrive maintains itself.
const READ_ONLY: [&str; 8] =
    ["add_time", "update_time", "stage_change_time", "won_time", "lost_time", "close_time", "creator_user_id", "probability"];

/// The fields of deals (`GET /api/v2/dealFields`), persons (`personFields`) or organizations
/// (`organizationFields`), and for deals the pipelines with their stages plus Won and Lost
/// (`GET /api/v2/pipelines`, `GET /api/v2/stages`).
pub async fn schema(api: &Api, object: model::apps::ObjectKind) -> Result<model::sync::SideSchema, ApiError> {
    use model::apps::ObjectKind;
    use model::sync::{FieldInfo, FieldKind, FieldOption, Outcome, PipelineInfo, SideSchema, StageInfo};
    let (pipelines, stages): (List<PipelineJson>, List<StageJson>) = if object == ObjectKind::Deal {
        let pipelines = api.get_json("/api/v2/pipelines", &[]).await?;
        let stages = api.get_json("/api/v2/stages", &[("limit", "500".to_string())]).await?;
        (pipelines, stages)
    } else {
        (List { data: None }, List { data: None })
    };
    let fields = fields(api, object).await?;
    let mut stages: Vec<StageJson> = stages.data.unwrap_or_default().into_iter().filter(|s| !s.is_deleted).collect();
    stages.sort_by_key(|s| (s.pipeline_id, s.order_nr));
    let pipelines = pipelines
        .data
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.is_deleted)
        .map(|p| {
            let mut own: Vec<StageInfo> = stages
                .iter()
                .filter(|s| s.pipeline_id == p.id)
                .map(|s| StageInfo { id: s.id.to_string(), name: s.name.clone(), closed: None })
                .collect();
            if !own.is_empty() {
                own.push(StageInfo { id: WON.into(), name: "Won".into(), closed: Some(Outcome::Won) });
                own.push(StageInfo { id: LOST.into(), name: "Lost".into(), closed: Some(Outcome::Lost) });
            }
            PipelineInfo { id: p.id.to_string(), name: p.name, stages: own }
        })
        .collect();
    let fields = fields
        .into_iter()
        .filter(|f| !NOT_MAPPABLE.contains(&f.field_code.as_str()) && f.field_name != TANDEM_FIELD)
        .filter_map(|f| {
            let kind = match f.field_type.as_str() {
                "varchar" | "text" | "varchar_auto" | "phone" | "address" | "email" => FieldKind::Text,
                "monetary" | "double" | "int" => FieldKind::Number,
                "date" | "daterange" => FieldKind::Date,
                "enum" | "set" | "varchar_options" => FieldKind::Enum,
                "user" => FieldKind::Owner,
                _ => return None,
            };
            let options = f
                .options
                .unwrap_or_default()
                .into_iter()
                .map(|o| FieldOption {
                    value: match o.id {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    },
                    label: o.label,
                })
                .collect();
            Some(FieldInfo {
                read_only: READ_ONLY.contains(&f.field_code.as_str()),
                custom: f.is_custom_field && f.field_code.len() == 40,
                key: f.field_code,
                label: f.field_name,
                kind,
                options,
            })
        })
        .collect();
    Ok(SideSchema { pipelines, fields })
}

#[derive(Deserialize)]
struct DealPage {
    data: Option<Vec<DealStage>>,
    additional_data: Option<Paging>,
}

#[derive(Deserialize)]
struct DealStage {
    stage_id: Option<u64>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Paging {
    next_cursor: Option<String>,
}

/// How many deals of `pipeline` sit in each stage (open deals by stage; won and lost deals under
/// [`WON`] and [`LOST`]), paging through `GET /api/v2/deals`.
pub async fn count_deals_in_stages(api: &Api, pipeline: &str) -> Result<Vec<(String, u64)>, ApiError> {
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("pipeline_id", pipeline.to_string()), ("limit", "500".to_string()), ("status", "open,won,lost".to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = api.get("/api/v2/deals", &query).await?;
        let page: DealPage = serde_json::from_value(page)
            .map_err(|e| ApiError::new(Category::Provider, Some(200), format!("Pipedrive answered a deal list unreadably: {e}")))?;
        for deal in page.data.unwrap_or_default() {
            let key = match deal.status.as_deref() {
                Some("won") => WON.to_string(),
                Some("lost") => LOST.to_string(),
                _ => match deal.stage_id {
                    Some(id) => id.to_string(),
                    None => continue,
                },
            };
            *counts.entry(key).or_default() += 1;
        }
        cursor = page.additional_data.and_then(|a| a.next_cursor);
        if cursor.is_none() {
            break;
        }
    }
    Ok(counts.into_iter().collect())
}

/// Pipedrive, the first app, in the connector registry.
pub struct Pipedrive;

impl super::Connector for Pipedrive {
    fn key(&self) -> &'static str {
        "pipedrive"
    }

    fn name(&self) -> &'static str {
        "Pipedrive"
    }

    fn logo(&self) -> &'static str {
        "/apps/pipedrive.svg"
    }

    /// None in the authorization URL: Pipedrive's authorization request takes no `scope` (its
    /// spec lists `client_id`, `redirect_uri` and `state`); an app's scopes are those registered
    /// with it in Pipedrive's Developer Hub ([`SCOPES`], shown on the Marketplace card), and the
    /// token answer names what was granted.
    fn scopes(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Pipedrive takes the client's credentials in HTTP Basic auth.
    fn client_auth(&self) -> super::ClientAuth {
        super::ClientAuth::BasicAuth
    }

    fn listing(&self, config: &ProviderConfig) -> Option<AppListing> {
        Some(listing(config))
    }

    /// Each token names its company's API host (`api_domain`).
    fn account<'a>(
        &'a self,
        http: &'a reqwest::Client,
        config: &'a ProviderConfig,
        access_token: &'a str,
        api_domain: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Account, ConnectorError>> {
        let api_base = api_domain.filter(|d| !d.is_empty()).unwrap_or(&config.api_url);
        Box::pin(account(http, api_base, access_token))
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
        Box::pin(schema(api, object))
    }

    fn count_deals_in_stages<'a>(
        &'a self,
        api: &'a Api,
        pipeline: &'a str,
        _stages: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, ApiError>> {
        Box::pin(count_deals_in_stages(api, pipeline))
    }

    fn records<'a>(&self, api: &'a Api, spec: RecordSpec<'a>) -> Box<dyn Records + 'a> {
        Box::new(records::PipedriveRecords::new(api, spec))
    }

    /// A deal needs its `title`, a person or organization its `name`; API v2 takes a person's
    /// first and last name as one `name`, so those two travel together.
    fn record_rules(&self, object: ObjectKind) -> RecordRules {
        match object {
            ObjectKind::Deal => RecordRules { name_field: Some("title"), ..Default::default() },
            ObjectKind::Contact => RecordRules {
                name_field: Some("name"),
                name_from: &["first_name", "last_name"],
                written_together: &[("first_name", "last_name")],
            },
            ObjectKind::Company => RecordRules { name_field: Some("name"), ..Default::default() },
        }
    }

    fn ensure_tandem_field<'a>(&'a self, api: &'a Api, object: ObjectKind) -> BoxFuture<'a, Result<String, ApiError>> {
        Box::pin(records::ensure_tandem_field(api, object))
    }

    fn users_by_email<'a>(&'a self, api: &'a Api) -> BoxFuture<'a, Result<HashMap<String, String>, ApiError>> {
        Box::pin(records::users(api))
    }

    /// Deals: name, amount, close date, owner; persons: names, email, phone, owner;
    /// organizations: name, website (HubSpot's domain), address, owner.
    fn default_mappings(&self, object: ObjectKind) -> &'static [(&'static str, &'static str)] {
        match object {
            ObjectKind::Deal => {
                &[("dealname", "title"), ("amount", "value"), ("closedate", "expected_close_date"), ("hubspot_owner_id", "user_id")]
            }
            ObjectKind::Contact => &[
                ("firstname", "first_name"),
                ("lastname", "last_name"),
                ("email", "email"),
                ("phone", "phone"),
                ("hubspot_owner_id", "owner_id"),
            ],
            ObjectKind::Company => &[("name", "name"), ("domain", "website"), ("address", "address"), ("hubspot_owner_id", "owner_id")],
        }
    }

    fn link_fields(&self, object: ObjectKind) -> &'static [LinkField] {
        link_fields(object)
    }

    fn registers_webhooks(&self) -> bool {
        true
    }

    fn register_webhooks<'a>(
        &'a self,
        api: &'a Api,
        url: &'a str,
        user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(webhooks::register(api, url, user, password))
    }

    fn remove_webhooks<'a>(&'a self, api: &'a Api, prefix: &'a str, keep: Option<&'a str>) -> BoxFuture<'a, Result<usize, ApiError>> {
        Box::pin(webhooks::remove(api, prefix, keep))
    }

    /// A v2.0 delivery names its entity in `meta.entity` (`deal`, `person`, `organization`).
    fn webhook_objects(&self, body: &[u8]) -> Result<Vec<&'static str>, String> {
        let event: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let entity = event.pointer("/meta/entity").and_then(serde_json::Value::as_str).unwrap_or("deal");
        Ok(super::object_named(entity).into_iter().collect())
    }

    /// Stages, pipelines and users have webhooks of their own (registered with the records').
    fn webhook_changes_schema(&self, body: &[u8]) -> bool {
        serde_json::from_slice(body).is_ok_and(|event| webhooks::changes_schema(&event))
    }

    fn limit_signal(&self, headers: &reqwest::header::HeaderMap) -> super::LimitSignal {
        limit_signal(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::LimitSignal;

    fn headers(pairs: &[(&'static str, &str)]) -> reqwest::header::HeaderMap {
        pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn the_burst_window_is_learned_a_spent_one_pauses_and_a_limit_of_zero_is_none() {
        let window = limit_signal(&headers(&[("x-ratelimit-limit", "80"), ("x-ratelimit-remaining", "12"), ("x-ratelimit-reset", "2")]));
        assert_eq!(window, LimitSignal::Window { max: 80, interval: BURST_WINDOW });
        let spent = limit_signal(&headers(&[("x-ratelimit-limit", "80"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]));
        assert_eq!(spent, LimitSignal::PauseFor(std::time::Duration::from_secs(1)));
        assert_eq!(limit_signal(&headers(&[("x-ratelimit-limit", "0"), ("x-ratelimit-remaining", "0")])), LimitSignal::NoWindow);
        assert_eq!(limit_signal(&headers(&[])), LimitSignal::Nothing);
    }
}

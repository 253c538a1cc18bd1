//! Sync setup: reading both providers' pipelines, stages and deal fields live, validating and
//! saving sync settings (every save a new version, recorded in the audit log), and turning syncs
//! on, pausing and off. The sync engine obeys what is saved here.

use std::sync::Arc;

use model::apps::{ObjectKind, HUBSPOT};
use model::sync::{Schemas, SyncSettings, SyncStatus, SyncSummary};
use model::{FieldError, SessionUser};

use crate::clock::now_ms;
use crate::connections::{ConnectionError, Connections};
use crate::connectors::http::{Api, ApiError, Category, Stats};
use crate::connectors::{self, Provider};
use crate::secret::new_id;
use crate::store::{NewSettingsVersion, StoreError, SyncRow};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Connect HubSpot first: every sync runs against a HubSpot account.")]
    NoHubSpot,
    #[error("That connection does not exist or is not an app.")]
    NotFound,
    #[error("the settings are not valid ({} problems)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The provider refused to show something (missing permission).
    #[error("{provider} refused to show its {what} to the connected account ({message}). Reconnect with an account that may read them.")]
    Forbidden { provider: String, what: &'static str, message: String },
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Syncs {
    connections: Connections,
}

impl Syncs {
    pub fn new(connections: Connections) -> Syncs {
        Syncs { connections }
    }

    /// Both sides' fields for `object` (and for deals the pipelines with their stages), read now
    /// from the providers.
    pub async fn schemas(&self, app_connection: &str, object: ObjectKind) -> Result<Schemas, SyncError> {
        let app = self.connections.get(app_connection).await.map_err(|e| match e {
            ConnectionError::NotFound => SyncError::NotFound,
            other => other.into(),
        })?;
        if app.provider == HUBSPOT {
            return Err(SyncError::NotFound);
        }
        let hubspot = self.hubspot_connection(&app).await?;
        let app_provider = Provider::parse(&app.provider).ok_or(SyncError::NotFound)?;
        // Through each connection's limiter, as the engine's calls go: a sync running meanwhile
        // may be using the account's whole window, and the setup then waits its turn.
        let (hub_api, app_api) = tokio::try_join!(self.api(&hubspot.id, Provider::HUBSPOT), self.api(&app.id, app_provider))?;
        let (hub_schema, app_schema) = tokio::join!(hub_api.schema(object), app_api.schema(object));
        Ok(Schemas {
            defaults: app_provider.default_mappings(object).iter().map(|(h, a)| (h.to_string(), a.to_string())).collect(),
            app_name: app.provider_name.clone(),
            hubspot: hub_schema.map_err(|e| read_error(e, &hubspot.provider_name))?,
            app: app_schema.map_err(|e| read_error(e, &app.provider_name))?,
        })
    }

    /// Validates `settings` against both providers as they are now and saves them as the next
    /// version (turning the sync on when it is new).
    pub async fn save(&self, user: &SessionUser, app_connection: &str, settings: &SyncSettings) -> Result<SyncSummary, SyncError> {
        let schemas = self.schemas(app_connection, settings.object).await?;
        settings.validate(&schemas).map_err(SyncError::Invalid)?;
        let json = serde_json::to_string(settings).map_err(|e| SyncError::Provider(e.to_string()))?;
        let store = self.connections.store();
        let (id, version) = store
            .save_sync_settings(
                &NewSettingsVersion {
                    new_id: &new_id(),
                    connection_id: app_connection,
                    object: settings.object.key(),
                    settings: &json,
                    user_id: &user.id,
                    user_name: &user.name,
                },
                now_ms(),
            )
            .await?;
        let app = self.connections.get(app_connection).await?;
        self.connections
            .audit(
                Some(user),
                "sync.saved",
                Some(&id),
                format!(
                    "Saved the {} sync settings (version {version}) for {} {}",
                    settings.object.label().to_lowercase(),
                    app.provider_name,
                    app.account_name
                ),
            )
            .await?;
        let row = store.sync(&id).await?.ok_or(SyncError::NotFound)?;
        summary(&row)
    }

    /// Creates a HubSpot pipeline for synced deals whose stages mirror the app pipeline's (its
    /// won and lost stages become closed ones), so every stage maps one to one.
    pub async fn create_hubspot_pipeline(
        &self,
        user: &SessionUser,
        app_connection: &str,
        app_pipeline: &str,
        label: &str,
    ) -> Result<model::sync::PipelineInfo, SyncError> {
        let label = label.trim();
        if label.is_empty() {
            return Err(SyncError::Invalid(vec![FieldError::new("label", "Name the new pipeline.")]));
        }
        let schemas = self.schemas(app_connection, ObjectKind::Deal).await?;
        if schemas.hubspot.pipelines.iter().any(|p| p.name.eq_ignore_ascii_case(label)) {
            return Err(SyncError::Invalid(vec![FieldError::new("label", format!("HubSpot already has a pipeline called {label}."))]));
        }
        let source = schemas
            .app
            .pipeline(app_pipeline)
            .ok_or_else(|| SyncError::Invalid(vec![FieldError::new("app_pipeline", "Choose a pipeline that still exists.")]))?;
        let stages: Vec<(String, bool, bool)> =
            source.stages.iter().map(|s| (s.name.clone(), s.closed.is_some(), s.closed == Some(model::sync::Outcome::Won))).collect();
        let app = self.connections.get(app_connection).await?;
        let hubspot = self.hubspot_connection(&app).await?;
        let api = self.api(&hubspot.id, Provider::HUBSPOT).await?;
        let created = connectors::hubspot::create_pipeline(&api, label, &stages).await.map_err(|e| match e.category {
            Category::Permission => SyncError::Forbidden {
                provider: hubspot.provider_name.clone(),
                what: "pipelines (creating one needs the crm.schemas.deals.write permission)",
                message: e.provider_message.unwrap_or(e.message),
            },
            _ => SyncError::Provider(e.message),
        })?;
        self.connections
            .audit(
                Some(user),
                "hubspot.pipeline_created",
                Some(&hubspot.id),
                format!("Created the HubSpot pipeline {} for deals synced from {} ({})", created.name, schemas.app_name, source.name),
            )
            .await?;
        Ok(created)
    }

    /// How many deals each stage of the two pipelines holds, read from both providers (the
    /// setup shows what unmapped stages keep from syncing).
    pub async fn stage_counts(
        &self,
        app_connection: &str,
        hubspot_pipeline: &str,
        app_pipeline: &str,
    ) -> Result<model::sync::StageCounts, SyncError> {
        let schemas = self.schemas(app_connection, ObjectKind::Deal).await?;
        let hub_stages: Vec<String> =
            schemas.hubspot.pipeline(hubspot_pipeline).map(|p| p.stages.iter().map(|s| s.id.clone()).collect()).unwrap_or_default();
        let app = self.connections.get(app_connection).await?;
        let hubspot = self.hubspot_connection(&app).await?;
        let app_provider = Provider::parse(&app.provider).ok_or(SyncError::NotFound)?;
        let app_stages: Vec<String> =
            schemas.app.pipeline(app_pipeline).map(|p| p.stages.iter().map(|s| s.id.clone()).collect()).unwrap_or_default();
        // Through each connection's limiter, as the schemas are read.
        let (hub_api, app_api) = tokio::try_join!(self.api(&hubspot.id, Provider::HUBSPOT), self.api(&app.id, app_provider))?;
        let (hub, app) = tokio::join!(
            Provider::HUBSPOT.count_deals_in_stages(&hub_api, hubspot_pipeline, &hub_stages),
            app_provider.count_deals_in_stages(&app_api, app_pipeline, &app_stages)
        );
        Ok(model::sync::StageCounts {
            hubspot: hub.map_err(|e| read_error(e, &hubspot.provider_name))?,
            app: app.map_err(|e| read_error(e, &schemas.app_name))?,
        })
    }

    /// The HubSpot account the app's connection syncs with.
    async fn hubspot_connection(&self, app: &model::apps::ConnectionSummary) -> Result<model::apps::ConnectionSummary, SyncError> {
        let all = self.connections.list().await?;
        app.hub_in(&all).cloned().ok_or(SyncError::NoHubSpot)
    }

    pub async fn list(&self) -> Result<Vec<SyncSummary>, SyncError> {
        self.connections.store().syncs().await?.iter().map(summary).collect()
    }

    /// Turns a sync on, pauses it or turns it off (its settings and history stay).
    pub async fn set_status(&self, user: &SessionUser, sync_id: &str, status: SyncStatus) -> Result<SyncSummary, SyncError> {
        let store = self.connections.store();
        let row = store.sync(sync_id).await?.ok_or(SyncError::NotFound)?;
        if store.set_sync_status(sync_id, status.as_str(), now_ms()).await? {
            let verb = match status {
                SyncStatus::On => "Turned on",
                SyncStatus::Paused => "Paused",
                SyncStatus::Off => "Turned off",
            };
            let app = self.connections.get(&row.connection_id).await?;
            self.connections
                .audit(
                    Some(user),
                    "sync.status",
                    Some(sync_id),
                    format!("{verb} the {} sync for {} {}", row.object, app.provider_name, app.account_name),
                )
                .await?;
        }
        let row = store.sync(sync_id).await?.ok_or(SyncError::NotFound)?;
        summary(&row)
    }
}

fn summary(row: &SyncRow) -> Result<SyncSummary, SyncError> {
    let settings: SyncSettings = serde_json::from_str(&row.settings)
        .map_err(|e| SyncError::Provider(format!("stored settings of sync {} are unreadable: {e}", row.id)))?;
    Ok(SyncSummary {
        id: row.id.clone(),
        connection_id: row.connection_id.clone(),
        status: SyncStatus::parse(&row.status).unwrap_or(SyncStatus::Paused),
        version: row.version,
        saved_by: row.saved_by_name.clone(),
        saved_at: row.saved_at,
        settings,
    })
}

impl Syncs {
    /// A connection's API as the setup calls it: its limiter, retries and token refresh.
    async fn api(&self, connection_id: &str, provider: Provider) -> Result<Api, SyncError> {
        let limiter = self.connections.limiter(connection_id);
        Api::open(&self.connections, connection_id, provider, limiter, Arc::new(Stats::default()))
            .await
            .map_err(|e| read_error(e, provider.name()))
    }
}

/// What the setup says when a provider would not show its schema.
fn read_error(e: ApiError, provider: &str) -> SyncError {
    match e.category {
        Category::Permission => SyncError::Forbidden {
            provider: provider.to_string(),
            what: "pipelines, stages or deal fields",
            message: e.provider_message.unwrap_or(e.message),
        },
        _ => SyncError::Provider(format!("{provider} could not be read: {}", e.provider_message.unwrap_or(e.message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_to_show_stages_says_it_is_a_permission() {
        // As a stage count's call (`Api::call`) answers a 403 and a 503.
        let refused = ApiError {
            provider_message: Some("Scope and URL mismatch".into()),
            ..ApiError::new(Category::Permission, Some(403), "Pipedrive refused: Scope and URL mismatch")
        };
        let message = read_error(refused, "Pipedrive (Sandbox)").to_string();
        assert_eq!(
            message,
            "Pipedrive (Sandbox) refused to show its pipelines, stages or deal fields to the connected account (Scope and URL mismatch). Reconnect with an account that may read them."
        );
        let down = ApiError {
            provider_message: Some("Service Unavailable".into()),
            ..ApiError::new(Category::Provider, Some(503), "Pipedrive answered 503: Service Unavailable")
        };
        assert!(matches!(read_error(down, "Pipedrive (Sandbox)"), SyncError::Provider(m) if m.contains("could not be read")));
    }

    #[test]
    fn a_refusal_read_through_the_api_says_it_is_a_permission_too() {
        let refused = ApiError {
            provider_message: Some("Scope and URL mismatch".into()),
            ..ApiError::new(Category::Permission, Some(403), "Pipedrive could not be read: Scope and URL mismatch")
        };
        assert_eq!(
            read_error(refused, "Pipedrive (Sandbox)").to_string(),
            "Pipedrive (Sandbox) refused to show its pipelines, stages or deal fields to the connected account (Scope and URL mismatch). Reconnect with an account that may read them."
        );
        let down = ApiError::new(Category::Provider, Some(503), "Pipedrive could not be read: Service Unavailable");
        assert!(matches!(read_error(down, "Pipedrive (Sandbox)"), SyncError::Provider(m) if m.contains("could not be read")));
    }
}

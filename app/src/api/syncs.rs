//! Sync setup: both providers' pipelines, stages and fields; saving settings; on, pause, off.

use leptos::prelude::*;
use model::sync::{PipelineInfo, Schemas, StageCounts, SyncSettings, SyncSummary};

use crate::error::AppError;

/// Both sides' deal pipelines (with stages) and fields, read live from the providers.
#[server(endpoint = "sync_schemas")]
pub async fn sync_schemas(connection_id: String, object: model::apps::ObjectKind) -> Result<Schemas, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.syncs.schemas(&connection_id, object).await.map_err(ssr::sync_error)
}

#[server(endpoint = "syncs")]
pub async fn list_syncs() -> Result<Vec<SyncSummary>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.syncs.list().await.map_err(ssr::sync_error)
}

/// Validates and saves the settings as a new version; a new sync is turned on.
#[server(endpoint = "save_sync", input = server_fn::codec::Json)]
pub async fn save_sync(connection_id: String, settings: SyncSettings) -> Result<SyncSummary, AppError> {
    use super::ssr;
    let user = ssr::require(model::Permission::ManageApps)?;
    ssr::context()?.syncs.save(&user, &connection_id, &settings).await.map_err(ssr::sync_error)
}

/// `on`, `paused` or `off`.
#[server(endpoint = "set_sync_status")]
pub async fn set_sync_status(sync_id: String, status: String) -> Result<SyncSummary, AppError> {
    use super::ssr;
    let user = ssr::require(model::Permission::ManageApps)?;
    let status = model::sync::SyncStatus::parse(&status)
        .ok_or_else(|| ssr::fail(AppError::Invalid(vec![model::FieldError::new("status", "Choose on, paused or off.")])))?;
    ssr::context()?.syncs.set_status(&user, &sync_id, status).await.map_err(ssr::sync_error)
}

/// Creates a HubSpot pipeline for synced deals whose stages mirror the app pipeline's.
#[server(endpoint = "create_hubspot_pipeline")]
pub async fn create_hubspot_pipeline(connection_id: String, app_pipeline: String, label: String) -> Result<PipelineInfo, AppError> {
    use super::ssr;
    let user = ssr::require(model::Permission::ManageApps)?;
    ssr::context()?.syncs.create_hubspot_pipeline(&user, &connection_id, &app_pipeline, &label).await.map_err(ssr::sync_error)
}

/// How many deals each stage of a pair of pipelines holds, on both sides. Counting reads the
/// providers (the account's API limit, shared with its other integrations): only those who may
/// set up syncs can spend it; a Viewer's stage grid shows no counts.
#[server(endpoint = "stage_counts")]
pub async fn count_stage_deals(connection_id: String, hubspot_pipeline: String, app_pipeline: String) -> Result<StageCounts, AppError> {
    use super::ssr;
    ssr::require(model::Permission::ManageApps)?;
    ssr::context()?.syncs.stage_counts(&connection_id, &hubspot_pipeline, &app_pipeline).await.map_err(ssr::sync_error)
}

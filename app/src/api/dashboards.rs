//! Sync health and history: what each dashboard page reads, and Retry.

use leptos::prelude::*;
use model::dashboard::{Chart, OverviewRow, Progress, RecordPage, RecordSummary, RunDetail, RunFilter, RunPage, SyncHealth, Timeline};

use crate::error::AppError;

#[server(endpoint = "sync_health")]
pub async fn get_sync_health(sync_id: String) -> Result<SyncHealth, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.health(&sync_id).await.map_err(ssr::dashboard_error)
}

/// The initial sync's progress (None once it is over), polled by the progress bar.
#[server(endpoint = "sync_progress")]
pub async fn sync_progress(sync_id: String) -> Result<Option<Progress>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.progress(&sync_id).await.map_err(ssr::dashboard_error)
}

/// One page of the records in a Health bucket (`in_sync`, `excluded`, `failing`, `pending`).
#[server(endpoint = "sync_records")]
pub async fn sync_records(sync_id: String, bucket: String, reason: Option<String>, after: Option<String>) -> Result<RecordPage, AppError> {
    use super::ssr;
    ssr::require_user()?;
    let bucket = model::dashboard::RecordBucket::parse(&bucket)
        .ok_or_else(|| ssr::fail(AppError::NotFound("There is no such group of records.".into())))?;
    ssr::context()?
        .dashboards
        .records(&sync_id, bucket, reason.as_deref().filter(|r| !r.is_empty()), after.as_deref())
        .await
        .map_err(ssr::dashboard_error)
}

/// Records found by name or by their Tandem, HubSpot or app id.
#[server(endpoint = "search_records")]
pub async fn search_records(sync_id: String, q: String) -> Result<Vec<RecordSummary>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.search(&sync_id, &q).await.map_err(ssr::dashboard_error)
}

#[server(endpoint = "record_timeline")]
pub async fn record_timeline(sync_id: String, record_id: String, before: Option<String>) -> Result<Timeline, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.timeline(&sync_id, &record_id, before.as_deref()).await.map_err(ssr::dashboard_error)
}

#[server(endpoint = "sync_runs", input = server_fn::codec::Json)]
pub async fn sync_runs(sync_id: String, filter: RunFilter, before: Option<String>) -> Result<RunPage, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.runs(&sync_id, &filter, before.as_deref()).await.map_err(ssr::dashboard_error)
}

#[server(endpoint = "sync_run")]
pub async fn sync_run(sync_id: String, run_id: String, after: Option<String>) -> Result<RunDetail, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.run_detail(&sync_id, &run_id, after.as_deref()).await.map_err(ssr::dashboard_error)
}

/// `range`: `24h`, `7d` or `30d`.
#[server(endpoint = "sync_chart")]
pub async fn sync_chart(sync_id: String, range: String) -> Result<Chart, AppError> {
    use super::ssr;
    ssr::require_user()?;
    let range = model::dashboard::ChartRange::parse(&range).unwrap_or(model::dashboard::ChartRange::Day);
    ssr::context()?.dashboards.chart(&sync_id, range).await.map_err(ssr::dashboard_error)
}

#[server(endpoint = "sync_overview")]
pub async fn sync_overview() -> Result<Vec<OverviewRow>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.dashboards.overview().await.map_err(ssr::dashboard_error)
}

/// Retries one failed record, those of one error category, or every failed record; answers
/// what to tell the admin.
#[server(endpoint = "retry_records")]
pub async fn retry_records(sync_id: String, record_id: Option<String>, category: Option<String>) -> Result<String, AppError> {
    use super::ssr;
    let user = ssr::require(model::Permission::ManageApps)?;
    let (record_id, category) = (record_id.filter(|r| !r.is_empty()), category.filter(|c| !c.is_empty()));
    ssr::context()?
        .dashboards
        .retry(&user, &sync_id, record_id.as_deref(), category.as_deref())
        .await
        .map(model::dashboard::retry_message)
        .map_err(ssr::dashboard_error)
}

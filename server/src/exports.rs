//! What Tandem serves outside the pages: the CSV export of a sync's history and record events,
//! and `/metrics` in Prometheus' text format.

use app::api::ssr::CurrentSession;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use engine::dashboards::{export_range, DashboardError, ExportCursor, ExportKind};
use http::{header, StatusCode};
use serde::Deserialize;

use crate::startup::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /settings/integrations/syncs/{sync}/export/{runs|events}.csv?from=YYYY-MM-DD&to=YYYY-MM-DD`:
/// streamed page by page, so a large history never sits in memory.
pub async fn csv(
    State(state): State<AppState>,
    Path((sync_id, file)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
    request: Request,
) -> Response {
    let signed_in = request.extensions().get::<CurrentSession>().is_some_and(|s| s.user.is_some());
    if !signed_in {
        return (StatusCode::UNAUTHORIZED, "Log in to Tandem to export sync history.").into_response();
    }
    let Some(kind) = file.strip_suffix(".csv").and_then(ExportKind::parse) else {
        return (StatusCode::NOT_FOUND, "Export runs.csv or events.csv.").into_response();
    };
    let (from, to) = match export_range(q.from.as_deref(), q.to.as_deref(), engine::clock::now_ms()) {
        Ok(range) => range,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let dashboards = state.context.dashboards.clone();
    // The first page answers whether the sync exists before any header is sent.
    let mut cursor = ExportCursor::default();
    let first = match dashboards.export_page(&sync_id, kind, from, to, &mut cursor).await {
        Ok(page) => page.unwrap_or_default(),
        Err(DashboardError::SyncNotFound) => return (StatusCode::NOT_FOUND, "That sync does not exist.").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "export failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "The export failed; the server log has the details.").into_response();
        }
    };
    let rest = futures_util::stream::unfold((dashboards, sync_id.clone(), cursor), move |(d, id, mut cursor)| async move {
        match d.export_page(&id, kind, from, to, &mut cursor).await {
            Ok(Some(page)) => Some((Ok::<_, std::io::Error>(page), (d, id, cursor))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "export failed part way");
                Some((Err(std::io::Error::other("export failed")), (d, id, ExportCursor::finished())))
            }
        }
    });
    // Fused: a body that is compressed as it is sent is read once more after its end, and an
    // unfolded stream panics when polled past it (the download then broke off).
    let body = futures_util::StreamExt::fuse(futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(first) }), rest));
    let name =
        format!("tandem-{}-{}-{}-to-{}.csv", kind.as_str(), sync_id, model::timefmt::iso_date(from), model::timefmt::iso_date(to - 1));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /metrics`: runs, records by outcome, errors by category, API calls, rate-limit waits and
/// sync lag, per sync.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.context.dashboards.metrics().await {
        Ok(text) => {
            let text = text + &state.refusals.metrics();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response()
        }
    }
}

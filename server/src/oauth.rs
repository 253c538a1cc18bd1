//! The OAuth redirect URI: `GET /oauth/callback/{provider}`, where a provider sends the admin back
//! after **Allow** or **Deny**. The engine checks and finishes the install; the admin lands on the
//! app's page under Settings › Integrations › Connected apps with the outcome.

use app::api::ssr::CurrentSession;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use engine::connections::CallbackParams;
use engine::ConnectionError;
use http::StatusCode;
use model::apps::InstallResult;

use crate::startup::AppState;

pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Extension(session): Extension<CurrentSession>,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let who = session.user.as_ref().zip(session.token.as_ref());
    let connections = &state.context.connections;
    let (result, connection) = match connections.complete(&provider, who, &params).await {
        Ok(done) => (done.result, done.connection_id),
        Err(ConnectionError::UnknownApp(_)) => {
            return (StatusCode::NOT_FOUND, "There is no such app in Tandem's Marketplace.").into_response();
        }
        Err(e) => {
            tracing::error!(provider, error = %e, "the OAuth callback failed");
            (InstallResult::ProviderError, None)
        }
    };
    let mut target = format!("{}/{provider}?result={}", app::CONNECTED_APPS_PATH, result.as_str());
    if let Some(id) = connection {
        target.push_str(&format!("&connection={id}"));
    }
    Redirect::to(&target).into_response()
}

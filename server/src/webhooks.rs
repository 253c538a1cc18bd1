//! Webhook receivers: `POST /webhooks/hubspot` (signature v3) and `POST /webhooks/{app}/{connection}`
//! for apps whose webhooks Tandem registers per connection (HTTP Basic). Outside the session and same-origin
//! checks (providers are not browsers); each authenticates itself. They wake the engine and
//! answer at once; a refused request is logged with its reason, never with its credentials.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::webhooks::{self, WebhookError};

use crate::startup::AppState;

fn answer(provider: &str, result: Result<Vec<String>, WebhookError>, wake: &engine::worker::Wake) -> Response {
    match result {
        Ok(woken) => {
            if !woken.is_empty() {
                wake.now();
            }
            tracing::debug!(provider, syncs = woken.len(), "webhook received");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(WebhookError::Refused(reason)) => {
            tracing::warn!(provider, reason, "webhook refused");
            (StatusCode::UNAUTHORIZED, "Refused.").into_response()
        }
        Err(WebhookError::Malformed(reason)) => {
            tracing::warn!(provider, reason, "malformed webhook refused");
            (StatusCode::BAD_REQUEST, "Not a webhook payload.").into_response()
        }
        Err(WebhookError::Store(e)) => {
            tracing::error!(provider, error = %e, "webhook could not be recorded");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn hubspot(State(state): State<AppState>, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    // HubSpot signs the URL it called: this server's public URL plus the path and query.
    let full = format!("{}{}", state.context.public_url, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/webhooks/hubspot"));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let result = webhooks::hubspot(
        &state.context.connections,
        &full,
        &body,
        header("x-hubspot-request-timestamp"),
        header("x-hubspot-signature-v3"),
    )
    .await;
    answer("hubspot", result, &state.wake)
}

pub async fn app(
    State(state): State<AppState>,
    Path((app, connection)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let result = webhooks::app(&state.context.connections, &app, &connection, authorization, &body).await;
    // Logged by the registry's key only: the path is the caller's to write.
    let known = engine::connectors::Provider::parse(&app).map(|p| p.key()).unwrap_or("unknown app");
    answer(known, result, &state.wake)
}

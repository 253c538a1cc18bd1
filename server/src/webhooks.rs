//! Webhook receivers: `POST /webhooks/hubspot` (signature v3) and `POST /webhooks/{app}/{connection}`
//! for apps whose webhooks Tandem registers per connection (HTTP Basic). Outside the session and same-origin
//! checks (providers are not browsers); each authenticates itself. They wake the engine and
//! answer at once; a refused request is logged with its reason, never with its credentials.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::webhooks::{self, WebhookError};

use crate::startup::AppState;

/// Refused webhook deliveries, counted per provider (`tandem_webhooks_refused_total` in
/// `/metrics`) and logged at most once a minute per provider: a provider that keeps retrying
/// webhooks left behind by an earlier install would otherwise write a warning per attempt.
#[derive(Default)]
pub struct Refusals {
    tallies: Mutex<BTreeMap<&'static str, Tally>>,
}

#[derive(Default)]
struct Tally {
    total: u64,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Refusals {
    fn count(&self, provider: &'static str, reason: &str) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let tally = tallies.entry(provider).or_default();
        tally.total += 1;
        tally.unlogged += 1;
        if tally.logged_at.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                provider,
                refused = tally.unlogged,
                reason,
                "webhook deliveries refused (all are counted in tandem_webhooks_refused_total; this is logged at most once a minute)"
            );
            tally.unlogged = 0;
            tally.logged_at = Some(Instant::now());
        }
    }

    /// The counts in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from(
            "# HELP tandem_webhooks_refused_total Webhook deliveries refused (bad signature or credentials, unknown connection, malformed).\n\
             # TYPE tandem_webhooks_refused_total counter\n",
        );
        for (provider, tally) in tallies.iter() {
            text.push_str(&format!("tandem_webhooks_refused_total{{provider=\"{provider}\"}} {}\n", tally.total));
        }
        text
    }
}

const LOG_EVERY: Duration = Duration::from_secs(60);

fn answer(state: &AppState, provider: &'static str, result: Result<Vec<String>, WebhookError>) -> Response {
    let wake = &state.wake;
    match result {
        Ok(woken) => {
            tracing::debug!(provider, syncs = woken.len(), "webhook received");
            if !woken.is_empty() {
                wake.syncs(woken);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(WebhookError::Refused(reason)) => {
            state.refusals.count(provider, &reason);
            (StatusCode::UNAUTHORIZED, "Refused.").into_response()
        }
        Err(WebhookError::Malformed(reason)) => {
            state.refusals.count(provider, &format!("malformed: {reason}"));
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
    answer(&state, "hubspot", result)
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
    answer(&state, known, result)
}

//! Webhooks from the providers. They only wake the engine: the cursor read that follows is the
//! source of truth, so a webhook that is lost, late or repeated loses nothing. Requests are
//! authenticated (HubSpot: signature v3 with the app's client secret; Pipedrive: the HTTP Basic
//! credentials Tandem registered) and anything else is refused and logged.

use base64::Engine as _;
use model::apps::{ConnectionStatus, HUBSPOT};
use serde_json::Value;

use crate::clock::now_ms;
use crate::connections::Connections;
use crate::connectors::hubspot::{verify_webhook_v3, WebhookRefusal};
use crate::connectors::{Provider, WebhookAuth};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("the body is not a webhook payload: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks the syncs of `objects` that are on due now (those of the app connections named);
/// answers their ids.
async fn wake(connections: &Connections, app_connections: &[String], objects: &[&str]) -> Result<Vec<String>, StoreError> {
    let store = connections.store();
    let mut woken = Vec::new();
    for sync in store.syncs().await? {
        let relevant = app_connections.contains(&sync.connection_id);
        if relevant && sync.status == "on" && objects.contains(&sync.object.as_str()) {
            store.wake_sync(&sync.id, now_ms()).await?;
            woken.push(sync.id);
        }
    }
    Ok(woken)
}

/// `POST /webhooks/hubspot`: a batch of events for any portal that installed Tandem's app.
/// `uri` is the full URL HubSpot called (what it signed).
pub async fn hubspot(
    connections: &Connections,
    uri: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
) -> Result<Vec<String>, WebhookError> {
    let secret = connections
        .provider(HUBSPOT)
        .and_then(|p| p.client_secret.clone())
        .ok_or_else(|| WebhookError::Refused("HubSpot is not configured on this server".into()))?;
    verify_webhook_v3(&secret, "POST", uri, body, timestamp, signature, now_ms())
        .map_err(|e: WebhookRefusal| WebhookError::Refused(e.to_string()))?;
    let events: Vec<Value> = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let mut objects: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("subscriptionType").and_then(Value::as_str))
        .filter_map(crate::connectors::object_named)
        .collect();
    objects.sort_unstable();
    objects.dedup();
    let portals: Vec<String> =
        events.iter().filter_map(|e| e.get("portalId")).map(|p| p.to_string().trim_matches('"').to_string()).collect();
    // Each portal's events wake the syncs of the app connections that sync with it.
    let connected = connections.list().await.map_err(|e| match e {
        crate::ConnectionError::Store(e) => WebhookError::Store(e),
        other => WebhookError::Malformed(other.to_string()),
    })?;
    let hubs: Vec<&str> = connected
        .iter()
        .filter(|c| c.provider == HUBSPOT && c.status == ConnectionStatus::Connected && portals.contains(&c.account_id))
        .map(|c| c.id.as_str())
        .collect();
    let apps: Vec<String> =
        connected.iter().filter(|c| c.hub_connection_id.as_deref().is_some_and(|h| hubs.contains(&h))).map(|c| c.id.clone()).collect();
    Ok(wake(connections, &apps, &objects).await?)
}

/// `POST /webhooks/{app}/{connection}`: one delivery for one connection of an app whose
/// webhooks Tandem registers, authenticated with the HTTP Basic credentials or the token it
/// registered.
pub async fn app(
    connections: &Connections,
    app: &str,
    connection_id: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Vec<String>, WebhookError> {
    let provider = Provider::parse(app)
        .filter(|p| p.registers_webhooks())
        .ok_or_else(|| WebhookError::Refused(format!("no app {app} delivers webhooks here")))?;
    let (user, password) = connections.webhook_credentials(provider, connection_id);
    let (given, expected, what) = match provider.webhook_auth() {
        WebhookAuth::HttpBasic => (
            authorization
                .and_then(|h| h.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok()),
            format!("{user}:{password}"),
            "the HTTP Basic credentials do not match this connection's",
        ),
        WebhookAuth::TokenInBody => (provider.webhook_token(body), password, "the delivery's token does not match this connection's"),
    };
    let matches = given.as_deref().is_some_and(|g| {
        use sha2::{Digest, Sha256};
        Sha256::digest(g.as_bytes()) == Sha256::digest(expected.as_bytes())
    });
    if !matches {
        return Err(WebhookError::Refused(what.into()));
    }
    let objects = provider.webhook_objects(body).map_err(WebhookError::Malformed)?;
    if provider.webhook_changes_schema(body) {
        connections.store().mark_schema_changed(connection_id).await?;
    }
    Ok(wake(connections, &[connection_id.to_string()], &objects).await?)
}

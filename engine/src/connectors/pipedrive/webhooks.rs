//! Pipedrive's webhooks: Tandem registers them for each connection (`/api/v1/webhooks`, the
//! `admin` scope), v2.0 payloads delivered with the HTTP Basic credentials it chose.

use reqwest::Method;
use serde_json::Value;

use crate::connectors::http::{Api, ApiError, Retry};

/// Registers Tandem's webhooks for a connection's deals, persons and organizations where
/// missing, pointing at `url` with HTTP Basic `user` and `password`.
pub async fn register(api: &Api, url: &str, user: &str, password: &str) -> Result<(), ApiError> {
    let existing = api.get("/api/v1/webhooks", &[]).await?;
    let hooks = existing.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    for object in ["deal", "person", "organization"] {
        let registered = hooks.iter().any(|h| {
            h.get("subscription_url").and_then(Value::as_str) == Some(url) && h.get("event_object").and_then(Value::as_str) == Some(object)
        });
        if registered {
            continue;
        }
        let body = serde_json::json!({
            "name": "Tandem sync", "subscription_url": url, "event_action": "*", "event_object": object,
            "http_auth_user": user, "http_auth_password": password, "version": "2.0",
        });
        api.call(Method::POST, "/api/v1/webhooks", &[], Some(&body), Retry::Unprocessed).await?;
        tracing::info!(object, "Pipedrive webhook registered");
    }
    Ok(())
}

//! Pipedrive's webhooks: Tandem registers them for each connection (`/api/v1/webhooks`, the
//! `admin` scope), v2.0 payloads delivered with the HTTP Basic credentials it chose.

use reqwest::Method;
use serde_json::Value;

use crate::connectors::http::{Api, ApiError, Retry};

/// Registers Tandem's webhooks for a connection's deals, persons and organizations (a change to
/// sync) and its pipelines, stages and users (a schema change: a stage renamed is named anew,
/// a user added owns deals, from the next run) where missing, pointing at `url` with HTTP Basic
/// `user` and `password`.
pub async fn register(api: &Api, url: &str, user: &str, password: &str) -> Result<(), ApiError> {
    let existing = api.get("/api/v1/webhooks", &[]).await?;
    let hooks = existing.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    for object in ["deal", "person", "organization"].into_iter().chain(SCHEMA_OBJECTS) {
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
        match api.call(Method::POST, "/api/v1/webhooks", &[], Some(&body), Retry::Unprocessed).await {
            Ok(_) => tracing::info!(object, "Pipedrive webhook registered"),
            // The records' webhooks are what changes wait for; without a schema webhook (the
            // account's webhook limit reached, say) a renamed stage or a new user is picked up
            // by the schema's regular refresh instead.
            Err(e) if SCHEMA_OBJECTS.contains(&object) => {
                tracing::warn!(object, error = %e, "Pipedrive webhook not registered; the schema is refreshed on its timer instead")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The objects whose webhooks say the schema changed, not a record to sync.
pub const SCHEMA_OBJECTS: [&str; 3] = ["pipeline", "stage", "user"];

/// Whether a v2.0 delivery says the schema changed: a pipeline or stage added, changed or
/// deleted; a user added or deleted, or their email or activation changed (what owners match
/// by). A user's other edits (a profile, a setting) do not.
pub fn changes_schema(event: &Value) -> bool {
    let entity = event.pointer("/meta/entity").and_then(Value::as_str).unwrap_or_default();
    let action = event.pointer("/meta/action").and_then(Value::as_str).unwrap_or_default();
    match entity {
        "pipeline" | "stage" => true,
        "user" => {
            action != "change"
                || ["email", "active_flag", "is_deleted"].iter().any(|k| event.get("previous").and_then(|p| p.get(*k)).is_some())
        }
        _ => false,
    }
}

/// Deletes the webhooks whose subscription URL starts with `prefix`, but `keep`: at Uninstall
/// (`prefix` is the connection's own URL), and at registration the ones earlier installs left
/// under Tandem's webhook path (`prefix` ends with `/webhooks/pipedrive/`). Answers how many went.
pub async fn remove(api: &Api, prefix: &str, keep: Option<&str>) -> Result<usize, ApiError> {
    let existing = api.get("/api/v1/webhooks", &[]).await?;
    let hooks = existing.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut removed = 0;
    for hook in hooks {
        let url = hook.get("subscription_url").and_then(Value::as_str).unwrap_or_default();
        let Some(id) = hook.get("id").and_then(crate::connectors::record::text) else { continue };
        if !url.starts_with(prefix) || Some(url) == keep {
            continue;
        }
        match api.call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), &[], None, Retry::Always).await {
            Ok(_) => removed += 1,
            // Gone meanwhile (another instance removed it).
            Err(e) if e.status == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::changes_schema;

    #[test]
    fn stages_pipelines_and_users_added_or_renamed_change_the_schema_a_users_profile_does_not() {
        let event = |entity: &str, action: &str, previous: serde_json::Value| json!({"data": {}, "previous": previous, "meta": {"entity": entity, "action": action, "version": "2.0"}});
        assert!(changes_schema(&event("stage", "change", json!({"name": "Proposal Made"}))), "a stage renamed");
        assert!(changes_schema(&event("pipeline", "create", json!(null))));
        assert!(changes_schema(&event("user", "create", json!(null))), "a user added");
        assert!(changes_schema(&event("user", "change", json!({"email": "old@example.com"}))), "an email changed");
        assert!(!changes_schema(&event("user", "change", json!({"timezone_name": "Europe/Tallinn"}))), "a setting");
        assert!(!changes_schema(&event("deal", "change", json!({"value": 10}))), "a record");
    }
}

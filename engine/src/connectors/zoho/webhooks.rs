//! Zoho's notifications (`/crm/v8/actions/watch`): Tandem subscribes one channel per connection
//! to changes of deals, contacts and accounts, with a secret `token` Zoho echoes in every
//! delivery (Zoho sends no HTTP Basic credentials). A channel expires (at most a week ahead):
//! registering again renews it.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::records::zoho_time;
use crate::clock::now_ms;
use crate::connectors::http::{Api, ApiError, Category, Retry};

/// The modules a channel watches, every operation.
const EVENTS: [&str; 3] = ["Deals.all", "Contacts.all", "Accounts.all"];
/// How far ahead a channel expires (Zoho allows a week).
const EXPIRY_MS: i64 = 6 * 24 * 3_600_000;
/// A channel that expires sooner than this is renewed.
const RENEW_BEFORE_MS: i64 = 24 * 3_600_000;

/// The channel of a notification URL: a number (as Zoho's channel ids are), the same for every
/// Tandem instance.
pub fn channel_id(url: &str) -> u64 {
    let digest = Sha256::digest(url.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    1_000_000_000_000_000 + u64::from_be_bytes(n) % 1_000_000_000_000_000
}

/// Subscribes the channel of `url` to deals, contacts and accounts where it is missing, points
/// elsewhere, carries another token or expires within a day.
pub async fn register(api: &Api, url: &str, token: &str) -> Result<(), ApiError> {
    let channel = channel_id(url);
    let existing = api.get("/crm/v8/actions/watch", &[("channel_id", channel.to_string())]).await?;
    let now = now_ms();
    let channel_text = channel.to_string();
    let current = existing.get("watch").and_then(Value::as_array).and_then(|list| {
        list.iter().find(|w| w.get("channel_id").and_then(crate::connectors::record::text).as_deref() == Some(channel_text.as_str()))
    });
    if let Some(w) = current {
        let events: Vec<&str> = w.get("events").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let expiry = w.get("channel_expiry").and_then(Value::as_str).and_then(model::timefmt::parse_iso_ms).unwrap_or(0);
        let same = w.get("notify_url").and_then(Value::as_str) == Some(url)
            && w.get("token").and_then(Value::as_str) == Some(token)
            && EVENTS.iter().all(|e| events.contains(e));
        if same && expiry > now + RENEW_BEFORE_MS {
            return Ok(());
        }
    }
    let body = json!({"watch": [{
        "channel_id": channel,
        "events": EVENTS,
        "channel_expiry": zoho_time(now + EXPIRY_MS),
        "token": token,
        "notify_url": url,
    }]});
    // A channel that exists is updated; a new one enabled.
    let method = if current.is_some() { Method::PUT } else { Method::POST };
    let answer = api.call(method, "/crm/v8/actions/watch", &[], Some(&body), Retry::Always).await?;
    let item = answer.pointer("/watch/0").cloned().unwrap_or(Value::Null);
    if item.get("status").and_then(Value::as_str) != Some("success") {
        let message = item.get("message").and_then(Value::as_str).unwrap_or("no answer for the channel");
        return Err(ApiError::new(Category::Validation, None, format!("Zoho CRM refused Tandem's notification channel: {message}")));
    }
    tracing::info!(channel, "Zoho CRM notification channel registered");
    Ok(())
}

/// Deletes the notification channels whose `notify_url` starts with `prefix`, but `keep` (see
/// the Pipedrive connector's `remove`). Answers how many went.
pub async fn remove(api: &Api, prefix: &str, keep: Option<&str>) -> Result<usize, ApiError> {
    let existing = api.get("/crm/v8/actions/watch", &[("per_page", "200".to_string())]).await?;
    let channels: Vec<String> = existing
        .get("watch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|w| {
            let url = w.get("notify_url").and_then(Value::as_str).unwrap_or_default();
            url.starts_with(prefix) && Some(url) != keep
        })
        .filter_map(|w| w.get("channel_id").and_then(crate::connectors::record::text))
        .collect();
    if channels.is_empty() {
        return Ok(0);
    }
    let answer = api.call(Method::DELETE, "/crm/v8/actions/watch", &[("channel_ids", channels.join(","))], None, Retry::Always).await?;
    let removed = answer
        .get("watch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|item| item.get("status").and_then(Value::as_str) == Some("success"))
        .count();
    Ok(removed)
}

/// The channel token a delivery echoes.
pub fn token(body: &[u8]) -> Option<String> {
    let event: Value = serde_json::from_slice(body).ok()?;
    event.get("token").and_then(Value::as_str).map(str::to_string)
}

/// The object a delivery is about, by its `module`.
pub fn objects(body: &[u8]) -> Result<Vec<&'static str>, String> {
    let event: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let module = event.get("module").and_then(Value::as_str).ok_or("the notification names no module")?;
    Ok(crate::connectors::object_named(module).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_name_their_module_and_token() {
        let body = br#"{"module":"Accounts","operation":"update","ids":["1"],"channel_id":"1","token":"t0k"}"#;
        assert_eq!(objects(body), Ok(vec!["company"]));
        assert_eq!(token(body).as_deref(), Some("t0k"));
        assert_eq!(objects(br#"{"module":"Deals"}"#), Ok(vec!["deal"]));
        assert!(objects(b"[]").is_err());
        let a = channel_id("https://tandem.example/webhooks/zoho/1");
        assert_eq!(a, channel_id("https://tandem.example/webhooks/zoho/1"));
        assert_ne!(a, channel_id("https://tandem.example/webhooks/zoho/2"));
        assert!((1_000_000_000_000_000..2_000_000_000_000_000).contains(&a));
    }
}

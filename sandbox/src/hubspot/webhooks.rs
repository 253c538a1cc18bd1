//! Webhooks: the app's settings and subscriptions (`/webhooks/v3/{appId}/...`, authenticated with
//! the developer's `hapikey`), and delivery of CRM object events (`deal.creation`,
//! `deal.propertyChange`, `deal.deletion`, and the same for contacts and companies) to the app's
//! target URL in batches of up to 100, signed with `X-HubSpot-Signature-v3` and
//! `X-HubSpot-Request-Timestamp`, retried with backoff when the target fails. Batches are
//! delivered independently (up to the settings' `maxConcurrentRequests` at once): one being
//! retried delays no other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::data::ObjectType;
use super::{error, HubSpot};
use crate::time::{iso_ms, now_ms};

/// The developer API key that manages the sandbox app's webhooks (`?hapikey=`).
pub const DEVELOPER_API_KEY: &str = "tandem-sandbox-developer-key";
/// Events per delivery request, as HubSpot batches them.
pub const BATCH: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub target_url: String,
    pub max_concurrent_requests: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    pub id: u64,
    pub event_type: String,
    pub property_name: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the portal keeps of the app's webhook set-up (persisted with the portal).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub settings: Option<Settings>,
    pub subscriptions: Vec<Subscription>,
    pub next_id: u64,
}

impl WebhookConfig {
    /// Whether any event would be delivered (so writes record events at all).
    pub fn delivering(&self) -> bool {
        self.settings.is_some() && self.subscriptions.iter().any(|s| s.active)
    }

    /// The active subscription an event matches, if any.
    fn subscription_for(&self, event: &ObjectEvent) -> Option<u64> {
        let (kind, property) = match &event.kind {
            EventKind::Creation => ("creation", None),
            EventKind::Deletion => ("deletion", None),
            EventKind::PropertyChange { name, .. } => ("propertyChange", Some(name.as_str())),
        };
        let wanted = format!("{}.{kind}", singular(event.object));
        self.subscriptions
            .iter()
            .find(|s| s.active && s.event_type == wanted && (property.is_none() || s.property_name.as_deref() == property))
            .map(|s| s.id)
    }
}

fn singular(object: ObjectType) -> &'static str {
    match object {
        ObjectType::Deals => "deal",
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
    }
}

/// A change to a CRM record, waiting for delivery.
#[derive(Clone, Debug)]
pub struct ObjectEvent {
    pub object: ObjectType,
    pub object_id: u64,
    pub kind: EventKind,
    pub occurred_at: i64,
    pub source: String,
}

#[derive(Clone, Debug)]
pub enum EventKind {
    Creation,
    PropertyChange { name: String, value: String },
    Deletion,
}

/// Delivery figures for tests (`GET /_sandbox/webhooks`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered_events: AtomicU64,
    pub requests: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dropped_events: AtomicU64,
    next_event_id: AtomicU64,
}

/// `X-HubSpot-Signature-v3`: base64 of HMAC-SHA256 over method, URI, body and timestamp, keyed
/// with the app's client secret.
pub fn signature_v3(client_secret: &str, method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---- Settings and subscriptions API ----

#[derive(Deserialize)]
pub struct KeyQuery {
    hapikey: Option<String>,
}

fn authorize(hubspot: &HubSpot, app_id: u64, key: &KeyQuery) -> Result<(), Response> {
    if key.hapikey.as_deref() != Some(DEVELOPER_API_KEY) {
        return Err(error(StatusCode::UNAUTHORIZED, "INVALID_AUTHENTICATION", "The developer API key is missing or wrong."));
    }
    if app_id != hubspot.config.app_id {
        return Err(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("No app {app_id} belongs to this developer account.")));
    }
    Ok(())
}

fn settings_json(s: &Settings) -> Value {
    json!({
        "targetUrl": s.target_url,
        "throttling": {"maxConcurrentRequests": s.max_concurrent_requests, "period": "SECONDLY"},
        "createdAt": iso_ms(s.created_at),
        "updatedAt": iso_ms(s.updated_at),
    })
}

fn subscription_json(s: &Subscription) -> Value {
    let mut v = json!({
        "id": s.id.to_string(),
        "eventType": s.event_type,
        "active": s.active,
        "createdAt": iso_ms(s.created_at),
        "updatedAt": iso_ms(s.updated_at),
    });
    if let Some(p) = &s.property_name {
        v["propertyName"] = json!(p);
    }
    v
}

type Reply = Result<Response, Response>;

async fn get_settings(State(hubspot): State<Arc<HubSpot>>, Path(app_id): Path<u64>, Query(key): Query<KeyQuery>) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let data = hubspot.read();
    match &data.webhooks.settings {
        Some(s) => Ok(Json(settings_json(s)).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "No webhook settings for this app.")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsInput {
    target_url: Option<String>,
    throttling: Option<Value>,
}

async fn put_settings(
    State(hubspot): State<Arc<HubSpot>>,
    Path(app_id): Path<u64>,
    Query(key): Query<KeyQuery>,
    body: Result<Json<SettingsInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let Json(input) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    let target = input.target_url.filter(|t| t.starts_with("http://") || t.starts_with("https://"));
    let Some(target) = target else {
        return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "targetUrl must be an http(s) URL"));
    };
    let max = input
        .throttling
        .as_ref()
        .and_then(|t| t.get("maxConcurrentRequests"))
        .and_then(Value::as_i64)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "throttling.maxConcurrentRequests is required"))?;
    let now = now_ms();
    let mut data = hubspot.write();
    let created = data.webhooks.settings.as_ref().map(|s| s.created_at).unwrap_or(now);
    let settings = Settings { target_url: target, max_concurrent_requests: max, created_at: created, updated_at: now };
    let out = settings_json(&settings);
    data.webhooks.settings = Some(settings);
    Ok(Json(out).into_response())
}

async fn clear_settings(State(hubspot): State<Arc<HubSpot>>, Path(app_id): Path<u64>, Query(key): Query<KeyQuery>) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    hubspot.write().webhooks.settings = None;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_subscriptions(State(hubspot): State<Arc<HubSpot>>, Path(app_id): Path<u64>, Query(key): Query<KeyQuery>) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let data = hubspot.read();
    let results: Vec<Value> = data.webhooks.subscriptions.iter().map(subscription_json).collect();
    Ok(Json(json!({"results": results})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInput {
    event_type: Option<String>,
    property_name: Option<String>,
    active: Option<bool>,
}

const EVENT_KINDS: [&str; 3] = ["creation", "propertyChange", "deletion"];

async fn create_subscription(
    State(hubspot): State<Arc<HubSpot>>,
    Path(app_id): Path<u64>,
    Query(key): Query<KeyQuery>,
    body: Result<Json<SubscriptionInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let Json(input) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    let event_type = input.event_type.unwrap_or_default();
    let valid = event_type
        .split_once('.')
        .is_some_and(|(object, kind)| ["deal", "contact", "company"].contains(&object) && EVENT_KINDS.contains(&kind));
    if !valid {
        return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unsupported eventType {event_type:?}")));
    }
    if event_type.ends_with(".propertyChange") && input.property_name.as_deref().is_none_or(str::is_empty) {
        return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "propertyName is required for propertyChange subscriptions"));
    }
    let now = now_ms();
    let mut data = hubspot.write();
    let duplicate = data.webhooks.subscriptions.iter().any(|s| s.event_type == event_type && s.property_name == input.property_name);
    if duplicate {
        return Err(error(StatusCode::CONFLICT, "CONFLICT", "A subscription for this event and property already exists"));
    }
    data.webhooks.next_id += 1;
    let subscription = Subscription {
        id: data.webhooks.next_id,
        event_type,
        property_name: input.property_name.filter(|_| true),
        active: input.active.unwrap_or(false),
        created_at: now,
        updated_at: now,
    };
    let out = subscription_json(&subscription);
    data.webhooks.subscriptions.push(subscription);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn get_subscription(State(hubspot): State<Arc<HubSpot>>, Path((app_id, id)): Path<(u64, u64)>, Query(key): Query<KeyQuery>) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let data = hubspot.read();
    let s = data.webhooks.subscriptions.iter().find(|s| s.id == id).ok_or_else(|| subscription_not_found(id))?;
    Ok(Json(subscription_json(s)).into_response())
}

fn subscription_not_found(id: u64) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("No subscription {id}"))
}

async fn update_subscription(
    State(hubspot): State<Arc<HubSpot>>,
    Path((app_id, id)): Path<(u64, u64)>,
    Query(key): Query<KeyQuery>,
    body: Result<Json<SubscriptionInput>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let Json(input) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    let mut data = hubspot.write();
    let s = data.webhooks.subscriptions.iter_mut().find(|s| s.id == id).ok_or_else(|| subscription_not_found(id))?;
    if let Some(active) = input.active {
        s.active = active;
    }
    s.updated_at = now_ms();
    Ok(Json(subscription_json(s)).into_response())
}

async fn delete_subscription(
    State(hubspot): State<Arc<HubSpot>>,
    Path((app_id, id)): Path<(u64, u64)>,
    Query(key): Query<KeyQuery>,
) -> Reply {
    authorize(&hubspot, app_id, &key)?;
    let mut data = hubspot.write();
    let before = data.webhooks.subscriptions.len();
    data.webhooks.subscriptions.retain(|s| s.id != id);
    if data.webhooks.subscriptions.len() == before {
        return Err(subscription_not_found(id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stats(State(hubspot): State<Arc<HubSpot>>) -> Json<Value> {
    let s = &hubspot.webhook_stats;
    Json(json!({
        "delivered_events": s.delivered_events.load(Ordering::Relaxed),
        "requests": s.requests.load(Ordering::Relaxed),
        "failed_attempts": s.failed_attempts.load(Ordering::Relaxed),
        "dropped_events": s.dropped_events.load(Ordering::Relaxed),
        "pending": hubspot.read().outbox.len(),
    }))
}

pub fn routes(hubspot: Arc<HubSpot>) -> Router {
    Router::new()
        .route("/webhooks/v3/{app_id}/settings", get(get_settings).put(put_settings).delete(clear_settings))
        .route("/webhooks/v3/{app_id}/subscriptions", get(list_subscriptions).post(create_subscription))
        .route("/webhooks/v3/{app_id}/subscriptions/{id}", get(get_subscription).patch(update_subscription).delete(delete_subscription))
        .route("/_sandbox/webhooks", get(stats))
        .with_state(hubspot)
}

// ---- Delivery ----

/// Delivers recorded events until `stop` turns true: every 100 ms events are taken from the outbox
/// into batches of up to [`BATCH`] events, each POSTed to the target URL and retried with doubling
/// waits (`retry_base`) up to `max_attempts` times before it is dropped (and counted). Each batch
/// is delivered on its own, at most the settings' `maxConcurrentRequests` at once: a batch being
/// retried holds back no other (HubSpot does not promise events in order; `occurredAt` orders
/// them). Only as many batches are taken as there are free slots: while every slot is busy the
/// events wait in the outbox. On stop, the batches in flight (which give up at once) are awaited,
/// so nothing is sent or counted after this returns.
pub async fn deliver(hubspot: Arc<HubSpot>, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    // The batches being delivered, one task each.
    let mut sending: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        while sending.try_join_next().is_some() {}
        let (events, config) = {
            let mut data = hubspot.data_quiet();
            if data.outbox.is_empty() {
                continue;
            }
            // Without settings there is nowhere to deliver: the events are let go.
            let take = match &data.webhooks.settings {
                Some(settings) => {
                    let limit = settings.max_concurrent_requests.clamp(1, 1_000) as usize;
                    limit.saturating_sub(sending.len()).saturating_mul(BATCH).min(data.outbox.len())
                }
                None => data.outbox.len(),
            };
            if take == 0 {
                continue;
            }
            (data.outbox.drain(..take).collect::<Vec<_>>(), data.webhooks.clone())
        };
        let Some(settings) = config.settings.as_ref() else { continue };
        let payloads: Vec<Value> = events.iter().filter_map(|e| config.subscription_for(e).map(|sub| hubspot.event_json(e, sub))).collect();
        for batch in payloads.chunks(BATCH) {
            let (hubspot, http, target, batch, mut stop) =
                (hubspot.clone(), http.clone(), settings.target_url.clone(), batch.to_vec(), stop.clone());
            sending.spawn(async move {
                if !send_with_retries(&hubspot, &http, &target, &batch, &mut stop).await {
                    hubspot.webhook_stats.dropped_events.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            });
        }
    }
    // Each batch in flight has seen the stop (or sees it at its next step) and ends.
    while sending.join_next().await.is_some() {}
}

async fn send_with_retries(
    hubspot: &HubSpot,
    http: &reqwest::Client,
    target: &str,
    batch: &[Value],
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let secret = hubspot.config.clients.first().map(|c| c.client_secret.clone()).unwrap_or_default();
    for attempt in 0..hubspot.config.webhook_max_attempts {
        // Once stopping, nothing more is sent (a stop already seen would not wake `changed`).
        if *stop.borrow() {
            return false;
        }
        let body: Vec<Value> = batch
            .iter()
            .cloned()
            .map(|mut e| {
                e["attemptNumber"] = json!(attempt);
                e
            })
            .collect();
        let body = serde_json::to_string(&body).expect("JSON");
        let timestamp = now_ms().to_string();
        let signature = signature_v3(&secret, "POST", target, &body, &timestamp);
        hubspot.webhook_stats.requests.fetch_add(1, Ordering::Relaxed);
        let request = http
            .post(target)
            .header("content-type", "application/json")
            .header("X-HubSpot-Signature-v3", signature)
            .header("X-HubSpot-Request-Timestamp", &timestamp)
            .body(body)
            .send();
        let sent = tokio::select! {
            sent = request => sent,
            _ = stop.changed() => return false,
        };
        match sent {
            Ok(r) if r.status().is_success() => {
                hubspot.webhook_stats.delivered_events.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return true;
            }
            Ok(r) => tracing::warn!(status = %r.status(), attempt, "webhook delivery refused; will retry"),
            // The target URL may carry a secret: never logged.
            Err(e) => tracing::warn!(error = %e.without_url(), attempt, "webhook delivery failed; will retry"),
        }
        hubspot.webhook_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let wait = hubspot.config.webhook_retry_base_ms.saturating_mul(1 << attempt.min(10));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => return false,
        }
    }
    false
}

impl HubSpot {
    fn event_json(&self, e: &ObjectEvent, subscription: u64) -> Value {
        let id = self.webhook_stats.next_event_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut v = json!({
            "eventId": id,
            "subscriptionId": subscription,
            "portalId": self.config.portal_id,
            "appId": self.config.app_id,
            "occurredAt": e.occurred_at,
            "subscriptionType": format!("{}.{}", singular(e.object), match e.kind {
                EventKind::Creation => "creation",
                EventKind::Deletion => "deletion",
                EventKind::PropertyChange { .. } => "propertyChange",
            }),
            "attemptNumber": 0,
            "objectId": e.object_id,
            "changeSource": e.source,
        });
        if let EventKind::PropertyChange { name, value } = &e.kind {
            v["propertyName"] = json!(name);
            v["propertyValue"] = json!(value);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_v3_matches_hubspots_recipe() {
        // HMAC-SHA256("secret", "POST" + uri + body + timestamp), base64.
        let sig = super::signature_v3("secret", "POST", "https://example.com/hook", "[]", "1700000000000");
        assert_eq!(sig.len(), 44);
        assert_eq!(sig, super::signature_v3("secret", "POST", "https://example.com/hook", "[]", "1700000000000"));
        assert_ne!(sig, super::signature_v3("secret", "POST", "https://example.com/hook", "[{}]", "1700000000000"));
    }
}

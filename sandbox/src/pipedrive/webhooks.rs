//! Webhooks (API v1 `/webhooks`: `getWebhooks`, `addWebhook`, `deleteWebhook`; `admin` scope) and
//! their delivery: one POST per event in the v2.0 payload (`data`, `previous`, `meta`), with HTTP
//! Basic auth when the webhook names a user and password, retried with doubling waits when the
//! subscription URL fails. Each webhook is delivered on its own: one that fails delays only itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::data::PdData;
use super::{failure, invalid, json_body, parse_id, require_any_scope, Pipedrive};
use crate::oauth::AccessToken;
use crate::time::{iso_seconds, now_ms};

const ACTIONS: [&str; 4] = ["create", "change", "delete", "*"];
const OBJECTS: [&str; 11] = ["activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user", "*"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub name: String,
    pub subscription_url: String,
    pub event_action: String,
    pub event_object: String,
    pub user_id: u64,
    pub http_auth_user: Option<String>,
    pub http_auth_password: Option<String>,
    pub version: String,
    pub add_time: i64,
    pub last_delivery_time: Option<i64>,
    pub last_http_status: Option<u16>,
    /// Which webhook of this id it is: a fresh number for each one added or loaded (never saved),
    /// so one that takes the id of an earlier webhook (ids start again after a reset) is not
    /// taken for it.
    #[serde(skip, default = "next_generation")]
    generation: u64,
}

fn next_generation() -> u64 {
    static GENERATIONS: AtomicU64 = AtomicU64::new(0);
    GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1
}

impl Webhook {
    /// What its delivery worker is known by.
    fn key(&self) -> (u64, u64) {
        (self.id, self.generation)
    }

    /// Whether `other` is this very webhook (not merely one with its id).
    fn is(&self, other: &Webhook) -> bool {
        self.key() == other.key()
    }

    fn wants(&self, event: &PdEvent) -> bool {
        (self.event_object == "*" || self.event_object == event.entity) && (self.event_action == "*" || self.event_action == event.action)
    }
}

/// A change waiting for delivery.
#[derive(Clone, Debug)]
pub struct PdEvent {
    pub entity: &'static str,
    pub action: &'static str,
    pub id: u64,
    pub data: Value,
    pub previous: Value,
    pub at: i64,
    pub source: String,
}

impl PdData {
    /// Records a change of a deal, person, organization, pipeline, stage or user for the webhooks
    /// (when there are any).
    /// `before` and `after` are the object in its API v2 shape; `previous` holds only what changed.
    pub fn emit(&mut self, entity: &'static str, id: u64, before: Option<Value>, after: Option<Value>, at: i64, source: &str) {
        if self.webhooks.is_empty() {
            return;
        }
        let (action, data, previous) = match (before, after) {
            (None, Some(after)) => ("create", after, Value::Null),
            (Some(before), None) => ("delete", Value::Null, before),
            (Some(before), Some(after)) => {
                let changed: serde_json::Map<String, Value> = before
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| after.get(k.as_str()) != Some(v) && k.as_str() != "update_time")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if changed.is_empty() {
                    return;
                }
                ("change", after, Value::Object(changed))
            }
            (None, None) => return,
        };
        self.outbox.push(PdEvent { entity, action, id, data, previous, at, source: source.to_string() });
    }
}

/// Delivery figures for tests (`GET /_sandbox/webhooks`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dropped: AtomicU64,
}

fn webhook_json(w: &Webhook, company_id: u64) -> Value {
    json!({
        "id": w.id, "company_id": company_id, "owner_id": w.user_id, "user_id": w.user_id,
        "event_action": w.event_action, "event_object": w.event_object, "subscription_url": w.subscription_url,
        "version": w.version, "is_active": 1, "add_time": iso_seconds(w.add_time), "remove_time": null,
        "type": "general", "http_auth_user": w.http_auth_user, "http_auth_password": w.http_auth_password.as_ref().map(|_| "******"),
        "remove_reason": null, "last_delivery_time": w.last_delivery_time.map(iso_seconds), "last_http_status": w.last_http_status,
        "admin_id": w.user_id, "name": w.name,
    })
}

/// GET /api/v1/webhooks (`getWebhooks`)
pub async fn list(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    if let Err(r) = require_any_scope(&token, &[]) {
        return r;
    }
    let data = pd.read();
    let all: Vec<Value> = data.webhooks.iter().map(|w| webhook_json(w, data.company_id)).collect();
    Json(json!({"success": true, "status": "ok", "data": all})).into_response()
}

/// POST /api/v1/webhooks (`addWebhook`): 201 with the webhook.
pub async fn add(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = require_any_scope(&token, &[]) {
        return r;
    }
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(url) = text("subscription_url").filter(|u| u.starts_with("http://") || u.starts_with("https://")) else {
        return invalid("subscription_url: must be a full http(s) URL");
    };
    let Some(action) = text("event_action").filter(|a| ACTIONS.contains(&a.as_str())) else {
        return invalid("event_action: must be one of create, change, delete, *");
    };
    let Some(object) = text("event_object").filter(|o| OBJECTS.contains(&o.as_str())) else {
        return invalid("event_object: must be one of activity, deal, lead, note, organization, person, pipeline, product, stage, user, *");
    };
    let Some(name) = text("name").filter(|n| !n.trim().is_empty() && n.len() <= 255) else {
        return invalid("name: is required (at most 255 characters)");
    };
    let version = text("version").unwrap_or_else(|| "2.0".into());
    if version != "2.0" && version != "1.0" {
        return invalid("version: must be 1.0 or 2.0");
    }
    if version == "1.0" {
        return failure(StatusCode::BAD_REQUEST, "Webhooks v1 are retired in this sandbox; use version 2.0");
    }
    let mut data = pd.write();
    let user_id = body.get("user_id").and_then(Value::as_u64).or_else(|| data.users.first().map(|u| u.id)).unwrap_or_default();
    let id = data.next_id();
    let webhook = Webhook {
        id,
        name,
        subscription_url: url,
        event_action: action,
        event_object: object,
        user_id,
        http_auth_user: text("http_auth_user"),
        http_auth_password: text("http_auth_password"),
        version,
        add_time: now_ms(),
        last_delivery_time: None,
        last_http_status: None,
        generation: next_generation(),
    };
    let out = webhook_json(&webhook, data.company_id);
    data.webhooks.push(webhook);
    (StatusCode::CREATED, Json(json!({"success": true, "status": "ok", "data": out}))).into_response()
}

/// DELETE /api/v1/webhooks/{id} (`deleteWebhook`)
pub async fn delete(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_any_scope(&token, &[]) {
        return r;
    }
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut data = pd.write();
    let before = data.webhooks.len();
    data.webhooks.retain(|w| w.id != id);
    if data.webhooks.len() == before {
        return failure(StatusCode::NOT_FOUND, "Webhook not found");
    }
    Json(json!({"success": true, "status": "ok"})).into_response()
}

/// Delivery figures.
pub async fn stats(State(pd): State<Arc<Pipedrive>>) -> Json<Value> {
    let s = &pd.webhook_stats;
    Json(json!({
        "delivered": s.delivered.load(Ordering::Relaxed),
        "failed_attempts": s.failed_attempts.load(Ordering::Relaxed),
        "dropped": s.dropped.load(Ordering::Relaxed),
    }))
}

/// Deliveries queued for one webhook, at most (a subscription URL that does not answer holds
/// back only its own webhook, and only this many of its deliveries).
pub const WEBHOOK_QUEUE: usize = 1_000;

/// One event on its way to one webhook.
struct Delivery {
    hook: Webhook,
    event: Arc<PdEvent>,
    company_id: u64,
    host: Arc<str>,
}

/// Whether `hook` is still registered: the same webhook, not one that took its id after it was
/// deleted or the sandbox reset.
fn registered(pd: &Pipedrive, hook: &Webhook) -> bool {
    pd.read().webhooks.iter().any(|w| w.is(hook))
}

/// Delivers recorded events until `stop` turns true: every 100 ms the events since the last
/// round, one POST per event and matching webhook. Each webhook is served by a worker of its own
/// (in the order of its events, retried with doubling waits up to the configured attempts), so
/// a subscription URL that fails or never answers delays only its own deliveries, as Pipedrive
/// delivers each webhook independently. Workers are known by webhook (id and generation), so a
/// webhook that takes the id of a deleted one (after a reset) gets a worker of its own. On stop
/// the workers (which give up at once) are awaited, so nothing is sent or counted after this
/// returns.
pub async fn deliver(pd: Arc<Pipedrive>, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut queues: HashMap<(u64, u64), mpsc::Sender<Delivery>> = HashMap::new();
    let mut workers: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        while workers.try_join_next().is_some() {}
        let (events, hooks, company_id, host) = {
            let mut data = pd.data_quiet();
            // A deleted webhook's worker (or one from before a reset) skips what it has queued and
            // ends.
            queues.retain(|key, _| data.webhooks.iter().any(|h| h.key() == *key));
            if data.outbox.is_empty() {
                continue;
            }
            (std::mem::take(&mut data.outbox), data.webhooks.clone(), data.company_id, data.company_domain.clone())
        };
        let host: Arc<str> = Arc::from(host);
        for event in events.into_iter().map(Arc::new) {
            for hook in hooks.iter().filter(|h| h.wants(&event)) {
                let queue = queues.entry(hook.key()).or_insert_with(|| {
                    let (queue, deliveries) = mpsc::channel(WEBHOOK_QUEUE);
                    workers.spawn(serve_webhook(pd.clone(), http.clone(), deliveries, stop.clone()));
                    queue
                });
                let delivery = Delivery { hook: hook.clone(), event: event.clone(), company_id, host: host.clone() };
                if queue.try_send(delivery).is_err() {
                    pd.webhook_stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(webhook = hook.id, "webhook event dropped: the webhook's queue is full");
                }
            }
        }
    }
    // Each worker has seen the stop (or sees it at its next step) and ends.
    drop(queues);
    while workers.join_next().await.is_some() {}
}

/// One webhook's deliveries, in order, until its queue closes or `stop` turns true.
async fn serve_webhook(
    pd: Arc<Pipedrive>,
    http: reqwest::Client,
    mut deliveries: mpsc::Receiver<Delivery>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = deliveries.recv() => next,
            _ = stop.changed() => None,
        };
        let Some(delivery) = next else { return };
        if *stop.borrow() {
            return;
        }
        // A webhook deleted since the event was recorded gets nothing more.
        if !registered(&pd, &delivery.hook) {
            continue;
        }
        let Delivery { hook, event, company_id, host } = delivery;
        match send(&pd, &http, &hook, &event, company_id, &host, &mut stop).await {
            Sent::Delivered(status) => {
                pd.webhook_stats.delivered.fetch_add(1, Ordering::Relaxed);
                let mut data = pd.data_quiet();
                if let Some(w) = data.webhooks.iter_mut().find(|w| w.is(&hook)) {
                    w.last_delivery_time = Some(now_ms());
                    w.last_http_status = Some(status);
                }
            }
            Sent::Failed => {
                pd.webhook_stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Sent::Withdrawn => {}
        }
    }
}

/// How one delivery ended.
enum Sent {
    /// Accepted, with this status.
    Delivered(u16),
    /// Refused or unanswered at every attempt, or given up on stop.
    Failed,
    /// The webhook was deleted (or the sandbox reset) meanwhile: not tried again.
    Withdrawn,
}

async fn send(
    pd: &Pipedrive,
    http: &reqwest::Client,
    hook: &Webhook,
    event: &PdEvent,
    company_id: u64,
    host: &str,
    stop: &mut watch::Receiver<bool>,
) -> Sent {
    let correlation = uuid::Uuid::new_v4().to_string();
    for attempt in 1..=pd.config.webhook_max_attempts {
        // Once stopping, nothing more is sent (a stop already seen would not wake `changed`).
        if *stop.borrow() {
            return Sent::Failed;
        }
        // A retry for a webhook deleted meanwhile (or lost in a reset) is not sent.
        if attempt > 1 && !registered(pd, hook) {
            return Sent::Withdrawn;
        }
        let body = json!({
            "data": event.data,
            "previous": event.previous,
            "meta": {
                "action": event.action,
                "entity": event.entity,
                "entity_id": event.id.to_string(),
                "company_id": company_id.to_string(),
                "correlation_id": correlation,
                "id": uuid::Uuid::new_v4().to_string(),
                "is_bulk": false,
                "timestamp": iso_seconds(event.at),
                "type": "general",
                "user_id": hook.user_id.to_string(),
                "version": "2.0",
                "webhook_id": hook.id.to_string(),
                "webhook_owner_id": hook.user_id.to_string(),
                "change_source": event.source,
                "permitted_user_ids": [hook.user_id.to_string()],
                "attempt": attempt,
                "host": format!("{host}.pipedrive.com"),
            },
        });
        let mut request = http.post(&hook.subscription_url).json(&body);
        if let Some(user) = &hook.http_auth_user {
            request = request.basic_auth(user, hook.http_auth_password.as_deref());
        }
        let sent = tokio::select! {
            sent = request.send() => sent,
            _ = stop.changed() => return Sent::Failed,
        };
        match sent {
            Ok(r) if r.status().is_success() => return Sent::Delivered(r.status().as_u16()),
            Ok(r) => tracing::warn!(status = %r.status(), attempt, webhook = hook.id, "webhook delivery refused; will retry"),
            // The subscription URL may carry a secret: never logged.
            Err(e) => tracing::warn!(error = %e.without_url(), attempt, webhook = hook.id, "webhook delivery failed; will retry"),
        }
        pd.webhook_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let wait = pd.config.webhook_retry_base_ms.saturating_mul(1 << (attempt - 1).min(10));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => return Sent::Failed,
        }
    }
    Sent::Failed
}

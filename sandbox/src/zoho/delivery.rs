//! Delivery of the changes the channels subscribed to: one worker per channel, so a receiver
//! that is slow or gone holds back only its own deliveries; retries with backoff; figures for
//! tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch as signal};

use super::data::Module;
use super::watch::{Operation, Watch};
use super::Zoho;

/// Deliveries queued for one channel, at most (a receiver that does not answer holds back only
/// its own channel, and only this many of its deliveries).
pub const CHANNEL_QUEUE: usize = 1_000;

/// Delivery figures for tests (`GET /_sandbox/notifications`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub expired: AtomicU64,
    /// Deliveries dropped because their channel's queue was full.
    pub dropped: AtomicU64,
}

pub async fn stats(State(zoho): State<Arc<Zoho>>) -> Json<Value> {
    let s = &zoho.notify_stats;
    let outbox_dropped = zoho.read().outbox_dropped;
    Json(json!({
        "delivered": s.delivered.load(Ordering::Relaxed),
        "failed_attempts": s.failed_attempts.load(Ordering::Relaxed),
        "expired": s.expired.load(Ordering::Relaxed),
        "dropped": s.dropped.load(Ordering::Relaxed) + outbox_dropped,
    }))
}

/// Delivers recorded changes until `stop` turns true: every 100 ms the changes since the last
/// round, one POST per channel, module and operation with the ids changed, to channels that had
/// not expired when the change was made. Each channel is served by a worker of its own, so a
/// receiver that is slow or gone delays only its own deliveries.
pub async fn deliver(zoho: Arc<Zoho>, mut stop: signal::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut workers: HashMap<String, mpsc::Sender<(Watch, Value)>> = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        let (events, watches) = {
            let mut data = zoho.data_quiet();
            if data.outbox.is_empty() {
                continue;
            }
            (std::mem::take(&mut data.outbox), data.watches.clone())
        };
        // Consecutive changes of one module and operation go in one delivery.
        let mut batches: Vec<(Module, Operation, Vec<u64>, i64)> = Vec::new();
        for e in &events {
            match batches.last_mut() {
                Some((m, op, ids, _)) if *m == e.module && *op == e.op => {
                    if !ids.contains(&e.id) {
                        ids.push(e.id)
                    }
                }
                _ => batches.push((e.module, e.op, vec![e.id], e.at)),
            }
        }
        workers.retain(|channel, _| watches.iter().any(|w| &w.channel_id == channel));
        for (module, op, ids, at) in &batches {
            for w in watches.iter().filter(|w| w.wants(*module, *op)) {
                if w.channel_expiry <= *at {
                    zoho.notify_stats.expired.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let body = json!({
                    "server_time": at,
                    "query_params": {},
                    "module": module.api_name(),
                    "resource_uri": format!("{}/crm/v8/{}", zoho.config.api_domain, module.api_name()),
                    "ids": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                    "affected_fields": [],
                    "operation": op.name(),
                    "channel_id": w.channel_id,
                    "token": w.token,
                });
                let worker = workers.entry(w.channel_id.clone()).or_insert_with(|| {
                    let (queue, deliveries) = mpsc::channel(CHANNEL_QUEUE);
                    tokio::spawn(serve_channel(zoho.clone(), http.clone(), deliveries, stop.clone()));
                    queue
                });
                if worker.try_send((w.clone(), body)).is_err() {
                    zoho.notify_stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(channel = %w.channel_id, "notification dropped: the channel's queue is full");
                }
            }
        }
    }
}

/// One channel's deliveries, in order, until its queue closes or `stop` turns true.
async fn serve_channel(
    zoho: Arc<Zoho>,
    http: reqwest::Client,
    mut deliveries: mpsc::Receiver<(Watch, Value)>,
    mut stop: signal::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = deliveries.recv() => next,
            _ = stop.changed() => None,
        };
        let Some((w, body)) = next else { return };
        if *stop.borrow() {
            return;
        }
        send(&zoho, &http, &w, &body, &mut stop).await;
    }
}

async fn send(zoho: &Zoho, http: &reqwest::Client, w: &Watch, body: &Value, stop: &mut signal::Receiver<bool>) {
    for attempt in 1..=zoho.config.notify_max_attempts.max(1) {
        if *stop.borrow() {
            return;
        }
        let sent = tokio::select! {
            sent = http.post(&w.notify_url).json(body).send() => sent,
            _ = stop.changed() => return,
        };
        match sent {
            Ok(r) if r.status().is_success() => {
                zoho.notify_stats.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) => tracing::warn!(status = %r.status(), attempt, channel = %w.channel_id, "notification refused; will retry"),
            // The notify URL may carry a secret: never logged.
            Err(e) => tracing::warn!(error = %e.without_url(), attempt, channel = %w.channel_id, "notification failed; will retry"),
        }
        zoho.notify_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
        if attempt == zoho.config.notify_max_attempts.max(1) {
            return;
        }
        let wait = zoho.config.notify_retry_base_ms.saturating_mul(1 << (attempt - 1).min(10));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => return,
        }
    }
}

//! Notifications (`/crm/v8/actions/watch`): channels subscribe to events (`Deals.all`,
//! `Contacts.create`, `Accounts.edit`, `Deals.delete`) with a `notify_url`, a `token` echoed in
//! every delivery and a `channel_expiry` (at most a week ahead; an hour by default) after which
//! deliveries stop. Each delivery (see `delivery`) is one POST naming the module, the operation
//! (`insert`, `update`, `delete`) and the ids it changed.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::data::{Module, ZohoData};
use super::paging::Paging;
use super::values::{invalid_data, record_error};
use super::{body_invalid, member_missing, param_missing, require_scope, zoho_time, JsonBody, Zoho};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};

const HOUR_MS: i64 = 3_600_000;
const WEEK_MS: i64 = 7 * 24 * HOUR_MS;
/// Changes waiting for delivery, at most; the oldest are dropped past it.
pub const OUTBOX_CAP: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    pub(super) fn name(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// The event word subscribing to it.
    fn event(self) -> &'static str {
        match self {
            Operation::Insert => "create",
            Operation::Update => "edit",
            Operation::Delete => "delete",
        }
    }
}

/// A subscribed channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Watch {
    pub channel_id: String,
    /// `Module.operation` as given (`Deals.all`, `Contacts.create`, ...).
    pub events: Vec<String>,
    pub notify_url: String,
    pub token: Option<String>,
    pub channel_expiry: i64,
    /// Whether changes of related records are notified too (kept and given back).
    #[serde(default)]
    pub notify_on_related_action: bool,
}

impl Watch {
    pub(super) fn wants(&self, module: Module, op: Operation) -> bool {
        self.events.iter().any(|e| match e.split_once('.') {
            Some((m, what)) => m.eq_ignore_ascii_case(module.api_name()) && (what == "all" || what == op.event()),
            None => false,
        })
    }
}

/// A change waiting for delivery.
#[derive(Clone, Debug)]
pub struct Event {
    pub module: Module,
    pub op: Operation,
    pub id: u64,
    pub at: i64,
}

impl ZohoData {
    /// Records a change made `at` (by the sandbox's clock) for the channels, when there are any;
    /// past [`OUTBOX_CAP`] waiting changes the oldest is dropped.
    pub fn emit(&mut self, module: Module, op: Operation, id: u64, at: i64) {
        if self.watches.is_empty() {
            return;
        }
        if self.outbox.len() >= OUTBOX_CAP {
            self.outbox.pop_front();
            self.outbox_dropped += 1;
        }
        self.outbox.push_back(Event { module, op, id, at });
    }
}

fn wrapped(items: Vec<Value>, all_ok: StatusCode) -> Response {
    let status = if items.iter().all(|i| i["status"] == "success") { all_ok } else { StatusCode::ACCEPTED };
    (status, Json(json!({"watch": items}))).into_response()
}

fn event_details(zoho: &Zoho, w: &Watch) -> Vec<Value> {
    let data = zoho.read();
    Module::ALL
        .iter()
        .filter(|m| w.events.iter().any(|e| e.split_once('.').is_some_and(|(x, _)| x.eq_ignore_ascii_case(m.api_name()))))
        .map(|m| {
            json!({
                "channel_expiry": zoho_time(w.channel_expiry),
                "resource_uri": format!("{}/crm/v8/{}", zoho.config.api_domain, m.api_name()),
                "resource_id": m.id(data.org_id).to_string(),
                "resource_name": m.api_name(),
                "channel_id": w.channel_id,
                "notification_condition": null,
            })
        })
        .collect()
}

/// Checks one channel of a body; `Err` is its per-item error.
fn parse_watch(item: &Value, i: usize, now: i64) -> Result<Watch, Value> {
    let path = |f: &str| format!("$.watch[{i}].{f}");
    let mandatory = |f: &str| record_error("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": f, "json_path": path(f)}));
    let invalid = |f: &str| invalid_data(json!({"api_name": f, "json_path": path(f)}));
    let channel_id = match item.get("channel_id") {
        None => return Err(mandatory("channel_id")),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(invalid("channel_id")),
    };
    let Some(events) = item.get("events") else { return Err(mandatory("events")) };
    let events: Vec<String> = events.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    let valid = |e: &String| {
        e.split_once('.').is_some_and(|(m, what)| Module::parse(m).is_some() && matches!(what, "all" | "create" | "edit" | "delete"))
    };
    if events.is_empty() || !events.iter().all(valid) {
        return Err(invalid("events"));
    }
    let Some(notify_url) = item.get("notify_url").and_then(Value::as_str).map(str::to_string) else { return Err(mandatory("notify_url")) };
    if !(notify_url.starts_with("http://") || notify_url.starts_with("https://")) {
        return Err(invalid("notify_url"));
    }
    let token = item.get("token").and_then(Value::as_str).map(str::to_string);
    if token.as_ref().is_some_and(|t| t.chars().count() > 50) {
        return Err(invalid("token"));
    }
    let channel_expiry = match item.get("channel_expiry") {
        None | Some(Value::Null) => now + HOUR_MS,
        Some(v) => match v.as_str().and_then(crate::time::parse_rfc3339) {
            Some(t) if t > now && t <= now + WEEK_MS => t,
            _ => return Err(invalid("channel_expiry")),
        },
    };
    let notify_on_related_action = match item.get("notify_on_related_action") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("notify_on_related_action")),
    };
    Ok(Watch { channel_id, events, notify_url, token, channel_expiry, notify_on_related_action })
}

fn body_items(body: JsonBody) -> Result<Vec<Value>, Response> {
    match body.0 {
        Some(Value::Object(mut o)) => match o.remove("watch") {
            Some(Value::Array(items)) if !items.is_empty() => Ok(items),
            _ => Err(member_missing("watch")),
        },
        _ => Err(body_invalid()),
    }
}

fn subscribed(zoho: &Zoho, w: &Watch, message: &str) -> Value {
    json!({"code": "SUCCESS", "details": {"events": event_details(zoho, w)}, "message": message, "status": "success"})
}

/// POST /crm/v8/actions/watch (Enable Notifications): 201, or 202 with the refused channels.
pub async fn enable(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, body: JsonBody) -> Response {
    if let Err(r) = require_scope(&token, "notifications", None, "CREATE") {
        return r;
    }
    let items = match body_items(body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let now = zoho.clock.now();
    let mut answers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_watch(item, i, now) {
            Err(e) => answers.push(e),
            Ok(w) => {
                {
                    let mut data = zoho.write();
                    data.watches.retain(|x| x.channel_id != w.channel_id);
                    data.watches.push(w.clone());
                }
                answers.push(subscribed(&zoho, &w, "Successfully subscribed for actions-watch of the given module"));
            }
        }
    }
    wrapped(answers, StatusCode::CREATED)
}

/// PUT /crm/v8/actions/watch (Update Notifications): replaces a channel's subscription.
pub async fn update(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, body: JsonBody) -> Response {
    if let Err(r) = require_scope(&token, "notifications", None, "UPDATE") {
        return r;
    }
    let items = match body_items(body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let now = zoho.clock.now();
    let mut answers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_watch(item, i, now) {
            Err(e) => answers.push(e),
            Ok(w) => {
                let found = {
                    let mut data = zoho.write();
                    match data.watches.iter_mut().find(|x| x.channel_id == w.channel_id) {
                        Some(existing) => {
                            *existing = w.clone();
                            true
                        }
                        None => false,
                    }
                };
                answers.push(if found {
                    subscribed(&zoho, &w, "Successfully updated the subscribe details")
                } else {
                    record_error("NOT_SUBSCRIBED", "channel not subscribed", json!({"channel_id": w.channel_id}))
                });
            }
        }
    }
    wrapped(answers, StatusCode::OK)
}

/// PATCH /crm/v8/actions/watch (Disable Notification): `_delete_events: true` removes the given
/// events from the channel (the channel goes with its last event).
pub async fn disable(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, body: JsonBody) -> Response {
    if let Err(r) = require_scope(&token, "notifications", None, "UPDATE") {
        return r;
    }
    let items = match body_items(body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut answers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let channel = item.get("channel_id").map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()));
        let Some(channel) = channel else {
            answers.push(record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "channel_id", "json_path": format!("$.watch[{i}].channel_id")}),
            ));
            continue;
        };
        let events: Vec<String> =
            item.get("events").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        if item.get("_delete_events") != Some(&Value::Bool(true)) || events.is_empty() {
            answers.push(invalid_data(json!({"api_name": "_delete_events", "json_path": format!("$.watch[{i}]._delete_events")})));
            continue;
        }
        let mut data = zoho.write();
        let Some(w) = data.watches.iter_mut().find(|w| w.channel_id == channel) else {
            answers.push(record_error("NOT_SUBSCRIBED", "channel not subscribed", json!({"channel_id": channel})));
            continue;
        };
        w.events.retain(|e| !events.contains(e));
        data.watches.retain(|w| !w.events.is_empty());
        answers.push(json!({"code": "SUCCESS", "details": {"channel_id": channel}, "message": "Successfully un-subscribed from actions-watch", "status": "success"}));
    }
    wrapped(answers, StatusCode::OK)
}

/// DELETE /crm/v8/actions/watch?channel_ids=… (Delete Notification)
pub async fn delete(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "notifications", None, "DELETE") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let ids: Vec<String> = query_one(&pairs, "channel_ids")
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return param_missing("channel_ids");
    }
    let mut data = zoho.write();
    let answers = ids
        .iter()
        .map(|id| {
            let before = data.watches.len();
            data.watches.retain(|w| &w.channel_id != id);
            if data.watches.len() < before {
                json!({"code": "SUCCESS", "details": {"channel_id": id}, "message": "Successfully removed the subscribe details", "status": "success"})
            } else {
                record_error("NOT_SUBSCRIBED", "channel not subscribed", json!({"channel_id": id}))
            }
        })
        .collect();
    drop(data);
    wrapped(answers, StatusCode::OK)
}

/// GET /crm/v8/actions/watch (Get Notifications): the channels (204 when none), `channel_id`
/// and `module` narrowing them.
pub async fn list(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "notifications", None, "READ") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let paging = match Paging::parse(&pairs, "DISCRETE_PAGINATION_LIMIT_EXCEEDED") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let channel = query_one(&pairs, "channel_id");
    let module = query_one(&pairs, "module").and_then(Module::parse);
    let watches: Vec<Watch> = zoho
        .read()
        .watches
        .iter()
        .filter(|w| channel.is_none_or(|c| c == w.channel_id))
        .filter(|w| {
            module.is_none_or(|m| w.events.iter().any(|e| e.split_once('.').is_some_and(|(x, _)| x.eq_ignore_ascii_case(m.api_name()))))
        })
        .cloned()
        .collect();
    let (page, more) = paging.slice(&watches);
    let shown: Vec<Value> = page
        .iter()
        .map(|w| {
            let mut o = Map::new();
            o.insert("channel_id".into(), json!(w.channel_id));
            o.insert("events".into(), json!(w.events));
            o.insert("notify_url".into(), json!(w.notify_url));
            o.insert("token".into(), json!(w.token));
            o.insert("channel_expiry".into(), json!(zoho_time(w.channel_expiry)));
            o.insert("notify_on_related_action".into(), json!(w.notify_on_related_action));
            Value::Object(o)
        })
        .collect();
    if shown.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(json!({"watch": shown, "info": paging.info(shown.len(), more)})).into_response()
}

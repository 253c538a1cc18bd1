//! Record events as a run or a record's timeline lists them: what happened, on which side, each
//! field's old → new value, and for a conflict both values, the winner and the rule.

use leptos::prelude::*;
use model::dashboard::{event_label, reason_label, EventSummary, FieldChange, SyncLabel};
use model::timefmt;

use super::sync_header::{record_path, side_name};

fn shown(v: &Option<String>) -> String {
    match v.as_deref() {
        None | Some("") => "(empty)".to_string(),
        Some(v) => v.to_string(),
    }
}

fn change_line(c: &FieldChange, kind: &str, label: &SyncLabel) -> impl IntoView {
    if kind == "conflict" {
        let winner = c.winner.as_deref().map(|w| side_name(w, label)).unwrap_or_default();
        view! {
            <li class="change conflict-change">
                <strong>{c.field.clone()}</strong>
                {format!(": HubSpot had {}, {} had {}; {winner} won", shown(&c.hubspot), label.app_name, shown(&c.app))}
            </li>
        }
        .into_any()
    } else {
        view! {
            <li class="change">
                <strong>{c.field.clone()}</strong>
                ": "
                <span class="old-value">{shown(&c.old)}</span>
                " → "
                <span class="new-value">{shown(&c.new)}</span>
            </li>
        }
        .into_any()
    }
}

/// What an event says beside its field changes.
pub fn event_note(e: &EventSummary, label: &SyncLabel) -> String {
    let side = side_name(&e.side, label);
    match e.kind.as_str() {
        "created" => format!("Created in {side}"),
        "updated" => format!("Updated in {side}"),
        "conflict" => format!("Conflict decided by “{}”", e.rule.clone().unwrap_or_default()),
        "deleted" => format!("Deleted in {side}; Tandem never deletes the other side"),
        "excluded" => format!("Excluded: {}", e.category.as_deref().map(reason_label).unwrap_or("rules")),
        "failed" => format!("Writing to {side} failed ({})", e.category.as_deref().map(reason_label).unwrap_or("error")),
        "not_synced" => format!("A field from {side} could not be translated"),
        "matched" => format!("Matched with the record that already existed in {side}"),
        other => event_label(other).to_string(),
    }
}

#[component]
pub fn EventRows(events: Vec<EventSummary>, label: SyncLabel, #[prop(optional)] with_record: bool) -> impl IntoView {
    events
        .into_iter()
        .map(|e| {
            let note = event_note(&e, &label);
            let kind = e.kind.clone();
            let changes = e.changes.iter().map(|c| change_line(c, &kind, &label)).collect_view();
            let record = with_record.then(|| {
                let name = if e.record_name.is_empty() { e.record_id.clone() } else { e.record_name.clone() };
                view! { <td><a href=record_path(&label.sync_id, &e.record_id)>{name}</a></td> }
            });
            view! {
                <tr data-event=e.kind.clone() data-side=e.side.clone()>
                    <td class="nowrap">{timefmt::date_time(e.at)}</td>
                    {record}
                    <td><span class=format!("badge event-{}", e.kind)>{event_label(&e.kind)}</span></td>
                    <td>
                        <p class="event-note">{note}</p>
                        {(!e.changes.is_empty()).then(|| view! { <ul class="plain-list changes">{changes}</ul> })}
                        {e.message.clone().map(|m| view! { <p class="hint">{m}</p> })}
                    </td>
                </tr>
            }
        })
        .collect_view()
}

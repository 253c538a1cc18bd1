//! Record events as a run or a record's timeline lists them: what happened, on which side, each
//! field's old → new value, and for a conflict both values, the winner and the rule.

use leptos::prelude::*;
use model::dashboard::{EventSummary, FieldChange, SyncLabel};
use model::states::{EventKind, RecordReason};
use model::timefmt;

use super::sync_header::{record_path, side_name};

fn shown(v: &Option<String>) -> String {
    match v.as_deref() {
        None | Some("") => "(empty)".to_string(),
        Some(v) => v.to_string(),
    }
}

fn change_line(c: &FieldChange, kind: EventKind, label: &SyncLabel) -> impl IntoView {
    if kind == EventKind::Conflict {
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
    let side = side_name(e.side.as_str(), label);
    match e.kind {
        EventKind::Created => format!("Created in {side}"),
        EventKind::Updated => format!("Updated in {side}"),
        EventKind::Conflict => format!("Conflict decided by “{}”", e.rule.clone().unwrap_or_default()),
        EventKind::Deleted => format!("Deleted in {side}; Tandem never deletes the other side"),
        EventKind::Excluded => format!("Excluded: {}", e.category.map(RecordReason::label).unwrap_or("rules")),
        EventKind::Failed => format!("Writing to {side} failed ({})", e.category.map(RecordReason::label).unwrap_or("error")),
        EventKind::NotSynced => format!("A field from {side} could not be translated"),
        EventKind::Matched => format!("Matched with the record that already existed in {side}"),
    }
}

#[component]
pub fn EventRows(events: Vec<EventSummary>, label: SyncLabel, #[prop(optional)] with_record: bool) -> impl IntoView {
    events
        .into_iter()
        .map(|e| {
            let note = event_note(&e, &label);
            let changes = e.changes.iter().map(|c| change_line(c, e.kind, &label)).collect_view();
            let record = with_record.then(|| {
                let name = if e.record_name.is_empty() { e.record_id.clone() } else { e.record_name.clone() };
                view! { <td><a href=record_path(&label.sync_id, &e.record_id)>{name}</a></td> }
            });
            view! {
                <tr data-event=e.kind.as_str() data-side=e.side.as_str()>
                    <td class="nowrap">{timefmt::date_time(e.at)}</td>
                    {record}
                    <td><span class=format!("badge event-{}", e.kind)>{e.kind.label()}</span></td>
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

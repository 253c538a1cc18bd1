//! **Field mappings**: which HubSpot property keeps which app field in step, and which way. The
//! defaults come first; any compatible pair can be added. The associations the sync keeps are
//! listed underneath, each saying whether the object it links to syncs too.

use leptos::prelude::*;
use model::apps::{ObjectKind, SyncDirection};
use model::sync::{FieldInfo, FieldKind, FieldMapping, ValuePair};

use super::feedback::FieldMessage;
use super::sync_state::SetupState;

fn direction_key(d: SyncDirection) -> &'static str {
    match d {
        SyncDirection::TwoWay => "two_way",
        SyncDirection::ToHubSpot => "to_hubspot",
        SyncDirection::ToApp => "to_app",
    }
}

/// The associations a sync of `object` keeps, and with which object: (the link on HubSpot's side,
/// on the app's side, the object that must sync too).
fn associations(object: ObjectKind, app: &str) -> Vec<(String, String, ObjectKind)> {
    match object {
        ObjectKind::Deal => vec![
            ("HubSpot deal ↔ its contact".into(), format!("{app} deal ↔ its person"), ObjectKind::Contact),
            ("HubSpot deal ↔ its company".into(), format!("{app} deal ↔ its organization"), ObjectKind::Company),
        ],
        ObjectKind::Contact => {
            vec![("HubSpot contact ↔ its company".into(), format!("{app} person ↔ its organization"), ObjectKind::Company)]
        }
        ObjectKind::Company => {
            vec![("HubSpot company ↔ its contacts".into(), format!("{app} organization ↔ its people"), ObjectKind::Contact)]
        }
    }
}

#[component]
pub fn FieldMappings(
    state: SetupState,
    /// The other objects already syncing with this app.
    synced: Vec<ObjectKind>,
) -> impl IntoView {
    let app = state.app_name();
    let count = Memo::new(move |_| state.settings.with(|s| s.fields.len()));
    let add = move |_| {
        let direction = state.settings.with(|s| s.direction);
        let (hub, other) = state.schemas.with_value(|s| {
            (
                s.hubspot.fields.iter().find(|f| !f.read_only).map(|f| f.key.clone()),
                s.app.fields.iter().find(|f| !f.read_only).map(|f| f.key.clone()),
            )
        });
        state.settings.update(|s| {
            s.fields.push(FieldMapping {
                hubspot_property: hub.unwrap_or_default(),
                app_field: other.unwrap_or_default(),
                direction,
                values: vec![],
            })
        });
    };
    let app_for_note = app.clone();
    let object = state.settings.with_untracked(|s| s.object);
    view! {
        <section class="card" aria-labelledby="fields-heading">
            <h2 id="fields-heading">"Field mappings"</h2>
            <p class="hint">
                {format!("Each mapping keeps a HubSpot property and a {app} field in step, in the direction you choose. The pipeline and stage come from the grid above.")}
            </p>
            <table class="table field-table">
                <thead>
                    <tr>
                        <th scope="col">"HubSpot property"</th>
                        <th scope="col">"Direction"</th>
                        <th scope="col">{format!("{app} field")}</th>
                        <th scope="col">
                            <span class="visually-hidden">"Remove"</span>
                        </th>
                    </tr>
                </thead>
                <tbody>{move || (0..count.get()).map(|i| view! { <MappingRow state i/> }).collect_view()}</tbody>
            </table>
            <button type="button" class="btn btn-secondary" on:click=add disabled=!state.can_manage>
                "Add mapping"
            </button>
            <h3 class="subheading">"Associations"</h3>
            <p class="hint">
                {format!(
                    "Links between records are kept on both sides when the linked object syncs too: a change to one side's link (a deal's person, say) is made on the other. {app_for_note} keeps one person and one organization per deal; of several HubSpot associations, the one already linked is kept."
                )}
            </p>
            <ul class="associations">
                {associations(object, &app_for_note)
                    .into_iter()
                    .map(|(hub, other, with)| {
                        let status = match (object, synced.contains(&with)) {
                            (ObjectKind::Company, true) => "kept by the contacts sync".to_string(),
                            (ObjectKind::Company, false) => "kept by the contacts sync, once contacts sync too".to_string(),
                            (_, true) => format!("created on both sides, with the {} sync", with.plural().to_lowercase()),
                            (_, false) => format!("created once {} sync too (Sync more data)", with.plural().to_lowercase()),
                        };
                        view! {
                            <li>
                                <strong>{format!("{hub} · {other}")}</strong>
                                {format!(": {status}")}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}

fn options(fields: &[FieldInfo], current: String) -> impl IntoView {
    fields
        .iter()
        .map(|f| {
            let label = format!("{}{}{}", f.label, if f.custom { " (custom)" } else { "" }, if f.read_only { " (read-only)" } else { "" });
            view! { <option value=f.key.clone() selected=f.key == current>{label}</option> }
        })
        .collect_view()
}

#[component]
fn MappingRow(state: SetupState, i: usize) -> impl IntoView {
    let app = state.app_name();
    let mapping = move || state.settings.with(|s| s.fields.get(i).cloned());
    let set = move |f: Box<dyn Fn(&mut FieldMapping)>| {
        state.settings.update(|s| {
            if let Some(m) = s.fields.get_mut(i) {
                f(m);
            }
        })
    };
    let remove = move |_| {
        state.settings.update(|s| {
            if i < s.fields.len() {
                s.fields.remove(i);
            }
        })
    };
    let (hub_fields, app_fields) = state.schemas.with_value(|s| (s.hubspot.fields.clone(), s.app.fields.clone()));
    let current = mapping();
    let (hub_id, dir_id, app_id) = (format!("field-{i}-hubspot"), format!("field-{i}-direction"), format!("field-{i}-app"));
    let current_direction = current.as_ref().map(|m| m.direction).unwrap_or(SyncDirection::TwoWay);
    view! {
        <tr>
            <td>
                <label class="visually-hidden" for=hub_id.clone()>{format!("HubSpot property of mapping {}", i + 1)}</label>
                <select
                    id=hub_id
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        set(Box::new(move |m| m.hubspot_property = v.clone()))
                    }
                >
                    {options(&hub_fields, current.as_ref().map(|m| m.hubspot_property.clone()).unwrap_or_default())}
                </select>
                <FieldMessage error=state.error field=format!("fields.{i}.hubspot_property")/>
            </td>
            <td>
                <label class="visually-hidden" for=dir_id.clone()>{format!("Direction of mapping {}", i + 1)}</label>
                <select
                    id=dir_id
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some(d) = SyncDirection::ALL.into_iter().find(|d| direction_key(*d) == v) {
                            set(Box::new(move |m| m.direction = d))
                        }
                    }
                >
                    {SyncDirection::ALL
                        .into_iter()
                        .map(|d| {
                            let label = match d {
                                SyncDirection::TwoWay => "↔ Two-way".to_string(),
                                SyncDirection::ToHubSpot => "← Only to HubSpot".to_string(),
                                SyncDirection::ToApp => format!("→ Only to {app}"),
                            };
                            view! { <option value=direction_key(d) selected=d == current_direction>{label}</option> }
                        })
                        .collect_view()}
                </select>
                <FieldMessage error=state.error field=format!("fields.{i}.direction")/>
            </td>
            <td>
                <label class="visually-hidden" for=app_id.clone()>{format!("App field of mapping {}", i + 1)}</label>
                <select
                    id=app_id
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        set(Box::new(move |m| m.app_field = v.clone()))
                    }
                >
                    {options(&app_fields, current.as_ref().map(|m| m.app_field.clone()).unwrap_or_default())}
                </select>
                <FieldMessage error=state.error field=format!("fields.{i}.app_field")/>
            </td>
            <td class="actions">
                <button type="button" class="btn-link link-danger" on:click=remove disabled=!state.can_manage>
                    "Remove"
                </button>
            </td>
        </tr>
        <ValueMap state i/>
    }
}

/// For two dropdown fields: which value means which. Values with the same label pair up by
/// themselves; the admin can change any pair.
#[component]
fn ValueMap(state: SetupState, i: usize) -> impl IntoView {
    let app = state.app_name();
    let fields = Memo::new(move |_| {
        let m = state.settings.with(|s| s.fields.get(i).map(|m| (m.hubspot_property.clone(), m.app_field.clone())))?;
        state.schemas.with_value(|s| {
            let hub = s.hubspot.field(&m.0)?.clone();
            let other = s.app.field(&m.1)?.clone();
            (hub.kind == FieldKind::Enum && other.kind == FieldKind::Enum).then_some((hub, other))
        })
    });
    // Pair same-labelled values when a mapping between two dropdowns has none yet.
    Effect::new(move |_| {
        if let Some((hub, other)) = fields.get() {
            let empty = state.settings.with_untracked(|s| s.fields.get(i).is_some_and(|m| m.values.is_empty()));
            if empty {
                let pairs: Vec<ValuePair> = hub
                    .options
                    .iter()
                    .filter_map(|h| {
                        other
                            .options
                            .iter()
                            .find(|a| a.label.trim().eq_ignore_ascii_case(h.label.trim()))
                            .map(|a| ValuePair { hubspot: h.value.clone(), app: a.value.clone() })
                    })
                    .collect();
                if !pairs.is_empty() {
                    state.settings.update(|s| {
                        if let Some(m) = s.fields.get_mut(i) {
                            m.values = pairs;
                        }
                    });
                }
            }
        }
    });
    move || {
        let (hub, other) = fields.get()?;
        let app = app.clone();
        let current = state.settings.with_untracked(|s| s.fields.get(i).map(|m| m.values.clone()).unwrap_or_default());
        Some(view! {
            <tr class="values-row">
                <td colspan="4">
                    <details open=true>
                        <summary>{format!("Dropdown values: {} ↔ {}", hub.label, other.label)}</summary>
                        <table class="table value-table">
                            <thead>
                                <tr>
                                    <th scope="col">"HubSpot value"</th>
                                    <th scope="col">{format!("{app} value")}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {hub.options
                                    .iter()
                                    .enumerate()
                                    .map(|(j, h)| {
                                        let id = format!("field-{i}-value-{j}");
                                        let chosen = current.iter().find(|p| p.hubspot == h.value).map(|p| p.app.clone()).unwrap_or_default();
                                        let hub_value = h.value.clone();
                                        view! {
                                            <tr>
                                                <th scope="row"><label for=id.clone()>{h.label.clone()}</label></th>
                                                <td>
                                                    <select
                                                        id=id
                                                        disabled=!state.can_manage
                                                        on:change=move |ev| {
                                                            let v = event_target_value(&ev);
                                                            let hub_value = hub_value.clone();
                                                            state.settings.update(|s| {
                                                                if let Some(m) = s.fields.get_mut(i) {
                                                                    m.values.retain(|p| p.hubspot != hub_value);
                                                                    if !v.is_empty() {
                                                                        m.values.push(ValuePair { hubspot: hub_value, app: v });
                                                                    }
                                                                }
                                                            });
                                                        }
                                                    >
                                                        <option value="" selected=chosen.is_empty()>"No match (left empty)"</option>
                                                        {other
                                                            .options
                                                            .iter()
                                                            .map(|a| view! { <option value=a.value.clone() selected=a.value == chosen>{a.label.clone()}</option> })
                                                            .collect_view()}
                                                    </select>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                        <FieldMessage error=state.error field=format!("fields.{i}.values")/>
                    </details>
                </td>
            </tr>
        })
    }
}

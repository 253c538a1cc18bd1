//! **Field mappings**: which HubSpot property keeps which app field in step, and which way. The
//! defaults come first; any compatible pair can be added. The associations the sync creates are
//! listed underneath.

use leptos::prelude::*;
use model::apps::SyncDirection;
use model::sync::{FieldInfo, FieldMapping};

use super::feedback::FieldMessage;
use super::sync_state::SetupState;

fn direction_key(d: SyncDirection) -> &'static str {
    match d {
        SyncDirection::TwoWay => "two_way",
        SyncDirection::ToHubSpot => "to_hubspot",
        SyncDirection::ToApp => "to_app",
    }
}

#[component]
pub fn FieldMappings(state: SetupState) -> impl IntoView {
    let app = state.app_name();
    let count = Memo::new(move |_| state.settings.with(|s| s.fields.len()));
    let add = move |_| {
        let direction = state.settings.with(|s| s.direction);
        let (hub, other) = state.schemas.with_value(|s| {
            (s.hubspot.fields.iter().find(|f| !f.read_only).map(|f| f.key.clone()), s.app.fields.iter().find(|f| !f.read_only).map(|f| f.key.clone()))
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
                    "When contacts and companies sync too, each deal is associated on both sides: HubSpot deal ↔ contact with {app_for_note}'s deal person, and deal ↔ company with its organization."
                )}
            </p>
        </section>
    }
}

fn options(fields: &[FieldInfo], current: String) -> impl IntoView {
    fields
        .iter()
        .map(|f| {
            let label = format!(
                "{}{}{}",
                f.label,
                if f.custom { " (custom)" } else { "" },
                if f.read_only { " (read-only)" } else { "" }
            );
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
    let remove = move |_| state.settings.update(|s| {
        if i < s.fields.len() {
            s.fields.remove(i);
        }
    });
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
    }
}

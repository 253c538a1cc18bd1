//! **Additional filters (optional)**: conditions on the app's deal fields, all of which must hold
//! for a deal to sync. Operators follow the field's type.

use leptos::prelude::*;
use model::sync::{FieldKind, Filter, FilterOp};

use super::feedback::FieldMessage;
use super::sync_state::SetupState;

#[component]
pub fn Filters(state: SetupState) -> impl IntoView {
    let app = state.app_name();
    let count = Memo::new(move |_| state.settings.with(|s| s.filters.len()));
    let add = move |_| {
        let first = state.schemas.with_value(|s| s.app.fields.first().map(|f| f.key.clone()).unwrap_or_default());
        state.settings.update(|s| s.filters.push(Filter { field: first, op: FilterOp::Is, value: String::new() }));
    };
    view! {
        <section class="card" aria-labelledby="filters-heading">
            <h2 id="filters-heading">"Additional filters (optional)"</h2>
            <p class="hint">{format!("Only {app} deals that meet every condition sync to HubSpot.")}</p>
            {move || (0..count.get()).map(|i| view! { <FilterRow state i/> }).collect_view()}
            <button type="button" class="btn btn-secondary" on:click=add disabled=!state.can_manage>
                "Add filter"
            </button>
        </section>
    }
}

#[component]
fn FilterRow(state: SetupState, i: usize) -> impl IntoView {
    let filter = move || state.settings.with(|s| s.filters.get(i).cloned());
    let fields = state.schemas.with_value(|s| s.app.fields.clone());
    let field_info = {
        let fields = fields.clone();
        move || filter().and_then(|f| fields.iter().find(|x| x.key == f.field).cloned())
    };
    let set = move |f: Box<dyn Fn(&mut Filter)>| {
        state.settings.update(|s| {
            if let Some(x) = s.filters.get_mut(i) {
                f(x);
            }
        })
    };
    let remove = move |_| {
        state.settings.update(|s| {
            if i < s.filters.len() {
                s.filters.remove(i);
            }
        })
    };
    let (field_id, op_id, value_id) = (format!("filter-{i}-field"), format!("filter-{i}-op"), format!("filter-{i}-value"));
    let field_info_for_ops = field_info.clone();
    let field_info_for_value = field_info.clone();
    view! {
        <div class="form-row filter-row" role="group" aria-label=format!("Filter {}", i + 1)>
            <div class="field">
                <label for=field_id.clone()>"Field"</label>
                <select
                    id=field_id
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let key = event_target_value(&ev);
                        set(Box::new(move |f| {
                            f.field = key.clone();
                            f.value.clear();
                        }))
                    }
                >
                    {fields
                        .into_iter()
                        .map(|f| {
                            let key = f.key.clone();
                            view! {
                                <option value=f.key.clone() selected=move || filter().is_some_and(|x| x.field == key)>
                                    {f.label.clone()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <FieldMessage error=state.error field=format!("filters.{i}.field")/>
            </div>
            <div class="field">
                <label for=op_id.clone()>"Condition"</label>
                <select
                    id=op_id
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        if let Some(op) = FilterOp::ALL.into_iter().find(|o| o.label() == value) {
                            set(Box::new(move |f| f.op = op))
                        }
                    }
                >
                    {move || {
                        let kind = field_info_for_ops().map(|f| f.kind).unwrap_or(FieldKind::Text);
                        let current = filter().map(|f| f.op);
                        FilterOp::ALL
                            .into_iter()
                            .filter(|op| op.fits(kind))
                            .map(|op| view! { <option value=op.label() selected=current == Some(op)>{op.label()}</option> })
                            .collect_view()
                    }}
                </select>
                <FieldMessage error=state.error field=format!("filters.{i}.op")/>
            </div>
            {move || {
                let needs = filter().is_some_and(|f| f.op.needs_value());
                let info = field_info_for_value();
                let value_id = value_id.clone();
                needs.then(|| {
                    let current = filter().map(|f| f.value).unwrap_or_default();
                    let control = match info.as_ref().filter(|f| f.kind == FieldKind::Enum) {
                        Some(f) => view! {
                            <select
                                id=value_id.clone()
                                disabled=!state.can_manage
                                on:change=move |ev| {
                                    let v = event_target_value(&ev);
                                    set(Box::new(move |f| f.value = v.clone()))
                                }
                            >
                                <option value="" selected=current.is_empty()>"Choose…"</option>
                                {f.options
                                    .iter()
                                    .map(|o| view! { <option value=o.value.clone() selected=o.value == current>{o.label.clone()}</option> })
                                    .collect_view()}
                            </select>
                        }
                        .into_any(),
                        None => {
                            let kind = info.as_ref().map(|f| f.kind).unwrap_or(FieldKind::Text);
                            let placeholder = match kind {
                                FieldKind::Date => "YYYY-MM-DD",
                                FieldKind::Number => "A number",
                                _ => "",
                            };
                            view! {
                                <input
                                    id=value_id.clone()
                                    type="text"
                                    placeholder=placeholder
                                    value=current
                                    disabled=!state.can_manage
                                    on:change=move |ev| {
                                        let v = event_target_value(&ev);
                                        set(Box::new(move |f| f.value = v.clone()))
                                    }
                                />
                            }
                            .into_any()
                        }
                    };
                    view! {
                        <div class="field grow">
                            <label for=value_id>"Value"</label>
                            {control}
                            <FieldMessage error=state.error field=format!("filters.{i}.value")/>
                        </div>
                    }
                })
            }}
            <button type="button" class="btn-link link-danger" on:click=remove disabled=!state.can_manage>
                "Remove"
            </button>
        </div>
    }
}

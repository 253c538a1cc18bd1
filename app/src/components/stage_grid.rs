//! **Map pipelines and deal stages**: a pair of pipelines per card, a grid of HubSpot stages
//! against the app's stages, **Auto-map**, **Map another pipeline**, and a warning for every stage
//! whose deals will not sync.

use leptos::prelude::*;
use model::sync::{PipelineMapping, StageCounts, SyncSettings};

use crate::api::syncs::count_stage_deals;

use super::feedback::FieldMessage;
use super::sync_state::SetupState;

#[component]
pub fn PipelineMappings(state: SetupState) -> impl IntoView {
    let app = state.app_name();
    let count = Memo::new(move |_| state.settings.with(|s| s.pipelines.len()));
    let add = move |_| {
        state.settings.update(|s| {
            let used: Vec<String> = s.pipelines.iter().map(|p| p.hubspot_pipeline.clone()).collect();
            let used_app: Vec<String> = s.pipelines.iter().map(|p| p.app_pipeline.clone()).collect();
            state.schemas.with_value(|schemas| {
                let hub = schemas.hubspot.pipelines.iter().find(|p| !used.contains(&p.id)).map(|p| p.id.clone()).unwrap_or_default();
                let other = schemas
                    .app
                    .pipelines
                    .iter()
                    .find(|p| !used_app.contains(&p.id) && !p.stages.is_empty())
                    .map(|p| p.id.clone())
                    .unwrap_or_default();
                let mut mapping = PipelineMapping { hubspot_pipeline: hub, app_pipeline: other, stages: vec![] };
                mapping.auto_map(schemas);
                s.pipelines.push(mapping);
            });
        })
    };
    view! {
        <section class="card" aria-labelledby="stages-heading">
            <h2 id="stages-heading">"Map pipelines and deal stages"</h2>
            <p class="hint">
                {format!(
                    "Only deals in mapped stages sync. Choose which {app} stage each HubSpot stage matches; Auto-map pairs the stages whose names read alike and leaves your own choices alone."
                )}
            </p>
            <p class="notice" role="note">
                {move || {
                    state.schemas_version.track();
                    let (won, lost) = state.schemas.with_value(|s| s.app.closed_stage_names());
                    format!(
                        "Tip: map HubSpot's Closed Won and Closed Lost stages to {app}'s {won} and {lost}, so closed deals show as closed on both sides."
                    )
                }}
            </p>
            <FieldMessage error=state.error field="pipelines"/>
            {move || {
                state.schemas_version.track();
                (0..count.get()).map(|i| view! { <PipelineCard state i/> }).collect_view()
            }}
            <button type="button" class="btn btn-secondary" on:click=add disabled=!state.can_manage>
                "Map another pipeline"
            </button>
        </section>
    }
}

#[component]
fn PipelineCard(state: SetupState, i: usize) -> impl IntoView {
    let app = state.app_name();
    let mapping = move || state.settings.with(|s| s.pipelines.get(i).cloned());
    let update = move |f: &dyn Fn(&mut PipelineMapping)| {
        state.settings.update(|s: &mut SyncSettings| {
            if let Some(m) = s.pipelines.get_mut(i) {
                f(m);
            }
        })
    };
    let hub_id = format!("pipeline-{i}-hubspot");
    let app_id = format!("pipeline-{i}-app");
    let hub_options = state.schemas.with_value(|s| s.hubspot.pipelines.iter().map(|p| (p.id.clone(), p.name.clone())).collect::<Vec<_>>());
    let app_options = state.schemas.with_value(|s| s.app.pipelines.iter().map(|p| (p.id.clone(), p.name.clone())).collect::<Vec<_>>());
    let auto_map = move |_| {
        let mut added = 0;
        state.settings.update(|s| {
            if let Some(m) = s.pipelines.get_mut(i) {
                added = state.schemas.with_value(|schemas| m.auto_map(schemas));
            }
        });
        state.note.set(Some(match added {
            0 => "Auto-map found no more stages whose names read alike.".to_string(),
            1 => "Auto-map paired 1 stage.".to_string(),
            n => format!("Auto-map paired {n} stages."),
        }));
    };
    let remove = move |_| {
        state.settings.update(|s| {
            if i < s.pipelines.len() {
                s.pipelines.remove(i);
            }
        })
    };
    view! {
        <div class="pipeline-card" role="group" aria-label=format!("Pipeline pair {}", i + 1)>
            <div class="form-row">
                <div class="field grow">
                    <label for=hub_id.clone()>"Select a HubSpot pipeline"</label>
                    <select
                        id=hub_id
                        disabled=!state.can_manage
                        on:change=move |ev| {
                            let value = event_target_value(&ev);
                            update(&|m| {
                                m.hubspot_pipeline = value.clone();
                                m.stages.clear();
                            })
                        }
                    >
                        {hub_options
                            .into_iter()
                            .map(|(id, name)| {
                                let current = id.clone();
                                view! {
                                    <option value=id selected=move || mapping().is_some_and(|m| m.hubspot_pipeline == current)>
                                        {name}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <FieldMessage error=state.error field=format!("pipelines.{i}.hubspot_pipeline")/>
                </div>
                <div class="field grow">
                    <label for=app_id.clone()>{format!("{app} pipeline")}</label>
                    <select
                        id=app_id
                        disabled=!state.can_manage
                        on:change=move |ev| {
                            let value = event_target_value(&ev);
                            update(&|m| {
                                m.app_pipeline = value.clone();
                                m.stages.clear();
                            })
                        }
                    >
                        {app_options
                            .into_iter()
                            .map(|(id, name)| {
                                let current = id.clone();
                                view! {
                                    <option value=id selected=move || mapping().is_some_and(|m| m.app_pipeline == current)>
                                        {name}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <FieldMessage error=state.error field=format!("pipelines.{i}.app_pipeline")/>
                </div>
                <button type="button" class="btn btn-secondary" on:click=auto_map disabled=!state.can_manage>
                    "Auto-map"
                </button>
                <button type="button" class="btn-link link-danger" on:click=remove disabled=!state.can_manage>
                    "Remove pipeline"
                </button>
            </div>
            <StageTable state i/>
        </div>
    }
}

#[component]
fn StageTable(state: SetupState, i: usize) -> impl IntoView {
    let app = state.app_name();
    // Only this pair's changes redraw its grid.
    let this = Memo::new(move |_| state.settings.with(|s| s.pipelines.get(i).cloned()));
    let pair = Memo::new(move |_| this.get().map(|m| (m.hubspot_pipeline, m.app_pipeline)));
    // Read in the browser only, by an effect (effects never run on the server): the counts take
    // a few searches and must not hold up the page, and no resource is created here, inside the
    // page's boundary (a boundary re-runs its children while it settles).
    let counts = RwSignal::new(None::<StageCounts>);
    Effect::new(move |_| {
        let key = pair.get();
        counts.set(None);
        let Some((hub, app)) = key else { return };
        let connection = state.connection.get_value();
        leptos::task::spawn_local(async move {
            let answer = count_stage_deals(connection, hub.clone(), app.clone()).await.ok();
            // An answer for a pair that has changed since is dropped.
            if pair.try_get_untracked().flatten() == Some((hub, app)) {
                let _ = counts.try_set(answer);
            }
        });
    });
    let count_of =
        move |hub_side: bool, stage: String| counts.get().map(|c| if hub_side { c.hubspot_count(&stage) } else { c.app_count(&stage) });
    move || {
        let Some(mapping) = this.get() else {
            return ().into_any();
        };
        let (hub, other) = state
            .schemas
            .with_value(|s| (s.hubspot.pipeline(&mapping.hubspot_pipeline).cloned(), s.app.pipeline(&mapping.app_pipeline).cloned()));
        let (Some(hub), Some(other)) = (hub, other) else {
            return view! { <p class="hint">"Choose a pipeline on each side to map their stages."</p> }.into_any();
        };
        if other.stages.is_empty() {
            return view! {
                <p class="alert alert-error" role="alert">
                    {format!("The {app} pipeline {} has no stages, so its deals cannot sync. Choose another pipeline.", other.name)}
                </p>
            }
            .into_any();
        }
        let unmapped = hub.stages.iter().filter(|s| mapping.app_stage_for(&s.id).is_none()).count();
        view! {
            <table class="table stage-grid">
                <thead>
                    <tr>
                        <th scope="col">{format!("HubSpot stage ({})", hub.name)}</th>
                        <th scope="col">{format!("{app} stage ({})", other.name)}</th>
                    </tr>
                </thead>
                <tbody>
                    {hub.stages
                        .iter()
                        .map(|stage| {
                            let pair = mapping.app_stage_for(&stage.id).cloned();
                            let select_id = format!("stage-{i}-{}", stage.id);
                            let hub_stage = stage.id.clone();
                            let error_index = mapping.stages.iter().position(|p| p.hubspot_stage == stage.id);
                            view! {
                                <tr class:unmapped=pair.is_none()>
                                    <th scope="row">
                                        <label for=select_id.clone()>{stage.name.clone()}</label>
                                    </th>
                                    <td>
                                        <div class="inline-form">
                                            <select
                                                id=select_id
                                                disabled=!state.can_manage
                                                on:change=move |ev| {
                                                    let value = event_target_value(&ev);
                                                    let hub_stage = hub_stage.clone();
                                                    state
                                                        .settings
                                                        .update(|s| {
                                                            if let Some(m) = s.pipelines.get_mut(i) {
                                                                m.set_stage(&hub_stage, Some(value));
                                                            }
                                                        });
                                                }
                                            >
                                                <option value="" selected=pair.is_none()>"Don't sync"</option>
                                                {other
                                                    .stages
                                                    .iter()
                                                    .map(|s| {
                                                        let selected = pair.as_ref().is_some_and(|p| p.app_stage == s.id);
                                                        view! {
                                                            <option value=s.id.clone() selected=selected>
                                                                {s.name.clone()}
                                                            </option>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </select>
                                            {pair
                                                .as_ref()
                                                .filter(|p| p.auto)
                                                .map(|_| view! { <span class="badge badge-info">"Auto-mapped"</span> })}
                                        </div>
                                        {pair
                                            .is_none()
                                            .then(|| {
                                                let stage = stage.id.clone();
                                                view! {
                                                    <p class="field-warning">
                                                        {move || match count_of(true, stage.clone()) {
                                                            Some(1) => "1 deal in this stage will not sync.".to_string(),
                                                            Some(n) => format!("{n} deals in this stage will not sync."),
                                                            None => "Deals in this stage will not sync.".to_string(),
                                                        }}
                                                    </p>
                                                }
                                            })}
                                        {error_index
                                            .map(|j| view! { <FieldMessage error=state.error field=format!("pipelines.{i}.stages.{j}")/> })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            {(unmapped > 0)
                .then(|| {
                    view! {
                        <p class="notice" role="note">
                            {match unmapped {
                                1 => "1 HubSpot stage is not mapped: its deals will not sync.".to_string(),
                                n => format!("{n} HubSpot stages are not mapped: their deals will not sync."),
                            }}
                        </p>
                    }
                })}
            {
                let unmapped_app: Vec<(String, String)> = other
                    .stages
                    .iter()
                    .filter(|s| !mapping.stages.iter().any(|p| p.app_stage == s.id))
                    .map(|s| (s.id.clone(), s.name.clone()))
                    .collect();
                let app = app.clone();
                (!unmapped_app.is_empty())
                    .then(|| {
                        view! {
                            <p class="hint app-unmapped">
                                {move || {
                                    let list = unmapped_app
                                        .iter()
                                        .map(|(id, name)| match count_of(false, id.clone()) {
                                            Some(1) => format!("{name} (1 deal)"),
                                            Some(n) => format!("{name} ({n} deals)"),
                                            None => name.clone(),
                                        })
                                        .collect::<Vec<_>>()
                                        .join(", ");
                                    format!("{app} stages not mapped, whose deals will not sync to HubSpot: {list}.")
                                }}
                            </p>
                        }
                    })
            }
            <FieldMessage error=state.error field=format!("pipelines.{i}.stages")/>
        }
        .into_any()
    }
}

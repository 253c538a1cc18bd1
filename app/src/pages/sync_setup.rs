//! **Set up sync** (and **Sync more data**, and editing a sync): choose the object, then the sync
//! rules (direction, pipelines and stages, filters, conflicts), the field mappings, and a review
//! that saves and turns the sync on. Every save is a new version of the settings.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use model::apps::{ObjectKind, SyncDirection};
use model::sync::{ConflictRule, Schemas, SyncSettings, SyncSummary};
use model::Permission;

use super::shell::current_user;
use crate::api::apps::get_provider_info;
use crate::api::syncs::{list_syncs, sync_schemas, CreateHubspotPipeline, SaveSync};
use crate::components::feedback::FieldMessage;
use crate::components::feedback::{last_error, ErrorBanner};
use crate::components::field_mappings::FieldMappings;
use crate::components::stage_grid::PipelineMappings;
use crate::components::sync_filters::Filters;
use crate::components::sync_state::SetupState;
use crate::error::AppError;
use model::sync::PipelineMapping;

/// The steps of the setup, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Object,
    Rules,
    Fields,
    Review,
}

impl Step {
    const ALL: [Step; 4] = [Step::Object, Step::Rules, Step::Fields, Step::Review];

    fn label(self) -> &'static str {
        match self {
            Step::Object => "Choose an object",
            Step::Rules => "Sync rules",
            Step::Fields => "Field mappings",
            Step::Review => "Review",
        }
    }

    /// The step whose controls a field error belongs to.
    fn of_field(field: &str) -> Step {
        if field.starts_with("fields") {
            Step::Fields
        } else {
            Step::Rules
        }
    }
}

#[component]
pub fn SyncSetupPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let connection = move || params.with(|p| p.get("connection").unwrap_or_default());
    let app_key = move || params.with(|p| p.get("app").unwrap_or_default());
    let object = move || query.with(|q| q.get("object")).and_then(|o| ObjectKind::from_key(&o));
    let schemas = Resource::new(
        move || (connection(), object()),
        |(connection, object)| async move {
            match object {
                Some(object) => sync_schemas(connection, object).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let info = Resource::new(app_key, get_provider_info);
    let syncs = Resource::new(|| (), |_| list_syncs());
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <Title text="Set up sync"/>
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <a href=move || format!("{}/{}", crate::CONNECTED_APPS_PATH, app_key())>"Back to the app"</a>
        </nav>
        <Suspense fallback=|| view! { <p class="loading">"Reading pipelines, stages and fields from both apps…"</p> }>
            {move || Suspend::new(async move {
                                let existing: Vec<SyncSummary> = syncs
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.connection_id == connection())
                    .collect();
                let app_name = info.await.map(|i| i.name).unwrap_or_default();
                let base = format!("{}/{}/{}/sync", crate::CONNECTED_APPS_PATH, app_key(), connection());
                match schemas.await {
                    Err(error) => {
                        view! {
                            <h1>"Set up sync"</h1>
                            <ErrorBanner error=Signal::stored(Some(error))/>
                            <a class="btn btn-secondary" href=crate::CONNECTED_APPS_PATH>"Go to Connected apps"</a>
                        }
                            .into_any()
                    }
                    Ok(None) => view! { <ObjectStep app_name existing base can_manage/> }.into_any(),
                    Ok(Some(schemas)) => {
                        let object = object().unwrap_or(ObjectKind::Deal);
                        view! { <Wizard schemas existing object can_manage connection=connection() app_key=app_key() base/> }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The numbered steps across the top.
#[component]
fn Steps(#[prop(into)] current: Signal<Step>) -> impl IntoView {
    view! {
        <ol class="steps" aria-label="Steps">
            {Step::ALL
                .into_iter()
                .enumerate()
                .map(|(n, s)| {
                    view! {
                        <li class:current=move || current.get() == s aria-current=move || (current.get() == s).then_some("step")>
                            <span class="step-number">{n + 1}</span>
                            {s.label()}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

#[component]
fn Wizard(
    schemas: Schemas,
    existing: Vec<SyncSummary>,
    object: ObjectKind,
    can_manage: bool,
    connection: String,
    app_key: String,
    /// The setup's own address (the object step).
    base: String,
) -> impl IntoView {
    let app = schemas.app_name.clone();
    let editing = existing.iter().find(|s| s.settings.object == object).cloned();
    // The other objects this app syncs: what the associations can link to.
    let synced: Vec<ObjectKind> = existing.iter().map(|s| s.settings.object).filter(|o| *o != object).collect();
    let start = editing.as_ref().map(|s| s.settings.clone()).unwrap_or_else(|| SyncSettings::new_for(object, &schemas));
    let step = RwSignal::new(Step::Rules);
    let settings = RwSignal::new(start);
    let schemas = StoredValue::new(schemas);
    let save = ServerAction::<SaveSync>::new();
    let error = last_error(save.value());
    let state = SetupState {
        settings,
        schemas,
        schemas_version: RwSignal::new(0),
        connection: StoredValue::new(connection.clone()),
        error,
        note: RwSignal::new(None),
        can_manage,
    };
    let heading = if editing.is_some() {
        format!("Edit the {} sync with {app}", object.label().to_lowercase())
    } else if existing.is_empty() {
        format!("Set up sync with {app}")
    } else {
        format!("Sync more data with {app}")
    };
    // A new sync can go back to choosing its object; an existing one keeps its object.
    let back_to_objects = editing.is_none().then_some(base);

    // After a save: back to the app's page, which says what happened. After a refusal: to the
    // first step with a problem.
    let navigate = use_navigate();
    let back = format!("{}/{app_key}", crate::CONNECTED_APPS_PATH);
    Effect::new(move |_| match save.value().get() {
        Some(Ok(saved)) => {
            navigate(&format!("{back}?saved={}&version={}", saved.settings.object.key(), saved.version), Default::default());
        }
        Some(Err(AppError::Invalid(errors))) => {
            if let Some(first) = errors.first() {
                step.set(Step::of_field(&first.field));
            }
        }
        _ => {}
    });
    let submit = move |_| {
        save.dispatch(SaveSync { connection_id: connection.clone(), settings: settings.get_untracked() });
    };
    let version_note =
        editing.map(|s| format!("Version {} saved by {} on {}.", s.version, s.saved_by, model::timefmt::date_time(s.saved_at)));

    view! {
        <header class="page-header">
            <div>
                <h1>{heading}</h1>
                {version_note.map(|n| view! { <p class="lede">{n}</p> })}
            </div>
        </header>
        <Steps current=step/>
        {(!can_manage).then(|| view! { <p class="notice" role="note">{Permission::ManageApps.denied_reason()}</p> })}
        <p class="visually-hidden" role="status">{move || state.note.get()}</p>
        <ErrorBanner error/>
        {move || match step.get() {
            Step::Object | Step::Rules => view! { <RulesStep state step back=back_to_objects.clone()/> }.into_any(),
            Step::Fields => view! {
                <FieldMappings state synced=synced.clone()/>
                <nav class="step-actions">
                    <button type="button" class="btn btn-secondary" on:click=move |_| step.set(Step::Rules)>"Back"</button>
                    <button type="button" class="btn btn-primary" on:click=move |_| step.set(Step::Review)>"Next"</button>
                </nav>
            }
            .into_any(),
            Step::Review => {
                let submit = submit.clone();
                view! {
                    <Review state/>
                    <nav class="step-actions">
                        <button type="button" class="btn btn-secondary" on:click=move |_| step.set(Step::Fields)>"Back"</button>
                        <button
                            type="button"
                            class="btn btn-primary"
                            disabled=move || !can_manage || save.pending().get()
                            title=(!can_manage).then_some(Permission::ManageApps.denied_reason())
                            on:click=submit
                        >
                            {move || if save.pending().get() { "Saving…" } else { "Save and turn on" }}
                        </button>
                    </nav>
                }
                .into_any()
            }
        }}
    }
}

/// **Choose an object to sync**: each object says whether it already syncs; deals without
/// contacts or companies get the recommendation and why.
#[component]
fn ObjectStep(app_name: String, existing: Vec<SyncSummary>, base: String, can_manage: bool) -> impl IntoView {
    let synced: Vec<ObjectKind> = existing.iter().map(|s| s.settings.object).collect();
    let first_free = ObjectKind::ALL.into_iter().find(|o| !synced.contains(o)).unwrap_or(ObjectKind::Deal);
    let chosen = RwSignal::new(if synced.is_empty() { ObjectKind::Deal } else { first_free });
    let has_people = synced.iter().any(|o| matches!(o, ObjectKind::Contact | ObjectKind::Company));
    let navigate = use_navigate();
    let heading = if synced.is_empty() { format!("Set up sync with {app_name}") } else { format!("Sync more data with {app_name}") };
    let next = move |_| navigate(&format!("{base}?object={}", chosen.get_untracked().key()), Default::default());
    view! {
        <header class="page-header">
            <div>
                <h1>{heading}</h1>
            </div>
        </header>
        <Steps current=Signal::stored(Step::Object)/>
        <section class="card" aria-labelledby="object-heading">
            <h2 id="object-heading">"Choose an object to sync"</h2>
            <fieldset class="object-choices">
                <legend class="visually-hidden">"Object"</legend>
                {ObjectKind::ALL
                    .into_iter()
                    .map(|object| {
                        let already = synced.contains(&object);
                        let id = format!("object-{}", object.key());
                        let label_for = id.clone();
                        view! {
                            <label class="object-choice" for=label_for>
                                <input
                                    type="radio"
                                    name="object"
                                    id=id
                                    value=object.key()
                                    checked=move || chosen.get() == object
                                    on:change=move |_| chosen.set(object)
                                />
                                <strong>{object.plural()}</strong>
                                {already.then(|| view! { <span class="badge badge-success">"Already synced"</span> })}
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            {move || {
                (chosen.get() == ObjectKind::Deal && !has_people)
                    .then(|| {
                        view! {
                            <p class="notice" role="note">
                                {format!(
                                    "Deals can sync on their own, but setting up contacts and companies first is recommended: a deal's associations with its contacts and companies are only created on the other side for records that sync. In {app_name}, those are the deal's person and organization."
                                )}
                            </p>
                        }
                    })
            }}
            {(!can_manage).then(|| view! { <p class="hint">"You can look at the settings; saving needs the App Marketplace Access permission."</p> })}
        </section>
        <nav class="step-actions">
            <button type="button" class="btn btn-primary" on:click=next>"Next"</button>
        </nav>
    }
}

fn direction_key(d: SyncDirection) -> &'static str {
    match d {
        SyncDirection::TwoWay => "two_way",
        SyncDirection::ToHubSpot => "to_hubspot",
        SyncDirection::ToApp => "to_app",
    }
}

#[component]
fn RulesStep(state: SetupState, step: RwSignal<Step>, back: Option<String>) -> impl IntoView {
    let app = state.app_name();
    let direction = move || state.settings.with(|s| s.direction);
    let one_way = move || direction() != SyncDirection::TwoWay;
    let app_for_rule = app.clone();
    let app_for_note = app.clone();
    let is_deal = state.settings.with_untracked(|s| s.object == ObjectKind::Deal);
    view! {
        <section class="card" aria-labelledby="direction-heading">
            <h2 id="direction-heading">"Sync direction"</h2>
            <div class="field">
                <label for="sync-direction">"Sync direction"</label>
                <select
                    id="sync-direction"
                    disabled=!state.can_manage
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some(d) = SyncDirection::ALL.into_iter().find(|d| direction_key(*d) == v) {
                            state.settings.update(|s| {
                                s.direction = d;
                                // Field mappings follow a one-way sync's direction.
                                if d != SyncDirection::TwoWay {
                                    s.fields.iter_mut().for_each(|f| f.direction = d);
                                }
                            });
                        }
                    }
                >
                    {SyncDirection::ALL
                        .into_iter()
                        .map(|d| view! { <option value=direction_key(d) selected=move || direction() == d>{d.label(&app)}</option> })
                        .collect_view()}
                </select>
                <p class="hint">
                    {move || match direction() {
                        SyncDirection::TwoWay => "Changes on either side flow to the other.".to_string(),
                        SyncDirection::ToHubSpot => format!("Changes made in HubSpot never touch {}'s records.", state.app_name()),
                        SyncDirection::ToApp => format!("Changes made in {} never touch HubSpot's records.", state.app_name()),
                    }}
                </p>
            </div>
        </section>
        {is_deal
            .then(|| {
                view! {
                    <section class="card notice-card" aria-labelledby="dedup-heading">
                        <h2 id="dedup-heading">"No deduplication of deals"</h2>
                        <p>
                            "Deals are never matched or merged with existing ones: every synced deal is created anew on the other side. To keep synced deals apart from the ones you already have, create a new HubSpot pipeline for them and pick it below."
                        </p>
                        <NewPipeline state/>
                    </section>
                    <PipelineMappings state/>
                }
            })}
        <Filters state/>
        <section class="card" aria-labelledby="conflicts-heading">
            <h2 id="conflicts-heading">"Resolve data conflicts"</h2>
            <p class="hint">
                "A conflict happens only when the same field of the same record is edited in both apps within 5 minutes. Otherwise the later change wins."
            </p>
            <div class="field">
                <label for="conflict-rule">"When both change"</label>
                <select
                    id="conflict-rule"
                    disabled=move || !state.can_manage || one_way()
                    aria-describedby="conflict-note"
                    on:change=move |ev| {
                        let rule = if event_target_value(&ev) == "app" { ConflictRule::DefaultToApp } else { ConflictRule::DefaultToHubSpot };
                        state.settings.update(|s| s.conflict_rule = rule);
                    }
                >
                    <option value="hubspot" selected=move || state.settings.with(|s| s.effective_conflict_rule()) == ConflictRule::DefaultToHubSpot>
                        "Default to HubSpot"
                    </option>
                    <option value="app" selected=move || state.settings.with(|s| s.effective_conflict_rule()) == ConflictRule::DefaultToApp>
                        {ConflictRule::DefaultToApp.label(&app_for_rule)}
                    </option>
                </select>
                <p class="hint" id="conflict-note">
                    {move || {
                        if one_way() {
                            let source = if direction() == SyncDirection::ToHubSpot { app_for_note.clone() } else { "HubSpot".to_string() };
                            format!("A one-way sync always follows the app the data flows from: {source}.")
                        } else {
                            "Choose which app's value is kept.".to_string()
                        }
                    }}
                </p>
            </div>
        </section>
        <nav class="step-actions">
            {back.map(|href| view! { <a class="btn btn-secondary" href=href>"Back"</a> })}
            <button type="button" class="btn btn-primary" on:click=move |_| step.set(Step::Fields)>"Next"</button>
        </nav>
    }
}

#[component]
fn Review(state: SetupState) -> impl IntoView {
    let app = state.app_name();
    let s = state.settings.get_untracked();
    let names = state.schemas.with_value(|schemas| {
        s.pipelines
            .iter()
            .map(|p| {
                let hub = schemas.hubspot.pipeline(&p.hubspot_pipeline);
                let other = schemas.app.pipeline(&p.app_pipeline);
                let total = hub.map(|h| h.stages.len()).unwrap_or(0);
                format!(
                    "{} ↔ {}: {} of {total} HubSpot stages mapped",
                    hub.map(|h| h.name.as_str()).unwrap_or("?"),
                    other.map(|h| h.name.as_str()).unwrap_or("?"),
                    p.stages.len()
                )
            })
            .collect::<Vec<_>>()
    });
    let field_label = |key: &str, hub: bool| {
        state.schemas.with_value(|schemas| {
            let side = if hub { &schemas.hubspot } else { &schemas.app };
            side.field(key).map(|f| f.label.clone()).unwrap_or_else(|| key.to_string())
        })
    };
    view! {
        <section class="card" aria-labelledby="review-heading">
            <h2 id="review-heading">"Review"</h2>
            <dl class="review">
                <dt>"Object"</dt>
                <dd>{s.object.plural()}</dd>
                <dt>"Sync direction"</dt>
                <dd>{s.direction.label(&app)}</dd>
                {(s.object == ObjectKind::Deal)
                    .then(|| {
                        view! {
                            <dt>"Pipelines"</dt>
                            <dd>
                                <ul class="plain-list">{names.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
                            </dd>
                        }
                    })}
                <dt>"Filters"</dt>
                <dd>
                    {if s.filters.is_empty() {
                        "None: every deal in a mapped stage syncs.".to_string()
                    } else {
                        s.filters
                            .iter()
                            .map(|f| format!("{} {} {}", field_label(&f.field, false), f.op.label(), f.value))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }}
                </dd>
                <dt>"Resolve data conflicts"</dt>
                <dd>{s.effective_conflict_rule().label(&app)}</dd>
                <dt>"Field mappings"</dt>
                <dd>
                    <ul class="plain-list">
                        {s.fields
                            .iter()
                            .map(|f| {
                                let arrow = match f.direction {
                                    SyncDirection::TwoWay => "↔",
                                    SyncDirection::ToHubSpot => "←",
                                    SyncDirection::ToApp => "→",
                                };
                                view! { <li>{format!("{} {arrow} {}", field_label(&f.hubspot_property, true), field_label(&f.app_field, false))}</li> }
                            })
                            .collect_view()}
                    </ul>
                </dd>
            </dl>
            <p class="hint">
                {format!(
                    "Saving turns the sync on: every {} that passes the filters syncs at once, then changes keep syncing. Deletions are never synced.",
                    s.object.label().to_lowercase()
                )}
            </p>
        </section>
    }
}

/// Creates a HubSpot pipeline mirroring the first pair's app pipeline, and maps it.
#[component]
fn NewPipeline(state: SetupState) -> impl IntoView {
    let create = ServerAction::<CreateHubspotPipeline>::new();
    let error = last_error(create.value());
    let source = move || {
        let app_pipeline = state.settings.with(|s| s.pipelines.first().map(|p| p.app_pipeline.clone()));
        state.schemas.with_value(|s| {
            app_pipeline
                .and_then(|id| s.app.pipeline(&id).cloned())
                .or_else(|| s.app.pipelines.iter().find(|p| !p.stages.is_empty()).cloned())
        })
    };
    let app = state.app_name();
    let default_name = {
        let app = app.clone();
        move || source().map(|p| format!("{} (from {app})", p.name)).unwrap_or_default()
    };
    let name = RwSignal::new(default_name());
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            let id = created.id.clone();
            let label = created.name.clone();
            state.schemas.update_value(|s| {
                if s.hubspot.pipeline(&id).is_none() {
                    s.hubspot.pipelines.push(created.clone());
                }
            });
            // Untracked: this effect must run once per creation, not again when it updates the settings.
            let app_pipeline = untrack(source).map(|p| p.id).unwrap_or_default();
            state.settings.update(|s| {
                let mut mapping = PipelineMapping { hubspot_pipeline: id.clone(), app_pipeline, stages: vec![] };
                state.schemas.with_value(|schemas| mapping.auto_map(schemas));
                match s.pipelines.first_mut() {
                    Some(first) => *first = mapping,
                    None => s.pipelines.push(mapping),
                }
            });
            state.schemas_version.update(|v| *v += 1);
            state.note.set(Some(format!("Created the HubSpot pipeline {label} and mapped its stages.")));
        }
    });
    let created_note = move || {
        create.value().get().and_then(Result::ok).map(|p| {
            view! {
                <p class="alert alert-success" role="status">
                    {format!("Created the HubSpot pipeline {} with the same stages; it is mapped below.", p.name)}
                </p>
            }
        })
    };
    view! {
        <div class="form-row new-pipeline">
            <div class="field grow">
                <label for="new-pipeline-name">"New HubSpot pipeline"</label>
                <input
                    id="new-pipeline-name"
                    type="text"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                    disabled=!state.can_manage
                />
                <FieldMessage error field="label"/>
            </div>
            <button
                type="button"
                class="btn btn-secondary"
                disabled=move || !state.can_manage || create.pending().get()
                on:click=move |_| {
                    create.dispatch(CreateHubspotPipeline {
                        connection_id: state.connection.get_value(),
                        app_pipeline: source().map(|p| p.id).unwrap_or_default(),
                        label: name.get_untracked(),
                    });
                }
            >
                "Create a HubSpot pipeline for synced deals"
            </button>
        </div>
        {created_note}
        <ErrorBanner error/>
    }
}

//! One run of a sync: when, what started it, what it wrote each way, and its record events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::dashboard::{duration, thousands};
use model::timefmt;

use super::sync_history::{api_calls, outcome_badge, written};
use crate::api::dashboards::sync_run;
use crate::components::feedback::ErrorBanner;
use crate::components::sync_events::EventRows;
use crate::components::sync_header::{history_path, run_path, SyncHeader, SyncTab};

#[component]
pub fn SyncRunPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let ids = move || params.with(|p| (p.get("sync").unwrap_or_default(), p.get("run").unwrap_or_default()));
    let after = move || query.with(|q| q.get("after"));
    let detail = Resource::new(move || (ids(), after()), |((sync, run), after)| sync_run(sync, run, after));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <Title text="Run"/><ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(d) => {
                        let r = d.run.clone();
                        let label = d.sync.clone();
                        let more = d.events.next.clone().map(|n| view! { <a href=format!("{}?after={n}", run_path(&label.sync_id, &r.id))>"More events"</a> });
                        view! {
                            <Title text=format!("Run of {} · {}", timefmt::date_time(r.started_at), label.title())/>
                            <SyncHeader label=label.clone() tab=SyncTab::History/>
                            <p><a href=history_path(&label.sync_id)>"← All runs"</a></p>
                            <section class="card" aria-labelledby="run-title">
                                <h2 id="run-title">{format!("{} run, {}", r.trigger.label(), timefmt::date_time(r.started_at))} " " {outcome_badge(r.outcome)}</h2>
                                {r.message.clone().map(|m| view! { <p class="notice" role="note">{m}</p> })}
                                <dl class="facts">
                                    <div><dt>"Duration"</dt><dd>{r.duration_ms().map(duration).unwrap_or_else(|| "Running".into())}</dd></div>
                                    <div><dt>"To HubSpot"</dt><dd>{written(r.created_in_hub, r.updated_in_hub)}</dd></div>
                                    <div><dt>{format!("To {}", label.app_name)}</dt><dd>{written(r.created_in_app, r.updated_in_app)}</dd></div>
                                    <div><dt>"Skipped"</dt><dd>{format!("read from HubSpot {} · from {} {}", thousands(r.skipped_from_hub), label.app_name, thousands(r.skipped_from_app()))}</dd></div>
                                    <div><dt>"Failed"</dt><dd>{format!("writing to HubSpot {} · to {} {}", thousands(r.failed_to_hub), label.app_name, thousands(r.failed_to_app))}</dd></div>
                                    <div><dt>"Conflicts"</dt><dd>{thousands(r.conflicts)}</dd></div>
                                    <div><dt>"API calls"</dt><dd>{api_calls(&r)}</dd></div>
                                    <div><dt>"Rate-limit waits"</dt><dd>{format!("{} ({})", thousands(r.rate_limit_waits), duration(r.rate_limit_wait_ms))}</dd></div>
                                </dl>
                            </section>
                            <section class="card" aria-labelledby="events-title">
                                <h2 id="events-title">"Record events"</h2>
                                {if d.events.events.is_empty() {
                                    view! { <p class="empty-state-inline">"This run changed nothing: every record it read was already in sync."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="table events-table">
                                            <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"Record"</th><th scope="col">"Event"</th><th scope="col">"What happened"</th></tr></thead>
                                            <tbody><EventRows events=d.events.events.clone() label=label.clone() with_record=true/></tbody>
                                        </table>
                                        <nav class="pager" aria-label="Event pages">{more}</nav>
                                    }
                                        .into_any()
                                }}
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

//! A sync's **History** tab: every run, newest first, filtered by date range, trigger and outcome,
//! with created / updated / skipped / failed per direction, duration, API calls and rate-limit
//! waits; each run opens to its record events. CSV export of runs and events for the range.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::dashboard::{duration, thousands, RunFilter, RunSummary};
use model::states::{RunOutcome, RunTrigger};
use model::timefmt;

use crate::api::dashboards::{get_sync_health, sync_runs};
use crate::components::feedback::ErrorBanner;
use crate::components::sync_header::{export_path, history_path, run_path, SyncHeader, SyncTab};

pub fn outcome_badge(outcome: RunOutcome) -> impl IntoView {
    let class = match outcome {
        RunOutcome::Succeeded => "badge badge-success",
        RunOutcome::Partial | RunOutcome::Interrupted => "badge badge-warning",
        RunOutcome::Failed => "badge badge-error",
        RunOutcome::Running => "badge badge-info",
    };
    view! { <span class=class data-outcome=outcome.as_str()>{outcome.label()}</span> }
}

fn query_string(filter: &RunFilter) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("from", &filter.from), ("to", &filter.to), ("trigger", &filter.trigger), ("outcome", &filter.outcome)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join("&")
}

#[component]
pub fn SyncHistoryPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let sync_id = move || params.with(|p| p.get("sync").unwrap_or_default());
    let filter = move || {
        query.with(|q| RunFilter {
            from: q.get("from").filter(|v| !v.is_empty()),
            to: q.get("to").filter(|v| !v.is_empty()),
            trigger: q.get("trigger").filter(|v| !v.is_empty()),
            outcome: q.get("outcome").filter(|v| !v.is_empty()),
        })
    };
    let before = move || query.with(|q| q.get("before"));
    let health = Resource::new(sync_id, get_sync_health);
    let runs = Resource::new(move || (sync_id(), filter(), before()), |(id, f, b)| sync_runs(id, f, b));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let h = match health.await {
                    Ok(h) => h,
                    Err(error) => return view! { <Title text="Sync history"/><ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                };
                let f = filter();
                let id = h.sync.sync_id.clone();
                let export_query = query_string(&RunFilter { trigger: None, outcome: None, ..f.clone() });
                let export = move |kind: &str| {
                    let base = export_path(&id, kind);
                    if export_query.is_empty() { base } else { format!("{base}?{export_query}") }
                };
                let id = h.sync.sync_id.clone();
                let app_name = h.sync.app_name.clone();
                view! {
                    <Title text=format!("{} sync history", h.sync.title())/>
                    <SyncHeader label=h.sync.clone() tab=SyncTab::History status=h.status/>
                    <section class="card" aria-labelledby="runs-title">
                        <div class="card-header-row">
                            <h2 id="runs-title">"Runs"</h2>
                            <div class="export-links">
                                <a class="btn btn-secondary btn-small" href=export("runs") download>"Export runs (CSV)"</a>
                                <a class="btn btn-secondary btn-small" href=export("events") download>"Export record events (CSV)"</a>
                            </div>
                        </div>
                        <form method="get" action=history_path(&id) class="filter-bar" aria-label="Filter runs">
                            <label>"From" <input type="date" name="from" value=f.from.clone().unwrap_or_default()/></label>
                            <label>"To" <input type="date" name="to" value=f.to.clone().unwrap_or_default()/></label>
                            <label>
                                "Trigger"
                                <select name="trigger">
                                    <option value="" selected=f.trigger.is_none()>"Any"</option>
                                    {RunTrigger::ALL.iter().map(|t| view! { <option value=t.as_str() selected=f.trigger.as_deref() == Some(t.as_str())>{t.label()}</option> }).collect_view()}
                                </select>
                            </label>
                            <label>
                                "Outcome"
                                <select name="outcome">
                                    <option value="" selected=f.outcome.is_none()>"Any"</option>
                                    {RunOutcome::ALL.iter().map(|o| view! { <option value=o.as_str() selected=f.outcome.as_deref() == Some(o.as_str())>{o.label()}</option> }).collect_view()}
                                </select>
                            </label>
                            <button type="submit" class="btn btn-secondary btn-small">"Apply"</button>
                            <a href=history_path(&id)>"Clear"</a>
                        </form>
                        {match runs.await {
                            Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                            Ok(page) if page.runs.is_empty() => view! { <p class="empty-state-inline">"No runs match."</p> }.into_any(),
                            Ok(page) => {
                                let older = page.next.map(|n| {
                                    let q = query_string(&f);
                                    let sep = if q.is_empty() { "" } else { "&" };
                                    view! { <a href=format!("{}?{q}{sep}before={n}", history_path(&id))>"Older runs"</a> }
                                });
                                let newest = before().map(|_| {
                                    let q = query_string(&f);
                                    view! { <a href=format!("{}?{q}", history_path(&id))>"Newest runs"</a> }
                                });
                                view! {
                                    <div class="table-scroll">
                                        <table class="table runs-table">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"Started (UTC)"</th>
                                                    <th scope="col">"Trigger"</th>
                                                    <th scope="col">"Outcome"</th>
                                                    <th scope="col">"Duration"</th>
                                                    <th scope="col">"To HubSpot"</th>
                                                    <th scope="col">{format!("To {app_name}")}</th>
                                                    <th scope="col">"Skipped (read from)"</th>
                                                    <th scope="col">"Failed (writing to)"</th>
                                                    <th scope="col">"API calls"</th>
                                                    <th scope="col">"Rate-limit waits"</th>
                                                </tr>
                                            </thead>
                                            <tbody>{page.runs.into_iter().map(|r| view! { <RunLine r sync_id=id.clone()/> }).collect_view()}</tbody>
                                        </table>
                                    </div>
                                    <nav class="pager" aria-label="Run pages">{newest}{older}</nav>
                                }
                                    .into_any()
                            }
                        }}
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

/// "3 created · 2 updated"
pub fn written(created: i64, updated: i64) -> String {
    format!("{} created · {} updated", thousands(created), thousands(updated))
}

/// "9: reads 2 · writes 1 · lookups 0 · schema 6" (the total alone for runs counted before
/// calls were told apart), as the run page says it; History puts the parts under the total.
pub fn api_calls(r: &RunSummary) -> String {
    match r.calls_by_purpose() {
        purposes if purposes.is_empty() => thousands(r.api_calls),
        purposes => format!("{}: {purposes}", thousands(r.api_calls)),
    }
}

#[component]
fn RunLine(r: RunSummary, sync_id: String) -> impl IntoView {
    let failed = r.failed_to_hub + r.failed_to_app;
    view! {
        <tr data-run=r.id.clone()>
            <th scope="row"><a href=run_path(&sync_id, &r.id)>{timefmt::date_time(r.started_at)}</a></th>
            <td>{r.trigger.label()}</td>
            <td>{outcome_badge(r.outcome)}</td>
            <td class="nowrap">{r.duration_ms().map(duration).unwrap_or_else(|| "Running".into())}</td>
            <td>{written(r.created_in_hub, r.updated_in_hub)}</td>
            <td>{written(r.created_in_app, r.updated_in_app)}</td>
            <td>{format!("{}: HubSpot {}, app {}", thousands(r.skipped), thousands(r.skipped_from_hub), thousands(r.skipped_from_app()))}</td>
            <td class={if failed > 0 { "count-bad" } else { "" }}>
                {format!("{}: HubSpot {}, app {}", thousands(failed), thousands(r.failed_to_hub), thousands(r.failed_to_app))}
            </td>
            <td class="calls">
                {thousands(r.api_calls)}
                {(r.api_calls > 0 && !r.calls_by_purpose().is_empty())
                    .then(|| {
                        view! {
                            " "
                            <span class="calls-parts">
                                {format!("reads {} · writes {}", thousands(r.calls_read), thousands(r.calls_write))}
                            </span>
                            " "
                            <span class="calls-parts">
                                {format!("lookups {} · schema {}", thousands(r.calls_lookup), thousands(r.calls_schema))}
                            </span>
                        }
                    })}
            </td>
            <td>{if r.rate_limit_waits > 0 { format!("{} ({})", thousands(r.rate_limit_waits), duration(r.rate_limit_wait_ms)) } else { "0".into() }}</td>
        </tr>
    }
}

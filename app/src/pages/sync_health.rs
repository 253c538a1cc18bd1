//! A sync's **Health** tab: status, last and next sync, the initial sync's progress, how many
//! records are in sync, excluded (by reason) and failing (by error category, with **Retry all**),
//! each count linking to its records; a chart of records synced and errors; and a record search.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::dashboard::{thousands, BucketCount, ChartRange, RecordBucket, SyncHealth};
use model::{timefmt, Permission};

use super::shell::current_user;
use crate::api::dashboards::{get_sync_health, sync_chart, RetryRecords};
use crate::components::feedback::ErrorBanner;
use crate::components::retry::{RetryButton, RetryOutcome};
use crate::components::sync_chart::SyncChart;
use crate::components::sync_header::{records_path, run_path, SyncHeader, SyncTab};
use crate::components::sync_progress::InitialProgress;

#[component]
pub fn SyncHealthPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let sync_id = move || params.with(|p| p.get("sync").unwrap_or_default());
    let range = move || query.with(|q| q.get("range").and_then(|r| ChartRange::parse(&r))).unwrap_or(ChartRange::Day);
    let retry = ServerAction::<RetryRecords>::new();
    let health = Resource::new(move || (sync_id(), retry.version().get()), |(id, _)| get_sync_health(id));
    let chart = Resource::new(move || (sync_id(), range()), |(id, r)| sync_chart(id, r.as_str().to_string()));
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match health.await {
                    Err(error) => view! { <Title text="Sync health"/><ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(h) => {
                        let chart = chart.await;
                        view! {
                            <Title text=format!("{} sync health", h.sync.title())/>
                            <SyncHeader label=h.sync.clone() tab=SyncTab::Health status=h.status/>
                            <RetryOutcome action=retry/>
                            <Overview h=h.clone()/>
                            {h.progress.clone().map(|p| view! { <InitialProgress sync_id=h.sync.sync_id.clone() initial=p/> })}
                            <Counts h=h.clone() retry can_manage/>
                            <section class="card" aria-labelledby="activity-title">
                                <div class="card-header-row">
                                    <h2 id="activity-title">"Activity"</h2>
                                    <nav class="segmented" aria-label="Chart range">
                                        {[ChartRange::Day, ChartRange::Week, ChartRange::Month]
                                            .into_iter()
                                            .map(|r| {
                                                let current = (r == range()).then_some("page");
                                                view! { <a href=format!("?range={}", r.as_str()) aria-current=current>{r.label()}</a> }
                                            })
                                            .collect_view()}
                                    </nav>
                                </div>
                                {match chart {
                                    Ok(chart) => view! { <SyncChart chart/> }.into_any(),
                                    Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                                }}
                            </section>
                            <FindRecord sync_id=h.sync.sync_id.clone()/>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Overview(h: SyncHealth) -> impl IntoView {
    let never = || "Never".to_string();
    view! {
        <section class="card health-status" aria-label="Status">
            {h.status_detail.clone().map(|d| view! { <p class="notice" role="note">{d}</p> })}
            <dl class="facts">
                <div>
                    <dt>"Last successful sync"</dt>
                    <dd data-fact="last-success">{h.last_success_at.map(timefmt::date_time).unwrap_or_else(never)}</dd>
                </div>
                <div>
                    <dt>"Next sync"</dt>
                    <dd>
                        {if h.running {
                            "Running now".to_string()
                        } else {
                            h.next_run_at.map(timefmt::date_time).unwrap_or_else(|| "Not scheduled".to_string())
                        }}
                    </dd>
                </div>
                {h.last_run
                    .clone()
                    .map(|r| {
                        view! {
                            <div>
                                <dt>"Last run"</dt>
                                <dd>
                                    <a href=run_path(&h.sync.sync_id, &r.id)>
                                        {format!("{} · {} · {}", r.trigger.label(), r.outcome.label(), timefmt::date_time(r.started_at))}
                                    </a>
                                </dd>
                            </div>
                        }
                    })}
            </dl>
        </section>
    }
}

#[component]
fn Counts(h: SyncHealth, retry: ServerAction<RetryRecords>, can_manage: bool) -> impl IntoView {
    let id = h.sync.sync_id.clone();
    let bucket_href = {
        let id = id.clone();
        move |bucket: RecordBucket, reason: Option<&str>| match reason {
            Some(r) => format!("{}?bucket={}&reason={r}", records_path(&id), bucket.as_str()),
            None => format!("{}?bucket={}", records_path(&id), bucket.as_str()),
        }
    };
    let reasons = {
        let bucket_href = bucket_href.clone();
        move |bucket: RecordBucket, list: Vec<BucketCount>| {
            list.into_iter()
                .map(|c| {
                    view! {
                        <li data-reason=c.reason.clone()>
                            <a href=bucket_href(bucket, Some(&c.reason))>{c.label.clone()}</a>
                            <span class="count">{thousands(c.count)}</span>
                        </li>
                    }
                })
                .collect_view()
        }
    };
    let failing_total = h.failing_total();
    let excluded_total = h.excluded_total();
    view! {
        <div class="health-counts">
            <section class="card count-card" data-bucket="in_sync" aria-labelledby="in-sync-title">
                <h2 id="in-sync-title">"In sync"</h2>
                <p class="count-big"><a href=bucket_href(RecordBucket::InSync, None)>{thousands(h.in_sync)}</a></p>
                <p class="hint">"Records linked on both sides."</p>
                {(h.pending > 0)
                    .then(|| view! { <p class="hint"><a href=bucket_href(RecordBucket::Pending, None)>{format!("{} being created", thousands(h.pending))}</a></p> })}
            </section>
            <section class="card count-card" data-bucket="excluded" aria-labelledby="excluded-title">
                <h2 id="excluded-title">"Excluded"</h2>
                <p class="count-big"><a href=bucket_href(RecordBucket::Excluded, None)>{thousands(excluded_total)}</a></p>
                {if h.excluded.is_empty() {
                    view! { <p class="hint">"No record is left out by the sync's rules."</p> }.into_any()
                } else {
                    view! { <ul class="plain-list reason-list">{reasons(RecordBucket::Excluded, h.excluded.clone())}</ul> }.into_any()
                }}
            </section>
            <section class="card count-card" data-bucket="failing" aria-labelledby="failing-title">
                <h2 id="failing-title">"Failing"</h2>
                <p class={if failing_total > 0 { "count-big count-bad" } else { "count-big" }}>
                    <a href=bucket_href(RecordBucket::Failing, None)>{thousands(failing_total)}</a>
                </p>
                {if h.failing.is_empty() {
                    view! { <p class="hint">"Nothing is failing."</p> }.into_any()
                } else {
                    let id = id.clone();
                    view! {
                        <ul class="plain-list reason-list">
                            {h.failing
                                .clone()
                                .into_iter()
                                .map(|c| {
                                    let id = id.clone();
                                    let category = c.reason.clone();
                                    view! {
                                        <li data-reason=c.reason.clone()>
                                            <a href=bucket_href(RecordBucket::Failing, Some(&c.reason))>{c.label.clone()}</a>
                                            <span class="count">{thousands(c.count)}</span>
                                            {can_manage
                                                .then(|| view! { <RetryButton action=retry sync_id=id.clone() category=category.clone()/> })}
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }}
            </section>
        </div>
    }
}

#[component]
fn FindRecord(sync_id: String) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="find-title">
            <h2 id="find-title">"Find a record"</h2>
            <form method="get" action=records_path(&sync_id) class="search-form" role="search">
                <label for="record-search">"Name, HubSpot ID, app ID or Tandem ID"</label>
                <div class="search-row">
                    <input id="record-search" name="q" type="search" required placeholder="e.g. Acme renewal"/>
                    <button type="submit" class="btn btn-primary">"Search"</button>
                </div>
            </form>
        </section>
    }
}

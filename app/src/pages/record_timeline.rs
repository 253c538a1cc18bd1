//! A record's timeline: its ids on both sides, where it stands (with the provider's message and
//! **Retry** when failing), and every sync event for it, newest first.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::dashboard::RecordBucket;
use model::{timefmt, Permission};

use super::shell::current_user;
use crate::api::dashboards::{record_timeline, RetryRecords};
use crate::components::feedback::ErrorBanner;
use crate::components::retry::{RetryButton, RetryOutcome};
use crate::components::sync_events::EventRows;
use crate::components::sync_header::{record_path, SyncHeader, SyncTab};

#[component]
pub fn RecordTimelinePage() -> impl IntoView {
    let params = use_params_map();
    let ids = move || params.with(|p| (p.get("sync").unwrap_or_default(), p.get("record").unwrap_or_default()));
    let query = use_query_map();
    let before = move || query.with(|q| q.get("before"));
    let retry = ServerAction::<RetryRecords>::new();
    let timeline = Resource::new(
        move || (ids(), before(), retry.version().get()),
        |((sync, record), before, _)| record_timeline(sync, record, before),
    );
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match timeline.await {
                    Err(error) => view! { <Title text="Record"/><ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(t) => {
                        let r = t.record.clone();
                        let name = if r.name.is_empty() { "(no name)".to_string() } else { r.name.clone() };
                        let status = match (r.bucket, r.reason) {
                            (RecordBucket::InSync, _) | (_, None) => r.bucket.label().to_string(),
                            (bucket, Some(reason)) => format!("{}: {}", bucket.label(), reason.label()),
                        };
                        let failing = r.bucket == RecordBucket::Failing;
                        let (retry_sync, retry_record) = (t.sync.sync_id.clone(), r.id.clone());
                        let here = record_path(&t.sync.sync_id, &r.id);
                        let newest = before().map(|_| view! { <a href=here.clone()>"Newest events"</a> });
                        let older = t.next.clone().map(|n| view! { <a href=format!("{here}?before={n}")>"Older events"</a> });
                        view! {
                            <Title text=format!("{name} · {}", t.sync.title())/>
                            <SyncHeader label=t.sync.clone() tab=SyncTab::Health/>
                            <RetryOutcome action=retry/>
                            <section class="card" aria-labelledby="record-title" data-record=r.id.clone()>
                                <div class="card-header-row">
                                    <h2 id="record-title">{name.clone()} " " <span class={if failing { "badge badge-error" } else { "badge badge-muted" }}>{status}</span></h2>
                                    {(failing && can_manage && !r.retry_requested)
                                        .then(|| view! { <RetryButton action=retry sync_id=retry_sync.clone() record_id=retry_record.clone() primary=true/> })}
                                </div>
                                {r.message.clone().map(|m| view! { <p class={if failing { "alert alert-error" } else { "notice" }}>{m}</p> })}
                                {r.retry_requested.then(|| view! { <p class="notice" role="status">"Retry requested: Tandem retries this record on its next run."</p> })}
                                <dl class="facts">
                                    <div><dt>"HubSpot ID"</dt><dd><code>{r.hubspot_id.clone().unwrap_or_else(|| "—".into())}</code></dd></div>
                                    <div><dt>{format!("{} ID", t.sync.app_name)}</dt><dd><code>{r.app_id.clone().unwrap_or_else(|| "—".into())}</code></dd></div>
                                    <div><dt>"Tandem ID"</dt><dd><code>{r.id.clone()}</code></dd></div>
                                    <div><dt>"Last change (UTC)"</dt><dd>{timefmt::date_time(r.updated_at)}</dd></div>
                                </dl>
                            </section>
                            <section class="card" aria-labelledby="timeline-title">
                                <h2 id="timeline-title">"Timeline"</h2>
                                {if t.events.is_empty() {
                                    view! { <p class="empty-state-inline">"No sync events yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="table events-table timeline">
                                            <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"Event"</th><th scope="col">"What happened"</th></tr></thead>
                                            <tbody><EventRows events=t.events.clone() label=t.sync.clone()/></tbody>
                                        </table>
                                        <nav class="pager" aria-label="Event pages">{newest}{older}</nav>
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

//! The records behind a Health count (in sync, excluded for a reason, failing with an error
//! category), or those a search found: each with both ids, why it is where it is, the provider's
//! message, a link to its timeline, and **Retry** for a failing one.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::dashboard::{reason_label, RecordBucket, RecordSummary};
use model::{timefmt, Permission};

use super::shell::current_user;
use crate::api::dashboards::{get_sync_health, search_records, sync_records, RetryRecords};
use crate::components::feedback::ErrorBanner;
use crate::components::retry::{RetryButton, RetryOutcome};
use crate::components::sync_header::{record_path, records_path, SyncHeader, SyncTab};
use crate::error::AppError;

#[component]
pub fn SyncRecordsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let sync_id = move || params.with(|p| p.get("sync").unwrap_or_default());
    let q = move || query.with(|q| q.get("q")).filter(|q| !q.trim().is_empty());
    let bucket = move || query.with(|q| q.get("bucket")).and_then(|b| RecordBucket::parse(&b)).unwrap_or(RecordBucket::Failing);
    let reason = move || query.with(|q| q.get("reason")).filter(|r| !r.is_empty());
    let after = move || query.with(|q| q.get("after"));
    let retry = ServerAction::<RetryRecords>::new();
    let health = Resource::new(sync_id, get_sync_health);
    let page = Resource::new(
        move || (sync_id(), q(), bucket(), reason(), after(), retry.version().get()),
        |(id, q, bucket, reason, after, _)| async move {
            match q {
                Some(q) => search_records(id, q).await.map(|records| (records, None)),
                None => sync_records(id, bucket.as_str().to_string(), reason, after).await.map(|p| (p.records, p.next)),
            }
        },
    );
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let h = match health.await {
                    Ok(h) => h,
                    Err(error) => return view! { <Title text="Records"/><ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                };
                let heading = match (q(), reason()) {
                    (Some(q), _) => format!("Records matching “{q}”"),
                    (None, Some(r)) => format!("{}: {}", bucket().label(), reason_label(&r)),
                    (None, None) => bucket().label().to_string(),
                };
                let id = h.sync.sync_id.clone();
                let retry_sync = id.clone();
                let failing = bucket() == RecordBucket::Failing && q().is_none();
                let listed: Result<(Vec<RecordSummary>, Option<String>), AppError> = page.await;
                view! {
                    <Title text=format!("{heading} · {}", h.sync.title())/>
                    <SyncHeader label=h.sync.clone() tab=SyncTab::Health status=h.status/>
                    <RetryOutcome action=retry/>
                    <section class="card" aria-labelledby="records-title">
                        <div class="card-header-row">
                            <h2 id="records-title">{heading.clone()}</h2>
                            {(failing && can_manage).then(|| view! { <RetryButton action=retry sync_id=retry_sync.clone() category=reason().unwrap_or_default()/> })}
                        </div>
                        <form method="get" action=records_path(&id) class="search-form" role="search">
                            <label for="record-search" class="visually-hidden">"Find a record"</label>
                            <div class="search-row">
                                <input id="record-search" name="q" type="search" required value=q().unwrap_or_default() placeholder="Name, HubSpot ID, app ID or Tandem ID"/>
                                <button type="submit" class="btn btn-secondary">"Search"</button>
                            </div>
                        </form>
                        {match listed {
                            Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                            Ok((records, _)) if records.is_empty() => view! { <p class="empty-state-inline">"No records here."</p> }.into_any(),
                            Ok((records, next)) => {
                                let app_name = h.sync.app_name.clone();
                                let more = next.map(|n| {
                                    let href = format!("{}?bucket={}&reason={}&after={n}", records_path(&id), bucket().as_str(), reason().unwrap_or_default());
                                    view! { <a href=href>"Next page"</a> }
                                });
                                view! {
                                    <table class="table records-table">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Record"</th>
                                                <th scope="col">"HubSpot ID"</th>
                                                <th scope="col">{format!("{app_name} ID")}</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Details"</th>
                                                <th scope="col">"Updated (UTC)"</th>
                                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {records.into_iter().map(|r| view! { <RecordLine r sync_id=id.clone() retry can_manage/> }).collect_view()}
                                        </tbody>
                                    </table>
                                    <nav class="pager" aria-label="Record pages">{more}</nav>
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

#[component]
fn RecordLine(r: RecordSummary, sync_id: String, retry: ServerAction<RetryRecords>, can_manage: bool) -> impl IntoView {
    let status = match (r.bucket, r.reason) {
        (RecordBucket::InSync, _) | (_, None) => r.bucket.label().to_string(),
        (bucket, Some(reason)) => format!("{}: {}", bucket.label(), reason.label()),
    };
    let failing = r.bucket == RecordBucket::Failing;
    let name = if r.name.is_empty() { "(no name)".to_string() } else { r.name.clone() };
    let record_id = r.id.clone();
    view! {
        <tr data-record=r.id.clone() data-bucket=r.bucket.as_str()>
            <th scope="row"><a href=record_path(&sync_id, &r.id)>{name}</a></th>
            <td><code>{r.hubspot_id.clone().unwrap_or_else(|| "—".into())}</code></td>
            <td><code>{r.app_id.clone().unwrap_or_else(|| "—".into())}</code></td>
            <td>
                <span class={if failing { "badge badge-error" } else { "badge badge-muted" }}>{status}</span>
                {r.retry_requested.then(|| view! { <span class="badge badge-info">"Retry requested"</span> })}
            </td>
            <td class="message">{r.message.clone().unwrap_or_default()}</td>
            <td class="nowrap">{timefmt::date_time(r.updated_at)}</td>
            <td>
                {(failing && can_manage && !r.retry_requested)
                    .then(|| view! { <RetryButton action=retry sync_id=sync_id.clone() record_id=record_id.clone()/> })}
            </td>
        </tr>
    }
}

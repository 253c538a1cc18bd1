//! Settings › Integrations › Sync health: every sync across all connections, one row each with its
//! status and last 24 hours, problems first.

use leptos::prelude::*;
use leptos_meta::Title;
use model::dashboard::thousands;
use model::timefmt;

use crate::api::dashboards::sync_overview;
use crate::components::feedback::ErrorBanner;
use crate::components::sync_header::{health_badge, health_path, history_path, records_path};

#[component]
pub fn SyncOverviewPage() -> impl IntoView {
    let rows = Resource::new(|| (), |_| sync_overview());
    view! {
        <Title text="Sync health"/>
        <header class="page-header">
            <div>
                <h1>"Sync health"</h1>
                <p class="lede">"Every sync and how it is doing. Problems first."</p>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(rows) if rows.is_empty() => {
                        view! {
                            <section class="empty-state">
                                <h2>"No syncs yet"</h2>
                                <p>
                                    "Install an app and set up a sync from "
                                    <a href=crate::CONNECTED_APPS_PATH>"Connected apps"</a>
                                    "; its health shows here."
                                </p>
                            </section>
                        }
                            .into_any()
                    }
                    Ok(mut rows) => {
                        // With several HubSpot accounts, the syncs are grouped under each.
                        let mut accounts: Vec<Option<String>> = rows.iter().map(|r| r.sync.hub_account.clone()).collect();
                        accounts.sort();
                        accounts.dedup();
                        let grouped = accounts.len() > 1;
                        if grouped {
                            rows.sort_by(|a, b| a.sync.hub_account.cmp(&b.sync.hub_account));
                        }
                        let mut previous: Option<Option<String>> = None;
                        view! {
                            <section class="card">
                                <div class="table-scroll">
                                    <table class="table overview-table">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Sync"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Last successful sync (UTC)"</th>
                                                <th scope="col">"In sync"</th>
                                                <th scope="col">"Excluded"</th>
                                                <th scope="col">"Failing"</th>
                                                <th scope="col">"Synced (24 h)"</th>
                                                <th scope="col">"Errors (24 h)"</th>
                                                <th scope="col">"Runs (24 h)"</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {rows
                                                .into_iter()
                                                .map(|r| {
                                                    let id = r.sync.sync_id.clone();
                                                    let starts_group = grouped && previous.as_ref() != Some(&r.sync.hub_account);
                                                    previous = Some(r.sync.hub_account.clone());
                                                    let group = starts_group
                                                        .then(|| {
                                                            let name = r
                                                                .sync
                                                                .hub_account
                                                                .clone()
                                                                .map(|a| format!("HubSpot account: {a}"))
                                                                .unwrap_or_else(|| "No HubSpot account connected".into());
                                                            view! {
                                                                <tr class="group-row">
                                                                    <th scope="colgroup" colspan="9">{name}</th>
                                                                </tr>
                                                            }
                                                        });
                                                    view! {
                                                        {group}
                                                        <tr data-sync=id.clone() data-status=r.status.as_str()>
                                                            <th scope="row">
                                                                <a href=health_path(&id)>{format!("{} sync", r.sync.title())}</a>
                                                                <span class="hint">{format!(" · {}", r.sync.account_name)}</span>
                                                            </th>
                                                            <td>
                                                                {health_badge(r.status)}
                                                                {r.status_detail.clone().map(|d| view! { <p class="hint">{d}</p> })}
                                                            </td>
                                                            <td class="nowrap">{r.last_success_at.map(timefmt::date_time).unwrap_or_else(|| "Never".into())}</td>
                                                            <td>{thousands(r.in_sync)}</td>
                                                            <td>{thousands(r.excluded)}</td>
                                                            <td class={if r.failing > 0 { "count-bad" } else { "" }}>
                                                                <a href=format!("{}?bucket=failing", records_path(&id))>{thousands(r.failing)}</a>
                                                            </td>
                                                            <td>{thousands(r.synced_24h)}</td>
                                                            <td class={if r.errors_24h > 0 { "count-bad" } else { "" }}>{thousands(r.errors_24h)}</td>
                                                            <td><a href=history_path(&id)>{thousands(r.runs_24h)}</a></td>
                                                        </tr>
                                                    }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

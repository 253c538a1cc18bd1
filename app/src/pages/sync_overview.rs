//! Settings › Integrations › Sync health: every sync across all connections, one row each with its
//! status and last 24 hours, problems first.

use leptos::prelude::*;
use leptos_meta::Title;
use model::dashboard::{thousands, HubAccount, OverviewRow};
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
                    Ok(rows) => {
                        let groups = by_hubspot_account(rows);
                        // Several HubSpot accounts, or syncs waiting for an uninstalled one: say whose.
                        let grouped = groups.len() > 1 || groups.iter().any(|(a, _)| a.as_ref().is_some_and(|a| a.uninstalled));
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
                                        {groups
                                            .into_iter()
                                            .map(|(account, rows)| {
                                                // With several HubSpot accounts, each one's syncs under its name.
                                                let heading = grouped
                                                    .then(|| {
                                                        let name = match &account {
                                                            Some(a) if a.uninstalled => format!("HubSpot account: {} (uninstalled)", a.name),
                                                            Some(a) => format!("HubSpot account: {}", a.name),
                                                            None => "No HubSpot account connected".to_string(),
                                                        };
                                                        view! {
                                                            <tr class="group-row">
                                                                <th scope="rowgroup" colspan="9">{name}</th>
                                                            </tr>
                                                        }
                                                    });
                                                view! {
                                                    <tbody>
                                                        {heading}
                                                        {rows.into_iter().map(overview_row).collect_view()}
                                                    </tbody>
                                                }
                                            })
                                            .collect_view()}
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

/// The rows grouped by HubSpot account, in the order the accounts were connected (syncs with none
/// last); within a group, the overview's order (problems first).
fn by_hubspot_account(rows: Vec<OverviewRow>) -> Vec<(Option<HubAccount>, Vec<OverviewRow>)> {
    let mut groups: Vec<(Option<HubAccount>, Vec<OverviewRow>)> = Vec::new();
    for row in rows {
        let key = row.sync.hub_account.as_ref().map(|a| a.connection_id.clone());
        match groups.iter_mut().find(|(a, _)| a.as_ref().map(|a| a.connection_id.clone()) == key) {
            Some((_, list)) => list.push(row),
            None => groups.push((row.sync.hub_account.clone(), vec![row])),
        }
    }
    groups.sort_by_key(|(a, _)| a.as_ref().map_or((1, 0, String::new()), |a| (0, a.installed_at, a.connection_id.clone())));
    groups
}

fn overview_row(r: OverviewRow) -> impl IntoView {
    let id = r.sync.sync_id.clone();
    view! {
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
}

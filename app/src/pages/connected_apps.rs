//! Settings › Integrations › Connected apps: the HubSpot accounts syncs run against, and the
//! installed apps with their accounts and status (grouped by HubSpot account when there are
//! several).

use leptos::prelude::*;
use leptos_meta::Title;
use model::apps::{ConnectionStatus, ConnectionSummary, HUBSPOT};
use model::{timefmt, Permission};

use super::shell::current_user;
use crate::api::apps::connections;
use crate::components::feedback::ErrorBanner;
use crate::components::icons::AppsIllustration;
use crate::components::install_button::InstallButton;

const HUBSPOT_NOTE: &str = "hubspot-note";

#[component]
pub fn ConnectedAppsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| connections());
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <Title text="Connected apps"/>
        <header class="page-header">
            <div>
                <h1>"Connected apps"</h1>
                <p class="lede">"Apps you've installed to sync deals, contacts and companies with HubSpot."</p>
            </div>
            <a class="btn btn-secondary" href="/marketplace">"Visit App Marketplace"</a>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                                match list.await {
                    Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(list) => {
                        let hubs: Vec<ConnectionSummary> = list
                            .iter()
                            .filter(|c| c.provider == HUBSPOT && c.status != ConnectionStatus::Uninstalled)
                            .cloned()
                            .collect();
                        let apps: Vec<ConnectionSummary> = list.iter().filter(|c| c.provider != HUBSPOT).cloned().collect();
                        // One HubSpot account, and every app syncing with it: no groups.
                        let stranded = apps.iter().any(|a| {
                            a.status != ConnectionStatus::Uninstalled && a.hub_connection_id.is_some() && a.hub_in(&list).is_none()
                        });
                        if hubs.len() < 2 && !stranded {
                            return view! {
                                <HubSpotCard hubspot=hubs.into_iter().next() can_manage grouped=false/>
                                <AppsTable apps heading="Installed apps".into() heading_id="installed-apps".into() grouped=false/>
                            }
                                .into_any();
                        }
                        let hubs_empty = hubs.is_empty();
                        // One group per HubSpot account: its card, then the apps that sync with it.
                        let unlinked: Vec<ConnectionSummary> =
                            apps.iter().filter(|a| a.hub_in(&list).is_none()).cloned().collect();
                        let groups = hubs
                            .into_iter()
                            .map(|hub| {
                                let own: Vec<ConnectionSummary> = apps
                                    .iter()
                                    .filter(|a| a.hub_connection_id.as_deref() == Some(hub.id.as_str()))
                                    .cloned()
                                    .collect();
                                let heading = format!("Apps syncing with {}", hub.label());
                                let heading_id = format!("apps-of-{}", hub.id);
                                view! {
                                    <div class="hub-group">
                                        <HubSpotCard hubspot=Some(hub) can_manage grouped=true/>
                                        <AppsTable apps=own heading heading_id grouped=true/>
                                    </div>
                                }
                            })
                            .collect_view();
                        // No HubSpot account connected (the only one was uninstalled): the card
                        // that connects one comes first.
                        let connect = hubs_empty.then(|| view! { <HubSpotCard hubspot=None can_manage grouped=false/> });
                        view! {
                            {connect}
                            {groups}
                            {(!unlinked.is_empty())
                                .then(|| {
                                    view! {
                                        <AppsTable
                                            apps=unlinked
                                            heading="Apps without a connected HubSpot account".into()
                                            heading_id="apps-without-hubspot".into()
                                            grouped=true
                                        />
                                    }
                                })}
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

pub fn status_badge(status: ConnectionStatus) -> impl IntoView {
    let class = match status {
        ConnectionStatus::Connected => "badge badge-success",
        ConnectionStatus::NeedsReconnection => "badge badge-error",
        ConnectionStatus::Uninstalled => "badge badge-muted",
    };
    view! { <span class=class>{status.label()}</span> }
}

#[component]
fn HubSpotCard(
    hubspot: Option<ConnectionSummary>,
    can_manage: bool,
    /// One of several HubSpot accounts, each heading its own apps.
    grouped: bool,
) -> impl IntoView {
    let href = format!("{}/{HUBSPOT}", crate::CONNECTED_APPS_PATH);
    match hubspot {
        Some(c) => {
            let heading_id = if grouped { format!("hubspot-{}", c.id) } else { "hubspot-heading".to_string() };
            let role =
                if grouped { "The apps below sync with this HubSpot account." } else { "Every sync runs against this HubSpot account." };
            let labelled_by = heading_id.clone();
            view! {
            <section class="card hubspot-card" aria-labelledby=labelled_by>
                <img class="app-logo" src=c.logo.clone() alt="" width="48" height="48"/>
                <div class="grow">
                    <h2 id=heading_id>
                        <a href=href>{c.provider_name.clone()}</a>
                        {status_badge(c.status)}
                    </h2>
                    <p class="app-card-meta">
                        {c.label_with_id()}
                    </p>
                    <p class="hint">
                        {format!("Connected by {} on {}. {role}", c.installed_by, timefmt::date(c.installed_at))}
                    </p>
                </div>
            </section>
            }
            .into_any()
        }
        None => {
            let reason = (!can_manage).then(|| Permission::ManageApps.denied_reason().to_string());
            view! {
                <section class="card hubspot-card needs-hubspot" aria-labelledby="hubspot-heading">
                    <img class="app-logo" src=model::apps::HUBSPOT_LOGO alt="" width="48" height="48"/>
                    <div class="grow">
                        <h2 id="hubspot-heading">"Connect HubSpot"</h2>
                        <p id=HUBSPOT_NOTE>
                            "Syncs need a HubSpot account: connect the HubSpot account that apps should sync with, then install apps from the Marketplace."
                            {reason.clone().map(|r| view! { <span class="hint">" " {r}</span> })}
                        </p>
                    </div>
                    <InstallButton app=HUBSPOT label="Connect HubSpot" disabled_reason=reason described_by=HUBSPOT_NOTE/>
                </section>
            }
            .into_any()
        }
    }
}

#[component]
fn AppsTable(
    apps: Vec<ConnectionSummary>,
    heading: String,
    heading_id: String,
    /// A group under one HubSpot account: an empty one says so in a line.
    grouped: bool,
) -> impl IntoView {
    let labelled_by = heading_id.clone();
    if apps.is_empty() && grouped {
        return view! {
            <section class="card" aria-labelledby=labelled_by>
                <h2 id=heading_id>{heading}</h2>
                <p class="hint">
                    "No app syncs with this HubSpot account yet. Install one from the "
                    <a href="/marketplace">"App Marketplace"</a>
                    "."
                </p>
            </section>
        }
        .into_any();
    }
    if apps.is_empty() {
        return view! {
            <section class="empty-state" aria-labelledby="no-apps">
                <AppsIllustration/>
                <h2 id="no-apps">"No apps connected yet"</h2>
                <p>
                    "Open the App Marketplace, install the app your sales team uses, then set up a sync. "
                    "Installed apps appear here with their connection status."
                </p>
                <a class="btn btn-primary" href="/marketplace">"Visit App Marketplace"</a>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="card" aria-labelledby=labelled_by>
            <h2 id=heading_id>{heading}</h2>
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"App"</th>
                        <th scope="col">"Account"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Installed by"</th>
                        <th scope="col">"Installed"</th>
                    </tr>
                </thead>
                <tbody>
                    {apps
                        .into_iter()
                        .map(|c| {
                            let href = format!("{}/{}", crate::CONNECTED_APPS_PATH, c.provider);
                            view! {
                                <tr>
                                    <th scope="row">
                                        <img class="app-logo app-logo-small" src=c.logo.clone() alt="" width="24" height="24"/>
                                        <a href=href>{c.provider_name.clone()}</a>
                                    </th>
                                    <td>
                                        {c.account_name.clone()}
                                        <span class="hint block">{format!("Company {}", c.account_id)}</span>
                                    </td>
                                    <td>{status_badge(c.status)}</td>
                                    <td>{c.installed_by.clone()}</td>
                                    <td>{timefmt::date(c.installed_at)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

//! An app's page in the Marketplace: what it does, what it shares with HubSpot, the permissions it
//! asks for, its requirements, and **Install app** at the top right.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use model::apps::{AppListing, ConnectionStatus, ConnectionSummary};
use model::Permission;

use super::shell::current_user;
use crate::api::apps::{connections, get_app_listing};
use crate::components::feedback::ErrorBanner;
use crate::components::install_button::InstallButton;

const INSTALL_NOTE: &str = "install-note";

#[component]
pub fn AppPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || params.with(|p| p.get("app").unwrap_or_default());
    let listing = Resource::new(key, get_app_listing);
    let installed = Resource::new(|| (), |_| connections());
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    view! {
        <div class="page">
            <nav class="breadcrumb" aria-label="Breadcrumb">
                <a href="/marketplace">"App Marketplace"</a>
            </nav>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                                        let installed = installed.await.unwrap_or_default();
                    match listing.await {
                        Err(error) => {
                            view! {
                                <Title text="App not found"/>
                                <ErrorBanner error=Signal::stored(Some(error))/>
                            }
                                .into_any()
                        }
                        Ok(app) => view! { <AppDetails app installed can_manage/> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn AppDetails(app: AppListing, installed: Vec<ConnectionSummary>, can_manage: bool) -> impl IntoView {
    let name = app.display_name();
    let accounts: Vec<ConnectionSummary> =
        installed.iter().filter(|c| c.provider == app.key && c.status != ConnectionStatus::Uninstalled).cloned().collect();
    let reason = if !can_manage { Some(Permission::ManageApps.denied_reason().to_string()) } else { app.unavailable.clone() };
    let manage_href = format!("{}/{}", crate::CONNECTED_APPS_PATH, app.key);
    let hubs = model::apps::hub_choices(&installed);
    let app_name = app.name.clone();
    view! {
        <Title text=name.clone()/>
        <header class="app-header">
            <img class="app-logo app-logo-large" src=app.logo.clone() alt="" width="72" height="72"/>
            <div class="app-header-text">
                <h1>{name.clone()}</h1>
                <p class="app-card-meta">{format!("{} · by {}", app.category, app.publisher)}</p>
                <p class="app-card-badges">
                    <span class="badge badge-info">"Data Sync"</span>
                    {app.sandbox.then(|| view! { <span class="badge badge-warning">"Sandbox"</span> })}
                    {(!accounts.is_empty())
                        .then(|| {
                            view! {
                                <span class="badge badge-success">
                                    {match accounts.len() {
                                        1 => "Installed".to_string(),
                                        n => format!("Installed · {n} accounts"),
                                    }}
                                </span>
                            }
                        })}
                </p>
            </div>
            <div class="app-header-actions">
                <InstallButton
                    app=app.key.clone()
                    label="Install app"
                    disabled_reason=reason.clone()
                    described_by=INSTALL_NOTE
                    hubs
                />
                {(!accounts.is_empty())
                    .then(|| view! { <a class="manage-link" href=manage_href.clone()>"Manage installed accounts"</a> })}
            </div>
        </header>
        {reason.map(|reason| view! { <p class="notice" id=INSTALL_NOTE role="note">{reason}</p> })}
        <div class="app-columns">
            <div class="app-main-column">
                <section class="card" aria-labelledby="overview">
                    <h2 id="overview">"Overview"</h2>
                    <p class="app-tagline">{app.tagline.clone()}</p>
                    {app.description.iter().map(|p| view! { <p>{p.clone()}</p> }).collect_view()}
                </section>
                <section class="card" aria-labelledby="shared-data">
                    <h2 id="shared-data">"Shared data"</h2>
                    <p class="hint">"Objects this app syncs with HubSpot, and the directions a sync can take."</p>
                    <table class="table">
                        <thead>
                            <tr>
                                <th scope="col">"HubSpot object"</th>
                                <th scope="col">{format!("{app_name} object")}</th>
                                <th scope="col">"Sync directions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {app
                                .shared_data
                                .iter()
                                .map(|s| {
                                    let directions = s
                                        .directions
                                        .iter()
                                        .map(|d| d.label(&app_name))
                                        .collect::<Vec<_>>()
                                        .join(", ");
                                    view! {
                                        <tr>
                                            <th scope="row">{s.object.label()}</th>
                                            <td>{s.app_object.clone()}</td>
                                            <td>{directions}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </section>
                <section class="card" aria-labelledby="permissions">
                    <h2 id="permissions">"Permissions requested"</h2>
                    <p class="hint">{format!("When you install, {name} asks you to allow Tandem to:")}</p>
                    <ul class="scope-list">
                        {app
                            .scopes
                            .iter()
                            .map(|s| {
                                view! {
                                    <li>
                                        <code>{s.scope.clone()}</code>
                                        <span>{s.purpose.clone()}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </section>
            </div>
            <aside class="app-side-column">
                <section class="card" aria-labelledby="requirements">
                    <h2 id="requirements">"Requirements"</h2>
                    <ul class="plain-list">
                        {app.requirements.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}
                    </ul>
                </section>
            </aside>
        </div>
    }
}

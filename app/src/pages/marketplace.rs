//! The App Marketplace: search, a category filter and a card per app.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::apps::{categories, AppListing, ConnectionStatus, ConnectionSummary};

use crate::api::apps::{catalogue, connections};
use crate::components::feedback::ErrorBanner;

#[component]
pub fn MarketplacePage() -> impl IntoView {
    let query = use_query_map();
    let search = RwSignal::new(query.with_untracked(|q| q.get("q").unwrap_or_default()));
    let category = RwSignal::new(query.with_untracked(|q| q.get("category").unwrap_or_default()));
    let apps = Resource::new(|| (), |_| catalogue());
    let installed = Resource::new(|| (), |_| connections());
    view! {
        <Title text="App Marketplace"/>
        <div class="page">
            <header class="page-header">
                <div>
                    <h1>"App Marketplace"</h1>
                    <p class="lede">
                        "Connect the apps your sales team uses. Apps with Data Sync keep their records and HubSpot's in step, both ways."
                    </p>
                </div>
            </header>
            <Suspense fallback=|| view! { <p class="loading">"Loading apps…"</p> }>
                {move || Suspend::new(async move {
                    let (apps, installed) = (apps.await, installed.await.unwrap_or_default());
                    match apps {
                        Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                        Ok(apps) => view! { <Catalogue apps installed search category/> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn Catalogue(
    apps: Vec<AppListing>,
    installed: Vec<ConnectionSummary>,
    search: RwSignal<String>,
    category: RwSignal<String>,
) -> impl IntoView {
    let all_categories = categories(&apps);
    let apps = StoredValue::new(apps);
    let installed = StoredValue::new(installed);
    let shown =
        move || apps.with_value(|apps| apps.iter().filter(|a| a.matches(&search.get(), &category.get())).cloned().collect::<Vec<_>>());
    view! {
        <form class="marketplace-filters" role="search" method="get" on:submit=|ev| ev.prevent_default()>
            <div class="field grow">
                <label for="app-search">"Search apps"</label>
                <input
                    id="app-search"
                    name="q"
                    type="search"
                    placeholder="Search by name or what it syncs"
                    prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))
                />
            </div>
            <div class="field">
                <label for="app-category">"Category"</label>
                <select id="app-category" name="category" on:change=move |ev| category.set(event_target_value(&ev))>
                    <option value="" selected=move || category.get().is_empty()>"All categories"</option>
                    {all_categories
                        .into_iter()
                        .map(|c| {
                            let value = c.clone();
                            view! {
                                <option value=c.clone() selected=move || category.get() == value>
                                    {c.clone()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </div>
        </form>
        <p class="result-count" role="status">
            {move || match shown().len() {
                1 => "1 app".to_string(),
                n => format!("{n} apps"),
            }}
        </p>
        {move || {
            let shown = shown();
            if shown.is_empty() {
                view! {
                    <section class="empty-state">
                        <h2>"No apps match your search"</h2>
                        <p>"Try another name, or choose All categories."</p>
                    </section>
                }
                    .into_any()
            } else {
                view! {
                    <ul class="app-grid">
                        {shown
                            .into_iter()
                            .map(|app| {
                                let count = installed
                                    .with_value(|list| {
                                        list.iter()
                                            .filter(|c| c.provider == app.key && c.status != ConnectionStatus::Uninstalled)
                                            .count()
                                    });
                                view! { <AppCard app installed=count/> }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }
        }}
    }
}

#[component]
fn AppCard(app: AppListing, installed: usize) -> impl IntoView {
    let href = format!("/marketplace/{}", app.key);
    let name = app.display_name();
    view! {
        <li class="app-card">
            <img class="app-logo" src=app.logo.clone() alt="" width="48" height="48"/>
            <div class="app-card-body">
                <h2>
                    <a href=href class="stretched">
                        {name}
                    </a>
                </h2>
                <p class="app-card-meta">{format!("{} · by {}", app.category, app.publisher)}</p>
                <p>{app.tagline.clone()}</p>
                <p class="app-card-badges">
                    <span class="badge badge-info">"Data Sync"</span>
                    {app.sandbox.then(|| view! { <span class="badge badge-warning">"Sandbox"</span> })}
                    {(installed > 0).then(|| view! { <span class="badge badge-success">"Installed"</span> })}
                </p>
            </div>
        </li>
    }
}

//! Tandem's admin console: pages (one per file), components and server functions.

// Leptos views are deeply nested types.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod pages;
pub mod session;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::components::settings_layout::SettingsLayout;
use crate::pages::{
    accept_invite::AcceptInvitePage, app_page::AppPage, audit_log::AuditLogPage, connected_app::ConnectedAppPage,
    connected_apps::ConnectedAppsPage, login::LoginPage, marketplace::MarketplacePage, not_found::NotFound,
    record_timeline::RecordTimelinePage, setup::SetupPage, shell::Shell, sync_health::SyncHealthPage, sync_history::SyncHistoryPage,
    sync_overview::SyncOverviewPage, sync_records::SyncRecordsPage, sync_run::SyncRunPage, sync_setup::SyncSetupPage, users::UsersPage,
};

/// Settings › Integrations › Connected apps; each app's page is below it.
pub const CONNECTED_APPS_PATH: &str = "/settings/integrations/connected-apps";
/// Where a signed-in user lands.
pub const HOME_PATH: &str = CONNECTED_APPS_PATH;
/// Where the first Super Admin lands: HubSpot's page, asking for the HubSpot account every sync
/// runs against (skippable).
pub const WELCOME_PATH: &str = "/settings/integrations/connected-apps/hubspot?welcome=1";

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // The style sheet by the name the build gave it (after its content, in a release).
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy: scripts only from Tandem itself, and the one inline script
/// that starts hydration (and those that stream a page's data in) by the nonce Leptos gives this
/// response; WebAssembly compiled from Tandem's own bundle; nothing framed, no plugins.
#[cfg(feature = "ssr")]
fn content_security_policy() {
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = leptos::nonce::use_nonce().map(|nonce| format!(" 'nonce-{nonce}'")).unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // First, so that its place in the page's shared data is the same on the server and in the browser.
    session::provide_session();
    // Effects run only in the browser: this marks the page as hydrated (browser tests wait for it).
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title formatter=|title: String| {
            if title.is_empty() { "Tandem".to_string() } else { format!("{title} | Tandem") }
        }/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view=AcceptInvitePage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=Shell ssr=SsrMode::Async>
                    <Route path=path!("/marketplace") view=MarketplacePage ssr=SsrMode::Async/>
                    <Route path=path!("/marketplace/:app") view=AppPage ssr=SsrMode::Async/>
                    <ParentRoute path=path!("/settings") view=SettingsLayout ssr=SsrMode::Async>
                        <Route
                            path=path!("/integrations/connected-apps")
                            view=ConnectedAppsPage
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/integrations/connected-apps/:app")
                            view=ConnectedAppPage
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/integrations/connected-apps/:app/:connection/sync")
                            view=SyncSetupPage
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/integrations/syncs") view=SyncOverviewPage ssr=SsrMode::Async/>
                        <Route path=path!("/integrations/syncs/:sync") view=SyncHealthPage ssr=SsrMode::Async/>
                        <Route path=path!("/integrations/syncs/:sync/history") view=SyncHistoryPage ssr=SsrMode::Async/>
                        <Route path=path!("/integrations/syncs/:sync/history/:run") view=SyncRunPage ssr=SsrMode::Async/>
                        <Route path=path!("/integrations/syncs/:sync/records") view=SyncRecordsPage ssr=SsrMode::Async/>
                        <Route path=path!("/integrations/syncs/:sync/records/:record") view=RecordTimelinePage ssr=SsrMode::Async/>
                        <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async/>
                        <Route path=path!("/audit-log") view=AuditLogPage ssr=SsrMode::Async/>
                    </ParentRoute>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

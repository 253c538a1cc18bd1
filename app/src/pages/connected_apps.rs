//! Settings › Integrations › Connected apps.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::icons::AppsIllustration;

#[component]
pub fn ConnectedAppsPage() -> impl IntoView {
    view! {
        <Title text="Connected apps"/>
        <header class="page-header">
            <div>
                <h1>"Connected apps"</h1>
                <p class="lede">"Apps you've installed to sync deals, contacts and companies with HubSpot."</p>
            </div>
            <a class="btn btn-secondary" href="/marketplace">"Visit App Marketplace"</a>
        </header>
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
}

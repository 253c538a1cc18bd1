//! Settings: the left sidebar of sections beside the page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

#[component]
pub fn SettingsLayout() -> impl IntoView {
    view! {
        <div class="settings">
            <nav class="settings-nav" aria-label="Settings">
                <h2 class="settings-nav-title">"Settings"</h2>
                <div class="settings-nav-section">
                    <h3>"Account management"</h3>
                    <ul>
                        <li>
                            <A href="/settings/users">"Users & permissions"</A>
                        </li>
                        <li>
                            <A href="/settings/audit-log">"Audit log"</A>
                        </li>
                    </ul>
                </div>
                <div class="settings-nav-section">
                    <h3>"Integrations"</h3>
                    <ul>
                        <li>
                            <A href="/settings/integrations/connected-apps">"Connected apps"</A>
                        </li>
                        <li>
                            <A href="/settings/integrations/syncs">"Sync health"</A>
                        </li>
                    </ul>
                </div>
            </nav>
            <div class="settings-content">
                <Outlet/>
            </div>
        </div>
    }
}

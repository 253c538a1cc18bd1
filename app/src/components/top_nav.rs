//! The dark bar across the top: brand, Marketplace, Settings and the user menu.

use leptos::form::ActionForm;
use leptos::prelude::*;
use model::SessionUser;

use crate::api::auth::Logout;
use crate::components::icons::{LogoMark, MarketplaceIcon, SettingsIcon};
use crate::session::follow_sign_in;

#[component]
pub fn TopNav(user: SessionUser) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    follow_sign_in(logout.value());
    let initials = user.initials();
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topnav">
            <a class="topnav-brand" href=crate::HOME_PATH>
                <LogoMark/>
                <span>"Tandem"</span>
            </a>
            <nav class="topnav-actions" aria-label="Main">
                <a class="icon-button" href="/marketplace" aria-label="Marketplace" title="App Marketplace">
                    <MarketplaceIcon/>
                </a>
                <a class="icon-button" href=crate::HOME_PATH aria-label="Settings" title="Settings">
                    <SettingsIcon/>
                </a>
                <details class="user-menu">
                    <summary aria-label=format!("Account menu for {}", user.name)>
                        <span class="avatar" aria-hidden="true">{initials}</span>
                        <span class="user-menu-name">{user.name.clone()}</span>
                    </summary>
                    <div class="user-menu-panel">
                        <p class="user-menu-who">
                            <strong>{user.name.clone()}</strong>
                            <span>{user.email.clone()}</span>
                            <span class="badge">{user.role.label()}</span>
                        </p>
                        <ActionForm action=logout>
                            <button type="submit" class="menu-item">"Log out"</button>
                        </ActionForm>
                    </div>
                </details>
            </nav>
        </header>
    }
}

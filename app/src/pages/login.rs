//! Log in.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::auth_card::AuthCard;
use crate::api::auth::Login;
use crate::components::feedback::{last_error, ErrorBanner, TextField};
use crate::session::follow_sign_in;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    follow_sign_in(login.value());
    let error = last_error(login.value());
    let next = use_query_map().with_untracked(|q| q.get("next").unwrap_or_default());
    view! {
        <Title text="Log in"/>
        <AuthCard heading="Log in to Tandem">
            <ActionForm action=login>
                <ErrorBanner error/>
                <input type="hidden" name="next" value=next/>
                <TextField name="email" label="Email" kind="email" autocomplete="username" error/>
                <TextField name="password" label="Password" kind="password" autocomplete="current-password" error/>
                <button type="submit" class="btn btn-primary btn-block" disabled=move || login.pending().get()>
                    "Log in"
                </button>
            </ActionForm>
            <p class="auth-footnote">
                "No account yet? Ask a Super Admin of your Tandem to invite you."
            </p>
        </AuthCard>
    }
}

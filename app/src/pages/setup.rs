//! First run: create the Super Admin.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use model::Password;

use super::auth_card::AuthCard;
use crate::api::auth::SetupAdmin;
use crate::components::feedback::{last_error, ErrorBanner, TextField};
use crate::session::follow_sign_in;

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<SetupAdmin>::new();
    follow_sign_in(setup.value());
    let error = last_error(setup.value());
    view! {
        <Title text="Create the Super Admin"/>
        <AuthCard
            heading="Welcome to Tandem"
            lede="Create the Super Admin account. The Super Admin installs apps, sets up syncs and invites the rest of your team."
        >
            <ActionForm action=setup>
                <ErrorBanner error/>
                <TextField name="name" label="Your name" autocomplete="name" error/>
                <TextField name="email" label="Work email" kind="email" autocomplete="username" error/>
                <TextField
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="new-password"
                    min_length=Password::MIN_CHARS
                    hint=format!("At least {} characters.", Password::MIN_CHARS)
                    error
                />
                <TextField
                    name="setup_code"
                    label="Setup code"
                    autocomplete="off"
                    optional=true
                    hint="Printed in Tandem's log when it starts. Not needed on the machine Tandem runs on."
                    error
                />
                <button type="submit" class="btn btn-primary btn-block" disabled=move || setup.pending().get()>
                    "Create Super Admin"
                </button>
            </ActionForm>
        </AuthCard>
    }
}

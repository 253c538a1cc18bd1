//! First run: create the Super Admin.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos::form::ActionForm;
use model::Password;

use super::auth_card::AuthCard;
use crate::api::auth::SetupAdmin;
use crate::components::feedback::{last_error, ErrorBanner, FieldMessage};

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<SetupAdmin>::new();
    let error = last_error(setup.value());
    view! {
        <Title text="Create the Super Admin"/>
        <AuthCard
            heading="Welcome to Tandem"
            lede="Create the Super Admin account. The Super Admin installs apps, sets up syncs and invites the rest of your team."
        >
            <ActionForm action=setup>
                <ErrorBanner error/>
                <div class="field">
                    <label for="name">"Your name"</label>
                    <input id="name" name="name" type="text" autocomplete="name" required=true/>
                    <FieldMessage error field="name"/>
                </div>
                <div class="field">
                    <label for="email">"Work email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required=true/>
                    <FieldMessage error field="email"/>
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        minlength=Password::MIN_CHARS.to_string()
                        required=true
                        aria-describedby="password-hint"
                    />
                    <p class="hint" id="password-hint">
                        {format!("At least {} characters.", Password::MIN_CHARS)}
                    </p>
                    <FieldMessage error field="password"/>
                </div>
                <button type="submit" class="btn btn-primary btn-block" disabled=move || setup.pending().get()>
                    "Create Super Admin"
                </button>
            </ActionForm>
        </AuthCard>
    }
}

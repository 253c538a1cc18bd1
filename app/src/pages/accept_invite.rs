//! An invited person joins: chooses their name and password.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use model::Password;

use super::auth_card::AuthCard;
use crate::api::auth::{get_invitation, AcceptInvite};
use crate::components::feedback::{last_error, ErrorBanner, TextField};
use crate::session::follow_sign_in;

#[component]
pub fn AcceptInvitePage() -> impl IntoView {
    let token = use_params_map().with_untracked(|p| p.get("token").unwrap_or_default());
    let invitation = Resource::new(
        {
            let token = token.clone();
            move || token.clone()
        },
        get_invitation,
    );
    let accept = ServerAction::<AcceptInvite>::new();
    follow_sign_in(accept.value());
    let error = last_error(accept.value());
    view! {
        <Title text="Join Tandem"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let token = token.clone();
                Suspend::new(async move {
                    match invitation.await {
                        Err(e) => {
                            view! {
                                <AuthCard heading="This invitation can't be used">
                                    <div class="alert alert-error" role="alert">{e.to_string()}</div>
                                    <a class="btn btn-secondary btn-block" href="/login">"Go to log in"</a>
                                </AuthCard>
                            }
                                .into_any()
                        }
                        Ok(invitation) => {
                            let lede = format!(
                                "You've been invited to Tandem as {} with {} permission. Choose your name and a password to join.",
                                invitation.email,
                                invitation.role.label(),
                            );
                            view! {
                                <AuthCard heading="Join Tandem" lede=lede>
                                    <ActionForm action=accept>
                                        <ErrorBanner error/>
                                        <input type="hidden" name="token" value=token/>
                                        <TextField name="name" label="Your name" autocomplete="name" error/>
                                        <TextField
                                            name="password"
                                            label="Password"
                                            kind="password"
                                            autocomplete="new-password"
                                            min_length=Password::MIN_CHARS
                                            hint=format!("At least {} characters.", Password::MIN_CHARS)
                                            error
                                        />
                                        <button
                                            type="submit"
                                            class="btn btn-primary btn-block"
                                            disabled=move || accept.pending().get()
                                        >
                                            "Join Tandem"
                                        </button>
                                    </ActionForm>
                                </AuthCard>
                            }
                                .into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

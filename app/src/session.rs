//! The signed-in user as a plain value, known before any page is built.
//!
//! The server reads it from the request (the session middleware looked it up) and hands it to
//! the browser inside the page, so hydration starts from the same value without asking again.
//! No `<Suspense>` waits for it: a page built inside a boundary's children has its resources
//! created there, and a boundary re-runs its children while it settles, which could leave a
//! server-rendered response waiting forever (leptos-rs/leptos#4866, #4851).
//!
//! In the browser the value lives in a signal for the whole visit: signing in, accepting an
//! invitation and creating the first admin set it before the redirect that follows them, and
//! logging out clears it, so it holds across client-side navigation.

use leptos::prelude::*;
use model::SessionUser;

use crate::error::AppError;

/// The signed-in user, provided by [`provide_session`] at the root of the app.
#[derive(Clone, Copy, Debug)]
pub struct Session(RwSignal<Option<SessionUser>>);

impl Session {
    /// The signed-in user now (not tracked: pages read it once, while they are built).
    pub fn user(&self) -> Option<SessionUser> {
        self.0.get_untracked()
    }

    /// Records who is signed in after a sign-in, or `None` after logging out.
    pub fn set(&self, user: Option<SessionUser>) {
        self.0.set(user);
    }
}

/// Creates the session context from the request (server) or from the page (hydration).
pub fn provide_session() {
    let initial = SharedValue::new(signed_in_on_the_server);
    provide_context(Session(RwSignal::new(initial.into_inner())));
}

#[cfg(feature = "ssr")]
fn signed_in_on_the_server() -> Option<SessionUser> {
    crate::api::ssr::session().user
}

/// In the browser the value comes from the page; this runs only when it could not be read, and
/// then the frame sends the visitor to log in (where the server knows better).
#[cfg(not(feature = "ssr"))]
fn signed_in_on_the_server() -> Option<SessionUser> {
    None
}

/// The session context (present under [`crate::App`]).
pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// The signed-in user, for pages under the signed-in frame (call it while building the page).
pub fn current_user() -> Option<SessionUser> {
    use_context::<Session>().and_then(|s| s.user())
}

/// Keeps the session in step with a sign-in or sign-out action's answer: the user now signed in
/// (`None` after logging out). The browser sets it before following the redirect the answer
/// carries.
pub fn follow_sign_in<S>(value: S)
where
    S: With<Value = Option<Result<Option<SessionUser>, AppError>>> + Send + Sync + 'static,
{
    let session = use_session();
    Effect::new(move |_| {
        if let Some(Ok(user)) = value.with(|v| v.clone()) {
            session.set(user);
        }
    });
}

//! The signed-in frame: top navigation around every settings page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use model::SessionUser;

use crate::api::auth::get_me;
use crate::components::feedback::ErrorBanner;
use crate::components::top_nav::TopNav;

/// The signed-in user, loaded once by the shell and handed to every page as a plain value. Pages
/// must not read the shell's resource inside their own `<Suspense>`: one resource read by two
/// Suspense boundaries can leave a server-rendered response hanging (leptos-rs/leptos#4851).
#[derive(Clone, Debug)]
pub struct CurrentUser(pub SessionUser);

/// The signed-in user, for components under the shell (call it while building the component).
pub fn current_user() -> Option<SessionUser> {
    use_context::<CurrentUser>().map(|c| c.0)
}

#[component]
pub fn Shell() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(user)) => {
                        provide_context(CurrentUser(user.clone()));
                        view! {
                            <TopNav user/>
                            <main id="main" class="app-main">
                                <Outlet/>
                            </main>
                        }
                            .into_any()
                    }
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(error) => {
                        view! {
                            <main id="main" class="app-main">
                                <ErrorBanner error=Signal::stored(Some(error))/>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

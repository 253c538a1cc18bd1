//! The signed-in frame: top navigation around every settings page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use model::SessionUser;

use crate::api::auth::get_me;
use crate::components::feedback::ErrorBanner;
use crate::components::top_nav::TopNav;
use crate::error::AppError;

/// The signed-in user, loaded once per visit and shared with every page.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Option<SessionUser>, AppError>>);

impl Me {
    pub fn get() -> Resource<Result<Option<SessionUser>, AppError>> {
        expect_context::<Me>().0
    }
}

#[component]
pub fn Shell() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    provide_context(Me(me));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(user)) => {
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

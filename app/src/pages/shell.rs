//! The signed-in frame: top navigation around every settings page.
//!
//! No boundary here: the signed-in user is a plain value (`crate::session`), so every page is
//! built outside any `<Suspense>` and creates its resources where only its own boundaries read
//! them.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};

use crate::components::top_nav::TopNav;
use crate::session::use_session;

pub use crate::session::current_user;

#[component]
pub fn Shell() -> impl IntoView {
    match use_session().user() {
        Some(user) => view! {
            <TopNav user/>
            <main id="main" class="app-main">
                <Outlet/>
            </main>
        }
        .into_any(),
        // The server sends signed-out visitors to log in before rendering; in the browser this
        // is a session that ended (logged out in this tab).
        None => view! { <Redirect path="/login"/> }.into_any(),
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures_util::StreamExt;
    use leptos::prelude::*;
    use leptos_router::components::{ParentRoute, Route, Router, Routes};
    use leptos_router::location::RequestUrl;
    use leptos_router::path;
    use model::{Role, SessionUser};

    use super::Shell;
    use crate::api::ssr::CurrentSession;

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    /// A page as Tandem's are: a resource created in its body and read in its own boundary.
    #[component]
    fn CountingPage() -> impl IntoView {
        BUILT.fetch_add(1, Ordering::SeqCst);
        let data = Resource::new(|| (), |_| async { "the page's data".to_string() });
        view! {
            <Suspense fallback=|| "Loading…">
                {move || Suspend::new(async move { view! { <p>{data.await}</p> } })}
            </Suspense>
        }
    }

    /// Renders the signed-in frame around the counting page on the server, as a request would.
    async fn render() -> String {
        let _ = any_spawner::Executor::init_tokio();
        let owner = Owner::new_root(Some(Arc::new(hydration_context::SsrSharedContext::new())));
        let stream = owner.with(|| {
            let (mut parts, ()) = http::Request::builder().uri("/page").body(()).unwrap().into_parts();
            let user = SessionUser { id: "u1".into(), name: "Ada Admin".into(), email: "ada@example.com".into(), role: Role::SuperAdmin };
            parts.extensions.insert(CurrentSession { user: Some(user), token: None });
            provide_context(parts);
            provide_context(RequestUrl::new("http://tandem.test/page"));
            crate::session::provide_session();
            view! {
                <Router>
                    <Routes fallback=|| "Page not found">
                        <ParentRoute path=path!("") view=Shell>
                            <Route path=path!("/page") view=CountingPage/>
                        </ParentRoute>
                    </Routes>
                </Router>
            }
            .to_html_stream_in_order()
        });
        stream.collect::<String>().await
    }

    /// A page under the signed-in frame is built once per render. Built inside a `<Suspense>`'s
    /// children (the frame used to await the user in one), it was built again each time the
    /// boundary re-checked its children, each time creating its resources anew
    /// (leptos-rs/leptos#4866): the way a server-rendered response could wait for good.
    #[tokio::test]
    async fn pages_are_built_once_outside_any_boundary() {
        let html = render().await;
        assert!(html.contains("the page&#x27;s data") || html.contains("the page's data"), "{html}");
        assert!(html.contains("Ada Admin"), "the top bar names the user: {html}");
        assert_eq!(BUILT.load(Ordering::SeqCst), 1, "the page was built {} times", BUILT.load(Ordering::SeqCst));
    }
}

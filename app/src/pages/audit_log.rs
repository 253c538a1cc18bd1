//! Settings › Account management › Audit log: who installed, reconnected or uninstalled what, and
//! when. Super Admins only.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::timefmt;

use crate::api::apps::audit_log;
use crate::components::feedback::ErrorBanner;

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let cursor = move || query.with(|q| q.get("before"));
    let page = Resource::new(cursor, audit_log);
    view! {
        <Title text="Audit log"/>
        <header class="page-header">
            <div>
                <h1>"Audit log"</h1>
                <p class="lede">"Every install, reconnect and uninstall, and who did it. Newest first."</p>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let first_page = cursor().is_none();
                match page.await {
                    Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                    Ok(page) if page.entries.is_empty() && first_page => {
                        view! {
                            <section class="empty-state">
                                <h2>"Nothing recorded yet"</h2>
                                <p>"Installing an app from the Marketplace adds the first entry."</p>
                            </section>
                        }
                            .into_any()
                    }
                    Ok(page) => {
                        view! {
                            <section class="card">
                                <table class="table audit-table">
                                    <thead>
                                        <tr>
                                            <th scope="col">"When (UTC)"</th>
                                            <th scope="col">"Who"</th>
                                            <th scope="col">"What"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page
                                            .entries
                                            .into_iter()
                                            .map(|e| {
                                                view! {
                                                    <tr data-action=e.action.clone()>
                                                        <td class="nowrap">{timefmt::date_time(e.at)}</td>
                                                        <td>{e.actor}</td>
                                                        <td>{e.summary}</td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                                <nav class="pager" aria-label="Audit log pages">
                                    {(!first_page).then(|| view! { <a href="/settings/audit-log">"Newest entries"</a> })}
                                    {page
                                        .next
                                        .map(|next| view! { <a href=format!("/settings/audit-log?before={next}")>"Older entries"</a> })}
                                </nav>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

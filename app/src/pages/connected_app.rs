//! One app under Settings › Integrations › Connected apps: the outcome of an install, each
//! connected account with its status, **Reconnect** and **Uninstall**.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::apps::{ApiUsage, ConnectionStatus, ConnectionSummary, InstallResult, HUBSPOT};
use model::{timefmt, Permission};

use super::connected_apps::status_badge;
use super::shell::current_user;
use crate::api::apps::{api_usages, connections, get_provider_info, ProviderInfo, UninstallApp};
use crate::api::syncs::{list_syncs, SetSyncStatus};
use crate::components::api_budget::ApiBudget;
use crate::components::feedback::{last_error, ErrorBanner};
use crate::components::install_button::InstallButton;
use model::sync::{SyncStatus, SyncSummary};

const READ_ONLY_NOTE: &str = "apps-read-only";

#[component]
pub fn ConnectedAppPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || params.with(|p| p.get("app").unwrap_or_default());
    let uninstall = ServerAction::<UninstallApp>::new();
    let set_status = ServerAction::<SetSyncStatus>::new();
    let syncs = Resource::new(move || set_status.version().get(), |_| list_syncs());
    let info = Resource::new(key, get_provider_info);
    let list = Resource::new(move || uninstall.version().get(), |_| connections());
    let usages = Resource::new(|| (), |_| api_usages());
    let can_manage = current_user().is_some_and(|u| u.can(Permission::ManageApps));
    let result = move || query.with(|q| q.get("result").and_then(|r| InstallResult::parse(&r)));
    let welcome = move || query.with(|q| q.get("welcome").is_some());
    let uninstall_error = last_error(uninstall.value());
    let status_error = last_error(set_status.value());
    let saved = move || {
        query.with(|q| {
            let object = q.get("saved")?;
            let version = q.get("version").unwrap_or_default();
            let label = match object.as_str() {
                "deal" => "Deal",
                "contact" => "Contact",
                "company" => "Company",
                _ => return None,
            };
            Some(format!("{label} sync saved as version {version} and turned on."))
        })
    };
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <a href=crate::CONNECTED_APPS_PATH>"Connected apps"</a>
        </nav>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                                let info = match info.await {
                    Ok(info) => info,
                    Err(error) => {
                        return view! {
                            <Title text="App not found"/>
                            <ErrorBanner error=Signal::stored(Some(error))/>
                        }
                            .into_any();
                    }
                };
                let list = list.await;
                let syncs = syncs.await.unwrap_or_default();
                let usages = usages.await.unwrap_or_default();
                let name = info.name.clone();
                let banner = result()
                    .map(|r| {
                        let class = if r.is_success() { "alert alert-success" } else { "alert alert-error" };
                        let role = if r.is_success() { "status" } else { "alert" };
                        view! { <div class=class role=role>{r.message(&name)}</div> }
                    });
                let done = move || {
                    uninstall
                        .value()
                        .get()
                        .and_then(Result::ok)
                        .map(|message| view! { <div class="alert alert-success" role="status">{message}</div> })
                };
                let hub_connected = list
                    .as_ref()
                    .is_ok_and(|l| l.iter().any(|c| c.provider == HUBSPOT && c.status != ConnectionStatus::Uninstalled));
                let welcome = (welcome() && info.key == HUBSPOT && !hub_connected && can_manage)
                    .then(|| {
                        view! {
                            <section class="card welcome" aria-labelledby="welcome-title">
                                <h2 id="welcome-title">"Start with your HubSpot account"</h2>
                                <p>
                                    "Every sync runs against a HubSpot account: Tandem keeps its deals, contacts and companies in step with the apps you install. Connect it now, or skip this and connect it later from Connected apps."
                                </p>
                                <a href=crate::CONNECTED_APPS_PATH>"Skip for now"</a>
                            </section>
                        }
                    });
                view! {
                    <Title text=info.name.clone()/>
                    <Header info=info.clone() list=list.clone().unwrap_or_default() can_manage/>
                    {welcome}
                    {(!can_manage)
                        .then(|| view! { <p class="notice" id=READ_ONLY_NOTE role="note">{Permission::ManageApps.denied_reason()}</p> })}
                    {banner}
                    {done}
                    {saved().map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
                    <ErrorBanner error=uninstall_error/>
                    <ErrorBanner error=status_error/>
                    {match list {
                        Err(error) => view! { <ErrorBanner error=Signal::stored(Some(error))/> }.into_any(),
                        Ok(list) => view! { <Accounts info list syncs usages uninstall set_status can_manage/> }.into_any(),
                    }}
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn Header(info: ProviderInfo, list: Vec<ConnectionSummary>, can_manage: bool) -> impl IntoView {
    let active = list.iter().any(|c| c.provider == info.key && c.status != ConnectionStatus::Uninstalled);
    let reason = if can_manage { info.unavailable.clone() } else { Some(Permission::ManageApps.denied_reason().to_string()) };
    // Several accounts of HubSpot and of each app may be connected; a new app account syncs with
    // the HubSpot account chosen beside the button (when there are several).
    let hubs = if info.key == HUBSPOT { Vec::new() } else { model::apps::hub_choices(&list) };
    let install = if info.key == HUBSPOT {
        Some(if active { "Connect another HubSpot account" } else { "Connect HubSpot" })
    } else if active {
        Some("Install another account")
    } else {
        Some("Install app")
    };
    view! {
        <header class="app-header">
            <img class="app-logo app-logo-large" src=info.logo.clone() alt="" width="72" height="72"/>
            <div class="app-header-text">
                <h1>{info.name.clone()}</h1>
                <p class="lede">
                    {if info.key == HUBSPOT {
                        "The HubSpot accounts syncs run against: each app account syncs with one of them."
                    } else {
                        "Accounts of this app connected to Tandem."
                    }}
                </p>
            </div>
            <div class="app-header-actions">
                {install
                    .map(|label| {
                        let class = if active { "btn btn-secondary" } else { "btn btn-primary" };
                        view! {
                            <InstallButton
                                app=info.key.clone()
                                label
                                class
                                disabled_reason=reason.clone()
                                described_by=READ_ONLY_NOTE
                                hubs=hubs.clone()
                            />
                        }
                    })}
                {info
                    .in_marketplace
                    .then(|| view! { <a class="manage-link" href=format!("/marketplace/{}", info.key)>"View in App Marketplace"</a> })}
            </div>
        </header>
    }
}

#[component]
fn Accounts(
    info: ProviderInfo,
    list: Vec<ConnectionSummary>,
    syncs: Vec<SyncSummary>,
    usages: Vec<ApiUsage>,
    uninstall: ServerAction<UninstallApp>,
    set_status: ServerAction<SetSyncStatus>,
    can_manage: bool,
) -> impl IntoView {
    let accounts: Vec<ConnectionSummary> = list.iter().filter(|c| c.provider == info.key).cloned().collect();
    if accounts.is_empty() {
        return view! {
            <section class="empty-state">
                <h2>"Not installed"</h2>
                <p>{format!("{} is not connected to Tandem yet. Install it to set up a sync.", info.name)}</p>
            </section>
        }
        .into_any();
    }
    accounts
        .into_iter()
        .map(|c| {
            let own: Vec<SyncSummary> = syncs.iter().filter(|s| s.connection_id == c.id).cloned().collect();
            let usage = usages.iter().find(|u| u.connection_id == c.id).cloned();
            let hub = c.hub_in(&list).cloned();
            let linked_hub = c.linked_hub(&list).cloned();
            view! { <AccountCard c syncs=own usage uninstall set_status can_manage hub linked_hub/> }
        })
        .collect_view()
        .into_any()
}

#[component]
fn AccountCard(
    c: ConnectionSummary,
    syncs: Vec<SyncSummary>,
    /// The account's API budget (none when it could not be read).
    usage: Option<ApiUsage>,
    uninstall: ServerAction<UninstallApp>,
    set_status: ServerAction<SetSyncStatus>,
    can_manage: bool,
    /// For an app's account: the HubSpot account its syncs run against (none connected yet).
    hub: Option<ConnectionSummary>,
    /// The HubSpot account it was linked to, even when that one was uninstalled since.
    linked_hub: Option<ConnectionSummary>,
) -> impl IntoView {
    let hub_connected = hub.is_some();
    let setup_href = format!("{}/{}/{}/sync", crate::CONNECTED_APPS_PATH, c.provider, c.id);
    let setup_label = if syncs.is_empty() { "Set up sync" } else { "Sync more data" };
    let is_app = c.provider != HUBSPOT;
    let connected = c.status == ConnectionStatus::Connected;
    // Syncs of an account that needs reconnection (or was uninstalled) do not run.
    let held = match c.status {
        ConnectionStatus::Connected => None,
        ConnectionStatus::NeedsReconnection => Some("Paused until reconnected"),
        ConnectionStatus::Uninstalled => Some("Paused: app uninstalled"),
    };
    let heading_id = format!("account-{}", c.id);
    let reason = (!can_manage).then(|| Permission::ManageApps.denied_reason().to_string());
    // The provider's word for one of its accounts (HubSpot's portal, Zoho's organization).
    let kind = {
        let mut chars = c.account_kind.chars();
        chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
    };
    let confirm = format!(
        "Uninstall {} for {}? Tandem revokes its access and deletes its credentials. Syncs with this account pause; their settings and history are kept.",
        c.provider_name, c.account_name
    );
    let active = c.status != ConnectionStatus::Uninstalled;
    let (labelled_by, connection_attr, reconnect_id, uninstall_id) = (heading_id.clone(), c.id.clone(), c.id.clone(), c.id.clone());
    let provider = c.provider.clone();
    let scopes = c.scopes.clone();
    view! {
        <section class="card account-card" aria-labelledby=labelled_by data-connection=connection_attr>
            <div class="account-card-header">
                <h2 id=heading_id>{c.account_name.clone()} {status_badge(c.status)}</h2>
                {active
                    .then(|| {
                        let class = if c.status == ConnectionStatus::NeedsReconnection {
                            "btn btn-primary"
                        } else {
                            "btn btn-secondary btn-small"
                        };
                        view! {
                            <InstallButton
                                app=provider.clone()
                                reconnect=reconnect_id.clone()
                                label="Reconnect"
                                class
                                disabled_reason=reason.clone()
                                described_by=READ_ONLY_NOTE
                            />
                        }
                    })}
            </div>
            {c.status_reason
                .clone()
                .filter(|_| c.status == ConnectionStatus::NeedsReconnection)
                .map(|r| view! { <p class="notice" role="note">{r}</p> })}
            <dl class="facts">
                <div>
                    <dt>{kind}</dt>
                    <dd>{c.account_id.clone()}</dd>
                </div>
                {c.account_domain
                    .clone()
                    .map(|d| view! { <div><dt>"Domain"</dt><dd>{d}</dd></div> })}
                {hub
                    .as_ref()
                    .filter(|_| is_app)
                    .map(|h| {
                        view! {
                            <div>
                                <dt>"HubSpot account"</dt>
                                <dd>{h.label_with_id()}</dd>
                            </div>
                        }
                    })}
                <div>
                    <dt>"Installed by"</dt>
                    <dd>{c.installed_by.clone()}</dd>
                </div>
                <div>
                    <dt>"Installed"</dt>
                    <dd>{timefmt::date_time(c.installed_at)}</dd>
                </div>
                <div>
                    <dt>{if active { "Last authorized" } else { "Uninstalled" }}</dt>
                    <dd>{timefmt::date_time(c.updated_at)}</dd>
                </div>
            </dl>
            {active
                .then(|| {
                    view! {
                        <details class="scopes">
                            <summary>{format!("Permissions granted ({})", scopes.len())}</summary>
                            <ul class="plain-list">
                                {scopes.iter().map(|s| view! { <li><code>{s.clone()}</code></li> }).collect_view()}
                            </ul>
                        </details>
                    }
                })}
            {usage
                .filter(|_| connected)
                .map(|usage| {
                    view! { <ApiBudget usage provider_name=c.provider_name.clone() can_manage described_by=READ_ONLY_NOTE/> }
                })}
            {is_app
                .then(|| {
                    view! {
                        <div class="syncs">
                            <div class="syncs-header">
                                <h3>"Syncs"</h3>
                                {(connected && hub_connected)
                                    .then(|| view! { <a class="btn btn-primary btn-small" href=setup_href.clone()>{setup_label}</a> })}
                            </div>
                            {(connected && !hub_connected)
                                .then(|| {
                                    let words = match &linked_hub {
                                        Some(h) => format!(
                                            "This account's syncs run against the HubSpot account {}, which was uninstalled: connect that account again to resume them. ",
                                            h.label_with_id(),
                                        ),
                                        None => "Every sync runs against a HubSpot account: connect one before setting up a sync. ".to_string(),
                                    };
                                    view! {
                                        <p class="notice" role="note">
                                            {words}
                                            <a href=format!("{}/{HUBSPOT}", crate::CONNECTED_APPS_PATH)>"Connect HubSpot"</a>
                                        </p>
                                    }
                                })}
                            {syncs.is_empty().then(|| view! { <p class="hint">"Nothing syncs with this account yet."</p> })}
                            <ul class="plain-list sync-list">
                                {syncs
                                    .iter()
                                    .map(|s| view! { <SyncLine s=s.clone() href=setup_href.clone() set_status can_manage held/> })
                                    .collect_view()}
                            </ul>
                        </div>
                    }
                })}
            {(!active)
                .then(|| {
                    view! {
                        <p class="hint">
                            "Uninstalled: Tandem holds no credentials for this account. Its sync settings and history are kept; installing the same account again resumes them."
                        </p>
                    }
                })}
            {(active && can_manage)
                .then(|| {
                    view! {
                        <details class="confirm">
                            <summary class="link-danger">"Uninstall"</summary>
                            <div class="confirm-panel confirm-panel-left">
                                <p>{confirm}</p>
                                <ActionForm action=uninstall>
                                    <input type="hidden" name="connection_id" value=uninstall_id.clone()/>
                                    <button type="submit" class="btn btn-danger btn-small">"Uninstall app"</button>
                                </ActionForm>
                            </div>
                        </details>
                    }
                })}
        </section>
    }
}

#[component]
fn SyncLine(
    s: SyncSummary,
    href: String,
    set_status: ServerAction<SetSyncStatus>,
    can_manage: bool,
    /// Why the sync cannot run whatever its status (its account's connection).
    held: Option<&'static str>,
) -> impl IntoView {
    let object = s.settings.object.key();
    let badge = match s.status {
        SyncStatus::On => "badge badge-success",
        SyncStatus::Paused => "badge badge-warning",
        SyncStatus::Off => "badge badge-muted",
    };
    let actions: Vec<(&'static str, SyncStatus)> = match s.status {
        SyncStatus::On => vec![("Pause", SyncStatus::Paused), ("Turn off", SyncStatus::Off)],
        SyncStatus::Paused => vec![("Resume", SyncStatus::On), ("Turn off", SyncStatus::Off)],
        SyncStatus::Off => vec![("Turn on", SyncStatus::On)],
    };
    let reason = (!can_manage).then(|| Permission::ManageApps.denied_reason());
    view! {
        <li class="sync-line" data-object=object>
            <strong>{format!("{} sync", s.settings.object.label())}</strong>
            <span class=badge>{s.status.label()}</span>
            {held.filter(|_| s.status == SyncStatus::On).map(|h| view! { <span class="badge badge-error">{h}</span> })}
            <span class="hint">
                {format!(" Version {} · saved by {} on {}", s.version, s.saved_by, timefmt::date_time(s.saved_at))}
            </span>
            <span class="sync-actions">
                <a href=crate::components::sync_header::health_path(&s.id)>"Health"</a>
                <a href=crate::components::sync_header::history_path(&s.id)>"History"</a>
                <a href=format!("{href}?object={object}")>{if can_manage { "Edit" } else { "View settings" }}</a>
                {actions
                    .into_iter()
                    .map(|(label, status)| {
                        let id = s.id.clone();
                        view! {
                            <button
                                type="button"
                                class="btn-link"
                                disabled=!can_manage
                                title=reason
                                on:click=move |_| {
                                    set_status.dispatch(SetSyncStatus { sync_id: id.clone(), status: status.as_str().to_string() });
                                }
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
            </span>
        </li>
    }
}

//! The top of every page about one sync: breadcrumb, title, status badge and the Health /
//! History tabs; and the links between those pages.

use leptos::prelude::*;
use model::dashboard::{HealthStatus, SyncLabel};

/// Settings › Integrations › Sync health: every sync.
pub const SYNCS_PATH: &str = "/settings/integrations/syncs";

pub fn health_path(sync_id: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}")
}
pub fn history_path(sync_id: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}/history")
}
pub fn run_path(sync_id: &str, run_id: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}/history/{run_id}")
}
pub fn records_path(sync_id: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}/records")
}
pub fn record_path(sync_id: &str, record_id: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}/records/{record_id}")
}
pub fn export_path(sync_id: &str, kind: &str) -> String {
    format!("{SYNCS_PATH}/{sync_id}/export/{kind}.csv")
}

/// The status as a coloured badge.
pub fn health_badge(status: HealthStatus) -> impl IntoView {
    let class = match status {
        HealthStatus::Syncing => "badge badge-success",
        HealthStatus::Paused => "badge badge-warning",
        HealthStatus::Off => "badge badge-muted",
        HealthStatus::NeedsReconnection | HealthStatus::Error => "badge badge-error",
    };
    view! { <span class=class data-status=status.as_str()>{status.label()}</span> }
}

/// Which tab a sync page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SyncTab {
    Health,
    History,
}

#[component]
pub fn SyncHeader(label: SyncLabel, tab: SyncTab, #[prop(optional)] status: Option<HealthStatus>) -> impl IntoView {
    let current = move |t: SyncTab| (t == tab).then_some("page");
    let app_href = format!("{}/{}", crate::CONNECTED_APPS_PATH, label.provider);
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <a href=SYNCS_PATH>"Sync health"</a>
        </nav>
        <header class="page-header sync-header">
            <div>
                <h1>{format!("{} sync", label.title())} " " {status.map(health_badge)}</h1>
                <p class="lede">
                    {format!("HubSpot ⇄ {} · {} · ", label.app_name, label.account_name)}
                    <a href=app_href>"Connection and settings"</a>
                </p>
            </div>
        </header>
        <nav class="tabs" aria-label="Sync views">
            <a href=health_path(&label.sync_id) aria-current=current(SyncTab::Health)>"Health"</a>
            <a href=history_path(&label.sync_id) aria-current=current(SyncTab::History)>"History"</a>
        </nav>
    }
}

/// "in HubSpot" / "in Pipedrive" for an event's side.
pub fn side_name(side: &str, label: &SyncLabel) -> String {
    match side {
        "hubspot" => "HubSpot".to_string(),
        _ => label.app_name.clone(),
    }
}

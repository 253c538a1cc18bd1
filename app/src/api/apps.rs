//! The App Marketplace, installing apps over OAuth, connected apps and the audit log.

use leptos::prelude::*;
use model::apps::{ApiUsage, AppListing, AuditPage, ConnectionSummary};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What a connected-app page shows about its provider (HubSpot included, which is not in the
/// Marketplace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub key: String,
    pub name: String,
    pub logo: String,
    pub in_marketplace: bool,
    /// Why installing cannot work on this server, if it cannot.
    pub unavailable: Option<String>,
}

/// Every app of the Marketplace.
#[server(endpoint = "catalogue")]
pub async fn catalogue() -> Result<Vec<AppListing>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    Ok(ssr::context()?.connections.catalogue())
}

#[server(endpoint = "app_listing")]
pub async fn get_app_listing(app: String) -> Result<AppListing, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?
        .connections
        .listing(&app)
        .ok_or_else(|| ssr::fail(AppError::NotFound("There is no such app in the Marketplace.".into())))
}

#[server(endpoint = "provider_info")]
pub async fn get_provider_info(app: String) -> Result<ProviderInfo, AppError> {
    use super::ssr;
    ssr::require_user()?;
    let ctx = ssr::context()?;
    let config = ctx.connections.provider(&app).ok_or_else(|| ssr::fail(AppError::NotFound("There is no such app.".into())))?;
    Ok(ProviderInfo {
        key: app.clone(),
        name: config.display_name(),
        logo: config.logo().to_string(),
        in_marketplace: config.listing().is_some(),
        unavailable: config.unavailable(),
    })
}

/// Every connection (HubSpot first), without credentials.
#[server(endpoint = "connections")]
pub async fn connections() -> Result<Vec<ConnectionSummary>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.connections.list().await.map_err(ssr::connection_error)
}

/// Starts installing `app` (or reconnecting the connection `reconnect`) for the HubSpot account
/// `hub` (needed when several are connected): answers the provider's authorization page to send
/// the browser to.
#[server(endpoint = "start_install")]
pub async fn start_install(app: String, reconnect: Option<String>, hub: Option<String>) -> Result<String, AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageApps)?;
    let token = ssr::session().token.ok_or_else(|| ssr::fail(AppError::Unauthenticated))?;
    let reconnect = reconnect.filter(|r| !r.is_empty());
    let hub = hub.filter(|h| !h.is_empty());
    ssr::context()?.connections.start(&admin, &token, &app, reconnect.as_deref(), hub.as_deref()).await.map_err(ssr::connection_error)
}

/// Uninstalls a connection; answers what the admin should know.
#[server(endpoint = "uninstall_app")]
pub async fn uninstall_app(connection_id: String) -> Result<String, AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageApps)?;
    let done = ssr::context()?.connections.uninstall(&admin, &connection_id).await.map_err(ssr::connection_error)?;
    Ok(match done.revoke_failed {
        None => format!(
            "{} was uninstalled and its access revoked. Its sync settings and history are kept; install it again to resume.",
            done.provider_name
        ),
        Some(reason) => format!(
            "{} was uninstalled and Tandem deleted its credentials, but could not revoke its access at the provider ({reason}). Remove Tandem from the account's installed apps there.",
            done.provider_name
        ),
    })
}

#[server(endpoint = "audit_log")]
pub async fn audit_log(cursor: Option<String>) -> Result<AuditPage, AppError> {
    use super::ssr;
    ssr::require(model::Permission::ViewAuditLog)?;
    ssr::context()?.connections.audit_page(cursor.as_deref(), 50).await.map_err(ssr::connection_error)
}

/// Every connection's API budget: Tandem's share of the account's limit and what it used of it.
#[server(endpoint = "api_usages")]
pub async fn api_usages() -> Result<Vec<ApiUsage>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.connections.api_usages().await.map_err(ssr::connection_error)
}

/// Sets the share of a connection's API limit Tandem may use (every sync and instance).
#[server(endpoint = "set_api_share")]
pub async fn set_api_share(connection_id: String, share: String) -> Result<ApiUsage, AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageApps)?;
    let share =
        ApiUsage::parse_share(&share).map_err(|message| ssr::fail(AppError::Invalid(vec![model::FieldError::new("share", message)])))?;
    ssr::context()?.connections.set_api_share(&admin, &connection_id, share).await.map_err(ssr::connection_error)
}

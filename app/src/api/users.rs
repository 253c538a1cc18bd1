//! Users & permissions: listing, inviting, changing roles and removing users.

use leptos::prelude::*;
use model::UserSummary;

use crate::error::AppError;

#[server(endpoint = "users")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use super::ssr;
    ssr::require_user()?;
    ssr::context()?.accounts.list_users().await.map_err(ssr::account_error)
}

/// Invites a user and returns the invitation link to share with them.
#[server(endpoint = "invite_user")]
pub async fn invite_user(email: String, role: String) -> Result<String, AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageUsers)?;
    let ctx = ssr::context()?;
    let token = ctx.accounts.invite(&admin, &email, &role).await.map_err(ssr::account_error)?;
    Ok(format!("{}/invite/{}", ctx.public_url.trim_end_matches('/'), token.expose()))
}

#[server(endpoint = "change_role")]
pub async fn change_role(user_id: String, role: String) -> Result<(), AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageUsers)?;
    ssr::context()?.accounts.change_role(&admin, &user_id, &role).await.map_err(ssr::account_error)
}

#[server(endpoint = "remove_user")]
pub async fn remove_user(user_id: String) -> Result<(), AppError> {
    use super::ssr;
    let admin = ssr::require(model::Permission::ManageUsers)?;
    ssr::context()?.accounts.remove_user(&admin, &user_id).await.map_err(ssr::account_error)
}

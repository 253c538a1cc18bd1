//! Signing in and out, the first-run setup and accepting an invitation.

use leptos::prelude::*;
use model::{Role, SessionUser};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

// Signing in, out and the first-run setup answer the user signed in afterwards (`None` after
// logging out), so the browser's session context is set before it follows the redirect
// (`crate::session::follow_sign_in`).

#[server(endpoint = "setup")]
pub async fn setup_admin(name: String, email: String, password: String) -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let logged_in = ctx.accounts.create_first_admin(&name, &email, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(crate::HOME_PATH);
    Ok(Some(logged_in.user))
}

#[server(endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let logged_in = ctx.accounts.login(&email, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(&ssr::local_path_or_home(next));
    Ok(Some(logged_in.user))
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    if let Some(token) = ssr::session().token {
        ctx.accounts.logout(&token).await.map_err(ssr::account_error)?;
    }
    ssr::end_session(&ctx);
    leptos_axum::redirect("/login");
    Ok(None)
}

/// An invitation as its recipient sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

#[server(endpoint = "invitation")]
pub async fn get_invitation(token: String) -> Result<InvitationView, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let token = engine::secret::Token::from_presented(&token);
    let invitation = ctx.accounts.invitation(&token).await.map_err(ssr::account_error)?;
    Ok(InvitationView { email: invitation.email, role: invitation.role, expires_at: invitation.expires_at })
}

#[server(endpoint = "accept_invite")]
pub async fn accept_invite(token: String, name: String, password: String) -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let token = engine::secret::Token::from_presented(&token);
    let logged_in = ctx.accounts.accept_invite(&token, &name, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(crate::HOME_PATH);
    Ok(Some(logged_in.user))
}

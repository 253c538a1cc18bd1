//! Signing in and out, the first-run setup and accepting an invitation.

use leptos::prelude::*;
use model::{Role, SessionUser};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

// Signing in, out and the first-run setup answer the user signed in afterwards (`None` after
// logging out), so the browser's session context is set before it follows the redirect
// (`crate::session::follow_sign_in`).

/// Creating the first Super Admin from another machine than Tandem's own needs the setup code
/// from Tandem's log: whoever reaches a fresh install first over the network must not get it.
#[server(endpoint = "setup")]
pub async fn setup_admin(
    name: String,
    email: String,
    password: String,
    setup_code: Option<String>,
) -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let local = ssr::client().address.is_some_and(|a| a.is_loopback());
    if !local && !ssr::setup_code_matches(&ctx, setup_code.as_deref().unwrap_or_default()) {
        if !ctx.accounts.needs_setup().await.unwrap_or(true) {
            return Err(ssr::account_error(engine::AccountError::SetupDone));
        }
        tracing::warn!("first-run setup refused: no valid setup code from another machine");
        let message = "Enter the setup code from Tandem's log (needed when you are not on the machine Tandem runs on).";
        return Err(ssr::fail(AppError::Invalid(vec![model::FieldError::new("setup_code", message)])));
    }
    let logged_in = ctx.accounts.create_first_admin(&name, &email, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(crate::WELCOME_PATH);
    Ok(Some(logged_in.user))
}

#[server(endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<Option<SessionUser>, AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let now = engine::clock::now_ms();
    let logged_in = ctx.accounts.sign_in(&email, &password, &ssr::client(), now).await.map_err(ssr::account_error)?;
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

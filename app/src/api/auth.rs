//! Signing in and out, the first-run setup and accepting an invitation.

use leptos::prelude::*;
use model::{Role, SessionUser};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user, or `None`.
#[server(endpoint = "me")]
pub async fn get_me() -> Result<Option<SessionUser>, AppError> {
    Ok(super::ssr::session().user)
}

#[server(endpoint = "setup")]
pub async fn setup_admin(name: String, email: String, password: String) -> Result<(), AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let logged_in = ctx.accounts.create_first_admin(&name, &email, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(crate::HOME_PATH);
    Ok(())
}

#[server(endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let logged_in = ctx.accounts.login(&email, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(&ssr::local_path_or_home(next));
    Ok(())
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    if let Some(token) = ssr::session().token {
        ctx.accounts.logout(&token).await.map_err(ssr::account_error)?;
    }
    ssr::end_session(&ctx);
    leptos_axum::redirect("/login");
    Ok(())
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
    Ok(InvitationView {
        email: invitation.email,
        role: invitation.role,
        expires_at: invitation.expires_at,
    })
}

#[server(endpoint = "accept_invite")]
pub async fn accept_invite(token: String, name: String, password: String) -> Result<(), AppError> {
    use super::ssr;
    let ctx = ssr::context()?;
    let token = engine::secret::Token::from_presented(&token);
    let logged_in = ctx.accounts.accept_invite(&token, &name, &password).await.map_err(ssr::account_error)?;
    ssr::start_session(&ctx, &logged_in);
    leptos_axum::redirect(crate::HOME_PATH);
    Ok(())
}

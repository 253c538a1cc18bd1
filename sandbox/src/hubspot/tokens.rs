//! HubSpot's OAuth token endpoints: the code and refresh-token grants (`post-/oauth/v1/token_create`),
//! token info and refresh-token revocation.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{correlation_id, error, HubSpot};
use crate::oauth::TokenError;
use crate::time::now_ms;

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

fn token_error(e: TokenError) -> Response {
    let (status, message, oauth_error) = match e {
        TokenError::InvalidClient => ("BAD_CLIENT_ID", "missing or invalid client_id or client_secret".to_string(), "invalid_client"),
        TokenError::InvalidGrant(m) if m.contains("redirect_uri") => ("BAD_REDIRECT_URI", m.to_string(), "invalid_grant"),
        TokenError::InvalidRequest(m) if m.contains("redirect_uri") => ("BAD_REDIRECT_URI", m.to_string(), "invalid_request"),
        TokenError::InvalidGrant(m) if m.contains("refresh") => ("BAD_REFRESH_TOKEN", m.to_string(), "invalid_grant"),
        TokenError::InvalidGrant(m) => ("BAD_AUTH_CODE", m.to_string(), "invalid_grant"),
        TokenError::InvalidRequest(m) => ("BAD_REQUEST", m.to_string(), "invalid_request"),
        TokenError::UnsupportedGrantType => ("BAD_GRANT_TYPE", "unsupported grant_type".to_string(), "unsupported_grant_type"),
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": status,
            "message": message,
            "correlationId": correlation_id(),
            "error": oauth_error,
            "error_description": message,
        })),
    )
        .into_response()
}

/// POST /oauth/v1/token: `authorization_code` and `refresh_token` grants, form-encoded.
pub(super) async fn token(State(hubspot): State<Arc<HubSpot>>, Form(form): Form<TokenForm>) -> Response {
    hubspot.faults.delay().await;
    let client_id = form.client_id.unwrap_or_default();
    if let Err(e) = hubspot.oauth.authenticate_client(&client_id, form.client_secret.as_deref().unwrap_or_default()) {
        return token_error(e);
    }
    let issued = match form.grant_type.as_deref() {
        Some("authorization_code") => match form.code.as_deref() {
            None => Err(TokenError::InvalidRequest("missing code")),
            Some(code) => hubspot.oauth.exchange_code(&client_id, form.redirect_uri.as_deref(), code, form.code_verifier.as_deref()),
        },
        Some("refresh_token") => match form.refresh_token.as_deref() {
            None => Err(TokenError::InvalidRequest("missing refresh_token")),
            Some(refresh) => hubspot.oauth.refresh(&client_id, refresh),
        },
        _ => Err(TokenError::UnsupportedGrantType),
    };
    match issued {
        Err(e) => token_error(e),
        Ok(issued) => Json(json!({
            "token_type": "bearer",
            "token_use": "access_token",
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "hub_id": hubspot.config.portal_id,
            "user_id": 9_100_001,
            "scopes": issued.grant.scopes,
        }))
        .into_response(),
    }
}

/// GET /oauth/v1/access-tokens/{token}
pub(super) async fn access_token_info(State(hubspot): State<Arc<HubSpot>>, Path(token): Path<String>) -> Response {
    match hubspot.oauth.access(&token) {
        Ok(access) => Json(json!({
            "token": token,
            "user": access.grant.user_email,
            "hub_domain": hubspot.config.hub_domain,
            "scopes": access.grant.scopes,
            "hub_id": hubspot.config.portal_id,
            "app_id": hubspot.config.app_id,
            "expires_in": ((access.expires_at - now_ms()) / 1000).max(0),
            "user_id": 9_100_001,
            "token_type": "access",
        }))
        .into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "Token not found or expired."),
    }
}

pub(super) async fn refresh_token_info(State(hubspot): State<Arc<HubSpot>>, Path(token): Path<String>) -> Response {
    match hubspot.oauth.refresh_grant(&token) {
        Some(grant) => Json(json!({
            "token": token,
            "user": grant.user_email,
            "hub_domain": hubspot.config.hub_domain,
            "scopes": grant.scopes,
            "hub_id": hubspot.config.portal_id,
            "client_id": grant.client_id,
            "user_id": 9_100_001,
            "token_type": "refresh",
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "Refresh token not found."),
    }
}

/// DELETE /oauth/v1/refresh-tokens/{token}: revokes it (204).
pub(super) async fn revoke_refresh_token(State(hubspot): State<Arc<HubSpot>>, Path(token): Path<String>) -> Response {
    if hubspot.oauth.revoke_refresh(&token) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "Refresh token not found.")
    }
}

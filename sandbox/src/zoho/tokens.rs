//! Zoho's accounts server token endpoints: `POST /oauth/v2/token` (the client's id and secret in
//! the form body, or the query; `authorization_code` and `refresh_token` grants) and
//! `POST /oauth/v2/token/revoke`. Zoho answers a refused request with HTTP 200 and
//! `{"error": "invalid_code"}` (or `invalid_client`, `invalid_client_secret`, …), and its refresh
//! tokens do not rotate.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Zoho;
use crate::oauth::TokenError;
use crate::query::{query_one, query_pairs};

/// The query and the form body together (Zoho takes the parameters in either).
fn params(query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut pairs = query_pairs(query);
    pairs.extend(serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default());
    pairs
}

fn refused(error: &str) -> Response {
    Json(json!({"error": error})).into_response()
}

fn token_error(e: &TokenError) -> &'static str {
    match e {
        TokenError::InvalidClient => "invalid_client",
        TokenError::InvalidGrant(m) if m.contains("redirect_uri") => "invalid_redirect_uri",
        TokenError::InvalidGrant(_) => "invalid_code",
        TokenError::InvalidRequest(m) if m.contains("redirect_uri") => "invalid_redirect_uri",
        TokenError::InvalidRequest(_) => "invalid_request",
        TokenError::UnsupportedGrantType => "unsupported_grant_type",
    }
}

/// POST /oauth/v2/token
pub async fn token(State(zoho): State<Arc<Zoho>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    zoho.faults.delay().await;
    let pairs = params(query.as_deref(), &body);
    let get = |name: &str| query_one(&pairs, name).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else { return refused("invalid_client") };
    if zoho.oauth.client(client_id).is_none() {
        return refused("invalid_client");
    }
    if zoho.oauth.authenticate_client(client_id, get("client_secret").unwrap_or_default()).is_err() {
        return refused("invalid_client_secret");
    }
    let grant_type = get("grant_type").unwrap_or_default();
    let issued = match grant_type {
        "authorization_code" => match get("code") {
            None => Err(TokenError::InvalidRequest("missing code")),
            Some(code) => zoho.oauth.exchange_code(client_id, get("redirect_uri"), code, get("code_verifier")),
        },
        "refresh_token" => match get("refresh_token") {
            None => Err(TokenError::InvalidRequest("missing refresh_token")),
            Some(refresh) => zoho.oauth.refresh(client_id, refresh),
        },
        _ => Err(TokenError::UnsupportedGrantType),
    };
    let issued = match issued {
        Ok(issued) => issued,
        Err(e) => {
            tracing::info!(grant_type, error = token_error(&e), "Zoho sandbox refused a token request");
            return refused(token_error(&e));
        }
    };
    let mut answer = json!({
        "access_token": issued.access_token,
        "scope": issued.grant.scopes.join(" "),
        "api_domain": zoho.config.api_domain,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if grant_type == "authorization_code" {
        if issued.access_type.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("offline")) {
            answer["refresh_token"] = Value::String(issued.refresh_token);
        } else {
            // `access_type=online` (the default): an access token only.
            zoho.oauth.forget_refresh(&issued.refresh_token);
        }
    }
    Json(answer).into_response()
}

/// POST /oauth/v2/token/revoke?token=…: the refresh token stops working.
pub async fn revoke(State(zoho): State<Arc<Zoho>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let pairs = params(query.as_deref(), &body);
    let Some(token) = query_one(&pairs, "token").filter(|t| !t.is_empty()) else { return refused("invalid_request") };
    if zoho.oauth.revoke_refresh(token) {
        Json(json!({"status": "success"})).into_response()
    } else {
        refused("invalid_token")
    }
}

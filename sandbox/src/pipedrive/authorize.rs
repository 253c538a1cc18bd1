//! Pipedrive's authorization request (`authorize`, v1 spec, oauth server): `client_id`,
//! `redirect_uri` and `state`, and no `scope`. An app's scopes are those registered with it in
//! Pipedrive's Developer Hub, and the consent page shows them: a request that names no scope is
//! granted the app's registered scopes. One that names some (the sandbox's own tests narrow a
//! token that way) gets those, as the shared authorization server grants them.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Pipedrive;
use crate::oauth::{self, AuthorizeParams, LoginForm};

impl Pipedrive {
    /// The scopes registered with the app `client_id` (none for an unknown app).
    pub fn registered_scopes(&self, client_id: &str) -> &[String] {
        self.config.app_scopes.get(client_id).map(Vec::as_slice).unwrap_or_default()
    }
}

fn names_a_scope(scope: Option<&str>) -> bool {
    scope.is_some_and(|s| !s.trim().is_empty())
}

/// GET /oauth/authorize: the sign-in page, carrying the app's registered scopes when the
/// request names none.
pub async fn authorize(State(pd): State<Arc<Pipedrive>>, Query(mut params): Query<AuthorizeParams>) -> Response {
    if !names_a_scope(params.scope.as_deref()) {
        let registered = pd.registered_scopes(params.client_id.as_deref().unwrap_or_default());
        params.scope = Some(registered.join(" "));
    }
    oauth::authorize(State(pd.oauth.clone()), Query(params)).await
}

/// POST /oauth/authorize/login: as the shared server's, with the app's registered scopes when
/// the form names none (a client may post the authorization request's own parameters).
pub async fn login(State(pd): State<Arc<Pipedrive>>, body: String) -> Response {
    let mut pairs: Vec<(String, String)> = match serde_urlencoded::from_str(&body) {
        Ok(pairs) => pairs,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("Failed to deserialize form body: {e}")).into_response(),
    };
    if !pairs.iter().any(|(k, v)| k == "scope" && names_a_scope(Some(v))) {
        let client_id = pairs.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.as_str()).unwrap_or_default();
        let registered = pd.registered_scopes(client_id).join(" ");
        pairs.retain(|(k, _)| k != "scope");
        pairs.push(("scope".into(), registered));
    }
    let form = serde_urlencoded::to_string(&pairs)
        .map_err(|e| e.to_string())
        .and_then(|encoded| serde_urlencoded::from_str::<LoginForm>(&encoded).map_err(|e| e.to_string()));
    match form {
        Ok(form) => oauth::login(State(pd.oauth.clone()), Form(form)).await,
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("Failed to deserialize form body: {e}")).into_response(),
    }
}

//! What happens to every request before it reaches a page or a server function: the same-origin
//! check for anything that changes state, the session lookup, and sending signed-out visitors to
//! the login (or first-run) page.

use app::api::ssr::{CurrentSession, SESSION_COOKIE};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use engine::secret::Token;
use http::{header, Method, StatusCode};

use crate::startup::AppState;

/// Paths served to anyone as they are: assets, server functions (which check the session
/// themselves), invitation links, the health check and the metrics (counts only, for scrapers).
fn is_open(path: &str) -> bool {
    const PREFIXES: [&str; 3] = ["/pkg/", "/api/", "/invite/"];
    ["/healthz", "/metrics", "/favicon.svg"].contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Paths anyone may request without a session: the open ones and the sign-in pages.
fn is_public(path: &str) -> bool {
    is_open(path) || ["/login", "/setup"].contains(&path)
}

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !is_safe_method(request.method()) {
        if let Err(reason) = check_same_origin(&request, &state.public_origin) {
            tracing::warn!(method = %request.method(), reason, "cross-site request refused");
            return (StatusCode::FORBIDDEN, format!("Request refused: {reason}.")).into_response();
        }
    }

    let token = session_token(&request);
    let session = match current_session(&state, token).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if request.method() == Method::GET {
        let uri = request.uri().clone();
        if let Some(redirect) = page_redirect(&state, &uri, session.user.is_some()).await {
            return redirect;
        }
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// State-changing requests must come from Tandem's own pages: the `Origin` header (which browsers
/// send with every POST) must name this host or the configured public URL.
fn check_same_origin(request: &Request, public_origin: &str) -> Result<(), &'static str> {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => {
            let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
            if origin == public_origin || (origin_host.is_some() && origin_host == host) {
                Ok(())
            } else {
                Err("it came from another site")
            }
        }
        None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("same-origin") => Ok(()),
            _ => Err("it did not say which site it came from (no Origin header)"),
        },
    }
}

fn session_token(request: &Request) -> Option<Token> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| Token::from_presented(value))
}

async fn current_session(state: &AppState, token: Option<Token>) -> Result<CurrentSession, Response> {
    let Some(token) = token else {
        return Ok(CurrentSession::default());
    };
    match state.context.accounts.session_user(&token).await {
        Ok(user) => Ok(CurrentSession { user, token: Some(token) }),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(unavailable())
        }
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "Tandem's database is not answering. Try again in a moment.").into_response()
}

/// Where a GET for a page should go instead, if anywhere.
async fn page_redirect(state: &AppState, uri: &http::Uri, signed_in: bool) -> Option<Response> {
    let path = uri.path();
    if matches!(path, "/" | "/settings" | "/settings/") {
        return Some(Redirect::to(if signed_in { app::HOME_PATH } else { "/login" }).into_response());
    }
    if is_open(path) {
        return None;
    }
    let needs_setup = match state.context.accounts.needs_setup().await {
        Ok(needs) => needs,
        Err(e) => {
            tracing::error!(error = %e, "could not count users");
            return Some(unavailable());
        }
    };
    match (path, needs_setup, signed_in) {
        ("/setup", true, _) => None,
        (_, true, _) if !is_public(path) || path == "/login" => Some(Redirect::to("/setup").into_response()),
        ("/setup", false, _) | ("/login", false, true) => {
            Some(Redirect::to(if signed_in { app::HOME_PATH } else { "/login" }).into_response())
        }
        (_, false, false) if !is_public(path) => {
            let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or(path);
            Some(Redirect::to(&format!("/login?next={}", percent_encode(target))).into_response())
        }
        _ => None,
    }
}

/// Encodes everything but unreserved characters and `/`, for a path inside a query string.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_next_paths() {
        assert_eq!(percent_encode("/settings/users?tab=a&b=c d"), "/settings/users%3Ftab%3Da%26b%3Dc%20d");
    }

    #[test]
    fn public_paths() {
        for p in ["/login", "/setup", "/pkg/tandem.js", "/api/login", "/invite/abc", "/healthz"] {
            assert!(is_public(p), "{p}");
        }
        for p in ["/settings/users", "/marketplace", "/loginx"] {
            assert!(!is_public(p), "{p}");
        }
    }
}

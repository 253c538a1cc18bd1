//! What happens to every request before it reaches a page or a server function: the same-origin
//! check for anything that changes state, the session lookup, and sending signed-out visitors to
//! the login (or first-run) page.

use std::net::{IpAddr, SocketAddr};

use app::api::ssr::{session_cookie, ClientAddress, CurrentSession};
use axum::extract::{ConnectInfo, Request, State};
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
    let host = request_host(&request);
    // The health check answers whatever name a load balancer or orchestrator uses.
    if request.uri().path() != "/healthz" && !host.is_some_and(|host| state.own_hosts.accepts(host)) {
        tracing::warn!(host = ?host, "request for another host refused");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!("Request refused: Tandem answers at {} and this request named another host.", state.context.public_url),
        )
            .into_response();
    }
    if !is_safe_method(request.method()) {
        if let Err(reason) = check_same_origin(&request, &state.public_origin) {
            tracing::warn!(method = %request.method(), reason, "cross-site request refused");
            return (StatusCode::FORBIDDEN, format!("Request refused: {reason}.")).into_response();
        }
    }

    let token = session_token(&request, session_cookie(state.context.secure_cookies));
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
    if let Some(address) = client_address(&request, state.trust_forwarded_for) {
        request.extensions_mut().insert(ClientAddress(address));
    }
    next.run(request).await
}

/// The names a browser may use to reach Tandem: the public URL's host, `localhost`, any IP
/// address and the names `TANDEM_ALLOWED_HOSTS` adds (a reverse proxy's or a container's service
/// name). A page of another site whose name was made to point at Tandem's address (DNS
/// rebinding) sends its own name as `Host`, and is refused: its scripts would otherwise be
/// same-origin with everything they ask. An address typed as such cannot be rebound.
#[derive(Clone, Debug)]
pub struct OwnHosts {
    names: Vec<String>,
}

impl OwnHosts {
    pub fn new(public_url: &str, allowed: &[String]) -> OwnHosts {
        let authority = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
        let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let mut names = vec![host_name(authority), "localhost".to_string()];
        names.extend(allowed.iter().map(|name| host_name(name.trim())));
        names.retain(|name| !name.is_empty());
        OwnHosts { names }
    }

    /// Whether a `Host` header (name and optional port) names Tandem.
    pub fn accepts(&self, host: &str) -> bool {
        let name = host_name(host);
        if name.is_empty() {
            return false;
        }
        self.names.contains(&name)
            || match name.strip_prefix('[').and_then(|v6| v6.strip_suffix(']')) {
                Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                None => name.parse::<std::net::Ipv4Addr>().is_ok(),
            }
    }
}

/// A `Host`'s name without its port, in lower case and without a trailing dot; IPv6 addresses
/// keep their brackets. Empty when it is malformed.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => &host[..v6.len() + 2],
            _ => return String::new(),
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return String::new(),
            None => host,
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// The host a request names: its `Host` header, or the authority of an absolute request URI
/// (HTTP/2).
fn request_host(request: &Request) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(host) => host.to_str().ok(),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

/// Where the request came from: the peer, or behind a trusted reverse proxy the address it
/// appended last to `X-Forwarded-For` (earlier entries are the client's own claims).
fn client_address(request: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).next_back())
        .flatten()
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded.or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip()))
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// State-changing requests must come from Tandem's own pages: the `Origin` header (which browsers
/// send with every POST) must name the configured public URL or the host the request was sent to
/// (which [`OwnHosts`] has checked is Tandem's own).
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

fn session_token(request: &Request, cookie: &str) -> Option<Token> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == cookie && !value.is_empty())
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
    fn own_hosts_are_the_public_name_localhost_and_addresses() {
        let hosts = OwnHosts::new("https://Tandem.Example.com/base", &["tandem".to_string()]);
        for ok in [
            "tandem.example.com",
            "TANDEM.example.com:443",
            "tandem.example.com.",
            "localhost:3000",
            "127.0.0.1:3000",
            "10.1.2.3",
            "[::1]:3000",
            "[::1]",
            "tandem:3000",
        ] {
            assert!(hosts.accepts(ok), "{ok}");
        }
        for refused in [
            "evil.test:3000",
            "tandem.example.com.evil.test",
            "",
            ":3000",
            "localhost.evil.test",
            "[::1",
            "[::1]x",
            "[evil.test]",
            "1.2.3.4:",
            "1.2.3.4:x",
            "tandem.example.com:80:80",
        ] {
            assert!(!hosts.accepts(refused), "{refused}");
        }
        assert!(OwnHosts::new("http://127.0.0.1:3000", &[]).accepts("127.0.0.1:3000"));
        assert!(!OwnHosts::new("http://127.0.0.1:3000", &[]).accepts("evil.test:3000"));
        assert!(OwnHosts::new("http://user@crm.example:8080", &[]).accepts("crm.example"));
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

//! Every server-rendered page answers or fails within a bounded time.
//!
//! A page is rendered once all its data has loaded. Should a render ever wait forever (a data
//! source that never answers, a bug in the rendering library), the admin behind it would see a
//! spinner for good and the connection would stay open. Past the deadline the render is dropped,
//! the browser gets a 503 page that says so, and the log names the route; a body that stops
//! mid-way past the deadline is cut off, which browsers report as a failed load.

use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use futures_util::StreamExt;
use http::{header, Method, StatusCode};
use tokio::time::Instant;

/// How long a page may take, from the request to the last byte of its answer.
#[derive(Clone, Debug)]
pub struct PageDeadline {
    pub limit: Duration,
    /// The console's style sheet (its name changes with each release build), for the answer
    /// past the deadline.
    pub stylesheet: std::sync::Arc<str>,
}

/// Whether a request asks for a page (rendered by the console), as opposed to a server function,
/// an asset, an export, a provider's webhook or OAuth callback, or the health and metrics probes.
fn is_page(method: &Method, path: &str) -> bool {
    const NOT_PAGES: [&str; 5] = ["/api/", "/pkg/", "/webhooks/", "/oauth/", "/apps/"];
    matches!(*method, Method::GET | Method::HEAD)
        && !NOT_PAGES.iter().any(|p| path.starts_with(p))
        && !path.contains("/export/")
        && !["/healthz", "/metrics", "/favicon.svg"].contains(&path)
}

/// Outermost layer: bounds every page from the request (the session lookup included) to the
/// last byte of its answer.
pub async fn pages(State(PageDeadline { limit, stylesheet }): State<PageDeadline>, request: Request, next: Next) -> Response {
    if !is_page(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let path = loggable(request.uri().path());
    let deadline = Instant::now() + limit;
    let response = match tokio::time::timeout_at(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(route = %path, waited_ms = limit.as_millis() as u64, "page render stalled: answered 503");
            return stalled_page(&stylesheet);
        }
    };
    let is_html = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from_stream(body_until(body, deadline, path)))
}

/// The body's chunks until the deadline; past it, an error that ends the response unfinished.
fn body_until(body: Body, deadline: Instant, path: String) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send {
    let chunks = body.into_data_stream();
    let expired = Box::pin(tokio::time::sleep_until(deadline));
    // Fused: an unfolded stream panics when asked again past its end.
    let body = futures_util::stream::unfold(Some((chunks, expired)), move |state| {
        let path = path.clone();
        async move {
            let (mut chunks, mut expired) = state?;
            tokio::select! {
                chunk = chunks.next() => chunk.map(|c| (c, Some((chunks, expired)))),
                _ = &mut expired => {
                    tracing::error!(route = %path, "page response stalled mid-body: connection closed");
                    let stalled = std::io::Error::new(std::io::ErrorKind::TimedOut, "the page did not finish in time");
                    Some((Err(axum::Error::new(stalled)), None))
                }
            }
        }
    });
    body.fuse()
}

/// A page's path as the log may show it: an invitation's token is a secret.
fn loggable(path: &str) -> String {
    match path.strip_prefix("/invite/") {
        Some(_) => "/invite/{token}".to_string(),
        None => path.to_string(),
    }
}

fn stalled_page(stylesheet: &str) -> Response {
    let page = Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page timed out | Tandem</title>\
         <link rel=\"stylesheet\" href=\"{stylesheet}\"></head><body><main class=\"app-main\">\
         <div class=\"alert alert-error\" role=\"alert\"><h1>This page took too long to load</h1>\
         <p>Tandem stopped waiting for it. <a href=\"\">Try again</a>; if it keeps happening, \
         the server's log names the page.</p></div></main></body></html>",
    ));
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("5"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_what_the_console_renders() {
        for path in ["/", "/login", "/settings/users", "/marketplace/pipedrive", "/settings/integrations/syncs/s1/records/r1"] {
            assert!(is_page(&Method::GET, path), "{path}");
        }
        for path in ["/api/login", "/pkg/tandem.wasm", "/webhooks/hubspot", "/oauth/callback/hubspot", "/healthz", "/metrics"] {
            assert!(!is_page(&Method::GET, path), "{path}");
        }
        assert!(!is_page(&Method::GET, "/settings/integrations/syncs/s1/export/records.csv"));
        assert!(!is_page(&Method::POST, "/settings/users"));
    }

    #[test]
    fn invitation_tokens_stay_out_of_the_log() {
        assert_eq!(loggable("/invite/s3cr3t-token"), "/invite/{token}");
        assert_eq!(loggable("/settings/users"), "/settings/users");
    }
}

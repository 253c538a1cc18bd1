//! How long browsers keep what Tandem serves. The release build names the console's script,
//! bundle and style sheet after their content (`tandem.<hash>.wasm`), so a browser keeps them for
//! a year without asking again and a new version is a new name; files named as they are (a
//! development build's, the app logos) are kept an hour; pages are never stored, as they hold
//! what one signed-in admin may see.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use http::HeaderValue;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const AN_HOUR: HeaderValue = HeaderValue::from_static("public, max-age=3600");
const NEVER: HeaderValue = HeaderValue::from_static("no-store");

/// Whether a file of the site's `pkg` folder carries its content's hash in its name, as
/// cargo-leptos names them: `tandem.<22 characters of base64url>.wasm`.
fn is_hashed(file: &str) -> bool {
    let mut parts = file.split('.');
    let (Some(_name), Some(hash), Some(_extension)) = (parts.next(), parts.next(), parts.next()) else { return false };
    hash.len() == 22 && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Cache-Control` for a successful answer to `path` of this content type; `None` leaves
/// the answer as it is (server functions, exports and the probes say their own).
fn cache_control(path: &str, content_type: Option<&str>) -> Option<HeaderValue> {
    if let Some(file) = path.strip_prefix("/pkg/") {
        return Some(if is_hashed(file) { IMMUTABLE } else { AN_HOUR });
    }
    if content_type.is_some_and(|t| t.starts_with("text/html")) {
        return Some(NEVER);
    }
    let asset = ["/apps/", "/favicon"].iter().any(|p| path.starts_with(p));
    asset.then_some(AN_HOUR)
}

pub async fn headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_success() || status == http::StatusCode::NOT_MODIFIED) || response.headers().contains_key(CACHE_CONTROL) {
        return response;
    }
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(value) = cache_control(&path, content_type) {
        let shared = value != NEVER;
        response.headers_mut().insert(CACHE_CONTROL, value);
        // A file sent compressed as the browser accepts (a precompressed one says nothing of
        // it): a shared cache must not give its brotli copy to a browser that asked for gzip.
        if shared && !response.headers().contains_key(VARY) {
            response.headers_mut().insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_files_are_kept_a_year_other_files_an_hour_and_pages_never() {
        assert!(is_hashed("tandem.kGM1RwrYpFj3Ksi0KJFWlA.wasm"));
        assert!(is_hashed("tandem.Ab-_0123456789abcdefgh.js"));
        assert!(!is_hashed("tandem.wasm"), "a development build's names");
        assert!(!is_hashed("tandem.short.js"));
        assert!(!is_hashed("tandem.kGM1RwrYpFj3Ksi0KJFW/A.wasm"));
        let at = |path, content_type| cache_control(path, content_type).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            at("/pkg/tandem.kGM1RwrYpFj3Ksi0KJFWlA.wasm", Some("application/wasm")).as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(at("/pkg/tandem.js", Some("text/javascript")).as_deref(), Some("public, max-age=3600"));
        assert_eq!(at("/apps/zoho.svg", Some("image/svg+xml")).as_deref(), Some("public, max-age=3600"));
        assert_eq!(at("/settings/integrations/connected-apps", Some("text/html; charset=utf-8")).as_deref(), Some("no-store"));
        assert_eq!(at("/api/list_apps", Some("application/json")), None);
    }
}

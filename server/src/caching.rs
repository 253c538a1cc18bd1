//! How long browsers keep what Tandem serves. The release build names the console's script,
//! bundle and style sheet after their content (`tandem.<hash>.wasm`), so a browser keeps them for
//! a year without asking again and a new version is a new name; files named as they are (a
//! development build's, the app logos) are kept an hour; pages are never stored, as they hold
//! what one signed-in admin may see.

use std::path::Path;

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
    if response.headers().contains_key(CACHE_CONTROL) {
        return response;
    }
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let status = response.status();
    let kept = status.is_success() || status == http::StatusCode::NOT_MODIFIED;
    let value = match cache_control(&path, content_type) {
        // A page is never stored, whatever its status (a 404 or 403 in a signed-in admin's frame).
        Some(value) if kept || value == NEVER => value,
        _ => return response,
    };
    let shared = value != NEVER;
    response.headers_mut().insert(CACHE_CONTROL, value);
    // A file sent compressed as the browser accepts (a precompressed one says nothing of it): a
    // shared cache must not give its brotli copy to a browser that asked for gzip.
    let varies =
        response.headers().get_all(VARY).iter().any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
    if shared && !varies {
        response.headers_mut().append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// The console's script, bundle and style sheet as the build left them in the site's `pkg`
/// folder: named after their content when cargo-leptos (`hash-files`) wrote their hashes to
/// `hash.txt` beside the binary, where the pages read them from.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteFiles {
    pub hashed: bool,
    /// The style sheet's path, for pages the console does not render (the stalled-page answer).
    pub stylesheet: String,
}

impl SiteFiles {
    pub fn find(site_root: &Path, output_name: &str) -> SiteFiles {
        let hash_file = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("hash.txt")));
        let hashes = hash_file.as_deref().and_then(|f| std::fs::read_to_string(f).ok());
        Self::of(site_root, output_name, hashes.as_deref())
    }

    /// The files `hashes` (`hash.txt`'s text) names when they are all in the site, the files
    /// named as they are otherwise: a build that left the site and `hash.txt` apart (a
    /// development build over a release one, a binary copied without it) is said in the log,
    /// rather than pages that never load their script.
    fn of(site_root: &Path, output_name: &str, hashes: Option<&str>) -> SiteFiles {
        let pkg = site_root.join("pkg");
        let hash_of = |kind: &str| {
            hashes?.lines().find_map(|line| line.split_once(':').filter(|(k, _)| k.trim() == kind).map(|(_, hash)| hash.trim().to_string()))
        };
        let named = |hash: Option<String>, extension: &str| match hash {
            Some(hash) => format!("{output_name}.{hash}.{extension}"),
            None => format!("{output_name}.{extension}"),
        };
        if hashes.is_some() {
            let files: Vec<String> = ["js", "wasm", "css"].iter().map(|kind| named(hash_of(kind), kind)).collect();
            if files.iter().all(|f| pkg.join(f).is_file()) {
                return SiteFiles { hashed: true, stylesheet: format!("/pkg/{}", files[2]) };
            }
            tracing::error!(
                site = %pkg.display(),
                "hash.txt beside the binary names files the site does not have: rebuild with `make build` (pages fall back to the files named as they are)"
            );
        }
        if !pkg.join(format!("{output_name}.wasm")).is_file() && hashes.is_none() {
            tracing::warn!(site = %pkg.display(), "no console bundle in the site folder: pages will not become interactive until `make build`");
        }
        SiteFiles { hashed: false, stylesheet: format!("/pkg/{output_name}.css") }
    }
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

    #[test]
    fn the_site_files_are_the_hashed_ones_only_when_the_site_has_them() {
        let site = std::env::temp_dir().join(format!("tandem-site-files-{}", std::process::id()));
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        let hashes = "js: AAAAAAAAAAAAAAAAAAAAAA\nwasm: BBBBBBBBBBBBBBBBBBBBBB\ncss: CCCCCCCCCCCCCCCCCCCCCC\n";
        for file in ["tandem.js", "tandem.wasm", "tandem.css", "tandem.AAAAAAAAAAAAAAAAAAAAAA.js", "tandem.BBBBBBBBBBBBBBBBBBBBBB.wasm"] {
            std::fs::write(site.join("pkg").join(file), "x").unwrap();
        }
        let plain = SiteFiles { hashed: false, stylesheet: "/pkg/tandem.css".into() };
        assert_eq!(SiteFiles::of(&site, "tandem", Some(hashes)), plain, "the hashed style sheet is missing: a stale hash.txt");
        assert_eq!(SiteFiles::of(&site, "tandem", None), plain);
        std::fs::write(site.join("pkg/tandem.CCCCCCCCCCCCCCCCCCCCCC.css"), "x").unwrap();
        let hashed = SiteFiles { hashed: true, stylesheet: "/pkg/tandem.CCCCCCCCCCCCCCCCCCCCCC.css".into() };
        assert_eq!(SiteFiles::of(&site, "tandem", Some(hashes)), hashed);
        let _ = std::fs::remove_dir_all(&site);
    }
}

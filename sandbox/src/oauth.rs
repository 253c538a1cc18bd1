//! The OAuth 2.0 authorization server both sandboxes share: a login page for the sandbox account's
//! user, a consent page listing the requested scopes with **Allow** and **Deny**, single-use codes
//! (with PKCE when the client sends a challenge), access tokens with a lifetime and refresh tokens.
//! Each provider module puts its own token endpoint format on top.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::now_ms;

/// An app registered with the sandbox (Tandem, in the demo).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// The sandbox account's user, who logs in on the authorization page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxUser {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// What a token lets its holder do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub user_email: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Code {
    grant: Grant,
    redirect_uri: String,
    code_challenge: Option<String>,
    expires_at: i64,
    /// Zoho's `access_type` of the authorization request (`offline` asks for a refresh token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_type: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessToken {
    pub grant: Grant,
    pub expires_at: i64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub optional_scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_type: Option<String>,
    /// Zoho: `offline` for a refresh token with the access token, `online` (default) without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_type: Option<String>,
    /// Zoho: `consent` shows the consent page again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// Everything the server remembers; persisted with the sandbox's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OAuthData {
    codes: HashMap<String, Code>,
    pending: HashMap<String, (AuthorizeParams, i64)>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, Grant>,
}

/// Why a token request was refused (mapped to each provider's error body).
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    InvalidClient,
    InvalidGrant(&'static str),
    InvalidRequest(&'static str),
    UnsupportedGrantType,
}

/// A token pair just issued.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub grant: Grant,
    /// The `access_type` the authorization request asked for (Zoho), when a code was exchanged.
    pub access_type: Option<String>,
}

pub struct OAuthConfig {
    /// "HubSpot" or "Pipedrive": shown on the pages with "(Sandbox)".
    pub provider: &'static str,
    pub clients: Vec<OAuthClient>,
    pub user: SandboxUser,
    pub access_ttl_secs: i64,
    /// A refresh hands out a new refresh token and retires the old one (Pipedrive).
    pub rotate_refresh_tokens: bool,
    /// Scopes every grant carries even when not requested (e.g. HubSpot's `oauth`).
    pub implied_scopes: Vec<String>,
    pub token_prefix: &'static str,
}

/// Where the authorization pages post their forms, the words on their buttons, and what the
/// redirect back to the app carries besides `code` and `state`. The default is what HubSpot's and
/// Pipedrive's sandboxes show: forms under `/oauth/authorize/`, **Allow** and **Deny**.
#[derive(Clone, Debug)]
pub struct OAuthPages {
    pub login_path: &'static str,
    pub decision_path: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
    /// Added to every redirect back (Zoho: `location`, `accounts-server`).
    pub redirect_extras: Vec<(String, String)>,
}

impl Default for OAuthPages {
    fn default() -> Self {
        OAuthPages {
            login_path: "/oauth/authorize/login",
            decision_path: "/oauth/authorize/decision",
            allow: "Allow",
            deny: "Deny",
            redirect_extras: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct OAuthServer {
    config: Arc<OAuthConfig>,
    pages: Arc<OAuthPages>,
    data: Arc<Mutex<OAuthData>>,
    dirty: Arc<std::sync::atomic::AtomicBool>,
    stats: Arc<Mutex<GrantStats>>,
    /// The accounts the signed-in user may choose on the consent page (id, name), when the
    /// sandbox serves more than one (`crate::accounts`).
    choices: Arc<Mutex<Vec<(String, String)>>>,
}

/// How many token requests of each grant the server answered (control API: tests check that a
/// client refreshes once, not once per caller).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantStats {
    pub authorization_code: u64,
    pub refresh_token: u64,
    pub refused: u64,
    pub revoked: u64,
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl OAuthServer {
    pub fn new(config: OAuthConfig, data: OAuthData) -> OAuthServer {
        OAuthServer {
            config: Arc::new(config),
            pages: Arc::new(OAuthPages::default()),
            data: Arc::new(Mutex::new(data)),
            dirty: Arc::default(),
            stats: Arc::default(),
            choices: Arc::default(),
        }
    }

    /// The accounts offered on the consent page; with fewer than two it offers none.
    pub fn set_choices(&self, choices: Vec<(String, String)>) {
        *self.choices.lock().unwrap_or_else(|p| p.into_inner()) = choices;
    }

    /// Whether `value` is a code, a pending authorization, or an access or refresh token this
    /// server issued (expired ones included): which account a request belongs to.
    pub fn knows(&self, value: &str) -> bool {
        self.peek(|d| {
            d.codes.contains_key(value)
                || d.pending.contains_key(value)
                || d.access_tokens.contains_key(value)
                || d.refresh_tokens.contains_key(value)
        })
    }

    /// Hands an authorization waiting for its decision to the server of the account the user
    /// chose on the consent page.
    pub fn hand_pending(&self, pending: &str, to: &OAuthServer) -> bool {
        match self.with(|d| d.pending.remove(pending)) {
            Some(entry) => {
                to.with(|d| d.pending.insert(pending.to_string(), entry));
                true
            }
            None => false,
        }
    }

    /// The same server with other form paths, button words and redirect extras.
    pub fn with_pages(mut self, pages: OAuthPages) -> OAuthServer {
        self.pages = Arc::new(pages);
        self
    }

    pub fn snapshot(&self) -> OAuthData {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }

    pub fn replace(&self, data: OAuthData) {
        if let Ok(mut d) = self.data.lock() {
            *d = data;
        }
    }

    /// True once after anything changed (for the snapshot writer).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    fn with<T>(&self, f: impl FnOnce(&mut OAuthData) -> T) -> T {
        let mut guard = self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Marked once the lock is held, so a snapshot cannot clear the flag before the change.
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        f(&mut guard)
    }

    /// Reads without marking the state changed (every API request checks its token: that must
    /// not make the sandbox rewrite its snapshot).
    fn peek<T>(&self, f: impl FnOnce(&OAuthData) -> T) -> T {
        let guard = self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }

    pub fn client(&self, client_id: &str) -> Option<&OAuthClient> {
        self.config.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Checks a client's credentials.
    pub fn authenticate_client(&self, client_id: &str, client_secret: &str) -> Result<(), TokenError> {
        match self.client(client_id) {
            Some(c) if c.client_secret == client_secret => Ok(()),
            _ => Err(TokenError::InvalidClient),
        }
    }

    /// The grant behind a bearer token: `Err(true)` when it expired, `Err(false)` when unknown.
    pub fn access(&self, token: &str) -> Result<AccessToken, bool> {
        let now = now_ms();
        self.peek(|d| match d.access_tokens.get(token) {
            Some(t) if t.expires_at > now => Ok(t.clone()),
            Some(_) => Err(true),
            None => Err(false),
        })
    }

    /// Exchanges an authorization code.
    pub fn exchange_code(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<Issued, TokenError> {
        let result = self.exchange_code_inner(client_id, redirect_uri, code, code_verifier);
        self.count(|s| if result.is_ok() { s.authorization_code += 1 } else { s.refused += 1 });
        result
    }

    fn exchange_code_inner(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<Issued, TokenError> {
        // The redirect URI of the authorization request must come again (RFC 6749 §4.1.3): a
        // request without it is malformed, and the code stays usable.
        let redirect_uri = redirect_uri.ok_or(TokenError::InvalidRequest("missing redirect_uri"))?;
        let now = now_ms();
        let code = self.with(|d| d.codes.remove(code)).ok_or(TokenError::InvalidGrant("missing or unknown auth code"))?;
        if code.expires_at <= now {
            return Err(TokenError::InvalidGrant("auth code expired"));
        }
        if code.grant.client_id != client_id {
            return Err(TokenError::InvalidGrant("auth code was issued to another client"));
        }
        if redirect_uri != code.redirect_uri {
            return Err(TokenError::InvalidGrant("redirect_uri does not match the authorization request"));
        }
        if let Some(challenge) = &code.code_challenge {
            let verifier = code_verifier.ok_or(TokenError::InvalidGrant("code_verifier is required"))?;
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if &computed != challenge {
                return Err(TokenError::InvalidGrant("code_verifier does not match the code_challenge"));
            }
        }
        let mut issued = self.issue(code.grant, None);
        issued.access_type = code.access_type;
        Ok(issued)
    }

    /// Uses a refresh token (rotating it when the provider does).
    pub fn refresh(&self, client_id: &str, refresh_token: &str) -> Result<Issued, TokenError> {
        let result = self.refresh_inner(client_id, refresh_token);
        self.count(|s| if result.is_ok() { s.refresh_token += 1 } else { s.refused += 1 });
        result
    }

    fn refresh_inner(&self, client_id: &str, refresh_token: &str) -> Result<Issued, TokenError> {
        let grant = self
            .with(|d| d.refresh_tokens.get(refresh_token).cloned())
            .ok_or(TokenError::InvalidGrant("missing or unknown refresh token"))?;
        if grant.client_id != client_id {
            return Err(TokenError::InvalidGrant("refresh token was issued to another client"));
        }
        let keep = (!self.config.rotate_refresh_tokens).then(|| refresh_token.to_string());
        if self.config.rotate_refresh_tokens {
            self.with(|d| d.refresh_tokens.remove(refresh_token));
        }
        Ok(self.issue(grant, keep))
    }

    /// Issues tokens without the browser flow (control API: tests, demos, benchmarks).
    pub fn mint(&self, client_id: &str, scopes: Vec<String>) -> Option<Issued> {
        self.client(client_id)?;
        let mut all = self.config.implied_scopes.clone();
        all.extend(scopes.into_iter().filter(|s| !self.config.implied_scopes.contains(s)));
        let grant = Grant { client_id: client_id.to_string(), scopes: all, user_email: self.config.user.email.clone() };
        Some(self.issue(grant, None))
    }

    pub fn revoke_refresh(&self, refresh_token: &str) -> bool {
        let revoked = self.with(|d| d.refresh_tokens.remove(refresh_token).is_some());
        if revoked {
            self.count(|s| s.revoked += 1);
        }
        revoked
    }

    /// Drops a refresh token the app was never given (Zoho issues none for `access_type=online`).
    pub fn forget_refresh(&self, refresh_token: &str) {
        self.with(|d| d.refresh_tokens.remove(refresh_token));
    }

    /// Revokes every refresh token and access token, as when the account's admin removes the app
    /// on the provider's side: the next refresh is answered `invalid_grant`.
    pub fn revoke_all(&self) -> usize {
        self.with(|d| {
            let n = d.refresh_tokens.len();
            d.refresh_tokens.clear();
            d.access_tokens.clear();
            n
        })
    }

    pub fn stats(&self) -> GrantStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut GrantStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn refresh_grant(&self, refresh_token: &str) -> Option<Grant> {
        self.peek(|d| d.refresh_tokens.get(refresh_token).cloned())
    }

    /// Makes every access token of a client expire now (for tests of expiry mid-run).
    pub fn expire_access_tokens(&self) -> usize {
        let now = now_ms();
        self.with(|d| {
            d.access_tokens.values_mut().for_each(|t| t.expires_at = now);
            d.access_tokens.len()
        })
    }

    fn issue(&self, grant: Grant, keep_refresh: Option<String>) -> Issued {
        let access_token = random_token(self.config.token_prefix);
        let refresh_token = keep_refresh.unwrap_or_else(|| random_token(""));
        let expires_in = self.config.access_ttl_secs;
        self.with(|d| {
            d.access_tokens.insert(access_token.clone(), AccessToken { grant: grant.clone(), expires_at: now_ms() + expires_in * 1000 });
            d.refresh_tokens.insert(refresh_token.clone(), grant.clone());
        });
        Issued { access_token, refresh_token, expires_in, grant, access_type: None }
    }

    /// Validates the authorization request; a bad client or redirect URI is answered on the page,
    /// never by redirecting to an unregistered address.
    fn check_request(&self, params: &AuthorizeParams) -> Result<(), String> {
        let client_id = params.client_id.as_deref().unwrap_or_default();
        let client = self.client(client_id).ok_or_else(|| format!("Unknown client_id {client_id:?}."))?;
        let redirect = params.redirect_uri.as_deref().unwrap_or_default();
        if !client.redirect_uris.iter().any(|r| r == redirect) {
            return Err(format!("The redirect_uri {redirect:?} does not match the app's registered redirect URLs."));
        }
        if params.code_challenge.is_some() && params.code_challenge_method.as_deref().unwrap_or("plain") != "S256" {
            return Err("Only code_challenge_method=S256 is supported.".into());
        }
        Ok(())
    }

    fn scopes_of(&self, params: &AuthorizeParams) -> Vec<String> {
        let mut scopes: Vec<String> = self.config.implied_scopes.clone();
        for list in [&params.scope, &params.optional_scope].into_iter().flatten() {
            for s in list.split([' ', ',', '+']).filter(|s| !s.is_empty()) {
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        scopes
    }
}

// ---- The pages ----

fn page(provider: &str, title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} | {provider} (Sandbox)</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;background:#f5f8fa;color:#33475b;margin:0}}
.banner{{background:#7a4a00;color:#fff;text-align:center;padding:6px;font-size:13px}}
main{{max-width:440px;margin:48px auto;background:#fff;border:1px solid #dfe3eb;border-radius:4px;padding:32px;box-shadow:0 1px 5px rgba(45,62,80,.12)}}
h1{{font-size:22px;color:#213343;margin:0 0 16px}} label{{display:block;font-weight:600;margin:12px 0 4px}}
input[type=email],input[type=password],select{{width:100%;box-sizing:border-box;padding:9px 12px;border:1px solid #cbd6e2;border-radius:3px;font:inherit}}
button{{font:inherit;font-weight:600;padding:9px 20px;border-radius:3px;border:1px solid #c8441f;cursor:pointer;margin-top:16px}}
.primary{{background:#c8441f;color:#fff}} .secondary{{background:#fff;color:#c8441f}}
.error{{background:#fde8e9;border:1px solid #f2545b;color:#8a1c21;padding:10px 12px;border-radius:3px}}
.hint{{color:#516f90;font-size:13px}} ul{{padding-left:20px}} .actions{{display:flex;gap:12px}}
</style></head><body><div class="banner">{provider} (Sandbox): a local emulator for demos and tests</div><main>{body}</main></body></html>"#
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn hidden_fields(params: &AuthorizeParams) -> String {
    let fields = [
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("scope", &params.scope),
        ("optional_scope", &params.optional_scope),
        ("state", &params.state),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("response_type", &params.response_type),
        ("access_type", &params.access_type),
        ("prompt", &params.prompt),
    ];
    fields
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape(v))))
        .collect()
}

fn login_page(server: &OAuthServer, params: &AuthorizeParams, error: Option<&str>) -> Html<String> {
    let provider = server.config.provider;
    let error = error.map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))).unwrap_or_default();
    page(
        provider,
        "Log in",
        &format!(
            r#"<h1>Log in to {provider} (Sandbox)</h1>{error}
<form method="post" action="{action}">{hidden}
<label for="email">Email</label><input id="email" name="email" type="email" value="{email}" required>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<p class="hint">Sandbox account: {email} / {password}</p>
<button class="primary" type="submit">Log in</button></form>"#,
            hidden = hidden_fields(params),
            action = server.pages.login_path,
            email = escape(&server.config.user.email),
            password = escape(&server.config.user.password),
        ),
    )
}

fn error_page(server: &OAuthServer, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(
            server.config.provider,
            "Authorization error",
            &format!(r#"<h1>This app can't be authorized</h1><p class="error" role="alert">{}</p>"#, escape(message)),
        ),
    )
        .into_response()
}

/// GET /oauth/authorize
pub async fn authorize(State(server): State<OAuthServer>, Query(params): Query<AuthorizeParams>) -> Response {
    match server.check_request(&params) {
        Err(message) => error_page(&server, &message),
        Ok(()) => login_page(&server, &params, None).into_response(),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// POST /oauth/authorize/login: the sandbox user logs in, then sees what the app asks for.
pub async fn login(State(server): State<OAuthServer>, Form(form): Form<LoginForm>) -> Response {
    if let Err(message) = server.check_request(&form.params) {
        return error_page(&server, &message);
    }
    let user = &server.config.user;
    if !form.email.trim().eq_ignore_ascii_case(&user.email) || form.password != user.password {
        return (
            StatusCode::UNAUTHORIZED,
            login_page(&server, &form.params, Some("That email and password don't match the sandbox account.")),
        )
            .into_response();
    }
    let pending = random_token("");
    let scopes = server.scopes_of(&form.params);
    server.with(|d| d.pending.insert(pending.clone(), (form.params.clone(), now_ms() + 10 * 60_000)));
    let provider = server.config.provider;
    let items: String = scopes.iter().map(|s| format!("<li><code>{}</code></li>", escape(s))).collect();
    let choices = server.choices.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // A user with several accounts chooses the one the app may reach (HubSpot's "Choose an
    // account", Pipedrive's company, Zoho's organization).
    let choose = if choices.len() > 1 {
        let options: String = choices
            .iter()
            .map(|(id, name)| format!(r#"<option value="{}">{} ({})</option>"#, escape(id), escape(name), escape(id)))
            .collect();
        format!(r#"<label for="account">Account</label><select id="account" name="account">{options}</select>"#)
    } else {
        String::new()
    };
    page(
        provider,
        "Allow access",
        &format!(
            r#"<h1>Allow access to your {provider} account?</h1>
<p>Signed in as <strong>{email}</strong>. The app <strong>{client}</strong> asks for:</p><ul>{items}</ul>
<form method="post" action="{action}"><input type="hidden" name="pending" value="{pending}">{choose}
<div class="actions"><button class="primary" type="submit" name="decision" value="{allow_value}">{allow}</button>
<button class="secondary" type="submit" name="decision" value="{deny_value}">{deny}</button></div></form>"#,
            action = server.pages.decision_path,
            allow = server.pages.allow,
            deny = server.pages.deny,
            allow_value = server.pages.allow.to_lowercase(),
            deny_value = server.pages.deny.to_lowercase(),
            email = escape(&user.email),
            client = escape(form.params.client_id.as_deref().unwrap_or_default()),
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct DecisionForm {
    pending: String,
    decision: String,
}

/// POST /oauth/authorize/decision: **Allow** redirects with a code, **Deny** with `access_denied`.
pub async fn decide(State(server): State<OAuthServer>, Form(form): Form<DecisionForm>) -> Response {
    let Some((params, expires_at)) = server.with(|d| d.pending.remove(&form.pending)) else {
        return error_page(&server, "This authorization request has expired or was already answered. Start again from the app.");
    };
    if expires_at <= now_ms() {
        return error_page(&server, "This authorization request has expired. Start again from the app.");
    }
    let redirect_uri = params.redirect_uri.clone().unwrap_or_default();
    let mut query: Vec<(String, String)> = Vec::new();
    if form.decision == server.pages.allow.to_lowercase() {
        let code = random_token("");
        let grant = Grant {
            client_id: params.client_id.clone().unwrap_or_default(),
            scopes: server.scopes_of(&params),
            user_email: server.config.user.email.clone(),
        };
        server.with(|d| {
            d.codes.insert(
                code.clone(),
                Code {
                    grant,
                    redirect_uri: redirect_uri.clone(),
                    code_challenge: params.code_challenge.clone(),
                    expires_at: now_ms() + 10 * 60_000,
                    access_type: params.access_type.clone(),
                },
            )
        });
        query.push(("code".into(), code));
    } else {
        query.push(("error".into(), "access_denied".into()));
        query.push(("error_description".into(), "The user denied access.".into()));
    }
    if let Some(state) = params.state {
        query.push(("state".into(), state));
    }
    query.extend(server.pages.redirect_extras.iter().cloned());
    let encoded: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{redirect_uri}{separator}{}", encoded.join("&"))).into_response()
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checking_a_token_does_not_mark_the_state_changed() {
        let client = OAuthClient { client_id: "c".into(), client_secret: "s".into(), redirect_uris: vec![] };
        let server = OAuthServer::new(
            OAuthConfig {
                provider: "Test",
                clients: vec![client],
                user: SandboxUser { email: "u@example.com".into(), password: "p".into(), name: "U".into() },
                access_ttl_secs: 60,
                rotate_refresh_tokens: false,
                implied_scopes: vec![],
                token_prefix: "t",
            },
            OAuthData::default(),
        );
        let issued = server.mint("c", vec!["deals:read".into()]).expect("minted");
        assert!(server.take_dirty(), "minting changes the state");
        assert!(server.access(&issued.access_token).is_ok());
        assert!(server.refresh_grant(&issued.refresh_token).is_some());
        assert!(!server.take_dirty(), "reading tokens does not");
    }

    /// A change waiting for the lock while the snapshot writer holds it is not lost: the flag is
    /// set once the lock is held, so a `take_dirty` in between cannot clear it early.
    #[test]
    fn a_change_waiting_for_the_lock_stays_marked() {
        let server = OAuthServer::new(
            OAuthConfig {
                provider: "Test",
                clients: vec![],
                user: SandboxUser { email: "u@example.com".into(), password: "p".into(), name: "U".into() },
                access_ttl_secs: 60,
                rotate_refresh_tokens: false,
                implied_scopes: vec![],
                token_prefix: "t",
            },
            OAuthData::default(),
        );
        let held = server.data.lock().unwrap();
        let changer = {
            let server = server.clone();
            std::thread::spawn(move || server.revoke_all())
        };
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < until && !server.take_dirty() {
            std::thread::yield_now();
        }
        drop(held);
        changer.join().unwrap();
        assert!(server.take_dirty(), "the change is still to be written");
    }
}

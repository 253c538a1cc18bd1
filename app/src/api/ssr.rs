//! Server-side plumbing shared by the server functions: the engine handle, the caller's session,
//! role checks, cookies and status codes.

use engine::accounts::{LoggedIn, SESSION_MAX_MS};
use engine::dashboards::{DashboardError, Dashboards};
use engine::secret::Token;
use engine::syncs::{SyncError, Syncs};
use engine::{AccountError, Accounts, ConnectionError, Connections};
use http::header::{HeaderValue, SET_COOKIE};
use http::StatusCode;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use model::{FieldError, Permission, SessionUser};

use crate::error::AppError;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "tandem_session";
/// Its name when Tandem is served over HTTPS: browsers then accept it only from a secure origin,
/// for the whole host and never set by a subdomain.
pub const SECURE_SESSION_COOKIE: &str = "__Host-tandem_session";

/// The session cookie's name for this server.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}
/// The cookie that marks a browser that has signed in before (login throttling lets it through
/// while strangers guess the same email). Sent only to the login.
pub const DEVICE_COOKIE: &str = "tandem_device";
/// Its name over HTTPS (`__Host-` needs `Path=/`; this cookie goes to the login only).
pub const SECURE_DEVICE_COOKIE: &str = "__Secure-tandem_device";
/// How long a browser stays known.
const DEVICE_MAX_AGE_SECS: i64 = 400 * 24 * 3600;

/// The address a request came from (set by the server for every request).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub std::net::IpAddr);

/// What server functions and pages reach through Leptos context.
#[derive(Clone)]
pub struct ServerContext {
    pub accounts: Accounts,
    pub connections: Connections,
    pub syncs: Syncs,
    pub dashboards: Dashboards,
    /// Where browsers reach Tandem, e.g. `http://127.0.0.1:3000` (links in invitations).
    pub public_url: String,
    /// Mark cookies `Secure` (when Tandem is served over HTTPS).
    pub secure_cookies: bool,
    /// The code the first-run setup asks for when it is not made from the machine Tandem runs
    /// on (printed in the log at start-up while there is no Super Admin).
    pub setup_code: String,
}

/// Whether `given` is this server's setup code (compared in constant time).
pub fn setup_code_matches(ctx: &ServerContext, given: &str) -> bool {
    let (a, b) = (ctx.setup_code.as_bytes(), given.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the session middleware found for this request.
#[derive(Clone, Debug, Default)]
pub struct CurrentSession {
    pub user: Option<SessionUser>,
    pub token: Option<Token>,
}

pub fn context() -> Result<ServerContext, AppError> {
    use_context::<ServerContext>().ok_or_else(|| {
        tracing::error!("ServerContext is missing from the Leptos context");
        fail(AppError::Internal)
    })
}

pub fn session() -> CurrentSession {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<CurrentSession>().cloned()).unwrap_or_default()
}

pub fn require_user() -> Result<SessionUser, AppError> {
    session().user.ok_or_else(|| fail(AppError::Unauthenticated))
}

/// The caller, when their role allows `permission`; else a 403 that says why.
pub fn require(permission: Permission) -> Result<SessionUser, AppError> {
    let user = require_user()?;
    if user.can(permission) {
        Ok(user)
    } else {
        tracing::warn!(user_id = %user.id, ?permission, "refused: missing permission");
        Err(fail(AppError::Forbidden(permission.denied_reason().to_string())))
    }
}

/// Sets the response status for `error` and hands it back.
pub fn fail(error: AppError) -> AppError {
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    }
    error
}

/// Maps an engine error to what the browser may see (logging the cause) and sets the status.
pub fn account_error(error: AccountError) -> AppError {
    let mapped = match error {
        AccountError::Invalid(errors) => AppError::Invalid(errors),
        AccountError::WrongCredentials => AppError::WrongCredentials(error.to_string()),
        AccountError::Throttled { retry_after_secs } => AppError::TooManyAttempts { message: error.to_string(), retry_after_secs },
        AccountError::Busy => AppError::TooManyAttempts { message: error.to_string(), retry_after_secs: 5 },
        AccountError::EmailTaken => AppError::Invalid(vec![FieldError::new("email", error.to_string())]),
        AccountError::UserNotFound | AccountError::InviteInvalid => AppError::NotFound(error.to_string()),
        AccountError::SetupDone | AccountError::LastSuperAdmin | AccountError::RemoveSelf => AppError::Conflict(error.to_string()),
        AccountError::Hash(_) | AccountError::Store(_) => {
            tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "account operation failed");
            AppError::Internal
        }
    };
    fail(mapped)
}

/// Maps a connections error to what the browser may see (logging the cause) and sets the status.
pub fn connection_error(error: ConnectionError) -> AppError {
    let mapped = match error {
        ConnectionError::UnknownApp(_) | ConnectionError::NotFound => AppError::NotFound(error.to_string()),
        ConnectionError::ChooseHubSpot => AppError::Invalid(vec![FieldError::new("hub", error.to_string())]),
        ConnectionError::Unavailable(_) | ConnectionError::NeedsReconnection(_) | ConnectionError::Uninstalled => {
            AppError::Conflict(error.to_string())
        }
        ConnectionError::Token { .. } => {
            tracing::warn!(error = %error, "provider token request failed");
            AppError::Provider(error.to_string())
        }
        ConnectionError::Store(_) => {
            tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "connection operation failed");
            AppError::Internal
        }
    };
    fail(mapped)
}

/// Maps a sync setup error to what the browser may see and sets the status.
pub fn sync_error(error: SyncError) -> AppError {
    match error {
        SyncError::Connection(e) => connection_error(e),
        SyncError::Invalid(errors) => fail(AppError::Invalid(errors)),
        SyncError::NotFound => fail(AppError::NotFound(error.to_string())),
        SyncError::NoHubSpot => fail(AppError::Conflict(error.to_string())),
        SyncError::Forbidden { .. } | SyncError::Provider(_) => {
            tracing::warn!(error = %error, "a provider could not be read for sync setup");
            fail(AppError::Provider(error.to_string()))
        }
        SyncError::Store(_) => {
            tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "sync operation failed");
            fail(AppError::Internal)
        }
    }
}

/// Maps a dashboard error to what the browser may see and sets the status.
pub fn dashboard_error(error: DashboardError) -> AppError {
    match error {
        DashboardError::SyncNotFound | DashboardError::RunNotFound | DashboardError::RecordNotFound => {
            fail(AppError::NotFound(error.to_string()))
        }
        DashboardError::Invalid(message) => fail(AppError::Invalid(vec![FieldError::new("filter", message)])),
        DashboardError::Connection(e) => connection_error(e),
        DashboardError::Store(_) => {
            tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "dashboard read failed");
            fail(AppError::Internal)
        }
    }
}

/// Who is signing in, for login throttling: their address and the device cookie they presented.
pub fn client() -> engine::accounts::Client {
    let Some(parts) = use_context::<http::request::Parts>() else {
        return engine::accounts::Client::default();
    };
    let device = parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| [DEVICE_COOKIE, SECURE_DEVICE_COOKIE].contains(name) && !value.is_empty())
        .map(|(_, value)| Token::from_presented(value));
    engine::accounts::Client { address: parts.extensions.get::<ClientAddress>().map(|a| a.0), device }
}

/// Sets the session cookie for a fresh login, and the device cookie when the browser is new.
pub fn start_session(ctx: &ServerContext, logged_in: &LoggedIn) {
    if let Some(device) = &logged_in.device {
        set_cookie(&format!(
            "{}={}; Path=/api/login; HttpOnly; SameSite=Strict; Max-Age={DEVICE_MAX_AGE_SECS}{}",
            if ctx.secure_cookies { SECURE_DEVICE_COOKIE } else { DEVICE_COOKIE },
            device.expose(),
            if ctx.secure_cookies { "; Secure" } else { "" }
        ));
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        session_cookie(ctx.secure_cookies),
        logged_in.token.expose(),
        SESSION_MAX_MS / 1000,
        if ctx.secure_cookies { "; Secure" } else { "" }
    );
    set_cookie(&cookie);
}

pub fn end_session(ctx: &ServerContext) {
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        session_cookie(ctx.secure_cookies),
        if ctx.secure_cookies { "; Secure" } else { "" }
    );
    set_cookie(&cookie);
}

fn set_cookie(cookie: &str) {
    if let (Some(response), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(cookie)) {
        response.append_header(SET_COOKIE, value);
    }
}

/// Where to go after login: a local path from the login form, never another site. Only printable
/// ASCII without `\` passes: browsers drop tabs and line breaks from a `Location` (so `/\t/x` is
/// `//x`, another site) and take `\` for `/`; a line break cannot be a header at all.
pub fn local_path_or_home(next: Option<String>) -> String {
    match next {
        Some(path) if is_local_path(&path) => path,
        _ => crate::HOME_PATH.to_string(),
    }
}

fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

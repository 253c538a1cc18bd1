//! The one error type server functions return. It crosses the wire as JSON, so the browser shows
//! the same safe message the server chose; causes stay in the server's log.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use model::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Your session has ended. Log in again to continue.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{}", summary(.0))]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    WrongCredentials(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after_secs: u64 },
    #[error("Something went wrong on Tandem's server. Try again; if it keeps happening, the server log has the details.")]
    Internal,
    #[error("Tandem could not be reached ({0}). Check your connection and try again.")]
    Transport(String),
    /// A provider (HubSpot, an app) failed or could not be reached.
    #[error("{0}")]
    Provider(String),
}

fn summary(errors: &[FieldError]) -> String {
    match errors {
        [] => "Some values were not accepted.".to_string(),
        [only] => only.message.clone(),
        _ => "Some values need attention: see the highlighted fields.".to_string(),
    }
}

impl AppError {
    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::WrongCredentials(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::Invalid(_) => 422,
            AppError::TooManyAttempts { .. } => 429,
            AppError::Internal => 500,
            AppError::Transport(_) | AppError::Provider(_) => 502,
        }
    }

    /// The message for one form field, when the error is about it.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            AppError::Invalid(errors) => model::validation::message_for(errors, name).map(str::to_string),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(detail) => AppError::Transport(detail),
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed in transport or decoding");
                #[cfg(not(feature = "ssr"))]
                leptos::logging::error!("server function failed: {other}");
                AppError::Internal
            }
        }
    }
}

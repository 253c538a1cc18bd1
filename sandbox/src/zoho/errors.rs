//! Zoho's error answers: `{code, details, message, status: "error"}`, with the details the
//! spec names for each (`ParamDetails`, `InvalidParamDetails`, `InvalidType`, `AmbiguityDetails`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::data::Module;
use super::require_scope;
use crate::oauth::AccessToken;

/// A path the API does not serve (404 `INVALID_URL_PATTERN`).
pub async fn url_pattern_invalid() -> Response {
    error(StatusCode::NOT_FOUND, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", json!({}))
}

/// A method the path does not take (405 `INVALID_REQUEST_METHOD`).
pub async fn method_invalid() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one", json!({}))
}

/// An error in Zoho's shape: `{code, details, message, status: "error"}`.
pub fn error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    (status, Json(json!({"code": code, "details": details, "message": message, "status": "error"}))).into_response()
}

/// A required query parameter is missing (400 `REQUIRED_PARAM_MISSING`, `ParamDetails`).
pub fn param_missing(param: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "REQUIRED_PARAM_MISSING",
        "One of the expected parameter is missing",
        json!({"param_name": param, "param": param}),
    )
}

/// A query parameter's value is refused (400 `INVALID_DATA`, `ParamDetails`).
pub fn param_invalid(param: &str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_DATA", message, json!({"param_name": param, "param": param}))
}

/// A query parameter holds none of the values it takes (400 `INVALID_DATA`,
/// `InvalidParamDetails`).
pub fn param_unsupported(param: &str, supported: &[&str]) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        "invalid data",
        json!({"param_name": param, "param": param, "supported_values": supported}),
    )
}

/// Two filters where the call takes one (400 `AMBIGUITY_DURING_PROCESSING`).
pub fn params_ambiguous(params: &[&str]) -> Response {
    let due_to: Vec<Value> = params.iter().map(|p| json!({"param_name": p, "param": p})).collect();
    error(
        StatusCode::BAD_REQUEST,
        "AMBIGUITY_DURING_PROCESSING",
        "ambiguity while processing the request",
        json!({"ambiguity_due_to": due_to}),
    )
}

/// The body is not the JSON object the call takes (400 `INVALID_DATA`, `InvalidType`).
pub fn body_invalid() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        "body",
        json!({"expected_data_type": "jsonobject", "api_name": "body", "json_path": "$"}),
    )
}

/// A body member is missing (400 `MANDATORY_NOT_FOUND`).
pub fn member_missing(api_name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "MANDATORY_NOT_FOUND",
        "required field not found",
        json!({"api_name": api_name, "json_path": format!("$.{api_name}")}),
    )
}

/// A body member has the wrong type (400 `INVALID_DATA`, `InvalidType`).
pub fn member_invalid(api_name: &str, expected: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        "invalid data",
        json!({"api_name": api_name, "json_path": format!("$.{api_name}"), "expected_data_type": expected}),
    )
}

/// An id in the path is not a record's (400 `INVALID_DATA`).
pub fn path_id_invalid() -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_DATA", "the id given seems to be invalid", json!({"resource_path_index": 1}))
}

/// The module of a path, and the scope check for `operation` on it.
pub fn module_for(raw: &str, token: &AccessToken, operation: &str) -> Result<Module, Response> {
    let module = Module::parse(raw).ok_or_else(invalid_module)?;
    require_scope(token, "modules", Some(&module.api_name().to_lowercase()), operation)?;
    Ok(module)
}

pub fn invalid_module() -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_MODULE", "the module name given seems to be invalid", json!({"resource_path_index": 0}))
}

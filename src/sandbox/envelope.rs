//! The Digistore24 response envelope (API-FACTS §4) and the error codes
//! (API-FACTS §2, the `DS_ERR_*` constants of the 2025 connector).

use std::time::Instant;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{ErrorStyle, clock};

/// Version string every real reply carries.
const API_VERSION: &str = "1.2";

/// Content type of every sandbox reply. The real header value is unknown
/// (API-FACTS §10); this is the obvious one.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Error codes the sandbox can answer with.
pub(crate) mod code {
    /// Invalid connection parameters (unknown key).
    pub const BAD_KEY: i64 = 2;
    /// Bad or missing function parameters.
    pub const BAD_PARAMS: i64 = 3;
    /// Requested object not found.
    pub const NOT_FOUND: i64 = 4;
    /// The key may not call this function.
    pub const PERMISSION_DENIED: i64 = 5;
    /// Unknown function or path.
    pub const BAD_CALL: i64 = 9;
    /// No key was sent.
    pub const KEY_MISSING: i64 = 10;
    /// Internal server error.
    pub const INTERNAL: i64 = 11;
    /// Too many requests.
    pub const TOO_MANY_REQUESTS: i64 = 12;
}

/// A `result: "error"` reply: code, message and the status it gets in
/// [`ErrorStyle::Http4xx`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: i64,
    pub message: String,
    pub status: StatusCode,
}

impl ApiError {
    /// An error with the usual status for its code.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: status_for(code),
        }
    }

    /// Code 3: a required parameter is absent or empty.
    pub fn missing(name: &str) -> Self {
        Self::new(code::BAD_PARAMS, format!("Missing parameter '{name}'."))
    }

    /// Code 3: a parameter has a value the function cannot use.
    pub fn invalid(name: &str, why: &str) -> Self {
        Self::new(
            code::BAD_PARAMS,
            format!("Invalid value for parameter '{name}': {why}"),
        )
    }

    /// Code 3 for anything else the function refuses to do.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(code::BAD_PARAMS, message)
    }

    /// Code 4, naming what was looked for.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            code::NOT_FOUND,
            format!("Requested object not found: {what} '{id}'."),
        )
    }

    /// The same error with another HTTP status (e.g. 413 for code 3).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

/// HTTP status of an error code in [`ErrorStyle::Http4xx`].
pub(crate) fn status_for(code: i64) -> StatusCode {
    match code {
        code::BAD_KEY | code::KEY_MISSING => StatusCode::UNAUTHORIZED,
        code::PERMISSION_DENIED => StatusCode::FORBIDDEN,
        code::NOT_FOUND => StatusCode::NOT_FOUND,
        code::TOO_MANY_REQUESTS => StatusCode::TOO_MANY_REQUESTS,
        code::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The standard message of an error code, used when a test forces one.
pub(crate) fn standard_message(code: i64) -> &'static str {
    match code {
        code::BAD_KEY => "Invalid connection parameters.",
        code::BAD_PARAMS => "Invalid function parameters.",
        code::NOT_FOUND => "Requested object not found",
        code::PERMISSION_DENIED => "Permission denied.",
        code::BAD_CALL => "Invalid API call.",
        code::KEY_MISSING => "Api key is missing.",
        code::INTERNAL => "Internal error.",
        code::TOO_MANY_REQUESTS => "Too many requests to the server",
        _ => "Unknown error.",
    }
}

/// Zone of `current_time`: the sandbox clock shows UTC (see `clock.rs`).
const TIMEZONE: &str = "UTC";

/// Offset of that zone. The real API's format is not documented (API-FACTS
/// §4 only says the S6 connector lists the field, and S6 types most fields
/// as strings); clients such as the PyPI `digistore24-client` declare it an
/// `int` and cast it with `int()`. At UTC the offset is zero in seconds and
/// in hours alike, so a whole number as a string, `"0"`, fits every reading.
const UTC_OFFSET: &str = "0";

/// The fields every reply starts with, success or error (API-FACTS §4):
/// `api_version`, `current_time`, `runtime_seconds` (measured from
/// `started`), `timezone` and `utc_offset`, then `result`.
fn head(started: Instant, result: &str) -> Map<String, Value> {
    // Rounded to 0.1 ms so the number looks like the server's and does not
    // print as 1.2345678e-5.
    let runtime = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10_000.0;
    let mut body = Map::new();
    body.insert("api_version".into(), API_VERSION.into());
    body.insert("current_time".into(), clock::format(clock::now()).into());
    body.insert("runtime_seconds".into(), json!(runtime));
    body.insert("timezone".into(), TIMEZONE.into());
    body.insert("utc_offset".into(), UTC_OFFSET.into());
    body.insert("result".into(), result.into());
    body
}

/// `result: "success"` with `data`; `runtime_seconds` measured from `started`.
pub(crate) fn success(data: Value, started: Instant) -> Response {
    // Built by hand so `data` is moved in, not cloned by `json!`.
    let mut body = head(started, "success");
    body.insert("data".into(), data);
    reply(StatusCode::OK, &Value::Object(body))
}

/// `result: "error"` with code and message, status chosen by `style`;
/// `runtime_seconds` measured from `started`.
pub(crate) fn error(err: &ApiError, style: ErrorStyle, started: Instant) -> Response {
    let mut body = head(started, "error");
    body.insert("code".into(), err.code.into());
    body.insert("message".into(), err.message.clone().into());
    let status = match style {
        ErrorStyle::Http4xx => err.status,
        ErrorStyle::Http200 => StatusCode::OK,
    };
    reply(status, &Value::Object(body))
}

fn reply(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

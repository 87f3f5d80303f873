//! The only place where errors become HTTP responses.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` stores the error in the
//! response extensions, and the `render_errors` middleware (which knows the
//! request id) writes the one JSON shape of DESIGN.md:
//! `{"error": {"type", "message", "request_id", …}}`. Messages say how to fix
//! the problem and never contain a key; details for operators are logged once.

use axum::response::{IntoResponse, Response};

use crate::app::{ConnectionChoice, StoreUnavailable};
use crate::call::{CallError, Cause};
use crate::credentials::CredentialError;
use crate::ledger::{ErrorReply, LedgerError, Recorded};
use crate::policy::Denied;
use crate::upstream::{Ds24Error, UpstreamError};
use http::StatusCode;
use serde_json::{Map, Value};

/// The `type` field of an error, and its default status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (bad path, bad JSON, conflicting headers).
    BadRequest,
    /// Input failed validation (`errors: [{path, message}]`).
    ValidationFailed,
    /// No such action (`suggestions: [key]`).
    UnknownAction,
    /// No such connection.
    UnknownConnection,
    /// Inbound token missing or wrong.
    Unauthorized,
    /// A policy forbids this call.
    ForbiddenByPolicy,
    /// An IPN whose signature does not verify, or no passphrase to check it.
    IpnRefused,
    /// The connection has no usable key configured.
    CredentialMissing,
    /// Digistore24 rejected the key and the source had no better one.
    CredentialRejected,
    /// Digistore24 answered `result: "error"` (`upstream: {code, message}`).
    UpstreamError,
    /// Digistore24 could not be reached or did not answer in time.
    UpstreamUnavailable,
    /// A write whose fate is unknown (sent, then the connection failed).
    OutcomeUnknown,
    /// An `Idempotency-Key` used for a different request, or still in use.
    IdempotencyKeyReused,
    /// Too many requests.
    RateLimited,
    /// Too many requests in flight at once; try again shortly.
    Overloaded,
    /// Body over the configured limit.
    PayloadTooLarge,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// A bug or an unexpected local failure.
    Internal,
}

impl ErrorKind {
    /// The `type` string clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::ValidationFailed => "validation_failed",
            Self::UnknownAction => "unknown_action",
            Self::UnknownConnection => "unknown_connection",
            Self::Unauthorized => "unauthorized",
            Self::ForbiddenByPolicy => "forbidden_by_policy",
            Self::IpnRefused => "ipn_refused",
            Self::CredentialMissing => "credential_missing",
            Self::CredentialRejected => "credential_rejected",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::RateLimited => "rate_limited",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Overloaded => "overloaded",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal_error",
        }
    }

    fn default_status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::ValidationFailed => StatusCode::BAD_REQUEST,
            Self::UnknownAction | Self::UnknownConnection | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::ForbiddenByPolicy | Self::IpnRefused => StatusCode::FORBIDDEN,
            Self::CredentialMissing => StatusCode::SERVICE_UNAVAILABLE,
            Self::CredentialRejected => StatusCode::UNAUTHORIZED,
            Self::UpstreamError | Self::UpstreamUnavailable | Self::OutcomeUnknown => {
                StatusCode::BAD_GATEWAY
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

// === Digistore24's envelope on the pass-through routes ===
//
// A client written for Digistore24 (the official PHP connector, say) reads
// `api_version`, `result`, `code` and `message` and calls anything else an
// invalid server response. On the pass-through routes the proxy's own
// errors carry those fields at the top level too, beside `error`.

/// The `api_version` an envelope made by the proxy says (the version of
/// Digistore24's envelope it mirrors; the connectors only check presence).
pub const ENVELOPE_API_VERSION: &str = "1.2";

impl ErrorKind {
    /// Every kind, for lookups by `type`.
    pub const ALL: [ErrorKind; 19] = [
        Self::BadRequest,
        Self::ValidationFailed,
        Self::UnknownAction,
        Self::UnknownConnection,
        Self::Unauthorized,
        Self::ForbiddenByPolicy,
        Self::IpnRefused,
        Self::CredentialMissing,
        Self::CredentialRejected,
        Self::UpstreamError,
        Self::UpstreamUnavailable,
        Self::OutcomeUnknown,
        Self::IdempotencyKeyReused,
        Self::RateLimited,
        Self::Overloaded,
        Self::PayloadTooLarge,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Internal,
    ];

    /// The kind whose `type` string this is.
    pub fn from_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Digistore24's error `code` for this kind (numbers of the 2025
    /// official connector, [`crate::upstream::codes`]): the code of the
    /// same meaning where Digistore24 has one, so a client that branches on
    /// it does the right thing; its internal-error code where the failure
    /// is the proxy's or the network's. An `upstream_error` says
    /// Digistore24's own code instead, when it sent one (see [`envelope`]).
    pub fn ds24_code(self) -> i64 {
        use crate::upstream::codes;
        match self {
            // The call as sent cannot be made: bad path, method, headers.
            Self::BadRequest | Self::MethodNotAllowed => codes::BAD_CALL,
            // The call is fine, its parameters or headers are not.
            Self::ValidationFailed | Self::IdempotencyKeyReused | Self::PayloadTooLarge => {
                codes::BAD_PARAMS
            }
            Self::UnknownAction | Self::UnknownConnection | Self::NotFound => codes::NOT_FOUND,
            // A credential the caller presented (the inbound token) or the
            // connection's key, refused.
            Self::Unauthorized | Self::CredentialRejected => codes::BAD_KEY,
            Self::CredentialMissing => codes::KEY_MISSING,
            Self::ForbiddenByPolicy | Self::IpnRefused => codes::PERMISSION_DENIED,
            Self::RateLimited | Self::Overloaded => codes::TOO_MANY_REQUESTS,
            // No Digistore24 equivalent: a failure on the way, not a refusal.
            // `outcome_unknown` is one too: the message says not to repeat.
            Self::UpstreamError
            | Self::UpstreamUnavailable
            | Self::OutcomeUnknown
            | Self::Internal => codes::INTERNAL,
        }
    }
}

/// Adds Digistore24's envelope fields (`api_version`, `result: "error"`,
/// `code`, `message`) at the top level of a proxy error body
/// (`{"error": {"type", "message", …}}`), fresh or recorded. Returns
/// `false`, changing nothing, for anything else: a body that is not the
/// proxy's error, or that already has a `result` (Digistore24's own).
pub fn envelope(body: &mut Value) -> bool {
    let Some(top) = body.as_object_mut() else {
        return false;
    };
    if top.contains_key("result") {
        return false;
    }
    let Some(error) = top.get("error").and_then(Value::as_object) else {
        return false;
    };
    let Some(kind) = error.get("type").and_then(Value::as_str) else {
        return false;
    };
    let kind = ErrorKind::from_type(kind).unwrap_or(ErrorKind::Internal);
    let upstream_code = error
        .get("upstream")
        .and_then(|u| u.get("code"))
        .and_then(Value::as_i64);
    let code = match (kind, upstream_code) {
        (ErrorKind::UpstreamError, Some(code)) => code,
        _ => kind.ds24_code(),
    };
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    top.insert("api_version".into(), ENVELOPE_API_VERSION.into());
    top.insert("result".into(), "error".into());
    top.insert("code".into(), code.into());
    top.insert("message".into(), message.into());
    true
}

/// An error made by the proxy, on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Its type.
    pub kind: ErrorKind,
    /// The HTTP status (the kind's default unless overridden).
    pub status: StatusCode,
    /// What happened and how to fix it.
    pub message: String,
    /// Extra members of the `error` object (`errors`, `suggestions`, `upstream`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// An error of `kind` with its default status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.default_status(),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Overrides the status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a member to the `error` object.
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// `500 internal_error`; the detail goes to the log, not to the client.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error.detail = %detail, "internal error");
        Self::new(
            ErrorKind::Internal,
            "the proxy failed unexpectedly; the details are in its log",
        )
    }

    /// The JSON body of a pass-through route: [`ApiError::body`] with
    /// Digistore24's envelope fields (see [`envelope`]).
    pub fn pass_through_body(&self, request_id: &str) -> Value {
        let mut body = self.body(request_id);
        envelope(&mut body);
        body
    }

    /// The JSON body, with the request id filled in.
    pub fn body(&self, request_id: &str) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), self.kind.as_str().into());
        error.insert("message".into(), self.message.clone().into());
        error.insert("request_id".into(), request_id.into());
        error.extend(self.extra.clone());
        serde_json::json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

// === conversions from the typed errors of other modules ===
//
// Each module's error becomes an `ApiError` here and nowhere else. Rules
// are by cause, in the order written; none has a side effect but the
// one warning for an upstream failure.

impl From<&CallError> for ApiError {
    fn from(e: &CallError) -> Self {
        // 1. A write or money call that may have been carried out: telling
        //    the caller "unavailable" would invite a retry, and a retried
        //    refund can pay out twice.
        if e.outcome_unknown() {
            return ApiError::new(
                ErrorKind::OutcomeUnknown,
                format!(
                    "{} may or may not have been carried out by Digistore24 ({}); it was not sent again. Check its result (for example with a read action) before trying again",
                    e.function, e.cause
                ),
            );
        }
        // 2. Otherwise the cause alone decides.
        match &e.cause {
            Cause::BreakerOpen { .. } => {
                ApiError::new(ErrorKind::UpstreamUnavailable, e.cause.to_string())
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            Cause::RateLimited { retry_after, .. } => {
                ApiError::new(ErrorKind::RateLimited, e.cause.to_string()).with(
                    "retry_after_ms",
                    serde_json::json!(retry_after.as_millis() as u64),
                )
            }
            Cause::Credential(c) => c.into(),
            Cause::Upstream(u) => u.into(),
            Cause::Refused(d) | Cause::NotAnEnvelope(d) => d.into(),
            Cause::ReplyTooLarge { .. } => {
                ApiError::new(ErrorKind::UpstreamError, e.cause.to_string())
            }
            Cause::BodyTooLarge { .. } => {
                ApiError::new(ErrorKind::PayloadTooLarge, e.cause.to_string())
            }
            Cause::BadTarget => ApiError::bad_request(e.cause.to_string()),
            // Only a read could get here, and a read is never recorded.
            Cause::CutOff => ApiError::new(ErrorKind::UpstreamUnavailable, e.cause.to_string()),
            Cause::Unrecorded(_) => ApiError::new(ErrorKind::Internal, e.cause.to_string())
                .with_status(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        Self::from(&e)
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Call(e) => e.into(),
            LedgerError::InvalidKey => ApiError::bad_request(e.to_string()),
            LedgerError::KeyReused => ApiError::new(ErrorKind::IdempotencyKeyReused, e.to_string())
                .with_status(StatusCode::UNPROCESSABLE_ENTITY),
            LedgerError::StillRunning => {
                ApiError::new(ErrorKind::IdempotencyKeyReused, e.to_string())
                    .with_status(StatusCode::CONFLICT)
            }
            LedgerError::Store(_) => ApiError::new(ErrorKind::Internal, e.to_string())
                .with_status(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

impl From<ConnectionChoice> for ApiError {
    fn from(e: ConnectionChoice) -> Self {
        match e {
            ConnectionChoice::Unknown { .. } => {
                ApiError::new(ErrorKind::UnknownConnection, e.to_string())
            }
            ConnectionChoice::Unreadable | ConnectionChoice::Conflict { .. } => {
                ApiError::bad_request(e.to_string())
            }
        }
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        ApiError::new(ErrorKind::ForbiddenByPolicy, e.to_string())
    }
}

impl From<StoreUnavailable> for ApiError {
    fn from(e: StoreUnavailable) -> Self {
        ApiError::new(ErrorKind::Internal, e.to_string())
    }
}

/// The reply a failed call gets, as the ledger records it for repeats.
pub fn error_reply(e: &CallError, request_id: &str) -> ErrorReply {
    let error = ApiError::from(e);
    ErrorReply {
        kind: error.kind.as_str(),
        reply: Recorded {
            status: error.status.as_u16(),
            content_type: Some("application/json".to_owned()),
            body: serde_json::to_vec(&error.body(request_id))
                .unwrap_or_default()
                .into(),
        },
    }
}

/// What a repeat of a call is answered when the process that made the call
/// stopped after it may have reached Digistore24 (settled at start).
pub fn cut_off_reply() -> Recorded {
    let e = CallError::new("the call", crate::actions::Effect::Write, Cause::CutOff);
    error_reply(&e, "").reply
}

impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        tracing::warn!(error = %e, "upstream request failed");
        match e {
            UpstreamError::Timeout { .. } => ApiError::new(
                ErrorKind::UpstreamUnavailable,
                format!("{e}; try again later, or raise upstream.request_timeout_secs"),
            )
            .with_status(http::StatusCode::GATEWAY_TIMEOUT),
            UpstreamError::RequestBody { .. } => ApiError::bad_request(e.to_string()),
            UpstreamError::Connect { .. } | UpstreamError::Transport { .. } => ApiError::new(
                ErrorKind::UpstreamUnavailable,
                format!("{e}; check the network and upstream.base_url"),
            ),
        }
    }
}

impl From<CredentialError> for ApiError {
    fn from(e: CredentialError) -> Self {
        Self::from(&e)
    }
}

impl From<&CredentialError> for ApiError {
    fn from(e: &CredentialError) -> Self {
        match e {
            CredentialError::Missing { connection }
                if connection == crate::config::DEFAULT_CONNECTION =>
            {
                ApiError::new(
                    ErrorKind::CredentialMissing,
                    format!(
                        "{e}: set DS24_API_KEY or DS24_API_KEY_FILE, run `ds24-proxy connect`, or start with --sandbox to try the proxy without an account"
                    ),
                )
            }
            CredentialError::Missing { connection } => ApiError::new(
                ErrorKind::CredentialMissing,
                format!(
                    "{e}: add a [connections.{connection}.credential] section to the config, or run `ds24-proxy connect --name {connection}`"
                ),
            ),
            CredentialError::Source { .. } => {
                ApiError::new(ErrorKind::CredentialMissing, e.to_string())
            }
            CredentialError::Rejected { .. } => {
                ApiError::new(ErrorKind::CredentialRejected, e.to_string())
            }
            // The key is fine now; only this request has to be sent again.
            CredentialError::RenewedNotReplayable { .. } => {
                ApiError::new(ErrorKind::CredentialRejected, e.to_string())
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }
}

impl From<&Ds24Error> for ApiError {
    fn from(e: &Ds24Error) -> Self {
        if e.not_an_envelope {
            return ApiError::new(ErrorKind::UpstreamUnavailable, format!("Digistore24 did not answer with its JSON envelope: {}", e.message))
                .with("upstream", serde_json::json!({ "code": null, "message": e.message, "http_status": e.http_status }));
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        ApiError::new(ErrorKind::UpstreamError, format!("Digistore24 refused the call: {}", e.message))
            .with_status(status)
            .with("upstream", serde_json::json!({ "code": e.code, "message": e.message, "http_status": e.http_status }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::actions::Effect;

    fn upstream(e: UpstreamError) -> Cause {
        Cause::Upstream(e)
    }

    /// Every cause, for a read and for a refund: the (type, status) the
    /// caller gets. One table, so a change of mapping shows here.
    #[test]
    fn each_cause_maps_to_one_type_and_status() {
        let transport = || {
            upstream(UpstreamError::Transport {
                host: "h".into(),
                reason: "r".into(),
            })
        };
        let timeout = || {
            upstream(UpstreamError::Timeout {
                host: "h".into(),
                timeout: Duration::from_secs(1),
            })
        };
        let connect = || {
            upstream(UpstreamError::Connect {
                host: "h".into(),
                reason: "r".into(),
            })
        };
        let page = || {
            Cause::NotAnEnvelope(Ds24Error {
                code: None,
                message: "Bad Gateway".into(),
                http_status: 502,
                not_an_envelope: true,
            })
        };
        let refused = || {
            Cause::Refused(Ds24Error {
                code: Some(7),
                message: "Purchase not found".into(),
                http_status: 404,
                not_an_envelope: false,
            })
        };
        let breaker = || Cause::BreakerOpen {
            connection: "main".into(),
            retry_in: Duration::from_secs(3),
        };
        let rate = || Cause::RateLimited {
            connection: "main".into(),
            retry_after: Duration::from_millis(200),
        };
        let rejected = || {
            Cause::Credential(CredentialError::Rejected {
                connection: "main".into(),
                kind: "env",
                fix: "set another key".into(),
            })
        };
        // (cause, read's (type, status), refund's (type, status))
        type Make = fn() -> Cause;
        type Row = (
            &'static str,
            Box<dyn Fn() -> Cause>,
            (&'static str, u16),
            (&'static str, u16),
        );
        let table: Vec<Row> = vec![
            (
                "transport",
                Box::new(transport),
                ("upstream_unavailable", 502),
                ("outcome_unknown", 502),
            ),
            (
                "timeout",
                Box::new(timeout),
                ("upstream_unavailable", 504),
                ("outcome_unknown", 502),
            ),
            (
                "connect",
                Box::new(connect),
                ("upstream_unavailable", 502),
                ("upstream_unavailable", 502),
            ),
            (
                "front page",
                Box::new(page),
                ("upstream_unavailable", 502),
                ("outcome_unknown", 502),
            ),
            (
                "refused",
                Box::new(refused),
                ("upstream_error", 404),
                ("upstream_error", 404),
            ),
            (
                "breaker",
                Box::new(breaker),
                ("upstream_unavailable", 503),
                ("upstream_unavailable", 503),
            ),
            (
                "rate",
                Box::new(rate),
                ("rate_limited", 429),
                ("rate_limited", 429),
            ),
            (
                "rejected",
                Box::new(rejected),
                ("credential_rejected", 401),
                ("credential_rejected", 401),
            ),
            (
                "cut off",
                Box::new((|| Cause::CutOff) as Make),
                ("upstream_unavailable", 502),
                ("outcome_unknown", 502),
            ),
            (
                "too large",
                Box::new((|| Cause::ReplyTooLarge { limit: 1 }) as Make),
                ("upstream_error", 502),
                ("upstream_error", 502),
            ),
            (
                "body too large",
                Box::new((|| Cause::BodyTooLarge { limit: 1 }) as Make),
                ("payload_too_large", 413),
                ("payload_too_large", 413),
            ),
            (
                "bad target",
                Box::new((|| Cause::BadTarget) as Make),
                ("bad_request", 400),
                ("bad_request", 400),
            ),
            (
                "unrecorded",
                Box::new((|| Cause::Unrecorded("disk full".into())) as Make),
                ("internal_error", 503),
                ("internal_error", 503),
            ),
        ];
        for (name, cause, read, money) in table {
            for (effect, want) in [(Effect::Read, read), (Effect::Money, money)] {
                let e = ApiError::from(CallError::new("refundPurchase", effect, cause()));
                assert_eq!(
                    (e.kind.as_str(), e.status.as_u16()),
                    want,
                    "{name} for {effect:?}: {}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn a_recorded_error_reply_is_the_json_the_caller_got() {
        let e = CallError::new(
            "refundPurchase",
            Effect::Money,
            Cause::Upstream(UpstreamError::Transport {
                host: "h".into(),
                reason: "r".into(),
            }),
        );
        let reply = error_reply(&e, "req-1");
        assert_eq!(reply.kind, "outcome_unknown");
        assert_eq!(reply.reply.status, 502);
        assert_eq!(
            reply.reply.content_type.as_deref(),
            Some("application/json")
        );
        let body: Value = serde_json::from_slice(&reply.reply.body).unwrap();
        assert_eq!(body["error"]["type"], "outcome_unknown");
        assert_eq!(body["error"]["request_id"], "req-1");
    }

    /// The envelope a client written for Digistore24 reads, per type: the
    /// PHP connector needs `api_version` and `result`, and throws `message`
    /// with `code` (an integer, or PHP's Exception refuses it).
    #[test]
    fn each_type_carries_digistore24s_envelope_with_its_code() {
        let table = [
            (ErrorKind::BadRequest, 9),
            (ErrorKind::MethodNotAllowed, 9),
            (ErrorKind::ValidationFailed, 3),
            (ErrorKind::IdempotencyKeyReused, 3),
            (ErrorKind::PayloadTooLarge, 3),
            (ErrorKind::UnknownAction, 4),
            (ErrorKind::UnknownConnection, 4),
            (ErrorKind::NotFound, 4),
            (ErrorKind::Unauthorized, 2),
            (ErrorKind::CredentialRejected, 2),
            (ErrorKind::CredentialMissing, 10),
            (ErrorKind::ForbiddenByPolicy, 5),
            (ErrorKind::IpnRefused, 5),
            (ErrorKind::RateLimited, 12),
            (ErrorKind::Overloaded, 12),
            (ErrorKind::UpstreamError, 11),
            (ErrorKind::UpstreamUnavailable, 11),
            (ErrorKind::OutcomeUnknown, 11),
            (ErrorKind::Internal, 11),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, code) in table {
            assert_eq!(ErrorKind::from_type(kind.as_str()), Some(kind));
            let body = ApiError::new(kind, "what happened").pass_through_body("r-1");
            assert_eq!(body["api_version"], ENVELOPE_API_VERSION, "{kind:?}");
            assert_eq!(body["result"], "error", "{kind:?}");
            assert_eq!(body["code"], code, "{kind:?}");
            assert_eq!(body["message"], "what happened", "{kind:?}");
            assert_eq!(body["error"]["type"], kind.as_str());
            assert_eq!(body["error"]["request_id"], "r-1");
        }
        // Digistore24's own code, when the error is its refusal.
        let refused = ApiError::from(&Ds24Error {
            code: Some(4),
            message: "Purchase not found".into(),
            http_status: 200,
            not_an_envelope: false,
        });
        assert_eq!(refused.pass_through_body("r")["code"], 4);
        // The plain body has no envelope.
        let plain = ApiError::bad_request("x").body("r");
        assert!(plain.get("result").is_none() && plain.get("code").is_none());
    }

    #[test]
    fn a_recorded_error_gets_the_same_envelope_and_other_bodies_none() {
        let e = CallError::new("refundPurchase", Effect::Money, Cause::CutOff);
        let fresh = ApiError::from(&e).pass_through_body("req-1");
        let mut recorded: Value =
            serde_json::from_slice(&error_reply(&e, "req-1").reply.body).unwrap();
        assert!(envelope(&mut recorded));
        assert_eq!(recorded, fresh);
        assert_eq!(recorded["code"], 11);
        // Already an envelope, or not the proxy's error: left alone.
        assert!(!envelope(&mut recorded.clone()));
        for mut other in [
            serde_json::json!({"api_version": "1.2", "result": "error", "code": 4, "message": "x"}),
            serde_json::json!({"dry_run": true}),
            serde_json::json!({"error": "text"}),
            serde_json::json!([1]),
        ] {
            let before = other.clone();
            assert!(!envelope(&mut other));
            assert_eq!(other, before);
        }
    }

    #[test]
    fn ledger_errors_keep_their_statuses() {
        for (e, want) in [
            (LedgerError::InvalidKey, ("bad_request", 400)),
            (LedgerError::KeyReused, ("idempotency_key_reused", 422)),
            (LedgerError::StillRunning, ("idempotency_key_reused", 409)),
            (LedgerError::Store("x".into()), ("internal_error", 503)),
        ] {
            let e = ApiError::from(e);
            assert_eq!((e.kind.as_str(), e.status.as_u16()), want);
        }
    }
}

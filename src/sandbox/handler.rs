//! The one request handler of the API: refuse a body of unknown length as
//! the front server does, read the body, record the request, serve a
//! scripted fault if one is due, then check path, parameters, key and
//! permission before running the function (and break its reply if the
//! fault says so).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, request};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::envelope::{self, ApiError, code};
use super::params::{self, BodyKind, ParamsError};
use super::socket::KillSwitch;
use super::{
    ErrorStyle, Fault, RecordedRequest, Sandbox, auth, clock, faults, functions, positional, route,
};

/// Largest body the sandbox accepts; larger ones get code 3 with HTTP 413.
const BODY_LIMIT: usize = 1024 * 1024;

/// How much of an oversized body is still read (and dropped) so the client
/// can finish sending and see the 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Header that overrides the error style for one request (`200` or `4xx`).
const STYLE_HEADER: &str = "x-ds24-sandbox-error-style";

/// Header that makes the sandbox answer with the given error code, after
/// recording, whatever the request: a fault knob for retry and rate-limit
/// tests (e.g. `12` gives "Too many requests", HTTP 429).
const FAIL_HEADER: &str = "x-ds24-sandbox-fail";

/// Where `requestApiKey` points the approval link when a request names no
/// host: the address `ds24-proxy sandbox` listens on by default.
const DEFAULT_HOST: &str = "127.0.0.1:7425";

/// The body as read, and whether reading it went wrong.
type BodyRead = (Bytes, Result<(), ApiError>);

/// Handles every request the sandbox router receives.
pub(crate) async fn handle(State(sandbox): State<Sandbox>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let target = route::resolve(parts.uri.path());
    let function = target.as_ref().map_or_else(String::new, |t| {
        functions::canonical_name(&t.function).map_or_else(|| t.function.clone(), str::to_owned)
    });
    let switch = parts
        .extensions
        .get::<ConnectInfo<KillSwitch>>()
        .map(|c| c.0.clone());
    // Only on a socket: a request built in-process for a bare router has
    // no length header unless its author wrote one.
    if switch.is_some() && lacks_length(&parts) {
        return length_required(&sandbox, &parts, function);
    }
    // Taken on arrival, so concurrent calls use up faults in arrival order.
    let fault = target.as_ref().and_then(|_| sandbox.take_fault(&function));
    // Reading the body of an `Expect: 100-continue` request would make
    // hyper send `100 Continue`, and a reset must come before any byte.
    let (body, body_status) = if fault == Some(Fault::Reset) && expects_continue(&parts.headers) {
        (Bytes::new(), Ok(()))
    } else {
        read_body(body).await
    };
    let kind = BodyKind::from_content_type(header_text(&parts.headers, CONTENT_TYPE.as_str()));
    let parsed = params::parse(parts.uri.query(), &body, kind);
    sandbox.record(RecordedRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
        function: function.clone(),
        params: Value::Object(parsed.as_ref().cloned().unwrap_or_default()),
        rejected: None,
    });
    let style = effective_style(&parts.headers, sandbox.error_style());
    // A fault that runs the call waits for its answer to break it.
    let mut breaks_reply = None;
    if let Some(fault) = fault {
        tracing::debug!(sandbox.function = %function, sandbox.fault = ?fault, "sandbox fault");
        if fault.runs_the_call() {
            breaks_reply = Some(fault);
        } else if let Some(reply) = faults::apply(fault, style, switch.as_ref()).await {
            return reply;
        }
    }
    let parsed = parsed.map_err(params_error);
    // ipnSetup checks the URL with a GET that must answer 200 (API-FACTS
    // §7.1) before it registers anything.
    let checked = match (&parsed, function.as_str()) {
        (Ok(params), "ipnSetup") => match by_name(&function, params)
            .ok()
            .and_then(|p| p.get("ipn_url").and_then(Value::as_str).map(str::to_owned))
            .as_deref()
        {
            Some(url) => super::ipn::validate_url(url)
                .await
                .map_err(|m| ApiError::new(code::BAD_CALL, m)),
            None => Ok(()),
        },
        _ => Ok(()),
    };
    let outcome = match &target {
        None => Err(ApiError::new(
            code::BAD_CALL,
            format!("Invalid API call: no function at {}.", parts.uri.path()),
        )
        .with_status(StatusCode::NOT_FOUND)),
        Some(target) => body_status
            .and(parsed)
            .and_then(|params| checked.map(|()| params))
            .and_then(|params| answer(&sandbox, &parts, target, &params)),
    };
    let reply = match outcome {
        Ok(data) => {
            tracing::debug!(sandbox.function = %function, "sandbox call succeeded");
            if function == "refundPurchase"
                && let Some(id) = data.get("purchase_id").and_then(Value::as_str)
            {
                sandbox.notify(id, "on_refund");
            }
            envelope::success(data, started)
        }
        Err(err) => {
            tracing::debug!(sandbox.function = %function, sandbox.code = err.code, "sandbox call failed");
            envelope::error(&err, style, started)
        }
    };
    match breaks_reply {
        Some(fault) => faults::break_reply(&fault, reply, switch.as_ref()).await,
        None => reply,
    }
}

/// A POST, PUT or PATCH with neither `Content-Length` nor
/// `Transfer-Encoding`: Digistore24's front server refuses it with `411`
/// before the API sees it (API-FACTS §1).
fn lacks_length(parts: &request::Parts) -> bool {
    matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
        && !parts.headers.contains_key(CONTENT_LENGTH)
        && !parts.headers.contains_key(TRANSFER_ENCODING)
}

/// The front server's `411 Length Required`, in plain text. The request is
/// recorded, marked as rejected, so tests see what was sent; it uses up no
/// fault, and nothing is run.
fn length_required(sandbox: &Sandbox, parts: &request::Parts, function: String) -> Response {
    tracing::debug!(sandbox.function = %function, "sandbox refused a request without a length");
    let status = StatusCode::LENGTH_REQUIRED;
    sandbox.record(RecordedRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: Bytes::new(),
        function,
        params: Value::Object(Map::new()),
        rejected: Some(status),
    });
    let mut response = (status, format!("{status}\n")).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Checks the fault knob, the key and the function, then runs it.
fn answer(
    sandbox: &Sandbox,
    parts: &request::Parts,
    target: &route::Target,
    params: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let headers = &parts.headers;
    if let Some(forced) = header_text(headers, FAIL_HEADER).and_then(|v| v.trim().parse().ok()) {
        return Err(ApiError::new(forced, envelope::standard_message(forced)));
    }
    let key = auth::authenticate(
        &sandbox.keys(),
        headers.get("x-ds-api-key"),
        target.path_key.as_deref(),
    )?;
    if let Some(function) = functions::find(&target.function) {
        auth::authorize(&key, function.access)?;
        let params = by_name(function.name, params)?;
        let call = functions::Call {
            params: &params,
            key,
            now: clock::now(),
            host: host_of(parts),
        };
        return function.run(sandbox, &call);
    }
    // Every other function of the catalog: checked against its parameter
    // definitions and answered in the spec's shape.
    let Some(action) = crate::actions::canonical(&target.function) else {
        return Err(ApiError::new(
            code::BAD_CALL,
            format!("Invalid API function called: {}()", target.function),
        ));
    };
    auth::authorize(&key, functions::generic::access_of(action))?;
    functions::generic::run(action, &by_name(action.function, params)?)
}

/// The parameters with positional `argN` renamed to the names the function
/// expects (API-FACTS §3); unchanged for a function the catalog lacks.
///
/// # Errors
/// Code 3 from [`positional::resolve`].
fn by_name(function: &str, params: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match crate::actions::canonical(function) {
        Some(action) => positional::resolve(action, params),
        None => Ok(params.clone()),
    }
}

/// Reads the body up to [`BODY_LIMIT`]; beyond it keeps the first MiB,
/// drains the rest up to [`DRAIN_LIMIT`] and reports code 3 / HTTP 413.
async fn read_body(mut body: Body) -> BodyRead {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            let err = ApiError::refused("The request body could not be read.");
            return (kept.freeze(), Err(err));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        let room = BODY_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..data.len().min(room)]);
        if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > BODY_LIMIT {
        let err = ApiError::refused(format!(
            "The request body is larger than {BODY_LIMIT} bytes."
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE);
        return (kept.freeze(), Err(err));
    }
    (kept.freeze(), Ok(()))
}

fn params_error(err: ParamsError) -> ApiError {
    match err {
        ParamsError::TooDeep => ApiError::refused("A parameter name nests brackets too deeply."),
        ParamsError::BadJson => ApiError::refused("The JSON body is not a valid JSON object."),
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's own style header wins over the sandbox setting; an
/// unreadable value is ignored.
fn effective_style(headers: &HeaderMap, default: ErrorStyle) -> ErrorStyle {
    header_text(headers, STYLE_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `host[:port]` the client addressed: the `Host` header, else the URI's
/// authority, else [`DEFAULT_HOST`]. Anything that could not be a host is
/// ignored, since it ends up inside a URL.
fn host_of(parts: &request::Parts) -> &str {
    let plausible = |h: &&str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
    };
    header_text(&parts.headers, HOST.as_str())
        .filter(plausible)
        .or_else(|| parts.uri.authority().map(|a| a.as_str()).filter(plausible))
        .unwrap_or(DEFAULT_HOST)
}

/// Whether the client waits for `100 Continue` before sending its body.
fn expects_continue(headers: &HeaderMap) -> bool {
    header_text(headers, EXPECT.as_str()).is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

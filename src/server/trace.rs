//! The request span and its one log line per request. The span carries the
//! request id, method and a redacted path (never the query, which may hold
//! personal data, and never a key in a legacy path).

use axum::body::Body;
use http::Request;
use std::time::Duration;

use tower_http::classify::{ServerErrorsAsFailures, ServerErrorsFailureClass, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnResponse, TraceLayer};
use tracing::{Level, Span, field};

use super::middleware::REQUEST_ID;
use crate::proxy::path;

/// The trace layer type, spelled out once.
pub type RequestTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    (),
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    fn(ServerErrorsFailureClass, Duration, &Span),
>;

/// The configured trace layer.
pub fn layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(make_span as fn(&Request<Body>) -> Span)
        .on_request(())
        // The line per finished request is at `debug`: at `info` it cost
        // about a tenth of the proxy's CPU per request under load (measured,
        // docs/BENCHMARKS.md). Failures are still logged at `info` and above
        // where they happen; `RUST_LOG=ds24_proxy=debug,tower_http=debug`
        // turns the access lines on.
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(on_failure as fn(ServerErrorsFailureClass, Duration, &Span))
}

/// tower-http's default logs every 5xx answer at `error` ("response
/// failed"). The proxy's 5xx answers are its documented errors
/// (`credential_missing`, `upstream_unavailable`, `overloaded`, …), each
/// already reported where it is made (an internal error at `error`, a
/// failed upstream call at `warn`) and told to the caller; the CLI, which
/// runs the same router in-process, prints it as its own message. So a
/// status is logged with the access line, at `debug`; a response body that
/// broke off while streaming is a failure nothing else reports, at `warn`.
fn on_failure(class: ServerErrorsFailureClass, latency: Duration, span: &Span) {
    let latency_ms = latency.as_millis();
    match class {
        ServerErrorsFailureClass::StatusCode(status) => {
            tracing::debug!(parent: span, status = status.as_u16(), latency_ms, "error response");
        }
        ServerErrorsFailureClass::Error(error) => {
            tracing::warn!(parent: span, error, latency_ms, "response failed while streaming");
        }
    }
}

/// The path for the log: the proxy's IPN receiver (`/ipn/{connection}`)
/// as it is; everything else as the pass-through parses it (which refuses,
/// and so hides, any path that is not a function call).
fn loggable_path(p: &str) -> std::borrow::Cow<'_, str> {
    match p.strip_prefix("/ipn/") {
        Some(name) if path::is_connection_name(name) => p.into(),
        _ => path::loggable(p),
    }
}

fn make_span(req: &Request<Body>) -> Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %req.method(),
        http.path = %loggable_path(req.uri().path()),
        ds24.connection = field::Empty,
        ds24.function = field::Empty,
    )
}

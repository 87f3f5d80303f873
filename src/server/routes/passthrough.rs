//! The pass-through route: any path that is not one of the proxy's own goes
//! to `{base_url}/{function}[/…]` on the chosen connection. Choose the
//! connection, build the target URL, swap credentials, stream the body
//! (counting it against the limit), and stream the answer back unchanged;
//! a write's answer is read whole first, so that a reply that breaks off is
//! `outcome_unknown` instead of a broken stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, header};

use crate::app::AppState;
use crate::call::exchange::{self, Exchange, OutBody, ReplyBody, ReplyMode};
use crate::call::{CallError, Cause};
use crate::ledger::{self, MAX_RECORDED_REPLY};
use crate::proxy::limit::limited;
use crate::proxy::{headers, path, target_url};
use crate::server::error::{ApiError, ErrorKind};

/// Handler for every path the router does not claim.
pub async fn pass_through(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    // Only the methods an API call uses: CONNECT would tunnel, and TRACE
    // asks every hop to echo the request, stored key included.
    if !matches!(
        parts.method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
    ) {
        return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{} is not forwarded: use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
                parts.method
            ),
        ));
    }
    // An absolute-form target (`GET http://other.host/x`) must not even look
    // like it could choose the destination.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return Err(ApiError::bad_request(
            "send a path-relative request (`POST /listProducts`), not an absolute URL",
        ));
    }
    let target = path::parse(parts.uri.path()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Digistore24 matches function names without regard to case; the
    // catalog's spelling is what is judged, audited and forwarded.
    let known = crate::actions::canonical(target.function);
    let function: &str = known.map_or(target.function, |a| a.function);
    // Unknown functions count as writes (see actions::effect_of_function).
    let effect = known.map_or(crate::actions::Effect::Write, |a| a.effect);
    let conn = state.choose_connection(target.connection, &parts.headers)?;
    let span = tracing::Span::current();
    span.record("ds24.connection", conn.name.as_str());
    span.record("ds24.function", function);
    crate::server::middleware::CallLabels::set(&parts.extensions, function, &conn.name);
    let caller = crate::policy::authorize(&parts.extensions, &conn.name, function, effect)?;

    let url = target_url(&conn.base_url, function, &target.rest, parts.uri.query())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    let max = state.config().max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let has_body =
        declared.is_some_and(|n| n > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let mut headers = headers::for_upstream(parts.headers);
    // Digistore24's front server answers 411 to a body-less POST without
    // Content-Length (API-FACTS §1), so say 0 explicitly.
    if !has_body
        && matches!(
            parts.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    // A read's body streams to Digistore24 as it arrives and is kept (up to
    // upstream.replay_max_bytes) so that a renewal or a retry can send it
    // again. A write's body is read first when it is small enough: its
    // audit record and Idempotency-Key fingerprint need the whole request
    // before anything is sent. A larger one streams and is sent once.
    let tripped = Arc::new(AtomicBool::new(false));
    let replay_max = state.config().replay_max_bytes;
    let body = match declared {
        _ if !has_body => OutBody::Empty,
        _ if effect == crate::actions::Effect::Read => OutBody::Replayable(
            crate::proxy::replay::ReplayBody::new(limited(body, max, tripped.clone()), replay_max),
        ),
        Some(n) if n <= replay_max => {
            let read = tokio::time::timeout(
                super::actions::INPUT_READ_TIMEOUT,
                axum::body::to_bytes(body, n as usize),
            )
            .await
            .map_err(|_| {
                ApiError::bad_request("the request body did not arrive in time")
                    .with_status(http::StatusCode::REQUEST_TIMEOUT)
            })?;
            let bytes = read.map_err(|_| {
                ApiError::bad_request(
                    "the request body ended early or was longer than its Content-Length",
                )
            })?;
            OutBody::Buffered(bytes)
        }
        _ => OutBody::Streaming(Body::from_stream(limited(body, max, tripped.clone()))),
    };

    // Writes and money calls are recorded (audit log) and may carry an
    // Idempotency-Key; the record needs the whole request, so such a body
    // must be small enough to hold.
    let idempotency_key = headers
        .get(crate::ledger::IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body_bytes: Option<&[u8]> = match &body {
        OutBody::Buffered(b) => Some(b),
        OutBody::Empty => Some(b""),
        OutBody::Replayable(_) | OutBody::Streaming(_) => None,
    };
    if idempotency_key.is_some() && effect != crate::actions::Effect::Read && body_bytes.is_none() {
        return Err(ApiError::bad_request(format!(
            "a request with Idempotency-Key must declare a body of at most {} bytes (upstream.replay_max_bytes)",
            state.config().replay_max_bytes
        )));
    }
    let query = parts.uri.query().unwrap_or_default();
    // Only writes are recorded: a read skips the digests and copies.
    let entry = (effect != crate::actions::Effect::Read).then(|| crate::ledger::Entry {
        connection: conn.name.clone(),
        caller: caller.name.clone(),
        function: function.to_owned(),
        effect,
        request_id: crate::server::middleware::request_id_of(&headers),
        // A streamed body is not held, so only the query is digested (with
        // a marker, so it never equals a call with an empty body).
        params_digest: crate::ledger::digest(&[
            query.as_bytes(),
            body_bytes.unwrap_or(b"\0streamed body"),
        ]),
        fingerprint: crate::ledger::digest(&[
            parts.method.as_str().as_bytes(),
            function.as_bytes(),
            target.rest.as_bytes(),
            query.as_bytes(),
            body_bytes.unwrap_or_default(),
        ]),
    });
    let method = parts.method;
    let conn = conn.clone();
    let function = function.to_owned();
    // A write's reply is read whole within the exchange (it is recorded,
    // and one that breaks off must be `outcome_unknown`); a read's streams.
    let reply = if entry.is_some() {
        ReplyMode::Whole(MAX_RECORDED_REPLY)
    } else {
        ReplyMode::Stream
    };
    let send = move |state: AppState, gate: Option<ledger::SendGate>| async move {
        let request = exchange::Request {
            function: &function,
            method,
            uri: url,
            headers,
            body,
            reply,
            gate: gate.as_ref(),
        };
        exchange::send(&state, &conn, request)
            .await
            .map_err(|e| too_large_if_tripped(e, &tripped, max))
    };
    let Some(entry) = entry else {
        let exchange = send(state, None).await?;
        return Ok(into_client_response(exchange));
    };
    super::guarded(
        &state,
        entry,
        idempotency_key,
        move |state, gate| send(state, Some(gate)),
        into_client_response,
    )
    .await
}

/// The client's body went over the limit: that, not the broken upload, is
/// what the client must fix.
fn too_large_if_tripped(e: CallError, tripped: &AtomicBool, max: u64) -> CallError {
    if tripped.load(Ordering::Relaxed) && matches!(e.cause, Cause::Upstream(_)) {
        return CallError {
            cause: Cause::BodyTooLarge { limit: max },
            ..e
        };
    }
    e
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("the request body is larger than {max} bytes (server.max_body_bytes)"),
    )
}

fn into_client_response(exchange: Exchange) -> Response {
    let body = match exchange.body {
        ReplyBody::Read(bytes) => Body::from(bytes),
        ReplyBody::Streaming(upstream) => Body::new(upstream),
    };
    let mut response = Response::new(body);
    response
        .extensions_mut()
        .insert(crate::server::middleware::UpstreamReply);
    *response.status_mut() = exchange.status;
    *response.headers_mut() = headers::for_client(exchange.headers);
    response
}

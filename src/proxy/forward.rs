//! Forwarding one request: choose the connection, build the target URL,
//! swap credentials, stream the body (counting it against the limit), and
//! stream the answer back unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, Method, header};
use url::Url;

use super::exchange::{self, Exchange, OutBody, ReplyBody};
use super::{headers, path};
use crate::server::error::{ApiError, ErrorKind};
use crate::server::state::AppState;

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

    let url = target_url(&conn.base_url, function, &target.rest, parts.uri.query())?;

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
            super::replay::ReplayBody::new(limited(body, max, tripped.clone()), replay_max),
        ),
        Some(n) if n <= replay_max => {
            let read = tokio::time::timeout(
                crate::server::routes::actions::INPUT_READ_TIMEOUT,
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
        params_digest: body_bytes.map_or_else(
            || "streamed".to_owned(),
            |b| crate::ledger::digest(&[query.as_bytes(), b]),
        ),
        fingerprint: crate::ledger::digest(&[
            parts.method.as_str().as_bytes(),
            function.as_bytes(),
            target.rest.as_bytes(),
            query.as_bytes(),
            body_bytes.unwrap_or_default(),
        ]),
    });
    let method = parts.method;
    let (function, conn_name) = (function.to_owned(), conn.name.clone());
    let call = move |state: AppState| async move {
        let conn = state
            .connection(&conn_name)
            .ok_or_else(|| ApiError::internal(&"connection vanished"))?;
        let exchange =
            match exchange::send(&state, conn, &function, method, url, headers, body).await {
                Ok(e) => e,
                Err(_) if tripped.load(Ordering::Relaxed) => return Err(too_large(max)),
                Err(e) => return Err(e),
            };
        Ok(into_client_response(exchange))
    };
    let Some(entry) = entry else {
        return call(state).await;
    };
    // A write runs to its end in its own task, recorded and audited, even
    // if the client goes away: cancelling it half-way would leave a call
    // Digistore24 may have carried out unrecorded, and its key stuck.
    let task_state = state.clone();
    tokio::spawn(async move {
        crate::ledger::guard(
            &task_state.clone(),
            entry,
            idempotency_key.as_deref(),
            || call(task_state),
        )
        .await
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// `{base}/{function}{rest}?{query}` as the request URI, checked to stay
/// under `base`.
///
/// Built as a string and parsed once by `http` (what the client sends
/// anyway), not through `url::Url`: the `url` parse and the re-parse into a
/// `Uri` cost about 4% of the proxy's CPU per pass-through request.
///
/// # Errors
/// `bad_request` when the result would leave the base URL (defence in depth:
/// `path::parse` already refuses such paths).
pub fn target_url(
    base: &Url,
    function: &str,
    rest: &str,
    query: Option<&str>,
) -> Result<http::Uri, ApiError> {
    let base_str = base.as_str().trim_end_matches('/');
    let mut s = String::with_capacity(
        base_str.len() + function.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1,
    );
    s.push_str(base_str);
    s.push('/');
    s.push_str(function);
    s.push_str(rest);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    let refuse = || {
        ApiError::bad_request("the request path would leave the configured Digistore24 base URL")
    };
    let uri = http::Uri::try_from(s).map_err(|_| refuse())?;
    let base_path = base.path().trim_end_matches('/');
    let path = uri.path();
    // `Uri` keeps dot segments and backslashes where `url` would have
    // resolved them; a server that resolves them could be led out of the
    // base path, so any such segment is refused outright.
    let stays = uri.scheme_str() == Some(base.scheme())
        && uri.host() == base.host_str()
        && uri.port_u16().or_else(|| default_port(base.scheme())) == base.port_or_known_default()
        && path
            .strip_prefix(base_path)
            .is_some_and(|p| p.starts_with('/'))
        && !path.contains('\\')
        && !path.split('/').any(is_dot_segment);
    if stays { Ok(uri) } else { Err(refuse()) }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`, …).
fn is_dot_segment(segment: &str) -> bool {
    [".", "..", "%2e", "%2e%2e", ".%2e", "%2e."]
        .iter()
        .any(|dot| segment.eq_ignore_ascii_case(dot))
}

/// Streams `body`, failing once more than `max` bytes went through.
fn limited(body: Body, max: u64, tripped: Arc<AtomicBool>) -> super::replay::Source {
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > max {
            tripped.store(true, Ordering::Relaxed);
            return Err(axum::Error::new(std::io::Error::other(
                "request body over the limit",
            )));
        }
        Ok(chunk)
    });
    Box::pin(stream)
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

#[cfg(test)]
mod tests {
    use super::target_url;

    fn base() -> url::Url {
        url::Url::parse("https://www.digistore24.com/api/call").unwrap()
    }

    #[test]
    fn the_target_is_base_function_rest_and_query_unchanged() {
        let uri = target_url(&base(), "getPurchase", "/A1B2", Some("x=1&y=%C3%A4")).unwrap();
        assert_eq!(
            uri.to_string(),
            "https://www.digistore24.com/api/call/getPurchase/A1B2?x=1&y=%C3%A4"
        );
        let local = url::Url::parse("http://127.0.0.1:8080/api/call/").unwrap();
        let uri = target_url(&local, "listProducts", "", None).unwrap();
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:8080/api/call/listProducts"
        );
    }

    #[test]
    fn dot_segments_and_backslashes_are_refused_in_any_spelling() {
        for rest in [
            "/..",
            "/.",
            "/../x",
            "/%2e%2e",
            "/%2E%2e/x",
            "/.%2E",
            "/%2e",
            "/a\\..",
        ] {
            let err = target_url(&base(), "getPurchase", rest, None).unwrap_err();
            assert!(err.message.contains("base URL"), "{rest}: {}", err.message);
        }
        // A dot inside a segment is an ordinary character.
        assert!(target_url(&base(), "getPurchase", "/a..b/.x/%2e%2e%2e", None).is_ok());
    }

    #[test]
    fn the_host_stays_whatever_the_rest_and_text_that_is_no_uri_is_an_error() {
        let uri = target_url(&base(), "getPurchase", "/@evil.example:99", None).unwrap();
        assert_eq!(uri.host(), Some("www.digistore24.com"));
        assert!(target_url(&base(), "getPurchase", "/a b", None).is_err());
        assert!(target_url(&base(), "getPurchase", "", Some("a b")).is_err());
    }
}

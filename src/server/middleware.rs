//! Request-wide layers: request id, error rendering, inbound token check and
//! the request span. Order matters and is set in `server::router`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::error::{ApiError, ErrorKind};
use crate::app::AppState;
use crate::policy::Caller;

/// Header carrying the request id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// Makes a random UUID v4 for a request without an `X-Request-Id`.
///
/// tower-http's `MakeRequestUuid` asks the kernel for randomness on every
/// request (a `getrandom` system call each); the thread-local generator is
/// seeded from the kernel and is as unpredictable for this purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRequestId;

impl tower_http::request_id::MakeRequestId for NewRequestId {
    fn make_request_id<B>(
        &mut self,
        _request: &http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(text)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The request id of a request (set by the request-id layer before any
/// handler runs).
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The request id from a header map (the request-id layer has set it).
pub fn request_id_of(headers: &http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Which body an error gets: the proxy's own shape, or on the pass-through
/// routes that shape plus Digistore24's envelope fields
/// ([`super::error::envelope`]), for clients written for Digistore24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Proxy,
    PassThrough,
}

/// Writes the JSON body of every [`ApiError`] response, and turns the bare
/// 404/405 of the router into the same shape. On the pass-through routes a
/// proxy error answered from the ledger (an `Idempotency-Key` repeat, its
/// body recorded in the proxy's shape) gets the envelope fields here too,
/// so a repeat reads like the first answer.
///
/// `id_value` is the request's id header (a clone shares its bytes: no
/// allocation on the path where nothing goes wrong).
async fn render_errors(
    mut response: Response,
    id_value: Option<HeaderValue>,
    shape: Shape,
) -> (Response, Option<ErrorKind>) {
    let id = id_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        None if response.extensions().get::<UpstreamReply>().is_some() => return (response, None),
        None if shape == Shape::PassThrough
            && (response.status().is_client_error() || response.status().is_server_error())
            && has_json_body(&response) =>
        {
            return (with_envelope(response).await, None);
        }
        None if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !has_json_body(&response) =>
        {
            ApiError::new(
                ErrorKind::MethodNotAllowed,
                "this route does not take that HTTP method",
            )
        }
        // axum's own extractor rejections (a bad path parameter, a repeated
        // query key) are plain text; they get the one JSON shape too.
        None if response.status().is_client_error() && !has_json_body(&response) => {
            let status = response.status();
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>();
            let error = ApiError::bad_request(format!("the request could not be read: {text}"))
                .with_status(status);
            return (json_error(parts, &error, id, shape), Some(error.kind));
        }
        None => return (response, None),
    };
    let (parts, _) = response.into_parts();
    (json_error(parts, &error, id, shape), Some(error.kind))
}

fn json_error(
    mut parts: http::response::Parts,
    error: &ApiError,
    id: &str,
    shape: Shape,
) -> Response {
    parts.status = error.status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match shape {
        Shape::Proxy => error.body(id),
        Shape::PassThrough => error.pass_through_body(id),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// Largest body [`with_envelope`] reads: the proxy's error bodies are a
/// few hundred bytes; anything bigger is not one and passes untouched.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A JSON error answered by a handler without an [`ApiError`] (a recorded
/// reply replayed from the ledger) with the envelope fields added when it
/// is the proxy's error. Only a body held in memory (exact size known,
/// small) is read; anything else is returned as it came.
async fn with_envelope(response: Response) -> Response {
    use http_body::Body as _;
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_ERROR_BODY);
    if !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY as usize).await else {
        // Cannot happen for a body of known small size; an empty answer
        // beats a panic.
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if !super::error::envelope(&mut value) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec());
    Response::from_parts(parts, Body::from(body))
}

fn has_json_body(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// Marks a response that carries Digistore24's reply: it passes through
/// unchanged, whatever its status.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamReply;

/// Requires `Authorization: Bearer <token>` when tokens are configured,
/// except on `/healthz` (probes). The exemption is by exact route: a prefix
/// rule would let a pass-through path that merely starts the same way
/// through with the stored key.
fn authenticate(state: &AppState, req: &mut Request) -> Result<(), ApiError> {
    let tokens = &state.config().tokens;
    if tokens.is_empty() {
        req.extensions_mut().insert(Caller::anonymous());
        return Ok(());
    }
    // Digistore24 cannot send a token; the IPN receiver checks the event's
    // signature instead. Exact paths only (see `ipn::is_receiver_path`).
    if req.uri().path() == "/healthz" || crate::ipn::is_receiver_path(req.uri().path()) {
        req.extensions_mut().insert(Caller::anonymous());
        return Ok(());
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(presented) = presented else {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "send `Authorization: Bearer <token>` with one of the tokens in DS24_PROXY_TOKEN",
        ));
    };
    // Compare against every token without stopping early, in constant time,
    // so timing does not tell how much of a guess was right.
    let mut found: Option<&crate::config::InboundToken> = None;
    for token in tokens {
        use secrecy::ExposeSecret;
        // Digests of equal length: comparing them reveals nothing about the
        // configured token's length.
        let same = sha2::Sha256::digest(token.secret.expose_secret().as_bytes())
            .ct_eq(&sha2::Sha256::digest(presented.as_bytes()));
        if bool::from(same) {
            found = Some(token);
        }
    }
    match found {
        Some(token) => {
            req.extensions_mut().insert(Caller {
                name: token.name.as_str().into(),
                policy: token.policy.clone(),
            });
            Ok(())
        }
        None => Err(ApiError::new(
            ErrorKind::Unauthorized,
            "the bearer token is not one of the configured tokens (DS24_PROXY_TOKEN)",
        )),
    }
}

/// Sheds load: at most `server.max_concurrent_requests` requests are
/// handled at once; one more gets `503 overloaded` immediately (with
/// `Retry-After: 1`) rather than queueing without bound. Probes are exempt,
/// so an overloaded proxy still reports itself alive.
fn admit(
    state: &AppState,
    path: &str,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Ok(None);
    }
    let Ok(permit) = state.in_flight().clone().try_acquire_owned() else {
        state.metrics().shed();
        return Err(ApiError::new(
            ErrorKind::Overloaded,
            format!(
                "more than {} requests are in flight; try again in a moment",
                state.config().max_concurrent_requests
            ),
        ));
    };
    Ok(Some(permit))
}

/// Function and connection of a request, filled in by the handler once it
/// knows them, read by [`record_metrics`] when the response is ready.
#[derive(Debug, Clone, Default)]
pub struct CallLabels(std::sync::Arc<std::sync::OnceLock<(String, String)>>);

impl CallLabels {
    /// Records the labels (the first call wins).
    pub fn set(extensions: &http::Extensions, function: &str, connection: &str) {
        if let Some(labels) = extensions.get::<CallLabels>() {
            // Only catalog names become label values: clients choose the rest.
            let function = crate::actions::canonical(function).map_or("other", |a| a.function);
            let _ = labels.0.set((function.to_owned(), connection.to_owned()));
        }
    }
}

/// Every request's own middleware, in one layer, outermost first: metrics
/// (count by route, function, connection and status; the in-flight gauge),
/// the error renderer, load shedding, then the inbound token check.
///
/// One `from_fn` layer rather than four: each layer boxed a future and
/// cloned the boxed inner service on every request.
pub async fn per_request(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let labels = CallLabels::default();
    req.extensions_mut().insert(labels.clone());
    let route = route_of(req.extensions().get::<axum::extract::MatchedPath>());
    let shape = if route == "passthrough" {
        Shape::PassThrough
    } else {
        Shape::Proxy
    };
    let _in_flight = state.metrics().in_flight();
    let id_value = req.headers().get(REQUEST_ID).cloned();
    let mut caller: Option<std::sync::Arc<str>> = None;
    let response = match admit(&state, req.uri().path()) {
        Err(overloaded) => {
            let mut response = overloaded.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        // The permit is held until the handler has answered (head).
        Ok(_permit) => match authenticate(&state, &mut req) {
            Ok(()) => {
                caller = req.extensions().get::<Caller>().map(|c| c.name.clone());
                next.run(req).await
            }
            Err(refused) => refused.into_response(),
        },
    };
    let (response, kind) = render_errors(response, id_value, shape).await;
    let (function, connection) = labels
        .0
        .get()
        .map(|(f, c)| (f.as_str(), c.as_str()))
        .unwrap_or(("", ""));
    state
        .metrics()
        .request(route, function, connection, response.status().as_u16());
    if kind == Some(ErrorKind::ForbiddenByPolicy) {
        let token = caller.as_deref().unwrap_or("anonymous");
        state.metrics().policy_denial(token, function);
    }
    response
}

/// The `route` of a request, from the route the router matched (its
/// pattern, `/actions/{key}`): a request no route matched is the router's
/// fallback, the pass-through, whatever its path looks like
/// (`/api/call//actions/x` is a call of the function `actions`).
fn route_of(matched: Option<&axum::extract::MatchedPath>) -> &'static str {
    let Some(matched) = matched.map(axum::extract::MatchedPath::as_str) else {
        return "passthrough";
    };
    if matched.starts_with("/ipn/") {
        "ipn"
    } else if matched.starts_with("/actions") || matched.contains("/actions/") {
        "action"
    } else {
        "admin"
    }
}

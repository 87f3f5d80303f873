//! Request-wide layers: request id, error rendering, inbound token check and
//! the request span. Order matters and is set in `server::router`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ErrorKind};
use super::state::AppState;

/// Header carrying the request id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The request id of a request (set by the request-id layer before any
/// handler runs).
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Writes the JSON body of every [`ApiError`] response, and turns the bare
/// 404/405 of the router into the same shape.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let mut response = next.run(req).await;
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        None if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !has_body_type(&response) =>
        {
            ApiError::new(
                ErrorKind::MethodNotAllowed,
                "this route does not take that HTTP method",
            )
        }
        None => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.status = error.status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&error.body(&id)).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

fn has_body_type(response: &Response) -> bool {
    response.headers().contains_key(header::CONTENT_TYPE)
}

/// Requires `Authorization: Bearer <token>` when tokens are configured,
/// except on `/healthz` (probes) and `/ipn/…` (protected by the IPN
/// signature, and Digistore24 cannot send a token).
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let tokens = &state.config().tokens;
    let path = req.uri().path();
    if tokens.is_empty() || path == "/healthz" || path.starts_with("/ipn/") {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::new(
            ErrorKind::Unauthorized,
            "send `Authorization: Bearer <token>` with one of the tokens in DS24_PROXY_TOKEN",
        )
        .into_response();
    };
    // Compare against every token without stopping early, in constant time,
    // so timing does not tell how much of a guess was right.
    let mut matched = subtle::Choice::from(0);
    for token in tokens {
        use secrecy::ExposeSecret;
        matched |= token
            .0
            .expose_secret()
            .as_bytes()
            .ct_eq(presented.as_bytes());
    }
    if bool::from(matched) {
        next.run(req).await
    } else {
        ApiError::new(
            ErrorKind::Unauthorized,
            "the bearer token is not one of the configured tokens (DS24_PROXY_TOKEN)",
        )
        .into_response()
    }
}

//! The proxy's own routes (everything else is pass-through).

pub mod actions;
pub mod connections;
pub mod health;
pub mod openapi;
pub mod passthrough;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// The answer to a repeat of a recorded call (`Idempotent-Replayed: true`).
pub fn replayed(recorded: crate::ledger::Recorded) -> Response {
    let mut response = Response::new(Body::from(recorded.body));
    *response.status_mut() = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = recorded
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

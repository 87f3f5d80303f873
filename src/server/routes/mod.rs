//! The proxy's own routes (everything else is pass-through).

pub mod actions;
pub mod connections;
pub mod events;
pub mod health;
pub mod ipn;
pub mod openapi;
pub mod passthrough;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use super::error::ApiError;
use crate::app::AppState;
use crate::call::CallError;
use crate::ledger;

/// Runs a write or money call through the ledger (audit log, and the
/// `Idempotency-Key` record when `key` is set), in its own task: a write
/// runs to its end, recorded and audited, even if the client goes away;
/// cancelling it half-way would leave a call Digistore24 may have carried
/// out unrecorded, and its key stuck. `answer` turns a fresh answer into
/// the response; a repeat gets the recorded one.
pub async fn guarded<T, F, Fut>(
    state: &AppState,
    entry: ledger::Entry,
    key: Option<String>,
    call: F,
    answer: impl FnOnce(T) -> Response,
) -> Result<Response, ApiError>
where
    T: ledger::Record + Send + 'static,
    F: FnOnce(AppState, ledger::SendGate) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, CallError>> + Send,
{
    let request_id = entry.request_id.clone();
    let task_state = state.clone();
    let guarded = tokio::spawn(async move {
        ledger::guard(
            &task_state.clone(),
            entry,
            key.as_deref(),
            |e| super::error::error_reply(e, &request_id),
            |gate| call(task_state, gate),
        )
        .await
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(match guarded {
        ledger::Guarded::Fresh(fresh) => answer(fresh),
        ledger::Guarded::Replayed(recorded) => replayed(recorded),
    })
}

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

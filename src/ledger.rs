//! The record of write and money calls: idempotency keys (a repeated call
//! with the same `Idempotency-Key` is answered from the record instead of
//! reaching Digistore24 again) and the audit log (who called what, when,
//! with what outcome, and a digest of the parameters, never the
//! parameters).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::actions::Effect;
use crate::server::error::{ApiError, ErrorKind};
use crate::server::state::AppState;
use crate::store::{AuditEntry, Begin, Store};

/// The header clients send.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Largest reply kept in a record; write replies are a few hundred bytes.
pub const MAX_RECORDED_REPLY: usize = 4 * 1024 * 1024;
/// How long a repeat waits for the first call of the same key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(60);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Hex SHA-256 of the parts, each length-prefixed so that moving a byte
/// from one part to the next changes the digest.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// One write or money call, for the ledger.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The connection used.
    pub connection: String,
    /// The caller's identity.
    pub caller: Arc<str>,
    /// The Digistore24 function.
    pub function: String,
    /// Its effect (only write and money calls are recorded).
    pub effect: Effect,
    /// The request id.
    pub request_id: String,
    /// Digest of the parameters.
    pub params_digest: String,
    /// Digest of the whole request, for idempotency.
    pub fingerprint: String,
}

/// Runs `call` under the idempotency key (if any) and writes the audit
/// entry. Reads pass straight through.
///
/// # Errors
/// `422` for a key reused with a different request, `409` when the first
/// call with the key is still running after a minute, and the call's own
/// errors.
pub async fn guard<F, Fut>(
    state: &AppState,
    entry: Entry,
    key: Option<&str>,
    call: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    if entry.effect == Effect::Read {
        return call().await;
    }
    let store = state.ledger().await?;
    let result = match key {
        None => call().await,
        Some(key) => idempotent(state, &store, &entry, key, call).await,
    };
    let outcome = match &result {
        Ok(response) if response.headers().contains_key("idempotent-replayed") => {
            "replayed".to_owned()
        }
        Ok(response) => response.status().as_u16().to_string(),
        Err(e) => format!("{} {}", e.kind.as_str(), e.status.as_u16()),
    };
    let audit = AuditEntry {
        id: 0,
        at: now(),
        connection: entry.connection.clone(),
        token: entry.caller.to_string(),
        function: entry.function.clone(),
        effect: if entry.effect == Effect::Money {
            "money"
        } else {
            "write"
        }
        .to_owned(),
        request_id: entry.request_id.clone(),
        outcome,
        params_digest: entry.params_digest.clone(),
    };
    let writer = store.clone();
    match tokio::task::spawn_blocking(move || writer.append_audit(&audit)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, function = %entry.function, "could not write the audit entry");
        }
        Err(e) => tracing::error!(error = %e, "audit writer failed"),
    }
    result
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

async fn idempotent<F, Fut>(
    state: &AppState,
    store: &Arc<dyn Store>,
    entry: &Entry,
    key: &str,
    call: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    let (conn, k, fp) = (
        entry.connection.clone(),
        key.to_owned(),
        entry.fingerprint.clone(),
    );
    let ttl = state.config().idempotency_ttl.as_secs() as i64;
    let waited_since = std::time::Instant::now();
    loop {
        let (c, kk, f) = (conn.clone(), k.clone(), fp.clone());
        // store-branch: adapt — the lease is the whole TTL: this ledger has no
        // heartbeat yet, so a shorter lease would lapse under a slow live call.
        let begun = blocking(store, move |s| {
            s.begin_idempotent(&c, &kk, &f, now(), ttl, ttl)
        })
        .await?;
        match begun {
            Begin::Started => break,
            Begin::Done(record) => {
                state.metrics().idempotent_replay(&entry.connection);
                let mut response = Response::new(Body::from(record.body.unwrap_or_default()));
                *response.status_mut() =
                    StatusCode::from_u16(record.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
                if let Some(ct) = record
                    .content_type
                    .and_then(|c| HeaderValue::from_str(&c).ok())
                {
                    response.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
            Begin::Mismatch(_) => {
                return Err(ApiError::new(ErrorKind::IdempotencyKeyReused, "this Idempotency-Key was used for a different request; use a new key for a new request")
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY));
            }
            Begin::InProgress(_) if waited_since.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Begin::InProgress(_) => {
                return Err(ApiError::new(
                    ErrorKind::IdempotencyKeyReused,
                    "the first request with this Idempotency-Key is still running; try again later",
                )
                .with_status(StatusCode::CONFLICT));
            }
            // store-branch: adapt — the first call was cut off after it may
            // have been sent: never send it again; record and answer
            // outcome_unknown (the store invents no reply bodies).
            Begin::Orphaned(_) => {
                let e = ApiError::new(
                    ErrorKind::OutcomeUnknown,
                    "the first request with this Idempotency-Key was cut off after it may have reached Digistore24; it was not sent again. Check its result before trying again with a new key",
                );
                let body = serde_json::to_vec(&e.body(&entry.request_id)).unwrap_or_default();
                let (c, kk, status) = (conn, k, e.status.as_u16());
                blocking(store, move |s| {
                    s.complete_idempotent(&c, &kk, status, Some("application/json"), &body)
                })
                .await?;
                return Err(e);
            }
        }
    }
    // store-branch: adapt — from here on the call may send: mark it so that a
    // lapsed lease counts as "may have run", never as "free to send". If the
    // mark fails, nothing is sent; the record is not abandoned either (it may
    // be another caller's by now) and stays claimed until its lease lapses.
    let (c, kk) = (conn.clone(), k.clone());
    blocking(store, move |s| {
        s.mark_idempotent_sending(&c, &kk, now(), now().saturating_add(ttl))
    })
    .await?;
    match call().await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_RECORDED_REPLY).await {
                Ok(b) => b,
                Err(_) => {
                    // The call happened; its reply cannot be kept. Keep the key
                    // taken so that a repeat cannot send it again.
                    let (c, kk) = (conn.clone(), k.clone());
                    blocking(store, move |s| {
                        s.complete_idempotent(
                            &c,
                            &kk,
                            502,
                            Some("text/plain"),
                            b"reply too large to record",
                        )
                    })
                    .await?;
                    return Err(ApiError::new(
                        ErrorKind::UpstreamError,
                        "the call was made, but its reply was too large to record and pass on",
                    ));
                }
            };
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = parts.status.as_u16();
            if status == 429 {
                // "Too many requests" is not an outcome: nothing was done, so
                // the key is freed for a later try.
                let _ = blocking(store, move |s| s.abandon_idempotent(&conn, &k)).await;
                return Ok(Response::from_parts(parts, Body::from(bytes)));
            }
            let (c, kk, body) = (conn, k, bytes.clone());
            if let Err(e) = blocking(store, move |s| {
                s.complete_idempotent(&c, &kk, status, content_type.as_deref(), &body)
            })
            .await
            {
                // The call happened: its answer goes to the caller even if the
                // record could not be completed (the key stays taken).
                tracing::error!(error = %e.message, "could not record the reply of an idempotent call");
            }
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
        // The call may have reached Digistore24: the record keeps this answer,
        // so a repeat with the same key is told the same and sends nothing.
        Err(e) if !nothing_was_sent(&e) => {
            let body = serde_json::to_vec(&e.body(&entry.request_id)).unwrap_or_default();
            let (c, kk, status) = (conn, k, e.status.as_u16());
            blocking(store, move |s| {
                s.complete_idempotent(&c, &kk, status, Some("application/json"), &body)
            })
            .await?;
            Err(e)
        }
        // Nothing reached Digistore24: free the key for a retry.
        Err(e) => {
            blocking(store, move |s| s.abandon_idempotent(&conn, &k)).await?;
            Err(e)
        }
    }
}

/// Deletes expired idempotency records now and then, so the store does not
/// grow with every key ever sent (expired records are ignored anyway).
pub async fn purge_periodically(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Some(store) = state.ledger_if_open() else {
            continue;
        };
        match tokio::task::spawn_blocking(move || store.purge_expired_idempotency(now())).await {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(records = n, "expired idempotency records deleted");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not delete expired idempotency records");
            }
            _ => {}
        }
    }
}

/// Errors that come before anything could reach Digistore24 (refused by the
/// proxy, the breaker, the rate limit, the credential or a failed connect).
/// Any other error keeps an idempotency key taken: the call may have run.
fn nothing_was_sent(e: &ApiError) -> bool {
    matches!(
        e.kind,
        ErrorKind::BadRequest
            | ErrorKind::ValidationFailed
            | ErrorKind::UnknownAction
            | ErrorKind::UnknownConnection
            | ErrorKind::Unauthorized
            | ErrorKind::ForbiddenByPolicy
            | ErrorKind::CredentialMissing
            | ErrorKind::CredentialRejected
            | ErrorKind::RateLimited
            | ErrorKind::Overloaded
            | ErrorKind::PayloadTooLarge
            | ErrorKind::IdempotencyKeyReused
            | ErrorKind::UpstreamUnavailable
    ) || e.status == StatusCode::TOO_MANY_REQUESTS
}

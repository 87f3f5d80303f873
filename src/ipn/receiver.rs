//! `GET` and `POST /ipn/{connection}`: where Digistore24 delivers events.
//!
//! A POST is refused (`403`, nothing stored) unless its `sha_sign` verifies
//! with the connection's passphrase. A verified event is committed to the
//! store before `OK` is answered; if that fails the answer is an error, so
//! Digistore24 sends it again. A redelivery is acknowledged and only
//! counted. Inbound tokens do not apply here; the signature does.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use secrecy::SecretString;

use super::signature::{self, Refusal};
use crate::server::error::{ApiError, ErrorKind};
use crate::server::state::AppState;
use crate::store::{IpnStored, NewIpnEvent};

/// The reply Digistore24 waits for (API-FACTS §7.4).
fn ok() -> Response {
    let mut response = (StatusCode::OK, "OK").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn known(state: &AppState, connection: &str) -> Result<(), ApiError> {
    if state.config().connections.contains_key(connection) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnknownConnection,
            format!(
                "there is no connection `{connection}`; register /ipn/NAME for a configured connection"
            ),
        ))
    }
}

/// `GET /ipn/{connection}`: `ipnSetup` checks the URL with a GET that must
/// answer 200.
pub async fn check(
    State(state): State<AppState>,
    Path(connection): Path<String>,
) -> Result<Response, ApiError> {
    known(&state, &connection)?;
    Ok(ok())
}

/// The passphrase of `connection`: configuration and environment first,
/// then the store (`ds24-proxy ipn setup`).
///
/// # Errors
/// When the store cannot be read.
pub async fn passphrase(
    state: &AppState,
    connection: &str,
) -> Result<Option<SecretString>, ApiError> {
    if let Some(p) = state
        .config()
        .connections
        .get(connection)
        .and_then(|c| c.ipn.passphrase.clone())
    {
        return Ok(Some(p));
    }
    let store = state.ledger().await?;
    let name = connection.to_owned();
    tokio::task::spawn_blocking(move || store.ipn_passphrase(&name))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| not_stored(&e))
}

fn not_stored(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "IPN: the store failed; answering an error so Digistore24 sends the event again");
    ApiError::new(
        ErrorKind::Internal,
        "the event could not be stored; Digistore24 will send it again (check the data directory)",
    )
    .with_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// `POST /ipn/{connection}`: verify, store, answer `OK`.
pub async fn receive(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    known(&state, &connection)?;
    // Decoded exactly once, as Digistore24 signs the decoded values.
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let passphrase = passphrase(&state, &connection).await?;
    if let Err(refusal) = signature::verify(&fields, passphrase.as_ref()) {
        state.metrics().ipn_rejected(&connection, refusal.as_str());
        // Never the payload: it holds buyers' personal data.
        tracing::warn!(
            connection = %connection,
            reason = refusal.as_str(),
            fields = fields.len(),
            "IPN refused"
        );
        let hint = match refusal {
            Refusal::NoPassphrase => format!(
                "no IPN passphrase is configured for connection `{connection}`: run `ds24-proxy ipn setup`, or set DS24_IPN_PASSPHRASE / connections.{connection}.ipn.passphrase_env"
            ),
            Refusal::MissingSignature => "the event carries no sha_sign".to_owned(),
            Refusal::WrongSignature => {
                format!("the sha_sign does not match the passphrase of connection `{connection}`")
            }
        };
        return Err(ApiError::new(ErrorKind::IpnRefused, hint));
    }
    let event = NewIpnEvent {
        connection: connection.clone(),
        event: super::field(&fields, "event")
            .unwrap_or("unknown")
            .to_owned(),
        order_id: super::field(&fields, "order_id").map(str::to_owned),
        transaction_id: super::field(&fields, "transaction_id").map(str::to_owned),
        fingerprint: super::fingerprint(&fields),
        fields,
        received_at_ms: super::now_ms(),
    };
    let targets: Vec<String> = state
        .config()
        .connections
        .get(&connection)
        .map(|c| c.ipn.forward_to.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let store = state
        .ledger()
        .await
        .map_err(|e| not_stored(&e.to_string()))?;
    let kind = event.event.clone();
    // Committed before the answer: the write runs in its own task, so a
    // Digistore24 that hangs up does not cancel it half-way.
    let stored = tokio::task::spawn_blocking(move || store.ipn_store(&event, &targets))
        .await
        .map_err(|e| not_stored(&e))?
        .map_err(|e| not_stored(&e))?;
    match stored {
        IpnStored::New(id) => {
            state.metrics().ipn_received(&connection, &kind, "new");
            tracing::info!(connection = %connection, event = %kind, id, "IPN stored");
            state.ipn_wake();
        }
        IpnStored::Duplicate(id) => {
            state
                .metrics()
                .ipn_received(&connection, &kind, "redelivery");
            tracing::info!(connection = %connection, event = %kind, id, "IPN redelivered; already stored");
        }
    }
    Ok(ok())
}

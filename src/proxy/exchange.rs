//! One exchange with Digistore24 on behalf of a connection, shared by the
//! pass-through and the actions: inject the key, send, recognise a rejected
//! key, renew it once and replay the request when its body can be sent
//! again.
//!
//! A rejection is HTTP 401, or a small JSON reply whose envelope carries a
//! bad-key or missing-key code, also with HTTP 200 (Digistore24's historic
//! style, API-FACTS §2). Such replies are read before they are passed on;
//! large or unknown-length replies stream untouched. A permission error
//! (code 5: a read-only key calling a write) is not a rejection: renewing
//! would not help.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

use crate::actions::Effect;
use crate::credentials::{ApiKey, Renewal};
use crate::server::error::{ApiError, ErrorKind};
use crate::server::state::{AppState, Connection};
use crate::upstream::{Reply, UpstreamError, UpstreamRequest, codes, envelope};

/// Replies up to this size are read to look for a rejection; Digistore24's
/// error envelopes are a few hundred bytes.
pub const PEEK_MAX_BYTES: u64 = 64 * 1024;

/// A request body as the exchange needs to know it.
#[derive(Debug)]
pub enum OutBody {
    /// No body.
    Empty,
    /// Held in memory: can be sent again after a renewal.
    Buffered(Bytes),
    /// Streamed from the client: sent once.
    Streaming(reqwest::Body),
}

/// The upstream reply.
#[derive(Debug)]
pub struct Exchange {
    /// Status.
    pub status: StatusCode,
    /// Headers, as received.
    pub headers: HeaderMap,
    /// Body.
    pub body: ReplyBody,
}

/// A reply body: read already (small JSON), or still streaming.
#[derive(Debug)]
pub enum ReplyBody {
    /// Read in full while checking for a rejection.
    Read(Bytes),
    /// Not read yet.
    Streaming(reqwest::Response),
}

/// Sends `method url` with `headers` and `body` for `conn`.
///
/// # Errors
/// `credential_*` when no working key can be had, `upstream_*` for
/// transport failures.
pub async fn send(
    state: &AppState,
    conn: &Connection,
    function: &str,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: OutBody,
) -> Result<Exchange, ApiError> {
    let effect = crate::actions::effect_of_function(function);
    let credential = &conn.credential;
    let mut body = Some(body);
    for attempt in 0..2 {
        let key = credential.key().await?;
        let mut headers = headers.clone();
        credential.apply(&mut headers, &key);
        let (out, replayable) = match body.take().unwrap_or(OutBody::Empty) {
            OutBody::Empty => {
                body = Some(OutBody::Empty);
                (reqwest::Body::from(Bytes::new()), true)
            }
            OutBody::Buffered(bytes) => {
                body = Some(OutBody::Buffered(bytes.clone()));
                (reqwest::Body::from(bytes), true)
            }
            OutBody::Streaming(stream) => (stream, false),
        };
        let request = UpstreamRequest {
            method: method.clone(),
            url: url.clone(),
            headers,
            body: out,
        };
        let response = state
            .upstream()
            .send(request)
            .await
            .map_err(|e| failed(e, effect, function))?;
        let exchange = inspect(response)
            .await
            .map_err(|e| failed(e, effect, function))?;
        if !is_rejection(&exchange) {
            credential.mark_ok();
            return Ok(exchange);
        }
        tracing::warn!(connection = %conn.name, attempt, "Digistore24 rejected the API key");
        if attempt == 1 {
            break;
        }
        match credential.renew_after_rejection(&key).await? {
            Renewal::Changed(_) if replayable => continue,
            Renewal::Changed(_) => {
                return Err(crate::credentials::CredentialError::RenewedNotReplayable {
                    connection: conn.name.clone(),
                }
                .into());
            }
            Renewal::Unchanged => break,
        }
    }
    Err(credential.rejected_error().into())
}

/// A failed exchange as the caller sees it. A write or money call whose
/// bytes may have reached Digistore24 is `outcome_unknown`: telling the
/// caller "unavailable" would invite a retry, and a retried refund can pay
/// out twice.
fn failed(e: UpstreamError, effect: Effect, function: &str) -> ApiError {
    if effect == Effect::Read || e.never_sent() {
        return e.into();
    }
    tracing::warn!(error = %e, function, "a {effect:?} call failed after it may have reached Digistore24");
    ApiError::new(
        ErrorKind::OutcomeUnknown,
        format!(
            "{function} may or may not have been carried out by Digistore24 ({e}); it was not sent again. Check its result (for example with a read action) before trying again"
        ),
    )
}

/// Reads small JSON replies (where a rejection could hide); leaves the rest
/// streaming.
async fn inspect(mut response: reqwest::Response) -> Result<Exchange, UpstreamError> {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let small = response
        .content_length()
        .is_some_and(|n| n <= PEEK_MAX_BYTES);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = if small && (json || status == StatusCode::UNAUTHORIZED) {
        ReplyBody::Read(
            response
                .bytes()
                .await
                .map_err(|e| UpstreamError::from_body(&e))?,
        )
    } else {
        ReplyBody::Streaming(response)
    };
    Ok(Exchange {
        status,
        headers,
        body,
    })
}

/// True for a reply that says the key itself is bad or missing.
pub fn is_rejection(exchange: &Exchange) -> bool {
    let ReplyBody::Read(bytes) = &exchange.body else {
        return exchange.status == StatusCode::UNAUTHORIZED;
    };
    // Cheap pre-check: most replies are successes and need no parse.
    let maybe_error = exchange.status != StatusCode::OK || memchr_error(bytes);
    if !maybe_error {
        return false;
    }
    match envelope::parse(exchange.status.as_u16(), bytes) {
        Reply::Error(e) => match e.code {
            Some(codes::BAD_KEY | codes::KEY_MISSING) => true,
            Some(codes::PERMISSION_DENIED) => false,
            _ => exchange.status == StatusCode::UNAUTHORIZED,
        },
        Reply::Success { .. } => false,
    }
}

fn memchr_error(bytes: &[u8]) -> bool {
    bytes.windows(7).any(|w| w == b"\"error\"")
}

/// The key currently in use, for callers that need it outside an exchange.
pub async fn current_key(conn: &Connection) -> Result<ApiKey, ApiError> {
    Ok(conn.credential.key().await?)
}

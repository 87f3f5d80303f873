//! The call pipeline: one exchange with Digistore24 on behalf of a
//! connection ([`exchange`]: breaker, rate limit, credential, the ledger's
//! gate, send, renewal and replay, retry), and on top of it calling a
//! catalog action: the validated input is encoded as Digistore24 expects,
//! POSTed through the same exchange, and the envelope is unwrapped. Paging
//! lives in [`pages`]. Every failure is a [`CallError`] that says whether the
//! request may have reached Digistore24.

pub mod direct;
pub mod error;
pub mod exchange;
pub mod pages;
pub mod record;

use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Map, Value};

pub use error::{CallError, Cause, Delivery};
use exchange::{OutBody, ReplyBody, ReplyMode};

use crate::actions::ActionDef;
use crate::app::{AppState, Connection};
use crate::proxy::target_url;
use crate::upstream::{Ds24Error, Reply, envelope};
use record::SendGate;

/// Largest upstream reply an action reads into memory. An action has to
/// parse the reply to unwrap it; anything bigger belongs on the streaming
/// pass-through route (or `all_pages` with NDJSON).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// The unwrapped result of one call.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The envelope's `data`.
    pub data: Value,
    /// The envelope's `api_version`.
    pub api_version: Option<String>,
}

/// Calls `action` once on `conn` with an already validated `input`.
///
/// # Errors
/// [`CallError`]: Digistore24's refusal, or a failure to reach it.
pub async fn call(
    state: &AppState,
    conn: &Connection,
    action: &ActionDef,
    input: &Map<String, Value>,
) -> Result<Answer, CallError> {
    let form = action.encode_form(input);
    call_function(state, conn, action.function, form, None).await
}

/// POSTs a form body to `function` and unwraps the envelope.
///
/// # Errors
/// As [`call`].
pub async fn call_function(
    state: &AppState,
    conn: &Connection,
    function: &str,
    form: String,
    gate: Option<&SendGate>,
) -> Result<Answer, CallError> {
    let body = post_form(state, conn, function, form, gate).await?;
    match envelope::parse(body.0, &body.1) {
        Reply::Success { data, api_version } => Ok(Answer { data, api_version }),
        Reply::Error(e) => Err(refused(e, function)),
    }
}

/// Like [`call_function`], with `data` kept as the raw JSON Digistore24
/// sent: for answers passed on unchanged, no tree is built (measured: the
/// parse and re-encoding of a 1 KB reply were most of an action's cost
/// over a pass-through call).
///
/// # Errors
/// As [`call`].
pub async fn call_function_raw(
    state: &AppState,
    conn: &Connection,
    function: &str,
    form: String,
    gate: Option<&SendGate>,
) -> Result<envelope::RawSuccess, CallError> {
    let (status, body) = post_form(state, conn, function, form, gate).await?;
    envelope::parse_raw(status, &body).map_err(|e| refused(e, function))
}

/// The HTTP status and whole body of one form POST to `function`, read
/// within the exchange so that a reply that breaks off is a failed attempt.
async fn post_form(
    state: &AppState,
    conn: &Connection,
    function: &str,
    form: String,
    gate: Option<&SendGate>,
) -> Result<(u16, bytes::Bytes), CallError> {
    let effect = crate::actions::effect_of_function(function);
    let uri = target_url(&conn.base_url, function, "", None)
        .map_err(|_| CallError::new(function, effect, Cause::BadTarget))?;
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let exchange = exchange::send(
        state,
        conn,
        exchange::Request {
            function,
            method: Method::POST,
            uri,
            headers,
            body: OutBody::Buffered(form.into()),
            reply: ReplyMode::Whole(MAX_REPLY_BYTES),
            gate,
        },
    )
    .await?;
    let status = exchange.status.as_u16();
    let body = match exchange.body {
        ReplyBody::Read(body) => body,
        // ReplyMode::Whole reads every reply; should one still stream,
        // read it here rather than fail.
        ReplyBody::Streaming(reply) => reply
            .read_up_to(MAX_REPLY_BYTES)
            .await
            .map_err(|e| CallError::new(function, effect, Cause::Upstream(e)))?
            .ok_or_else(|| {
                CallError::new(
                    function,
                    effect,
                    Cause::ReplyTooLarge {
                        limit: MAX_REPLY_BYTES,
                    },
                )
            })?,
    };
    Ok((status, body))
}

/// Digistore24's error reply, or a page from a server in front of it that
/// is no answer at all.
fn refused(e: Ds24Error, function: &str) -> CallError {
    let effect = crate::actions::effect_of_function(function);
    let cause = if e.not_an_envelope {
        Cause::NotAnEnvelope(e)
    } else {
        Cause::Refused(e)
    };
    CallError::new(function, effect, cause)
}

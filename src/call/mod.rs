//! Calling a catalog action: the validated input is encoded as Digistore24
//! expects, POSTed through the same upstream client, connection and key as
//! the pass-through, and the envelope is unwrapped. Paging lives in [`pages`].

pub mod direct;
pub mod pages;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Map, Value};

use crate::actions::ActionDef;
use crate::proxy::exchange::{self, OutBody, ReplyBody};
use crate::proxy::target_url;
use crate::server::error::ApiError;
use crate::server::state::{AppState, Connection};
use crate::upstream::{Ds24Error, Reply, envelope};

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
/// `upstream_error` for a Digistore24 error reply, `upstream_unavailable`
/// when it cannot be reached, `credential_missing` without a key.
pub async fn call(
    state: &AppState,
    conn: &Connection,
    action: &ActionDef,
    input: &Map<String, Value>,
) -> Result<Answer, ApiError> {
    let form = action.encode_form(input);
    call_function(state, conn, action.function, form).await
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
) -> Result<Answer, ApiError> {
    let (status, body) = post_form(state, conn, function, form).await?;
    match envelope::parse(status, &body) {
        Reply::Success { data, api_version } => Ok(Answer { data, api_version }),
        Reply::Error(e) => Err(judge(e, function)),
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
) -> Result<envelope::RawSuccess, ApiError> {
    let (status, body) = post_form(state, conn, function, form).await?;
    envelope::parse_raw(status, &body).map_err(|e| judge(e, function))
}

/// The HTTP status and whole body of one form POST to `function`.
async fn post_form(
    state: &AppState,
    conn: &Connection,
    function: &str,
    form: String,
) -> Result<(u16, Bytes), ApiError> {
    let url = target_url(&conn.base_url, function, "", None)?;
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let exchange = exchange::send(
        state,
        conn,
        function,
        Method::POST,
        url,
        headers,
        OutBody::Buffered(form.into()),
    )
    .await?;
    let status = exchange.status.as_u16();
    let body = match exchange.body {
        ReplyBody::Read(bytes) => bytes,
        ReplyBody::Streaming(response) => read_limited(response).await?,
    };
    Ok((status, body))
}

/// An error reply as the caller sees it. A page from a front server
/// instead of Digistore24's answer: for a write or money call nobody knows
/// whether it ran.
fn judge(e: Ds24Error, function: &str) -> ApiError {
    if e.not_an_envelope
        && crate::actions::effect_of_function(function) != crate::actions::Effect::Read
    {
        return ApiError::new(
            crate::server::error::ErrorKind::OutcomeUnknown,
            format!(
                "{function} may or may not have been carried out: the reply was not Digistore24's ({}); check its result before trying again",
                e.message
            ),
        );
    }
    e.into()
}

async fn read_limited(body: crate::upstream::UpstreamBody) -> Result<Bytes, ApiError> {
    body.read_up_to(MAX_REPLY_BYTES)
        .await?
        .ok_or_else(too_large_reply)
}

fn too_large_reply() -> ApiError {
    Ds24Error {
        code: None,
        message: format!("the reply is larger than {MAX_REPLY_BYTES} bytes; call the function on the pass-through route, which streams"),
        http_status: 502,
        not_an_envelope: true,
    }
    .into()
}

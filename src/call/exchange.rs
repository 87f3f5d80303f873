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

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};

use super::error::{CallError, Cause};
use super::record::{Record, Recorded, SendGate};
use crate::actions::Effect;
use crate::app::{AppState, Connection};
use crate::credentials::{CredentialError, Renewal};
use crate::resilience::{
    BreakerState, Effect as RetryEffect, Outcome, Permit, Verdict, parse_retry_after,
};
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
    /// Streamed from the client as it arrives, and kept (up to a limit) so
    /// that it can be sent again.
    Replayable(crate::proxy::replay::ReplayBody),
    /// Streamed from the client: sent once.
    Streaming(axum::body::Body),
}

/// How much of the reply the exchange reads before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Small JSON replies are read (a rejection could hide there); the rest
    /// streams to the caller.
    Stream,
    /// The whole reply, up to this many bytes, is read within the attempt:
    /// a reply that breaks off is then a failed attempt (retried for a
    /// read, `outcome_unknown` for a write) instead of a broken stream. One
    /// whose Content-Length is over the limit streams as in `Stream`.
    Whole(usize),
}

/// One call to send: what, where, and how its reply is wanted.
#[derive(Debug)]
pub struct Request<'a> {
    /// The Digistore24 function (its catalog spelling when known).
    pub function: &'a str,
    /// Method, kept from the client.
    pub method: Method,
    /// The full target URI.
    pub uri: http::Uri,
    /// Headers to send; the key is added per attempt.
    pub headers: HeaderMap,
    /// The body.
    pub body: OutBody,
    /// How much of the reply to read.
    pub reply: ReplyMode,
    /// The ledger's record of a write, told before bytes may leave.
    pub gate: Option<&'a SendGate>,
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

impl Record for Exchange {
    fn status(&self) -> u16 {
        self.status.as_u16()
    }

    fn recorded(&self) -> Option<Recorded> {
        // A reply that declared itself too large to hold streams on.
        let ReplyBody::Read(bytes) = &self.body else {
            return None;
        };
        Some(Recorded {
            status: self.status.as_u16(),
            content_type: self
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: bytes.clone(),
        })
    }

    fn delivery(&self) -> crate::upstream::Delivery {
        if too_many_requests(self) {
            crate::upstream::Delivery::Declined
        } else {
            crate::upstream::Delivery::Answered
        }
    }
}

/// A reply body: read already (small JSON), or still streaming.
#[derive(Debug)]
pub enum ReplyBody {
    /// Read in full while checking for a rejection.
    Read(Bytes),
    /// Not read yet.
    Streaming(crate::upstream::UpstreamBody),
}

/// Sends `request` for `conn`.
///
/// On the way: the connection's circuit breaker (fail fast while the
/// upstream is down), its rate limit (wait for a token, or 429), the key
/// (renewed once after a rejection), the ledger's gate (a write is recorded
/// as "may have been sent" before its first byte leaves), and retries as the
/// policy allows: a read after connection errors, resets, timeouts,
/// 502/503/504 and 429 (honouring `Retry-After`); a write or money call only
/// when it provably never left the proxy. Only a buffered body can be sent
/// twice.
///
/// # Errors
/// [`CallError`], carrying whether the request may have reached
/// Digistore24.
pub async fn send(
    state: &AppState,
    conn: &Connection,
    request: Request<'_>,
) -> Result<Exchange, CallError> {
    let Request {
        function,
        method,
        uri,
        headers,
        body,
        reply,
        gate,
    } = request;
    let effect = crate::actions::effect_of_function(function);
    let fail = |cause: Cause| CallError::new(function, effect, cause);
    let retry_effect = match effect {
        Effect::Read => RetryEffect::Read,
        Effect::Write => RetryEffect::Write,
        Effect::Money => RetryEffect::Money,
    };
    let policy = &state.config().upstream.retry;
    let metrics = state.metrics();
    let credential = &conn.credential;
    let started = Instant::now();
    let mut body = Some(body);
    let mut renewed = false;
    for attempt in 1u32.. {
        let call = match conn.breaker.try_acquire(Instant::now()) {
            Permit::Granted(call) => call,
            Permit::Rejected { retry_in } => {
                metrics.breaker_state(&conn.name, 2);
                return Err(fail(Cause::BreakerOpen {
                    connection: conn.name.clone(),
                    retry_in,
                }));
            }
        };
        if let Some(rate) = &conn.rate {
            match rate.acquire().await {
                Ok(waited) if !waited.0.is_zero() => {
                    metrics.rate_limit_wait(&conn.name, waited.0.as_secs_f64());
                }
                Ok(_) => {}
                Err(limited) => {
                    metrics.rate_limited(&conn.name);
                    return Err(fail(Cause::RateLimited {
                        connection: conn.name.clone(),
                        retry_after: limited.retry_after,
                    }));
                }
            }
        }
        let key = credential
            .key()
            .await
            .map_err(|e| fail(Cause::Credential(e)))?;
        let mut attempt_headers = headers.clone();
        credential.apply(&mut attempt_headers, &key);
        let out = match body.take().unwrap_or(OutBody::Empty) {
            OutBody::Empty => {
                body = Some(OutBody::Empty);
                axum::body::Body::empty()
            }
            OutBody::Buffered(bytes) => {
                body = Some(OutBody::Buffered(bytes.clone()));
                axum::body::Body::from(bytes)
            }
            OutBody::Replayable(shared) => {
                let attempt = shared.attempt();
                body = Some(OutBody::Replayable(shared));
                axum::body::Body::from_stream(attempt)
            }
            OutBody::Streaming(stream) => stream,
        };
        let request = UpstreamRequest {
            method: method.clone(),
            uri: uri.clone(),
            headers: attempt_headers,
            body: out,
        };
        if let Some(gate) = gate {
            // From here on the call may reach Digistore24: the ledger
            // records that first, or nothing is sent.
            gate.before_send()
                .await
                .map_err(|e| fail(Cause::Unrecorded(e.to_string())))?;
        }
        let sent_at = Instant::now();
        let result = match state.upstream().send(request).await {
            Ok(response) => inspect(response, reply).await,
            Err(e) => Err(e),
        };
        let seconds = sent_at.elapsed().as_secs_f64();
        // Whether this request could be sent again, judged after the
        // attempt: a streamed body is kept only up to a limit.
        let replayable = match &body {
            Some(OutBody::Replayable(shared)) => shared.can_replay(),
            Some(_) => true,
            None => false,
        };
        let (outcome, retry_after) = match &result {
            Ok(Inspected::Reply(exchange)) => (
                Outcome::Status {
                    status: exchange.status.as_u16(),
                    retry_after: None,
                },
                exchange
                    .headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Ok(Inspected::TooLarge(status)) => (
                Outcome::Status {
                    status: status.as_u16(),
                    retry_after: None,
                },
                None,
            ),
            Err(UpstreamError::Connect { .. }) => (Outcome::ConnectFailed, None),
            Err(UpstreamError::Timeout { .. }) => (Outcome::Timeout, None),
            Err(_) => (Outcome::Reset, None),
        };
        let outcome = match outcome {
            Outcome::Status { status, .. } => Outcome::Status {
                status,
                retry_after: retry_after.as_deref(),
            },
            other => other,
        };
        metrics.upstream_latency(function, outcome_class(&outcome), seconds);
        if matches!(result, Err(UpstreamError::RequestBody { .. })) {
            // The client's own body failed (it went away, or sent too
            // much): that says nothing about Digistore24, so the breaker
            // counts neither a failure nor a success.
            drop(call);
        } else {
            call.record(!outcome.is_upstream_failure(), Instant::now());
        }
        metrics.breaker_state(&conn.name, breaker_gauge(conn.breaker.state()));
        let result = match result {
            Ok(Inspected::Reply(exchange)) => Ok(exchange),
            Ok(Inspected::TooLarge(_)) => {
                return Err(fail(Cause::ReplyTooLarge {
                    limit: match reply {
                        ReplyMode::Whole(limit) => limit,
                        ReplyMode::Stream => PEEK_MAX_BYTES as usize,
                    },
                }));
            }
            Err(e) => Err(e),
        };

        if let Ok(exchange) = &result {
            if too_many_requests(exchange) {
                // Digistore24 asked this connection to slow down: every caller
                // on it backs off, not only this one.
                if let Some(rate) = &conn.rate {
                    let wait = retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, SystemTime::now()))
                        .unwrap_or(Duration::from_secs(1));
                    rate.pause_until(
                        tokio::time::Instant::now() + wait.min(policy.retry_after_cap),
                    );
                }
            } else if is_rejection(exchange) {
                tracing::warn!(connection = %conn.name, attempt, "Digistore24 rejected the API key");
                let rejected = |e: CredentialError| fail(Cause::Credential(e));
                if renewed {
                    // The renewed key was refused too: the source needs a person.
                    credential.mark_rejected();
                    return Err(rejected(credential.rejected_error()));
                }
                match credential.renew_after_rejection(&key).await {
                    Ok(Renewal::Changed(_)) if replayable => {
                        renewed = true;
                        metrics.renewal(&conn.name, "rejection", true);
                        continue;
                    }
                    Ok(Renewal::Changed(_)) => {
                        metrics.renewal(&conn.name, "rejection", true);
                        return Err(rejected(CredentialError::RenewedNotReplayable {
                            connection: conn.name.clone(),
                        }));
                    }
                    Ok(Renewal::Unchanged) => return Err(rejected(credential.rejected_error())),
                    Err(e) => {
                        metrics.renewal(&conn.name, "rejection", false);
                        return Err(rejected(e));
                    }
                }
            }
        }
        let verdict = if replayable {
            policy.decide(retry_effect, attempt, started.elapsed(), outcome)
        } else {
            Verdict::GiveUp
        };
        match (verdict, result) {
            (Verdict::Retry(wait), _) => {
                metrics.retry(function, retry_reason(&outcome));
                tracing::info!(
                    function,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "retrying a read"
                );
                tokio::time::sleep(wait).await;
            }
            (Verdict::GiveUp, Ok(exchange)) => {
                // Only a successful answer proves the key works.
                if exchange.status.is_success() {
                    credential.mark_ok();
                }
                return Ok(exchange);
            }
            (Verdict::GiveUp, Err(e)) => {
                if effect != Effect::Read && e.delivery() == crate::upstream::Delivery::MaybeSent {
                    tracing::warn!(error = %e, function, "a {effect:?} call failed after it may have reached Digistore24");
                }
                return Err(fail(Cause::Upstream(e)));
            }
        }
    }
    unreachable!("the loop returns")
}

fn outcome_class(outcome: &Outcome<'_>) -> &'static str {
    match outcome {
        Outcome::Timeout => "timeout",
        Outcome::Status { status, .. } if *status < 500 => "ok",
        _ => "error",
    }
}

fn retry_reason(outcome: &Outcome<'_>) -> &'static str {
    match outcome {
        Outcome::ConnectFailed => "connect",
        Outcome::Reset => "reset",
        Outcome::Timeout => "timeout",
        Outcome::Status { status: 429, .. } => "status_429",
        Outcome::Status { status: 502, .. } => "status_502",
        Outcome::Status { status: 503, .. } => "status_503",
        Outcome::Status { status: 504, .. } => "status_504",
        Outcome::Status { .. } => "status_other",
    }
}

fn breaker_gauge(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// HTTP 429, or Digistore24's "too many requests" code in a small reply.
fn too_many_requests(exchange: &Exchange) -> bool {
    if exchange.status == StatusCode::TOO_MANY_REQUESTS {
        return true;
    }
    let ReplyBody::Read(bytes) = &exchange.body else {
        return false;
    };
    memchr_error(bytes)
        && matches!(envelope::parse(exchange.status.as_u16(), bytes), Reply::Error(e) if e.code == Some(codes::TOO_MANY_REQUESTS))
}

/// What one attempt brought back.
enum Inspected {
    /// A reply, read as far as the mode asks.
    Reply(Exchange),
    /// The reply (with this status) was longer than the mode reads.
    TooLarge(StatusCode),
}

/// Reads the reply as far as `mode` asks: small JSON replies (where a
/// rejection could hide) always, the whole reply for [`ReplyMode::Whole`].
async fn inspect(
    response: http::Response<crate::upstream::UpstreamBody>,
    mode: ReplyMode,
) -> Result<Inspected, UpstreamError> {
    let (parts, reply) = response.into_parts();
    let (status, headers) = (parts.status, parts.headers);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let small = length.is_some_and(|n| n <= PEEK_MAX_BYTES);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let limit = match mode {
        // A reply that says it is larger than can be held streams on: the
        // caller gets it whole, and a repeat with its Idempotency-Key is
        // told that the call was made but its reply not kept.
        ReplyMode::Whole(limit) if length.is_some_and(|n| n > limit as u64) => {
            return Ok(Inspected::Reply(Exchange {
                status,
                headers,
                body: ReplyBody::Streaming(reply),
            }));
        }
        ReplyMode::Whole(limit) => limit,
        ReplyMode::Stream if small && (json || status == StatusCode::UNAUTHORIZED) => {
            PEEK_MAX_BYTES as usize
        }
        ReplyMode::Stream => {
            return Ok(Inspected::Reply(Exchange {
                status,
                headers,
                body: ReplyBody::Streaming(reply),
            }));
        }
    };
    match reply.read_up_to(limit).await? {
        Some(bytes) => Ok(Inspected::Reply(Exchange {
            status,
            headers,
            body: ReplyBody::Read(bytes),
        })),
        // Content-Length said it was small: the reply lied, so it is broken.
        None if mode == ReplyMode::Stream => Err(UpstreamError::Transport {
            host: "Digistore24".to_owned(),
            reason: "the reply was longer than its Content-Length".to_owned(),
        }),
        None => Ok(Inspected::TooLarge(status)),
    }
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
    memchr::memmem::find(bytes, b"\"error\"").is_some()
}

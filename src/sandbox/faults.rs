//! Scripted faults for tests: the next `n` calls (of one function or of
//! any) get an error, a bare status, a reset connection or a delay instead
//! of their normal answer, or are carried out and then have their reply
//! broken the way a real network breaks it (cut off after the head or in
//! the middle of the body, stalled after the head, reset); plus the call
//! counter tests check retries with.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;

use super::envelope::{self, ApiError};
use super::socket::KillSwitch;
use super::{ErrorStyle, Sandbox, lock};

/// How long a broken reply waits after its last byte before it fails, so
/// that hyper flushes what was sent before the connection goes.
const FLUSH_PAUSE: Duration = Duration::from_millis(20);

/// What a call gets instead of its normal answer (see
/// [`Sandbox::fail_next`]).
///
/// Two kinds: [`Fault::Error`], [`Fault::Status`], [`Fault::Reset`] and
/// [`Fault::Delay`] act before the call runs (nothing is changed, apart
/// from the delay's normal answer afterwards); the others carry the call
/// out as normal (a refund is made, an update saved) and then break its
/// reply, the case where a client cannot know whether its write happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The Digistore24 error envelope with this code and its standard
    /// message; the HTTP status follows the error style in force (e.g.
    /// code 12 is 429 in the 4xx style, 200 in the 200 style).
    Error {
        /// The error code, e.g. `11` (internal error) or `12` (too many
        /// requests).
        code: i64,
    },
    /// This HTTP status with a short plain-text body, as a load balancer in
    /// front of Digistore24 might answer (502, 503, 504). Meant for 4xx/5xx;
    /// a number that is no HTTP status becomes 500.
    Status(u16),
    /// The connection is dropped with a TCP reset after the request has
    /// been read, before any byte of a response. The call is *not* carried
    /// out (see [`Fault::ResetAfterRun`] for one that is). Needs
    /// [`super::serve`]; a bare [`Sandbox::router`] has no socket to drop,
    /// so there the response body fails instead.
    Reset,
    /// The normal answer, after this delay (the request is recorded at
    /// once, before the wait).
    Delay(Duration),
    /// The call is carried out, then only the head of its answer is sent:
    /// the normal status (`200` for a success) and headers, without
    /// `Content-Length`, so the body is chunked; then the connection ends
    /// (closed after the head is flushed) with not one byte of body, so a
    /// client's read of the body fails. On a bare router the body fails at
    /// once.
    TruncateAfterHead,
    /// As [`Fault::TruncateAfterHead`], but the first half of the normal
    /// answer's body bytes (rounded down, at least one byte) is sent, as one
    /// chunk, before the connection ends: a client reads a broken-off JSON
    /// document, then an error.
    TruncateMidBody,
    /// The call is carried out, the head of its answer is sent as in
    /// [`Fault::TruncateAfterHead`], and then the body never comes: the
    /// connection stays open, silent, until the client gives up and closes
    /// it.
    StallAfterHead,
    /// The call is carried out, then the connection is dropped with a TCP
    /// reset before any byte of the answer: the write happened, the client
    /// saw only a reset. (A `100 Continue` the client asked for is still
    /// sent: the body has to be read to run the call.) Needs
    /// [`super::serve`]; on a bare router the response body fails instead.
    ResetAfterRun,
}

impl Fault {
    /// Whether the call is carried out before this fault breaks its reply.
    pub(crate) fn runs_the_call(&self) -> bool {
        matches!(
            self,
            Self::TruncateAfterHead
                | Self::TruncateMidBody
                | Self::StallAfterHead
                | Self::ResetAfterRun
        )
    }
}

/// One `fail_next` order.
#[derive(Debug)]
struct Rule {
    /// Function name as given (matched ignoring case), `None` for any call.
    function: Option<String>,
    /// Calls still to fail; never 0 while queued.
    left: usize,
    fault: Fault,
}

/// Queued `fail_next` orders, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: VecDeque<Rule>,
}

impl Faults {
    /// The fault for a call of `function`, if one is due: the oldest order
    /// that matches it is used (and used up after its `n` calls).
    pub fn take(&mut self, function: &str) -> Option<Fault> {
        let index = self.rules.iter().position(|rule| {
            rule.function
                .as_deref()
                .is_none_or(|f| f.eq_ignore_ascii_case(function))
        })?;
        let rule = &mut self.rules[index];
        rule.left -= 1;
        let fault = rule.fault.clone();
        if rule.left == 0 {
            self.rules.remove(index);
        }
        Some(fault)
    }
}

/// Serves a fault that acts before the call. `Some` is the reply that
/// replaces the normal answer; `None`, after a [`Fault::Delay`] has waited
/// (or for a fault that [runs the call](Fault::runs_the_call), which
/// [`break_reply`] serves), lets the call go on.
pub(crate) async fn apply(
    fault: Fault,
    style: ErrorStyle,
    switch: Option<&KillSwitch>,
) -> Option<Response> {
    Some(match fault {
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            return None;
        }
        Fault::Error { code } => envelope::error(
            &ApiError::new(code, envelope::standard_message(code)),
            style,
            std::time::Instant::now(),
        ),
        Fault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, format!("{status}\n")).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Fault::Reset => reset(switch),
        Fault::TruncateAfterHead
        | Fault::TruncateMidBody
        | Fault::StallAfterHead
        | Fault::ResetAfterRun => return None,
    })
}

/// Breaks `reply`, the normal answer of a call that has been carried out,
/// as a fault that [runs the call](Fault::runs_the_call) says; any other
/// fault leaves it alone.
pub(crate) async fn break_reply(
    fault: &Fault,
    reply: Response,
    switch: Option<&KillSwitch>,
) -> Response {
    let end = match fault {
        Fault::ResetAfterRun => return reset(switch),
        Fault::TruncateAfterHead | Fault::TruncateMidBody => End::Fail,
        Fault::StallAfterHead => End::Stall,
        Fault::Error { .. } | Fault::Status(_) | Fault::Reset | Fault::Delay(_) => return reply,
    };
    let (mut parts, body) = reply.into_parts();
    // The sandbox's answers are in memory: this cannot fail or wait.
    let bytes = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let sent = match fault {
        Fault::TruncateMidBody => bytes.slice(..(bytes.len() / 2).max(1).min(bytes.len())),
        _ => Bytes::new(),
    };
    // No length: the head says "chunked", so a cut-off body is an error
    // the client can see, not a short but complete reply.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, broken_body(sent, end))
}

/// How a broken reply's body ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// With an error: hyper drops the connection, the chunked body stays
    /// unfinished.
    Fail,
    /// Never.
    Stall,
}

/// A body of unknown length that yields `sent` (if not empty) and then
/// ends as `end` says. Before the error it waits [`FLUSH_PAUSE`]: hyper
/// writes the head and chunks it has when the body is pending, but drops
/// the connection at once, with whatever is still buffered, when the body
/// fails.
fn broken_body(sent: Bytes, end: End) -> Body {
    let first = (!sent.is_empty()).then_some(Ok::<_, io::Error>(sent));
    let last = async move {
        match end {
            End::Fail => {
                tokio::time::sleep(FLUSH_PAUSE).await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "sandbox fault: reply cut off",
                ))
            }
            End::Stall => std::future::pending().await,
        }
    };
    Body::from_stream(futures_util::stream::iter(first).chain(futures_util::stream::once(last)))
}

/// A reset before any byte of the answer: on a socket the connection is
/// dropped with RST; on a bare router the body fails.
fn reset(switch: Option<&KillSwitch>) -> Response {
    match switch {
        Some(switch) => {
            switch.pull();
            // Never written: the stream refuses every byte from now on.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, Body::new(BrokenBody)).into_response(),
    }
}

/// A body whose first read fails: the nearest a router without a socket
/// can come to a dropped connection.
#[derive(Debug)]
struct BrokenBody;

impl HttpBody for BrokenBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "sandbox fault: reset",
        ))))
    }
}

// === impl Sandbox: faults and counts for tests ===

impl Sandbox {
    /// Makes the next `n` calls of `function` (any function with `None`)
    /// get `fault` instead of their normal answer ([`Fault::Delay`]: before
    /// it; the faults that [run the call](Fault::runs_the_call): after the
    /// call was carried out). Calls are counted from the request path, so
    /// a call with a bad key or bad parameters counts too; requests to
    /// paths that name no function do not. The requests are still recorded. Orders queue up:
    /// a call uses the oldest order that matches it.
    pub fn fail_next(&self, function: Option<&str>, n: usize, fault: Fault) {
        if n == 0 {
            return;
        }
        lock(&self.inner.faults).rules.push_back(Rule {
            function: function.map(str::to_owned),
            left: n,
            fault,
        });
    }

    /// Forgets every queued [`Sandbox::fail_next`] order, used up or not.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).rules.clear();
    }

    /// How many recorded requests called `function` (case ignored, as the
    /// sandbox ignores it). Counts what [`Sandbox::recorded`] holds, so
    /// [`Sandbox::clear_recorded`] resets it, and so requests the front
    /// server refused with `411` count too (every request that arrived).
    pub fn calls(&self, function: &str) -> usize {
        lock(&self.inner.recorded)
            .iter()
            .filter(|r| r.function.eq_ignore_ascii_case(function))
            .count()
    }

    /// The fault due for a call of `function`, if any.
    pub(crate) fn take_fault(&self, function: &str) -> Option<Fault> {
        lock(&self.inner.faults).take(function)
    }
}

//! Scripted faults for tests: the next `n` calls (of one function or of
//! any) get an error, a bare status, a reset connection or a delay instead
//! of their normal answer; plus the call counter tests check retries with.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::envelope::{self, ApiError};
use super::socket::KillSwitch;
use super::{ErrorStyle, Sandbox, lock};

/// What a call gets instead of its normal answer (see
/// [`Sandbox::fail_next`]).
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
    /// been read, before any byte of a response. Needs [`super::serve`]; a
    /// bare [`Sandbox::router`] has no socket to drop, so there the
    /// response body fails instead.
    Reset,
    /// The normal answer, after this delay (the request is recorded at
    /// once, before the wait).
    Delay(Duration),
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

/// Serves a fault. `Some` is the reply that replaces the normal answer;
/// `None`, after a [`Fault::Delay`] has waited, lets the call go on.
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
        Fault::Reset => match switch {
            Some(switch) => {
                switch.pull();
                // Never written: the stream refuses every byte from now on.
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            None => (StatusCode::INTERNAL_SERVER_ERROR, Body::new(BrokenBody)).into_response(),
        },
    })
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
    /// it). Calls are counted from the request path, so a call with a bad
    /// key or bad parameters counts too; requests to paths that name no
    /// function do not. The requests are still recorded. Orders queue up:
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

    /// How many recorded requests called `function` (case ignored, as the
    /// sandbox ignores it). Counts what [`Sandbox::recorded`] holds, so
    /// [`Sandbox::clear_recorded`] resets it.
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

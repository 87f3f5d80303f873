//! What can go wrong talking to Digistore24, classified once so that the
//! server can pick the status (502 vs 504) and, later, the retry policy can
//! tell whether the request may have reached Digistore24.

use std::time::Duration;

/// A failed upstream exchange.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made: the request never left the proxy.
    #[error("could not connect to {host}: {reason}")]
    Connect {
        /// Upstream host.
        host: String,
        /// Cause chain.
        reason: String,
    },
    /// No complete answer within the request timeout.
    #[error("{host} did not answer within {} s", timeout.as_secs())]
    Timeout {
        /// Upstream host.
        host: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// Reading the client's request body failed (client went away, or the
    /// body limit tripped).
    #[error("the request body could not be read: {reason}")]
    RequestBody {
        /// Cause chain.
        reason: String,
    },
    /// The connection failed after the request may have been sent.
    #[error("the connection to {host} failed: {reason}")]
    Transport {
        /// Upstream host.
        host: String,
        /// Cause chain.
        reason: String,
    },
}

impl UpstreamError {
    pub(super) fn from_reqwest(e: reqwest::Error, host: &str, timeout: Duration) -> Self {
        // reqwest's message names the full URL, query included: personal
        // data that must not reach a client or a log line.
        let e = e.without_url();
        let reason = chain(&e);
        // A connect timeout is both; it never left the proxy, so Connect wins.
        if e.is_connect() {
            Self::Connect {
                host: host.to_owned(),
                reason,
            }
        } else if e.is_timeout() {
            Self::Timeout {
                host: host.to_owned(),
                timeout,
            }
        } else if e.is_body() || e.is_request() && reason.contains("body") {
            Self::RequestBody { reason }
        } else {
            Self::Transport {
                host: host.to_owned(),
                reason,
            }
        }
    }

    /// A failure while reading the reply body.
    pub fn from_body(e: &reqwest::Error) -> Self {
        let reason = if e.is_timeout() {
            "timed out while reading the reply".to_owned()
        } else {
            without_url(e)
        };
        Self::Transport {
            host: "Digistore24".to_owned(),
            reason,
        }
    }

    /// True when the request provably never reached the upstream.
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

/// `e`'s text without the URL it may carry (see `from_reqwest`).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "[url]");
    }
    text
}

/// The error and its sources on one line ("a: b: c").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

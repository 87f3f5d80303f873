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
    /// Classifies a failure of hyper-util's client (its messages never
    /// carry the URL, so no query reaches a log line).
    pub(super) fn from_client(e: &hyper_util::client::legacy::Error, host: &str) -> Self {
        let reason = chain(e);
        // A connect timeout is both; it never left the proxy, so Connect wins.
        if e.is_connect() {
            return Self::Connect {
                host: host.to_owned(),
                reason,
            };
        }
        // The client's own body failed (it went away, or the size limit
        // tripped): hyper reports that as a user error.
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(h) = s.downcast_ref::<hyper::Error>()
                && (h.is_user() || h.is_body_write_aborted())
            {
                return Self::RequestBody { reason };
            }
            source = s.source();
        }
        Self::Transport {
            host: host.to_owned(),
            reason,
        }
    }

    /// True when the request provably never reached the upstream.
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
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

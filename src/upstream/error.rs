//! What can go wrong talking to Digistore24, classified once so that the
//! server can pick the status (502 vs 504) and, later, the retry policy can
//! tell whether the request may have reached Digistore24.

use std::time::Duration;

/// Whether a call may have reached Digistore24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing complete left the proxy: refused before sending (breaker,
    /// rate limit, credential, a bad target), a connection that could not
    /// be made, or a request whose own body broke off (an incomplete HTTP
    /// request is never carried out).
    NotSent,
    /// Digistore24 answered that it did nothing: the key was rejected, or
    /// it asked to slow down (429).
    Declined,
    /// Bytes may have reached Digistore24 and no complete answer says what
    /// happened (reset, timeout, a reply that broke off or stalled, a page
    /// from a server in front of Digistore24 instead of its answer).
    MaybeSent,
    /// Digistore24 answered; the answer says what happened.
    Answered,
}

impl Delivery {
    /// The ledger's rule, stated once: only a call that cannot have been
    /// carried out frees its `Idempotency-Key` for another try.
    pub fn frees_idempotency_key(self) -> bool {
        matches!(self, Self::NotSent | Self::Declined)
    }
}

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

    /// Whether the request may have reached the upstream: a connection
    /// that was never made, or a request whose own body broke off (no
    /// complete request went out), cannot have been carried out.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Connect { .. } | Self::RequestBody { .. } => Delivery::NotSent,
            Self::Timeout { .. } | Self::Transport { .. } => Delivery::MaybeSent,
        }
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

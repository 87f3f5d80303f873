//! How a call to Digistore24 failed, and the one fact every later decision
//! reads: whether its bytes may have reached Digistore24.
//!
//! The fact is decided where it is known (the exchange, the upstream
//! client) and carried in [`Delivery`] to the ledger (may the
//! `Idempotency-Key` be freed?), the retry policy (may it be sent again?),
//! the breaker (was this Digistore24's failure?) and the error mapping in
//! `server::error` (is it `outcome_unknown`?). None of them guesses it back
//! from an HTTP status.

use std::time::Duration;

use crate::actions::Effect;
use crate::credentials::CredentialError;
pub use crate::upstream::Delivery;
use crate::upstream::{Ds24Error, UpstreamError};

/// A failed call of `function`.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct CallError {
    /// The Digistore24 function.
    pub function: String,
    /// Its effect (what the mapping needs to tell `outcome_unknown` from
    /// `upstream_unavailable`).
    pub effect: Effect,
    /// What went wrong.
    pub cause: Cause,
}

/// What went wrong in a call.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The connection's circuit breaker is open.
    #[error(
        "Digistore24 failed repeatedly for connection `{connection}`; calls are paused for {} s (circuit breaker); nothing was sent",
        retry_in.as_secs().max(1)
    )]
    BreakerOpen {
        /// The connection.
        connection: String,
        /// When the breaker may admit a call again.
        retry_in: Duration,
    },
    /// The connection's outbound rate limit is reached.
    #[error(
        "the outbound rate limit of connection `{connection}` is reached; try again in {} ms; nothing was sent",
        retry_after.as_millis()
    )]
    RateLimited {
        /// The connection.
        connection: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// No working key.
    #[error(transparent)]
    Credential(CredentialError),
    /// The exchange with Digistore24 failed.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// Digistore24 answered with its error envelope.
    #[error("Digistore24 refused the call: {}", .0.message)]
    Refused(Ds24Error),
    /// The reply was not Digistore24's envelope (a front server's page).
    #[error("the reply was not Digistore24's: {}", .0.message)]
    NotAnEnvelope(Ds24Error),
    /// The reply was larger than the proxy reads into memory.
    #[error(
        "Digistore24's reply is larger than the {limit} bytes the proxy holds for this call (a large read streams on the pass-through route)"
    )]
    ReplyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request path would leave the configured base URL.
    #[error("the request path would leave the configured Digistore24 base URL")]
    BadTarget,
    /// The client's request body went over the proxy's limit.
    #[error("the request body is larger than {limit} bytes (server.max_body_bytes)")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// An earlier try with the same `Idempotency-Key` was cut off (its
    /// process stopped) after it may have reached Digistore24.
    #[error("an earlier try of this call was cut off after it may have reached Digistore24")]
    CutOff,
    /// The store that records the call could not be written before sending.
    #[error("the call could not be recorded before sending, so it was not sent: {0}")]
    Unrecorded(String),
}

impl CallError {
    /// A failure of `function` (effect from the catalog) with `cause`.
    pub fn new(function: &str, effect: Effect, cause: Cause) -> Self {
        Self {
            function: function.to_owned(),
            effect,
            cause,
        }
    }

    /// Whether the call may have reached Digistore24.
    pub fn delivery(&self) -> Delivery {
        self.cause.delivery()
    }

    /// True when a write or money call may have been carried out and the
    /// caller must not simply try again: `outcome_unknown`.
    pub fn outcome_unknown(&self) -> bool {
        self.effect != Effect::Read && self.delivery() == Delivery::MaybeSent
    }
}

impl Cause {
    /// See [`CallError::delivery`].
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::BreakerOpen { .. }
            | Self::RateLimited { .. }
            | Self::BadTarget
            | Self::BodyTooLarge { .. }
            | Self::Unrecorded(_) => Delivery::NotSent,
            Self::Credential(e) => match e {
                // Digistore24 refused the key: it did nothing.
                CredentialError::Rejected { .. } | CredentialError::RenewedNotReplayable { .. } => {
                    Delivery::Declined
                }
                CredentialError::Missing { .. } | CredentialError::Source { .. } => {
                    Delivery::NotSent
                }
            },
            Self::Upstream(e) => e.delivery(),
            Self::Refused(e) if e.code == Some(crate::upstream::codes::TOO_MANY_REQUESTS) => {
                Delivery::Declined
            }
            Self::Refused(_) | Self::ReplyTooLarge { .. } => Delivery::Answered,
            Self::NotAnEnvelope(_) | Self::CutOff => Delivery::MaybeSent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> UpstreamError {
        UpstreamError::Transport {
            host: "h".into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn only_calls_that_cannot_have_run_free_a_key() {
        let cases = [
            (
                Cause::BreakerOpen {
                    connection: "main".into(),
                    retry_in: Duration::from_secs(1),
                },
                Delivery::NotSent,
            ),
            (
                Cause::Upstream(UpstreamError::Connect {
                    host: "h".into(),
                    reason: "r".into(),
                }),
                Delivery::NotSent,
            ),
            (
                Cause::Upstream(UpstreamError::RequestBody { reason: "r".into() }),
                Delivery::NotSent,
            ),
            (Cause::Upstream(transport()), Delivery::MaybeSent),
            (
                Cause::Upstream(UpstreamError::Timeout {
                    host: "h".into(),
                    timeout: Duration::from_secs(1),
                }),
                Delivery::MaybeSent,
            ),
            (
                Cause::Credential(CredentialError::Rejected {
                    connection: "main".into(),
                    kind: "env",
                    fix: "set another key".into(),
                }),
                Delivery::Declined,
            ),
            (
                Cause::NotAnEnvelope(Ds24Error {
                    code: None,
                    message: "Bad Gateway".into(),
                    http_status: 502,
                    not_an_envelope: true,
                }),
                Delivery::MaybeSent,
            ),
            (Cause::ReplyTooLarge { limit: 1 }, Delivery::Answered),
        ];
        for (cause, delivery) in cases {
            let text = cause.to_string();
            assert_eq!(cause.delivery(), delivery, "{text}");
            assert_eq!(
                delivery.frees_idempotency_key(),
                matches!(delivery, Delivery::NotSent | Delivery::Declined)
            );
        }
    }

    #[test]
    fn a_write_that_may_have_run_is_outcome_unknown_and_a_read_never_is() {
        let write = CallError::new(
            "refundPurchase",
            Effect::Money,
            Cause::Upstream(transport()),
        );
        assert!(write.outcome_unknown());
        let read = CallError::new("listProducts", Effect::Read, Cause::Upstream(transport()));
        assert!(!read.outcome_unknown());
    }
}

//! Where a connection's API key comes from, and keeping it fresh.
//!
//! - [`secret`]: [`ApiKey`], the secret type every key is wrapped in the
//!   moment it is read.
//! - [`source`]: fetching from a source (`env`, `file`, `command`, `stored`,
//!   `oauth2`), in [`command`] and [`oauth2`] for the two that talk to
//!   something else.
//! - [`cache`]: [`Credential`], the cached key with its expiry, renewal a
//!   margin before it, one renewal at a time, and the renewal after a
//!   rejection.
//! - [`clock`]: the injected clock that tests advance by hand.

pub mod cache;
pub mod clock;
mod command;
mod oauth2;
mod secret;
pub mod source;

use std::path::PathBuf;
use std::time::Duration;

pub use cache::{Credential, CredentialStatus, PROBE_INTERVAL, PROBE_LEASE, Renewal};
pub use clock::{Clock, ManualClock, SystemClock};
pub use secret::{ApiKey, KeyFormatError};

/// A configured credential source.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// No key configured: requests on the connection fail with a message
    /// saying how to set one, and `/readyz` reports it.
    Missing,
    /// Read from an environment variable at start.
    Env {
        /// The variable's name (shown in status output, never its value).
        var: String,
        /// The key it held.
        key: ApiKey,
    },
    /// Read from a file, re-read when the file changes (mounted secrets are
    /// rotated by replacing the file).
    File {
        /// The file's path.
        path: PathBuf,
    },
    /// A program that prints `{"api_key": "…", "expires_at": "RFC3339"?}`.
    Command {
        /// Program and arguments (no shell).
        argv: Vec<String>,
        /// How long it may run.
        timeout: Duration,
    },
    /// Obtained by `ds24-proxy connect` and kept encrypted in the store.
    Stored,
    /// A token from an OAuth2 token endpoint, for keys brokered by another
    /// system.
    OAuth2(OAuth2Source),
    /// A fixed key (the built-in sandbox's).
    Static(ApiKey),
}

/// An OAuth2 token source.
#[derive(Debug, Clone)]
pub struct OAuth2Source {
    /// The token endpoint.
    pub token_url: url::Url,
    /// `refresh_token` or `client_credentials`.
    pub grant: OAuth2Grant,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, read from the environment at start.
    pub client_secret: Option<ApiKey>,
    /// The first refresh token (from the environment), used until the token
    /// endpoint rotates it; rotated ones live in the store.
    pub initial_refresh_token: Option<ApiKey>,
    /// Optional `scope`.
    pub scope: Option<String>,
}

/// The OAuth2 grant used to get a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuth2Grant {
    /// `grant_type=refresh_token`.
    RefreshToken,
    /// `grant_type=client_credentials`.
    ClientCredentials,
}

impl CredentialSource {
    /// Short name of the source kind, for status output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "none",
            Self::Env { .. } => "env",
            Self::File { .. } => "file",
            Self::Command { .. } => "command",
            Self::Stored => "stored",
            Self::OAuth2(_) => "oauth2",
            Self::Static(_) => "static",
        }
    }

    /// True when the source keeps its secret in the store.
    pub fn needs_store(&self) -> bool {
        matches!(self, Self::Stored | Self::OAuth2(_))
    }
}

/// Why no key could be had. Never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The connection has no source.
    #[error("connection `{connection}` has no API key configured")]
    Missing {
        /// The connection's name.
        connection: String,
    },
    /// The source failed (file unreadable, command failed, token endpoint
    /// refused, store unreadable, …).
    #[error("connection `{connection}`: the {kind} credential source failed: {reason}")]
    Source {
        /// The connection's name.
        connection: String,
        /// Source kind.
        kind: &'static str,
        /// What went wrong (never a secret).
        reason: String,
    },
    /// Digistore24 rejected the key and the source had no other.
    #[error(
        "Digistore24 rejected the API key of connection `{connection}` and its {kind} source yields the same key; {fix}"
    )]
    Rejected {
        /// The connection's name.
        connection: String,
        /// Source kind.
        kind: &'static str,
        /// How to fix it, for this source.
        fix: String,
    },
    /// The key was renewed after a rejection, but the request body was
    /// streamed and cannot be sent again.
    #[error(
        "connection `{connection}`: the API key was renewed after Digistore24 rejected it, but the request body was streamed and cannot be replayed; send the request again"
    )]
    RenewedNotReplayable {
        /// The connection's name.
        connection: String,
    },
}

#[cfg(test)]
mod tests;

//! The audit log of write and money calls: who called what, when, and how it
//! ended. Names and digests only, never a token or a parameter value.
//!
//! These are the backend-neutral types; `sqlite_audit.rs` stores them.

use super::StoreError;
use super::idempotency::check_hex_digest;

/// The effects an [`AuditEntry`] may name.
pub const AUDIT_EFFECTS: &[&str] = &["write", "money"];

/// How many entries [`super::Store::audit`] returns when the filter sets no
/// limit.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;

/// One write or money call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store; ignored by [`super::Store::append_audit`].
    pub id: i64,
    /// When the call was made, unix seconds.
    pub at: i64,
    /// The connection the call went to.
    pub connection: String,
    /// Which inbound token made the call, by name (`anonymous`, `token-1`,
    /// `agent`); never the token itself.
    pub token: String,
    /// The Digistore24 function called.
    pub function: String,
    /// One of [`AUDIT_EFFECTS`].
    pub effect: String,
    /// The request id the proxy gave the call.
    pub request_id: String,
    /// How it ended: `200`, `upstream_error 404`, `outcome_unknown`,
    /// `replayed`, `forbidden_by_policy`, …
    pub outcome: String,
    /// Hex digest of the parameters; never the parameters.
    pub params_digest: String,
}

/// Which entries [`super::Store::audit`] returns; every filter set must
/// match. They come newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only calls to this connection.
    pub connection: Option<String>,
    /// Only calls of this function.
    pub function: Option<String>,
    /// Only calls made at or after this moment, unix seconds.
    pub since: Option<i64>,
    /// At most this many entries; [`DEFAULT_AUDIT_LIMIT`] if `None`.
    pub limit: Option<usize>,
}

/// Checks an entry before it is appended.
pub(super) fn check_entry(entry: &AuditEntry) -> Result<(), StoreError> {
    for (what, value) in [
        ("connection name", &entry.connection),
        ("token name", &entry.token),
        ("function name", &entry.function),
        ("outcome", &entry.outcome),
    ] {
        if value.is_empty() {
            return Err(StoreError::invalid(format!(
                "the audit entry's {what} is empty"
            )));
        }
    }
    if !AUDIT_EFFECTS.contains(&entry.effect.as_str()) {
        return Err(StoreError::invalid(format!(
            "unknown audit effect `{}` (expected one of: {})",
            entry.effect,
            AUDIT_EFFECTS.join(", ")
        )));
    }
    check_hex_digest("parameter digest", &entry.params_digest)
}

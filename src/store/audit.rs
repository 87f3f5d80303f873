//! The audit log of write and money calls: who called what, when, and how it
//! ended. Names and digests only, never a token or a parameter value.
//!
//! These are the backend-neutral types; `sqlite_audit.rs` stores them.
//!
//! A call that may reach Digistore24 is logged before it leaves
//! ([`super::Store::begin_audit`], outcome [`AUDIT_IN_PROGRESS`], under a
//! lease like an idempotency record's) and given its outcome when it ends
//! ([`super::Store::complete_audit`]). So a call whose process died mid-call
//! is still in the log: once its lease lapses,
//! [`super::Store::settle_expired`] marks it [`AUDIT_OUTCOME_UNKNOWN`]. A call
//! that ends before sending anything is logged whole with
//! [`super::Store::append_audit`].

use super::StoreError;
use super::idempotency::check_hex_digest;

/// The effects an [`AuditEntry`] may name.
pub const AUDIT_EFFECTS: &[&str] = &["write", "money"];

/// The outcome of an entry whose call is still running (or whose process
/// died before it could say how it ended). Only
/// [`super::Store::begin_audit`] writes it.
pub const AUDIT_IN_PROGRESS: &str = "in_progress";

/// The outcome [`super::Store::settle_expired`] gives an entry whose call's
/// lease lapsed: it may or may not have run.
pub const AUDIT_OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// How many entries [`super::Store::audit`] returns when the filter sets no
/// limit.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;

/// One write or money call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store; ignored by [`super::Store::append_audit`] and
    /// [`super::Store::begin_audit`].
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
    /// `replayed`, `forbidden_by_policy`, …; [`AUDIT_IN_PROGRESS`] while it
    /// runs. Ignored by [`super::Store::begin_audit`].
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

/// Checks an entry before it is appended whole: its outcome too.
pub(super) fn check_entry(entry: &AuditEntry) -> Result<(), StoreError> {
    check_outcome(&entry.outcome)?;
    check_begun_entry(entry)
}

/// Checks an entry before it is begun: all but its outcome, which the store
/// sets to [`AUDIT_IN_PROGRESS`].
pub(super) fn check_begun_entry(entry: &AuditEntry) -> Result<(), StoreError> {
    for (what, value) in [
        ("connection name", &entry.connection),
        ("token name", &entry.token),
        ("function name", &entry.function),
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

/// Checks the outcome an entry ends with. [`AUDIT_IN_PROGRESS`] is refused: an
/// entry written with it by hand would hold no lease, so nothing would ever
/// settle it.
pub(super) fn check_outcome(outcome: &str) -> Result<(), StoreError> {
    if outcome.is_empty() {
        return Err(StoreError::invalid("the audit entry's outcome is empty"));
    }
    if outcome == AUDIT_IN_PROGRESS {
        return Err(StoreError::invalid(format!(
            "`{AUDIT_IN_PROGRESS}` is not an outcome: a call in progress is logged with begin_audit"
        )));
    }
    Ok(())
}

//! Idempotency records: what a write or money call sent with an
//! `Idempotency-Key` header asked, and the reply it got, so a retry with the
//! same key is answered from the record instead of reaching Digistore24 twice.
//!
//! These are the backend-neutral types; `sqlite_idempotency.rs` stores them.
//!
//! # Phases and leases
//! A record in progress is [`IdempotencyState::Claimed`] until its caller is
//! about to send the first byte ([`super::Store::mark_idempotent_sending`]),
//! then [`IdempotencyState::Sending`]. Its caller holds it under a lease
//! (`lease_until`), renewed while the call runs
//! ([`super::Store::extend_idempotent_lease`]). A lease that lapses means the
//! caller's process died or was cut off (a replica of a fleet, a `kill -9`, a
//! drain): the record is then settled instead of blocking its key for its
//! whole TTL. A `Claimed` one never reached Digistore24 and is freed (taken
//! over by the next begin, or deleted by [`super::Store::settle_expired`]); a
//! `Sending` one may have, so it is answered `outcome_unknown` forever after,
//! never sent again. The phase, not the process, carries that knowledge, so
//! it works the same for one process, for several on one SQLite file and for
//! replicas sharing a database.

use std::fmt;

use super::StoreError;

/// The longest `Idempotency-Key` the store accepts, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The longest hex digest (request fingerprint, parameter digest) the store
/// accepts, in characters: SHA-512 written as hex.
pub const MAX_DIGEST_LEN: usize = 128;

/// Where an idempotent call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyState {
    /// Begun, and nothing sent yet: if its lease lapses, the call certainly
    /// did not reach Digistore24 and the key is free again.
    Claimed,
    /// Begun, and its bytes may have reached Digistore24: if its lease
    /// lapses, nobody knows whether the call ran, so it is never sent again
    /// (answered `outcome_unknown`).
    Sending,
    /// Answered; the record holds the reply.
    Complete,
}

impl IdempotencyState {
    /// The value in the `state` column.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Sending => "sending",
            Self::Complete => "complete",
        }
    }

    /// The state of a `state` column value, `None` for an unknown one.
    pub(super) fn parse(text: &str) -> Option<Self> {
        [Self::Claimed, Self::Sending, Self::Complete]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether the call is still running (or its process died mid-call):
    /// `Claimed` or `Sending`.
    pub fn in_progress(self) -> bool {
        self != Self::Complete
    }
}

/// One call made with an `Idempotency-Key`, scoped to its connection.
///
/// `Debug` shows the body's length, never its bytes: a reply may hold
/// personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// The connection the call went to.
    pub connection: String,
    /// Hex digest of the request (method, path, query, body), computed by
    /// the caller; a retry must match it.
    pub fingerprint: String,
    /// Whether the reply has been recorded.
    pub state: IdempotencyState,
    /// HTTP status of the recorded reply (`Some` once complete).
    pub status: Option<u16>,
    /// Content type of the recorded reply, if it had one.
    pub content_type: Option<String>,
    /// The recorded reply body (`Some` once complete). Stored encrypted.
    pub body: Option<Vec<u8>>,
    /// When the call was begun, unix seconds.
    pub created_at: i64,
    /// From this moment (unix seconds) on, the record counts as absent.
    pub expires_at: i64,
    /// Until when (unix seconds) the caller running the call holds it; from
    /// then on a record still in progress counts as orphaned (see the
    /// module docs). Meaningless once complete.
    pub lease_until: i64,
}

impl fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("key", &self.key)
            .field("connection", &self.connection)
            .field("fingerprint", &self.fingerprint)
            .field("state", &self.state)
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body", &self.body.as_ref().map(|b| ByteCount(b.len())))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("lease_until", &self.lease_until)
            .finish()
    }
}

/// Shows as `<n bytes>`: a body's size without its content.
struct ByteCount(usize);

impl fmt::Debug for ByteCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// What [`super::Store::begin_idempotent`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No live record existed, or only a `Claimed` one whose lease had lapsed
    /// (its call never left): the record is now `Claimed` by this caller under
    /// a fresh lease, and the caller must mark it sending before sending, then
    /// complete or abandon it.
    Started,
    /// The same request is in progress under a live lease (another caller, in
    /// this process or another); the record says whether it is `Claimed` or
    /// `Sending` and until when its lease runs.
    InProgress(IdempotencyRecord),
    /// The same request was `Sending` when its lease lapsed: its caller died
    /// after its bytes may have reached Digistore24. The store has renewed
    /// the lease for this caller, who must not send it again but complete it
    /// with an `outcome_unknown` reply (the store invents no reply bodies);
    /// meanwhile other begins see it [`Begin::InProgress`].
    Orphaned(IdempotencyRecord),
    /// The same request is complete: replay the recorded reply.
    Done(IdempotencyRecord),
    /// The key was used for a different request (another fingerprint).
    Mismatch(IdempotencyRecord),
}

impl Begin {
    /// A short name of the variant, for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::InProgress(_) => "in_progress",
            Self::Orphaned(_) => "orphaned",
            Self::Done(_) => "done",
            Self::Mismatch(_) => "mismatch",
        }
    }
}

/// What [`super::Store::settle_expired`] did with the calls whose lease had
/// lapsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// `Claimed` idempotency records deleted: their call never left, so a
    /// repeat with the key may send it.
    pub freed: usize,
    /// `Sending` idempotency records completed with the `outcome_unknown`
    /// reply: a repeat is answered that, never sent again.
    pub unknown: usize,
    /// Audit rows `in_progress` given the outcome `outcome_unknown`.
    pub audits: usize,
}

/// Checks the (connection, key) pair that names a record. The message never
/// quotes the key: it is the client's and may be anything.
pub(super) fn check_record_name(connection: &str, key: &str) -> Result<(), StoreError> {
    if connection.is_empty() {
        return Err(StoreError::invalid("the connection name is empty"));
    }
    if key.is_empty() {
        return Err(StoreError::invalid("the idempotency key is empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(StoreError::invalid(format!(
            "the idempotency key is {} bytes long, more than {MAX_IDEMPOTENCY_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a lease length in seconds, or a TTL.
pub(super) fn check_positive_secs(what: &str, secs: i64) -> Result<(), StoreError> {
    if secs <= 0 {
        return Err(StoreError::invalid(format!(
            "{what} must last a positive number of seconds, not {secs}"
        )));
    }
    Ok(())
}

/// Checks a reply's HTTP status before it is recorded.
pub(super) fn check_status(status: u16) -> Result<(), StoreError> {
    if !(100..=999).contains(&status) {
        return Err(StoreError::invalid(format!(
            "{status} is not an HTTP status"
        )));
    }
    Ok(())
}

/// Checks that `digest` is a hex digest, so that what the caller passes as
/// one (stored in plain text) cannot be a request or its parameters.
pub(super) fn check_hex_digest(what: &str, digest: &str) -> Result<(), StoreError> {
    if digest.is_empty()
        || digest.len() > MAX_DIGEST_LEN
        || !digest.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(StoreError::invalid(format!(
            "the {what} must be a hex digest of 1 to {MAX_DIGEST_LEN} characters"
        )));
    }
    Ok(())
}

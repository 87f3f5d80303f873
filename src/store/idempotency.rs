//! Idempotency records: what a write or money call sent with an
//! `Idempotency-Key` header asked, and the reply it got, so a retry with the
//! same key is answered from the record instead of reaching Digistore24 twice.
//!
//! These are the backend-neutral types; `sqlite_idempotency.rs` stores them.

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
    /// Begun and not yet answered (or its process died while waiting).
    InProgress,
    /// Answered; the record holds the reply.
    Complete,
}

impl IdempotencyState {
    /// The value in the `state` column.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Complete => "complete",
        }
    }

    /// The state of a `state` column value, `None` for an unknown one.
    pub(super) fn parse(text: &str) -> Option<Self> {
        [Self::InProgress, Self::Complete]
            .into_iter()
            .find(|state| state.as_str() == text)
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
    /// No live record existed; one is now in progress for this caller, who
    /// must later complete or abandon it.
    Started,
    /// The same request is still in progress (another caller, or a process
    /// that died mid-call; the record expires in time).
    InProgress(IdempotencyRecord),
    /// The same request is complete: replay the recorded reply.
    Done(IdempotencyRecord),
    /// The key was used for a different request (another fingerprint).
    Mismatch(IdempotencyRecord),
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

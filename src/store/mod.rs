//! The embedded store: secrets (sealed with an AEAD) and per-connection
//! credential state, in an SQLite database in the data directory.
//!
//! Callers code against the [`Store`] trait, so another backend (PostgreSQL)
//! can be added without touching them; [`SqliteStore`] is the embedded one.
//!
//! # Layout of the data directory
//! - `ds24-proxy.db` (with `-wal`/`-shm` beside it while open): the database,
//!   mode 0600. Secrets are stored only as ciphertext; connection state
//!   (source kind, key id, expiry, last error) is not secret and is plain.
//!   Idempotency records keep the recorded reply body only as ciphertext
//!   (replies may hold personal data); their key, fingerprint, status and
//!   content type are plain. The audit log is plain: names, outcomes and
//!   digests, never a token or a parameter value.
//! - `master.key`: the master key as 64 hex characters, mode 0600, created on
//!   first use unless `DS24_PROXY_MASTER_KEY` gives the key instead.
//!
//! # Encryption
//! XChaCha20-Poly1305 with the 32-byte master key. Every write takes a fresh
//! random 24-byte nonce, stored with the ciphertext. The associated data binds
//! each ciphertext to its row (connection and secret name), so a blob copied to
//! another row does not decrypt. A sealed check value in `store_meta` lets
//! [`SqliteStore::open`] tell a wrong master key at once
//! ([`StoreError::WrongMasterKey`]), before any secret is read.
//!
//! # Schema
//! Numbered migrations (`migrations.rs`), tracked with `PRAGMA user_version`;
//! each runs in its own `BEGIN IMMEDIATE` transaction. New tables are added as
//! new migrations at the end of the list, never by editing an old one.
//! Version 1: secrets and connection state; version 2: idempotency records
//! and the audit log; version 3: IPN events and deliveries; version 4: phases
//! and leases of calls in progress (idempotency records and audit rows);
//! version 5: the base URL a connection was made against.

mod audit;
mod crypto;
mod error;
mod fs;
mod idempotency;
mod ipn;
mod migrations;
mod sqlite;
mod sqlite_audit;
mod sqlite_idempotency;
mod sqlite_ipn;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_audit;
#[cfg(test)]
mod tests_idempotency;
#[cfg(test)]
mod tests_ipn;
#[cfg(test)]
mod tests_leases;

pub use audit::{
    AUDIT_EFFECTS, AUDIT_IN_PROGRESS, AUDIT_OUTCOME_UNKNOWN, AuditEntry, AuditFilter,
    DEFAULT_AUDIT_LIMIT,
};
pub use error::{KeySource, StoreError};
pub use idempotency::{
    Begin, IdempotencyRecord, IdempotencyState, MAX_DIGEST_LEN, MAX_IDEMPOTENCY_KEY_LEN, Settled,
};
pub use ipn::{
    Attempt, DeliveryState, DueDelivery, EVENT_STATES, IpnDelivery, IpnEvent, IpnFilter, IpnStored,
    NewIpnEvent,
};
pub use secrecy::SecretString;
pub use sqlite::SqliteStore;

/// The database file's name in the data directory.
pub const DB_FILE: &str = "ds24-proxy.db";
/// The master key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";

/// The credential source kinds a [`ConnectionState`] may name.
pub const SOURCE_KINDS: &[&str] = &["stored", "oauth2", "env", "file", "command"];

/// Where a connection's credential came from and how it stands.
///
/// Nothing in here is secret: `key_id` is the public number before the dash
/// of an API key, and `last_error` must never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionState {
    /// The connection's name (`main`, `shop2`, …).
    pub connection: String,
    /// One of [`SOURCE_KINDS`]: `stored`, `oauth2`, `env`, `file`, `command`.
    pub source_kind: String,
    /// The digits before the dash of an API key; never the secret.
    pub key_id: Option<String>,
    /// When the credential expires, unix seconds.
    pub expires_at: Option<i64>,
    /// When the credential was last renewed, unix seconds.
    pub last_renewal_at: Option<i64>,
    /// The last failure to obtain or use the credential; never contains a secret.
    pub last_error: Option<String>,
    /// Set when the upstream rejected a credential that did not change.
    pub needs_attention: bool,
    /// When this state was written, unix seconds.
    pub updated_at: i64,
    /// The base URL the credential was verified against (`connect` records
    /// it), so that its key is sent there and nowhere else. `None` on an
    /// update keeps the recorded one.
    pub base_url: Option<String>,
}

/// Secrets and credential state of the configured connections, idempotency
/// records of their write and money calls, and the audit log of those calls.
///
/// Every method is blocking (SQLite, file I/O): call it from
/// `tokio::task::spawn_blocking` in async code.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Writes the secrets (name → value, e.g. `api_key`, `refresh_token`,
    /// `access_token`) and the state of one connection in ONE transaction:
    /// either all or nothing is stored.
    ///
    /// Secrets named here replace those of the same name; the connection's
    /// other secrets are kept. `state.connection` must equal `connection`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty connection or secret name, an
    /// unknown source kind or a state of another connection; otherwise when the
    /// database cannot be written.
    fn save(
        &self,
        connection: &str,
        secrets: &[(&str, &SecretString)],
        state: &ConnectionState,
    ) -> Result<(), StoreError>;

    /// One secret of a connection, `None` if it was never stored.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the stored value does not decrypt (it was
    /// altered or copied from another row); otherwise when the database cannot
    /// be read.
    fn secret(&self, connection: &str, name: &str) -> Result<Option<SecretString>, StoreError>;

    /// The state of one connection, `None` if none was stored.
    ///
    /// # Errors
    /// When the database cannot be read.
    fn state(&self, connection: &str) -> Result<Option<ConnectionState>, StoreError>;

    /// The states of all connections, sorted by connection name.
    ///
    /// # Errors
    /// When the database cannot be read.
    fn states(&self) -> Result<Vec<ConnectionState>, StoreError>;

    /// Updates only the state (renewal bookkeeping), transactional; creates it
    /// if the connection had none.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty connection name or an unknown
    /// source kind; otherwise when the database cannot be written.
    fn save_state(&self, state: &ConnectionState) -> Result<(), StoreError>;

    /// Removes a connection's secrets and state; `true` if anything was there.
    /// Its idempotency records and audit entries are kept (the records expire).
    ///
    /// # Errors
    /// When the database cannot be written.
    fn remove(&self, connection: &str) -> Result<bool, StoreError>;

    /// Begins a call sent with an `Idempotency-Key`, atomically (one
    /// transaction holding the write lock, so of concurrent begins on one
    /// key, in threads, processes or replicas, exactly one is
    /// [`Begin::Started`]):
    /// - no unexpired record for (`connection`, `key`): one is inserted
    ///   [`IdempotencyState::Claimed`] with `fingerprint`, living `ttl_secs`
    ///   and leased for `lease_secs` from `now`: [`Begin::Started`]; the
    ///   caller must then mark it sending before sending, renew the lease
    ///   while it runs, and complete or abandon it;
    /// - a record with another fingerprint, in any state: [`Begin::Mismatch`]
    ///   (nothing is changed);
    /// - the same fingerprint, complete: [`Begin::Done`] with the reply;
    /// - the same fingerprint, in progress under a live lease
    ///   (`lease_until > now`): [`Begin::InProgress`];
    /// - the same fingerprint, `Claimed` with a lapsed lease (its caller died
    ///   before sending): taken over as if new (created now, fresh TTL and
    ///   lease): [`Begin::Started`];
    /// - the same fingerprint, `Sending` with a lapsed lease (its caller died
    ///   after its bytes may have left): the lease is renewed for this caller
    ///   (so concurrent begins wait instead of settling it twice) and the
    ///   answer is [`Begin::Orphaned`]; the caller must not send, but
    ///   complete it with an `outcome_unknown` reply.
    ///
    /// A record expires at `expires_at` (`expires_at <= now`); an expired one
    /// counts as absent and is replaced.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty connection name, an empty key
    /// or one longer than [`MAX_IDEMPOTENCY_KEY_LEN`], a fingerprint that is
    /// not a hex digest of at most [`MAX_DIGEST_LEN`] characters, or a
    /// `ttl_secs` or `lease_secs` that is not positive; [`StoreError::Corrupt`]
    /// if the existing record's reply does not decrypt; otherwise when the
    /// database cannot be written.
    fn begin_idempotent(
        &self,
        connection: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        ttl_secs: i64,
        lease_secs: i64,
    ) -> Result<Begin, StoreError>;

    /// Moves a `Claimed` record to [`IdempotencyState::Sending`] with its
    /// lease running to `lease_until`: called just before the first byte of
    /// the call leaves, so that from then on a lapsed lease means "may have
    /// run", never "free to send".
    ///
    /// Only a `Claimed` record moves: of two callers that both think they
    /// hold a claim (one's lease lapsed and the other took it over), only the
    /// first to mark it may send; the other gets an error and must not send.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if no unexpired `Claimed` record of
    /// (`connection`, `key`) exists at `now` (never begun, abandoned, freed,
    /// purged, already sending or complete), or `lease_until <= now`;
    /// otherwise when the database cannot be written.
    fn mark_idempotent_sending(
        &self,
        connection: &str,
        key: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<(), StoreError>;

    /// The heartbeat of a call still running: its record's lease runs at
    /// least to `lease_until` (a lease is never shortened). A complete record
    /// is left alone without an error (the call ended meanwhile, e.g. settled
    /// by an orphan's taker).
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if there is no record of (`connection`,
    /// `key`) at all: it was abandoned, or freed after its lease lapsed, and
    /// the caller no longer holds it; otherwise when the database cannot be
    /// written.
    fn extend_idempotent_lease(
        &self,
        connection: &str,
        key: &str,
        lease_until: i64,
    ) -> Result<(), StoreError>;

    /// Marks the in-progress (`Claimed` or `Sending`) record Complete with the
    /// reply. The body is encrypted, bound to the record and to the status
    /// and content type.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if no record of (`connection`, `key`) is
    /// in progress (it was completed, abandoned, settled or purged) or
    /// `status` is not 100–999; otherwise when the database cannot be
    /// written.
    fn complete_idempotent(
        &self,
        connection: &str,
        key: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), StoreError>;

    /// Removes an in-progress record (`Claimed` or `Sending`) whose call
    /// failed before anything may have reached the upstream, so the client
    /// may retry with the same key. A complete record is kept; a missing one
    /// is no error.
    ///
    /// # Errors
    /// When the database cannot be written.
    fn abandon_idempotent(&self, connection: &str, key: &str) -> Result<(), StoreError>;

    /// The record of (`connection`, `key`) as stored, expired or not (compare
    /// `expires_at` with the time), `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if its reply does not decrypt; otherwise when
    /// the database cannot be read.
    fn idempotent(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Deletes the records expired at `now` (`expires_at <= now`), in progress
    /// or complete; returns how many.
    ///
    /// # Errors
    /// When the database cannot be written.
    fn purge_expired_idempotency(&self, now: i64) -> Result<usize, StoreError>;

    /// Appends an entry to the audit log (its `id` is ignored) and returns
    /// the id the store gave it; ids grow with every append.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty connection, token, function
    /// or outcome, an effect not in [`AUDIT_EFFECTS`], or a parameter digest
    /// that is not a hex digest of at most [`MAX_DIGEST_LEN`] characters;
    /// otherwise when the database cannot be written.
    fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError>;

    /// Appends an entry for a call about to leave, before it leaves: its
    /// outcome is [`AUDIT_IN_PROGRESS`] (`entry.outcome` and `entry.id` are
    /// ignored) and it is leased until `lease_until`. The caller renews the
    /// lease while the call runs and completes the entry when it ends; if its
    /// process dies, [`Store::settle_expired`] marks it
    /// [`AUDIT_OUTCOME_UNKNOWN`] once the lease lapses. Returns its id.
    ///
    /// # Errors
    /// As [`Store::append_audit`], but for the outcome.
    fn begin_audit(&self, entry: &AuditEntry, lease_until: i64) -> Result<i64, StoreError>;

    /// Gives a begun entry its outcome. An entry that was settled as
    /// [`AUDIT_OUTCOME_UNKNOWN`] because its lease lapsed while its caller
    /// was still alive takes the outcome too: the log then tells what
    /// happened rather than that nobody knew.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty outcome or
    /// [`AUDIT_IN_PROGRESS`], or if entry `id` was not begun or is already
    /// complete; otherwise when the database cannot be written.
    fn complete_audit(&self, id: i64, outcome: &str) -> Result<(), StoreError>;

    /// The heartbeat of a begun entry whose call still runs: its lease runs
    /// at least to `lease_until`. An entry already complete or settled is left
    /// alone without an error.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if there is no entry `id`; otherwise when
    /// the database cannot be written.
    fn extend_audit_lease(&self, id: i64, lease_until: i64) -> Result<(), StoreError>;

    /// Settles the calls whose lease lapsed at `now` (`lease_until <= now`),
    /// in ONE transaction; run at start (after a crash), and safe to run at
    /// any time and on several replicas at once (a live lease is never
    /// touched):
    /// - an unexpired `Claimed` idempotency record is deleted (its call never
    ///   left, so a repeat may send it): [`Settled::freed`];
    /// - an unexpired `Sending` one is completed with the given reply (status
    ///   `unknown_status`, content type `unknown_content_type`, body
    ///   `unknown_body`, sealed like any reply), the `outcome_unknown` answer
    ///   a repeat then gets: [`Settled::unknown`];
    /// - an audit entry [`AUDIT_IN_PROGRESS`] gets the outcome
    ///   [`AUDIT_OUTCOME_UNKNOWN`]: [`Settled::audits`].
    ///
    /// Expired records are left to [`Store::purge_expired_idempotency`].
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if `unknown_status` is not 100–999 or the
    /// body is too long to encrypt; otherwise when the database cannot be
    /// written.
    fn settle_expired(
        &self,
        now: i64,
        unknown_status: u16,
        unknown_content_type: &str,
        unknown_body: &[u8],
    ) -> Result<Settled, StoreError>;

    /// Audit entries matching `filter`, newest first (by time, then by id),
    /// at most `filter.limit` ([`DEFAULT_AUDIT_LIMIT`] if unset).
    ///
    /// # Errors
    /// When the database cannot be read.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;

    /// Stores a verified IPN event with one pending delivery per target, in
    /// one committed transaction; a redelivery of an event already stored
    /// (same connection and fingerprint) is only counted.
    fn ipn_store(&self, event: &NewIpnEvent, targets: &[String]) -> Result<IpnStored, StoreError>;

    /// Deliveries due at `now_ms`, oldest event first; per target and
    /// purchase only the oldest pending one.
    fn ipn_due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueDelivery>, StoreError>;

    /// When the next pending delivery is due (unix ms), if any.
    fn ipn_next_due(&self) -> Result<Option<i64>, StoreError>;

    /// Records the result of one delivery attempt begun at `generation`
    /// (ignored if a replay came in between).
    fn ipn_attempted(
        &self,
        event_id: i64,
        target: &str,
        generation: i64,
        attempt: &Attempt,
    ) -> Result<(), StoreError>;

    /// Gives events of `connection` that have no delivery at all (received
    /// while nothing was configured) one per target; how many events.
    fn ipn_adopt_targets(
        &self,
        connection: &str,
        targets: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError>;

    /// Events matching `filter`, newest first, without their fields.
    fn ipn_events(&self, filter: &IpnFilter) -> Result<Vec<IpnEvent>, StoreError>;

    /// One event with its fields.
    fn ipn_event(&self, id: i64) -> Result<Option<IpnEvent>, StoreError>;

    /// Sets every delivery of event `id` pending again, due at `now_ms`,
    /// adding one for each of `targets` it lacks; `None` if there is no such
    /// event, else how many deliveries.
    fn ipn_replay(
        &self,
        id: i64,
        targets: &[String],
        now_ms: i64,
    ) -> Result<Option<usize>, StoreError>;

    /// Saves the IPN passphrase of `connection` (sealed).
    fn save_ipn_passphrase(
        &self,
        connection: &str,
        passphrase: &SecretString,
    ) -> Result<(), StoreError>;

    /// The IPN passphrase saved for `connection`.
    fn ipn_passphrase(&self, connection: &str) -> Result<Option<SecretString>, StoreError>;
}

//! [`SqliteStore`]: the embedded [`Store`] backend.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};
use secrecy::ExposeSecret;

use super::crypto::{self, KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT, OpenError, Sealer};
use super::error::KeySource;
use super::{
    Attempt, AuditEntry, AuditFilter, Begin, ConnectionState, DueDelivery, IdempotencyRecord,
    IpnEvent, IpnFilter, IpnStored, NewIpnEvent, SOURCE_KINDS, SecretString, Settled, Store,
    StoreError, fs, migrations, sqlite_audit, sqlite_idempotency,
};

/// How long a statement waits for another connection's lock before it fails
/// with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const STATE_COLUMNS: &str = "connection, source_kind, key_id, expires_at, last_renewal_at, \
                             last_error, needs_attention, updated_at, base_url";

/// The embedded store: `{data_dir}/ds24-proxy.db`, secrets sealed with
/// XChaCha20-Poly1305 under the master key.
///
/// One SQLite connection behind a mutex: calls are short, and SQLite
/// serialises writers anyway. Several processes may open the same data
/// directory; every write is a `BEGIN IMMEDIATE` transaction and waits up to
/// five seconds for another writer.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    sealer: Sealer,
    path: PathBuf,
    key_source: KeySource,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("key_source", &self.key_source)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The database file's name in the data directory ([`super::DB_FILE`]).
    pub const DB_FILE: &'static str = super::DB_FILE;
    /// The master key file's name in the data directory ([`super::KEY_FILE`]).
    pub const KEY_FILE: &'static str = super::KEY_FILE;

    /// Opens (creating if needed) `{data_dir}/ds24-proxy.db`.
    ///
    /// - `data_dir` is created with mode 0700 (parents too); an existing one
    ///   with group or other bits is tightened to 0700, with a warning. The
    ///   database and its `-wal`/`-shm` files are 0600.
    /// - The master key is `master_key` if given (the value of
    ///   `DS24_PROXY_MASTER_KEY`: 64 hex characters or base64 of 32 bytes;
    ///   surrounding whitespace ignored), else `{data_dir}/master.key`. That
    ///   file is created on first use with 32 random bytes as hex and mode
    ///   0600 (created with that mode, never chmod'ed after writing); an
    ///   existing one with group or other bits is refused. A missing key file
    ///   is not re-created for a store that already holds encrypted data.
    /// - The key is checked against a sealed check value, so a wrong key
    ///   fails here, not at the first read.
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`], [`StoreError::BadMasterKey`],
    /// [`StoreError::InsecureKeyFile`], [`StoreError::MissingMasterKey`],
    /// [`StoreError::UnsupportedSchema`], or an I/O or SQLite failure.
    pub fn open(data_dir: &Path, master_key: Option<&SecretString>) -> Result<Self, StoreError> {
        // A malformed given key fails before anything is created.
        let given = master_key
            .map(|given| {
                crypto::parse_key(given.expose_secret()).map_err(|reason| {
                    StoreError::BadMasterKey {
                        key_source: KeySource::Given,
                        reason,
                    }
                })
            })
            .transpose()?;
        fs::ensure_data_dir(data_dir)?;
        let path = data_dir.join(Self::DB_FILE);
        fs::prepare_db_file(&path)?;
        // No URI interpretation of the path; the mutex serialises access.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags)?;
        // Several processes opening a fresh directory at once can see
        // SQLITE_BUSY at once, without the busy handler, while one of them
        // switches the file to WAL: such a clash is waited out here.
        let started = std::time::Instant::now();
        let mut prepared =
            configure(&conn, &path).and_then(|()| migrations::migrate(&mut conn, &path));
        while let Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))) = &prepared
            && f.code == rusqlite::ErrorCode::DatabaseBusy
            && started.elapsed() < BUSY_TIMEOUT
        {
            std::thread::sleep(Duration::from_millis(20));
            prepared = configure(&conn, &path).and_then(|()| migrations::migrate(&mut conn, &path));
        }
        prepared.map_err(|e| match e {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::NotADatabase =>
            {
                StoreError::Corrupt {
                    path: path.clone(),
                    detail: "it is not an SQLite database".into(),
                }
            }
            other => other,
        })?;

        let (key, key_source) = match given {
            Some(key) => (key, KeySource::Given),
            None => {
                let key_path = data_dir.join(Self::KEY_FILE);
                let key = match fs::read_key_file(&key_path)? {
                    Some(key) => key,
                    None if holds_sealed_data(&conn)? => match fs::read_key_file(&key_path)? {
                        // Another process opening the fresh directory at the
                        // same moment created the key and sealed with it
                        // between our two looks.
                        Some(key) => key,
                        None => {
                            return Err(StoreError::MissingMasterKey {
                                db_path: path,
                                key_path,
                            });
                        }
                    },
                    None => fs::create_key_file(&key_path)?,
                };
                (key, KeySource::File(key_path))
            }
        };
        let sealer = Sealer::new(&key);
        drop(key);
        check_key(&mut conn, &sealer, &path, &key_source)?;
        tracing::debug!(
            path = %path.display(),
            key_source = %key_source,
            schema_version = migrations::latest_version(),
            "store opened"
        );
        Ok(Self {
            conn: Mutex::new(conn),
            sealer,
            path,
            key_source,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the master key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// The schema version this build writes (`PRAGMA user_version`).
    pub fn schema_version() -> i64 {
        migrations::latest_version()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held rolled its transaction back (the
        // `Transaction` guard's drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, outside a transaction: for reads that are
    /// one statement (atomic on their own).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        Ok(f(&self.lock())?)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed if `f`
    /// succeeds and rolled back if it fails.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Test access to the raw connection (e.g. to install a failing trigger).
    #[cfg(test)]
    pub(super) fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&self.lock())
    }

    /// The master key's cipher, for the other `sqlite_*` files.
    pub(super) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// A [`StoreError::Corrupt`] about this database.
    pub(super) fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

impl Store for SqliteStore {
    fn save(
        &self,
        connection: &str,
        secrets: &[(&str, &SecretString)],
        state: &ConnectionState,
    ) -> Result<(), StoreError> {
        check_state(state)?;
        if state.connection != connection {
            return Err(StoreError::invalid(format!(
                "saving connection `{connection}` with the state of connection `{}`",
                state.connection
            )));
        }
        let now = unix_now();
        let mut sealed = Vec::with_capacity(secrets.len());
        for (name, value) in secrets {
            if name.is_empty() {
                return Err(StoreError::invalid("a secret name is empty"));
            }
            let blob = self
                .sealer
                .seal(
                    &crypto::secret_aad(connection, name),
                    value.expose_secret().as_bytes(),
                )
                .ok_or_else(|| {
                    StoreError::invalid(format!("the secret `{name}` is too long to encrypt"))
                })?;
            sealed.push((*name, blob));
        }
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO secrets (connection, name, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (connection, name)
                 DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            )?;
            for (name, blob) in &sealed {
                insert.execute(params![connection, name, blob, now])?;
            }
            upsert_state(tx, state)
        })?;
        tracing::debug!(
            connection,
            secrets = ?sealed.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            "store: secrets and state saved"
        );
        Ok(())
    }

    fn secret(&self, connection: &str, name: &str) -> Result<Option<SecretString>, StoreError> {
        let blob: Option<Vec<u8>> = self.read(|conn| {
            conn.prepare_cached("SELECT sealed FROM secrets WHERE connection = ?1 AND name = ?2")?
                .query_row(params![connection, name], |row| row.get(0))
                .optional()
        })?;
        let Some(blob) = blob else {
            return Ok(None);
        };
        let plain = self
            .sealer
            .open(&crypto::secret_aad(connection, name), &blob)
            .map_err(|e| {
                let what = match e {
                    OpenError::Malformed => "is malformed",
                    OpenError::Authentication => {
                        "does not authenticate: it was altered or copied from another row"
                    }
                };
                self.corrupt(format!(
                    "the secret `{name}` of connection `{connection}` {what}; remove the \
                     connection and store its credential again"
                ))
            })?;
        let text = std::str::from_utf8(&plain).map_err(|_| {
            self.corrupt(format!(
                "the secret `{name}` of connection `{connection}` is not UTF-8"
            ))
        })?;
        // `From<&str>` copies into an exact-size allocation; `plain` is
        // zeroized when it drops.
        Ok(Some(SecretString::from(text)))
    }

    fn state(&self, connection: &str) -> Result<Option<ConnectionState>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {STATE_COLUMNS} FROM connections WHERE connection = ?1"
            ))?
            .query_row([connection], state_from_row)
            .optional()
        })
    }

    fn states(&self) -> Result<Vec<ConnectionState>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {STATE_COLUMNS} FROM connections ORDER BY connection"
            ))?
            .query_map([], state_from_row)?
            .collect()
        })
    }

    fn save_state(&self, state: &ConnectionState) -> Result<(), StoreError> {
        check_state(state)?;
        self.write(|tx| upsert_state(tx, state))
    }

    fn remove(&self, connection: &str) -> Result<bool, StoreError> {
        let removed = self.write(|tx| {
            let secrets = tx.execute("DELETE FROM secrets WHERE connection = ?1", [connection])?;
            let states = tx.execute(
                "DELETE FROM connections WHERE connection = ?1",
                [connection],
            )?;
            Ok(secrets + states > 0)
        })?;
        if removed {
            tracing::info!(connection, "store: connection removed");
        }
        Ok(removed)
    }

    fn begin_idempotent(
        &self,
        connection: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        ttl_secs: i64,
        lease_secs: i64,
    ) -> Result<Begin, StoreError> {
        sqlite_idempotency::begin(
            self,
            connection,
            key,
            fingerprint,
            now,
            ttl_secs,
            lease_secs,
        )
    }

    fn mark_idempotent_sending(
        &self,
        connection: &str,
        key: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        sqlite_idempotency::mark_sending(self, connection, key, now, lease_until)
    }

    fn extend_idempotent_lease(
        &self,
        connection: &str,
        key: &str,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        sqlite_idempotency::extend_lease(self, connection, key, lease_until)
    }

    fn complete_idempotent(
        &self,
        connection: &str,
        key: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), StoreError> {
        sqlite_idempotency::complete(self, connection, key, status, content_type, body)
    }

    fn abandon_idempotent(&self, connection: &str, key: &str) -> Result<(), StoreError> {
        sqlite_idempotency::abandon(self, connection, key)
    }

    fn idempotent(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        sqlite_idempotency::get(self, connection, key)
    }

    fn purge_expired_idempotency(&self, now: i64) -> Result<usize, StoreError> {
        sqlite_idempotency::purge_expired(self, now)
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        sqlite_audit::append(self, entry)
    }

    fn begin_audit(&self, entry: &AuditEntry, lease_until: i64) -> Result<i64, StoreError> {
        sqlite_audit::begin(self, entry, lease_until)
    }

    fn complete_audit(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        sqlite_audit::complete(self, id, outcome)
    }

    fn extend_audit_lease(&self, id: i64, lease_until: i64) -> Result<(), StoreError> {
        sqlite_audit::extend_lease(self, id, lease_until)
    }

    fn settle_expired(
        &self,
        now: i64,
        unknown_status: u16,
        unknown_content_type: &str,
        unknown_body: &[u8],
    ) -> Result<Settled, StoreError> {
        super::idempotency::check_status(unknown_status)?;
        // Both tables in one transaction: a crash settles all or nothing.
        let settled = self.write(|tx| {
            let records = sqlite_idempotency::settle_expired(
                self,
                tx,
                now,
                (unknown_status, unknown_content_type, unknown_body),
            )?;
            Ok(Settled {
                audits: sqlite_audit::settle_expired(tx, now)?,
                ..records
            })
        })?;
        if settled != Settled::default() {
            tracing::warn!(
                freed = settled.freed,
                unknown = settled.unknown,
                audits = settled.audits,
                "store: calls cut off by a process that died were settled"
            );
        }
        Ok(settled)
    }

    fn ipn_store(&self, event: &NewIpnEvent, targets: &[String]) -> Result<IpnStored, StoreError> {
        super::sqlite_ipn::store_event(self, event, targets)
    }

    fn ipn_due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueDelivery>, StoreError> {
        super::sqlite_ipn::due(self, now_ms, limit)
    }

    fn ipn_next_due(&self) -> Result<Option<i64>, StoreError> {
        super::sqlite_ipn::next_due(self)
    }

    fn ipn_attempted(
        &self,
        event_id: i64,
        target: &str,
        generation: i64,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        super::sqlite_ipn::attempted(self, event_id, target, generation, attempt)
    }

    fn ipn_adopt_targets(
        &self,
        connection: &str,
        targets: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        super::sqlite_ipn::adopt_targets(self, connection, targets, now_ms)
    }

    fn ipn_events(&self, filter: &IpnFilter) -> Result<Vec<IpnEvent>, StoreError> {
        super::sqlite_ipn::list(self, filter)
    }

    fn ipn_event(&self, id: i64) -> Result<Option<IpnEvent>, StoreError> {
        super::sqlite_ipn::get(self, id)
    }

    fn ipn_replay(
        &self,
        id: i64,
        targets: &[String],
        now_ms: i64,
    ) -> Result<Option<usize>, StoreError> {
        super::sqlite_ipn::replay(self, id, targets, now_ms)
    }

    fn save_ipn_passphrase(
        &self,
        connection: &str,
        passphrase: &SecretString,
    ) -> Result<(), StoreError> {
        super::sqlite_ipn::save_passphrase(self, connection, passphrase, unix_now())
    }

    fn ipn_passphrase(&self, connection: &str) -> Result<Option<SecretString>, StoreError> {
        super::sqlite_ipn::passphrase(self, connection)
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        sqlite_audit::query(self, filter)
    }
}

/// Connection settings: WAL, full sync, a busy timeout, foreign keys.
fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            journal_mode = %mode,
            "the store could not switch to WAL mode (is the data directory on a network file system?)"
        );
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA trusted_schema = OFF;",
    )?;
    Ok(())
}

/// Whether the database holds anything sealed under some master key.
fn holds_sealed_data(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM store_meta WHERE key = 'key_check')
             OR EXISTS (SELECT 1 FROM secrets)",
        [],
        |row| row.get(0),
    )?)
}

/// Checks the master key against the sealed check value, writing that value
/// on first use (after checking the key against an existing secret, if any).
fn check_key(
    conn: &mut Connection,
    sealer: &Sealer,
    path: &Path,
    key_source: &KeySource,
) -> Result<(), StoreError> {
    let wrong_key = || StoreError::WrongMasterKey {
        db_path: path.to_owned(),
        key_source: key_source.clone(),
    };
    let read_check = |conn: &Connection| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'key_check'",
                [],
                |row| row.get(0),
            )
            .optional()?)
    };
    let verify = |blob: &[u8]| match sealer.open(KEY_CHECK_AAD, blob) {
        Ok(plain) if plain.as_slice() == KEY_CHECK_PLAINTEXT => Ok(()),
        Err(OpenError::Authentication) => Err(wrong_key()),
        Ok(_) | Err(OpenError::Malformed) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "its master key check value is malformed".into(),
        }),
    };

    if let Some(blob) = read_check(conn)? {
        return verify(&blob);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have written it meanwhile.
    if let Some(blob) = read_check(&tx)? {
        return verify(&blob);
    }
    let existing: Option<(String, String, Vec<u8>)> = tx
        .query_row(
            "SELECT connection, name, sealed FROM secrets LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    if let Some((connection, name, blob)) = existing {
        sealer
            .open(&crypto::secret_aad(&connection, &name), &blob)
            .map_err(|_| wrong_key())?;
    }
    let check = sealer
        .seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)
        .ok_or_else(|| StoreError::invalid("the key check value does not encrypt"))?;
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('key_check', ?1)",
        [check],
    )?;
    tx.commit()?;
    Ok(())
}

fn check_state(state: &ConnectionState) -> Result<(), StoreError> {
    if state.connection.is_empty() {
        return Err(StoreError::invalid("the connection name is empty"));
    }
    if !SOURCE_KINDS.contains(&state.source_kind.as_str()) {
        return Err(StoreError::invalid(format!(
            "unknown credential source kind `{}` (expected one of: {})",
            state.source_kind,
            SOURCE_KINDS.join(", ")
        )));
    }
    Ok(())
}

fn upsert_state(tx: &Transaction<'_>, state: &ConnectionState) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO connections ({STATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (connection) DO UPDATE SET
             base_url = COALESCE(excluded.base_url, connections.base_url),
             source_kind = excluded.source_kind,
             key_id = excluded.key_id,
             expires_at = excluded.expires_at,
             last_renewal_at = excluded.last_renewal_at,
             last_error = excluded.last_error,
             needs_attention = excluded.needs_attention,
             updated_at = excluded.updated_at"
    ))?
    .execute(params![
        state.connection,
        state.source_kind,
        state.key_id,
        state.expires_at,
        state.last_renewal_at,
        state.last_error,
        state.needs_attention,
        state.updated_at,
        state.base_url,
    ])?;
    Ok(())
}

fn state_from_row(row: &Row<'_>) -> rusqlite::Result<ConnectionState> {
    Ok(ConnectionState {
        connection: row.get(0)?,
        source_kind: row.get(1)?,
        key_id: row.get(2)?,
        expires_at: row.get(3)?,
        last_renewal_at: row.get(4)?,
        last_error: row.get(5)?,
        needs_attention: row.get(6)?,
        updated_at: row.get(7)?,
        base_url: row.get(8)?,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

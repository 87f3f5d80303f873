//! The idempotency records of [`SqliteStore`] (table `idempotency`), with
//! reply bodies sealed like secrets.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::crypto::{self, OpenError};
use super::idempotency::{check_hex_digest, check_positive_secs, check_record_name, check_status};
use super::{Begin, IdempotencyRecord, IdempotencyState, Settled, SqliteStore, StoreError};

const COLUMNS: &str = "connection, key, fingerprint, state, status, content_type, sealed_body, \
                       created_at, expires_at, lease_until";

/// The `state` values of a record in progress, for SQL: `Claimed`, `Sending`.
const IN_PROGRESS_SQL: &str = "('claimed', 'sending')";

/// A row as stored: state unparsed, body still sealed.
struct StoredRecord {
    connection: String,
    key: String,
    fingerprint: String,
    state: String,
    status: Option<i64>,
    content_type: Option<String>,
    sealed_body: Option<Vec<u8>>,
    created_at: i64,
    expires_at: i64,
    lease_until: i64,
}

fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        connection: row.get(0)?,
        key: row.get(1)?,
        fingerprint: row.get(2)?,
        state: row.get(3)?,
        status: row.get(4)?,
        content_type: row.get(5)?,
        sealed_body: row.get(6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        lease_until: row.get(9)?,
    })
}

fn select(
    conn: &Connection,
    connection: &str,
    key: &str,
) -> rusqlite::Result<Option<StoredRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM idempotency WHERE connection = ?1 AND key = ?2"
    ))?
    .query_row(params![connection, key], stored_from_row)
    .optional()
}

/// What a begin decided inside its transaction; the reply of a live record
/// is opened after the commit, so the lock is not held while decrypting.
enum Decided {
    Started,
    InProgress(StoredRecord),
    Orphaned(StoredRecord),
    Done(StoredRecord),
    Mismatch(StoredRecord),
}

/// See [`super::Store::begin_idempotent`].
pub(super) fn begin(
    store: &SqliteStore,
    connection: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    ttl_secs: i64,
    lease_secs: i64,
) -> Result<Begin, StoreError> {
    check_record_name(connection, key)?;
    check_hex_digest("request fingerprint", fingerprint)?;
    check_positive_secs("an idempotency record", ttl_secs)?;
    check_positive_secs("an idempotency lease", lease_secs)?;
    let expires_at = now.saturating_add(ttl_secs);
    let lease_until = now.saturating_add(lease_secs);
    // Look, decide and write in one BEGIN IMMEDIATE transaction: it holds the
    // write lock from its first statement, so of two begins on one key
    // (threads or processes) the second sees what the first did, and a
    // lapsed lease is settled by exactly one of them.
    let decided = store.write(|tx| {
        let Some(mut stored) = select(tx, connection, key)?.filter(|s| s.expires_at > now) else {
            // None, or expired (which counts as absent): a fresh claim.
            claim(
                tx,
                connection,
                key,
                fingerprint,
                now,
                expires_at,
                lease_until,
            )?;
            return Ok(Decided::Started);
        };
        if stored.fingerprint != fingerprint {
            return Ok(Decided::Mismatch(stored));
        }
        let state = parse_state(store, &stored)?;
        if state == IdempotencyState::Complete {
            return Ok(Decided::Done(stored));
        }
        if stored.lease_until > now {
            return Ok(Decided::InProgress(stored));
        }
        if state == IdempotencyState::Claimed {
            // Its caller died before sending: nothing reached Digistore24, so
            // this caller starts the call afresh, as if the key were new.
            claim(
                tx,
                connection,
                key,
                fingerprint,
                now,
                expires_at,
                lease_until,
            )?;
            tracing::info!(
                connection,
                "store: a claimed idempotent call whose lease lapsed was taken over"
            );
            return Ok(Decided::Started);
        }
        // `Sending` with a lapsed lease: it may have run. The lease passes to
        // this caller, who settles it; others meanwhile wait on a live lease.
        renew_lease(tx, connection, key, lease_until)?;
        stored.lease_until = lease_until;
        tracing::warn!(
            connection,
            "store: an idempotent call was cut off after it may have reached Digistore24"
        );
        Ok(Decided::Orphaned(stored))
    })?;
    let begun = match decided {
        Decided::Started => Begin::Started,
        Decided::InProgress(stored) => Begin::InProgress(open_record(store, stored)?),
        Decided::Orphaned(stored) => Begin::Orphaned(open_record(store, stored)?),
        Decided::Done(stored) => Begin::Done(open_record(store, stored)?),
        Decided::Mismatch(stored) => Begin::Mismatch(open_record(store, stored)?),
    };
    tracing::debug!(
        connection,
        outcome = begun.as_str(),
        "store: idempotent call begun"
    );
    Ok(begun)
}

/// Writes a fresh `Claimed` record, replacing whatever row the key had.
fn claim(
    tx: &Transaction<'_>,
    connection: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    expires_at: i64,
    lease_until: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO idempotency ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, NULL, NULL, NULL, ?5, ?6, ?7)
         ON CONFLICT (connection, key) DO UPDATE SET
             fingerprint = excluded.fingerprint,
             state = excluded.state,
             status = NULL,
             content_type = NULL,
             sealed_body = NULL,
             created_at = excluded.created_at,
             expires_at = excluded.expires_at,
             lease_until = excluded.lease_until"
    ))?
    .execute(params![
        connection,
        key,
        fingerprint,
        IdempotencyState::Claimed.as_str(),
        now,
        expires_at,
        lease_until,
    ])?;
    Ok(())
}

/// Sets the lease of a record in progress to `lease_until` if that is later;
/// how many rows it changed (0 or 1).
fn renew_lease(
    tx: &Transaction<'_>,
    connection: &str,
    key: &str,
    lease_until: i64,
) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(&format!(
            "UPDATE idempotency SET lease_until = MAX(lease_until, ?3)
             WHERE connection = ?1 AND key = ?2 AND state IN {IN_PROGRESS_SQL}"
        ))?
        .execute(params![connection, key, lease_until])?)
}

/// See [`super::Store::mark_idempotent_sending`].
pub(super) fn mark_sending(
    store: &SqliteStore,
    connection: &str,
    key: &str,
    now: i64,
    lease_until: i64,
) -> Result<(), StoreError> {
    check_record_name(connection, key)?;
    if lease_until <= now {
        return Err(StoreError::invalid(format!(
            "a sending call's lease must run past now ({now}), not to {lease_until}"
        )));
    }
    // The lease may have lapsed without anyone taking the record over: it is
    // still this caller's then, and marking it under the write lock is safe
    // (a take-over is serialised before or after this).
    let marked = store.write(|tx| {
        Ok(tx
            .prepare_cached(
                "UPDATE idempotency SET state = ?3, lease_until = ?4
                 WHERE connection = ?1 AND key = ?2 AND state = ?5 AND expires_at > ?6",
            )?
            .execute(params![
                connection,
                key,
                IdempotencyState::Sending.as_str(),
                lease_until,
                IdempotencyState::Claimed.as_str(),
                now,
            ])?)
    })?;
    if marked == 0 {
        return Err(StoreError::invalid(format!(
            "no call of connection `{connection}` is claimed under this idempotency key \
             (it was never begun, is already sending or complete, or was abandoned, freed or \
             purged); it must not be sent"
        )));
    }
    tracing::debug!(connection, "store: idempotent call sending");
    Ok(())
}

/// See [`super::Store::extend_idempotent_lease`].
pub(super) fn extend_lease(
    store: &SqliteStore,
    connection: &str,
    key: &str,
    lease_until: i64,
) -> Result<(), StoreError> {
    check_record_name(connection, key)?;
    store.write(|tx| {
        if renew_lease(tx, connection, key, lease_until)? > 0 {
            return Ok(());
        }
        // Nothing in progress: a complete record is fine (the call ended, or
        // an orphan's taker settled it); no record means the caller lost it.
        let exists: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM idempotency WHERE connection = ?1 AND key = ?2)",
            )?
            .query_row(params![connection, key], |row| row.get(0))?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::invalid(format!(
                "no call of connection `{connection}` is recorded under this idempotency key \
                 (it was abandoned, or freed after its lease lapsed)"
            )))
        }
    })
}

/// See [`super::Store::complete_idempotent`].
pub(super) fn complete(
    store: &SqliteStore,
    connection: &str,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), StoreError> {
    check_record_name(connection, key)?;
    check_status(status)?;
    store.write(|tx| {
        // The fingerprint is part of the body's associated data, so it is read
        // under the same lock that the update is made under.
        let fingerprint: Option<String> = tx
            .prepare_cached(&format!(
                "SELECT fingerprint FROM idempotency
                 WHERE connection = ?1 AND key = ?2 AND state IN {IN_PROGRESS_SQL}"
            ))?
            .query_row(params![connection, key], |row| row.get(0))
            .optional()?;
        let Some(fingerprint) = fingerprint else {
            return Err(StoreError::invalid(format!(
                "no call of connection `{connection}` is in progress under this idempotency key \
                 (it was completed, abandoned, settled, or purged after expiring)"
            )));
        };
        record_reply(
            store,
            tx,
            (connection, key, &fingerprint),
            status,
            content_type,
            body,
        )
    })?;
    tracing::debug!(connection, status, "store: idempotent call completed");
    Ok(())
}

/// Seals the reply and marks the record (`connection`, `key`, `fingerprint`)
/// complete with it.
fn record_reply(
    store: &SqliteStore,
    tx: &Transaction<'_>,
    (connection, key, fingerprint): (&str, &str, &str),
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), StoreError> {
    let aad = crypto::reply_body_aad(connection, key, fingerprint, status, content_type);
    let sealed = store
        .sealer()
        .seal(&aad, body)
        .ok_or_else(|| StoreError::invalid("the reply body is too long to encrypt"))?;
    tx.prepare_cached(
        "UPDATE idempotency SET state = ?3, status = ?4, content_type = ?5, sealed_body = ?6
         WHERE connection = ?1 AND key = ?2",
    )?
    .execute(params![
        connection,
        key,
        IdempotencyState::Complete.as_str(),
        status,
        content_type,
        sealed,
    ])?;
    Ok(())
}

/// Deletes the unexpired records in state ?1 whose lease lapsed at ?2.
pub(super) const SETTLE_CLAIMED_SQL: &str = "DELETE FROM idempotency
     WHERE state = ?1 AND lease_until <= ?2 AND expires_at > ?2";

/// The unexpired records in state ?1 whose lease lapsed at ?2.
pub(super) const SETTLE_SENDING_SQL: &str = "SELECT connection, key, fingerprint FROM idempotency
     WHERE state = ?1 AND lease_until <= ?2 AND expires_at > ?2";

/// The idempotency half of [`super::Store::settle_expired`], inside its
/// transaction: frees lapsed `Claimed` records and completes lapsed `Sending`
/// ones with the given reply. Returns (freed, unknown).
pub(super) fn settle_expired(
    store: &SqliteStore,
    tx: &Transaction<'_>,
    now: i64,
    (status, content_type, body): (u16, &str, &[u8]),
) -> Result<Settled, StoreError> {
    let freed = tx
        .prepare_cached(SETTLE_CLAIMED_SQL)?
        .execute(params![IdempotencyState::Claimed.as_str(), now])?;
    // Each reply is sealed under its own record's associated data, so the
    // rows are read first and updated one by one.
    let orphans: Vec<(String, String, String)> = tx
        .prepare_cached(SETTLE_SENDING_SQL)?
        .query_map(params![IdempotencyState::Sending.as_str(), now], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (connection, key, fingerprint) in &orphans {
        record_reply(
            store,
            tx,
            (connection, key, fingerprint),
            status,
            Some(content_type),
            body,
        )?;
    }
    Ok(Settled {
        freed,
        unknown: orphans.len(),
        audits: 0,
    })
}

/// See [`super::Store::abandon_idempotent`].
pub(super) fn abandon(store: &SqliteStore, connection: &str, key: &str) -> Result<(), StoreError> {
    // A complete record is never abandoned: its call did reach the upstream.
    // A `Sending` one is: its caller knows better than the phase that nothing
    // left (a refused connect, a 429).
    let removed = store.write(|tx| {
        Ok(tx
            .prepare_cached(&format!(
                "DELETE FROM idempotency
                 WHERE connection = ?1 AND key = ?2 AND state IN {IN_PROGRESS_SQL}"
            ))?
            .execute(params![connection, key])?)
    })?;
    tracing::debug!(
        connection,
        removed = removed > 0,
        "store: idempotent call abandoned"
    );
    Ok(())
}

/// See [`super::Store::idempotent`].
pub(super) fn get(
    store: &SqliteStore,
    connection: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    store
        .read(|conn| select(conn, connection, key))?
        .map(|stored| open_record(store, stored))
        .transpose()
}

/// See [`super::Store::purge_expired_idempotency`].
pub(super) fn purge_expired(store: &SqliteStore, now: i64) -> Result<usize, StoreError> {
    let purged = store.write(|tx| {
        Ok(tx
            .prepare_cached("DELETE FROM idempotency WHERE expires_at <= ?1")?
            .execute([now])?)
    })?;
    if purged > 0 {
        tracing::debug!(purged, "store: expired idempotency records purged");
    }
    Ok(purged)
}

/// Parses the state and opens the body of a stored record.
fn open_record(store: &SqliteStore, stored: StoredRecord) -> Result<IdempotencyRecord, StoreError> {
    let state = parse_state(store, &stored)?;
    let connection = stored.connection;
    let damaged = |what: &str| {
        store.corrupt(format!(
            "an idempotency record of connection `{connection}` {what}; it is unusable until it \
             expires and is purged"
        ))
    };
    let status = stored
        .status
        .map(|status| u16::try_from(status).map_err(|_| damaged("has an invalid status")))
        .transpose()?;
    let body = match (&stored.sealed_body, status) {
        (None, _) => None,
        (Some(_), None) => return Err(damaged("has a reply body without a status")),
        (Some(sealed), Some(status)) => {
            let aad = crypto::reply_body_aad(
                &connection,
                &stored.key,
                &stored.fingerprint,
                status,
                stored.content_type.as_deref(),
            );
            let plain = store.sealer().open(&aad, sealed).map_err(|e| {
                damaged(match e {
                    OpenError::Malformed => "has a malformed reply body",
                    OpenError::Authentication => {
                        "has a reply that does not authenticate: it was altered or copied from \
                         another row"
                    }
                })
            })?;
            // `plain` is zeroized when it drops; the record's copy is the
            // caller's to replay.
            Some(plain.to_vec())
        }
    };
    Ok(IdempotencyRecord {
        key: stored.key,
        connection,
        fingerprint: stored.fingerprint,
        state,
        status,
        content_type: stored.content_type,
        body,
        created_at: stored.created_at,
        expires_at: stored.expires_at,
        lease_until: stored.lease_until,
    })
}

/// The state of a stored record; a value the schema's CHECK would not allow
/// means the file was altered.
fn parse_state(store: &SqliteStore, stored: &StoredRecord) -> Result<IdempotencyState, StoreError> {
    IdempotencyState::parse(&stored.state).ok_or_else(|| {
        store.corrupt(format!(
            "an idempotency record of connection `{}` has an unknown state; it is unusable until \
             it expires and is purged",
            stored.connection
        ))
    })
}

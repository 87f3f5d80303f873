//! The idempotency records of [`SqliteStore`] (table `idempotency`), with
//! reply bodies sealed like secrets.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::crypto::{self, OpenError};
use super::idempotency::{check_hex_digest, check_record_name};
use super::{Begin, IdempotencyRecord, IdempotencyState, SqliteStore, StoreError};

const COLUMNS: &str = "connection, key, fingerprint, state, status, content_type, sealed_body, \
                       created_at, expires_at";

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

/// See [`super::Store::begin_idempotent`].
pub(super) fn begin(
    store: &SqliteStore,
    connection: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    ttl_secs: i64,
) -> Result<Begin, StoreError> {
    check_record_name(connection, key)?;
    check_hex_digest("request fingerprint", fingerprint)?;
    if ttl_secs <= 0 {
        return Err(StoreError::invalid(format!(
            "an idempotency record must live a positive number of seconds, not {ttl_secs}"
        )));
    }
    let expires_at = now.saturating_add(ttl_secs);
    // Look and insert in one BEGIN IMMEDIATE transaction: it holds the write
    // lock from its first statement, so of two begins on one key (threads or
    // processes) the second sees the first's row.
    let live = store.write(|tx| {
        if let Some(stored) = select(tx, connection, key)?
            && stored.expires_at > now
        {
            return Ok(Some(stored));
        }
        // An expired record is absent: this replaces it whole.
        tx.prepare_cached(&format!(
            "INSERT INTO idempotency ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, NULL, ?5, ?6)
             ON CONFLICT (connection, key) DO UPDATE SET
                 fingerprint = excluded.fingerprint,
                 state = excluded.state,
                 status = NULL,
                 content_type = NULL,
                 sealed_body = NULL,
                 created_at = excluded.created_at,
                 expires_at = excluded.expires_at"
        ))?
        .execute(params![
            connection,
            key,
            fingerprint,
            IdempotencyState::InProgress.as_str(),
            now,
            expires_at,
        ])?;
        Ok(None)
    })?;
    // Opened after the commit, so the lock is not held while decrypting.
    let begun = match live {
        None => Begin::Started,
        Some(stored) => {
            let record = open_record(store, stored)?;
            if record.fingerprint != fingerprint {
                Begin::Mismatch(record)
            } else if record.state == IdempotencyState::Complete {
                Begin::Done(record)
            } else {
                Begin::InProgress(record)
            }
        }
    };
    tracing::debug!(
        connection,
        outcome = match begun {
            Begin::Started => "started",
            Begin::InProgress(_) => "in_progress",
            Begin::Done(_) => "done",
            Begin::Mismatch(_) => "mismatch",
        },
        "store: idempotent call begun"
    );
    Ok(begun)
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
    if !(100..=999).contains(&status) {
        return Err(StoreError::invalid(format!(
            "{status} is not an HTTP status"
        )));
    }
    store.write(|tx| {
        // The fingerprint is part of the body's associated data, so it is read
        // under the same lock that the update is made under.
        let fingerprint: Option<String> = tx
            .prepare_cached(
                "SELECT fingerprint FROM idempotency
                 WHERE connection = ?1 AND key = ?2 AND state = ?3",
            )?
            .query_row(
                params![connection, key, IdempotencyState::InProgress.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        let Some(fingerprint) = fingerprint else {
            return Err(StoreError::invalid(format!(
                "no call of connection `{connection}` is in progress under this idempotency key \
                 (it was completed, abandoned, or purged after expiring)"
            )));
        };
        let aad = crypto::reply_body_aad(connection, key, &fingerprint, status, content_type);
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
    })?;
    tracing::debug!(connection, status, "store: idempotent call completed");
    Ok(())
}

/// See [`super::Store::abandon_idempotent`].
pub(super) fn abandon(store: &SqliteStore, connection: &str, key: &str) -> Result<(), StoreError> {
    // A complete record is never abandoned: its call did reach the upstream.
    let removed = store.write(|tx| {
        Ok(tx
            .prepare_cached(
                "DELETE FROM idempotency WHERE connection = ?1 AND key = ?2 AND state = ?3",
            )?
            .execute(params![
                connection,
                key,
                IdempotencyState::InProgress.as_str()
            ])?)
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
    let connection = stored.connection;
    let damaged = |what: &str| {
        store.corrupt(format!(
            "an idempotency record of connection `{connection}` {what}; it is unusable until it \
             expires and is purged"
        ))
    };
    let state =
        IdempotencyState::parse(&stored.state).ok_or_else(|| damaged("has an unknown state"))?;
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
    })
}

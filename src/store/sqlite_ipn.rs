//! The IPN events, deliveries and passphrases of [`SqliteStore`] (tables
//! `ipn_events`, `ipn_deliveries`, `ipn_passphrases`). Event fields are
//! sealed like secrets; a passphrase too.

use rusqlite::{Connection, OptionalExtension, Row, params};
use secrecy::{ExposeSecret, SecretString};

use super::crypto;
use super::ipn::{
    Attempt, DeliveryState, DueDelivery, EVENT_STATES, IpnDelivery, IpnEvent, IpnFilter, IpnStored,
    NewIpnEvent,
};
use super::{SqliteStore, StoreError};

/// The most events one list returns.
const MAX_LIST: usize = 1000;

/// The event state as SQL, from its deliveries (see [`IpnEvent::state`]).
const STATE_SQL: &str = "CASE
    WHEN NOT EXISTS (SELECT 1 FROM ipn_deliveries d WHERE d.event_id = e.id) THEN 'stored'
    WHEN EXISTS (SELECT 1 FROM ipn_deliveries d WHERE d.event_id = e.id AND d.state = 'dead') THEN 'dead'
    WHEN EXISTS (SELECT 1 FROM ipn_deliveries d WHERE d.event_id = e.id AND d.state = 'pending') THEN 'pending'
    ELSE 'delivered' END";

/// A pending delivery `d` (of event `e`) that no older pending delivery of
/// the same purchase to the same target holds back.
const HEAD_OF_PURCHASE: &str = "d.state = 'pending'
    AND NOT EXISTS (
        SELECT 1 FROM ipn_deliveries d2 JOIN ipn_events e2 ON e2.id = d2.event_id
        WHERE d2.target = d.target AND d2.state = 'pending'
          AND e2.connection = e.connection AND e2.order_id = e.order_id
          AND e2.id < e.id)";

const EVENT_COLUMNS: &str = "e.id, e.connection, e.event, e.order_id, e.transaction_id, \
                             e.received_at, e.redeliveries, e.fingerprint, e.sealed_fields";

/// A row of `ipn_events`, fields still sealed.
struct StoredEvent {
    event: IpnEvent,
    fingerprint: String,
    sealed: Vec<u8>,
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        event: IpnEvent {
            id: row.get(0)?,
            connection: row.get(1)?,
            event: row.get(2)?,
            order_id: row.get(3)?,
            transaction_id: row.get(4)?,
            received_at_ms: row.get(5)?,
            redeliveries: row.get(6)?,
            fields: None,
            deliveries: Vec::new(),
        },
        fingerprint: row.get(7)?,
        sealed: row.get(8)?,
    })
}

fn deliveries_of(conn: &Connection, event_id: i64) -> rusqlite::Result<Vec<(IpnDelivery, String)>> {
    conn.prepare_cached(
        "SELECT target, state, attempts, next_attempt_at, last_error, delivered_at
         FROM ipn_deliveries WHERE event_id = ?1 ORDER BY target",
    )?
    .query_map(params![event_id], |row| {
        let state: String = row.get(1)?;
        Ok((
            IpnDelivery {
                target: row.get(0)?,
                state: DeliveryState::Pending,
                attempts: row.get(2)?,
                next_attempt_at_ms: row.get(3)?,
                last_error: row.get(4)?,
                delivered_at_ms: row.get(5)?,
            },
            state,
        ))
    })?
    .collect()
}

impl SqliteStore {
    fn with_deliveries(&self, mut event: IpnEvent) -> Result<IpnEvent, StoreError> {
        let rows = self.read(|conn| deliveries_of(conn, event.id))?;
        for (mut delivery, state) in rows {
            delivery.state = DeliveryState::parse(&state)
                .ok_or_else(|| self.corrupt(format!("unknown delivery state `{state}`")))?;
            event.deliveries.push(delivery);
        }
        Ok(event)
    }

    fn open_fields(&self, stored: &StoredEvent) -> Result<Vec<(String, String)>, StoreError> {
        let plain = self
            .sealer()
            .open(
                &crypto::ipn_fields_aad(&stored.event.connection, &stored.fingerprint),
                &stored.sealed,
            )
            .map_err(|_| {
                self.corrupt(format!(
                    "the fields of IPN event {} do not decrypt",
                    stored.event.id
                ))
            })?;
        serde_json::from_slice(&plain).map_err(|_| {
            self.corrupt(format!(
                "the fields of IPN event {} are not readable",
                stored.event.id
            ))
        })
    }
}

/// See [`super::Store::ipn_store`].
pub(super) fn store_event(
    store: &SqliteStore,
    event: &NewIpnEvent,
    targets: &[String],
) -> Result<IpnStored, StoreError> {
    if event.connection.is_empty() || event.fingerprint.is_empty() {
        return Err(StoreError::invalid(
            "an IPN event needs a connection and a fingerprint",
        ));
    }
    let json = serde_json::to_vec(&event.fields)
        .map_err(|e| StoreError::invalid(format!("IPN fields: {e}")))?;
    let sealed = store
        .sealer()
        .seal(
            &crypto::ipn_fields_aad(&event.connection, &event.fingerprint),
            &json,
        )
        .ok_or_else(|| StoreError::invalid("the IPN event is too large to encrypt"))?;
    // One transaction: the event and every delivery exist together, or none.
    let stored = store.write(|tx| {
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM ipn_events WHERE connection = ?1 AND fingerprint = ?2")?
            .query_row(params![event.connection, event.fingerprint], |row| row.get(0))
            .optional()?;
        if let Some(id) = existing {
            tx.prepare_cached("UPDATE ipn_events SET redeliveries = redeliveries + 1 WHERE id = ?1")?
                .execute(params![id])?;
            return Ok(IpnStored::Duplicate(id));
        }
        tx.prepare_cached(
            "INSERT INTO ipn_events
                 (connection, event, order_id, transaction_id, fingerprint, sealed_fields, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event.connection,
            event.event,
            event.order_id,
            event.transaction_id,
            event.fingerprint,
            sealed,
            event.received_at_ms,
        ])?;
        let id = tx.last_insert_rowid();
        add_deliveries(tx, id, targets, event.received_at_ms)?;
        Ok(IpnStored::New(id))
    })?;
    Ok(stored)
}

fn add_deliveries(
    tx: &Connection,
    event_id: i64,
    targets: &[String],
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO ipn_deliveries
             (event_id, target, state, attempts, next_attempt_at, pending_since)
         VALUES (?1, ?2, 'pending', 0, ?3, ?3)",
    )?;
    for target in targets {
        insert.execute(params![event_id, target, now_ms])?;
    }
    Ok(())
}

/// See [`super::Store::ipn_due`]. Per target and purchase only the oldest
/// pending delivery is due, so an app sees a purchase's events in order.
pub(super) fn due(
    store: &SqliteStore,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<DueDelivery>, StoreError> {
    type Row = (StoredEvent, String, u32, i64, i64);
    let rows: Vec<Row> = store.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS}, d.target, d.attempts, d.pending_since, d.generation
             FROM ipn_deliveries d JOIN ipn_events e ON e.id = d.event_id
             WHERE {HEAD_OF_PURCHASE} AND d.next_attempt_at <= ?1
             ORDER BY e.id LIMIT ?2"
        ))?
        .query_map(params![now_ms, limit as i64], |row| {
            Ok((
                event_from_row(row)?,
                row.get(9)?,
                row.get(10)?,
                row.get(11)?,
                row.get(12)?,
            ))
        })?
        .collect()
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for (stored, target, attempts, pending_since_ms, generation) in rows {
        let fields = match store.open_fields(&stored) {
            Ok(fields) => fields,
            Err(e) => {
                // One unreadable row must not stall every delivery: it is
                // dead-lettered with the reason and the rest go on.
                tracing::error!(id = stored.event.id, error = %e, "IPN event cannot be read; dead-lettered");
                attempted(
                    store,
                    stored.event.id,
                    &target,
                    generation,
                    &Attempt::Dead {
                        error: "the stored event cannot be decrypted (was the master key changed?)"
                            .to_owned(),
                    },
                )?;
                continue;
            }
        };
        let mut event = stored.event;
        event.fields = Some(fields);
        out.push(DueDelivery {
            event,
            target,
            attempts,
            pending_since_ms,
            generation,
        });
    }
    Ok(out)
}

/// See [`super::Store::ipn_next_due`].
/// Only deliveries at the head of their purchase count: one held back by
/// an older pending event is not due, whatever its own time says.
pub(super) fn next_due(store: &SqliteStore) -> Result<Option<i64>, StoreError> {
    store.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT MIN(d.next_attempt_at)
             FROM ipn_deliveries d JOIN ipn_events e ON e.id = d.event_id
             WHERE {HEAD_OF_PURCHASE}"
        ))?
        .query_row([], |row| row.get(0))
    })
}

/// See [`super::Store::ipn_attempted`].
/// Every update requires the generation the attempt began with: a replay
/// made meanwhile bumped it, and its reset stands.
pub(super) fn attempted(
    store: &SqliteStore,
    event_id: i64,
    target: &str,
    generation: i64,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    store.write(|tx| {
        match attempt {
            Attempt::Delivered { at_ms } => tx
                .prepare_cached(
                    "UPDATE ipn_deliveries SET state = 'delivered', attempts = attempts + 1,
                         delivered_at = ?4, last_error = NULL
                     WHERE event_id = ?1 AND target = ?2 AND generation = ?3 AND state = 'pending'",
                )?
                .execute(params![event_id, target, generation, at_ms])?,
            Attempt::Retry { error, next_at_ms } => tx
                .prepare_cached(
                    "UPDATE ipn_deliveries SET attempts = attempts + 1, last_error = ?4,
                         next_attempt_at = ?5
                     WHERE event_id = ?1 AND target = ?2 AND generation = ?3 AND state = 'pending'",
                )?
                .execute(params![event_id, target, generation, error, next_at_ms])?,
            Attempt::Dead { error } => tx
                .prepare_cached(
                    "UPDATE ipn_deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?4
                     WHERE event_id = ?1 AND target = ?2 AND generation = ?3 AND state = 'pending'",
                )?
                .execute(params![event_id, target, generation, error])?,
        };
        Ok(())
    })
}

/// See [`super::Store::ipn_adopt_targets`].
pub(super) fn adopt_targets(
    store: &SqliteStore,
    connection: &str,
    targets: &[String],
    now_ms: i64,
) -> Result<usize, StoreError> {
    if targets.is_empty() {
        return Ok(0);
    }
    store.write(|tx| {
        let ids: Vec<i64> = tx
            .prepare_cached(
                "SELECT e.id FROM ipn_events e
                 WHERE e.connection = ?1
                   AND NOT EXISTS (SELECT 1 FROM ipn_deliveries d WHERE d.event_id = e.id)
                 ORDER BY e.id",
            )?
            .query_map(params![connection], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in &ids {
            add_deliveries(tx, *id, targets, now_ms)?;
        }
        Ok(ids.len())
    })
}

/// See [`super::Store::ipn_events`].
pub(super) fn list(store: &SqliteStore, filter: &IpnFilter) -> Result<Vec<IpnEvent>, StoreError> {
    if let Some(state) = &filter.state
        && !EVENT_STATES.contains(&state.as_str())
    {
        return Err(StoreError::invalid(format!(
            "`{state}` is not an event state; use one of {}",
            EVENT_STATES.join(", ")
        )));
    }
    let limit = filter.limit.unwrap_or(100).clamp(1, MAX_LIST) as i64;
    let rows = store.read(|conn| {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM ipn_events e
             WHERE (?1 IS NULL OR e.connection = ?1)
               AND (?2 IS NULL OR e.event = ?2)
               AND (?3 IS NULL OR e.order_id = ?3)
               AND (?4 IS NULL OR ({STATE_SQL}) = ?4)
             ORDER BY e.id DESC LIMIT ?5"
        );
        conn.prepare_cached(&sql)?
            .query_map(
                params![
                    filter.connection,
                    filter.event,
                    filter.order_id,
                    filter.state,
                    limit
                ],
                event_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for stored in rows {
        out.push(store.with_deliveries(stored.event)?);
    }
    Ok(out)
}

/// See [`super::Store::ipn_event`].
pub(super) fn get(store: &SqliteStore, id: i64) -> Result<Option<IpnEvent>, StoreError> {
    let stored = store.read(|conn| {
        conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM ipn_events e WHERE e.id = ?1"
        ))?
        .query_row(params![id], event_from_row)
        .optional()
    })?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let fields = store.open_fields(&stored)?;
    let mut event = store.with_deliveries(stored.event)?;
    event.fields = Some(fields);
    Ok(Some(event))
}

/// See [`super::Store::ipn_replay`].
pub(super) fn replay(
    store: &SqliteStore,
    id: i64,
    targets: &[String],
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    store.write(|tx| {
        let exists: Option<i64> = tx
            .prepare_cached("SELECT id FROM ipn_events WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        // Targets configured since the event arrived get it too.
        add_deliveries(tx, id, targets, now_ms)?;
        let n = tx
            .prepare_cached(
                "UPDATE ipn_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?2,
                     last_error = NULL, delivered_at = NULL, pending_since = ?2,
                     generation = generation + 1
                 WHERE event_id = ?1",
            )?
            .execute(params![id, now_ms])?;
        Ok(Some(n))
    })
}

/// See [`super::Store::save_ipn_passphrase`].
pub(super) fn save_passphrase(
    store: &SqliteStore,
    connection: &str,
    passphrase: &SecretString,
    now: i64,
) -> Result<(), StoreError> {
    if connection.is_empty() {
        return Err(StoreError::invalid("a connection name is empty"));
    }
    let blob = store
        .sealer()
        .seal(
            &crypto::secret_aad(connection, IPN_PASSPHRASE),
            passphrase.expose_secret().as_bytes(),
        )
        .ok_or_else(|| StoreError::invalid("the passphrase is too long to encrypt"))?;
    store.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO ipn_passphrases (connection, sealed, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (connection) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )?
        .execute(params![connection, blob, now])?;
        Ok(())
    })
}

/// See [`super::Store::ipn_passphrase`].
pub(super) fn passphrase(
    store: &SqliteStore,
    connection: &str,
) -> Result<Option<SecretString>, StoreError> {
    let blob: Option<Vec<u8>> = store.read(|conn| {
        conn.prepare_cached("SELECT sealed FROM ipn_passphrases WHERE connection = ?1")?
            .query_row(params![connection], |row| row.get(0))
            .optional()
    })?;
    let Some(blob) = blob else {
        return Ok(None);
    };
    let plain = store
        .sealer()
        .open(&crypto::secret_aad(connection, IPN_PASSPHRASE), &blob)
        .map_err(|_| {
            store.corrupt(format!(
                "the IPN passphrase of `{connection}` does not decrypt"
            ))
        })?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| store.corrupt(format!("the IPN passphrase of `{connection}` is not text")))?;
    Ok(Some(SecretString::from(text)))
}

/// The secret name the passphrase is sealed under (its associated data).
const IPN_PASSPHRASE: &str = "ipn_passphrase";

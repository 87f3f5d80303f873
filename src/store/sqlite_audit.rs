//! The audit log of [`SqliteStore`] (table `audit_log`).
//!
//! The `lease_until` column is set by [`begin`] and cleared by [`complete`];
//! [`settle_expired`] leaves it, so an entry with the outcome
//! `outcome_unknown` and a lease is one settled for a lapsed lease, which a
//! late completion by its still-living caller may still correct.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};

use super::audit::{
    AUDIT_IN_PROGRESS, AUDIT_OUTCOME_UNKNOWN, DEFAULT_AUDIT_LIMIT, check_begun_entry, check_entry,
    check_outcome,
};
use super::{AuditEntry, AuditFilter, SqliteStore, StoreError};

const COLUMNS: &str = "id, at, connection, token, function, effect, request_id, outcome, \
                       params_digest";

/// See [`super::Store::append_audit`].
pub(super) fn append(store: &SqliteStore, entry: &AuditEntry) -> Result<i64, StoreError> {
    check_entry(entry)?;
    store.write(|tx| insert(tx, entry, &entry.outcome, None))
}

/// See [`super::Store::begin_audit`].
pub(super) fn begin(
    store: &SqliteStore,
    entry: &AuditEntry,
    lease_until: i64,
) -> Result<i64, StoreError> {
    check_begun_entry(entry)?;
    store.write(|tx| insert(tx, entry, AUDIT_IN_PROGRESS, Some(lease_until)))
}

fn insert(
    tx: &Transaction<'_>,
    entry: &AuditEntry,
    outcome: &str,
    lease_until: Option<i64>,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit_log
             (at, connection, token, function, effect, request_id, outcome, params_digest,
              lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        entry.at,
        entry.connection,
        entry.token,
        entry.function,
        entry.effect,
        entry.request_id,
        outcome,
        entry.params_digest,
        lease_until,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// See [`super::Store::complete_audit`].
pub(super) fn complete(store: &SqliteStore, id: i64, outcome: &str) -> Result<(), StoreError> {
    check_outcome(outcome)?;
    let was = store.write(|tx| {
        // Begun and not completed: in progress, or settled for a lapsed lease
        // (see the module docs); an entry appended whole has no lease.
        let was: Option<String> = tx
            .prepare_cached(
                "SELECT outcome FROM audit_log
                 WHERE id = ?1 AND lease_until IS NOT NULL AND outcome IN (?2, ?3)",
            )?
            .query_row(
                params![id, AUDIT_IN_PROGRESS, AUDIT_OUTCOME_UNKNOWN],
                |row| row.get(0),
            )
            .optional()?;
        let Some(was) = was else {
            return Err(StoreError::invalid(format!(
                "audit entry {id} is not in progress (it was never begun, or is already complete)"
            )));
        };
        tx.prepare_cached("UPDATE audit_log SET outcome = ?2, lease_until = NULL WHERE id = ?1")?
            .execute(params![id, outcome])?;
        Ok(was)
    })?;
    if was == AUDIT_OUTCOME_UNKNOWN {
        tracing::info!(
            id,
            outcome,
            "store: an audit entry settled as outcome_unknown got its real outcome late"
        );
    }
    Ok(())
}

/// See [`super::Store::extend_audit_lease`].
pub(super) fn extend_lease(
    store: &SqliteStore,
    id: i64,
    lease_until: i64,
) -> Result<(), StoreError> {
    store.write(|tx| {
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM audit_log WHERE id = ?1)")?
            .query_row([id], |row| row.get(0))?;
        if !exists {
            return Err(StoreError::invalid(format!("there is no audit entry {id}")));
        }
        // A complete or settled entry is left alone: its call has ended, or
        // its outcome is already unknown and a late heartbeat changes nothing.
        tx.prepare_cached(
            "UPDATE audit_log SET lease_until = MAX(lease_until, ?2)
             WHERE id = ?1 AND outcome = ?3",
        )?
        .execute(params![id, lease_until, AUDIT_IN_PROGRESS])?;
        Ok(())
    })
}

/// Gives the entries with outcome ?3 whose lease lapsed at ?1 the outcome ?2.
pub(super) const SETTLE_SQL: &str =
    "UPDATE audit_log SET outcome = ?2 WHERE outcome = ?3 AND lease_until <= ?1";

/// The audit half of [`super::Store::settle_expired`], inside its
/// transaction: how many entries became `outcome_unknown`.
pub(super) fn settle_expired(tx: &Transaction<'_>, now: i64) -> Result<usize, StoreError> {
    // `lease_until` stays: it marks the entry as settled, not completed.
    Ok(tx.prepare_cached(SETTLE_SQL)?.execute(params![
        now,
        AUDIT_OUTCOME_UNKNOWN,
        AUDIT_IN_PROGRESS
    ])?)
}

/// See [`super::Store::audit`].
pub(super) fn query(
    store: &SqliteStore,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let (sql, values) = select_sql(filter);
    store.read(|conn| {
        conn.prepare_cached(&sql)?
            .query_map(params_from_iter(values), entry_from_row)?
            .collect()
    })
}

/// The query of `filter` and its parameters. Only the filters set become
/// conditions (rather than `?1 IS NULL OR …`), so SQLite can pick the index
/// that serves them; every variant sorts by an index, not a temporary B-tree.
pub(super) fn select_sql(filter: &AuditFilter) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let mut condition = |column: &str, op: &str, value: Value| {
        values.push(value);
        conditions.push(format!("{column} {op} ?{}", values.len()));
    };
    if let Some(connection) = &filter.connection {
        condition("connection", "=", Value::Text(connection.clone()));
    }
    if let Some(function) = &filter.function {
        condition("function", "=", Value::Text(function.clone()));
    }
    if let Some(since) = filter.since {
        condition("at", ">=", Value::Integer(since));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let limit = filter.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(
        " ORDER BY at DESC, id DESC LIMIT ?{}",
        values.len()
    ));
    (sql, values)
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        connection: row.get(2)?,
        token: row.get(3)?,
        function: row.get(4)?,
        effect: row.get(5)?,
        request_id: row.get(6)?,
        outcome: row.get(7)?,
        params_digest: row.get(8)?,
    })
}

//! The audit log of [`SqliteStore`] (table `audit_log`).

use rusqlite::types::Value;
use rusqlite::{Row, params, params_from_iter};

use super::audit::{DEFAULT_AUDIT_LIMIT, check_entry};
use super::{AuditEntry, AuditFilter, SqliteStore, StoreError};

const COLUMNS: &str = "id, at, connection, token, function, effect, request_id, outcome, \
                       params_digest";

/// See [`super::Store::append_audit`].
pub(super) fn append(store: &SqliteStore, entry: &AuditEntry) -> Result<i64, StoreError> {
    check_entry(entry)?;
    store.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO audit_log
                 (at, connection, token, function, effect, request_id, outcome, params_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            entry.at,
            entry.connection,
            entry.token,
            entry.function,
            entry.effect,
            entry.request_id,
            entry.outcome,
            entry.params_digest,
        ])?;
        Ok(tx.last_insert_rowid())
    })
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

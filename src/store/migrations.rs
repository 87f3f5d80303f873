//! Numbered schema migrations, tracked with `PRAGMA user_version`.
//!
//! To change the schema, append a [`Migration`] with the next number; never
//! edit or reorder one that has shipped. Each runs in its own `BEGIN
//! IMMEDIATE` transaction together with the bump of `user_version`, so a
//! crash leaves the database at the previous version, and two processes
//! opening the same database at once apply each migration once.
//!
//! A migration's SQL must not contain `BEGIN`/`COMMIT`, and cannot switch
//! `PRAGMA foreign_keys` (a no-op inside a transaction): one that rebuilds a
//! referenced table uses `PRAGMA defer_foreign_keys = ON` instead.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// One schema step: `sql` takes the database from `version - 1` to `version`.
#[derive(Debug)]
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) description: &'static str,
    pub(super) sql: &'static str,
}

/// All migrations, in order; `MIGRATIONS[i].version == i + 1`.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "secrets and connection state",
        sql: r"
        -- Store-wide values; `key_check` holds a sealed constant that tells a
        -- wrong master key at open.
        CREATE TABLE store_meta (
            key   TEXT PRIMARY KEY NOT NULL,
            value BLOB NOT NULL
        ) STRICT;

        -- One row per connection: where its credential comes from and how it
        -- stands. Nothing here is secret.
        CREATE TABLE connections (
            connection      TEXT PRIMARY KEY NOT NULL CHECK (connection <> ''),
            source_kind     TEXT NOT NULL,
            key_id          TEXT,
            expires_at      INTEGER,
            last_renewal_at INTEGER,
            last_error      TEXT,
            needs_attention INTEGER NOT NULL DEFAULT 0 CHECK (needs_attention IN (0, 1)),
            updated_at      INTEGER NOT NULL
        ) STRICT;

        -- Sealed secrets: version || nonce || ciphertext+tag, bound to
        -- (connection, name) by the associated data. The foreign key is
        -- deferred so a save can write secrets before the state row.
        CREATE TABLE secrets (
            connection TEXT NOT NULL
                REFERENCES connections (connection) ON DELETE CASCADE
                DEFERRABLE INITIALLY DEFERRED,
            name       TEXT NOT NULL CHECK (name <> ''),
            sealed     BLOB NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (connection, name)
        ) STRICT;
    ",
    },
    Migration {
        version: 2,
        description: "idempotency records and audit log",
        sql: r"
        -- One row per (connection, Idempotency-Key): the request's fingerprint
        -- and, once the call is complete, the reply. The body is sealed like a
        -- secret (replies may hold personal data); status and content type are
        -- plain but bound to the body by its associated data. The CHECK keeps
        -- a record either waiting (no reply) or complete (a whole reply).
        CREATE TABLE idempotency (
            connection   TEXT NOT NULL CHECK (connection <> ''),
            key          TEXT NOT NULL CHECK (key <> ''),
            fingerprint  TEXT NOT NULL CHECK (fingerprint <> ''),
            state        TEXT NOT NULL CHECK (state IN ('in_progress', 'complete')),
            status       INTEGER CHECK (status BETWEEN 100 AND 999),
            content_type TEXT,
            sealed_body  BLOB,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER NOT NULL,
            PRIMARY KEY (connection, key),
            CHECK (CASE state
                WHEN 'complete' THEN status IS NOT NULL AND sealed_body IS NOT NULL
                ELSE status IS NULL AND content_type IS NULL AND sealed_body IS NULL
            END)
        ) STRICT;

        -- The purge deletes by expiry.
        CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);

        -- Write and money calls, append-only. Names and digests only: never a
        -- token or a parameter value. AUTOINCREMENT so an id is never reused,
        -- even if the newest entries are ever deleted.
        CREATE TABLE audit_log (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            at            INTEGER NOT NULL,
            connection    TEXT NOT NULL CHECK (connection <> ''),
            token         TEXT NOT NULL CHECK (token <> ''),
            function      TEXT NOT NULL CHECK (function <> ''),
            effect        TEXT NOT NULL,
            request_id    TEXT NOT NULL,
            outcome       TEXT NOT NULL CHECK (outcome <> ''),
            params_digest TEXT NOT NULL
        ) STRICT;

        -- Newest first, unfiltered or by connection or function (each index
        -- ends in the rowid, so it also gives the id order within a second).
        CREATE INDEX audit_log_by_time ON audit_log (at);
        CREATE INDEX audit_log_by_connection ON audit_log (connection, at);
        CREATE INDEX audit_log_by_function ON audit_log (function, at);
    ",
    },
    Migration {
        version: 3,
        description: "IPN events, their deliveries and passphrases",
        sql: r"
        -- IPN passphrases set with `ds24-proxy ipn setup`, sealed like secrets.
        CREATE TABLE ipn_passphrases (
            connection TEXT PRIMARY KEY NOT NULL CHECK (connection <> ''),
            sealed     BLOB NOT NULL,
            updated_at INTEGER NOT NULL
        ) STRICT;

        -- Verified IPN events, one row per distinct event: a redelivery (same
        -- fields, same signature) has the same fingerprint and only counts.
        -- The fields hold buyers' personal data and are sealed; event type
        -- and ids are plain so that events can be found. Times in unix ms.
        CREATE TABLE ipn_events (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            connection     TEXT NOT NULL CHECK (connection <> ''),
            event          TEXT NOT NULL,
            order_id       TEXT,
            transaction_id TEXT,
            fingerprint    TEXT NOT NULL,
            sealed_fields  BLOB NOT NULL,
            received_at    INTEGER NOT NULL,
            redeliveries   INTEGER NOT NULL DEFAULT 0,
            UNIQUE (connection, fingerprint)
        ) STRICT;
        CREATE INDEX ipn_events_by_order ON ipn_events (connection, order_id, id);

        -- One row per event and target URL: the relay's work list.
        CREATE TABLE ipn_deliveries (
            event_id        INTEGER NOT NULL REFERENCES ipn_events (id) ON DELETE CASCADE,
            target          TEXT NOT NULL CHECK (target <> ''),
            state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            delivered_at    INTEGER,
            -- Since when it has been pending (arrival or last replay): its age.
            pending_since   INTEGER NOT NULL,
            -- Bumped by a replay: a result of an attempt begun before it is
            -- not recorded over it.
            generation      INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (event_id, target)
        ) STRICT;
        CREATE INDEX ipn_deliveries_due ON ipn_deliveries (state, next_attempt_at);
    ",
    },
    Migration {
        version: 4,
        description: "phases and leases of calls in progress",
        sql: r"
        -- A record in progress is 'claimed' (nothing sent yet) or 'sending'
        -- (bytes may have reached Digistore24), held under a lease
        -- (`lease_until`, unix seconds) so that one whose process died is
        -- settled when the lease lapses, not blocked for its whole TTL. The
        -- CHECK on `state` names the old values, so the table is rebuilt
        -- (nothing references it; its sealed bodies' associated data does
        -- not include the state, so they still open).
        CREATE TABLE idempotency_v4 (
            connection   TEXT NOT NULL CHECK (connection <> ''),
            key          TEXT NOT NULL CHECK (key <> ''),
            fingerprint  TEXT NOT NULL CHECK (fingerprint <> ''),
            state        TEXT NOT NULL CHECK (state IN ('claimed', 'sending', 'complete')),
            status       INTEGER CHECK (status BETWEEN 100 AND 999),
            content_type TEXT,
            sealed_body  BLOB,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER NOT NULL,
            lease_until  INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (connection, key),
            CHECK (CASE state
                WHEN 'complete' THEN status IS NOT NULL AND sealed_body IS NOT NULL
                ELSE status IS NULL AND content_type IS NULL AND sealed_body IS NULL
            END)
        ) STRICT;

        -- An old 'in_progress' record may or may not have been sent (the old
        -- schema did not say): it becomes 'sending' with a lapsed lease, so it
        -- is settled as outcome_unknown, never sent a second time.
        INSERT INTO idempotency_v4 (connection, key, fingerprint, state, status, content_type,
                                    sealed_body, created_at, expires_at, lease_until)
        SELECT connection, key, fingerprint,
               CASE state WHEN 'complete' THEN 'complete' ELSE 'sending' END,
               status, content_type, sealed_body, created_at, expires_at, 0
        FROM idempotency;

        DROP TABLE idempotency;
        ALTER TABLE idempotency_v4 RENAME TO idempotency;

        -- The purge deletes by expiry; settling finds lapsed leases by phase.
        -- (Not a partial index: the settle binds the state as a parameter,
        -- and SQLite cannot prove that `state = ?` implies an index's WHERE.)
        CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);
        CREATE INDEX idempotency_by_lease ON idempotency (state, lease_until);

        -- An audit row written before its call leaves has the outcome
        -- 'in_progress' and a lease; NULL for rows appended whole, and for
        -- rows completed since (see sqlite_audit.rs). Partial, so the index
        -- holds only the few rows with a lease, not the whole log; SQLite
        -- uses it for `lease_until <= ?`, which implies IS NOT NULL.
        ALTER TABLE audit_log ADD COLUMN lease_until INTEGER;
        CREATE INDEX audit_log_by_lease ON audit_log (lease_until)
            WHERE lease_until IS NOT NULL;
    ",
    },
    Migration {
        version: 5,
        description: "the base URL a connection was made against",
        sql: r"
        -- `connect` records where it verified the key (the sandbox's URL, or
        -- Digistore24's); a stored connection is then used against that URL,
        -- not the configured default. NULL for rows written before.
        ALTER TABLE connections ADD COLUMN base_url TEXT;
    ",
    },
];

/// The schema version this build writes.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database to [`latest_version`]; refuses a newer one.
pub(super) fn migrate(conn: &mut Connection, db_path: &Path) -> Result<(), StoreError> {
    let latest = latest_version();
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current == latest {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if current > latest {
            return Err(StoreError::UnsupportedSchema {
                path: db_path.to_owned(),
                found: current,
                supported: latest,
            });
        }
        let Some(next) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            if current < 0 {
                return Err(StoreError::Corrupt {
                    path: db_path.to_owned(),
                    detail: format!("its schema version is {current}"),
                });
            }
            return Ok(());
        };
        tx.execute_batch(next.sql)?;
        tx.pragma_update(None, "user_version", next.version)?;
        tx.commit()?;
        tracing::info!(
            path = %db_path.display(),
            version = next.version,
            migration = next.description,
            "store schema migrated"
        );
    }
}

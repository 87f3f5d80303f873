//! Tests of the phases and leases of calls in progress: take-over of a lapsed
//! claim, orphans of a lapsed send, heartbeats, settling after a crash,
//! races on a lapsed lease, and the migration of records from schema 3.

use std::path::Path;
use std::sync::{Arc, Barrier};

use super::sqlite_audit::SETTLE_SQL;
use super::sqlite_idempotency::{SETTLE_CLAIMED_SQL, SETTLE_SENDING_SQL};
use super::tests::{KEY_A, data_dir, key};
use super::tests_idempotency::{FP_A, FP_B, TTL};
use super::*;

/// A lease shorter than any test's steps, so that its lapse is explicit.
const LEASE: i64 = 30;
const UNKNOWN_BODY: &[u8] = br#"{"error":{"kind":"outcome_unknown"}}"#;

fn open(data: &Path) -> SqliteStore {
    SqliteStore::open(data, None).expect("open")
}

fn record(store: &SqliteStore, connection: &str, key: &str) -> IdempotencyRecord {
    store
        .idempotent(connection, key)
        .expect("get")
        .expect("a record")
}

/// Begins `key` at `now` (must start) and, if `sending`, marks it sending
/// with a lease to `lease_until`; otherwise its lease is `now + LEASE`.
fn begun(store: &SqliteStore, key: &str, now: i64, sending: Option<i64>) {
    assert_eq!(
        store
            .begin_idempotent("main", key, FP_A, now, TTL, LEASE)
            .expect("begin"),
        Begin::Started,
        "{key}"
    );
    if let Some(lease_until) = sending {
        store
            .mark_idempotent_sending("main", key, now, lease_until)
            .expect("mark sending");
    }
}

fn audit_entry(at: i64, request_id: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at,
        connection: "main".into(),
        token: "token-1".into(),
        function: "refundPurchase".into(),
        effect: "money".into(),
        request_id: request_id.into(),
        outcome: String::new(),
        params_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
    }
}

fn outcome_of(store: &SqliteStore, id: i64) -> String {
    store
        .audit(&AuditFilter {
            limit: Some(1_000),
            ..AuditFilter::default()
        })
        .expect("audit")
        .into_iter()
        .find(|e| e.id == id)
        .expect("the entry")
        .outcome
}

#[test]
fn a_live_lease_gives_in_progress_in_either_phase() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    begun(&store, "claimed", 1_000, None);
    begun(&store, "sending", 1_000, Some(1_100));
    for (key, at, state, lease_until) in [
        ("claimed", 1_029, IdempotencyState::Claimed, 1_030),
        ("sending", 1_099, IdempotencyState::Sending, 1_100),
    ] {
        let retry = store
            .begin_idempotent("main", key, FP_A, at, TTL, LEASE)
            .expect("retry");
        let Begin::InProgress(r) = retry else {
            panic!("{key}: {retry:?}");
        };
        assert_eq!(
            (r.state, r.lease_until, r.created_at),
            (state, lease_until, 1_000)
        );
        // Another request under a live lease is a mismatch, as ever.
        assert!(matches!(
            store
                .begin_idempotent("main", key, FP_B, at, TTL, LEASE)
                .expect("other"),
            Begin::Mismatch(_)
        ));
        // Nothing was changed by either look.
        assert_eq!(record(&store, "main", key), r);
    }
}

#[test]
fn a_claimed_record_whose_lease_lapsed_is_taken_over_and_sent_at_most_once() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    begun(&store, "key-1", 1_000, None);
    // At the lease's end the claim lapses: its caller never sent anything,
    // so the next begin starts the call afresh (new TTL, new lease).
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_030, TTL, 40)
            .expect("take over"),
        Begin::Started
    );
    let taken = record(&store, "main", "key-1");
    assert_eq!(
        (
            taken.state,
            taken.created_at,
            taken.expires_at,
            taken.lease_until
        ),
        (IdempotencyState::Claimed, 1_030, 1_030 + TTL, 1_070)
    );
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_031, TTL, LEASE)
            .expect("the taker holds it"),
        Begin::InProgress(_)
    ));
    // Should the first caller still be alive, only one of the two may send:
    // the first to mark the record sending.
    store
        .mark_idempotent_sending("main", "key-1", 1_032, 1_100)
        .expect("first mark");
    let err = store
        .mark_idempotent_sending("main", "key-1", 1_033, 1_100)
        .expect_err("second mark");
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("must not be sent"), "{err}");

    // A lapsed claim with another fingerprint is a mismatch and is kept.
    begun(&store, "key-2", 1_000, None);
    let other = store
        .begin_idempotent("main", "key-2", FP_B, 1_031, TTL, LEASE)
        .expect("other request");
    assert!(matches!(other, Begin::Mismatch(_)), "{other:?}");
    let kept = record(&store, "main", "key-2");
    assert_eq!(
        (kept.fingerprint.as_str(), kept.created_at, kept.lease_until),
        (FP_A, 1_000, 1_030)
    );
}

#[test]
fn a_sending_record_whose_lease_lapsed_is_orphaned_and_never_started_again() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    begun(&store, "key-1", 1_000, Some(1_040));
    let orphaned = store
        .begin_idempotent("main", "key-1", FP_A, 1_040, TTL, LEASE)
        .expect("lapsed");
    let Begin::Orphaned(r) = orphaned else {
        panic!("{orphaned:?}");
    };
    // The lease passed to this caller; the record is otherwise as it was.
    assert_eq!(
        (
            r.state,
            r.created_at,
            r.expires_at,
            r.lease_until,
            r.body.clone()
        ),
        (IdempotencyState::Sending, 1_000, 1_000 + TTL, 1_070, None)
    );
    assert_eq!(record(&store, "main", "key-1"), r);
    // Meanwhile a concurrent repeat waits: nobody else settles it too.
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_041, TTL, LEASE)
            .expect("concurrent"),
        Begin::InProgress(_)
    ));
    store
        .complete_idempotent("main", "key-1", 502, Some("application/json"), UNKNOWN_BODY)
        .expect("settle the orphan");
    let done = store
        .begin_idempotent("main", "key-1", FP_A, 1_200, TTL, LEASE)
        .expect("after");
    let Begin::Done(r) = done else {
        panic!("{done:?}");
    };
    assert_eq!(
        (r.status, r.body.as_deref()),
        (Some(502), Some(UNKNOWN_BODY))
    );

    // If the orphan's taker dies too, the next begin after its lease gets it.
    begun(&store, "key-2", 1_000, Some(1_040));
    assert!(matches!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_040, TTL, LEASE)
            .expect("first orphan"),
        Begin::Orphaned(_)
    ));
    assert!(matches!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_069, TTL, LEASE)
            .expect("taker alive"),
        Begin::InProgress(_)
    ));
    assert!(matches!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_070, TTL, LEASE)
            .expect("taker died"),
        Begin::Orphaned(_)
    ));
}

#[test]
fn extending_a_lease_keeps_a_call_live_past_its_first_lease() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    begun(&store, "key-1", 1_000, None);
    store
        .extend_idempotent_lease("main", "key-1", 1_060)
        .expect("heartbeat");
    // Past the first lease (1030) the claim is still held, so neither a
    // begin nor a settle frees it.
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_045, TTL, LEASE)
            .expect("begin"),
        Begin::InProgress(_)
    ));
    assert_eq!(
        store
            .settle_expired(1_045, 502, "application/json", UNKNOWN_BODY)
            .expect("settle"),
        Settled::default()
    );
    // A late heartbeat with an earlier time does not shorten the lease.
    store
        .extend_idempotent_lease("main", "key-1", 1_050)
        .expect("late heartbeat");
    assert_eq!(record(&store, "main", "key-1").lease_until, 1_060);

    // The same holds once sending.
    store
        .mark_idempotent_sending("main", "key-1", 1_050, 1_080)
        .expect("mark");
    store
        .extend_idempotent_lease("main", "key-1", 1_110)
        .expect("heartbeat");
    let Begin::InProgress(r) = store
        .begin_idempotent("main", "key-1", FP_A, 1_100, TTL, LEASE)
        .expect("begin")
    else {
        panic!("expected InProgress");
    };
    assert_eq!((r.state, r.lease_until), (IdempotencyState::Sending, 1_110));

    // Complete: a heartbeat racing the end is harmless and changes nothing.
    store
        .complete_idempotent("main", "key-1", 200, None, b"ok")
        .expect("complete");
    let complete = record(&store, "main", "key-1");
    store
        .extend_idempotent_lease("main", "key-1", 5_000)
        .expect("after completion");
    assert_eq!(record(&store, "main", "key-1"), complete);

    // No record at all: the caller lost it (abandoned, or freed).
    for key in ["K7-never", "K7-abandoned"] {
        if key == "K7-abandoned" {
            begun(&store, key, 1_000, None);
            store.abandon_idempotent("main", key).expect("abandon");
        }
        let err = store
            .extend_idempotent_lease("main", key, 2_000)
            .expect_err("no record");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
        assert!(!err.to_string().contains(key), "quotes no key: {err}");
    }
}

#[test]
fn marking_sending_needs_an_unexpired_claimed_record() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    let refused = |key: &str, now: i64, lease_until: i64| {
        let err = store
            .mark_idempotent_sending("main", key, now, lease_until)
            .expect_err(key);
        assert!(
            matches!(err, StoreError::InvalidInput { .. }),
            "{key}: {err:?}"
        );
        assert!(!err.to_string().contains(key), "quotes no key: {err}");
    };
    refused("K7-never-begun", 1_000, 1_100);

    begun(&store, "K7-complete", 1_000, None);
    store
        .complete_idempotent("main", "K7-complete", 200, None, b"ok")
        .expect("complete");
    refused("K7-complete", 1_001, 1_100);

    begun(&store, "K7-abandoned", 1_000, None);
    store
        .abandon_idempotent("main", "K7-abandoned")
        .expect("abandon");
    refused("K7-abandoned", 1_001, 1_100);

    begun(&store, "K7-sending", 1_000, Some(1_100));
    refused("K7-sending", 1_001, 1_200);

    begun(&store, "K7-claimed", 1_000, None);
    // A lease that does not run past now, and a record past its TTL.
    refused("K7-claimed", 1_001, 1_001);
    refused("K7-claimed", 1_000 + TTL, 1_000 + TTL + 60);
    assert_eq!(
        record(&store, "main", "K7-claimed").state,
        IdempotencyState::Claimed
    );

    // A claim whose lease lapsed but that nobody took over is still its
    // caller's to send.
    store
        .mark_idempotent_sending("main", "K7-claimed", 1_031, 1_090)
        .expect("mark");
    let r = record(&store, "main", "K7-claimed");
    assert_eq!((r.state, r.lease_until), (IdempotencyState::Sending, 1_090));
    // And a zero lease is refused at begin.
    let err = store
        .begin_idempotent("main", "zero", FP_A, 1_000, TTL, 0)
        .expect_err("zero lease");
    assert!(
        err.to_string().contains("positive number of seconds"),
        "{err}"
    );
}

#[test]
fn settling_frees_lapsed_claims_answers_lapsed_sends_and_leaves_live_calls_alone() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    begun(&store, "claimed-lapsed", 1_000, None); // lease 1030
    begun(&store, "claimed-live", 1_000, None);
    store
        .extend_idempotent_lease("main", "claimed-live", 2_000)
        .expect("heartbeat");
    begun(&store, "sending-lapsed", 1_000, Some(1_040));
    begun(&store, "sending-live", 1_000, Some(2_000));
    begun(&store, "complete", 1_000, None);
    store
        .complete_idempotent("main", "complete", 201, Some("text/plain"), b"kept")
        .expect("complete");
    assert_eq!(
        store
            .begin_idempotent("shop2", "sending-lapsed", FP_B, 1_000, TTL, LEASE)
            .expect("begin"),
        Begin::Started
    );
    store
        .mark_idempotent_sending("shop2", "sending-lapsed", 1_000, 1_050)
        .expect("mark");
    // Past its TTL: left to the purge, not counted.
    assert_eq!(
        store
            .begin_idempotent("main", "expired", FP_A, 1_000, 50, LEASE)
            .expect("begin"),
        Begin::Started
    );
    let audit_lapsed = store
        .begin_audit(&audit_entry(1_000, "req-lapsed"), 1_030)
        .expect("begin audit");
    let audit_live = store
        .begin_audit(&audit_entry(1_000, "req-live"), 2_000)
        .expect("begin audit");
    let audit_whole = store
        .append_audit(&AuditEntry {
            outcome: "200".into(),
            ..audit_entry(1_000, "req-whole")
        })
        .expect("append");
    let live_before: Vec<_> = ["claimed-live", "sending-live", "complete"]
        .iter()
        .map(|key| record(&store, "main", key))
        .collect();

    // A bad status is refused before anything changes.
    let err = store
        .settle_expired(1_100, 42, "application/json", UNKNOWN_BODY)
        .expect_err("bad status");
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    assert!(
        store
            .idempotent("main", "claimed-lapsed")
            .expect("get")
            .is_some()
    );

    assert_eq!(
        store
            .settle_expired(1_100, 502, "application/json", UNKNOWN_BODY)
            .expect("settle"),
        Settled {
            freed: 1,
            unknown: 2,
            audits: 1
        }
    );
    assert_eq!(
        store.idempotent("main", "claimed-lapsed").expect("get"),
        None
    );
    for (connection, key, fingerprint) in [
        ("main", "sending-lapsed", FP_A),
        ("shop2", "sending-lapsed", FP_B),
    ] {
        let r = record(&store, connection, key);
        assert_eq!(
            (
                r.state,
                r.status,
                r.content_type.as_deref(),
                r.body.as_deref()
            ),
            (
                IdempotencyState::Complete,
                Some(502),
                Some("application/json"),
                Some(UNKNOWN_BODY)
            ),
            "{connection}/{key}"
        );
        // A repeat is answered that, never sent.
        assert!(matches!(
            store
                .begin_idempotent(connection, key, fingerprint, 1_101, TTL, LEASE)
                .expect("repeat"),
            Begin::Done(_)
        ));
    }
    let live_after: Vec<_> = ["claimed-live", "sending-live", "complete"]
        .iter()
        .map(|key| record(&store, "main", key))
        .collect();
    assert_eq!(live_after, live_before);
    assert!(store.idempotent("main", "expired").expect("get").is_some());
    assert_eq!(
        (
            outcome_of(&store, audit_lapsed),
            outcome_of(&store, audit_live),
            outcome_of(&store, audit_whole)
        ),
        (
            AUDIT_OUTCOME_UNKNOWN.to_owned(),
            AUDIT_IN_PROGRESS.to_owned(),
            "200".to_owned()
        )
    );
    // The freed key may be sent again.
    assert_eq!(
        store
            .begin_idempotent("main", "claimed-lapsed", FP_A, 1_101, TTL, LEASE)
            .expect("again"),
        Begin::Started
    );
    // Settling again finds nothing more.
    assert_eq!(
        store
            .settle_expired(1_100, 502, "application/json", UNKNOWN_BODY)
            .expect("settle again"),
        Settled::default()
    );
}

#[test]
fn racing_begins_on_a_lapsed_lease_settle_it_exactly_once() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 10;
    let (_tmp, data) = data_dir();
    // Half the threads share one store, the others have their own
    // connections, as other processes would.
    let shared = Arc::new(open(&data));
    let stores: Vec<Arc<SqliteStore>> = (0..THREADS)
        .map(|i| {
            if i % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::new(open(&data))
            }
        })
        .collect();
    for round in 0..ROUNDS {
        for sending in [false, true] {
            let key = format!("race-{round}-{sending}");
            begun(&shared, &key, 1_000, sending.then_some(1_040));
            let barrier = Barrier::new(THREADS);
            let results: Vec<Begin> = std::thread::scope(|scope| {
                let handles: Vec<_> = stores
                    .iter()
                    .map(|store| {
                        let (key, barrier) = (&key, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            store.begin_idempotent("main", key, FP_A, 1_100, TTL, LEASE)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("thread").expect("begin"))
                    .collect()
            });
            let count = |f: fn(&Begin) -> bool| results.iter().filter(|b| f(b)).count();
            let won = if sending {
                count(|b| matches!(b, Begin::Orphaned(_)))
            } else {
                count(|b| *b == Begin::Started)
            };
            let waiting = count(|b| matches!(b, Begin::InProgress(_)));
            assert_eq!(
                (won, waiting),
                (1, THREADS - 1),
                "round {round}, sending {sending}: {results:?}"
            );
        }
    }
}

/// Writes, without [`SqliteStore`], a database as schema version 3 left it,
/// under `master_key` (hex): one `in_progress` record, one complete record
/// with a sealed reply, and one audit entry.
fn write_schema_3_store(data: &Path, master_key: &str) {
    use super::crypto::{KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT, Sealer, reply_body_aad};
    use super::migrations::MIGRATIONS;
    std::fs::create_dir_all(data).expect("mkdir");
    let bytes: [u8; 32] = hex::decode(master_key)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let sealer = Sealer::new(&bytes);
    let mut conn = rusqlite::Connection::open(data.join(DB_FILE)).expect("raw open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    let tx = conn.transaction().expect("tx");
    for migration in &MIGRATIONS[..3] {
        tx.execute_batch(migration.sql).expect("schema");
    }
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('key_check', ?1)",
        [sealer
            .seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)
            .expect("seal")],
    )
    .expect("key check");
    tx.execute(
        "INSERT INTO idempotency (connection, key, fingerprint, state, created_at, expires_at)
         VALUES ('main', 'old-running', ?1, 'in_progress', 1000, ?2)",
        rusqlite::params![FP_A, 1_000 + TTL],
    )
    .expect("in_progress record");
    let sealed = sealer
        .seal(
            &reply_body_aad("main", "old-done", FP_A, 200, Some("application/json")),
            b"{\"old\":true}",
        )
        .expect("seal");
    tx.execute(
        "INSERT INTO idempotency (connection, key, fingerprint, state, status, content_type,
                                  sealed_body, created_at, expires_at)
         VALUES ('main', 'old-done', ?1, 'complete', 200, 'application/json', ?2, 1000, ?3)",
        rusqlite::params![FP_A, sealed, 1_000 + TTL],
    )
    .expect("complete record");
    tx.execute(
        "INSERT INTO audit_log (at, connection, token, function, effect, request_id, outcome,
                                params_digest)
         VALUES (1000, 'main', 'token-1', 'refundPurchase', 'money', 'req-old', '200', 'ab12')",
        [],
    )
    .expect("audit entry");
    tx.pragma_update(None, "user_version", 3).expect("version");
    tx.commit().expect("commit");
}

#[test]
fn a_schema_3_store_migrates_an_old_in_progress_record_to_a_lapsed_send() {
    let (_tmp, data) = data_dir();
    write_schema_3_store(&data, KEY_A);
    // Several processes upgrading at once: each migration runs once.
    let barrier = Arc::new(Barrier::new(4));
    let stores: Vec<SqliteStore> = (0..4)
        .map(|_| {
            let (data, barrier) = (data.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                SqliteStore::open(&data, Some(&key(KEY_A))).expect("open and migrate")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let store = &stores[0];
    store.with_connection(|conn| {
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, SqliteStore::schema_version());
        assert!(version >= 4);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM idempotency", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 2);
    });

    // Its fate is unknown: it is `Sending` with a lease already lapsed.
    let old = record(store, "main", "old-running");
    assert_eq!(
        (old.state, old.lease_until, old.created_at, old.expires_at),
        (IdempotencyState::Sending, 0, 1_000, 1_000 + TTL)
    );
    // The complete record's sealed reply still opens, and replays.
    let done = store
        .begin_idempotent("main", "old-done", FP_A, 2_000, TTL, LEASE)
        .expect("begin");
    let Begin::Done(r) = done else {
        panic!("{done:?}");
    };
    assert_eq!(r.body.as_deref(), Some(&b"{\"old\":true}"[..]));
    // The old audit entry reads as it was, and no settle touches it.
    assert_eq!(
        store
            .settle_expired(2_000, 502, "application/json", UNKNOWN_BODY)
            .expect("settle"),
        Settled {
            freed: 0,
            unknown: 1,
            audits: 0
        }
    );
    let entries = store.audit(&AuditFilter::default()).expect("audit");
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.request_id.as_str(), e.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("req-old", "200")]
    );
    // A repeat of the old running call is told outcome_unknown, from any of
    // the stores.
    for store in &stores {
        let repeat = store
            .begin_idempotent("main", "old-running", FP_A, 2_001, TTL, LEASE)
            .expect("repeat");
        let Begin::Done(r) = repeat else {
            panic!("{repeat:?}");
        };
        assert_eq!(
            (r.status, r.body.as_deref()),
            (Some(502), Some(UNKNOWN_BODY))
        );
    }
    // The new schema's indexes serve the settle's own statements.
    use rusqlite::types::Value::{Integer, Text};
    store.with_connection(|conn| {
        for (sql, values, index) in [
            (
                SETTLE_CLAIMED_SQL,
                vec![Text("claimed".into()), Integer(5)],
                "idempotency_by_lease",
            ),
            (
                SETTLE_SENDING_SQL,
                vec![Text("sending".into()), Integer(5)],
                "idempotency_by_lease",
            ),
            (
                SETTLE_SQL,
                vec![
                    Integer(5),
                    Text(AUDIT_OUTCOME_UNKNOWN.into()),
                    Text(AUDIT_IN_PROGRESS.into()),
                ],
                "audit_log_by_lease",
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("prepare")
                .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{sql}: {plan:?}"
            );
        }
    });
}

//! Tests of the idempotency records: round trips, fingerprints, expiry,
//! abandonment, encryption of the recorded reply, and races between begins.

use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};

use super::tests::data_dir;
use super::*;

pub(super) const FP_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
pub(super) const FP_B: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";
pub(super) const TTL: i64 = 86_400;

fn open(data: &Path) -> SqliteStore {
    SqliteStore::open(data, None).expect("open")
}

fn record_of(begun: Begin) -> IdempotencyRecord {
    match begun {
        Begin::InProgress(r) | Begin::Orphaned(r) | Begin::Done(r) | Begin::Mismatch(r) => r,
        Begin::Started => panic!("expected a record, got Started"),
    }
}

#[test]
fn a_begun_call_completes_and_a_retry_gets_the_recorded_reply() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    assert_eq!(store.idempotent("main", "key-1").expect("get"), None);
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_000, TTL, TTL)
            .expect("begin"),
        Begin::Started
    );
    let waiting = IdempotencyRecord {
        key: "key-1".into(),
        connection: "main".into(),
        fingerprint: FP_A.into(),
        state: IdempotencyState::Claimed,
        status: None,
        content_type: None,
        body: None,
        created_at: 1_000,
        expires_at: 1_000 + TTL,
        lease_until: 1_000 + TTL,
    };
    assert_eq!(
        store.idempotent("main", "key-1").expect("get"),
        Some(waiting.clone())
    );
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_001, TTL, TTL)
            .expect("retry while waiting"),
        Begin::InProgress(waiting.clone())
    );

    let body = br#"{"result":"success","data":{"refund_id":"R-1"}}"#;
    store
        .complete_idempotent("main", "key-1", 200, Some("application/json"), body)
        .expect("complete");
    let done = IdempotencyRecord {
        state: IdempotencyState::Complete,
        status: Some(200),
        content_type: Some("application/json".into()),
        body: Some(body.to_vec()),
        ..waiting
    };
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_002, TTL, TTL)
            .expect("retry after completion"),
        Begin::Done(done.clone())
    );
    drop(store);

    // The record, reply included, survives reopening.
    let store = open(&data);
    assert_eq!(
        store.idempotent("main", "key-1").expect("get"),
        Some(done.clone())
    );
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_003, TTL, TTL)
            .expect("retry"),
        Begin::Done(done)
    );

    // An empty reply without a content type is recorded as such.
    assert_eq!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_000, TTL, TTL)
            .expect("begin"),
        Begin::Started
    );
    store
        .complete_idempotent("main", "key-2", 204, None, b"")
        .expect("complete");
    let empty = store
        .idempotent("main", "key-2")
        .expect("get")
        .expect("some");
    assert_eq!(
        (empty.status, empty.content_type, empty.body),
        (Some(204), None, Some(Vec::new()))
    );
}

#[test]
fn a_key_reused_for_another_request_is_a_mismatch() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    store
        .begin_idempotent("main", "key-1", FP_A, 1_000, TTL, TTL)
        .expect("begin");
    let in_progress = store
        .begin_idempotent("main", "key-1", FP_B, 1_001, TTL, TTL)
        .expect("other request");
    assert!(matches!(in_progress, Begin::Mismatch(_)), "{in_progress:?}");
    assert_eq!(record_of(in_progress).fingerprint, FP_A);

    store
        .complete_idempotent("main", "key-1", 201, Some("application/json"), b"{}")
        .expect("complete");
    let complete = store
        .begin_idempotent("main", "key-1", FP_B, 1_002, TTL, TTL)
        .expect("other request");
    let Begin::Mismatch(record) = complete else {
        panic!("{complete:?}");
    };
    assert_eq!(
        (record.fingerprint.as_str(), record.state, record.status),
        (FP_A, IdempotencyState::Complete, Some(201))
    );
    // The mismatch changed nothing: the original request still replays.
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_003, TTL, TTL)
            .expect("retry"),
        Begin::Done(_)
    ));
}

#[test]
fn records_are_scoped_per_connection() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    for connection in ["main", "shop2"] {
        assert_eq!(
            store
                .begin_idempotent(connection, "same-key", FP_A, 1_000, TTL, TTL)
                .expect("begin"),
            Begin::Started,
            "{connection}"
        );
    }
    store
        .complete_idempotent("main", "same-key", 200, None, b"main")
        .expect("complete");
    assert_eq!(
        record_of(
            store
                .begin_idempotent("shop2", "same-key", FP_A, 1_001, TTL, TTL)
                .expect("begin")
        )
        .state,
        IdempotencyState::Claimed
    );
}

#[test]
fn a_second_begin_in_another_thread_sees_the_call_in_progress() {
    let (_tmp, data) = data_dir();
    let first: Arc<dyn Store> = Arc::new(open(&data));
    // A second store on the same directory: its own SQLite connection, as
    // another process would have.
    let second: Arc<dyn Store> = Arc::new(open(&data));
    let (started_tx, started_rx) = mpsc::channel();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    let caller = {
        let first = Arc::clone(&first);
        std::thread::spawn(move || {
            let begun = first
                .begin_idempotent("main", "key-1", FP_A, 1_000, TTL, TTL)
                .expect("begin");
            started_tx.send(begun).expect("send");
            // The upstream call is under way until the test says otherwise.
            finish_rx.recv().expect("recv");
            first
                .complete_idempotent("main", "key-1", 200, Some("text/plain"), b"ok")
                .expect("complete");
        })
    };
    assert_eq!(started_rx.recv().expect("started"), Begin::Started);

    for store in [&second, &first] {
        let retry = {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                store.begin_idempotent("main", "key-1", FP_A, 1_001, TTL, TTL)
            })
            .join()
            .expect("thread")
            .expect("begin")
        };
        let Begin::InProgress(record) = retry else {
            panic!("{retry:?}");
        };
        assert_eq!(record.created_at, 1_000);
    }

    finish_tx.send(()).expect("finish");
    caller.join().expect("caller");
    let done = second
        .begin_idempotent("main", "key-1", FP_A, 1_002, TTL, TTL)
        .expect("begin");
    assert_eq!(record_of(done.clone()).body.as_deref(), Some(&b"ok"[..]));
    assert!(matches!(done, Begin::Done(_)));
}

#[test]
fn eight_threads_racing_to_begin_one_key_start_it_exactly_once() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 25;
    let (_tmp, data) = data_dir();
    // Half the threads share one store (one connection behind its mutex);
    // the others have their own (own connections, as other processes).
    let shared: Arc<dyn Store> = Arc::new(open(&data));
    let stores: Vec<Arc<dyn Store>> = (0..THREADS)
        .map(|i| {
            if i % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::new(open(&data)) as Arc<dyn Store>
            }
        })
        .collect();
    for round in 0..ROUNDS {
        let key = format!("race-{round}");
        let barrier = Barrier::new(THREADS);
        let results: Vec<Begin> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .map(|store| {
                    let (key, barrier) = (&key, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        store.begin_idempotent("main", key, FP_A, 1_000, TTL, TTL)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("begin"))
                .collect()
        });
        let started = results.iter().filter(|b| **b == Begin::Started).count();
        let waiting = results
            .iter()
            .filter(|b| matches!(b, Begin::InProgress(_)))
            .count();
        assert_eq!(
            (started, waiting),
            (1, THREADS - 1),
            "round {round}: {results:?}"
        );
    }
}

#[test]
fn an_expired_record_counts_as_absent_and_is_purged() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    store
        .begin_idempotent("main", "key-1", FP_A, 1_000, 60, 60)
        .expect("begin");
    store
        .complete_idempotent("main", "key-1", 200, None, b"first reply")
        .expect("complete");
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_059, 60, 60)
            .expect("last second"),
        Begin::Done(_)
    ));
    // At `expires_at` the record is gone: even another request starts, and
    // the new record replaces the old one whole.
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_B, 1_060, 60, 60)
            .expect("expired"),
        Begin::Started
    );
    let replaced = store
        .idempotent("main", "key-1")
        .expect("get")
        .expect("some");
    assert_eq!(
        (
            replaced.fingerprint.as_str(),
            replaced.state,
            replaced.status,
            replaced.body,
            replaced.created_at,
            replaced.expires_at
        ),
        (FP_B, IdempotencyState::Claimed, None, None, 1_060, 1_120)
    );

    // An in-progress record expires too (its process may have died).
    store
        .begin_idempotent("main", "key-2", FP_A, 1_000, 100, 100)
        .expect("begin");
    assert!(matches!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_099, 100, 100)
            .expect("still waiting"),
        Begin::InProgress(_)
    ));
    assert_eq!(
        store
            .begin_idempotent("main", "key-2", FP_A, 1_100, 100, 100)
            .expect("expired"),
        Begin::Started
    );

    // The purge deletes exactly what has expired, in progress or complete.
    store
        .begin_idempotent("shop2", "key-3", FP_A, 1_000, 500, 500)
        .expect("begin");
    store
        .complete_idempotent("shop2", "key-3", 200, None, b"kept")
        .expect("complete");
    // Expiries now: key-1 1120, key-2 1200, key-3 1500.
    assert_eq!(store.purge_expired_idempotency(1_119).expect("purge"), 0);
    assert_eq!(store.purge_expired_idempotency(1_200).expect("purge"), 2);
    assert_eq!(store.idempotent("main", "key-1").expect("get"), None);
    assert_eq!(store.idempotent("main", "key-2").expect("get"), None);
    assert!(store.idempotent("shop2", "key-3").expect("get").is_some());
    assert_eq!(store.purge_expired_idempotency(1_200).expect("purge"), 0);
    assert_eq!(store.purge_expired_idempotency(1_500).expect("purge"), 1);
    assert_eq!(store.idempotent("shop2", "key-3").expect("get"), None);
}

#[test]
fn abandoning_a_call_in_progress_lets_the_same_key_start_again() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_A, 1_000, TTL, TTL)
            .expect("begin"),
        Begin::Started
    );
    store.abandon_idempotent("main", "key-1").expect("abandon");
    assert_eq!(store.idempotent("main", "key-1").expect("get"), None);
    // Abandoning twice, or a key never begun, is no error.
    store.abandon_idempotent("main", "key-1").expect("again");
    store.abandon_idempotent("main", "never").expect("never");
    // The retry may even be another request: the first reached nobody.
    assert_eq!(
        store
            .begin_idempotent("main", "key-1", FP_B, 1_001, TTL, TTL)
            .expect("begin again"),
        Begin::Started
    );

    // A complete record is not abandoned: its call reached the upstream.
    store
        .complete_idempotent("main", "key-1", 200, None, b"done")
        .expect("complete");
    store.abandon_idempotent("main", "key-1").expect("abandon");
    assert!(matches!(
        store
            .begin_idempotent("main", "key-1", FP_B, 1_002, TTL, TTL)
            .expect("retry"),
        Begin::Done(_)
    ));
    // Nor completed a second time.
    let err = store
        .complete_idempotent("main", "key-1", 500, None, b"other")
        .expect_err("already complete");
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    assert_eq!(
        store
            .idempotent("main", "key-1")
            .expect("get")
            .expect("some")
            .body
            .as_deref(),
        Some(&b"done"[..])
    );
}

#[test]
fn a_recorded_reply_body_is_never_in_the_database_files_in_plain_text() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    let needle = "buyer.email=PLAINTEXT-NEEDLE-jane.doe@example.com";
    for i in 0..20 {
        let key = format!("key-{i}");
        store
            .begin_idempotent("main", &key, FP_A, 1_000, TTL, TTL)
            .expect("begin");
        let body = format!(r#"{{"data":{{"n":{i},"who":"{needle}"}}}}"#);
        store
            .complete_idempotent("main", &key, 200, Some("application/json"), body.as_bytes())
            .expect("complete");
    }
    let scan = |when: &str| {
        for entry in std::fs::read_dir(&data).expect("read_dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{when}: {} contains a reply body in plain text",
                path.display()
            );
        }
    };
    scan("while open");
    let record = store
        .idempotent("main", "key-7")
        .expect("get")
        .expect("some");
    assert!(
        String::from_utf8(record.body.expect("body"))
            .expect("utf-8")
            .contains(needle)
    );
    drop(store);
    scan("after closing");
}

#[test]
fn a_recorded_reply_whose_plain_columns_were_altered_does_not_replay() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    for key in ["key-1", "key-2", "key-3"] {
        store
            .begin_idempotent("main", key, FP_A, 1_000, TTL, TTL)
            .expect("begin");
        store
            .complete_idempotent("main", key, 200, Some("application/json"), b"SECRET-BODY")
            .expect("complete");
    }
    store.with_connection(|conn| {
        conn.execute_batch(
            "UPDATE idempotency SET status = 201 WHERE key = 'key-1';
             UPDATE idempotency SET content_type = 'text/html' WHERE key = 'key-2';
             UPDATE idempotency SET sealed_body = (SELECT sealed_body FROM idempotency
                 WHERE key = 'key-1') WHERE key = 'key-3';",
        )
        .expect("tamper");
    });
    for key in ["key-1", "key-2", "key-3"] {
        let err = store
            .begin_idempotent("main", key, FP_A, 1_001, TTL, TTL)
            .expect_err("altered");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{key}: {err:?}");
        let message = err.to_string();
        assert!(message.contains("does not authenticate"), "{message}");
        assert!(!message.contains("SECRET-BODY"), "{message}");
        assert!(
            !message.contains(key),
            "the message quotes no key: {message}"
        );
        assert!(store.idempotent("main", key).is_err());
    }
}

#[test]
fn invalid_idempotency_input_is_refused_without_quoting_it() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    let long_key = "K".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1);
    let max_key = "K".repeat(MAX_IDEMPOTENCY_KEY_LEN);
    let not_hex = "POST /refund?amount=5";
    let cases: [(&str, &str, &str, i64, &str); 6] = [
        ("", "key", FP_A, TTL, "connection name is empty"),
        ("main", "", FP_A, TTL, "idempotency key is empty"),
        (
            "main",
            &long_key,
            FP_A,
            TTL,
            "256 bytes long, more than 255",
        ),
        (
            "main",
            "key",
            not_hex,
            TTL,
            "fingerprint must be a hex digest",
        ),
        ("main", "key", "", TTL, "fingerprint must be a hex digest"),
        ("main", "key", FP_A, 0, "positive number of seconds"),
    ];
    for (connection, key, fingerprint, ttl, expect) in cases {
        let err = store
            .begin_idempotent(connection, key, fingerprint, 1_000, ttl, ttl)
            .expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(expect), "{message}");
        assert!(
            !message.contains("KKK") && !message.contains("amount"),
            "{message}"
        );
    }
    assert_eq!(
        store
            .begin_idempotent("main", &max_key, FP_A, 1_000, TTL, TTL)
            .expect("the longest key"),
        Begin::Started
    );

    let err = store
        .complete_idempotent("main", &max_key, 42, None, b"")
        .expect_err("bad status");
    assert!(
        err.to_string().contains("42 is not an HTTP status"),
        "{err}"
    );
    let err = store
        .complete_idempotent("main", "never-begun", 200, None, b"")
        .expect_err("nothing in progress");
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    assert!(!err.to_string().contains("never-begun"), "{err}");
    assert_eq!(store.idempotent("main", "never-begun").expect("get"), None);
}

#[test]
fn debug_output_of_a_record_shows_the_body_length_not_the_body() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    store
        .begin_idempotent("main", "key-1", FP_A, 1_000, TTL, TTL)
        .expect("begin");
    store
        .complete_idempotent("main", "key-1", 200, None, b"jane.doe@example.com")
        .expect("complete");
    let begun = store
        .begin_idempotent("main", "key-1", FP_A, 1_001, TTL, TTL)
        .expect("begin");
    for shown in [format!("{begun:?}"), format!("{begun:#?}")] {
        assert!(!shown.contains("jane.doe"), "{shown}");
        assert!(!shown.contains("106, 97, 110, 101"), "{shown}");
        assert!(shown.contains("<20 bytes>"), "{shown}");
    }
}

#[test]
fn the_purge_is_served_by_the_expiry_index() {
    let (_tmp, data) = data_dir();
    let store = open(&data);
    store.with_connection(|conn| {
        let plan: Vec<String> = conn
            .prepare("EXPLAIN QUERY PLAN DELETE FROM idempotency WHERE expires_at <= ?1")
            .expect("prepare")
            .query_map([0], |row| row.get(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(
            plan.iter()
                .any(|step| step.contains("idempotency_by_expiry")),
            "{plan:?}"
        );
    });
}

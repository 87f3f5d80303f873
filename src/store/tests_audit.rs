//! Tests of the audit log: append, begin and complete, order, filters,
//! limit, validation and the indexes its queries use. Settling lapsed leases
//! is tested with the idempotency records in `tests_leases.rs` too.

use super::sqlite_audit::select_sql;
use super::tests::data_dir;
use super::*;

fn entry(at: i64, connection: &str, function: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at,
        connection: connection.into(),
        token: "token-1".into(),
        function: function.into(),
        effect: "money".into(),
        request_id: format!("req-{at}"),
        outcome: "200".into(),
        params_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
    }
}

fn ids(entries: &[AuditEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

#[test]
fn audit_entries_come_back_newest_first_with_the_ids_the_store_gave() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    assert!(
        store
            .audit(&AuditFilter::default())
            .expect("audit")
            .is_empty()
    );

    let mut written = Vec::new();
    // Out of time order, and two in the same second.
    for (at, outcome) in [
        (100, "200"),
        (300, "upstream_error 404"),
        (200, "outcome_unknown"),
        (300, "replayed"),
    ] {
        let mut e = entry(at, "main", "refundPurchase");
        e.id = 999; // ignored
        e.outcome = outcome.into();
        e.effect = if at == 200 { "write" } else { "money" }.into();
        let id = store.append_audit(&e).expect("append");
        e.id = id;
        written.push(e);
    }
    let assigned = ids(&written);
    assert!(
        assigned.windows(2).all(|w| w[0] < w[1]),
        "ids grow: {assigned:?}"
    );
    assert!(!assigned.contains(&999));
    drop(store);

    let store = SqliteStore::open(&data, None).expect("reopen");
    let newest_first = store.audit(&AuditFilter::default()).expect("audit");
    assert_eq!(
        newest_first,
        vec![
            written[3].clone(),
            written[1].clone(),
            written[2].clone(),
            written[0].clone()
        ]
    );
}

#[test]
fn audit_filters_combine_and_the_limit_defaults_to_one_hundred() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    // 150 entries at t = 1..=150 over two connections and three functions.
    for t in 1..=150_i64 {
        let connection = if t % 2 == 0 { "main" } else { "shop2" };
        let function = ["refundPurchase", "updateBuyer", "createVoucher"][(t % 3) as usize];
        store
            .append_audit(&entry(t, connection, function))
            .expect("append");
    }
    let ats = |filter: AuditFilter| -> Vec<i64> {
        store
            .audit(&filter)
            .expect("audit")
            .iter()
            .map(|e| e.at)
            .collect()
    };

    let all = ats(AuditFilter::default());
    assert_eq!(all.len(), DEFAULT_AUDIT_LIMIT);
    assert_eq!(all, (51..=150).rev().collect::<Vec<_>>());
    assert_eq!(
        ats(AuditFilter {
            limit: Some(1_000),
            ..AuditFilter::default()
        })
        .len(),
        150
    );
    assert_eq!(
        ats(AuditFilter {
            limit: Some(3),
            ..AuditFilter::default()
        }),
        [150, 149, 148]
    );
    assert!(
        ats(AuditFilter {
            limit: Some(0),
            ..AuditFilter::default()
        })
        .is_empty()
    );

    let main = ats(AuditFilter {
        connection: Some("main".into()),
        limit: Some(1_000),
        ..AuditFilter::default()
    });
    assert_eq!(main, (1..=75).rev().map(|i| 2 * i).collect::<Vec<_>>());

    // `since` is inclusive.
    assert_eq!(
        ats(AuditFilter {
            since: Some(147),
            ..AuditFilter::default()
        }),
        [150, 149, 148, 147]
    );

    // Every filter at once: main (even t), updateBuyer (t % 3 == 1), t >= 100.
    let combined = store
        .audit(&AuditFilter {
            connection: Some("main".into()),
            function: Some("updateBuyer".into()),
            since: Some(100),
            limit: Some(2),
        })
        .expect("audit");
    assert_eq!(
        combined.iter().map(|e| e.at).collect::<Vec<_>>(),
        [148, 142]
    );
    assert!(
        combined
            .iter()
            .all(|e| e.connection == "main" && e.function == "updateBuyer")
    );

    assert!(
        ats(AuditFilter {
            connection: Some("nobody".into()),
            ..AuditFilter::default()
        })
        .is_empty()
    );
}

#[test]
fn invalid_audit_entries_are_refused_before_anything_is_written() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let base = entry(1, "main", "refundPurchase");
    let cases: [(AuditEntry, &str); 7] = [
        (
            AuditEntry {
                outcome: AUDIT_IN_PROGRESS.into(),
                ..base.clone()
            },
            "is not an outcome",
        ),
        (
            AuditEntry {
                effect: "read".into(),
                ..base.clone()
            },
            "unknown audit effect `read`",
        ),
        (
            AuditEntry {
                params_digest: "amount=5&email=jane@example.com".into(),
                ..base.clone()
            },
            "parameter digest must be a hex digest",
        ),
        (
            AuditEntry {
                params_digest: "a".repeat(MAX_DIGEST_LEN + 1),
                ..base.clone()
            },
            "parameter digest must be a hex digest",
        ),
        (
            AuditEntry {
                token: String::new(),
                ..base.clone()
            },
            "token name is empty",
        ),
        (
            AuditEntry {
                connection: String::new(),
                ..base.clone()
            },
            "connection name is empty",
        ),
        (
            AuditEntry {
                outcome: String::new(),
                ..base.clone()
            },
            "outcome is empty",
        ),
    ];
    for (bad, expect) in cases {
        let err = store.append_audit(&bad).expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(expect), "{message}");
        assert!(!message.contains("jane@example.com"), "{message}");
    }
    assert!(
        store
            .audit(&AuditFilter::default())
            .expect("audit")
            .is_empty()
    );
    for effect in AUDIT_EFFECTS {
        store
            .append_audit(&AuditEntry {
                effect: (*effect).into(),
                ..base.clone()
            })
            .expect("every known effect is accepted");
    }
}

#[test]
fn every_audit_query_is_served_by_an_index_without_a_sort() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    for mask in 0..8_u8 {
        let filter = AuditFilter {
            connection: (mask & 1 != 0).then(|| "main".into()),
            function: (mask & 2 != 0).then(|| "refundPurchase".into()),
            since: (mask & 4 != 0).then_some(100),
            limit: None,
        };
        let (sql, values) = select_sql(&filter);
        let plan: Vec<String> = store.with_connection(|conn| {
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("prepare")
                .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows")
        });
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX audit_log_by_")),
            "{filter:?}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{filter:?}: {plan:?}"
        );
    }
}

#[test]
fn a_begun_entry_is_in_the_log_before_its_call_ends_and_completes_once() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let outcome_of = |id: i64| -> String {
        store
            .audit(&AuditFilter::default())
            .expect("audit")
            .into_iter()
            .find(|e| e.id == id)
            .expect("entry")
            .outcome
    };
    // The outcome given is ignored (an empty one too): the store sets it.
    let mut begun = entry(100, "main", "refundPurchase");
    begun.outcome = String::new();
    let id = store.begin_audit(&begun, 130).expect("begin");
    assert_eq!(outcome_of(id), AUDIT_IN_PROGRESS);
    // Its fields are checked like an appended entry's.
    let err = store
        .begin_audit(
            &AuditEntry {
                effect: "read".into(),
                ..begun.clone()
            },
            130,
        )
        .expect_err("read");
    assert!(err.to_string().contains("unknown audit effect"), "{err}");

    for bad in ["", AUDIT_IN_PROGRESS] {
        let err = store.complete_audit(id, bad).expect_err("bad outcome");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(outcome_of(id), AUDIT_IN_PROGRESS);
    store.complete_audit(id, "200").expect("complete");
    assert_eq!(outcome_of(id), "200");
    // Once complete it stays as it is: not completed again, and a late
    // heartbeat is harmless.
    let err = store
        .complete_audit(id, "upstream_error 500")
        .expect_err("twice");
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    store.extend_audit_lease(id, 5_000).expect("late heartbeat");
    assert_eq!(
        store
            .settle_expired(10_000, 502, "application/json", b"{}")
            .expect("settle")
            .audits,
        0
    );
    assert_eq!(outcome_of(id), "200");

    // An entry appended whole was never begun; an unknown id is no entry.
    let whole = store
        .append_audit(&entry(101, "main", "refundPurchase"))
        .expect("append");
    assert!(store.complete_audit(whole, "500").is_err());
    assert_eq!(outcome_of(whole), "200");
    assert!(store.complete_audit(9_999, "200").is_err());
    assert!(store.extend_audit_lease(9_999, 200).is_err());
}

#[test]
fn a_lapsed_audit_lease_is_settled_unknown_and_a_heartbeat_keeps_it_live() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let outcomes = || -> Vec<(String, String)> {
        let mut all: Vec<_> = store
            .audit(&AuditFilter::default())
            .expect("audit")
            .into_iter()
            .map(|e| (e.request_id, e.outcome))
            .collect();
        all.sort();
        all
    };
    let lapsed = store
        .begin_audit(&entry(100, "main", "refundPurchase"), 130)
        .expect("begin");
    let beating = store
        .begin_audit(&entry(101, "main", "refundPurchase"), 130)
        .expect("begin");
    store.extend_audit_lease(beating, 200).expect("heartbeat");
    store
        .extend_audit_lease(beating, 150)
        .expect("never shortens");
    let settle = |now: i64| {
        store
            .settle_expired(now, 502, "application/json", b"{}")
            .expect("settle")
    };
    assert_eq!(settle(129).audits, 0, "a live lease is left alone");
    assert_eq!(settle(130).audits, 1);
    assert_eq!(
        outcomes(),
        [
            ("req-100".to_owned(), AUDIT_OUTCOME_UNKNOWN.to_owned()),
            ("req-101".to_owned(), AUDIT_IN_PROGRESS.to_owned())
        ]
    );
    assert_eq!(settle(199).audits, 0, "the heartbeat's lease still runs");
    assert_eq!(settle(200).audits, 1);
    // A heartbeat of a settled entry does not bring it back.
    store
        .extend_audit_lease(lapsed, 1_000)
        .expect("late heartbeat");
    assert_eq!(settle(300).audits, 0);

    // A caller that was alive after all still records how the call ended,
    // once: the log tells what happened rather than that nobody knew.
    store
        .complete_audit(lapsed, "200")
        .expect("late completion");
    assert!(store.complete_audit(lapsed, "500").is_err());
    assert_eq!(
        outcomes(),
        [
            ("req-100".to_owned(), "200".to_owned()),
            ("req-101".to_owned(), AUDIT_OUTCOME_UNKNOWN.to_owned())
        ]
    );
    // A call that really ended unknown is never turned into anything else
    // after it was completed as such.
    let unknown = store
        .begin_audit(&entry(102, "main", "refundPurchase"), 500)
        .expect("begin");
    store
        .complete_audit(unknown, AUDIT_OUTCOME_UNKNOWN)
        .expect("complete unknown");
    assert!(store.complete_audit(unknown, "200").is_err());
}

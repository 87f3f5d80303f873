//! Tests of the audit log: append, order, filters, limit, validation and the
//! indexes its queries use.

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
    let cases: [(AuditEntry, &str); 6] = [
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

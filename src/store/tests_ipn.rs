//! IPN events in the store: dedupe, order per purchase, the relay's clock,
//! replays racing attempts, sealed fields.

use super::tests::data_dir;
use super::*;

fn event(order: &str, tx: &str, at: i64) -> NewIpnEvent {
    let fields = vec![
        ("event".to_owned(), "on_payment".to_owned()),
        ("order_id".to_owned(), order.to_owned()),
        ("transaction_id".to_owned(), tx.to_owned()),
        ("buyer_email".to_owned(), "anna@example.com".to_owned()),
    ];
    NewIpnEvent {
        connection: "main".to_owned(),
        event: "on_payment".to_owned(),
        order_id: Some(order.to_owned()),
        transaction_id: Some(tx.to_owned()),
        fingerprint: format!("fp-{order}-{tx}"),
        fields,
        received_at_ms: at,
    }
}

fn new_id(stored: IpnStored) -> i64 {
    match stored {
        IpnStored::New(id) => id,
        IpnStored::Duplicate(id) => panic!("event {id} was taken for a duplicate"),
    }
}

const APP: &str = "http://127.0.0.1:3000/hooks";

#[test]
fn an_event_is_stored_once_with_its_fields_sealed() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let targets = vec![APP.to_owned()];
    let id = new_id(
        store
            .ipn_store(&event("O1", "T1", 1_000), &targets)
            .unwrap(),
    );
    assert_eq!(
        store
            .ipn_store(&event("O1", "T1", 2_000), &targets)
            .unwrap(),
        IpnStored::Duplicate(id)
    );
    let shown = store.ipn_event(id).unwrap().unwrap();
    assert_eq!(shown.redeliveries, 1);
    assert_eq!(shown.deliveries.len(), 1);
    assert_eq!(shown.fields.unwrap()[3].1, "anna@example.com");
    // The personal data is not in the database file in clear.
    drop(store);
    let raw = std::fs::read(data.join(DB_FILE)).unwrap();
    let needle = b"anna@example.com";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn a_later_event_of_a_purchase_waits_and_does_not_make_the_relay_spin() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let targets = vec![APP.to_owned()];
    let first = new_id(
        store
            .ipn_store(&event("O1", "T1", 1_000), &targets)
            .unwrap(),
    );
    let second = new_id(
        store
            .ipn_store(&event("O1", "T2", 1_001), &targets)
            .unwrap(),
    );
    let other = new_id(
        store
            .ipn_store(&event("O2", "U1", 1_002), &targets)
            .unwrap(),
    );
    let due = store.ipn_due(5_000, 10).unwrap();
    let ids: Vec<i64> = due.iter().map(|d| d.event.id).collect();
    assert_eq!(ids, vec![first, other], "the second of O1 must wait");
    // The first fails and waits until 60 000; the other is delivered.
    let generation = due[0].generation;
    store
        .ipn_attempted(
            first,
            APP,
            generation,
            &Attempt::Retry {
                error: "503".into(),
                next_at_ms: 60_000,
            },
        )
        .unwrap();
    store
        .ipn_attempted(
            other,
            APP,
            due[1].generation,
            &Attempt::Delivered { at_ms: 5_001 },
        )
        .unwrap();
    assert!(store.ipn_due(5_002, 10).unwrap().is_empty());
    // Nothing is due before 60 000, though the second's own time is long past.
    assert_eq!(store.ipn_next_due().unwrap(), Some(60_000));
    // Dead-lettering the first frees the second.
    store
        .ipn_attempted(
            first,
            APP,
            generation,
            &Attempt::Dead {
                error: "503".into(),
            },
        )
        .unwrap();
    let due = store.ipn_due(5_003, 10).unwrap();
    assert_eq!(
        due.iter().map(|d| d.event.id).collect::<Vec<_>>(),
        vec![second]
    );
}

#[test]
fn a_replay_is_not_undone_by_an_attempt_that_began_before_it() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let targets = vec![APP.to_owned()];
    let id = new_id(
        store
            .ipn_store(&event("O1", "T1", 1_000), &targets)
            .unwrap(),
    );
    let due = store.ipn_due(2_000, 10).unwrap();
    let before = due[0].generation;
    assert_eq!(store.ipn_replay(id, &targets, 3_000).unwrap(), Some(1));
    // The attempt that was in flight ends: its result must not count.
    store
        .ipn_attempted(
            id,
            APP,
            before,
            &Attempt::Dead {
                error: "late".into(),
            },
        )
        .unwrap();
    store
        .ipn_attempted(id, APP, before, &Attempt::Delivered { at_ms: 3_001 })
        .unwrap();
    let shown = store.ipn_event(id).unwrap().unwrap();
    assert_eq!(shown.deliveries[0].state, DeliveryState::Pending);
    assert_eq!(shown.deliveries[0].attempts, 0);
    let due = store.ipn_due(3_500, 10).unwrap();
    assert_eq!(due[0].pending_since_ms, 3_000, "age counts from the replay");
    assert_eq!(due[0].generation, before + 1);
}

#[test]
fn events_stored_without_targets_get_them_later_and_filters_work() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let id = new_id(store.ipn_store(&event("O1", "T1", 1_000), &[]).unwrap());
    let listed = store.ipn_events(&IpnFilter::default()).unwrap();
    assert_eq!(listed[0].state(), "stored");
    assert_eq!(
        store
            .ipn_adopt_targets("main", &[APP.to_owned()], 2_000)
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .ipn_adopt_targets("main", &[APP.to_owned()], 2_000)
            .unwrap(),
        0
    );
    let pending = IpnFilter {
        state: Some("pending".into()),
        ..IpnFilter::default()
    };
    assert_eq!(store.ipn_events(&pending).unwrap()[0].id, id);
    let by_order = IpnFilter {
        order_id: Some("O2".into()),
        ..IpnFilter::default()
    };
    assert!(store.ipn_events(&by_order).unwrap().is_empty());
    let bad = IpnFilter {
        state: Some("lost".into()),
        ..IpnFilter::default()
    };
    assert!(store.ipn_events(&bad).is_err());
}

//! A proxy killed mid-call (SIGKILL) leaves records that say what is known:
//! the next process answers a repeat with `outcome_unknown` and sends
//! nothing, and the call that reached Digistore24 is in the audit log.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{BIN, Proxy};
use crate::fake_ds24::FakeDs24;
use crate::helpers::{TEST_KEY, client};

#[tokio::test]
async fn a_refund_cut_off_by_kill_9_is_audited_and_never_sent_again() {
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let env = [
        ("DS24_API_KEY", TEST_KEY),
        ("DS24_BASE_URL", base.as_str()),
        ("DS24_PROXY_DATA_DIR", data.as_str()),
    ];
    let refund = |proxy: &Proxy| {
        client()
            .post(proxy.url("/refundPurchase"))
            .header("idempotency-key", "crash-refund-1")
            // The fake holds its answer: the proxy is killed while waiting.
            .header("x-fake-delay-ms", "20000")
            .form(&[("purchase_id", "P-CRASH")])
            .send()
    };
    let first = Proxy::start(&[], &env);
    let pending = tokio::spawn(refund(&first));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the refund never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL, then wait
    assert!(pending.await.unwrap().is_err(), "the killed proxy answered");

    // The call reached Digistore24 before the kill: it is in the audit log.
    let audit = Command::new(BIN)
        .args(["audit", "list", "--json"])
        .env("DS24_PROXY_DATA_DIR", &data)
        .env_remove("DS24_API_KEY")
        .output()
        .unwrap();
    assert!(audit.status.success(), "{audit:?}");
    let entries: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let entries = entries
        .as_array()
        .or_else(|| entries["entries"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["function"], "refundPurchase");
    assert!(
        matches!(
            entries[0]["outcome"].as_str(),
            Some("in_progress" | "outcome_unknown")
        ),
        "{entries:?}"
    );

    // The next process answers the repeat from the record once the dead
    // call's lease lapses: never a second refund, never a 24-hour block.
    let second = Proxy::start(&[], &env);
    let started = Instant::now();
    let repeat = refund(&second).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(repeat.status(), 502);
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    let body: Value = repeat.json().await.unwrap();
    assert_eq!(body["error"]["type"], "outcome_unknown", "{body}");
    assert!(
        waited < ds24_proxy::ledger::LEASE + Duration::from_secs(10),
        "the repeat waited {waited:?}"
    );
    assert_eq!(fake.requests().len(), 1, "the refund was sent again");

    // And every repeat after that answers the same at once.
    let again = refund(&second).await.unwrap();
    assert_eq!(again.status(), 502);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(fake.requests().len(), 1);
}

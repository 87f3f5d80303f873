//! Idempotency keys and the audit log.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_repeated_idempotency_key_reaches_the_upstream_once_and_gets_the_same_answer() {
    let app = spawn_app().await;
    let send = || {
        app.client
            .post(app.url("/refundPurchase"))
            .header("Idempotency-Key", "refund-SBX1-0001")
            .body("purchase_id=SBX1")
    };
    let first = send().send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    let again = send().send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(
        app.fake.requests().len(),
        1,
        "the repeat reached Digistore24"
    );

    let other = app
        .client
        .post(app.url("/refundPurchase"))
        .header("Idempotency-Key", "refund-SBX1-0001")
        .body("purchase_id=SBX2")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["type"], "idempotency_key_reused");
    assert_eq!(app.fake.requests().len(), 1);
}

#[tokio::test]
async fn concurrent_repeats_of_a_key_wait_for_the_first_and_send_once() {
    let app = spawn_app().await;
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/actions/refund-purchase"))
                .header("Idempotency-Key", "k-concurrent")
                .header("x-fake-delay-ms", "400")
                .json(&json!({"purchase_id": "SBX9"}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let replayed = response.headers().contains_key("idempotent-replayed");
                (
                    response.status().as_u16(),
                    replayed,
                    response.text().await.unwrap(),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    assert_eq!(
        app.fake.requests().len(),
        1,
        "concurrent repeats reached Digistore24"
    );
    assert!(
        answers
            .iter()
            .all(|(status, _, body)| *status == 200 && body == &answers[0].2)
    );
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "exactly one call was made"
    );
}

#[tokio::test]
async fn write_and_money_calls_are_audited_without_their_parameters() {
    let app = spawn_app().await;
    app.client
        .post(app.url("/refundPurchase"))
        .header("x-request-id", "audit-1")
        .body("purchase_id=SECRETPURCHASE")
        .send()
        .await
        .unwrap();
    app.client
        .post(app.url("/actions/update-product"))
        .header("x-request-id", "audit-2")
        .json(&json!({"product_id": "7", "data": {"name_intern": "x"}}))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ds24-proxy"))
        .args(["audit", "list", "--json"])
        .env("DS24_PROXY_DATA_DIR", &app.data_dir)
        .env_remove("DS24_API_KEY")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "reads are not audited: {listed}");
    assert_eq!(entries[0]["function"], "updateProduct");
    assert_eq!(entries[0]["request_id"], "audit-2");
    assert_eq!(entries[1]["function"], "refundPurchase");
    assert_eq!(entries[1]["effect"], "money");
    assert_eq!(entries[1]["caller"], "anonymous");
    assert_eq!(entries[1]["outcome"], "200");
    assert_eq!(entries[1]["params_digest"].as_str().unwrap().len(), 64);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("SECRETPURCHASE"));
}

#[tokio::test]
async fn a_front_server_error_page_on_an_action_keeps_the_idempotency_key_taken() {
    use ds24_proxy::sandbox::{self, Fault};
    let app = crate::sandbox::SandboxApp::start(sandbox::WRITABLE_KEY).await;
    app.sandbox
        .fail_next(Some("refundPurchase"), 1, Fault::Status(502));
    let send = || {
        crate::helpers::client()
            .post(app.url("/actions/refund-purchase"))
            .header("Idempotency-Key", "front-502")
            .json(&json!({"purchase_id": "SBX00001"}))
    };
    let first = send().send().await.unwrap();
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"]["type"], "outcome_unknown", "{body}");
    let again = send().send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        app.sandbox.calls("refundPurchase"),
        1,
        "the refund was sent twice"
    );
}

#[tokio::test]
async fn a_write_finishes_and_is_recorded_even_when_the_client_goes_away() {
    let app = spawn_app().await;
    let request = app
        .client
        .post(app.url("/refundPurchase"))
        .header("Idempotency-Key", "gone-client")
        .header("x-fake-delay-ms", "800")
        .body("purchase_id=SBX7");
    let impatient = tokio::spawn(request.send());
    // The client goes away once the refund has reached Digistore24 (not
    // after a fixed time, which under load could be before the proxy even
    // read the request).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.fake.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the refund never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    impatient.abort();
    assert!(impatient.await.is_err(), "the client should have given up");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let again = app
        .client
        .post(app.url("/refundPurchase"))
        .header("Idempotency-Key", "gone-client")
        .header("x-fake-delay-ms", "800")
        .body("purchase_id=SBX7")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.headers()["idempotent-replayed"],
        "true",
        "the abandoned call was not recorded"
    );
    assert_eq!(app.fake.requests().len(), 1, "the refund was sent twice");
}

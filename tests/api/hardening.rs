//! Regression tests for the hardening review: each checks a way the key
//! could have leaked or a request could have gone wrong.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TEST_KEY, spawn_app, spawn_app_with};

#[tokio::test]
async fn paths_under_ipn_are_not_exempt_from_the_token() {
    let token = "t0ken-0123456789abcdef0123456789";
    let app = spawn_app_with("", &[("DS24_PROXY_TOKEN", token)]).await;
    for path in [
        "/ipn/json/refundPurchase?purchase_id=X",
        "/ipn/main/refundPurchase",
        "/ipn/anything/else",
    ] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    // Exactly `/ipn/{connection}` is the IPN receiver: no token, but the
    // signature check (no passphrase here: refused) and never upstream.
    let response = app.client.post(app.url("/ipn/main")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        app.fake.requests().is_empty(),
        "a request without a token reached the upstream"
    );
}

#[tokio::test]
async fn only_api_methods_are_forwarded() {
    let app = spawn_app().await;
    for method in ["TRACE", "PROPFIND", "FOO"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(m, app.url("/ping"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "method_not_allowed");
    }
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn the_legacy_form_is_only_recognised_after_api_call() {
    let app = spawn_app().await;
    // Elsewhere `x/json/y` would be Digistore24's legacy spelling of y.
    for path in [
        "/getProduct/json/deleteProduct",
        "/listPurchases/json/refundPurchase",
        "/ping/anything",
    ] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    let response = app
        .client
        .get(app.url("/api/call/getProduct/format/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.fake.single().path, "/api/call/getProduct/format/json");
    let response = app
        .client
        .get(app.url("/123-SECRETKEY/json/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn credential_headers_in_other_spellings_are_not_forwarded() {
    let app = spawn_app().await;
    app.client
        .get(app.url("/ping"))
        .header("X_DS_API_KEY", "666-smuggled")
        .header("x_ds24_connection", "other")
        .send()
        .await
        .unwrap();
    let seen = app.fake.single();
    assert!(seen.headers.get("x_ds_api_key").is_none());
    assert_eq!(seen.headers["x-ds-api-key"], TEST_KEY);
}

#[tokio::test]
async fn an_upstream_failure_never_shows_the_query_or_the_upstream_url() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/call", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with("", &[("DS24_BASE_URL", base.as_str())]).await;
    let response = app
        .client
        .get(app.url("/listBuyers?email=anna.private@example.com"))
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert!(!body.contains("anna.private"), "{body}");
    assert!(!body.contains("/api/call/listBuyers"), "{body}");
}

#[tokio::test]
async fn a_write_that_timed_out_is_outcome_unknown_and_is_sent_once() {
    let app = spawn_app_with(
        "[upstream]\nrequest_timeout_secs = 1\nmax_attempts = 1\n",
        &[],
    )
    .await;
    let response = app
        .client
        .post(app.url("/refundPurchase"))
        .header("x-fake-delay-ms", "3000")
        .body("purchase_id=SBX1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "outcome_unknown", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not sent again")
    );
    let read = app
        .client
        .get(app.url("/listProducts"))
        .header("x-fake-delay-ms", "3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.status(),
        504,
        "a read that timed out is simply unavailable"
    );
    assert_eq!(app.fake.requests().len(), 2, "nothing was retried");
}

#[tokio::test]
async fn extractor_rejections_use_the_json_error_shape() {
    let app = spawn_app().await;
    for path in ["/actions?intent=a&intent=b", "/actions/%FF"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(response.status().is_client_error(), "{path}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e})"));
        assert!(body["error"]["type"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn hostile_action_inputs_cost_little_and_answer_briefly() {
    let app = spawn_app().await;
    let started = Instant::now();
    let long_key = "x".repeat(60_000);
    let response = app
        .client
        .post(app.url(&format!("/actions/{long_key}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let input: serde_json::Map<String, Value> = (0..500)
        .map(|i| (format!("unknown_{i}"), json!(1)))
        .collect();
    let response = app
        .client
        .post(app.url("/actions/get-product"))
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["errors"].as_array().unwrap().len(), 50);
    assert_eq!(
        body["error"]["error_count"], 501,
        "500 unknown keys and the missing product_id"
    );
    assert!(app.fake.requests().is_empty());
}

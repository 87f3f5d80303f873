//! Upstream faults: reads are retried, writes and money calls never sent
//! twice once they may have reached Digistore24, 429s slow the connection,
//! a failing upstream trips the circuit breaker, load is shed.

use std::time::{Duration, Instant};

use ds24_proxy::sandbox::{self, Fault};
use serde_json::{Value, json};

use crate::helpers::{client, spawn_app, spawn_app_with};
use crate::sandbox::SandboxApp;

#[tokio::test]
async fn a_read_survives_one_reset_and_one_503() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    for fault in [Fault::Reset, Fault::Status(503), Fault::Status(502)] {
        app.sandbox.clear_recorded();
        app.sandbox
            .fail_next(Some("listProducts"), 1, fault.clone());
        let (status, body) = app.call("listProducts", "").await;
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_eq!(
            app.sandbox.calls("listProducts"),
            2,
            "{fault:?}: the upstream saw two calls"
        );
    }
    let (status, body) = app
        .action("get-product", &json!({"product_id": "10001"}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_refund_reaches_the_upstream_at_most_once_and_never_looks_successful() {
    let app = SandboxApp::start_with(
        "[upstream]\nrequest_timeout_secs = 1\n",
        &[("DS24_API_KEY", sandbox::WRITABLE_KEY)],
    )
    .await;
    for fault in [
        Fault::Reset,
        Fault::Status(503),
        Fault::Status(502),
        Fault::Delay(Duration::from_secs(3)),
    ] {
        for route in ["passthrough", "action"] {
            // A success between faults keeps the circuit breaker closed.
            assert_eq!(app.call("ping", "").await.0, 200);
            app.sandbox.clear_recorded();
            app.sandbox
                .fail_next(Some("refundPurchase"), 1, fault.clone());
            let (status, body) = if route == "passthrough" {
                app.call("refundPurchase", "purchase_id=SBX00003&force=Y")
                    .await
            } else {
                app.action(
                    "refund-purchase",
                    &json!({"purchase_id": "SBX00003", "force": true}),
                )
                .await
            };
            assert!(
                status >= 500,
                "{fault:?} via {route}: a false success ({status}): {body}"
            );
            assert_ne!(body["result"], "success", "{fault:?} via {route}");
            assert_eq!(
                app.sandbox.calls("refundPurchase"),
                1,
                "{fault:?} via {route}: the refund was sent again"
            );
            if matches!(fault, Fault::Reset | Fault::Delay(_)) {
                assert_eq!(
                    body["error"]["type"], "outcome_unknown",
                    "{fault:?} via {route}: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_write_is_retried_when_it_provably_never_left_the_proxy() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/call", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with("", &[("DS24_BASE_URL", base.as_str())]).await;
    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/refundPurchase"))
        .body("purchase_id=1")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["type"], "upstream_unavailable",
        "a connect failure is known not to have sent anything: {body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let metrics = client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "ds24_proxy_upstream_retries_total{function=\"refundPurchase\",reason=\"connect\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_at_least_that_long() {
    let app = spawn_app().await;
    let started = Instant::now();
    let response = app
        .client
        .get(app.url("/listTransactions"))
        .header("x-fake-fail-first", "1")
        .header("x-fake-fail-status", "429")
        .header("x-fake-retry-after", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}",
        started.elapsed()
    );
    assert_eq!(app.fake.requests().len(), 2);
}

#[tokio::test]
async fn five_hundred_concurrent_reads_complete() {
    let app = SandboxApp::start(sandbox::READONLY_KEY).await;
    let reads: Vec<_> = (0..500)
        .map(|i| {
            let request =
                client().get(app.url(&format!("/getProduct?product_id={}", 10001 + i % 5)));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), 200);
    }
    assert_eq!(app.sandbox.calls("getProduct"), 500);
}

#[tokio::test]
async fn a_failing_upstream_trips_the_breaker_so_calls_fail_fast() {
    let app = SandboxApp::start_with(
        "[upstream]\nmax_attempts = 1\n",
        &[("DS24_API_KEY", sandbox::WRITABLE_KEY)],
    )
    .await;
    app.sandbox.fail_next(None, 5, Fault::Status(503));
    for _ in 0..5 {
        let (status, _) = app.call("ping", "").await;
        assert_eq!(status, 503);
    }
    let (status, body) = app.call("ping", "").await;
    assert_eq!(status, 503);
    assert_eq!(
        body["error"]["type"], "upstream_unavailable",
        "the breaker should answer without calling: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker")
    );
    assert_eq!(
        app.sandbox.calls("ping"),
        5,
        "an open breaker still called the upstream"
    );
}

#[tokio::test]
async fn a_rate_limited_connection_waits_then_refuses_when_the_queue_is_full() {
    let toml = "[connections.main]\nrate_limit = { per_second = 2.0, burst = 1, max_waiters = 2, max_wait_ms = 5000 }\n";
    let app = spawn_app_with(toml, &[]).await;
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let request = app.client.get(app.url("/ping"));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap().unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "one immediately, two after waiting, one refused"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn requests_over_the_concurrency_cap_are_shed_with_503() {
    let app = spawn_app_with("[server]\nmax_concurrent_requests = 2\n", &[]).await;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .client
                .get(app.url("/ping"))
                .header("x-fake-delay-ms", "800");
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // Both slow calls hold their permits once the fake has them (a fixed
    // wait could end before they arrived on a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.fake.requests().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow calls never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = client().get(app.url("/ping")).send().await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded");
    assert_eq!(
        client()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "probes are never shed"
    );
    for s in slow {
        assert_eq!(s.await.unwrap().unwrap(), 200);
    }
}

#[tokio::test]
async fn a_429_makes_every_caller_of_the_connection_back_off() {
    let app = spawn_app_with("[upstream]\nmax_attempts = 1\n", &[]).await;
    let throttled = app
        .client
        .get(app.url("/listOrderforms"))
        .header("x-fake-fail-first", "1")
        .header("x-fake-fail-status", "429")
        .header("x-fake-retry-after", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), 429);
    let started = Instant::now();
    let other = app.client.get(app.url("/ping")).send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "another call went out {:?} after a 429 with Retry-After: 1",
        started.elapsed()
    );
}

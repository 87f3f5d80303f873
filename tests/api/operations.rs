//! Health, readiness, timeouts, unreachable upstreams, body limits, inbound
//! tokens and graceful shutdown, in-process.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_and_readyz_answer_when_every_connection_has_a_key() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["connections"]["main"]["state"], "ok");
    assert!(
        app.fake.requests().is_empty(),
        "probes must not call Digistore24"
    );
}

#[tokio::test]
async fn readyz_is_503_and_calls_explain_the_fix_while_a_connection_has_no_key() {
    let app = spawn_app_with("", &[("DS24_API_KEY", "")]).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["connections"]["main"]["state"], "needs_attention");
    let call = app
        .client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 503);
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["error"]["type"], "credential_missing");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DS24_API_KEY")
    );
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_gives_504_not_a_hang() {
    let app = spawn_app_with(
        "[upstream]\nrequest_timeout_secs = 1\nmax_attempts = 1\n",
        &[],
    )
    .await;
    let started = Instant::now();
    let response = app
        .client
        .get(app.url("/listProducts"))
        .header("x-fake-delay-ms", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "upstream_unavailable");
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_upstream_unavailable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/call", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with("", &[("DS24_BASE_URL", base.as_str())]).await;
    let response = app
        .client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "upstream_unavailable");
    assert!(!body["error"]["request_id"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_whether_declared_or_streamed() {
    let app = spawn_app_with("[server]\nmax_body_bytes = 1000\n", &[]).await;
    let declared = app
        .client
        .post(app.url("/createProduct"))
        .body(vec![b'a'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    let body: Value = declared.json().await.unwrap();
    assert_eq!(body["error"]["type"], "payload_too_large");
    assert!(app.fake.requests().is_empty());

    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 100])));
    let streamed = app
        .client
        .post(app.url("/createProduct"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);

    let fits = app
        .client
        .post(app.url("/createProduct"))
        .body(vec![b'c'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), 200);
}

#[tokio::test]
async fn with_tokens_configured_every_route_but_healthz_needs_a_bearer_token() {
    let token = "t0ken-0123456789abcdef0123456789";
    let app = spawn_app_with(
        "",
        &[(
            "DS24_PROXY_TOKEN",
            &format!("other-token-0123456789abcdef,{token}"),
        )],
    )
    .await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for request in [
        app.client.get(app.url("/readyz")),
        app.client.get(app.url("/ping")),
        app.client
            .get(app.url("/ping"))
            .bearer_auth("wrong-token-0123456789abcdef"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "unauthorized");
    }
    let ok = app
        .client
        .get(app.url("/ping"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = app.fake.single();
    assert!(
        seen.headers.get("authorization").is_none(),
        "the inbound token was forwarded"
    );
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_and_refuses_new_connections() {
    let mut app = spawn_app().await;
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let request = app
                .client
                .get(app.url("/listPurchases"))
                .header("x-fake-delay-ms", "800");
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // Shut down once all five are in flight (a fixed wait could end before
    // they connected on a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.fake.requests().len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the calls never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = crate::helpers::client().get(app.url("/ping")).send().await;
    assert!(
        fresh.is_err(),
        "a new connection was accepted during shutdown"
    );
    for request in in_flight {
        assert_eq!(request.await.unwrap().unwrap(), 200);
    }
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_wrong_method_on_an_own_route_gets_the_json_error_shape() {
    let app = spawn_app().await;
    let response = app.client.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "method_not_allowed");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with("[server]\nheader_read_timeout_secs = 1\n", &[]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn metrics_count_requests_by_route_function_connection_and_status() {
    let app = spawn_app().await;
    app.client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/ping"))
        .header("X-DS24-Connection", "nope")
        .send()
        .await
        .unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"ds24_proxy_requests_total{route="passthrough",function="listProducts",connection="main",status="200"} 2"#), "{text}");
    assert!(text.contains(r#"status="404""#), "{text}");
    assert!(
        text.contains("ds24_proxy_upstream_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("ds24_proxy_requests_in_flight"), "{text}");
    assert!(!text.contains(crate::helpers::TEST_KEY));
}

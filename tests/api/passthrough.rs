//! Pass-through: path forms, key injection, byte-for-byte query and body,
//! unchanged replies, request ids, connection choice.

use serde_json::Value;

use crate::helpers::{TEST_KEY, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_path_form_reaches_the_function_with_the_stored_key_in_the_header() {
    let cases = [
        ("/listProducts", "/api/call/listProducts"),
        ("/api/call/listProducts", "/api/call/listProducts"),
        (
            "/api/call/getProduct/format/json",
            "/api/call/getProduct/format/json",
        ),
        (
            "/api/call/999-PathKeySecret/json/listProducts",
            "/api/call/listProducts",
        ),
        ("/connections/main/listProducts", "/api/call/listProducts"),
        (
            "/connections/main/api/call/999-PathKeySecret/json/ping",
            "/api/call/ping",
        ),
        // A client whose base URL ends in `/`: empty segments collapse.
        ("/api/call//listProducts", "/api/call/listProducts"),
        ("//listProducts", "/api/call/listProducts"),
        (
            "/api/call//getProduct//format/json",
            "/api/call/getProduct/format/json",
        ),
    ];
    for (sent, expected) in cases {
        let app = spawn_app().await;
        let response = app.client.post(app.url(sent)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{sent}");
        let seen = app.fake.single();
        assert_eq!(seen.path, expected, "{sent}");
        assert_eq!(seen.headers["x-ds-api-key"], TEST_KEY, "{sent}");
        let everything = format!("{:?}{:?}{:?}", seen.path, seen.query, seen.headers);
        assert!(
            !everything.contains("PathKeySecret"),
            "{sent}: the key from the path was forwarded"
        );
    }
}

#[tokio::test]
async fn a_key_or_authorization_sent_by_the_client_never_reaches_the_upstream() {
    let app = spawn_app().await;
    app.client
        .get(app.url("/listProducts"))
        .header("X-DS-API-KEY", "666-ClientKey")
        .header("Authorization", "Bearer client-token")
        .header("Cookie", "session=abc")
        .header("Connection", "keep-alive, x-hop-secret")
        .header("X-Hop-Secret", "per-connection")
        .header("Proxy-Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    let seen = app.fake.single();
    assert_eq!(
        seen.headers
            .get_all("x-ds-api-key")
            .iter()
            .collect::<Vec<_>>(),
        [TEST_KEY]
    );
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("cookie").is_none());
    assert!(
        seen.headers.get("x-hop-secret").is_none(),
        "a header named in Connection was forwarded"
    );
    assert!(seen.headers.get("proxy-authorization").is_none());
}

#[tokio::test]
async fn upstream_connections_are_pooled_and_reused() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let response = app.client.get(app.url("/ping")).send().await.unwrap();
        response.bytes().await.unwrap();
    }
    let peers: std::collections::HashSet<_> = app.fake.requests().iter().map(|s| s.peer).collect();
    assert_eq!(
        peers.len(),
        1,
        "each call opened a new upstream connection: {peers:?}"
    );
}

#[tokio::test]
async fn query_and_form_body_arrive_byte_for_byte() {
    let app = spawn_app().await;
    let query =
        "search[role]=vendor&search[email]=a%2Bb%40x.de&q=a+b&name=%C3%BCml%C3%A4ut&list=1,2,3";
    let body = "data[name_intern]=T%C3%BCr+%26+Tor&data[tags][0]=a%2Bb&tracking[0][parcel_service]=dhl&note=a+b&plus=%2B";
    let response = app
        .client
        .post(app.url(&format!("/api/call/updateProduct?{query}")))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = app.fake.single();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.query.as_deref(), Some(query));
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert_eq!(
        seen.headers["content-length"],
        body.len().to_string().as_str()
    );
}

#[tokio::test]
async fn the_method_is_kept_and_a_bodyless_post_says_content_length_zero() {
    let app = spawn_app().await;
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client
            .request(m, app.url("/unregister"))
            .send()
            .await
            .unwrap();
    }
    let seen = app.fake.requests();
    assert_eq!(
        seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(),
        ["GET", "POST", "PUT", "DELETE", "PATCH"]
    );
    for s in &seen[1..] {
        assert_eq!(s.headers["content-length"], "0", "{}", s.method);
    }
}

#[tokio::test]
async fn the_upstream_status_headers_and_body_come_back_unchanged_including_error_envelopes() {
    let app = spawn_app().await;
    for (status, error) in [
        ("200", None),
        ("200", Some("4")),
        ("403", Some("5")),
        ("404", Some("4")),
        ("503", None),
    ] {
        let mut request = app
            .client
            .post(app.url("/getProduct"))
            .header("x-fake-status", status);
        if let Some(code) = error {
            request = request.header("x-fake-error", code);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_str(), status);
        assert_eq!(response.headers()["x-upstream-says"], "hello");
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let body: Value = response.json().await.unwrap();
        match error {
            Some(code) => {
                assert_eq!(body["result"], "error");
                assert_eq!(body["code"].to_string(), code);
            }
            None => assert_eq!(body["data"]["function"], "getProduct"),
        }
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_the_clients_own_is_kept() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/ping")).send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        generated.len(),
        36,
        "a UUID, not the upstream's own id: {generated}"
    );

    let response = app
        .client
        .get(app.url("/ping"))
        .header("x-request-id", "client-chosen-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-7");
    assert_eq!(
        app.fake.requests()[1].headers["x-request-id"],
        "client-chosen-7"
    );

    let response = app
        .client
        .get(app.url("/ping"))
        .header("x-ds24-connection", "nope")
        .header("x-request-id", "err-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "err-1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "err-1");
}

#[tokio::test]
async fn an_unknown_connection_is_refused_before_anything_is_sent() {
    let app = spawn_app().await;
    for request in [
        app.client
            .get(app.url("/ping"))
            .header("X-DS24-Connection", "shop9"),
        app.client.get(app.url("/connections/shop9/ping")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "unknown_connection");
        assert!(body["error"]["message"].as_str().unwrap().contains("shop9"));
    }
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn a_second_connection_is_chosen_by_header_or_prefix_and_uses_its_own_key() {
    let toml = "[connections.shop2]\ncredential = { source = \"env\", var = \"SHOP2_KEY\" }\n";
    let app = spawn_app_with(toml, &[("SHOP2_KEY", "5000-ShopTwoKey")]).await;
    app.client
        .get(app.url("/ping"))
        .header("X-DS24-Connection", "shop2")
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/connections/shop2/ping"))
        .send()
        .await
        .unwrap();
    app.client.get(app.url("/ping")).send().await.unwrap();
    let keys: Vec<_> = app
        .fake
        .requests()
        .iter()
        .map(|s| s.headers["x-ds-api-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["5000-ShopTwoKey", "5000-ShopTwoKey", TEST_KEY]);
    let response = app
        .client
        .get(app.url("/connections/shop2/ping"))
        .header("X-DS24-Connection", "main")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A read's body is not held back: the request head and the first bytes
/// reach Digistore24 while the client is still sending the rest.
#[tokio::test]
async fn a_read_body_streams_upstream_before_it_has_fully_arrived() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The client declares the length, as a form post does: the proxy could
    // wait for the whole body, and must not.
    const FIRST: usize = 1024;
    const TOTAL: usize = 16 * 1024;
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/call", upstream.local_addr().unwrap());
    let app = spawn_app_with("", &[("DS24_BASE_URL", &base)]).await;
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut socket, _) = upstream.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut head_tx = Some(head_tx);
        loop {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the proxy closed before the body ended");
            seen.extend_from_slice(&chunk[..n]);
            let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if seen.len() > end + 4
                && let Some(tx) = head_tx.take()
            {
                tx.send(String::from_utf8_lossy(&seen).into_owned()).ok();
            }
            if seen.len() >= end + 4 + TOTAL {
                break;
            }
        }
        let body = r#"{"result":"success","data":{}}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await.unwrap();
    });
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let request = app
        .client
        .post(app.url("/listPurchases"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", TOTAL.to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let call = tokio::spawn(request);
    body_tx
        .send(bytes::Bytes::from(format!(
            "page_size=10&search[note]={}",
            "x".repeat(FIRST - 26)
        )))
        .await
        .unwrap();
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), head_rx)
        .await
        .expect("nothing reached the upstream while the body was incomplete: it was buffered")
        .unwrap();
    assert!(head.starts_with("POST /api/call/listPurchases "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-ds-api-key: {TEST_KEY}").to_ascii_lowercase())
    );
    assert!(
        head.contains("page_size=10"),
        "the first bytes were not sent on"
    );
    body_tx
        .send(bytes::Bytes::from("x".repeat(TOTAL - FIRST)))
        .await
        .unwrap();
    drop(body_tx);
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
}

/// The request timeout covers the reply body too: an upstream that sends
/// its head and then trickles is cut off, and the client is not kept
/// waiting for ever.
#[tokio::test]
async fn a_reply_that_stalls_after_its_head_is_cut_off_at_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/call", upstream.local_addr().unwrap());
    let app = spawn_app_with(
        "[upstream]\nrequest_timeout_secs = 1\nmax_attempts = 1\n",
        &[("DS24_BASE_URL", &base)],
    )
    .await;
    tokio::spawn(async move {
        let (mut socket, _) = upstream.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 100000\r\n\r\nid,name\n")
            .await
            .unwrap();
        // Never more: hold the connection open.
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    });
    let started = std::time::Instant::now();
    let response = app
        .client
        .get(app.url("/listProducts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the head passes through");
    let body = response.bytes().await;
    assert!(body.is_err(), "a cut reply must not look complete");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the stalled reply was not cut at the 1 s timeout: {:?}",
        started.elapsed()
    );
}

/// What the official PHP connector needs to read an error instead of
/// calling the reply "invalid server response": `api_version` and
/// `result`, then `message` and an integer `code`.
fn assert_ds24_envelope(body: &Value, code: i64) {
    assert_eq!(body["result"], "error", "{body}");
    assert!(body["api_version"].is_string(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], body["error"]["message"], "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
}

#[tokio::test]
async fn the_proxys_own_errors_on_the_pass_through_carry_digistore24s_envelope() {
    let app = spawn_app().await;
    let cases = [
        // (request, status, type, code)
        (
            app.client
                .post(app.url("/api/call/listProducts"))
                .header("X-DS24-Connection", "shop9"),
            404,
            "unknown_connection",
            4,
        ),
        (
            app.client.post(app.url("/connections/shop9/listProducts")),
            404,
            "unknown_connection",
            4,
        ),
        (
            app.client.post(app.url("/api/call/listProducts/%2e%2e")),
            400,
            "bad_request",
            9,
        ),
        (
            app.client.post(app.url("/api/call/list-products")),
            400,
            "bad_request",
            9,
        ),
    ];
    for (request, status, kind, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert_ds24_envelope(&body, code);
    }
    assert!(app.fake.requests().is_empty());
    // Digistore24's own error reply passes unchanged: no proxy fields.
    let response = app
        .client
        .post(app.url("/api/call/getPurchase"))
        .header("x-fake-error", "4")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body.get("error").is_none(), "{body}");
    // Not on the proxy's own routes.
    let response = app
        .client
        .post(app.url("/actions/list-products"))
        .header("X-DS24-Connection", "shop9")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unknown_connection");
    assert!(
        body.get("result").is_none() && body.get("code").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_inbound_token_on_the_pass_through_reads_as_a_bad_key() {
    let app = spawn_app_with("", &[("DS24_PROXY_TOKEN", "tok-1-0123456789abcdef")]).await;
    let response = app
        .client
        .post(app.url("/api/call/listProducts"))
        .header("X-DS-API-KEY", "123-WhatAPhpClientSends")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unauthorized");
    assert_ds24_envelope(&body, 2);
    let events = app.client.get(app.url("/events")).send().await.unwrap();
    let body: Value = events.json().await.unwrap();
    assert!(body.get("result").is_none(), "{body}");
}

/// A refund whose reply broke off: `outcome_unknown` in the envelope, and
/// its repeat (answered from the ledger) reads exactly the same.
#[tokio::test]
async fn an_outcome_unknown_refund_and_its_replay_carry_the_same_envelope() {
    let app = spawn_app().await;
    let send = || {
        app.client
            .post(app.url("/api/call/refundPurchase"))
            .header("Idempotency-Key", "php-refund-1")
            .header("x-fake-fault", "reset-after-read")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("arg1=SBX1")
    };
    let first = send().send().await.unwrap();
    assert_eq!(first.status(), 502);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["error"]["type"], "outcome_unknown", "{first}");
    assert_ds24_envelope(&first, 11);
    let again = send().send().await.unwrap();
    assert_eq!(again.status(), 502);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the repeat differs from the first answer");
    assert_eq!(app.fake.requests().len(), 1, "the refund was sent twice");
}

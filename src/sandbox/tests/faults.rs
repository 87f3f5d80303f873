//! Scripted faults (`fail_next`) and call counts (`calls`). Resets are
//! checked on a real socket, the only place a connection can be dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{StatusCode, header};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::{call, call_as, data, post, sandbox, send, send_raw};
use crate::sandbox::{ErrorStyle, Fault, Sandbox, WRITABLE_KEY, serve};

#[tokio::test]
async fn an_error_fault_answers_the_envelope_with_that_code() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Error { code: 12 });

    let reply = call(&sandbox, "ping", "").await;

    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), 12);
    assert_eq!(reply.message(), "Too many requests to the server");
}

#[tokio::test]
async fn an_error_fault_follows_the_error_style() {
    let sandbox = sandbox();
    sandbox.set_error_style(ErrorStyle::Http200);
    sandbox.fail_next(None, 1, Fault::Error { code: 11 });

    let reply = call(&sandbox, "ping", "").await;

    assert_eq!((reply.status, reply.code()), (StatusCode::OK, 11));
}

#[tokio::test]
async fn a_status_fault_answers_that_status_with_a_plain_body() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Status(503));

    let reply = send_raw(&sandbox, post("/api/call/ping", Some(WRITABLE_KEY), "")).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(reply.text(), "503 Service Unavailable\n");
}

#[tokio::test]
async fn a_status_fault_with_no_real_status_becomes_500() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Status(1000));

    let reply = send_raw(&sandbox, post("/api/call/ping", Some(WRITABLE_KEY), "")).await;

    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_delay_fault_answers_normally_after_the_delay_and_records_at_once() {
    let sandbox = sandbox();
    let delay = Duration::from_millis(300);
    sandbox.fail_next(Some("ping"), 1, Fault::Delay(delay));
    let started = Instant::now();

    let pending = tokio::spawn({
        let sandbox = sandbox.clone();
        async move { call(&sandbox, "ping", "").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(sandbox.calls("ping"), 1, "recorded before the wait ends");
    assert!(!pending.is_finished());
    let reply = pending.await.expect("the call task");
    reply.data();
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn fail_next_fails_n_calls_then_answers_normally() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 2, Fault::Error { code: 11 });

    let first = call(&sandbox, "ping", "").await;
    let second = call(&sandbox, "listProducts", "").await;
    let third = call(&sandbox, "ping", "").await;

    assert_eq!(first.code(), 11);
    assert_eq!(second.code(), 11);
    third.data();
    assert_eq!(sandbox.calls("ping"), 2);
    assert_eq!(sandbox.calls("listProducts"), 1);
}

#[tokio::test]
async fn a_fault_for_one_function_leaves_the_others_alone() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("listProducts"), 1, Fault::Status(502));

    let other = call(&sandbox, "ping", "").await;
    let targeted = send_raw(
        &sandbox,
        post("/api/call/LISTPRODUCTS", Some(WRITABLE_KEY), ""),
    )
    .await;
    let after = call(&sandbox, "listProducts", "").await;

    other.data();
    assert_eq!(targeted.status, StatusCode::BAD_GATEWAY);
    after.data();
}

#[tokio::test]
async fn orders_queue_up_and_are_used_oldest_first() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("ping"), 1, Fault::Error { code: 12 });
    sandbox.fail_next(None, 1, Fault::Error { code: 11 });
    sandbox.fail_next(Some("ping"), 1, Fault::Error { code: 4 });

    let codes = [
        call(&sandbox, "ping", "").await.code(),
        call(&sandbox, "ping", "").await.code(),
        call(&sandbox, "ping", "").await.code(),
    ];

    assert_eq!(codes, [12, 11, 4]);
    call(&sandbox, "ping", "").await.data();
}

#[tokio::test]
async fn a_fault_comes_before_the_key_check_and_the_call_is_recorded() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Error { code: 11 });

    let reply = send(&sandbox, post("/api/call/ping", None, "a=1")).await;

    assert_eq!(reply.code(), 11);
    assert_eq!(sandbox.recorded()[0].params["a"], "1");
}

#[tokio::test]
async fn a_path_that_names_no_function_does_not_use_up_a_fault() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Error { code: 11 });

    let nowhere = send(&sandbox, post("/nowhere", Some(WRITABLE_KEY), "")).await;
    let ping = call(&sandbox, "ping", "").await;

    assert_eq!(nowhere.code(), 9);
    assert_eq!(ping.code(), 11);
}

#[tokio::test]
async fn clear_faults_forgets_the_orders_not_used_yet() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("ping"), 2, Fault::Error { code: 11 });
    sandbox.fail_next(None, 1, Fault::Status(503));

    assert_eq!(call(&sandbox, "ping", "").await.code(), 11);
    sandbox.clear_faults();

    call(&sandbox, "ping", "").await.data();
    call(&sandbox, "listProducts", "").await.data();
}

#[tokio::test]
async fn fail_next_with_zero_calls_fails_nothing() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 0, Fault::Error { code: 11 });

    call(&sandbox, "ping", "").await.data();
}

#[tokio::test]
async fn calls_counts_recorded_requests_of_a_function_ignoring_case() {
    let sandbox = sandbox();
    call(&sandbox, "ping", "").await;
    call(&sandbox, "PING", "").await;
    call_as(&sandbox, "1-wrong", "ping", "").await;
    call(&sandbox, "listBuyers", "").await;

    assert_eq!(sandbox.calls("ping"), 3);
    assert_eq!(sandbox.calls("PiNg"), 3);
    assert_eq!(sandbox.calls("listBuyers"), 1);
    assert_eq!(sandbox.calls("getBuyer"), 0);
    sandbox.clear_recorded();
    assert_eq!(sandbox.calls("ping"), 0);
}

#[tokio::test]
async fn a_reset_on_a_bare_router_fails_the_body() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Reset);

    let response = sandbox
        .router()
        .oneshot(post("/api/call/ping", Some(WRITABLE_KEY), ""))
        .await
        .expect("the router is infallible");

    assert!(response.into_body().collect().await.is_err());
}

// === on a real socket ===

/// Starts `serve` on a free port; the sender stops it.
async fn start(sandbox: &Sandbox) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, sandbox.clone(), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Writes `request` on a fresh connection and reads until the server
/// closes it; returns the bytes received and whether the read ended in an
/// error (a reset) rather than EOF.
async fn exchange(addr: SocketAddr, request: &str) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection");
    (received, read.is_err())
}

#[tokio::test]
async fn a_reset_drops_the_connection_before_any_response_byte() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("ping"), 1, Fault::Reset);
    let (addr, stop) = start(&sandbox).await;
    let head = format!("Host: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\n");

    let (reset, _) = exchange(
        addr,
        &format!(
            "POST /api/call/ping HTTP/1.1\r\n{head}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nnote=hi"
        ),
    )
    .await;
    let (normal, _) = exchange(
        addr,
        &format!("GET /api/call/ping HTTP/1.1\r\n{head}Connection: close\r\n\r\n"),
    )
    .await;
    let _ = stop.send(());

    assert!(reset.is_empty(), "{}", String::from_utf8_lossy(&reset));
    let normal = String::from_utf8_lossy(&normal);
    assert!(
        normal.starts_with("HTTP/1.1 200"),
        "the server lives on: {normal}"
    );
    assert_eq!(sandbox.calls("ping"), 2);
    assert_eq!(
        sandbox.recorded()[0].params["note"],
        "hi",
        "recorded in full"
    );
}

#[tokio::test]
async fn a_reset_sends_no_interim_100_continue_either() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Reset);
    let (addr, stop) = start(&sandbox).await;

    let (received, _) = exchange(
        addr,
        &format!(
            "POST /api/call/ping HTTP/1.1\r\nHost: {addr}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        ),
    )
    .await;
    let _ = stop.send(());

    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(sandbox.calls("ping"), 1);
}

#[tokio::test]
async fn a_delay_on_a_real_socket_still_answers() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Delay(Duration::from_millis(50)));
    let (addr, stop) = start(&sandbox).await;

    let (received, reset) = exchange(
        addr,
        &format!(
            "GET /api/call/ping HTTP/1.1\r\nHost: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    let _ = stop.send(());

    assert!(!reset);
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
}

// === faults that carry out the call, then break its reply ===

/// A refund of SBX00001 on a fresh connection, as raw HTTP/1.1.
fn raw_refund(addr: SocketAddr) -> String {
    let body = "purchase_id=SBX00001";
    format!(
        "POST /api/call/refundPurchase HTTP/1.1\r\nHost: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the refund of SBX00001 was carried out (asked of the same
/// sandbox through a bare router).
async fn refunded(sandbox: &Sandbox) -> bool {
    let purchase = data(sandbox, "getPurchase", "purchase_id=SBX00001").await;
    purchase["payment_status"] == "refunded"
}

/// The head (up to the blank line, lower-cased) and the rest.
fn split_head(received: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(received);
    let Some(end) = text.find("\r\n\r\n") else {
        panic!("no complete head: {text:?}");
    };
    (
        text[..end].to_ascii_lowercase(),
        received[end + 4..].to_vec(),
    )
}

/// Sends `request`, then reads for up to `wait`; returns what arrived and
/// how the read ended (`Some(true)`: an error, `Some(false)`: EOF, `None`:
/// still open when the wait was over).
async fn read_for(addr: SocketAddr, request: &str, wait: Duration) -> (Vec<u8>, Option<bool>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let ended = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return false,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(_) => return true,
            }
        }
    })
    .await
    .ok();
    (received, ended)
}

#[tokio::test]
async fn truncate_after_head_runs_the_call_then_sends_a_chunked_head_and_no_body() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("refundPurchase"), 1, Fault::TruncateAfterHead);
    let (addr, stop) = start(&sandbox).await;

    let (received, ended) = read_for(addr, &raw_refund(addr), Duration::from_secs(5)).await;
    let _ = stop.send(());

    let (head, body) = split_head(&received);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
    assert!(ended.is_some(), "the connection ends");
    assert_eq!(sandbox.calls("refundPurchase"), 1);
    assert!(refunded(&sandbox).await, "the refund was carried out");
}

#[tokio::test]
async fn truncate_mid_body_sends_part_of_the_real_answer_then_ends() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("refundPurchase"), 1, Fault::TruncateMidBody);
    let (addr, stop) = start(&sandbox).await;

    let (received, ended) = read_for(addr, &raw_refund(addr), Duration::from_secs(5)).await;
    let _ = stop.send(());

    let (head, body) = split_head(&received);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(ended.is_some(), "the connection ends");
    // One chunk, `<hex size>\r\n<data>\r\n`, and no last chunk (`0\r\n\r\n`).
    let body = String::from_utf8_lossy(&body).into_owned();
    let (size, rest) = body.split_once("\r\n").expect("a chunk");
    let size = usize::from_str_radix(size, 16).expect("a chunk size");
    assert_eq!(rest.len(), size + 2, "exactly one chunk: {body:?}");
    let part = &rest[..size];
    assert!(part.starts_with(r#"{"api_version":"1.2""#), "{part}");
    assert!(
        serde_json::from_str::<serde_json::Value>(part).is_err(),
        "only part of the answer: {part}"
    );
    assert_eq!(sandbox.calls("refundPurchase"), 1);
    assert!(refunded(&sandbox).await, "the refund was carried out");
}

#[tokio::test]
async fn stall_after_head_runs_the_call_sends_the_head_then_nothing() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("refundPurchase"), 1, Fault::StallAfterHead);
    let (addr, stop) = start(&sandbox).await;

    let (received, ended) = read_for(addr, &raw_refund(addr), Duration::from_millis(500)).await;
    let _ = stop.send(());

    let (head, body) = split_head(&received);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
    assert_eq!(ended, None, "still open, silent");
    assert_eq!(sandbox.calls("refundPurchase"), 1);
    assert!(refunded(&sandbox).await, "the refund was carried out");
}

#[tokio::test]
async fn reset_after_run_carries_out_the_call_then_resets_before_any_byte() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("refundPurchase"), 1, Fault::ResetAfterRun);
    let (addr, stop) = start(&sandbox).await;

    let (received, _) = exchange(addr, &raw_refund(addr)).await;
    let _ = stop.send(());

    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(sandbox.calls("refundPurchase"), 1);
    assert!(refunded(&sandbox).await, "the refund was carried out");
}

#[tokio::test]
async fn a_reset_before_the_run_leaves_the_state_alone() {
    let sandbox = sandbox();
    sandbox.fail_next(Some("refundPurchase"), 1, Fault::Reset);
    let (addr, stop) = start(&sandbox).await;

    let (received, _) = exchange(addr, &raw_refund(addr)).await;
    let _ = stop.send(());

    assert!(received.is_empty());
    assert_eq!(sandbox.calls("refundPurchase"), 1);
    assert!(!refunded(&sandbox).await, "Reset does not run the call");
}

#[tokio::test]
async fn on_a_bare_router_broken_replies_fail_or_stall_their_body_after_the_run() {
    for fault in [
        Fault::TruncateAfterHead,
        Fault::TruncateMidBody,
        Fault::StallAfterHead,
        Fault::ResetAfterRun,
    ] {
        let sandbox = sandbox();
        sandbox.fail_next(None, 1, fault.clone());

        let response = sandbox
            .router()
            .oneshot(post(
                "/api/call/refundPurchase",
                Some(WRITABLE_KEY),
                "purchase_id=SBX00001",
            ))
            .await
            .expect("the router is infallible");
        let body =
            tokio::time::timeout(Duration::from_millis(300), response.into_body().collect()).await;

        match fault {
            Fault::StallAfterHead => assert!(body.is_err(), "{fault:?}: the body stalls"),
            _ => assert!(
                matches!(body, Ok(Err(_))),
                "{fault:?}: the body fails: {body:?}"
            ),
        }
        assert!(
            refunded(&sandbox).await,
            "{fault:?}: the call was carried out"
        );
    }
}

// === the front server's 411 ===

#[tokio::test]
async fn a_post_without_a_length_gets_411_on_a_socket_and_is_recorded_as_rejected() {
    let sandbox = sandbox();
    sandbox.fail_next(None, 1, Fault::Error { code: 11 });
    let (addr, stop) = start(&sandbox).await;
    let head = format!("Host: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\nConnection: close\r\n");

    let (refused, _) = exchange(addr, &format!("POST /api/call/ping HTTP/1.1\r\n{head}\r\n")).await;
    let (with_zero, _) = exchange(
        addr,
        &format!("POST /api/call/ping HTTP/1.1\r\n{head}Content-Length: 0\r\n\r\n"),
    )
    .await;
    let (chunked, _) = exchange(
        addr,
        &format!(
            "PUT /api/call/ping HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    )
    .await;
    let (get, _) = exchange(addr, &format!("GET /api/call/ping HTTP/1.1\r\n{head}\r\n")).await;
    let (patch, _) = exchange(
        addr,
        &format!("PATCH /api/call/ping HTTP/1.1\r\n{head}\r\n"),
    )
    .await;
    let _ = stop.send(());

    let (head, body) = split_head(&refused);
    assert!(head.starts_with("http/1.1 411"), "{head}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), "411 Length Required\n");
    let (head, _) = split_head(&with_zero);
    assert!(
        head.starts_with("http/1.1 500"),
        "Content-Length: 0 is let through, and uses the fault: {head}"
    );
    assert!(split_head(&chunked).0.starts_with("http/1.1 200"));
    assert!(split_head(&get).0.starts_with("http/1.1 200"));
    assert!(split_head(&patch).0.starts_with("http/1.1 411"));
    assert_eq!(sandbox.calls("ping"), 5, "refused requests count too");
    let rejected = sandbox.rejected();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].method, http::Method::POST);
    assert_eq!(rejected[0].function, "ping");
    assert_eq!(rejected[0].rejected, Some(StatusCode::LENGTH_REQUIRED));
    assert_eq!(rejected[1].method, http::Method::PATCH);
    assert!(
        sandbox.recorded()[1].rejected.is_none(),
        "a request the API handled is not marked"
    );
}

#[tokio::test]
async fn a_bare_router_has_no_front_server_and_takes_a_post_without_a_length() {
    let sandbox = sandbox();
    let request = http::Request::post("/api/call/ping")
        .header("X-DS-API-KEY", WRITABLE_KEY)
        .body(axum::body::Body::empty())
        .expect("a valid request");

    let reply = send(&sandbox, request).await;

    reply.data();
    assert!(sandbox.rejected().is_empty());
}

//! Nothing but the configured upstream is ever reached: hostile request
//! targets are refused or cannot change the destination. Raw TCP, because a
//! well-behaved client would normalise these requests before sending.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::spawn_app;

/// Sends `request` verbatim and returns the status line and the whole reply.
async fn raw(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut reply),
    )
    .await;
    let text = String::from_utf8_lossy(&reply).into_owned();
    (text.lines().next().unwrap_or_default().to_owned(), text)
}

#[tokio::test]
async fn hostile_request_targets_are_refused_and_never_reach_the_upstream() {
    let app = spawn_app().await;
    let targets = [
        "http://evil.example/listProducts",
        "/../listProducts",
        "/api/call/../../admin",
        "/%2e%2e/%2e%2e/admin",
        "/%2E%2E%2fadmin",
        "/listProducts/..%2f..%2fadmin",
        "//evil.example/listProducts",
        "/api/call//evil.example/x",
        "/a/%252e%252e/b",
        "/@evil.example/x",
        "/evil.example:443/x",
    ];
    for target in targets {
        let (status, text) = raw(
            app.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 400 "), "{target}: {status}");
        assert!(text.contains("\"bad_request\""), "{target}: {text}");
    }
    let (status, _) = raw(
        app.addr,
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    )
    .await;
    assert!(
        status.contains(" 400 ") || status.contains(" 405 "),
        "CONNECT: {status}"
    );
    assert!(
        app.fake.requests().is_empty(),
        "the upstream saw {:?}",
        app.fake
            .requests()
            .iter()
            .map(|s| &s.path)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_host_header_cannot_change_the_destination() {
    let app = spawn_app().await;
    let (status, _) = raw(app.addr, "GET /listProducts HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n").await;
    assert!(status.contains(" 200 "), "{status}");
    let seen = app.fake.single();
    assert_eq!(seen.path, "/api/call/listProducts");
    assert_eq!(seen.headers["host"], app.fake.addr.to_string().as_str());
}

#[tokio::test]
async fn a_header_value_with_cr_or_lf_is_refused() {
    let app = spawn_app().await;
    for injected in [
        "X-Note: a\rX-DS-API-KEY: 1-evil",
        "X-Note: a\nX-Other: b\r\nX-More:\x00c",
    ] {
        let (status, _) = raw(app.addr, &format!("GET /listProducts HTTP/1.1\r\nHost: localhost\r\n{injected}\r\nConnection: close\r\n\r\n")).await;
        assert!(
            status.contains(" 400 "),
            "the parser must refuse with 400, not drop the connection: {status:?}"
        );
    }
    assert!(app.fake.requests().is_empty());
}

#[tokio::test]
async fn the_upstream_only_ever_sees_paths_under_api_call() {
    let app = spawn_app().await;
    for target in [
        "/ping",
        "/api/call/ping",
        "/x/y/z",
        "/api/call/a/json/b",
        "/connections/main/api/call/ping/format/json",
        "/api/call/%41bc",
    ] {
        let _ = raw(
            app.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
    }
    let seen = app.fake.requests();
    assert!(!seen.is_empty());
    for s in seen {
        assert!(s.path.starts_with("/api/call/"), "{}", s.path);
    }
}

use axum::body::Body;
use http::{Request, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{call, post, sandbox, send};
use crate::sandbox::{WRITABLE_KEY, serve};

#[tokio::test]
async fn a_success_carries_the_full_envelope_as_json() {
    let reply = call(&sandbox(), "ping", "").await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    let keys: Vec<&str> = reply
        .json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "api_version",
            "current_time",
            "runtime_seconds",
            "timezone",
            "utc_offset",
            "result",
            "data"
        ]
    );
    assert_eq!(reply.json["api_version"], "1.2");
    assert!(reply.json["runtime_seconds"].is_f64());
    let time = reply.json["current_time"].as_str().unwrap_or_default();
    assert_eq!(time.len(), 19, "YYYY-MM-DD HH:MM:SS, got {time}");
    assert_eq!(&time[10..11], " ");
}

#[tokio::test]
async fn an_error_carries_code_and_message_but_no_data() {
    let reply = call(&sandbox(), "getProduct", "").await;

    let object = reply.json.as_object().cloned().unwrap_or_default();
    assert_eq!(object["result"], "error");
    assert_eq!(object["code"], 3);
    assert!(!object.contains_key("data"));
    assert!(
        reply.message().contains("product_id"),
        "{}",
        reply.message()
    );
}

#[tokio::test]
async fn the_format_json_path_and_get_with_a_query_work() {
    let sandbox = sandbox();
    let get = Request::get("/api/call/getProduct/format/json?product_id=10002")
        .header("X-DS-API-KEY", WRITABLE_KEY)
        .body(Body::empty())
        .expect("request");

    let reply = send(&sandbox, get).await;

    assert_eq!(reply.data()["product"]["id"], "10002");
}

#[tokio::test]
async fn an_unknown_function_is_code_9_naming_it() {
    let reply = call(&sandbox(), "globalSettings", "").await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), 9);
    assert_eq!(
        reply.message(),
        "Invalid API function called: globalSettings()"
    );
}

#[tokio::test]
async fn function_names_ignore_case_as_php_does() {
    call(&sandbox(), "LISTPRODUCTS", "").await.data();
}

#[tokio::test]
async fn any_other_path_is_a_404_with_code_9() {
    for path in [
        "/",
        "/api/call/",
        "/api/call/a/b",
        "/api/call/ping/format/xml",
        "/healthz",
    ] {
        let reply = send(&sandbox(), post(path, Some(WRITABLE_KEY), "")).await;

        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.code(), 9, "{path}");
    }
}

#[tokio::test]
async fn a_body_over_one_mib_is_code_3_with_413() {
    let body = format!("data[note]={}", "x".repeat(1024 * 1024));

    let sandbox = sandbox();

    let reply = call(&sandbox, "ping", &body).await;

    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), 3);
    assert_eq!(
        sandbox.recorded()[0].body.len(),
        1024 * 1024,
        "the first MiB is kept"
    );
}

#[tokio::test]
async fn the_fail_header_forces_an_error_code() {
    let request = Request::post("/api/call/ping")
        .header("X-DS-API-KEY", WRITABLE_KEY)
        .header("X-DS24-Sandbox-Fail", "12")
        .body(Body::empty())
        .expect("request");

    let reply = send(&sandbox(), request).await;

    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), 12);
}

#[tokio::test]
async fn a_json_body_is_accepted_as_parameters() {
    let request = Request::post("/api/call/getProduct")
        .header("X-DS-API-KEY", WRITABLE_KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"product_id": 10003}"#))
        .expect("request");

    let reply = send(&sandbox(), request).await;

    assert_eq!(reply.data()["product"]["currency"], "EUR");
}

#[tokio::test]
async fn serve_answers_on_a_real_socket_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, sandbox(), async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/call/ping HTTP/1.1\r\nHost: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let _ = stop.send(());

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""result":"success""#), "{response}");
    assert!(server.await.expect("server task").is_ok());
}

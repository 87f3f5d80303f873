use axum::body::Body;
use http::{Method, Request, header};
use serde_json::json;

use super::{call, post, sandbox, send};
use crate::sandbox::WRITABLE_KEY;

#[tokio::test]
async fn recording_keeps_path_query_and_body_byte_for_byte() {
    let sandbox = sandbox();
    let body: &[u8] = b"data[name]=Caf%C3%A9+au+lait&x=%2B1&raw=\xff";
    let request = Request::post("/api/call/updateProduct/format/json?product_id=10001&a%5B%5D=1+2")
        .header("X-DS-API-KEY", WRITABLE_KEY)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-Trace", "abc")
        .body(Body::from(body.to_vec()))
        .expect("request");

    send(&sandbox, request).await;

    let recorded = sandbox.recorded();
    assert_eq!(recorded.len(), 1);
    let seen = &recorded[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, "/api/call/updateProduct/format/json");
    assert_eq!(seen.query.as_deref(), Some("product_id=10001&a%5B%5D=1+2"));
    assert_eq!(&seen.body[..], body);
    assert_eq!(seen.headers["x-trace"], "abc");
    assert_eq!(seen.headers["x-ds-api-key"], WRITABLE_KEY);
    assert_eq!(seen.function, "updateProduct");
    assert_eq!(seen.params["data"], json!({"name": "Café au lait"}));
    assert_eq!(seen.params["x"], "+1");
    assert_eq!(seen.params["a"], json!(["1 2"]));
}

#[tokio::test]
async fn rejected_requests_are_recorded_too() {
    let sandbox = sandbox();

    send(&sandbox, post("/nowhere?x=1", None, "a=b")).await;
    send(&sandbox, post("/api/call/listBuyers", None, "")).await;
    call(&sandbox, "noSuchThing", "").await;

    let recorded = sandbox.recorded();
    let seen: Vec<(&str, &str)> = recorded
        .iter()
        .map(|r| (r.path.as_str(), r.function.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("/nowhere", ""),
            ("/api/call/listBuyers", "listBuyers"),
            ("/api/call/noSuchThing", "noSuchThing"),
        ]
    );
    assert_eq!(recorded[0].params, json!({"x": "1", "a": "b"}));
}

#[tokio::test]
async fn the_function_is_recorded_under_its_canonical_name() {
    let sandbox = sandbox();
    let path = format!("/api/call/{WRITABLE_KEY}/json/getuserinfo");

    send(&sandbox, post(&path, None, "")).await;

    assert_eq!(sandbox.recorded()[0].function, "getUserInfo");
}

#[tokio::test]
async fn clones_share_recordings_and_clearing_empties_them() {
    let sandbox = sandbox();
    let handle = sandbox.clone();

    call(&sandbox, "ping", "").await;
    call(&sandbox, "ping", "").await;
    assert_eq!(handle.recorded().len(), 2);

    handle.clear_recorded();

    assert!(sandbox.recorded().is_empty());
}

#[tokio::test]
async fn an_empty_query_is_recorded_as_none() {
    let sandbox = sandbox();

    call(&sandbox, "ping", "").await;

    let seen = &sandbox.recorded()[0];
    assert_eq!(seen.query, None);
    assert!(seen.body.is_empty());
    assert_eq!(seen.params, json!({}));
}

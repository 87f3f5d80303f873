use axum::body::Body;
use http::{Request, StatusCode};

use super::{call, call_as, post, sandbox, send};
use crate::sandbox::{ErrorStyle, READONLY_KEY, Sandbox, SandboxOptions, WRITABLE_KEY};

fn sandbox_200() -> Sandbox {
    Sandbox::new(SandboxOptions {
        error_style: ErrorStyle::Http200,
    })
}

#[tokio::test]
async fn a_missing_key_is_code_10_with_401() {
    let reply = send(&sandbox(), post("/api/call/listProducts", None, "")).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), 10);
    assert_eq!(reply.message(), "Api key is missing.");
}

#[tokio::test]
async fn an_unknown_key_is_code_2_with_401() {
    let reply = call_as(&sandbox(), "1000-WrongSecret", "listProducts", "").await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), 2);
    assert_eq!(reply.message(), "Invalid connection parameters.");
}

#[tokio::test]
async fn in_200_style_auth_errors_keep_their_codes_but_answer_200() {
    let sandbox = sandbox_200();

    let missing = send(&sandbox, post("/api/call/listProducts", None, "")).await;
    let wrong = call_as(&sandbox, "1-x", "listProducts", "").await;

    assert_eq!((missing.status, missing.code()), (StatusCode::OK, 10));
    assert_eq!((wrong.status, wrong.code()), (StatusCode::OK, 2));
}

#[tokio::test]
async fn the_style_header_overrides_the_sandbox_style_per_request() {
    let to_200 = Request::post("/api/call/listProducts")
        .header("X-DS24-Sandbox-Error-Style", "200")
        .body(Body::empty())
        .expect("request");
    let to_4xx = Request::post("/api/call/listProducts")
        .header("X-DS24-Sandbox-Error-Style", "4xx")
        .body(Body::empty())
        .expect("request");

    let reply_200 = send(&sandbox(), to_200).await;
    let reply_4xx = send(&sandbox_200(), to_4xx).await;

    assert_eq!((reply_200.status, reply_200.code()), (StatusCode::OK, 10));
    assert_eq!(
        (reply_4xx.status, reply_4xx.code()),
        (StatusCode::UNAUTHORIZED, 10)
    );
}

#[tokio::test]
async fn set_error_style_changes_later_answers() {
    let sandbox = sandbox();
    sandbox.set_error_style(ErrorStyle::Http200);

    let reply = send(&sandbox, post("/api/call/ping", None, "")).await;

    assert_eq!((reply.status, reply.code()), (StatusCode::OK, 10));
}

#[tokio::test]
async fn the_readonly_key_is_refused_a_write_with_code_5_and_403() {
    let sandbox = sandbox();

    let reply = call_as(&sandbox, READONLY_KEY, "createProduct", "data[name]=x").await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), 5);
    assert_eq!(reply.message(), "Permission denied.");
    let products = call(&sandbox, "listProducts", "").await;
    assert_eq!(
        products.data()["products"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn the_readonly_key_may_read() {
    let reply = call_as(&sandbox(), READONLY_KEY, "listPurchases", "").await;

    reply.data();
}

#[tokio::test]
async fn the_legacy_path_key_is_used_when_no_header_is_sent() {
    let path = format!("/api/call/{WRITABLE_KEY}/json/getUserInfo");

    let reply = send(&sandbox(), post(&path, None, "")).await;

    assert_eq!(reply.data()["api_key_id"], "1000");
}

#[tokio::test]
async fn the_header_key_wins_over_the_path_key() {
    let path = format!("/api/call/{WRITABLE_KEY}/json/ping");

    let reply = send(&sandbox(), post(&path, Some("2-wrong"), "")).await;

    assert_eq!(reply.code(), 2);
}

#[tokio::test]
async fn get_user_info_tells_which_key_called() {
    let sandbox = sandbox();

    let writable = call_as(&sandbox, WRITABLE_KEY, "getUserInfo", "").await;
    let readonly = call_as(&sandbox, READONLY_KEY, "getUserInfo", "").await;

    assert_eq!(writable.data()["permissions"], "writable");
    assert_eq!(readonly.data()["permissions"], "readonly");
    assert_eq!(readonly.data()["api_key_id"], "1001");
}

#[test]
fn error_styles_parse_from_their_names() {
    assert_eq!("4xx".parse(), Ok(ErrorStyle::Http4xx));
    assert_eq!("HTTP4XX".parse(), Ok(ErrorStyle::Http4xx));
    assert_eq!("200".parse(), Ok(ErrorStyle::Http200));
    assert_eq!("http200".parse(), Ok(ErrorStyle::Http200));
    assert!("500".parse::<ErrorStyle>().is_err());
    assert_eq!(ErrorStyle::default(), ErrorStyle::Http4xx);
}

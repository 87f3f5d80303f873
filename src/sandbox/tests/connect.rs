//! The connect flow through the API: `requestApiKey`, `retrieveApiKey`,
//! `unregister`, and who may call them. The page itself is in `approval.rs`.

use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::Value;

use super::{FORM, call_as, sandbox, send, send_raw};
use crate::sandbox::{DEVELOPER_KEY, READONLY_KEY, Sandbox, WRITABLE_KEY};

/// A `requestApiKey` body with valid URLs and the given level.
fn request_body(permissions: &str) -> String {
    format!(
        "permissions={permissions}&return_url=https%3A%2F%2Fapp.example.com%2Fdone\
         &site_url=https%3A%2F%2Fapp.example.com&comment=Connect+Example+App"
    )
}

/// Calls `requestApiKey` with the developer key; returns the approval page
/// URL and the token.
pub(super) async fn request_key(sandbox: &Sandbox, permissions: &str) -> (String, String) {
    let reply = call_as(
        sandbox,
        DEVELOPER_KEY,
        "requestApiKey",
        &request_body(permissions),
    )
    .await;
    let data = reply.data();
    let text = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
    (text("request_url"), text("request_token"))
}

/// The `data` of `retrieveApiKey` for `token`.
pub(super) async fn retrieve(sandbox: &Sandbox, token: &str) -> Value {
    let reply = call_as(
        sandbox,
        DEVELOPER_KEY,
        "retrieveApiKey",
        &format!("token={token}"),
    )
    .await;
    reply.data().clone()
}

/// Runs the flow with the test methods and returns the minted key.
pub(super) async fn minted_key(sandbox: &Sandbox, permissions: &str) -> String {
    let (_, token) = request_key(sandbox, permissions).await;
    assert!(sandbox.approve(&token));
    let data = retrieve(sandbox, &token).await;
    data["api_key"].as_str().unwrap_or_default().to_owned()
}

/// The path part of an approval URL (`http://host/sandbox/...`).
pub(super) fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/')
        .map_or(String::new(), |i| rest[i..].to_owned())
}

/// A well-formed minted key: `<id from 2000 up>-<40 letters/digits>`.
fn assert_minted(key: &str) {
    let (id, secret) = key.split_once('-').unwrap_or_default();
    assert!(id.parse::<u64>().is_ok_and(|id| id >= 2000), "{key}");
    assert_eq!(secret.len(), 40, "{key}");
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()), "{key}");
}

#[tokio::test]
async fn the_full_flow_mints_a_key_that_works_and_can_be_retrieved_only_once() {
    let sandbox = sandbox();
    let request = Request::post("/api/call/requestApiKey")
        .header("X-DS-API-KEY", DEVELOPER_KEY)
        .header(header::HOST, "127.0.0.1:7425")
        .header(header::CONTENT_TYPE, FORM)
        .body(Body::from(request_body("writable")))
        .expect("request");

    let requested = send(&sandbox, request).await;
    let url = requested.data()["request_url"].as_str().unwrap_or_default();
    let token = requested.data()["request_token"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        url,
        format!("http://127.0.0.1:7425/sandbox/approve/{token}")
    );
    let page = send_raw(&sandbox, get(&path_of(url))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(">Approve</button>"), "{}", page.text());
    assert!(page.text().contains(">Abort</button>"), "{}", page.text());
    let decided = send_raw(&sandbox, decide(&path_of(url), "approve")).await;
    assert_eq!(decided.status, StatusCode::OK);
    assert!(decided.text().contains("close this window"));

    let first = retrieve(&sandbox, token).await;
    let key = first["api_key"].as_str().unwrap_or_default();
    assert_eq!(first["request_status"], "completed");
    assert_minted(key);
    let info = call_as(&sandbox, key, "getUserInfo", "").await;
    assert_eq!(info.data()["permissions"], "writable");
    assert_eq!(info.data()["api_key_id"], key.split('-').next().unwrap());
    let again = retrieve(&sandbox, token).await;
    assert_eq!(again["request_status"], "completed");
    assert_eq!(again["api_key"], "");
    let note = again["note"].as_str().unwrap_or_default();
    assert!(note.contains("already used"), "{note}");
}

#[tokio::test]
async fn a_minted_key_may_write_when_it_was_asked_for_writable() {
    let sandbox = sandbox();
    let key = minted_key(&sandbox, "writable").await;

    let reply = call_as(&sandbox, &key, "createProduct", "data[name]=Minted").await;

    assert!(!reply.data()["product_id"].is_null());
}

#[tokio::test]
async fn both_spellings_of_read_only_mint_a_readonly_key() {
    for permissions in ["readonly", "read-only"] {
        let sandbox = sandbox();
        let key = minted_key(&sandbox, permissions).await;

        let info = call_as(&sandbox, &key, "getUserInfo", "").await;
        let write = call_as(&sandbox, &key, "createProduct", "data[name]=x").await;

        assert_eq!(info.data()["permissions"], "readonly", "{permissions}");
        assert_eq!(write.code(), 5, "{permissions}");
    }
}

#[tokio::test]
async fn a_completed_request_may_carry_a_thankyou_page_key() {
    let sandbox = sandbox();
    let (_, token) = request_key(&sandbox, "writable").await;
    sandbox.approve(&token);

    let data = retrieve(&sandbox, &token).await;

    let key = data["thankyou_page_key"].as_str().unwrap_or_default();
    assert!(!key.is_empty(), "{data}");
}

#[tokio::test]
async fn an_undecided_request_is_pending_without_a_key() {
    let sandbox = sandbox();
    let (_, token) = request_key(&sandbox, "writable").await;

    let data = retrieve(&sandbox, &token).await;

    assert_eq!(data["request_status"], "pending");
    assert_eq!(data["api_key"], "");
    assert!(!data["note"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn an_aborted_request_gives_no_key_now_or_later() {
    let sandbox = sandbox();
    let (url, token) = request_key(&sandbox, "writable").await;

    let decided = send_raw(&sandbox, decide(&path_of(&url), "abort")).await;
    let first = retrieve(&sandbox, &token).await;
    let second = retrieve(&sandbox, &token).await;

    assert_eq!(decided.status, StatusCode::OK);
    for data in [first, second] {
        assert_eq!(data["request_status"], "aborted");
        assert_eq!(data["api_key"], "");
        assert!(
            data["note"]
                .as_str()
                .unwrap_or_default()
                .contains("aborted")
        );
    }
}

#[tokio::test]
async fn an_unknown_token_gives_no_key_and_says_why() {
    let data = retrieve(&sandbox(), "NoSuchToken").await;

    assert_eq!(data["request_status"], "aborted");
    assert_eq!(data["api_key"], "");
    let note = data["note"].as_str().unwrap_or_default();
    assert!(note.contains("Unknown or invalid token"), "{note}");
}

#[tokio::test]
async fn tokens_are_long_random_and_different_each_time() {
    let sandbox = sandbox();

    let (_, first) = request_key(&sandbox, "writable").await;
    let (_, second) = request_key(&sandbox, "writable").await;

    assert_ne!(first, second);
    assert!(first.len() >= 32, "{first}");
    assert!(first.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");
}

#[tokio::test]
async fn the_developer_key_is_refused_by_every_other_function() {
    let sandbox = sandbox();
    for function in ["getUserInfo", "ping", "listProducts", "unregister"] {
        let reply = call_as(&sandbox, DEVELOPER_KEY, function, "").await;

        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{function}");
        assert_eq!(reply.code(), 5, "{function}");
    }
}

#[tokio::test]
async fn normal_keys_are_refused_by_the_connect_functions() {
    let sandbox = sandbox();
    for key in [WRITABLE_KEY, READONLY_KEY] {
        let request = call_as(&sandbox, key, "requestApiKey", &request_body("writable")).await;
        let retrieve = call_as(&sandbox, key, "retrieveApiKey", "token=x").await;

        assert_eq!((request.status, request.code()), (StatusCode::FORBIDDEN, 5));
        assert_eq!(retrieve.code(), 5);
    }
    assert!(sandbox.pending_tokens().is_empty());
}

#[tokio::test]
async fn request_api_key_refuses_urls_that_are_not_public_https() {
    let sandbox = sandbox();
    let cases = [
        "permissions=writable&return_url=http%3A%2F%2Fapp.example.com%2F",
        "permissions=writable&return_url=https%3A%2F%2Flocalhost%2Fdone",
        "permissions=writable&return_url=not+a+url",
        "permissions=writable&return_url=https%3A%2F%2Fa.example%2F&cancel_url=http%3A%2F%2Fa.example%2F",
        "permissions=writable&return_url=https%3A%2F%2Fa.example%2F&site_url=http%3A%2F%2F127.0.0.1%2F",
    ];
    for body in cases {
        let reply = call_as(&sandbox, DEVELOPER_KEY, "requestApiKey", body).await;

        assert_eq!(reply.code(), 3, "{body}");
        assert_eq!(reply.message(), "Please only use secure URLs with https://");
    }
    assert!(sandbox.pending_tokens().is_empty());
}

#[tokio::test]
async fn request_api_key_needs_a_known_level_and_a_return_url() {
    let sandbox = sandbox();
    let cases = [
        ("return_url=https%3A%2F%2Fa.example%2F", "permissions"),
        (
            "permissions=admin&return_url=https%3A%2F%2Fa.example%2F",
            "permissions",
        ),
        ("permissions=writable", "return_url"),
    ];
    for (body, parameter) in cases {
        let reply = call_as(&sandbox, DEVELOPER_KEY, "requestApiKey", body).await;

        assert_eq!(reply.code(), 3, "{body}");
        assert!(reply.message().contains(parameter), "{}", reply.message());
    }
}

#[tokio::test]
async fn retrieve_api_key_needs_a_token() {
    let reply = call_as(&sandbox(), DEVELOPER_KEY, "retrieveApiKey", "").await;

    assert_eq!(reply.code(), 3);
    assert!(reply.message().contains("token"));
}

#[tokio::test]
async fn the_request_url_points_at_the_host_the_request_was_sent_to() {
    let sandbox = sandbox();
    let with_host = Request::post("/api/call/requestApiKey")
        .header("X-DS-API-KEY", DEVELOPER_KEY)
        .header(header::HOST, "sandbox.test:9999")
        .header(header::CONTENT_TYPE, FORM)
        .body(Body::from(request_body("writable")))
        .expect("request");

    let reply = send(&sandbox, with_host).await;
    let (default_url, _) = request_key(&sandbox, "writable").await;

    let url = reply.data()["request_url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("http://sandbox.test:9999/sandbox/approve/"),
        "{url}"
    );
    assert!(
        default_url.starts_with("http://127.0.0.1:7425/sandbox/approve/"),
        "{default_url}"
    );
}

#[tokio::test]
async fn unregister_deletes_a_minted_key_which_then_gets_code_2() {
    let sandbox = sandbox();
    let key = minted_key(&sandbox, "readonly").await;

    let reply = call_as(&sandbox, &key, "unregister", "").await;
    let after = call_as(&sandbox, &key, "ping", "").await;

    assert_eq!(reply.data()["modified"], "Y");
    assert!(!reply.data()["note"].as_str().unwrap_or_default().is_empty());
    assert_eq!((after.status, after.code()), (StatusCode::UNAUTHORIZED, 2));
}

#[tokio::test]
async fn unregister_refuses_keys_that_were_not_created_interactively() {
    let sandbox = sandbox();
    for key in [WRITABLE_KEY, READONLY_KEY] {
        let reply = call_as(&sandbox, key, "unregister", "").await;
        let still = call_as(&sandbox, key, "ping", "").await;

        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, 5));
        assert!(reply.message().contains("not created interactively"));
        still.data();
    }
}

/// A browser's `GET` of the approval page.
pub(super) fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

/// A browser's form `POST` of one of the page's buttons.
pub(super) fn decide(path: &str, decision: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("decision={decision}")))
        .expect("request")
}

//! One test per quirk of the real API that API-FACTS documents and the
//! sandbox reproduces; each name starts with `quirk_` and its comment
//! names the section. (More detail on several lives in `routes.rs`,
//! `auth.rs`, `params.rs` and `faults.rs`.)

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{call, call_as, data, post, sandbox, send};
use crate::sandbox::{ErrorStyle, READONLY_KEY, WRITABLE_KEY, serve};

/// The envelope fields every reply carries, success and error alike.
const ENVELOPE: [&str; 6] = [
    "api_version",
    "current_time",
    "runtime_seconds",
    "timezone",
    "utc_offset",
    "result",
];

fn assert_envelope(json: &Value) {
    for field in ENVELOPE {
        assert!(json.get(field).is_some(), "{field} missing: {json}");
    }
    assert_eq!(json["api_version"], "1.2");
    assert!(json["runtime_seconds"].is_number(), "{json}");
    let time = json["current_time"].as_str().unwrap_or_default();
    assert_eq!(time.len(), 19, "YYYY-MM-DD HH:MM:SS, got {time}");
    assert_eq!(json["timezone"], "UTC");
    assert_eq!(json["utc_offset"], "0");
}

/// §1: a POST with no body and no `Content-Length` is refused by the front
/// server with `411 Length Required` (on a socket; a bare router has no
/// front server).
#[tokio::test]
async fn quirk_411_for_a_body_less_post_without_a_length() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let sandbox = sandbox();
    tokio::spawn(serve(listener, sandbox.clone(), std::future::pending()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /api/call/unregister HTTP/1.1\r\nHost: {addr}\r\nX-DS-API-KEY: {WRITABLE_KEY}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");

    assert!(reply.starts_with("HTTP/1.1 411"), "{reply}");
    assert_eq!(sandbox.rejected().len(), 1);
}

/// §1: `/api/call/{function}/format/json` is the same call as
/// `/api/call/{function}`.
#[tokio::test]
async fn quirk_the_format_json_suffix_is_accepted() {
    let reply = send(
        &sandbox(),
        post(
            "/api/call/getProduct/format/json",
            Some(WRITABLE_KEY),
            "product_id=10001",
        ),
    )
    .await;

    assert_eq!(reply.data()["product"]["id"], "10001");
}

/// §1: the legacy `/api/call/{KEY}/json/{function}` of the 2015/2017
/// connectors, key in the path, no header.
#[tokio::test]
async fn quirk_the_legacy_key_in_path_form_is_accepted() {
    let path = format!("/api/call/{READONLY_KEY}/json/getProduct");

    let reply = send(&sandbox(), post(&path, None, "product_id=10002")).await;

    assert_eq!(reply.data()["product"]["id"], "10002");
}

/// §1: POST works for every function, GET with a query string for reads.
#[tokio::test]
async fn quirk_get_with_a_query_string_works_for_a_read() {
    let request = Request::get("/api/call/listCurrencies?convert_to=EUR")
        .header("X-DS-API-KEY", READONLY_KEY)
        .body(Body::empty())
        .expect("request");

    let reply = send(&sandbox(), request).await;

    assert!(reply.data().is_array(), "{}", reply.json);
}

/// §2: errors come either with a fitting 4xx status or, as historically,
/// with HTTP 200; the envelope says `result: error` in both.
#[tokio::test]
async fn quirk_both_error_styles_carry_the_error_envelope() {
    let sandbox = sandbox();
    let in_4xx = call_as(&sandbox, READONLY_KEY, "createProduct", "data[name]=x").await;
    sandbox.set_error_style(ErrorStyle::Http200);
    let in_200 = call_as(&sandbox, READONLY_KEY, "createProduct", "data[name]=x").await;

    assert_eq!(in_4xx.status, StatusCode::FORBIDDEN);
    assert_eq!(in_200.status, StatusCode::OK);
    for reply in [&in_4xx, &in_200] {
        assert_eq!(reply.code(), 5);
        assert_eq!(reply.message(), "Permission denied.");
        assert!(reply.json.get("data").is_none());
    }
}

/// §3: the official PHP connectors send every argument positionally, as
/// `arg1 … argN`, mapped to the function's parameters in the spec's order.
#[tokio::test]
async fn quirk_positional_arguments_map_to_the_parameters_in_order() {
    let sandbox = sandbox();

    let product = data(&sandbox, "getProduct", "arg1=10003").await;
    let invoices = data(&sandbox, "listInvoices", "arg1=SBX00002").await;

    assert_eq!(product["product"]["id"], "10003");
    assert_eq!(invoices["purchase_id"], "SBX00002");
}

/// §3: an array argument is bracket-expanded under its position:
/// `updateProduct(product_id, data)` as `arg1=…&arg2[name_intern]=…`.
#[tokio::test]
async fn quirk_positional_arguments_are_bracket_expanded() {
    let sandbox = sandbox();

    let updated = data(
        &sandbox,
        "updateProduct",
        "arg1=10002&arg2%5Bname_intern%5D=positional",
    )
    .await;
    let product = data(&sandbox, "getProduct", "product_id=10002").await;

    assert_eq!(updated["modified"], "Y");
    assert_eq!(product["product"]["name_intern"], "positional");
}

/// §3: exactly what the 2025 connector sends for
/// `listPurchases('-7d', 'now', ['role' => 'vendor'])`: positions, a
/// nested third one, and the named extras `language`, `operator`,
/// `ds24ver`, which every function takes.
#[tokio::test]
async fn quirk_the_official_connectors_request_is_answered() {
    let body = "arg1=-3650d&arg2=now&arg3%5Brole%5D=vendor&language=en&operator=shop&ds24ver=1.2";

    let purchases = data(&sandbox(), "listPurchases", body).await;

    assert!(
        !purchases["purchase_list"]
            .as_array()
            .unwrap_or(&Vec::new())
            .is_empty(),
        "{purchases}"
    );
}

/// §3: a PHP `null` passed to skip a position arrives as an empty `argN`
/// and leaves that parameter unset.
#[tokio::test]
async fn quirk_an_empty_positional_argument_skips_its_parameter() {
    // validateLicenseKey(purchase_id, license_key): both required.
    let reply = call(&sandbox(), "validateLicenseKey", "arg1=&arg2=KEY-1").await;

    assert_eq!(reply.code(), 3);
    assert!(
        reply.message().contains("purchase_id"),
        "{}",
        reply.message()
    );
}

/// §3 [infer]: a position the function does not have, or a positional and
/// a named value that disagree, are refused rather than guessed at.
#[tokio::test]
async fn quirk_a_position_beyond_the_last_argument_or_a_conflict_is_code_3() {
    let sandbox = sandbox();

    let too_many = call(&sandbox, "getProduct", "arg1=10001&arg2=extra").await;
    let conflict = call(&sandbox, "getProduct", "arg1=10001&product_id=10002").await;
    let agreeing = call(&sandbox, "getProduct", "arg1=10001&product_id=10001").await;

    assert_eq!(too_many.code(), 3);
    assert!(
        too_many.message().contains("arg2"),
        "{}",
        too_many.message()
    );
    assert_eq!(conflict.code(), 3);
    assert_eq!(agreeing.data()["product"]["id"], "10001");
}

/// §3: flags are `Y`/`N` on the wire (a PHP `true`/`false` becomes
/// `1`/`0`); anything else is refused. Replies use `Y`/`N` too.
#[tokio::test]
async fn quirk_flags_are_y_or_n() {
    let sandbox = sandbox();
    let body = |flag: &str| format!("purchase_id=SBX00001&force={flag}");

    for flag in ["Y", "N", "1", "0"] {
        call(&sandbox, "stopRebilling", &body(flag)).await.data();
    }
    let refused = call(&sandbox, "stopRebilling", &body("maybe")).await;
    let delete = data(&sandbox, "deleteImage", "image_id=5").await;

    assert_eq!(refused.code(), 3);
    assert!(refused.message().contains("force"), "{}", refused.message());
    assert_eq!(delete["modified"], "Y");
}

/// §3: URL parameters must be public `https://`.
#[tokio::test]
async fn quirk_url_parameters_must_be_public_https() {
    let reply = call(
        &sandbox(),
        "createBuyUrl",
        "product_id=10001&urls%5Bthankyou_url%5D=http%3A%2F%2Flocalhost%2Fthanks",
    )
    .await;

    assert_eq!(reply.code(), 3);
    assert_eq!(reply.message(), "Please only use secure URLs with https://");
}

/// §4: every reply, success or error, carries `api_version`,
/// `current_time`, `runtime_seconds`, `timezone` and `utc_offset`.
#[tokio::test]
async fn quirk_every_reply_carries_the_envelope_fields() {
    let sandbox = sandbox();
    let success = call(&sandbox, "ping", "").await;
    let generic = call(&sandbox, "listCountries", "").await;
    let error = call(&sandbox, "getProduct", "").await;
    let unknown = call(&sandbox, "globalSettings", "").await;
    sandbox.set_error_style(ErrorStyle::Http200);
    let error_200 = call_as(&sandbox, "1-nope", "ping", "").await;

    for reply in [&success, &generic] {
        assert_envelope(&reply.json);
        assert_eq!(reply.json["result"], "success");
    }
    for reply in [&error, &unknown, &error_200] {
        assert_envelope(&reply.json);
        assert_eq!(reply.json["result"], "error");
        assert!(reply.json["code"].is_i64(), "{}", reply.json);
    }
}

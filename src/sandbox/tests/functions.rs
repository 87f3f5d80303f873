use std::collections::HashSet;

use super::{call, sandbox};
use crate::sandbox::functions::{Access, FUNCTIONS};

/// The connect flow's functions, which `connect.rs` covers.
const CONNECT: [&str; 3] = ["requestApiKey", "retrieveApiKey", "unregister"];

/// The IPN registration functions (their URL check needs a receiver; the
/// integration tests in tests/api/ipn.rs run them end to end).
const IPN: [&str; 3] = ["ipnSetup", "ipnInfo", "ipnDelete"];

/// Each data function, a valid call with the writable key, and the `data`
/// field its documentation promises (`""` when the reply has no documented
/// field).
const CASES: [(&str, &str, &str); 22] = [
    ("listProducts", "", "products"),
    ("getProduct", "product_id=10001", "product"),
    (
        "createProduct",
        "data[name]=New&data[currency]=EUR",
        "product_id",
    ),
    (
        "updateProduct",
        "product_id=10001&data[note]=hello",
        "modified",
    ),
    ("deleteProduct", "product_id=10005", ""),
    ("listPurchases", "", "purchase_list"),
    ("getPurchase", "purchase_id=SBX00004", "id"),
    (
        "updatePurchase",
        "purchase_id=SBX00004&custom=abc",
        "is_modified",
    ),
    ("refundPurchase", "purchase_id=SBX00001", "purchase_id"),
    ("listTransactions", "", "transaction_list"),
    ("listInvoices", "purchase_id=SBX00001", "invoice_list"),
    ("listBuyers", "", "items"),
    ("getBuyer", "buyer_id=50001", "buyer"),
    ("updateBuyer", "buyer_id=50001&city=Hamburg", "is_modified"),
    ("listVouchers", "", "coupons"),
    ("getVoucher", "code=SANDBOX10", "coupon"),
    (
        "createVoucher",
        "code=NEW10&first_rate=10",
        "discount_code_id",
    ),
    ("listDeliveries", "", "delivery"),
    (
        "updateDelivery",
        "delivery_id=80003&data[type]=delivery",
        "is_modified",
    ),
    ("listOrderforms", "", "orderforms"),
    ("getUserInfo", "", "user_id"),
    ("ping", "", "server_time"),
];

#[tokio::test]
async fn every_function_answers_success_with_its_documented_field() {
    for (function, body, field) in CASES {
        let data = super::data(&sandbox(), function, body).await;

        assert!(data.is_object(), "{function}: {data}");
        if !field.is_empty() {
            assert!(
                !data[field].is_null(),
                "{function} lacks data.{field}: {data}"
            );
        }
    }
}

#[test]
fn the_table_holds_the_28_functions_once_each() {
    let names: HashSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    let cases: HashSet<&str> = CASES
        .iter()
        .map(|c| c.0)
        .chain(CONNECT)
        .chain(IPN)
        .collect();

    assert_eq!(FUNCTIONS.len(), 28);
    assert_eq!(names, cases);
}

#[test]
fn writes_need_a_writable_key_and_the_connect_flow_a_developer_key() {
    for function in FUNCTIONS {
        let writes = ["create", "update", "delete", "refund"]
            .iter()
            .any(|prefix| function.name.starts_with(prefix))
            || matches!(function.name, "ipnSetup" | "ipnDelete");
        let expected = match function.name {
            "requestApiKey" | "retrieveApiKey" => Access::Developer,
            _ if writes => Access::Write,
            _ => Access::Read,
        };

        assert_eq!(function.access, expected, "{}", function.name);
    }
}

#[tokio::test]
async fn a_missing_required_parameter_is_code_3_naming_it() {
    let cases = [
        ("getProduct", "product_id"),
        ("getPurchase", "purchase_id"),
        ("getBuyer", "buyer_id"),
        ("getVoucher", "code"),
        ("listInvoices", "purchase_id"),
        ("createProduct", "data"),
        ("createVoucher", "code"),
        ("updateProduct", "product_id"),
        ("updatePurchase", "purchase_id"),
        ("updateBuyer", "buyer_id"),
        ("updateDelivery", "delivery_id"),
        ("deleteProduct", "product_id"),
        ("refundPurchase", "purchase_id"),
    ];
    for (function, parameter) in cases {
        let reply = call(&sandbox(), function, "").await;

        assert_eq!(reply.code(), 3, "{function}");
        assert!(
            reply.message().contains(parameter),
            "{function}: {}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn an_unknown_id_is_code_4_with_404() {
    let cases = [
        ("getProduct", "product_id=99999"),
        ("getProduct", "product_id=abc"),
        ("getPurchase", "purchase_id=NOPE1234"),
        ("getBuyer", "buyer_id=1"),
        ("getVoucher", "code=NOPE"),
        ("listInvoices", "purchase_id=NOPE1234"),
        ("updateProduct", "product_id=99999&data[note]=x"),
        ("updatePurchase", "purchase_id=NOPE&custom=x"),
        ("updateBuyer", "buyer_id=99&city=x"),
        ("updateDelivery", "delivery_id=1&data[type]=delivery"),
        ("deleteProduct", "product_id=99999"),
        ("refundPurchase", "purchase_id=NOPE1234"),
    ];
    for (function, body) in cases {
        let reply = call(&sandbox(), function, body).await;

        assert_eq!(reply.status, http::StatusCode::NOT_FOUND, "{function}");
        assert_eq!(reply.code(), 4, "{function}");
    }
}

#[tokio::test]
async fn list_orderforms_filters_by_layout() {
    let sandbox = sandbox();

    let widgets = super::data(&sandbox, "listOrderforms", "layout=orderform_widget").await;
    let bad = call(&sandbox, "listOrderforms", "layout=fancy").await;

    assert_eq!(widgets["orderforms"].as_array().map(Vec::len), Some(1));
    assert_eq!(widgets["orderforms"][0]["id"], "60002");
    assert_eq!(bad.code(), 3);
}

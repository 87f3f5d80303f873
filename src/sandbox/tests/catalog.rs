//! The functions answered from the catalog alone (`functions::generic`):
//! every catalog function is known, parameters are checked against the
//! catalog's definitions, access follows the effect, and replies are
//! shaped like the spec's.

use std::collections::BTreeSet;

use super::{call, call_as, data, sandbox};
use crate::actions::CATALOG;
use crate::sandbox::functions::{self, generic};
use crate::sandbox::shapes::{self, SHAPES};
use crate::sandbox::{DEVELOPER_KEY, READONLY_KEY};

#[tokio::test]
async fn every_catalog_function_is_known_to_the_sandbox() {
    let sandbox = sandbox();
    for action in CATALOG {
        let key = match action.function {
            "requestApiKey" | "retrieveApiKey" => DEVELOPER_KEY,
            _ => READONLY_KEY,
        };
        let reply = call_as(&sandbox, key, action.function, "").await;
        let code = reply.json["code"].as_u64();

        assert_ne!(code, Some(9), "{}: {}", action.function, reply.json);
        assert!(
            functions::canonical_name(action.function).is_some(),
            "{}",
            action.function
        );
    }
}

#[test]
fn the_shape_table_has_one_entry_per_spec_function_and_every_entry_is_json() {
    let names: BTreeSet<&str> = SHAPES.iter().map(|(name, _)| *name).collect();

    assert_eq!(SHAPES.len(), 122, "the spec's 122 operations");
    assert_eq!(names.len(), 122, "no function twice");
    for (name, shape) in SHAPES {
        assert!(
            crate::actions::canonical(name).is_some(),
            "{name} is not in the catalog"
        );
        if let Some(text) = shape {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{name}: {text}"
            );
        }
    }
    assert!(shapes::example("getTestpayKey").is_some());
}

#[test]
fn reads_are_open_to_any_key_and_writes_and_money_need_a_writable_one() {
    let access = |f: &str| generic::access_of(crate::actions::canonical(f).unwrap());

    assert_eq!(access("listCountries"), functions::Access::Read);
    assert_eq!(access("deleteImage"), functions::Access::Write);
    assert_eq!(access("refundPartially"), functions::Access::Write);
}

#[tokio::test]
async fn the_readonly_key_reads_a_catalog_function_and_is_refused_a_write_or_money_call() {
    let sandbox = sandbox();

    let read = call_as(&sandbox, READONLY_KEY, "listCountries", "").await;
    let write = call_as(&sandbox, READONLY_KEY, "deleteImage", "image_id=5").await;
    let money = call_as(
        &sandbox,
        READONLY_KEY,
        "refundPartially",
        "purchase_id=SBX00001&amount=5.00",
    )
    .await;

    read.data();
    assert_eq!((write.status.as_u16(), write.code()), (403, 5));
    assert_eq!((money.status.as_u16(), money.code()), (403, 5));
}

#[tokio::test]
async fn replies_name_their_members_as_the_spec_does_and_echo_the_ids_sent() {
    let sandbox = sandbox();

    let image = data(&sandbox, "getImage", "image_id=IMG42").await;
    let created = data(
        &sandbox,
        "createImage",
        "data%5Bname%5D=Logo&data%5Bimage-url%5D=https%3A%2F%2Fexample.com%2Flogo.png",
    )
    .await;
    let license = data(
        &sandbox,
        "validateLicenseKey",
        "purchase_id=SBX00003&license_key=K-1",
    )
    .await;
    let commissions = data(&sandbox, "listCommissions", "page_no=2").await;

    assert!(image["image"].is_object(), "{image}");
    assert!(created["image_id"].is_string(), "{created}");
    assert!(created["image_url"].is_string(), "{created}");
    assert_eq!(license["purchase_id"], "SBX00003");
    assert_eq!(license["license_key"], "K-1");
    assert_eq!(commissions["page_no"], "2");
    assert!(commissions["items"].is_array(), "{commissions}");
}

#[tokio::test]
async fn the_same_call_gets_the_same_reply() {
    let sandbox = sandbox();
    let body = "data%5Bname%5D=Logo&data%5Bimage-url%5D=https%3A%2F%2Fexample.com%2Fa.png";

    let first = data(&sandbox, "createImage", body).await;
    let second = data(&sandbox, "createImage", body).await;

    assert_eq!(first, second);
}

#[tokio::test]
async fn a_function_without_a_spec_reply_answers_its_ids_and_modified() {
    let deleted = data(&sandbox(), "deletePaymentplan", "paymentplan_id=7").await;

    assert_eq!(deleted["paymentplan_id"], "7");
    assert_eq!(deleted["modified"], "Y");
}

#[tokio::test]
async fn parameters_are_checked_against_the_catalog() {
    let sandbox = sandbox();
    let cases = [
        ("getImage", "", "Missing parameter 'image_id'"),
        ("getImage", "image_id=+", "Missing parameter 'image_id'"),
        ("deletePaymentplan", "paymentplan_id=abc", "paymentplan_id"),
        (
            "refundPartially",
            "purchase_id=SBX00001&amount=lots",
            "amount",
        ),
        ("statsSales", "period=week", "'week' is not one of"),
        (
            "createImage",
            "data%5Bname%5D=x&data%5Bimage-url%5D=https%3A%2F%2Fa.example%2Fb&data%5Bcolour%5D=red",
            "Invalid array key in parameter 'data' (given: colour)",
        ),
        ("createImage", "data=flat", "expected nested fields"),
        (
            "getImage",
            "image_id%5Bnested%5D=1",
            "expected a single value",
        ),
    ];
    for (function, body, expected) in cases {
        let reply = call(&sandbox, function, body).await;

        assert_eq!(
            reply.status.as_u16(),
            400,
            "{function} {body}: {}",
            reply.json
        );
        assert_eq!(reply.code(), 3, "{function} {body}");
        assert!(
            reply.message().contains(expected),
            "{function} {body}: {}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn parameters_a_function_does_not_take_are_ignored() {
    let reply = call(
        &sandbox(),
        "listCountries",
        "language=de&operator=shop&ds24ver=1.2&whatever=1",
    )
    .await;

    reply.data();
}

//! Validation: every problem reported, each with its path and a hint how to fix it.

use serde_json::json;

use super::{action, obj};
use crate::actions::ValidationError;

fn errors(key: &str, input: serde_json::Value) -> Vec<ValidationError> {
    action(key)
        .validate(&obj(input))
        .expect_err("input should be rejected")
}

fn paths(errors: &[ValidationError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn a_typical_input_is_accepted() {
    let input = obj(json!({"product_id": "12", "data": {"name_intern": "x", "is_active": true}}));
    assert_eq!(action("update-product").validate(&input), Ok(()));
    let input =
        obj(json!({"from": "-7d", "search": {"role": ["vendor", "affiliate"]}, "page_size": 100}));
    assert_eq!(action("list-purchases").validate(&input), Ok(()));
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let errs = errors(
        "list-purchases",
        json!({"sort_by": "price", "page_no": "one", "load_transactions": "yes", "colour": "red"}),
    );
    assert_eq!(
        paths(&errs),
        ["/sort_by", "/page_no", "/load_transactions", "/colour"]
    );
}

#[test]
fn an_unknown_parameter_is_rejected_with_the_accepted_names_and_a_guess() {
    let errs = errors("get-product", json!({"product_id": 1, "prodcut_id": 2}));
    assert_eq!(paths(&errs), ["/prodcut_id"]);
    assert!(
        errs[0].message.contains("did you mean product_id?"),
        "{}",
        errs[0].message
    );
    assert!(
        errs[0].message.contains("accepted: product_id"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_wrong_type_is_rejected_with_a_hint() {
    let errs = errors("get-product", json!({"product_id": true}));
    assert_eq!(paths(&errs), ["/product_id"]);
    assert!(
        errs[0].message.contains("expected integer"),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.contains("\"12\""), "{}", errs[0].message);
    for bad in [json!("12a"), json!(""), json!(1.5), json!([1])] {
        assert!(
            action("get-product")
                .validate(&obj(json!({"product_id": bad})))
                .is_err(),
            "{bad}"
        );
    }
    for good in [json!(12), json!("12"), json!(12.0), json!("-3")] {
        assert!(
            action("get-product")
                .validate(&obj(json!({"product_id": good})))
                .is_ok(),
            "{good}"
        );
    }
}

#[test]
fn numbers_flags_strings_and_lists_accept_their_documented_forms() {
    let refund = action("refund-partially");
    for amount in [json!(19.99), json!("19.99"), json!(5), json!("-5")] {
        assert!(
            refund
                .validate(&obj(json!({"purchase_id": "A", "amount": amount})))
                .is_ok()
        );
    }
    assert!(
        refund
            .validate(&obj(json!({"purchase_id": 123, "amount": "1e3"})))
            .is_err()
    );
    let purchase = action("refund-purchase");
    for force in [json!(true), json!(false), json!("Y"), json!("N")] {
        assert!(
            purchase
                .validate(&obj(json!({"purchase_id": "A", "force": force})))
                .is_ok()
        );
    }
    assert!(
        purchase
            .validate(&obj(json!({"purchase_id": "A", "force": "yes"})))
            .is_err()
    );
    assert!(
        purchase
            .validate(&obj(json!({"purchase_id": "A", "force": 1})))
            .is_err()
    );
    let get = action("get-purchase");
    for ids in [json!("A,B"), json!(["A", "B"]), json!([1, 2])] {
        assert!(get.validate(&obj(json!({"purchase_id": ids}))).is_ok());
    }
    let errs = get
        .validate(&obj(json!({"purchase_id": ["A", {"x": 1}]})))
        .unwrap_err();
    assert_eq!(paths(&errs), ["/purchase_id/1"]);
}

#[test]
fn a_value_outside_the_enum_is_rejected_with_the_allowed_values() {
    let errs = errors("list-products", json!({"sort_by": "price"}));
    assert_eq!(errs[0].path, "/sort_by");
    assert!(
        errs[0].message.contains("one of: name, group"),
        "{}",
        errs[0].message
    );
    let errs = errors(
        "list-deliveries",
        json!({"search": {"type": "request,lost"}}),
    );
    assert_eq!(errs[0].path, "/search/type");
    let errs = errors(
        "report-fraud",
        json!({"transaction_id": 1, "who": ["buyer", "seller"], "comment": "x"}),
    );
    assert_eq!(paths(&errs), ["/who/1"]);
}

#[test]
fn request_api_key_accepts_both_spellings_of_read_only() {
    let a = action("request-api-key");
    for level in ["readonly", "read-only", "writable"] {
        let input = obj(json!({"permissions": level, "return_url": "https://example.com/back"}));
        assert_eq!(a.validate(&input), Ok(()), "{level}");
    }
}

#[test]
fn a_missing_or_null_required_parameter_is_reported_at_its_path() {
    let errs = errors("refund-purchase", json!({}));
    assert_eq!(paths(&errs), ["/purchase_id"]);
    assert!(
        errs[0]
            .message
            .starts_with("missing required parameter purchase_id"),
        "{}",
        errs[0].message
    );
    let errs = errors("refund-purchase", json!({"purchase_id": null}));
    assert_eq!(paths(&errs), ["/purchase_id"]);
    assert!(errs[0].message.contains("must not be null"));
    assert_eq!(
        action("refund-purchase").validate(&obj(json!({"purchase_id": "A", "force": null}))),
        Ok(())
    );
}

#[test]
fn nested_objects_and_arrays_are_checked_with_full_paths() {
    let errs = errors(
        "update-delivery",
        json!({
            "delivery_id": 5,
            "data": {"type": "shipped", "quantity_delivered": "two"},
            "tracking": [{"parcel_service": "dhl"}, {"parcel_service": "ups", "quantity": "x", "colour": 1}],
        }),
    );
    assert_eq!(
        paths(&errs),
        [
            "/data/type",
            "/data/quantity_delivered",
            "/tracking/1/quantity",
            "/tracking/1/colour"
        ]
    );
    assert!(
        errs[3].message.contains("in /tracking/1"),
        "{}",
        errs[3].message
    );
    let errs = errors("create-image", json!({"data": {"name": "logo"}}));
    assert_eq!(paths(&errs), ["/data/image-url"]);
    let errs = errors("create-voucher", json!({"data": {}}));
    assert_eq!(paths(&errs), ["/data/code"]);
}

#[test]
fn open_product_data_passes_fields_the_spec_does_not_list_but_checks_known_ones() {
    let a = action("create-product");
    let input =
        obj(json!({"data": {"name": "Course", "language": "de,en", "future_field": "kept"}}));
    assert_eq!(a.validate(&input), Ok(()));
    let errs = a
        .validate(&obj(json!({"data": {"product_type_id": "ebook"}})))
        .unwrap_err();
    assert_eq!(paths(&errs), ["/data/product_type_id"]);
    // Search objects are closed: a typo would silently widen a listing.
    let errs = errors("list-purchases", json!({"search": {"emial": "a@b.c"}}));
    assert!(
        errs[0].message.contains("did you mean email?"),
        "{}",
        errs[0].message
    );
}

#[test]
fn control_fields_are_allowed_on_paged_actions_only() {
    let input = obj(json!({"all_pages": true, "max_pages": 5}));
    assert_eq!(action("list-buyers").validate(&input), Ok(()));
    let errs = errors("list-buyers", json!({"all_pages": "yes", "max_pages": 0}));
    assert_eq!(paths(&errs), ["/all_pages", "/max_pages"]);
    let errs = errors("list-products", json!({"all_pages": true}));
    assert!(
        errs[0].message.contains("only accepted by paged actions"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_non_object_input_is_one_error_at_the_root() {
    let errs = action("ping").validate_value(&json!([1, 2])).unwrap_err();
    assert_eq!(
        errs,
        [ValidationError {
            path: String::new(),
            message: "the input must be a JSON object, got an array".into()
        }]
    );
    assert_eq!(action("ping").validate_value(&json!({})), Ok(()));
}

#[test]
fn validating_and_encoding_a_typical_input_is_fast() {
    let a = action("update-delivery");
    let input = obj(json!({
        "delivery_id": "123",
        "data": {"type": "delivery", "is_shipped": true, "quantity_delivered": 2},
        "tracking": [{"parcel_service": "dhl", "tracking_id": "00340434161094042557"}],
        "notify_via_email": "Y",
    }));
    let rounds = 2000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        a.validate(std::hint::black_box(&input)).unwrap();
        std::hint::black_box(a.encode_form(&input));
    }
    let each = start.elapsed() / rounds;
    // 20 µs is the budget for optimised builds; unoptimised test builds get slack.
    let budget = if cfg!(debug_assertions) { 200 } else { 20 };
    assert!(each.as_micros() < budget, "validate+encode took {each:?}");
}

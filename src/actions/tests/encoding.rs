//! Form encoding: PHP brackets, Y/N, comma lists, clean numbers, percent-encoding.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{action, obj};

fn encode(key: &str, input: Value) -> String {
    action(key).encode_form(&obj(input))
}

#[test]
fn nested_objects_and_arrays_use_php_brackets() {
    let body = encode(
        "update-delivery",
        json!({
            "delivery_id": 5,
            "data": {"type": "delivery"},
            "tracking": [{"parcel_service": "dhl", "tracking_id": "T1"}, {"parcel_service": "ups"}],
        }),
    );
    assert_eq!(
        body,
        "delivery_id=5&data%5Btype%5D=delivery&tracking%5B0%5D%5Bparcel_service%5D=dhl\
         &tracking%5B0%5D%5Btracking_id%5D=T1&tracking%5B1%5D%5Bparcel_service%5D=ups"
    );
    let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        decoded[2],
        ("tracking[0][parcel_service]".into(), "dhl".into())
    );
}

#[test]
fn booleans_become_y_and_n_and_flag_strings_pass_through() {
    let body = encode(
        "refund-purchase",
        json!({"purchase_id": "A", "force": true}),
    );
    assert_eq!(body, "purchase_id=A&force=Y");
    let body = encode(
        "update-product",
        json!({"product_id": 1, "data": {"is_active": false, "is_address_input_mandatory": "Y"}}),
    );
    assert_eq!(
        body,
        "product_id=1&data%5Bis_active%5D=N&data%5Bis_address_input_mandatory%5D=Y"
    );
}

#[test]
fn numbers_are_written_without_float_noise() {
    let body = encode(
        "refund-partially",
        json!({"purchase_id": "A", "amount": 19.99}),
    );
    assert_eq!(body, "purchase_id=A&amount=19.99");
    let body = encode(
        "refund-partially",
        json!({"purchase_id": "A", "amount": 47.0}),
    );
    assert_eq!(body, "purchase_id=A&amount=47");
    let body = encode(
        "refund-partially",
        json!({"purchase_id": 12345678901_i64, "amount": 0.1}),
    );
    assert_eq!(body, "purchase_id=12345678901&amount=0.1");
    let body = encode(
        "create-buy-url",
        json!({"product_id": 1, "payment_plan": {"first_amount": 0.30000000000000004}}),
    );
    assert!(body.ends_with("=0.30000000000000004"), "{body}");
}

#[test]
fn lists_are_comma_separated_and_arrays_of_objects_are_indexed() {
    let body = encode("get-purchase", json!({"purchase_id": ["A1", "B2", 3]}));
    assert_eq!(body, "purchase_id=A1%2CB2%2C3");
    let body = encode(
        "list-purchases",
        json!({"search": {"role": ["vendor", "affiliate"], "email": "a@b.c"}}),
    );
    assert_eq!(
        body,
        "search%5Brole%5D=vendor%2Caffiliate&search%5Bemail%5D=a%40b.c"
    );
    let body = encode(
        "create-billing-on-demand",
        json!({"purchase_id": "A", "product_id": 1, "addons": [{"product_id": 2}]}),
    );
    assert_eq!(
        body,
        "purchase_id=A&product_id=1&addons%5B0%5D%5Bproduct_id%5D=2"
    );
}

#[test]
fn reserved_characters_and_utf8_are_percent_encoded() {
    let body = encode(
        "report-fraud",
        json!({"transaction_id": 1, "who": "buyer", "comment": "a+b&c=d%e ü/€"}),
    );
    assert_eq!(
        body,
        "transaction_id=1&who=buyer&comment=a%2Bb%26c%3Dd%25e+%C3%BC%2F%E2%82%AC"
    );
    let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(decoded[2].1, "a+b&c=d%e ü/€");
}

#[test]
fn input_order_is_kept_and_nulls_and_control_fields_are_left_out() {
    let body = encode(
        "list-transactions",
        json!({"to": "now", "from": "-7d", "sort_by": null, "all_pages": true, "max_pages": 3, "page_size": 50}),
    );
    assert_eq!(body, "to=now&from=-7d&page_size=50");
    assert_eq!(encode("ping", json!({})), "");
}

/// Leaves of a JSON value as (bracketed key, wire text) pairs, the way the encoder
/// writes a value it has no type for.
fn leaves(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((key.into(), if *b { "Y" } else { "N" }.into())),
        Value::Number(n) => out.push((key.into(), crate::actions::encode::number_text(n))),
        Value::String(s) => out.push((key.into(), s.clone())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(&format!("{key}[{i}]"), v, out)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| leaves(&format!("{key}[{k}]"), v, out)),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-z+&=%\\[\\] ]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::vec(("[a-z_]{1,6}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn arbitrary_objects_never_panic_the_encoder_and_decode_back_to_their_leaves(
        pairs in prop::collection::vec(("[a-z_]{1,8}", json_value()), 0..6)
    ) {
        let input: Map<String, Value> = pairs.into_iter().filter(|(k, _)| k != "all_pages" && k != "max_pages").collect();
        // `ping` has no parameters, so every value is encoded without type information.
        let body = action("ping").encode_form(&input);
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let mut expected = Vec::new();
        for (k, v) in &input {
            leaves(k, v, &mut expected);
        }
        prop_assert_eq!(decoded, expected);
        // And a typed action never panics either, whatever it is given.
        let _ = action("update-delivery").encode_form(&input);
        let _ = action("list-purchases").encode_form(&input);
    }
}

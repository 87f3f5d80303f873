//! Time to validate and encode a typical action input (issue target: under
//! 20 µs). Run: `cargo bench --bench actions`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ds24_proxy::actions;
use serde_json::{Map, Value, json};

fn input(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("inputs are objects"),
    }
}

fn validate_and_encode(c: &mut Criterion) {
    let cases = [
        (
            "update-delivery",
            input(
                json!({"delivery_id": 80003, "notify_via_email": false, "data": {"is_shipped": true, "quantity_delivered": 2}, "tracking": [{"parcel_service": "dhl", "tracking_id": "00340434161094042557"}]}),
            ),
        ),
        (
            "create-product",
            input(
                json!({"data": {"name_intern": "Kurs Ä&B", "name_de": "Kurs", "product_type_id": 1, "is_active": true, "description_de": "Ein Kurs über Rust im Alltag"}}),
            ),
        ),
        (
            "list-purchases",
            input(
                json!({"from": "-30d", "to": "now", "search": {"email": "anna@example.com", "role": ["vendor", "affiliate"]}, "page_size": 100}),
            ),
        ),
    ];
    for (key, value) in cases {
        let action = actions::find(key).expect("catalog has the action");
        c.bench_function(&format!("validate+encode {key}"), |b| {
            b.iter(|| {
                action.validate(black_box(&value)).expect("valid");
                black_box(action.encode_form(black_box(&value)))
            });
        });
    }
}

criterion_group!(benches, validate_and_encode);
criterion_main!(benches);

//! The generated JSON Schemas compile and agree with the hand-written validator, on
//! samples built from the table and on arbitrary inputs.

use serde_json::{Map, Value, json};

use crate::actions::{ActionDef, CATALOG, Param, ParamType};

/// A valid value for a type (enum members win); `alt` picks the other accepted form.
fn sample(ty: &ParamType, enums: &[&str], alt: bool) -> Value {
    if let Some(first) = enums.first() {
        return match ty {
            ParamType::List if alt => json!(enums.join(",")),
            ParamType::List => json!([first]),
            _ => json!(first),
        };
    }
    match (ty, alt) {
        (ParamType::String, false) | (ParamType::Date, _) => json!("2024-01-31"),
        (ParamType::String, true) => json!(42),
        (ParamType::Integer, false) => json!(12),
        (ParamType::Integer, true) => json!("12"),
        (ParamType::Number, false) => json!(19.99),
        (ParamType::Number, true) => json!("19.99"),
        (ParamType::Flag, false) => json!(true),
        (ParamType::Flag, true) => json!("N"),
        (ParamType::List, false) => json!(["a", 2]),
        (ParamType::List, true) => json!("a,b"),
        (ParamType::Object(fields) | ParamType::OpenObject(fields), _) => {
            Value::Object(sample_object(fields, alt))
        }
        (ParamType::Map, _) => json!({"k": "v"}),
        (ParamType::Array(item), _) => json!([sample(item, &[], alt)]),
    }
}

fn sample_object(params: &[Param], all: bool) -> Map<String, Value> {
    params
        .iter()
        .filter(|p| all || p.required)
        .map(|p| (p.name.to_string(), sample(&p.ty, p.enum_values, all)))
        .collect()
}

/// A value of the wrong type for a parameter.
fn wrong(ty: &ParamType) -> Value {
    match ty {
        ParamType::Object(_) | ParamType::OpenObject(_) | ParamType::Map | ParamType::Array(_) => {
            json!("text")
        }
        ParamType::Integer | ParamType::Number => json!("12abc"),
        _ => json!({"not": "scalar"}),
    }
}

fn agree(
    a: &ActionDef,
    validator: &jsonschema::Validator,
    input: &Map<String, Value>,
    what: &str,
) -> bool {
    let ours = a.validate(input).is_ok();
    let theirs = validator.is_valid(&Value::Object(input.clone()));
    assert_eq!(
        ours, theirs,
        "{}: {what}: validator says {ours}, schema says {theirs}: {input:?}",
        a.key
    );
    ours
}

#[test]
fn every_schema_compiles_and_agrees_with_the_validator() {
    for a in CATALOG {
        let schema = a.input_schema();
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{}: schema is not a valid 2020-12 schema",
            a.key
        );
        let validator =
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", a.key));

        let minimal = sample_object(a.params, false);
        assert!(
            agree(a, &validator, &minimal, "required only"),
            "{}: minimal sample rejected",
            a.key
        );
        let full = sample_object(a.params, true);
        assert!(
            agree(a, &validator, &full, "every parameter"),
            "{}: {:?}",
            a.key,
            a.validate(&full)
        );
        let mut nulls = minimal.clone();
        nulls.extend(
            a.params
                .iter()
                .filter(|p| !p.required)
                .map(|p| (p.name.to_string(), Value::Null)),
        );
        assert!(agree(a, &validator, &nulls, "optional nulls"));

        let mut unknown = minimal.clone();
        unknown.insert("no_such_parameter".into(), json!(1));
        assert!(!agree(a, &validator, &unknown, "unknown parameter"));
        for p in a.params {
            let mut bad = full.clone();
            bad.insert(p.name.into(), wrong(&p.ty));
            assert!(
                !agree(a, &validator, &bad, p.name),
                "{}: wrong type for {} accepted",
                a.key,
                p.name
            );
            if !p.enum_values.is_empty() {
                bad.insert(p.name.into(), json!("not-a-member"));
                assert!(!agree(a, &validator, &bad, p.name));
            }
            if p.required {
                let mut missing = full.clone();
                missing.remove(p.name);
                assert!(!agree(a, &validator, &missing, p.name));
                missing.insert(p.name.into(), Value::Null);
                assert!(!agree(a, &validator, &missing, p.name));
            }
        }
        if a.is_paged() {
            let mut paged = minimal.clone();
            paged.insert("all_pages".into(), json!(true));
            paged.insert("max_pages".into(), json!(3));
            assert!(agree(a, &validator, &paged, "control fields"));
            paged.insert("max_pages".into(), json!(0));
            assert!(!agree(a, &validator, &paged, "max_pages 0"));
            // JSON Schema's integer includes 47.0 (found by the proptest below).
            paged.insert("max_pages".into(), json!(47.0));
            assert!(agree(a, &validator, &paged, "max_pages 47.0"));
            paged.insert("max_pages".into(), json!(2.5));
            assert!(!agree(a, &validator, &paged, "max_pages 2.5"));
        } else {
            let mut paged = minimal.clone();
            paged.insert("all_pages".into(), json!(true));
            assert!(!agree(
                a,
                &validator,
                &paged,
                "all_pages on an unpaged action"
            ));
        }
    }
}

mod agreement_on_arbitrary_inputs {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::super::action;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1.0e6f64..1.0e6).prop_map(Value::from),
            Just(Value::from(47.0)),
            "[0-9]{1,4}(\\.[0-9]{1,2})?".prop_map(Value::from),
            "-?[0-9a-z.,]{0,6}".prop_map(Value::from),
            prop_oneof![
                Just("Y"),
                Just("N"),
                Just("vendor"),
                Just("request,return"),
                Just("buyer,affiliate")
            ]
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(field(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
            ]
        })
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("purchase_id".to_string()),
            Just("product_id".to_string()),
            Just("role".to_string()),
            Just("type".to_string()),
            Just("is_shipped".to_string()),
            Just("quantity".to_string()),
            Just("first_amount".to_string()),
            Just("parcel_service".to_string()),
            Just("from".to_string()),
            "[a-z_]{1,8}",
        ]
    }

    fn input(names: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec((prop::sample::select(names), value()), 0..6)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    const NAMES: &[&str] = &[
        "from",
        "to",
        "search",
        "sort_by",
        "page_no",
        "page_size",
        "load_transactions",
        "all_pages",
        "max_pages",
        "delivery_id",
        "data",
        "tracking",
        "notify_via_email",
        "product_id",
        "payment_plan",
        "addons",
        "who",
        "transaction_id",
        "comment",
        "unknown",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn the_validator_and_the_schema_agree_on_arbitrary_inputs(input in input(NAMES), which in 0usize..4) {
            let a = action(["list-purchases", "update-delivery", "create-buy-url", "report-fraud"][which]);
            let validator = jsonschema::validator_for(&a.input_schema()).unwrap();
            let ours = a.validate(&input).is_ok();
            let theirs = validator.is_valid(&Value::Object(input.clone()));
            prop_assert_eq!(ours, theirs, "{}: {:?} -> {:?}", a.key, input, a.validate(&input));
        }
    }
}

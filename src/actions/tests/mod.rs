//! Tests of the catalog: conformance with the official spec, table invariants,
//! validation, encoding and ranking.

mod agreement;
mod conformance;
mod encoding;
mod invariants;
mod ranking;
mod validation;

use serde_json::{Map, Value};

use super::{ActionDef, find};

/// The JSON object inside a `json!` value.
fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test input must be an object, got {other}"),
    }
}

/// The action with this key; panics when the table lacks it.
fn action(key: &str) -> &'static ActionDef {
    find(key).unwrap_or_else(|| panic!("no action {key}"))
}

//! JSON Schema (2020-12) of an action's input, generated from its parameter table.
//!
//! The schema describes exactly what [`super::validate`] accepts: optional parameters may
//! be `null` (they are left out when encoding), integers may be digit strings, flags may be
//! `true`/`false`/`"Y"`/`"N"`, lists may be arrays or comma-separated strings.

use serde_json::{Map, Number, Value, json};

use super::encode::number_text;
use super::{ActionDef, Param, ParamType};

/// Pattern of a string accepted as an integer.
pub(super) const INTEGER_PATTERN: &str = "^-?[0-9]+$";
/// Pattern of a string accepted as a number.
pub(super) const NUMBER_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";

pub(super) fn input_schema(action: &ActionDef) -> Value {
    let (mut properties, required) = object_parts(action.params);
    if action.is_paged() {
        properties.insert(
            "all_pages".into(),
            json!({"type": "boolean", "description": "Fetch every page and answer one list (handled by the proxy, not sent)."}),
        );
        properties.insert(
            "max_pages".into(),
            json!({"type": "integer", "minimum": 1, "description": "Upper bound on pages fetched with all_pages (handled by the proxy, not sent)."}),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": action.key,
        "description": action.summary,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn object_parts(params: &[Param]) -> (Map<String, Value>, Vec<&'static str>) {
    let mut properties = Map::new();
    for p in params {
        properties.insert(p.name.into(), param_schema(p));
    }
    let required = params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    (properties, required)
}

fn param_schema(p: &Param) -> Value {
    let mut schema = type_schema(&p.ty, p.enum_values);
    if !p.required {
        allow_null(&mut schema);
    }
    if !p.description.is_empty() {
        schema["description"] = Value::from(p.description);
    }
    schema
}

fn type_schema(ty: &ParamType, enums: &[&str]) -> Value {
    if !enums.is_empty() && !matches!(ty, ParamType::List) {
        return json!({ "enum": enum_values(ty, enums) });
    }
    match ty {
        ParamType::String => json!({"type": ["string", "number"]}),
        ParamType::Integer => json!({"type": ["integer", "string"], "pattern": INTEGER_PATTERN}),
        ParamType::Number => json!({"type": ["number", "string"], "pattern": NUMBER_PATTERN}),
        ParamType::Flag => json!({"enum": [true, false, "Y", "N"]}),
        ParamType::Date => json!({"type": "string"}),
        ParamType::List if enums.is_empty() => json!({
            "type": ["string", "array"],
            "items": {"type": ["string", "number", "boolean"]},
        }),
        ParamType::List => {
            let alternatives = enums.iter().map(|e| escape_regex(e)).collect::<Vec<_>>();
            let one = format!("({})", alternatives.join("|"));
            json!({
                "type": ["string", "array"],
                "pattern": format!("^{one}(,{one})*$"),
                "items": {"enum": enums},
            })
        }
        ParamType::Object(fields) | ParamType::OpenObject(fields) => {
            let (properties, required) = object_parts(fields);
            let mut schema =
                json!({"type": "object", "properties": properties, "required": required});
            if matches!(ty, ParamType::Object(_)) {
                schema["additionalProperties"] = Value::Bool(false);
            }
            schema
        }
        ParamType::Map => json!({"type": "object"}),
        ParamType::Array(item) => json!({"type": "array", "items": type_schema(item, &[])}),
    }
}

/// Enum members: the wire strings, plus the JSON numbers that the validator would accept
/// for them (a string or a number parameter may be given `1` for the value `"1"`).
fn enum_values(ty: &ParamType, enums: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = enums.iter().map(|e| Value::from(*e)).collect();
    if matches!(
        ty,
        ParamType::String | ParamType::Integer | ParamType::Number
    ) {
        let numeric = enums
            .iter()
            .filter_map(|e| e.parse::<Number>().ok().filter(|n| number_text(n) == *e));
        out.extend(numeric.map(Value::Number));
    }
    out
}

fn allow_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type") {
        let mut list = match types.take() {
            Value::Array(list) => list,
            single => vec![single],
        };
        list.push(Value::from("null"));
        *types = Value::Array(list);
    } else if let Some(Value::Array(members)) = schema.get_mut("enum") {
        members.push(Value::Null);
    }
}

fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

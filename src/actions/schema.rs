//! JSON Schema (2020-12) of an action's input, generated from its parameter table.
//!
//! The schema describes exactly what [`super::validate`] accepts: optional parameters may
//! be `null` (they are left out when encoding), integers may be digit strings, flags may be
//! `true`/`false`/`"Y"`/`"N"`, lists may be arrays or comma-separated strings.
//!
//! Every `enum` holds values of one JSON type, stated beside it (`{"type": "string",
//! "enum": [...]}`); where the validator takes several types (a flag: a boolean or
//! `"Y"`/`"N"`), the schema says `anyOf` one per type, and an optional parameter adds
//! `{"type": "null"}` to it. Client generators (openapi-python-client) drop an operation
//! whose enum mixes types; `anyOf` of typed members they turn into a union.

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
        return typed_enum(enum_values(ty, enums));
    }
    match ty {
        ParamType::String => json!({"type": ["string", "number"]}),
        ParamType::Integer => json!({"type": ["integer", "string"], "pattern": INTEGER_PATTERN}),
        ParamType::Number => json!({"type": ["number", "string"], "pattern": NUMBER_PATTERN}),
        ParamType::Flag => json!({"anyOf": [
            {"type": "boolean"},
            {"type": "string", "enum": ["Y", "N"]},
        ]}),
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
                "items": {"type": "string", "enum": enums},
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

/// `{"type": T, "enum": [...]}` when the members share one JSON type, else `anyOf` of
/// one such schema per type (in the order the types first appear).
fn typed_enum(members: Vec<Value>) -> Value {
    let mut groups: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for member in members {
        let ty = match &member {
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            _ => "string",
        };
        match groups.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, list)) => list.push(member),
            None => groups.push((ty, vec![member])),
        }
    }
    let mut schemas: Vec<Value> = groups
        .into_iter()
        .map(|(ty, list)| json!({"type": ty, "enum": list}))
        .collect();
    if schemas.len() == 1 {
        schemas.remove(0)
    } else {
        json!({ "anyOf": schemas })
    }
}

fn allow_null(schema: &mut Value) {
    if let Some(Value::Array(members)) = schema.get_mut("anyOf") {
        members.push(json!({"type": "null"}));
    } else if schema.get("enum").is_some() {
        // `{"type": ["string", "null"], "enum": [.., null]}` would say the same, but
        // generators read a nullable enum best as a union with null.
        *schema = json!({ "anyOf": [schema.take(), {"type": "null"}] });
    } else if let Some(types) = schema.get_mut("type") {
        let mut list = match types.take() {
            Value::Array(list) => list,
            single => vec![single],
        };
        list.push(Value::from("null"));
        *types = Value::Array(list);
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::actions::CATALOG;

    /// Every `enum` in every input schema, with the `type` beside it.
    fn enums<'a>(schema: &'a Value, out: &mut Vec<(&'a Value, Option<&'a Value>)>) {
        match schema {
            Value::Object(map) => {
                if let Some(members) = map.get("enum") {
                    out.push((members, map.get("type")));
                }
                map.values().for_each(|v| enums(v, out));
            }
            Value::Array(list) => list.iter().for_each(|v| enums(v, out)),
            _ => {}
        }
    }

    fn json_type(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Generators drop an operation whose enum mixes JSON types
    /// (openapi-python-client: "Got {bool, str}"): each enum is of one
    /// type, and says it.
    #[test]
    fn no_enum_mixes_json_types_and_each_states_its_type() {
        let mut found = 0;
        for a in CATALOG {
            let schema = a.input_schema();
            let mut all = Vec::new();
            enums(&schema, &mut all);
            for (members, ty) in all {
                found += 1;
                let members = members.as_array().unwrap();
                let ty = ty
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{}: enum without one type: {members:?}", a.key));
                for m in members {
                    assert_eq!(json_type(m), ty, "{}: {members:?}", a.key);
                }
            }
        }
        assert!(found > 37, "only {found} enums");
    }

    #[test]
    fn a_flag_is_a_boolean_or_y_n_and_an_optional_one_may_be_null() {
        let list_purchases = crate::actions::find("list-purchases").unwrap();
        let schema = list_purchases.input_schema();
        let flag = &schema["properties"]["search"]["properties"]["has_affiliate"];
        assert_eq!(
            flag["anyOf"],
            serde_json::json!([
                {"type": "boolean"},
                {"type": "string", "enum": ["Y", "N"]},
                {"type": "null"},
            ])
        );
    }
}

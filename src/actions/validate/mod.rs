//! Hand-written validator over the table (no schema engine at run time).
//!
//! Walks the input once, collecting every problem. Paths are kept as a chain of stack
//! frames and only rendered to text when an error is reported, so a valid input costs no
//! allocation.

use serde_json::{Map, Value};

mod report;
mod scalar;

use super::{ActionDef, CONTROL_FIELDS, Param, ParamType, ValidationError};
use report::{Errors, Path, json_type, show, type_message, unknown_message};
use scalar::{in_enum, is_integer, is_number};

pub(super) fn validate(
    action: &ActionDef,
    input: &Map<String, Value>,
) -> Result<(), Vec<ValidationError>> {
    let mut errors = Errors(Vec::new());
    let root = Path::Root;
    for (key, value) in input {
        let path = Path::Key(&root, key);
        if let Some(param) = action.param(key) {
            check_param(param, value, &path, &mut errors);
        } else if CONTROL_FIELDS.contains(&key.as_str()) {
            check_control(action, key, value, &path, &mut errors);
        } else {
            let mut accepted: Vec<&str> = action.params.iter().map(|p| p.name).collect();
            if action.is_paged() {
                accepted.extend(CONTROL_FIELDS);
            }
            errors.push(
                &path,
                unknown_message("parameter", key, &accepted, action.key),
            );
        }
    }
    check_required(action.params, input, &root, &mut errors);
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

/// Validates an arbitrary JSON value as the input object (for callers holding a `Value`).
pub(super) fn validate_value(
    action: &ActionDef,
    input: &Value,
) -> Result<(), Vec<ValidationError>> {
    match input {
        Value::Object(map) => validate(action, map),
        other => Err(vec![ValidationError {
            path: String::new(),
            message: format!("the input must be a JSON object, got {}", json_type(other)),
        }]),
    }
}

/// A count such as `max_pages`: a non-negative JSON integer, also written
/// `47.0` (JSON Schema's `integer` includes numbers without a fraction).
pub fn page_count(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            // Saturates: 1e30 pages means "as many as there are".
            .map(|f| f as u64)
    })
}

fn check_control(action: &ActionDef, key: &str, value: &Value, path: &Path, errors: &mut Errors) {
    if !action.is_paged() {
        let message = format!(
            "{key} is only accepted by paged actions; {} returns everything at once, remove it",
            action.key
        );
        return errors.push(path, message);
    }
    let ok = match key {
        "all_pages" => value.is_boolean(),
        _ => page_count(value).is_some_and(|n| n >= 1),
    };
    if !ok {
        let want = if key == "all_pages" {
            "true or false"
        } else {
            "a positive integer"
        };
        errors.push(path, format!("{key} must be {want}, got {}", show(value)));
    }
}

fn check_required(params: &[Param], object: &Map<String, Value>, path: &Path, errors: &mut Errors) {
    for p in params
        .iter()
        .filter(|p| p.required && !object.contains_key(p.name))
    {
        let message = format!(
            "missing required parameter {} ({}): {}",
            p.name,
            p.ty.type_name(),
            p.description
        );
        errors.push(&Path::Key(path, p.name), message);
    }
}

fn check_param(p: &Param, value: &Value, path: &Path, errors: &mut Errors) {
    if value.is_null() {
        if p.required {
            errors.push(
                path,
                format!(
                    "{} is required and must not be null; give a {}",
                    p.name,
                    p.ty.type_name()
                ),
            );
        }
        return;
    }
    check_value(&p.ty, p.enum_values, value, path, errors);
}

fn check_value(ty: &ParamType, enums: &[&str], value: &Value, path: &Path, errors: &mut Errors) {
    let ok = match (ty, value) {
        (ParamType::String, Value::String(_) | Value::Number(_)) => true,
        (ParamType::Integer, v) => is_integer(v),
        (ParamType::Number, v) => is_number(v),
        (ParamType::Flag, Value::Bool(_)) => true,
        (ParamType::Flag, Value::String(s)) => s == "Y" || s == "N",
        (ParamType::Date, Value::String(_)) => true,
        (ParamType::List, Value::String(s)) => return check_list_string(s, enums, path, errors),
        (ParamType::List, Value::Array(items)) => {
            return check_list_items(items, enums, path, errors);
        }
        (ParamType::Object(fields), Value::Object(map)) => {
            return check_object(fields, true, map, path, errors);
        }
        (ParamType::OpenObject(fields), Value::Object(map)) => {
            return check_object(fields, false, map, path, errors);
        }
        (ParamType::Map, Value::Object(_)) => true,
        (ParamType::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                check_value(item, &[], v, &Path::Index(path, i), errors);
            }
            return;
        }
        _ => false,
    };
    if !ok {
        errors.push(path, type_message(ty, value));
    } else if !enums.is_empty() && !in_enum(value, enums) {
        errors.push(
            path,
            format!("must be one of: {} (got {})", enums.join(", "), show(value)),
        );
    }
}

fn check_object(
    fields: &[Param],
    closed: bool,
    map: &Map<String, Value>,
    path: &Path,
    errors: &mut Errors,
) {
    for (key, value) in map {
        let field_path = Path::Key(path, key);
        match fields.iter().find(|f| f.name == *key) {
            Some(f) => check_param(f, value, &field_path, errors),
            None if closed => {
                let accepted: Vec<&str> = fields.iter().map(|f| f.name).collect();
                errors.push(
                    &field_path,
                    unknown_message("field", key, &accepted, &path.render()),
                );
            }
            None => {}
        }
    }
    check_required(fields, map, path, errors);
}

fn check_list_string(s: &str, enums: &[&str], path: &Path, errors: &mut Errors) {
    if !enums.is_empty() && !s.split(',').all(|part| enums.contains(&part)) {
        let message = format!(
            "each comma-separated value must be one of: {} (got {s:?})",
            enums.join(", ")
        );
        errors.push(path, message);
    }
}

fn check_list_items(items: &[Value], enums: &[&str], path: &Path, errors: &mut Errors) {
    for (i, item) in items.iter().enumerate() {
        let item_path = Path::Index(path, i);
        if !matches!(item, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            errors.push(
                &item_path,
                format!(
                    "list items must be strings or numbers, got {}",
                    json_type(item)
                ),
            );
        } else if !enums.is_empty() && !in_enum(item, enums) {
            errors.push(
                &item_path,
                format!("must be one of: {} (got {})", enums.join(", "), show(item)),
            );
        }
    }
}

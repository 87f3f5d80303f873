//! Every catalog function without a stateful handler, answered the way
//! `stripe-mock` answers Stripe's spec: the parameters are checked against
//! the catalog's definitions (built from the official spec), and the reply
//! is a deterministic example shaped like the spec's reply schema
//! (`shapes`), with the ids the caller sent echoed where the shape has
//! them.
//!
//! Checks, on the wire text (every leaf is a string after parsing):
//! - a required parameter must be present and not blank (code 3
//!   "Missing parameter");
//! - integers are digits, numbers decimals, flags `Y`/`N` (or the `1`/`0`
//!   a PHP `true`/`false` becomes), lists comma-separated;
//! - a value must be one of the parameter's enum values (each item, for a
//!   list);
//! - nested parameters (`data[...]`, `search[...]`) must be nested; an
//!   object with a closed field list refuses unknown fields, as
//!   Digistore24 does (`data[tag]` on `updateProduct`, S5);
//! - a URL parameter (`*url*`) must be public `https://` (S2, S5: plain
//!   http and localhost are refused with this message);
//! - parameters the function does not take are ignored, as the server
//!   reads only the arguments it expects (`language`, `operator`,
//!   `ds24ver`, which the official connectors add, among them).

use serde_json::{Map, Value};

use crate::actions::{ActionDef, Effect, Param, ParamType};
use crate::sandbox::envelope::ApiError;
use crate::sandbox::shapes;

/// Which keys may call a catalog function: reads any key, writes and money
/// a `writable` one.
pub(crate) fn access_of(action: &ActionDef) -> super::Access {
    match action.effect {
        Effect::Read => super::Access::Read,
        Effect::Write | Effect::Money => super::Access::Write,
    }
}

/// Checks `params` against `action`'s parameters and answers its example
/// `data`.
///
/// # Errors
/// Code 3 naming the first parameter that is missing or wrong.
pub(crate) fn run(action: &ActionDef, params: &Map<String, Value>) -> Result<Value, ApiError> {
    check_fields(action.params, params, "", false)?;
    Ok(reply(action, params))
}

/// Checks the fields of one level: the top level (`prefix` empty) or a
/// nested object. `open` lets unknown fields pass.
fn check_fields(
    defs: &[Param],
    given: &Map<String, Value>,
    prefix: &str,
    open: bool,
) -> Result<(), ApiError> {
    // Unknown top-level names are ignored; unknown nested ones refused.
    if !prefix.is_empty()
        && !open
        && let Some(name) = given.keys().find(|k| !defs.iter().any(|d| d.name == *k))
    {
        return Err(ApiError::refused(format!(
            "Invalid array key in parameter '{prefix}' (given: {name})."
        )));
    }
    for def in defs {
        let name = if prefix.is_empty() {
            def.name.to_owned()
        } else {
            format!("{prefix}[{}]", def.name)
        };
        match given.get(def.name) {
            None => {
                if def.required {
                    return Err(ApiError::missing(&name));
                }
            }
            Some(value) if is_blank(value) => {
                if def.required {
                    return Err(ApiError::missing(&name));
                }
            }
            Some(value) => {
                check_value(&def.ty, def.enum_values, value, &name)?;
                if def.name.contains("url")
                    && let Some(url) = value.as_str()
                    && !super::secure_url(url.trim())
                {
                    return Err(ApiError::refused(
                        "Please only use secure URLs with https://",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// An empty or whitespace-only value, which a form sends for "nothing".
fn is_blank(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// Checks one present, non-blank value against its type and enum.
fn check_value(ty: &ParamType, enums: &[&str], value: &Value, name: &str) -> Result<(), ApiError> {
    match ty {
        ParamType::Object(fields) | ParamType::OpenObject(fields) => {
            let Value::Object(map) = value else {
                return Err(nested_expected(name));
            };
            check_fields(fields, map, name, matches!(ty, ParamType::OpenObject(_)))
        }
        ParamType::Map => match value {
            Value::Object(_) => Ok(()),
            _ => Err(nested_expected(name)),
        },
        ParamType::Array(item_ty) => {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                // `a[0]=x&a[2]=y` parses as an object keyed by numbers.
                Value::Object(map) if map.keys().all(|k| k.parse::<u64>().is_ok()) => {
                    map.values().collect()
                }
                _ => {
                    return Err(ApiError::invalid(
                        name,
                        "expected a list like name[0]=value.",
                    ));
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                if !is_blank(item) {
                    check_value(item_ty, &[], item, &format!("{name}[{i}]"))?;
                }
            }
            Ok(())
        }
        scalar => {
            let Some(text) = value.as_str() else {
                return Err(ApiError::invalid(name, "expected a single value."));
            };
            check_scalar(scalar, enums, text.trim(), name)
        }
    }
}

/// Checks the text of a scalar parameter.
fn check_scalar(ty: &ParamType, enums: &[&str], text: &str, name: &str) -> Result<(), ApiError> {
    let ok = match ty {
        ParamType::Integer => is_integer(text),
        ParamType::Number => is_number(text),
        ParamType::Flag => matches!(text.to_ascii_uppercase().as_str(), "Y" | "N" | "1" | "0"),
        _ => true,
    };
    if !ok {
        let why = match ty {
            ParamType::Integer => "expected a whole number.",
            ParamType::Number => "expected a number like 47.00.",
            _ => "expected Y or N.",
        };
        return Err(ApiError::invalid(name, why));
    }
    if enums.is_empty() {
        return Ok(());
    }
    let values: Vec<&str> = if matches!(ty, ParamType::List) {
        text.split(',').map(str::trim).collect()
    } else {
        vec![text]
    };
    match values.iter().find(|v| !enums.contains(v)) {
        None => Ok(()),
        Some(bad) => Err(ApiError::invalid(
            name,
            &format!("'{bad}' is not one of {}.", enums.join(", ")),
        )),
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    is_integer(whole) && is_integer(fraction) && !fraction.starts_with('-')
}

fn nested_expected(name: &str) -> ApiError {
    ApiError::invalid(name, "expected nested fields like name[key]=value.")
}

/// The reply `data`: the spec's shape with the caller's ids echoed, or a
/// generic object when the spec models none.
fn reply(action: &ActionDef, params: &Map<String, Value>) -> Value {
    match shapes::example(action.function) {
        Some(Value::Object(mut data)) => {
            echo(&mut data, params);
            Value::Object(data)
        }
        Some(other) => other,
        None => generic(action, params),
    }
}

/// Replaces each top-level scalar of the shape that has a parameter of the
/// same name with the value sent (`listInvoices` answers the
/// `purchase_id` it was asked about).
fn echo(data: &mut Map<String, Value>, params: &Map<String, Value>) {
    for (name, slot) in data.iter_mut() {
        let sent = params
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(sent) = sent
            && !slot.is_object()
            && !slot.is_array()
        {
            *slot = Value::String(sent.to_owned());
        }
    }
}

/// `data` for a function whose spec reply has no body: the scalar
/// parameters it was given by its own names (e.g. the id of what was
/// deleted) and, for a write, `modified: "Y"` as `ipnDelete` and
/// `unregister` answer.
fn generic(action: &ActionDef, params: &Map<String, Value>) -> Value {
    let mut data = Map::new();
    for def in action.params {
        if let Some(Value::String(text)) = params.get(def.name)
            && !text.trim().is_empty()
        {
            data.insert(def.name.to_owned(), Value::String(text.trim().to_owned()));
        }
    }
    if action.effect != Effect::Read {
        data.insert("modified".into(), "Y".into());
    }
    Value::Object(data)
}

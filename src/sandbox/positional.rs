//! Positional arguments (API-FACTS §3): the official PHP connectors send a
//! call's arguments as `arg1`, `arg2`, … instead of by name, each one
//! bracket-expanded when it is an array (`arg2[first_amount]=47.00`). The
//! server maps `argN` to the N-th argument the function expects; that order
//! is the one of the reference's "Syntax" line, which is the spec's
//! parameter order and so the catalog's (`actions::tests::conformance`
//! checks the catalog against the spec). `updateProduct(product_id, data)`
//! therefore reads `arg1=10001&arg2[name_intern]=x` as
//! `product_id=10001&data[name_intern]=x`.
//!
//! Rules, where the sources are silent ([infer]):
//! - an empty `argN` is a PHP `null` the caller passed to skip a position,
//!   so it is dropped;
//! - a position beyond the function's last argument is refused (code 3),
//!   since the server's argument list has no name for it;
//! - a parameter given both by position and by name must agree, or the call
//!   is refused (code 3) rather than one of them silently winning.
//!
//! Parameters the connectors add to every call (`language`, `operator`,
//! `ds24ver`) are named, not positional, and stay as they are.

use serde_json::{Map, Value};

use super::envelope::ApiError;
use crate::actions::ActionDef;

/// The position `N` of a parameter named `argN` (`arg1` is 1); `None` for
/// every other name, `arg0` and `arg01` included.
pub(crate) fn position(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("arg")?;
    if digits.starts_with('0') || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Renames every `argN` of `params` to the name of the N-th parameter of
/// `action`; other parameters are kept as they are.
///
/// # Errors
/// Code 3 for a position the function does not have, or for a parameter
/// given by position and by name with different values.
pub(crate) fn resolve(
    action: &ActionDef,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    if !params.keys().any(|k| position(k).is_some()) {
        return Ok(params.clone());
    }
    let mut named: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| position(k).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut positional: Vec<(usize, &String, &Value)> = params
        .iter()
        .filter_map(|(k, v)| position(k).map(|n| (n, k, v)))
        .collect();
    positional.sort_by_key(|(n, _, _)| *n);
    for (n, raw, value) in positional {
        let Some(param) = action.params.get(n - 1) else {
            return Err(ApiError::refused(format!(
                "Invalid parameter '{raw}': {}() takes {} argument(s).",
                action.function,
                action.params.len()
            )));
        };
        if value.as_str() == Some("") {
            continue;
        }
        match named.get(param.name) {
            Some(existing) if existing != value => {
                return Err(ApiError::refused(format!(
                    "Parameter '{}' was given twice, as '{raw}' and by name, with different values.",
                    param.name
                )));
            }
            _ => {
                named.insert(param.name.to_owned(), value.clone());
            }
        }
    }
    Ok(named)
}

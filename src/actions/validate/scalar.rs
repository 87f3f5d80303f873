//! The scalar forms each parameter type accepts.

use serde_json::Value;

/// A JSON integer (also `12.0`) or a string of digits with an optional minus.
pub(super) fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// A JSON number, or a string of digits with an optional minus and decimal part.
pub(super) fn is_number(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => {
            let unsigned = s.strip_prefix('-').unwrap_or(s);
            let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            digits(int) && digits(frac)
        }
        _ => false,
    }
}

/// Whether the wire text of a scalar (`true` → `Y`, `12.0` → `12`) is a member.
pub(super) fn in_enum(value: &Value, enums: &[&str]) -> bool {
    match value {
        Value::String(s) => enums.contains(&s.as_str()),
        Value::Number(n) => enums.contains(&crate::actions::encode::number_text(n).as_str()),
        Value::Bool(b) => enums.contains(&if *b { "Y" } else { "N" }),
        _ => false,
    }
}

//! Where a problem is (paths rendered only on error) and how it is worded.

use serde_json::Value;

use crate::actions::rank::closest;
use crate::actions::{ParamType, ValidationError};

/// A location in the input, as a chain of frames on the stack.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    pub(super) fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => format!("{}/{}", parent.render(), pointer_escape(key)),
            Path::Index(parent, i) => format!("{}/{i}", parent.render()),
        }
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The problems found so far, in input order.
pub(super) struct Errors(pub(super) Vec<ValidationError>);

impl Errors {
    pub(super) fn push(&mut self, path: &Path, message: String) {
        self.0.push(ValidationError {
            path: path.render(),
            message,
        });
    }
}

pub(super) fn type_message(ty: &ParamType, value: &Value) -> String {
    let hint = match ty {
        ParamType::Integer => "; give a number like 12 or a string of digits like \"12\"",
        ParamType::Number => "; give a number like 19.99 or a numeric string like \"19.99\"",
        ParamType::Flag => "; give true, false, \"Y\" or \"N\"",
        ParamType::List => "; give an array like [\"a\", \"b\"] or a string like \"a,b\"",
        ParamType::Date => {
            "; give a string like \"2024-01-31\", \"2024-01-31 12:00:00\", \"now\" or \"-7d\""
        }
        _ => "",
    };
    format!("expected {}, got {}{hint}", ty.type_name(), show(value))
}

pub(super) fn unknown_message(what: &str, key: &str, accepted: &[&str], owner: &str) -> String {
    let hint = closest(key, accepted.iter().copied())
        .map(|c| format!("did you mean {c}? "))
        .unwrap_or_default();
    let owner = if owner.is_empty() {
        String::new()
    } else {
        format!(" in {owner}")
    };
    if accepted.is_empty() {
        format!("unknown {what} {key}{owner}; no {what}s are accepted here, remove it")
    } else {
        format!(
            "unknown {what} {key}{owner}; {hint}accepted: {}",
            accepted.join(", ")
        )
    }
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for a message: scalars as JSON text, containers by their kind.
pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => json_type(v).to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("a string of {} characters", s.chars().count())
        }
        other => other.to_string(),
    }
}

//! Form encoding the way Digistore24's PHP side reads it (API-FACTS §3):
//! `application/x-www-form-urlencoded`, nested values in PHP bracket notation
//! (`data[name_intern]=x`, `tracking[0][parcel_service]=dhl`), booleans as `Y`/`N`,
//! lists comma-separated, nulls left out, keys in input order.
//!
//! The encoder never fails: it trusts [`super::validate`] for types and encodes whatever
//! it is given, using the table only to tell comma lists from indexed arrays.

use std::fmt::Write as _;

use form_urlencoded::Serializer;
use serde_json::{Map, Number, Value};

use super::{ActionDef, CONTROL_FIELDS, ParamType};

pub(super) fn encode_form(action: &ActionDef, input: &Map<String, Value>) -> String {
    let mut out = Encoder {
        form: Serializer::new(String::with_capacity(128)),
        key: String::with_capacity(64),
        scratch: String::new(),
    };
    for (name, value) in input {
        if CONTROL_FIELDS.contains(&name.as_str()) {
            continue;
        }
        out.key.clear();
        out.key.push_str(name);
        out.value(action.param(name).map(|p| &p.ty), value);
    }
    out.form.finish()
}

/// The wire text of a JSON number: integers as integers (also `47.0` → `47`), other
/// floats in serde_json's shortest round-trip form (`19.99`, never `19.990000000000002`).
pub(super) fn number_text(n: &Number) -> String {
    let mut out = String::new();
    write_number(&mut out, n);
    out
}

fn write_number(out: &mut String, n: &Number) {
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e15 => {
            let _ = write!(out, "{}", f as i64);
        }
        _ => {
            let _ = write!(out, "{n}");
        }
    }
}

struct Encoder {
    form: Serializer<'static, String>,
    /// The bracketed key of the value being written, grown and shrunk while walking.
    key: String,
    scratch: String,
}

impl Encoder {
    fn value(&mut self, ty: Option<&ParamType>, value: &Value) {
        match value {
            Value::Null => {}
            Value::Bool(b) => {
                self.form.append_pair(&self.key, if *b { "Y" } else { "N" });
            }
            Value::Number(n) => {
                self.scratch.clear();
                write_number(&mut self.scratch, n);
                self.form.append_pair(&self.key, &self.scratch);
            }
            Value::String(s) => {
                self.form.append_pair(&self.key, s);
            }
            Value::Array(items) if matches!(ty, Some(ParamType::List)) => self.list(items),
            Value::Array(items) => {
                let item_ty = match ty {
                    Some(ParamType::Array(item)) => Some(*item),
                    _ => None,
                };
                for (i, item) in items.iter().enumerate() {
                    let len = self.key.len();
                    let _ = write!(self.key, "[{i}]");
                    self.value(item_ty, item);
                    self.key.truncate(len);
                }
            }
            Value::Object(map) => {
                let fields = ty.map_or(&[][..], ParamType::fields);
                for (name, item) in map {
                    let len = self.key.len();
                    self.key.push('[');
                    self.key.push_str(name);
                    self.key.push(']');
                    let field_ty = fields.iter().find(|f| f.name == *name).map(|f| &f.ty);
                    self.value(field_ty, item);
                    self.key.truncate(len);
                }
            }
        }
    }

    /// A list parameter given as an array: one comma-separated value.
    fn list(&mut self, items: &[Value]) {
        self.scratch.clear();
        let mut first = true;
        for item in items.iter().filter(|v| !v.is_null()) {
            if !first {
                self.scratch.push(',');
            }
            first = false;
            match item {
                Value::String(s) => self.scratch.push_str(s),
                Value::Number(n) => write_number(&mut self.scratch, n),
                Value::Bool(b) => self.scratch.push(if *b { 'Y' } else { 'N' }),
                other => {
                    let _ = write!(self.scratch, "{other}");
                }
            }
        }
        self.form.append_pair(&self.key, &self.scratch);
    }
}

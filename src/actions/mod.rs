//! The action catalog: every Digistore24 API function as a named, validated action.
//!
//! The table itself lives in `catalog/` (one file per domain); this module holds the
//! types and the lookups. Schema generation, validation, form encoding and ranking are
//! pure functions over the table, each in its own file.

mod catalog;
mod encode;
mod rank;
mod schema;
mod validate;
pub use validate::page_count;

#[cfg(test)]
mod tests;

pub use catalog::CATALOG;
pub use rank::{rank, suggest};

/// What a call does to the account; decides retries and policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Only reads; safe to retry.
    Read,
    /// Changes something; never sent twice.
    Write,
    /// Moves or charges money (refunds, charges, billing on demand); never sent twice.
    Money,
}

/// The type of one parameter, as the caller gives it in JSON.
#[derive(Clone, Copy, Debug)]
pub enum ParamType {
    /// A string; numbers are accepted and sent as text.
    String,
    /// A JSON integer or a string of digits.
    Integer,
    /// A JSON number or a numeric string.
    Number,
    /// Y/N on the wire; accepts `true`/`false`/`"Y"`/`"N"`.
    Flag,
    /// A date, date-time or relative time (`now`, `-3d`) as a string.
    Date,
    /// Comma-separated on the wire; accepts a JSON array of scalars or a string.
    List,
    /// An object with known fields; unknown fields are rejected.
    Object(&'static [Param]),
    /// An object with known fields where the spec is known to be incomplete
    /// (API-FACTS §9.6): known fields are checked, other fields pass through.
    OpenObject(&'static [Param]),
    /// A free-form object, sent in bracket notation.
    Map,
    /// A JSON array of items, sent as `name[0][...]`.
    Array(&'static ParamType),
}

/// One input parameter of an action.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    /// Allowed values (as wire text); empty means any.
    pub enum_values: &'static [&'static str],
    pub description: &'static str,
}

/// Where a paged action keeps its items.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// Field inside the envelope's `data` that holds the items, e.g. `purchase_list`.
    pub items_field: &'static str,
}

/// One Digistore24 function as a named action.
#[derive(Clone, Copy, Debug)]
pub struct ActionDef {
    /// Kebab-case name, see [`key_for`].
    pub key: &'static str,
    /// The Digistore24 function name (path `/{function}`).
    pub function: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub effect: Effect,
    pub paging: Option<Paging>,
    pub params: &'static [Param],
}

/// One problem found in an action input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValidationError {
    /// JSON-pointer-like location, e.g. `/data/name_intern`; empty for the input itself.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Control fields of paged actions: handled by the proxy, never sent upstream.
pub const CONTROL_FIELDS: [&str; 2] = ["all_pages", "max_pages"];

/// The action with this key, or with this function name (`listProducts`) as an alias.
pub fn find(key_or_function: &str) -> Option<&'static ActionDef> {
    CATALOG
        .iter()
        .find(|a| a.key == key_or_function)
        .or_else(|| CATALOG.iter().find(|a| a.function == key_or_function))
}

/// Effect of a function called on the pass-through route; unknown functions count as writes.
pub fn effect_of_function(function: &str) -> Effect {
    canonical(function).map_or(Effect::Write, |a| a.effect)
}

/// The catalog entry of a function name in any letter case: PHP (and so
/// Digistore24) calls methods case-insensitively, so `RefundPurchase` is
/// `refundPurchase` and must be judged as such.
pub fn canonical(function: &str) -> Option<&'static ActionDef> {
    CATALOG
        .iter()
        .find(|a| a.function.eq_ignore_ascii_case(function))
}

/// The action key of a function name: kebab-case split at capitals, with the compounds
/// `Orderform`, `Paymentplan` and `Smartupgrade` split into two words.
pub fn key_for(function: &str) -> String {
    const COMPOUNDS: [(&str, &str); 3] = [
        ("orderform", "order-form"),
        ("paymentplan", "payment-plan"),
        ("smartupgrade", "smart-upgrade"),
    ];
    let mut words: Vec<String> = Vec::new();
    for c in function.chars() {
        if c.is_ascii_uppercase() || words.is_empty() {
            words.push(String::new());
        }
        words.last_mut().unwrap().push(c.to_ascii_lowercase());
    }
    let words: Vec<String> = words
        .into_iter()
        .map(|w| match COMPOUNDS.iter().find(|(c, _)| w.starts_with(c)) {
            Some((c, split)) => format!("{split}{}", &w[c.len()..]),
            None => w,
        })
        .collect();
    words.join("-")
}

impl ActionDef {
    /// Whether the action returns its items page by page.
    pub fn is_paged(&self) -> bool {
        self.paging.is_some()
    }

    /// The parameter with this name, if the action has one.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// JSON Schema (2020-12) of the input object.
    pub fn input_schema(&self) -> serde_json::Value {
        schema::input_schema(self)
    }

    /// Checks an input against the table; reports every problem, not only the first.
    pub fn validate(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Vec<ValidationError>> {
        validate::validate(self, input)
    }

    /// Like [`ActionDef::validate`] for any JSON value; a non-object is one error at path "".
    pub fn validate_value(&self, input: &serde_json::Value) -> Result<(), Vec<ValidationError>> {
        validate::validate_value(self, input)
    }

    /// The `application/x-www-form-urlencoded` body Digistore24 expects (PHP brackets,
    /// `Y`/`N`, comma lists); control fields and nulls are left out.
    pub fn encode_form(&self, input: &serde_json::Map<String, serde_json::Value>) -> String {
        encode::encode_form(self, input)
    }
}

impl ParamType {
    /// Short human name of the type, for messages and help texts.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Flag => "flag (true/false or \"Y\"/\"N\")",
            ParamType::Date => "date string",
            ParamType::List => "list (array or comma-separated string)",
            ParamType::Object(_) | ParamType::OpenObject(_) => "object",
            ParamType::Map => "object",
            ParamType::Array(_) => "array",
        }
    }

    /// The known fields of an object type.
    pub fn fields(&self) -> &'static [Param] {
        match self {
            ParamType::Object(f) | ParamType::OpenObject(f) => f,
            _ => &[],
        }
    }
}

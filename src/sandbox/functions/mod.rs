//! The functions the sandbox answers: one table, one file per domain.
//!
//! A handler gets the store (or, for the connect flow, the keys) and the
//! call (parameters, key, time, host) and returns the `data` of a success
//! envelope or an [`ApiError`].

mod account;
mod api_keys;
mod buyers;
mod deliveries;
pub(crate) mod generic;
mod ipn;
mod products;
mod purchases;
mod refunds;
mod transactions;
mod vouchers;

use serde_json::{Map, Value};

use super::Sandbox;
use super::auth::ApiKey;
use super::envelope::ApiError;
use super::keys::Keys;
use super::store::Store;

/// What a handler sees of a request.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// Merged query and body parameters.
    pub params: &'a Map<String, Value>,
    /// The key that called.
    pub key: ApiKey,
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// `host[:port]` the request was sent to, for links back to the
    /// sandbox (the approval page).
    pub host: &'a str,
}

/// Which keys may call a function (API-FACTS §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Any `readonly` or `writable` key.
    Read,
    /// A `writable` key.
    Write,
    /// A developer key, and nothing else.
    Developer,
}

/// A handler working on the account's records.
type DataHandler = fn(&mut Store, &Call<'_>) -> Result<Value, ApiError>;

/// A handler working on the keys and connect requests.
type KeysHandler = fn(&mut Keys, &Call<'_>) -> Result<Value, ApiError>;

/// A function's handler, by the state it works on.
#[derive(Clone, Copy, Debug)]
enum Handler {
    Data(DataHandler),
    Keys(KeysHandler),
}

/// One entry of the function table.
#[derive(Debug)]
pub(crate) struct Function {
    /// Name as Digistore24 spells it.
    pub name: &'static str,
    /// Which keys may call it.
    pub access: Access,
    handler: Handler,
}

impl Function {
    /// Runs the handler, holding the one lock it needs for the whole call.
    pub fn run(&self, sandbox: &Sandbox, call: &Call<'_>) -> Result<Value, ApiError> {
        match self.handler {
            Handler::Data(handler) => handler(&mut sandbox.store(), call),
            Handler::Keys(handler) => handler(&mut sandbox.keys(), call),
        }
    }
}

const fn read(name: &'static str, handler: DataHandler) -> Function {
    Function {
        name,
        access: Access::Read,
        handler: Handler::Data(handler),
    }
}

const fn write(name: &'static str, handler: DataHandler) -> Function {
    Function {
        name,
        access: Access::Write,
        handler: Handler::Data(handler),
    }
}

const fn keys(name: &'static str, access: Access, handler: KeysHandler) -> Function {
    Function {
        name,
        access,
        handler: Handler::Keys(handler),
    }
}

/// Every function the sandbox knows.
pub(crate) const FUNCTIONS: &[Function] = &[
    read("listProducts", products::list),
    read("getProduct", products::get),
    write("createProduct", products::create),
    write("updateProduct", products::update),
    write("deleteProduct", products::delete),
    read("listPurchases", purchases::list),
    read("getPurchase", purchases::get),
    write("updatePurchase", purchases::update),
    write("refundPurchase", refunds::refund_purchase),
    read("listTransactions", transactions::list),
    read("listInvoices", transactions::list_invoices),
    read("listBuyers", buyers::list),
    read("getBuyer", buyers::get),
    write("updateBuyer", buyers::update),
    read("listVouchers", vouchers::list),
    read("getVoucher", vouchers::get),
    write("createVoucher", vouchers::create),
    read("listDeliveries", deliveries::list),
    write("updateDelivery", deliveries::update),
    read("listOrderforms", account::list_orderforms),
    read("getUserInfo", account::get_user_info),
    read("ping", account::ping),
    write("ipnSetup", ipn::setup),
    read("ipnInfo", ipn::info),
    write("ipnDelete", ipn::delete),
    keys("requestApiKey", Access::Developer, api_keys::request),
    keys("retrieveApiKey", Access::Developer, api_keys::retrieve),
    // Any key may delete itself, a read-only one included: unregistering
    // gives up access rather than changing the account's data.
    keys("unregister", Access::Read, api_keys::unregister),
];

/// Looks a stateful function up by name. PHP method names ignore case, so
/// the sandbox does too.
pub(crate) fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The canonical name of any function the sandbox answers: a stateful one
/// or, through [`generic`], any other function of the catalog.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    find(name)
        .map(|f| f.name)
        .or_else(|| crate::actions::canonical(name).map(|a| a.function))
}

impl Call<'_> {
    /// A string parameter, `None` when absent.
    ///
    /// # Errors
    /// Code 3 when it is a nested object or list instead of a string.
    pub fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.params.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ApiError::invalid(name, "expected a single value.")),
        }
    }

    /// A string parameter that must be present and not blank.
    ///
    /// # Errors
    /// Code 3 naming the parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.optional(name)? {
            Some(text) if !text.trim().is_empty() => Ok(text.trim()),
            _ => Err(ApiError::missing(name)),
        }
    }

    /// A nested parameter such as `data[...]` or `search[...]`.
    ///
    /// # Errors
    /// Code 3 when it was sent as a plain value.
    pub fn object(&self, name: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.params.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            // An empty `data=` is what a form sends for an empty object.
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(_) => Err(ApiError::invalid(
                name,
                "expected nested fields like name[key]=value.",
            )),
        }
    }

    /// The fields an update function should apply: the `data[...]` object
    /// when one was sent, else the known names among the flat parameters.
    /// Where Digistore24 nests them is unknown for several functions
    /// (API-FACTS §8.1), so both shapes work.
    ///
    /// # Errors
    /// Code 3 when `data` was sent as a plain value.
    pub fn edits(&self, known: &[&str]) -> Result<Map<String, Value>, ApiError> {
        Ok(match self.object("data")? {
            Some(data) => data.clone(),
            None => self
                .params
                .iter()
                .filter(|(name, _)| known.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        })
    }

    /// A `Y`/`N` flag (also `1`/`0`, `true`/`false`); absent means no.
    ///
    /// # Errors
    /// Code 3 for any other value.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.optional(name)?
            .map_or(Ok(false), |v| parse_flag(name, v))
    }
}

/// Reads a flag value as the API writes it.
///
/// # Errors
/// Code 3 naming the parameter.
pub(crate) fn parse_flag(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "y" | "1" | "true" | "yes" => Ok(true),
        "n" | "0" | "false" | "no" | "" => Ok(false),
        _ => Err(ApiError::invalid(name, "expected Y or N.")),
    }
}

/// The text of a search field (`search[email]`), `None` when absent/blank.
pub(crate) fn search_field<'a>(
    search: Option<&'a Map<String, Value>>,
    name: &str,
) -> Option<&'a str> {
    search
        .and_then(|s| s.get(name))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Applies `(name, value)` edits to an editable record after checking every
/// name against `allowed`. Returns whether anything changed.
///
/// # Errors
/// Code 3 naming the first unknown field or a nested value; the record is
/// left untouched then. Digistore24 validates `data` against an allowlist
/// the same way (API-FACTS §8.1, S2).
pub(crate) fn apply_fields(
    fields: &mut Map<String, Value>,
    edits: &Map<String, Value>,
    allowed: &[&str],
    parameter: &str,
) -> Result<bool, ApiError> {
    for (name, value) in edits {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::refused(format!(
                "Invalid array key in parameter '{parameter}' (given: {name})."
            )));
        }
        if !value.is_string() {
            return Err(ApiError::invalid(
                &format!("{parameter}[{name}]"),
                "expected a single value.",
            ));
        }
    }
    let mut changed = false;
    for (name, value) in edits {
        if fields.get(name) != Some(value) {
            fields.insert(name.clone(), value.clone());
            changed = true;
        }
    }
    Ok(changed)
}

/// Public `https://` URLs only; Digistore24 refuses plain http and
/// localhost for every URL parameter (S2, S5).
pub(crate) fn secure_url(text: &str) -> bool {
    match url::Url::parse(text) {
        Ok(url) => {
            url.scheme() == "https"
                && !matches!(
                    url.host_str(),
                    Some("localhost" | "127.0.0.1" | "[::1]") | None
                )
        }
        Err(_) => false,
    }
}

//! `listVouchers`, `getVoucher`, `createVoucher`. Digistore24 calls vouchers
//! "coupons" in its replies.

use serde_json::{Map, Value, json};

use super::{Call, parse_flag};
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::store::{Fields, Store, Voucher, fields_of, yes_no};

/// Parameters of `createVoucher` besides `code` (spec).
#[rustfmt::skip]
const FIELDS: &[&str] = &[
    "product_ids", "valid_from", "expires_at", "first_rate", "other_rates", "first_amount",
    "other_amounts", "currency", "is_count_limited", "count_left", "upgrade_policy",
];

/// `listVouchers`: `data.coupons` and `data.are_returned_data_public`.
pub(super) fn list(store: &mut Store, _call: &Call<'_>) -> Result<Value, ApiError> {
    let coupons: Vec<Value> = store.vouchers.iter().map(render).collect();
    Ok(json!({ "coupons": coupons, "are_returned_data_public": "N" }))
}

/// `getVoucher`: `data.coupon` by `code` (case ignored).
pub(super) fn get(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let code = call.required("code")?;
    let voucher = store
        .vouchers
        .iter()
        .find(|v| v.code.eq_ignore_ascii_case(code))
        .ok_or_else(|| ApiError::not_found("voucher", code))?;
    Ok(json!({ "coupon": render(voucher) }))
}

/// `createVoucher`: `code` plus optional discount fields, flat or as
/// `data[...]` (the wire nesting is unknown, so both work); answers
/// `data.discount_code_id` and `data.code`.
pub(super) fn create(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let nested = call.object("data")?;
    let source = nested.unwrap_or(call.params);
    let code = source
        .get("code")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if code.is_empty() {
        return Err(ApiError::missing("code"));
    }
    if code.len() > 63
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "code",
            "use up to 63 letters, digits, - or _.",
        ));
    }
    if store
        .vouchers
        .iter()
        .any(|v| v.code.eq_ignore_ascii_case(code))
    {
        return Err(ApiError::refused(format!(
            "The voucher code {code} already exists."
        )));
    }
    let mut fields = defaults();
    for name in FIELDS {
        let Some(value) = source.get(*name) else {
            continue;
        };
        let Some(value) = value.as_str() else {
            return Err(ApiError::invalid(name, "expected a single value."));
        };
        fields.insert((*name).to_owned(), normalise(name, value.trim())?);
    }
    let id = store.next_voucher_id;
    store.next_voucher_id += 1;
    let code = code.to_owned();
    store.vouchers.push(Voucher {
        id,
        code: code.clone(),
        fields,
        created_at: call.now,
    });
    Ok(json!({ "discount_code_id": id.to_string(), "code": code }))
}

fn render(voucher: &Voucher) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), voucher.id.to_string().into());
    out.insert("code".into(), voucher.code.clone().into());
    out.extend(voucher.fields.clone());
    out.insert(
        "created_at".into(),
        clock::format(voucher.created_at).into(),
    );
    Value::Object(out)
}

/// What a new voucher has before its parameters are applied.
fn defaults() -> Fields {
    fields_of(json!({
        "product_ids": "all", "first_rate": "", "other_rates": "", "first_amount": "",
        "other_amounts": "", "currency": "", "is_count_limited": "N", "count_left": "",
        "upgrade_policy": "valid", "is_discarding_early_bird": "N",
        "valid_from": null, "expires_at": null,
    }))
}

/// Checks one field and writes it the way the API shows it.
fn normalise(name: &str, value: &str) -> Result<Value, ApiError> {
    Ok(match name {
        _ if value.is_empty() => Value::String(String::new()),
        "first_rate" | "other_rates" | "first_amount" | "other_amounts" => {
            let n: f64 = value
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| ApiError::invalid(name, "expected a number like 10.00."))?;
            format!("{n:.2}").into()
        }
        "is_count_limited" => yes_no(parse_flag(name, value)?).into(),
        "count_left" => value
            .parse::<u64>()
            .map_err(|_| ApiError::invalid(name, "expected a whole number."))?
            .to_string()
            .into(),
        "valid_from" | "expires_at" => clock::parse(value, name == "expires_at")
            .map(clock::format)
            .ok_or_else(|| ApiError::invalid(name, "expected YYYY-MM-DD HH:MM:SS."))?
            .into(),
        "upgrade_policy" if !matches!(value, "valid" | "other_only" | "not_valid") => {
            return Err(ApiError::invalid(
                name,
                "expected valid, other_only or not_valid.",
            ));
        }
        _ => value.into(),
    })
}

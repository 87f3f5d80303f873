//! `listPurchases`, `getPurchase`, `updatePurchase` (refunds: `refunds.rs`).

use serde_json::{Map, Value, json};

use super::{Call, buyers, parse_flag, search_field, transactions};
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::paging::Page;
use crate::sandbox::store::{LINK_BASE, Purchase, Store, money, text, yes_no};

/// P8 gives 1000 as default page size (the spec says 500).
const DEFAULT_PAGE_SIZE: usize = 1000;

/// Percent of the amount shown as the vendor's `earning`: a plausible
/// share after fees, not Digistore24's real fee schedule.
const VENDOR_SHARE: i64 = 88;

/// Fields `updatePurchase` accepts (API-FACTS §8.1).
#[rustfmt::skip]
const UPDATABLE: &[&str] = &[
    "tracking_param", "custom", "unlock_invoices", "next_payment_at",
];

/// `listPurchases`: `data.purchase_list` plus paging fields. Filters:
/// `from`/`to` on the order date (no bound by default, because the seed is
/// fixed in the past), `search[email|product_id|purchase_id|first_name|
/// last_name|currency|billing_type]`; `sort_by` date|amount|earning,
/// `sort_order` asc|desc, `load_transactions=Y`.
pub(super) fn list(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let store = &*store;
    let from = bound(call, "from", false)?;
    let to = bound(call, "to", true)?;
    let search = call.object("search")?;
    let page = Page::from_call(call, DEFAULT_PAGE_SIZE)?;
    let with_transactions = call.flag("load_transactions")?;
    let by_amount = match call.optional("sort_by")?.map(str::trim) {
        None | Some("" | "date") => false,
        Some("amount" | "earning") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "sort_by",
                "expected date, earning or amount.",
            ));
        }
    };
    let descending = match call.optional("sort_order")?.map(str::trim) {
        None | Some("" | "asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::invalid("sort_order", "expected asc or desc.")),
    };
    let mut found: Vec<&Purchase> = store
        .purchases
        .iter()
        .filter(|p| from.is_none_or(|f| p.created_at >= f) && to.is_none_or(|t| p.created_at <= t))
        .filter(|p| matches_search(store, p, search))
        .collect();
    found.sort_by_key(|p| {
        (
            if by_amount { p.amount } else { p.created_at },
            p.created_at,
        )
    });
    if descending {
        found.reverse();
    }
    let items: Vec<Value> = page
        .slice(&found)
        .iter()
        .map(|p| render(store, p, with_transactions))
        .collect();
    let mut data = Map::new();
    data.insert("purchase_list".into(), Value::Array(items));
    page.describe(&mut data, found.len());
    Ok(Value::Object(data))
}

/// `getPurchase`: one id gives the purchase itself as `data` (the spec's
/// flat schema, with `transaction_list`); a comma-separated list gives an
/// object keyed by purchase id.
pub(super) fn get(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let ids: Vec<&str> = call
        .required("purchase_id")?
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    let mut found = Map::new();
    for id in &ids {
        let purchase = store
            .purchase(id)
            .ok_or_else(|| ApiError::not_found("purchase", id))?;
        found.insert(purchase.id.clone(), render(store, purchase, true));
    }
    if ids.len() == 1 {
        return found
            .into_iter()
            .next()
            .map(|(_, purchase)| purchase)
            .ok_or_else(|| ApiError::missing("purchase_id"));
    }
    if found.is_empty() {
        return Err(ApiError::missing("purchase_id"));
    }
    Ok(Value::Object(found))
}

/// `updatePurchase`: `purchase_id` plus `tracking_param`, `custom`,
/// `unlock_invoices`, `next_payment_at`, flat or as `data[...]`; answers
/// `data.is_modified`. Nothing changes unless every field is valid.
pub(super) fn update(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("purchase_id")?;
    let edits = call.edits(UPDATABLE)?;
    let purchase = store
        .purchases
        .iter_mut()
        .find(|p| p.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| ApiError::not_found("purchase", id))?;
    let mut changed = purchase.clone();
    for (name, value) in &edits {
        let field = format!("data[{name}]");
        let value = value
            .as_str()
            .ok_or_else(|| ApiError::invalid(&field, "expected a single value."))?;
        match name.as_str() {
            "tracking_param" => changed.tracking_param = value.to_owned(),
            "custom" => changed.custom = value.to_owned(),
            "unlock_invoices" => {
                changed.unlock_invoices = yes_no(parse_flag(&field, value)?).to_owned();
            }
            "next_payment_at" => {
                let when = clock::parse(value, false)
                    .ok_or_else(|| ApiError::invalid(&field, "expected YYYY-MM-DD HH:MM:SS."))?;
                changed.next_payment_at = Some(when);
            }
            _ => {
                return Err(ApiError::refused(format!(
                    "Invalid array key in parameter 'data' (given: {name})."
                )));
            }
        }
    }
    let modified = changed != *purchase;
    *purchase = changed;
    Ok(json!({ "is_modified": yes_no(modified) }))
}

/// The purchase as the list and get functions show it.
pub(super) fn render(store: &Store, p: &Purchase, with_transactions: bool) -> Value {
    let buyer = buyers::summary(store, p.buyer_id, true);
    let links = |kind: &str| format!("{LINK_BASE}/{kind}/{}", p.id);
    let mut out = json!({
        "id": p.id, "purchase_id": p.id, "created_at": clock::format(p.created_at),
        "product_id": p.product_id.to_string(), "product_name": p.product_name, "quantity": "1",
        "amount": money(p.amount), "currency": p.currency, "earning": money(p.amount * VENDOR_SHARE / 100),
        "billing_type": p.billing_type, "billing_type_msg": label(p.billing_type),
        "billing_status": p.billing_status, "billing_status_msg": label(p.billing_status),
        "payment_status": p.payment_status, "payment_status_msg": label(p.payment_status),
        "pay_method": p.pay_method, "pay_method_msg": transactions::pay_method_label(p.pay_method),
        "next_payment_at": p.next_payment_at.map(clock::format),
        "refunded_at": p.refunded_at.map(clock::format),
        "tracking_param": p.tracking_param, "custom": p.custom,
        "unlock_invoices": p.unlock_invoices, "affiliate_name": p.affiliate_name,
        "is_test_order": "N", "buyer_email": buyer.get("email").cloned().unwrap_or_default(),
        "buyer": buyer,
        "items": [{ "product_id": p.product_id.to_string(), "product_name": p.product_name, "quantity": "1" }],
        "invoice_url": links("invoice"), "receipt_url": links("receipt"), "renew_url": links("renew"),
    });
    if let (true, Value::Object(map)) = (with_transactions, &mut out) {
        let list: Vec<Value> = store
            .transactions_of(&p.id)
            .map(|t| transactions::render(store, t))
            .collect();
        map.insert("transaction_list".into(), Value::Array(list));
    }
    out
}

fn label(status: &str) -> &'static str {
    match status {
        "single_payment" => "Single payment",
        "subscription" => "Subscription",
        "completed" => "Completed",
        "paying" => "Paying",
        "aborted" => "Aborted",
        "paid" => "Paid",
        "refunded" => "Refunded",
        _ => "",
    }
}

fn matches_search(store: &Store, p: &Purchase, search: Option<&Map<String, Value>>) -> bool {
    let buyer = store.buyer(p.buyer_id).map(|b| &b.fields);
    let buyer_field = |name: &str| buyer.map_or("", |f| text(f, name));
    let checks: [(&str, &str); 7] = [
        ("email", buyer_field("email")),
        ("first_name", buyer_field("first_name")),
        ("last_name", buyer_field("last_name")),
        ("product_id", &p.product_id.to_string()),
        ("purchase_id", &p.id),
        ("currency", &p.currency),
        ("billing_type", p.billing_type),
    ];
    checks.iter().all(|(name, actual)| {
        search_field(search, name).is_none_or(|wanted| {
            wanted
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(actual))
        })
    })
}

/// A `from`/`to` parameter as a time bound.
pub(super) fn bound(
    call: &Call<'_>,
    name: &str,
    end_of_day: bool,
) -> Result<Option<i64>, ApiError> {
    match call.optional(name)? {
        None => Ok(None),
        Some(text) => {
            clock::bound(text, call.now, end_of_day).map_err(|why| ApiError::invalid(name, why))
        }
    }
}

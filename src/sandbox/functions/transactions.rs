//! `listTransactions` and `listInvoices`. Invoices are derived from the
//! transactions (one invoice per payment, one credit note per refund), so a
//! refund shows up in both without extra bookkeeping.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::purchases::bound;
use super::{Call, buyers, search_field};
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::paging::Page;
use crate::sandbox::store::{LINK_BASE, Store, Transaction, TxKind, money, text};

/// P9 gives 1000 as default page size.
const DEFAULT_PAGE_SIZE: usize = 1000;

/// `listTransactions`: `data.transaction_list`, `data.summary` (over every
/// match, not only the page) and paging fields. Filters: `from`/`to` on the
/// transaction date, `search[purchase_id|email|product_id|transaction_type|
/// currency]`; `sort_by` date|amount|earning, `sort_order` asc|desc.
pub(super) fn list(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let store = &*store;
    let from = bound(call, "from", false)?;
    let to = bound(call, "to", true)?;
    let search = call.object("search")?;
    let page = Page::from_call(call, DEFAULT_PAGE_SIZE)?;
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
    let mut found: Vec<&Transaction> = store
        .transactions
        .iter()
        .filter(|t| from.is_none_or(|f| t.created_at >= f) && to.is_none_or(|e| t.created_at <= e))
        .filter(|t| matches_search(store, t, search))
        .collect();
    found.sort_by_key(|t| (if by_amount { t.amount } else { t.created_at }, t.id));
    if descending {
        found.reverse();
    }
    let mut data = Map::new();
    let first = store
        .transactions
        .iter()
        .map(|t| t.created_at)
        .min()
        .unwrap_or(call.now);
    data.insert("from".into(), clock::format(from.unwrap_or(first)).into());
    data.insert("to".into(), clock::format(to.unwrap_or(call.now)).into());
    page.describe(&mut data, found.len());
    data.insert("summary".into(), summary(&found));
    let items = page
        .slice(&found)
        .iter()
        .map(|t| render(store, t))
        .collect();
    data.insert("transaction_list".into(), Value::Array(items));
    Ok(Value::Object(data))
}

/// `listInvoices`: `data.purchase_id` and `data.invoice_list` of one
/// purchase (`purchase_id` is required).
pub(super) fn list_invoices(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("purchase_id")?;
    let purchase = store
        .purchase(id)
        .ok_or_else(|| ApiError::not_found("purchase", id))?;
    let invoices: Vec<Value> = store
        .transactions_of(&purchase.id)
        .map(|t| {
            let (kind, label) = match t.kind {
                TxKind::Payment => ("invoice", "Invoice"),
                TxKind::Refund => ("credit_note", "Credit note"),
            };
            json!({
                "invoice_id": format!("SBX-INV-{}", t.id),
                "invoice_label": format!("{label} {}", t.id),
                "invoice_date": clock::format_date(t.created_at),
                "invoice_url": format!("{LINK_BASE}/invoice/{}/{}", t.purchase_id, t.id),
                "pay_method": t.pay_method, "pay_method_msg": pay_method_label(t.pay_method),
                "purchase_id": t.purchase_id, "type": kind,
                "amount": money(t.amount), "currency": t.currency,
            })
        })
        .collect();
    Ok(json!({ "purchase_id": purchase.id, "invoice_list": invoices }))
}

/// A transaction as `listTransactions` and `transaction_list` show it.
pub(super) fn render(store: &Store, t: &Transaction) -> Value {
    let purchase = store.purchase(&t.purchase_id);
    let (kind, label) = t.kind.names();
    json!({
        "id": t.id.to_string(), "purchase_id": t.purchase_id,
        "created_at": clock::format(t.created_at),
        "amount": money(t.amount), "currency": t.currency,
        "transaction_type": kind, "transaction_type_msg": label, "type": kind, "type_msg": label,
        "pay_method": t.pay_method, "pay_method_msg": pay_method_label(t.pay_method),
        "product_id": purchase.map(|p| p.product_id.to_string()),
        "product_name": purchase.map(|p| p.product_name.clone()),
        "buyer": purchase.map(|p| buyers::summary(store, p.buyer_id, false)),
        "invoice_url": format!("{LINK_BASE}/invoice/{}/{}", t.purchase_id, t.id),
    })
}

/// Display name of a payment method.
pub(super) fn pay_method_label(method: &str) -> &'static str {
    match method {
        "paypal" => "PayPal",
        "creditcard" => "Credit card",
        "sepa" => "SEPA direct debit",
        "banktransfer" => "Bank transfer",
        _ => "",
    }
}

/// Counts and net amount per currency over all matching transactions.
fn summary(found: &[&Transaction]) -> Value {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for t in found {
        *totals.entry(&t.currency).or_default() += t.amount;
    }
    let amounts: Map<String, Value> = totals
        .into_iter()
        .map(|(currency, cents)| (currency.to_owned(), money(cents).into()))
        .collect();
    let refunds = found.iter().filter(|t| t.kind == TxKind::Refund).count();
    json!({
        "transaction_count": found.len(),
        "payment_count": found.len() - refunds,
        "refund_count": refunds,
        "amount": amounts,
    })
}

fn matches_search(store: &Store, t: &Transaction, search: Option<&Map<String, Value>>) -> bool {
    let purchase = store.purchase(&t.purchase_id);
    let email = purchase
        .and_then(|p| store.buyer(p.buyer_id))
        .map_or("", |b| text(&b.fields, "email"));
    let product_id = purchase
        .map(|p| p.product_id.to_string())
        .unwrap_or_default();
    let checks: [(&str, &str); 5] = [
        ("purchase_id", &t.purchase_id),
        ("email", email),
        ("product_id", &product_id),
        ("transaction_type", t.kind.names().0),
        ("currency", &t.currency),
    ];
    checks.iter().all(|(name, actual)| {
        search_field(search, name).is_none_or(|wanted| {
            wanted
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(actual))
        })
    })
}

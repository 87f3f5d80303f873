//! `refundPurchase`: the one money-moving function of the sandbox.

use serde_json::{Value, json};

use super::Call;
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::store::{Store, TxKind, money};

/// `refundPurchase`: refunds every payment of the order, stops billing and
/// marks it refunded. A second refund is refused, and so is a purchase past
/// its refund period unless `force=Y`.
pub(super) fn refund_purchase(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("purchase_id")?;
    let force = call.flag("force")?;
    let purchase = store
        .purchase(id)
        .ok_or_else(|| ApiError::not_found("purchase", id))?
        .clone();
    if purchase.payment_status == "refunded" {
        return Err(ApiError::refused(format!(
            "Purchase {} has already been refunded.",
            purchase.id
        )));
    }
    if purchase.refund_period_over && !force {
        return Err(ApiError::refused(format!(
            "The refund period of purchase {} is over. Use force=Y to refund anyway.",
            purchase.id
        )));
    }
    let payments: Vec<i64> = store
        .transactions_of(&purchase.id)
        .filter(|t| t.kind == TxKind::Payment)
        .map(|t| t.amount)
        .collect();
    let ids: Vec<String> = payments
        .iter()
        .map(|amount| {
            store
                .add_transaction(&purchase, TxKind::Refund, -amount, call.now)
                .to_string()
        })
        .collect();
    if let Some(stored) = store.purchases.iter_mut().find(|p| p.id == purchase.id) {
        stored.billing_status = "aborted";
        stored.payment_status = "refunded";
        stored.next_payment_at = None;
        stored.refunded_at = Some(call.now);
    }
    Ok(json!({
        "purchase_id": purchase.id,
        "is_refunded": "Y",
        "refunded_amount": money(payments.iter().sum()),
        "currency": purchase.currency,
        "refund_transaction_ids": ids,
        "billing_status": "aborted",
        "payment_status": "refunded",
        "refunded_at": clock::format(call.now),
    }))
}

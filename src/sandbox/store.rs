//! The sandbox's records. Everything a function reads or changes lives here,
//! behind the one mutex in [`super::Sandbox`].
//!
//! Records that callers edit field by field (products, buyers, vouchers) keep
//! their fields as an ordered string map under Digistore24's own names, so
//! an update is "check the name against an allowlist, store the string".
//! Records with logic (purchases, transactions, deliveries) are typed.

use serde_json::{Map, Value};

/// Fields of an editable record, in display order; values are strings
/// (`null` only where the API shows an unset date).
pub(crate) type Fields = Map<String, Value>;

/// Base of the made-up document links; `.invalid` can never resolve.
pub(crate) const LINK_BASE: &str = "https://sandbox.invalid";

/// All data of one sandbox.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub products: Vec<Product>,
    pub buyers: Vec<Buyer>,
    pub purchases: Vec<Purchase>,
    pub transactions: Vec<Transaction>,
    pub vouchers: Vec<Voucher>,
    pub deliveries: Vec<Delivery>,
    pub orderforms: Vec<OrderForm>,
    pub next_product_id: u64,
    pub next_transaction_id: u64,
    pub next_voucher_id: u64,
    /// IPN registrations made with `ipnSetup`, by `domain_id`.
    pub ipn: Vec<super::ipn::IpnRegistration>,
    pub next_ipn_config_id: u64,
}

/// A product; `fields` holds `name`, `name_intern`, `currency`, ….
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub id: u64,
    pub fields: Fields,
    pub created_at: i64,
    pub modified_at: i64,
}

/// A buyer; `fields` holds `email`, `first_name`, `city`, ….
#[derive(Debug, Clone)]
pub(crate) struct Buyer {
    pub id: u64,
    pub fields: Fields,
    pub created_at: i64,
}

/// An order ("purchase"): one product bought by one buyer, paid by one or
/// more transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Purchase {
    pub id: String,
    pub product_id: u64,
    /// Copied at sale time, as an order keeps the name it was sold under.
    pub product_name: String,
    pub buyer_id: u64,
    pub created_at: i64,
    /// Amount of each payment, in cents.
    pub amount: i64,
    pub currency: String,
    /// `single_payment` or `subscription`.
    pub billing_type: &'static str,
    /// `completed`, `paying` or `aborted`.
    pub billing_status: &'static str,
    /// `paid` or `refunded`.
    pub payment_status: &'static str,
    pub pay_method: &'static str,
    pub next_payment_at: Option<i64>,
    pub tracking_param: String,
    pub custom: String,
    pub unlock_invoices: String,
    pub affiliate_name: String,
    /// When set, `refundPurchase` needs `force=Y` (the refund period is over).
    pub refund_period_over: bool,
    pub refunded_at: Option<i64>,
}

/// Whether money came in or went back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxKind {
    Payment,
    Refund,
}

impl TxKind {
    /// Digistore24's name and label of the type.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Payment => ("payment", "Payment"),
            Self::Refund => ("refund", "Refund"),
        }
    }
}

/// One payment or refund of a purchase.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub id: u64,
    pub purchase_id: String,
    pub kind: TxKind,
    /// In cents; negative for refunds.
    pub amount: i64,
    pub currency: String,
    pub pay_method: &'static str,
    pub created_at: i64,
}

/// A voucher ("coupon"); `fields` holds `first_rate`, `product_ids`, ….
#[derive(Debug, Clone)]
pub(crate) struct Voucher {
    pub id: u64,
    pub code: String,
    pub fields: Fields,
    pub created_at: i64,
}

/// A shipment request for a physical product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub id: u64,
    pub purchase_id: String,
    /// `request`, `in_progress`, `delivery`, `partial_delivery`, `return`
    /// or `cancel` (API-FACTS §8.1, P12).
    pub kind: String,
    pub quantity_total: u64,
    pub quantity_delivered: u64,
    pub processed_at: Option<i64>,
    pub tracking: Vec<Tracking>,
}

/// A parcel tracking entry of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracking {
    pub parcel_service: String,
    pub tracking_id: String,
    pub expect_delivery_at: String,
    pub quantity: u64,
}

/// An order form layout.
#[derive(Debug, Clone)]
pub(crate) struct OrderForm {
    pub id: u64,
    pub name: String,
    pub layout: &'static str,
    pub created_at: i64,
}

impl Store {
    /// The product with this id, as sent (`"10001"`).
    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| same_id(p.id, id))
    }

    /// The buyer with this id.
    pub fn buyer(&self, id: u64) -> Option<&Buyer> {
        self.buyers.iter().find(|b| b.id == id)
    }

    /// The purchase with this id; Digistore24 order ids are upper case, so
    /// the match ignores case.
    pub fn purchase(&self, id: &str) -> Option<&Purchase> {
        self.purchases
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id.trim()))
    }

    /// Appends a payment or refund and returns its new id.
    pub fn add_transaction(
        &mut self,
        purchase: &Purchase,
        kind: TxKind,
        amount: i64,
        created_at: i64,
    ) -> u64 {
        let id = self.next_transaction_id;
        self.next_transaction_id += 1;
        self.transactions.push(Transaction {
            id,
            purchase_id: purchase.id.clone(),
            kind,
            amount,
            currency: purchase.currency.clone(),
            pay_method: purchase.pay_method,
            created_at,
        });
        id
    }

    /// Payments and refunds of a purchase, oldest first.
    pub fn transactions_of<'a>(
        &'a self,
        purchase_id: &'a str,
    ) -> impl Iterator<Item = &'a Transaction> {
        self.transactions
            .iter()
            .filter(move |t| t.purchase_id == purchase_id)
    }
}

/// Whether a numeric id equals the id text a caller sent.
pub(crate) fn same_id(id: u64, sent: &str) -> bool {
    sent.trim().parse::<u64>() == Ok(id)
}

/// The fields of a `json!({...})` literal (empty if it is not an object).
pub(crate) fn fields_of(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Fields::new(),
    }
}

/// A field's text, `""` when absent or not a string.
pub(crate) fn text<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Cents as Digistore24 writes amounts: `"29.00"`, `"-97.00"`.
pub(crate) fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `"Y"` or `"N"`.
pub(crate) fn yes_no(flag: bool) -> &'static str {
    if flag { "Y" } else { "N" }
}

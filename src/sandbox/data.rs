//! The seed: a small, consistent account that is the same on every start.
//!
//! Ids tests may rely on:
//! - products `10001`–`10005`; `10005` has never sold and can be deleted,
//!   the others have orders and refuse `deleteProduct`; new ones get `10006`…
//! - buyers `50001`–`50008` (`50002`, `50005`, `50006` have non-ASCII names)
//! - purchases `SBX00001`–`SBX00030`; every fourth one (`SBX00003`,
//!   `SBX00007`, …) is a monthly subscription with one to three payments
//! - `SBX00001` is refundable; `SBX00002` is already refunded; `SBX00003`
//!   is past its refund period and needs `force=Y`
//! - purchases of product `10004` (`SBX00004`, `SBX00008`, …) have a
//!   delivery each, ids `80001`–`80007`
//! - vouchers `SANDBOX10`, `WELCOME5`, `SPRING25` (ids `90001`–`90003`)
//! - order forms `60001`–`60003`; transactions start at `70001`

use serde_json::{Value, json};

use super::clock;
use super::store::{
    Buyer, Delivery, Fields, OrderForm, Product, Purchase, Store, Tracking, TxKind, Voucher,
    fields_of,
};

/// 2025-01-06 09:15:00 UTC: the first order. All seed times are fixed so
/// that answers are the same on every run.
const FIRST_ORDER: i64 = 1_736_154_900;
const DAY: i64 = 86_400;
const MONTH: i64 = 30 * DAY;

/// Number of seeded purchases: three pages at `page_size=10`.
const PURCHASES: u64 = 30;

/// id, name, internal name, language, currency, price in cents,
/// product type id, product group id (`1` Books, `2` Courses).
#[rustfmt::skip]
type ProductRow = (u64, &'static str, &'static str, &'static str, &'static str, i64, &'static str, &'static str);

// One row per line reads as a table; rustfmt would put every cell on its own line.
#[rustfmt::skip]
const PRODUCTS: [ProductRow; 5] = [
    (10001, "Rust im Alltag (E-Book)", "ebook_rust_de", "de", "EUR", 2900, "1", "1"),
    (10002, "Async Rust Video Course", "course_async_en", "en", "USD", 9700, "2", "2"),
    (10003, "Sandbox Membership (monthly)", "membership_monthly", "en", "EUR", 1990, "3", "2"),
    (10004, "Rust im Alltag (Printed Book)", "book_print_de", "de", "CHF", 3900, "4", "1"),
    (10005, "One-to-one Coaching Call", "coaching_call_en", "en", "GBP", 15000, "5", ""),
];

/// id, salutation, first name, last name, e-mail, street, number, zip,
/// city, country.
#[rustfmt::skip]
type BuyerRow = (u64, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

#[rustfmt::skip]
const BUYERS: [BuyerRow; 8] = [
    (50001, "F", "Anna", "Schmidt", "anna.schmidt@example.com", "Hauptstraße", "12", "10115", "Berlin", "DE"),
    (50002, "M", "Jürgen", "Müller", "juergen.mueller@example.com", "Leopoldstraße", "7a", "80802", "München", "DE"),
    (50003, "F", "Emma", "Johnson", "emma.johnson@example.com", "Congress Avenue", "301", "78701", "Austin", "US"),
    (50004, "M", "Luca", "Bianchi", "luca.bianchi@example.com", "Via Dante", "4", "20121", "Milano", "IT"),
    (50005, "F", "Zoë", "Dubois", "zoe.dubois@example.com", "Rue de la République", "18", "69002", "Lyon", "FR"),
    (50006, "M", "Łukasz", "Nowak", "lukasz.nowak@example.com", "ul. Floriańska", "3", "31-019", "Kraków", "PL"),
    (50007, "F", "Sofía", "García", "sofia.garcia@example.com", "Calle Mayor", "22", "28013", "Madrid", "ES"),
    (50008, "M", "Noah", "Weber", "noah.weber@example.ch", "Bahnhofstrasse", "1", "8001", "Zürich", "CH"),
];

const PAY_METHODS: [&str; 4] = ["paypal", "creditcard", "sepa", "banktransfer"];

/// Builds the seed data.
pub(crate) fn seed() -> Store {
    let mut store = Store {
        next_product_id: 10006,
        next_transaction_id: 70001,
        next_voucher_id: 90004,
        ..Store::default()
    };
    store.products = PRODUCTS.iter().map(product).collect();
    store.buyers = BUYERS.iter().map(buyer).collect();
    for i in 0..PURCHASES {
        add_purchase(&mut store, i);
    }
    store.vouchers = vouchers();
    store.orderforms = orderforms();
    store
}

/// The vendor who owns every product: the account `getUserInfo` shows.
const OWNER_ID: &str = "424242";
const OWNER_NAME: &str = "sandbox_vendor";
const OWNER_EMAIL: &str = "vendor@sandbox.invalid";

/// The fields of a product record with the values a new product has.
/// `getProduct`/`listProducts` show these (with `name` filled from a
/// language name when empty) plus `id`, `product_group_name`, `created_at`
/// and `modified_at`. The keys are the spec's (the `listProducts` reply,
/// the `data[...]` of `createProduct`/`updateProduct`) plus the rest of
/// the record the real API returns, as clients model it (the PyPI
/// `digistore24-client`'s `Product` requires every one). Types are
/// Digistore24's: `Y`/`N` flags, ids, amounts and counts as strings, a
/// product outside any group has `product_group_id: null`.
#[rustfmt::skip]
pub(crate) fn new_product_fields() -> Fields {
    let texts: &[(&str, &str)] = &[
        // Names and texts.
        ("name", ""), ("name_intern", ""), ("name_de", ""), ("name_en", ""), ("name_es", ""),
        ("description", ""), ("description_de", ""), ("description_en", ""),
        ("description_es", ""), ("description_thankyou_page", ""), ("note", ""), ("tag", ""),
        ("language", "de"), ("country", "DE"), ("currency", "EUR"),
        // Owner.
        ("user_id", OWNER_ID), ("owner_id", OWNER_ID), ("owner_name", OWNER_NAME),
        // Kind and state.
        ("product_type_id", "1"), ("is_active", "Y"), ("is_deleted", "N"),
        ("approval_status", "new"), ("approval_status_msg", ""), ("buyer_type", "consumer"),
        ("units_left", "infinite"), ("stop_sales_at", ""),
        // Pages and images.
        ("salespage_url", ""), ("upsell_salespage_url", ""), ("thankyou_url", ""),
        ("upsell_thankyou_page_url", ""), ("upsell_freeflow_thankyou_url", ""),
        ("image_id", ""), ("image_url", ""), ("is_search_engine_allowed", "Y"),
        // What the thank-you and upsell pages get.
        ("add_order_data_to_thankyou_page_url", "N"),
        ("encrypt_order_data_of_thankyou_page_url", "N"),
        ("add_order_data_to_upsell_sales_page_url", "N"),
        ("add_order_data_to_upsell_thankyou_page_url", "N"),
        ("encrypt_order_data_of_upsell_thankyou_page_url", "N"),
        ("redirect_to_custom_upsell_thankyou_page", "N"), ("is_addon_thankyou_url_enabled", "N"),
        ("is_free_upsell_enabled", "N"), ("is_free_upsell_started", "N"),
        ("is_free_upsell_stopped", "N"), ("is_upsell_double_purchase_prevented", "Y"),
        // Order form (payment method names as in the spec's createBuyUrl).
        ("orderform_id", "60001"), ("pay_methods", "paypal,creditcard,elv,banktransfer"),
        ("default_quantity", "1"), ("max_quantity", "1"),
        ("is_quantity_editable_before_purchase", "N"),
        ("is_quantity_editable_after_purchase", "N"), ("is_address_input_mandatory", "N"),
        ("has_addr_salutation", "Y"), ("is_title_input_shown", "N"),
        ("is_phone_no_input_shown", "N"), ("is_phone_no_mandatory", "N"),
        ("is_optin_checkbox_shown", "N"), ("optin_text", ""), ("is_vat_shown", "Y"),
        ("is_name_shown_on_bank_statement", "Y"),
        // Affiliates.
        ("affiliate_commission", "0.00"), ("affiliate_commission_fix", "0.00"),
        ("affiliate_commission_cur", "EUR"), ("is_affiliation_auto_accepted", "N"),
        // Who gets which e-mail.
        ("notify_payment_emails", OWNER_EMAIL), ("notify_refund_emails", OWNER_EMAIL),
        ("notify_chargeback_emails", OWNER_EMAIL), ("notify_missed_payment_emails", ""),
        ("notify_rebilling_start_stop_emails", ""), ("notify_rebilling_payment_emails", ""),
        ("notify_addons_for", ""),
    ];
    let mut fields: Fields = texts
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Value::from(*value)))
        .collect();
    fields.insert("product_group_id".into(), Value::Null);
    fields
}

/// Affiliate commission in percent per seeded product (`10001`…`10005`).
const COMMISSIONS: [&str; 5] = ["40.00", "50.00", "30.00", "15.00", "0.00"];

fn product(row: &ProductRow) -> Product {
    let (id, name, intern, language, currency, _, type_id, group_id) = *row;
    let n = (id - 10001) as usize;
    let printed = id == 10004;
    let description = format!("Sandbox product {id}: {name}.");
    let mut fields = new_product_fields();
    let text = |value: &str| Value::from(value);
    for (key, value) in [
        ("name", text(name)),
        ("name_intern", text(intern)),
        ("name_de", text(if language == "de" { name } else { "" })),
        ("name_en", text(if language == "en" { name } else { "" })),
        ("description", text(&description)),
        (
            if language == "de" {
                "description_de"
            } else {
                "description_en"
            },
            text(&description),
        ),
        ("language", text(language)),
        ("currency", text(currency)),
        ("product_type_id", text(type_id)),
        (
            "product_group_id",
            if group_id.is_empty() {
                Value::Null
            } else {
                text(group_id)
            },
        ),
        ("approval_status", text("approved")),
        (
            "salespage_url",
            format!("https://sandbox.invalid/sales/{id}").into(),
        ),
        (
            "orderform_id",
            text(if n.is_multiple_of(2) {
                "60001"
            } else {
                "60002"
            }),
        ),
        ("affiliate_commission", text(COMMISSIONS[n])),
        (
            "affiliate_commission_fix",
            text(if printed { "2.00" } else { "0.00" }),
        ),
        ("affiliate_commission_cur", text(currency)),
        (
            "is_affiliation_auto_accepted",
            text(if id == 10005 { "N" } else { "Y" }),
        ),
        // The printed book ships: address needed, several copies allowed.
        (
            "is_address_input_mandatory",
            text(if printed { "Y" } else { "N" }),
        ),
        (
            "is_quantity_editable_before_purchase",
            text(if printed { "Y" } else { "N" }),
        ),
        ("max_quantity", text(if printed { "10" } else { "1" })),
        ("country", text(if currency == "CHF" { "CH" } else { "DE" })),
    ] {
        fields.insert(key.to_owned(), value);
    }
    let created_at = FIRST_ORDER - 60 * DAY + (id as i64 - 10000) * DAY;
    Product {
        id,
        fields,
        created_at,
        modified_at: created_at,
    }
}

fn buyer(row: &BuyerRow) -> Buyer {
    let (id, salutation, first, last, email, street, number, zip, city, country) = *row;
    let fields = json!({
        "address_id": (id + 10_000).to_string(), "email": email,
        "first_name": first, "last_name": last, "salutation": salutation,
        "title": "", "company": "", "street": format!("{street} {number}"),
        "street_name": street, "street_number": number, "zipcode": zip,
        "city": city, "state": "", "country": country, "phone_no": "",
    });
    Buyer {
        id,
        fields: fields_of(fields),
        created_at: FIRST_ORDER - 2 * DAY + (id as i64 - 50000) * 3600,
    }
}

/// Adds purchase number `i` (0-based) with its payments and delivery.
fn add_purchase(store: &mut Store, i: u64) {
    let row = PRODUCTS[(i % 4) as usize];
    let (product_id, name, currency, amount) = (row.0, row.1, row.4, row.5);
    let subscription = product_id == 10003;
    let payments = if subscription { 1 + i % 3 } else { 1 };
    let created_at = FIRST_ORDER + (i as i64) * 2 * DAY + ((i as i64) * 37 % 600) * 60;
    let id = format!("SBX{:05}", i + 1);
    let pay_method = PAY_METHODS[(i % 4) as usize];
    let mut purchase = Purchase {
        id: id.clone(),
        product_id,
        product_name: name.to_owned(),
        buyer_id: BUYERS[((i + i / 8) % 8) as usize].0,
        created_at,
        amount,
        currency: currency.to_owned(),
        billing_type: if subscription {
            "subscription"
        } else {
            "single_payment"
        },
        billing_status: if subscription { "paying" } else { "completed" },
        payment_status: "paid",
        pay_method,
        next_payment_at: subscription.then(|| created_at + payments as i64 * MONTH),
        tracking_param: if i.is_multiple_of(3) {
            "newsletter".to_owned()
        } else {
            String::new()
        },
        custom: String::new(),
        unlock_invoices: "N".to_owned(),
        affiliate_name: if i % 5 == 4 {
            "sandbox_affiliate".to_owned()
        } else {
            String::new()
        },
        refund_period_over: i == 2,
        refunded_at: None,
    };
    for n in 0..payments {
        store.add_transaction(
            &purchase,
            TxKind::Payment,
            amount,
            created_at + n as i64 * MONTH,
        );
    }
    if i == 1 {
        // SBX00002 arrives already refunded, so "refund twice" is testable
        // without a first write.
        let refunded_at = created_at + 5 * DAY;
        store.add_transaction(&purchase, TxKind::Refund, -amount, refunded_at);
        purchase.billing_status = "aborted";
        purchase.payment_status = "refunded";
        purchase.refunded_at = Some(refunded_at);
    }
    if product_id == 10004 {
        add_delivery(store, &id, created_at);
    }
    store.purchases.push(purchase);
}

/// One delivery per printed-book order: the first two shipped with
/// tracking, the third in progress, the rest still requested.
fn add_delivery(store: &mut Store, purchase_id: &str, ordered_at: i64) {
    let n = store.deliveries.len() as u64;
    let shipped = n < 2;
    let tracking = if shipped {
        vec![Tracking {
            parcel_service: "dhl".to_owned(),
            tracking_id: format!("00340434{:010}", 1_000 + n),
            expect_delivery_at: clock::format_date(ordered_at + 3 * DAY),
            quantity: 1,
        }]
    } else {
        Vec::new()
    };
    store.deliveries.push(Delivery {
        id: 80001 + n,
        purchase_id: purchase_id.to_owned(),
        kind: match n {
            0 | 1 => "delivery",
            2 => "in_progress",
            _ => "request",
        }
        .to_owned(),
        quantity_total: 1,
        quantity_delivered: u64::from(shipped),
        processed_at: (n < 3).then_some(ordered_at + DAY),
        tracking,
    });
}

fn vouchers() -> Vec<Voucher> {
    // Percent vouchers carry rates, fixed ones an amount and a currency;
    // the unused pair stays empty.
    let rows = [
        (
            90001,
            "SANDBOX10",
            json!({
                "product_ids": "all", "first_rate": "10.00", "other_rates": "10.00",
                "first_amount": "", "other_amounts": "", "currency": "",
                "is_count_limited": "N", "count_left": "", "expires_at": null,
            }),
        ),
        (
            90002,
            "WELCOME5",
            json!({
                "product_ids": "10001", "first_rate": "", "other_rates": "",
                "first_amount": "5.00", "other_amounts": "", "currency": "EUR",
                "is_count_limited": "Y", "count_left": "100", "expires_at": null,
            }),
        ),
        (
            90003,
            "SPRING25",
            json!({
                "product_ids": "10002,10003", "first_rate": "25.00", "other_rates": "",
                "first_amount": "", "other_amounts": "", "currency": "",
                "is_count_limited": "N", "count_left": "", "expires_at": "2025-06-30 23:59:59",
            }),
        ),
    ];
    rows.into_iter()
        .map(|(id, code, fields)| {
            let mut fields = fields_of(fields);
            fields.insert("valid_from".into(), Value::Null);
            fields.insert("upgrade_policy".into(), "valid".into());
            fields.insert("is_discarding_early_bird".into(), "N".into());
            Voucher {
                id,
                code: code.to_owned(),
                fields,
                created_at: FIRST_ORDER - 30 * DAY + (id as i64 - 90000) * DAY,
            }
        })
        .collect()
}

fn orderforms() -> Vec<OrderForm> {
    [
        (60001, "Standard order form", "orderform_responsive"),
        (60002, "Sidebar widget", "orderform_widget"),
        (60003, "Classic order form", "orderform_legacy"),
    ]
    .into_iter()
    .map(|(id, name, layout)| OrderForm {
        id,
        name: name.to_owned(),
        layout,
        created_at: FIRST_ORDER - 90 * DAY + (id as i64 - 60000) * DAY,
    })
    .collect()
}

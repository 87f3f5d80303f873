use serde_json::Value;

use super::{call, data, sandbox};

fn column<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[field].as_str())
        .collect()
}

#[tokio::test]
async fn a_refund_marks_the_purchase_refunded_everywhere() {
    let sandbox = sandbox();

    let refund = data(&sandbox, "refundPurchase", "purchase_id=SBX00001").await;

    assert_eq!(refund["refunded_amount"], "29.00");
    assert_eq!(refund["currency"], "EUR");
    let purchase = data(&sandbox, "getPurchase", "purchase_id=SBX00001").await;
    assert_eq!(purchase["payment_status"], "refunded");
    assert_eq!(purchase["billing_status"], "aborted");
    assert_eq!(
        column(&purchase["transaction_list"], "type"),
        ["payment", "refund"]
    );
    assert_eq!(
        column(&purchase["transaction_list"], "amount"),
        ["29.00", "-29.00"]
    );
    let invoices = data(&sandbox, "listInvoices", "purchase_id=SBX00001").await;
    assert_eq!(
        column(&invoices["invoice_list"], "type"),
        ["invoice", "credit_note"]
    );
    let refunds = data(
        &sandbox,
        "listTransactions",
        "search[purchase_id]=SBX00001&search[transaction_type]=refund",
    )
    .await;
    assert_eq!(refunds["item_count"], 1);
}

#[tokio::test]
async fn refunding_twice_is_an_error() {
    let sandbox = sandbox();
    data(&sandbox, "refundPurchase", "purchase_id=SBX00001").await;

    let again = call(&sandbox, "refundPurchase", "purchase_id=SBX00001").await;
    let seeded = call(&sandbox, "refundPurchase", "purchase_id=SBX00002").await;

    assert_eq!(again.code(), 3);
    assert!(again.message().contains("already been refunded"));
    assert_eq!(seeded.code(), 3, "SBX00002 is seeded as refunded");
}

#[tokio::test]
async fn a_refund_past_the_refund_period_needs_force() {
    let sandbox = sandbox();

    let refused = call(&sandbox, "refundPurchase", "purchase_id=SBX00003").await;
    let forced = data(&sandbox, "refundPurchase", "purchase_id=SBX00003&force=Y").await;

    assert_eq!(refused.code(), 3);
    assert!(refused.message().contains("force=Y"));
    assert_eq!(
        forced["refund_transaction_ids"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(forced["refunded_amount"], "59.70");
}

#[tokio::test]
async fn get_purchase_takes_a_comma_separated_list() {
    let found = data(&sandbox(), "getPurchase", "purchase_id=SBX00001,sbx00002").await;

    let keys: Vec<&String> = found
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["SBX00001", "SBX00002"]);
    assert_eq!(found["SBX00002"]["payment_status"], "refunded");
}

#[tokio::test]
async fn update_purchase_changes_the_fields_it_knows() {
    let sandbox = sandbox();

    let updated = data(
        &sandbox,
        "updatePurchase",
        "purchase_id=SBX00007&data[custom]=c1&data[next_payment_at]=2026-01-02",
    )
    .await;
    let unknown = call(
        &sandbox,
        "updatePurchase",
        "purchase_id=SBX00007&data[amount]=1",
    )
    .await;

    assert_eq!(updated["is_modified"], "Y");
    let purchase = data(&sandbox, "getPurchase", "purchase_id=SBX00007").await;
    assert_eq!(purchase["custom"], "c1");
    assert_eq!(purchase["next_payment_at"], "2026-01-02 00:00:00");
    assert_eq!(unknown.code(), 3);
}

#[tokio::test]
async fn an_updated_buyer_shows_in_their_purchases() {
    let sandbox = sandbox();

    data(
        &sandbox,
        "updateBuyer",
        "buyer_id=50001&data[last_name]=Schmidt-Groß",
    )
    .await;

    let purchase = data(&sandbox, "getPurchase", "purchase_id=SBX00001").await;
    assert_eq!(purchase["buyer"]["id"], "50001");
    assert_eq!(purchase["buyer"]["last_name"], "Schmidt-Groß");
}

#[tokio::test]
async fn get_buyer_also_finds_by_email() {
    let buyer = data(&sandbox(), "getBuyer", "buyer_id=zoe.dubois@example.com").await;

    assert_eq!(buyer["buyer"]["id"], "50005");
    assert_eq!(buyer["buyer"]["first_name"], "Zoë");
}

#[tokio::test]
async fn list_purchases_filters_by_search_email_and_dates() {
    let sandbox = sandbox();

    let anna = data(
        &sandbox,
        "listPurchases",
        "search[email]=ANNA.SCHMIDT@example.com",
    )
    .await;
    let january = data(&sandbox, "listPurchases", "from=2025-01-01&to=2025-01-31").await;
    let bad = call(&sandbox, "listPurchases", "from=yesterday").await;

    let emails = column(&anna["purchase_list"], "buyer_email");
    assert!(!emails.is_empty());
    assert!(emails.iter().all(|e| *e == "anna.schmidt@example.com"));
    assert_eq!(january["item_count"], 13);
    assert_eq!(bad.code(), 3);
    assert!(bad.message().contains("from"));
}

#[tokio::test]
async fn list_purchases_sorts_descending_on_request() {
    let list = data(&sandbox(), "listPurchases", "sort_order=desc&page_size=2").await;

    assert_eq!(
        column(&list["purchase_list"], "id"),
        ["SBX00030", "SBX00029"]
    );
}

#[tokio::test]
async fn a_created_voucher_can_be_fetched() {
    let sandbox = sandbox();

    let created = data(
        &sandbox,
        "createVoucher",
        "code=SUMMER20&first_rate=20&product_ids=10001,10002&is_count_limited=Y&count_left=5",
    )
    .await;
    let duplicate = call(&sandbox, "createVoucher", "code=summer20").await;

    assert_eq!(created["code"], "SUMMER20");
    let fetched = data(&sandbox, "getVoucher", "code=summer20").await;
    assert_eq!(fetched["coupon"]["id"], created["discount_code_id"]);
    assert_eq!(fetched["coupon"]["first_rate"], "20.00");
    assert_eq!(fetched["coupon"]["count_left"], "5");
    assert_eq!(duplicate.code(), 3);
}

#[tokio::test]
async fn deliveries_filter_by_purchase_and_take_tracking_updates() {
    let sandbox = sandbox();

    let one = data(&sandbox, "listDeliveries", "search[purchase_id]=SBX00012").await;
    let id = one["delivery"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = format!(
        "delivery_id={id}&data[is_shipped]=Y&tracking[0][parcel_service]=dhl&tracking[0][tracking_id]=T-1"
    );
    let updated = data(&sandbox, "updateDelivery", &body).await;

    assert_eq!(one["delivery"].as_array().map(Vec::len), Some(1));
    assert_eq!(updated["is_modified"], "Y");
    let after = data(&sandbox, "listDeliveries", "search[purchase_id]=SBX00012").await;
    assert_eq!(after["delivery"][0]["type"], "delivery");
    assert_eq!(after["delivery"][0]["tracking"][0]["tracking_id"], "T-1");
    let requests = data(
        &sandbox,
        "listDeliveries",
        "search[type]=request,in_progress",
    )
    .await;
    assert_eq!(requests["delivery"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn tracking_entries_can_be_deleted_and_bad_types_are_refused() {
    let sandbox = sandbox();
    let before = data(&sandbox, "listDeliveries", "search[purchase_id]=SBX00004").await;
    let tracking_id = before["delivery"][0]["tracking"][0]["tracking_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let body = format!(
        "delivery_id=80001&tracking[0][tracking_id]={tracking_id}&tracking[0][operation]=delete"
    );
    let deleted = data(&sandbox, "updateDelivery", &body).await;
    let bad_type = call(
        &sandbox,
        "updateDelivery",
        "delivery_id=80001&data[type]=lost",
    )
    .await;
    let no_service = call(
        &sandbox,
        "updateDelivery",
        "delivery_id=80001&tracking[0][tracking_id]=NEW",
    )
    .await;

    assert!(!tracking_id.is_empty());
    assert_eq!(deleted["is_modified"], "Y");
    let after = data(&sandbox, "listDeliveries", "search[purchase_id]=SBX00004").await;
    assert_eq!(after["delivery"][0]["tracking"], serde_json::json!([]));
    assert_eq!(bad_type.code(), 3);
    assert!(
        no_service.message().contains("parcel_service"),
        "{}",
        no_service.message()
    );
}

#[tokio::test]
async fn update_buyer_refuses_bad_values_and_changes_nothing() {
    let sandbox = sandbox();

    let bad_email = call(
        &sandbox,
        "updateBuyer",
        "buyer_id=50003&email=nope&city=Dallas",
    )
    .await;
    let unknown = call(&sandbox, "updateBuyer", "buyer_id=50003&data[shoe_size]=44").await;

    assert_eq!(bad_email.code(), 3);
    assert_eq!(unknown.code(), 3);
    let buyer = data(&sandbox, "getBuyer", "buyer_id=50003").await;
    assert_eq!(buyer["buyer"]["city"], "Austin");
}

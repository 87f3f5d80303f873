use super::{call, data, sandbox};

#[tokio::test]
async fn a_created_product_can_be_fetched_updated_listed_and_deleted() {
    let sandbox = sandbox();

    let created = data(
        &sandbox,
        "createProduct",
        "data[name]=Sandbox+Test&data[name_intern]=test_1&data[currency]=USD&data[language]=en",
    )
    .await;
    let id = created["product_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id, "10006");

    let fetched = data(&sandbox, "getProduct", &format!("product_id={id}")).await;
    assert_eq!(fetched["product"]["name"], "Sandbox Test");
    assert_eq!(fetched["product"]["currency"], "USD");
    assert_eq!(fetched["product"]["is_active"], "Y");

    let body = format!("product_id={id}&data[name]=Renamed&data[is_active]=N");
    let updated = data(&sandbox, "updateProduct", &body).await;
    assert_eq!(updated["modified"], "Y");
    let again = data(&sandbox, "updateProduct", &body).await;
    assert_eq!(again["modified"], "N", "same values change nothing");

    let listed = data(&sandbox, "listProducts", "").await;
    let names: Vec<&str> = listed["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"Renamed"), "{names:?}");

    data(&sandbox, "deleteProduct", &format!("product_id={id}")).await;

    let gone = call(&sandbox, "getProduct", &format!("product_id={id}")).await;
    assert_eq!(gone.code(), 4);
}

#[tokio::test]
async fn product_ids_keep_counting_after_a_delete() {
    let sandbox = sandbox();

    data(&sandbox, "createProduct", "data[name]=A").await;
    data(&sandbox, "deleteProduct", "product_id=10006").await;
    let second = data(&sandbox, "createProduct", "data[name]=B").await;

    assert_eq!(second["product_id"], "10007");
}

#[tokio::test]
async fn a_product_that_has_sold_cannot_be_deleted() {
    let sandbox = sandbox();

    let reply = call(&sandbox, "deleteProduct", "product_id=10001").await;

    assert_eq!(reply.code(), 3);
    assert!(reply.message().contains("is_active"), "{}", reply.message());
    data(&sandbox, "getProduct", "product_id=10001").await;
}

#[tokio::test]
async fn create_product_refuses_what_digistore24_refuses() {
    let cases = [
        ("data[name]=X&data[amount]=10", "deprecated"),
        (
            "data[name]=X&data[thankyou_url]=http://example.com/",
            "https",
        ),
        (
            "data[name]=X&data[thankyou_url]=https://localhost/",
            "https",
        ),
        ("data[name]=X&data[colour]=red", "colour"),
        ("data[name]=X&data[is_active]=maybe", "is_active"),
        ("data[description]=no+name", "data[name]"),
        ("name=flat", "data"),
    ];
    for (body, hint) in cases {
        let reply = call(&sandbox(), "createProduct", body).await;

        assert_eq!(reply.code(), 3, "{body}");
        assert!(
            reply.message().contains(hint),
            "{body}: {}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn a_product_note_is_cut_at_47_characters() {
    let sandbox = sandbox();
    let note = "n".repeat(60);

    data(
        &sandbox,
        "updateProduct",
        &format!("product_id=10002&data[note]={note}"),
    )
    .await;

    let product = data(&sandbox, "getProduct", "product_id=10002").await;
    assert_eq!(product["product"]["note"].as_str().map(str::len), Some(47));
}

#[tokio::test]
async fn update_product_takes_flat_fields_too() {
    let sandbox = sandbox();

    let updated = data(
        &sandbox,
        "updateProduct",
        "product_id=10002&name_intern=flat",
    )
    .await;

    assert_eq!(updated["modified"], "Y");
    let product = data(&sandbox, "getProduct", "product_id=10002").await;
    assert_eq!(product["product"]["name_intern"], "flat");
}

#[tokio::test]
async fn list_products_sorts_by_name_or_group() {
    let sandbox = sandbox();
    let ids = |value: &serde_json::Value| -> Vec<String> {
        value["products"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    };

    let by_name = data(&sandbox, "listProducts", "").await;
    let by_group = data(&sandbox, "listProducts", "sort_by=group").await;

    assert_eq!(ids(&by_name), ["10002", "10005", "10001", "10004", "10003"]);
    assert_eq!(
        ids(&by_group),
        ["10005", "10001", "10004", "10002", "10003"]
    );
    assert_eq!(
        call(&sandbox, "listProducts", "sort_by=price").await.code(),
        3
    );
}

/// Every field of the product record that clients require (the PyPI
/// `digistore24-client`'s `Product`), shown by `getProduct`, `listProducts`
/// and for a new product, as strings (`product_group_id` may be `null`).
#[tokio::test]
async fn products_carry_the_whole_record() {
    #[rustfmt::skip]
    const REQUIRED: &[&str] = &[
        "id", "image_url", "user_id", "units_left", "owner_name", "owner_id",
        "is_quantity_editable_before_purchase", "is_quantity_editable_after_purchase",
        "thankyou_url", "affiliate_commission", "affiliate_commission_fix",
        "affiliate_commission_cur", "is_address_input_mandatory", "is_phone_no_input_shown",
        "is_title_input_shown", "is_name_shown_on_bank_statement", "is_affiliation_auto_accepted",
        "name", "name_intern", "note", "tag", "language", "created_at", "modified_at",
        "product_group_id", "is_active", "currency", "description", "salespage_url",
        "upsell_salespage_url", "buyer_type", "is_addon_thankyou_url_enabled",
        "has_addr_salutation", "image_id", "upsell_thankyou_page_url",
        "add_order_data_to_thankyou_page_url", "add_order_data_to_upsell_sales_page_url",
        "redirect_to_custom_upsell_thankyou_page", "add_order_data_to_upsell_thankyou_page_url",
        "product_type_id", "stop_sales_at", "encrypt_order_data_of_thankyou_page_url",
        "encrypt_order_data_of_upsell_thankyou_page_url", "is_vat_shown",
        "is_free_upsell_enabled", "is_free_upsell_started", "is_free_upsell_stopped",
        "upsell_freeflow_thankyou_url", "is_upsell_double_purchase_prevented",
        "is_optin_checkbox_shown", "optin_text", "country", "max_quantity",
        "description_thankyou_page", "orderform_id", "is_phone_no_mandatory",
        "is_search_engine_allowed", "pay_methods", "notify_payment_emails",
        "notify_refund_emails", "notify_chargeback_emails", "notify_missed_payment_emails",
        "notify_rebilling_start_stop_emails", "notify_rebilling_payment_emails",
        "notify_addons_for", "is_deleted", "approval_status", "approval_status_msg",
        "product_group_name",
    ];
    let sandbox = sandbox();
    data(
        &sandbox,
        "createProduct",
        "data[name]=Fresh&data[currency]=USD",
    )
    .await;
    let listed = data(&sandbox, "listProducts", "").await;
    let products = listed["products"].as_array().cloned().unwrap_or_default();
    assert_eq!(products.len(), 6);
    let fetched = data(&sandbox, "getProduct", "product_id=10005").await;
    for product in products.iter().chain([&fetched["product"]]) {
        for field in REQUIRED {
            let value = &product[*field];
            let ok = value.is_string() || (*field == "product_group_id" && value.is_null());
            assert!(ok, "{field} is {value} in {product}");
        }
    }
    let fresh = products.iter().find(|p| p["id"] == "10006");
    assert_eq!(
        fresh.map(|p| &p["affiliate_commission_cur"]),
        Some(&"USD".into())
    );
    assert_eq!(
        fetched["product"]["product_group_id"],
        serde_json::Value::Null
    );
}

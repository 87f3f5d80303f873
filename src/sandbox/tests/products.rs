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

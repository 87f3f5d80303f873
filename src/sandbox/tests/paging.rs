use std::collections::HashSet;

use serde_json::Value;

use super::{call, data, sandbox};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn purchases_page_over_three_pages_of_ten() {
    let sandbox = sandbox();
    let mut seen = HashSet::new();

    for page in 1..=3 {
        let body = format!("page_no={page}&page_size=10");
        let list = data(&sandbox, "listPurchases", &body).await;

        assert_eq!(list["page_no"], page);
        assert_eq!(list["page_size"], 10);
        assert_eq!(list["page_count"], 3);
        assert_eq!(list["item_count"], 30);
        let page_ids = ids(&list["purchase_list"]);
        assert_eq!(page_ids.len(), 10);
        seen.extend(page_ids);
    }

    assert_eq!(seen.len(), 30, "pages do not overlap");
    let past_the_end = data(&sandbox, "listPurchases", "page_no=4&page_size=10").await;
    assert_eq!(ids(&past_the_end["purchase_list"]).len(), 0);
}

#[tokio::test]
async fn buyers_page_with_a_short_last_page() {
    let sandbox = sandbox();

    let first = data(&sandbox, "listBuyers", "page_size=3").await;
    let last = data(&sandbox, "listBuyers", "page_no=3&page_size=3").await;

    assert_eq!(first["item_count"], 8);
    assert_eq!(first["page_count"], 3);
    assert_eq!(ids(&first["items"]), ["50001", "50002", "50003"]);
    assert_eq!(ids(&last["items"]), ["50007", "50008"]);
}

#[tokio::test]
async fn transactions_page_and_summarise_every_match() {
    let sandbox = sandbox();

    let all = data(&sandbox, "listTransactions", "").await;
    let page = data(&sandbox, "listTransactions", "page_no=2&page_size=10").await;

    let total = all["item_count"].as_u64().unwrap_or_default();
    assert!(total > 30, "subscriptions pay more than once: {total}");
    assert_eq!(page["page_count"], total.div_ceil(10));
    assert_eq!(ids(&page["transaction_list"]).len(), 10);
    assert_eq!(page["summary"]["transaction_count"], total);
    assert_eq!(page["summary"]["refund_count"], 1);
}

#[tokio::test]
async fn defaults_are_page_one_and_a_large_page() {
    let sandbox = sandbox();

    let purchases = data(&sandbox, "listPurchases", "").await;
    let buyers = data(&sandbox, "listBuyers", "").await;

    assert_eq!(
        (purchases["page_no"].clone(), purchases["page_size"].clone()),
        (1.into(), 1000.into())
    );
    assert_eq!(buyers["page_size"], 100);
    assert_eq!(purchases["page_count"], 1);
}

#[tokio::test]
async fn invalid_paging_values_are_code_3_naming_the_parameter() {
    let cases = [
        ("page_no=0", "page_no"),
        ("page_no=-1", "page_no"),
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=1001", "page_size"),
        ("page_no[]=1", "page_no"),
    ];
    for function in ["listPurchases", "listBuyers", "listTransactions"] {
        for (body, parameter) in cases {
            let reply = call(&sandbox(), function, body).await;

            assert_eq!(reply.code(), 3, "{function} {body}");
            assert!(
                reply.message().contains(parameter),
                "{function} {body}: {}",
                reply.message()
            );
        }
    }
}

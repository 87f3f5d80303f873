//! Ranking by intent and suggestions for unknown keys.

use crate::actions::{rank, suggest};

fn top(intent: &str, n: usize) -> Vec<&'static str> {
    rank(intent)
        .into_iter()
        .take(n)
        .map(|(a, _)| a.key)
        .collect()
}

#[test]
fn refund_an_order_ranks_refund_purchase_first() {
    assert_eq!(top("refund an order", 1), ["refund-purchase"]);
}

#[test]
fn customer_finds_the_buyer_actions_near_the_top() {
    let found = top("customer", 5);
    for key in ["get-buyer", "list-buyers", "update-buyer"] {
        assert!(found.contains(&key), "{key} not in {found:?}");
    }
}

#[test]
fn coupon_finds_the_voucher_actions() {
    let found = top("coupon", 8);
    for key in [
        "create-voucher",
        "get-voucher",
        "list-vouchers",
        "validate-coupon-code",
    ] {
        assert!(found.contains(&key), "{key} not in {found:?}");
    }
}

#[test]
fn list_products_ranks_list_products_first() {
    assert_eq!(top("list products", 1), ["list-products"]);
    assert_eq!(top("cancel a subscription", 1), ["stop-rebilling"]);
    assert_eq!(top("set up a webhook", 1), ["ipn-setup"]);
}

#[test]
fn only_relevant_actions_are_returned_best_first() {
    let ranked = rank("refund");
    assert!(ranked.iter().all(|(_, s)| *s > 0.0));
    assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(rank("zzzz qqqq").is_empty());
    assert!(rank("").is_empty());
}

#[test]
fn a_misspelt_key_suggests_the_intended_one_first() {
    assert_eq!(suggest("refund-purchse", 3)[0], "refund-purchase");
    assert_eq!(suggest("listProduct", 3)[0], "list-products");
    assert_eq!(suggest("get-byer", 1), ["get-buyer"]);
    assert!(suggest("refund-purchse", 3).len() <= 3);
    assert!(suggest("xyzzy-plugh-frobnicate", 3).is_empty());
}

//! Properties of the whole table, and agreement of the generated schemas with the validator.

use std::collections::BTreeSet;

use serde_json::json;

use crate::actions::{CATALOG, Effect, Param, ParamType, effect_of_function, find, key_for};

/// The 20 popular actions of API-FACTS §8.1, with their functions.
const POPULAR: [(&str, &str); 20] = [
    ("list-products", "listProducts"),
    ("list-purchases", "listPurchases"),
    ("list-buyers", "listBuyers"),
    ("list-transactions", "listTransactions"),
    ("list-order-forms", "listOrderforms"),
    ("list-deliveries", "listDeliveries"),
    ("list-vouchers", "listVouchers"),
    ("list-invoices", "listInvoices"),
    ("get-product", "getProduct"),
    ("get-purchase", "getPurchase"),
    ("get-buyer", "getBuyer"),
    ("get-voucher", "getVoucher"),
    ("create-product", "createProduct"),
    ("create-voucher", "createVoucher"),
    ("update-product", "updateProduct"),
    ("update-purchase", "updatePurchase"),
    ("update-buyer", "updateBuyer"),
    ("update-delivery", "updateDelivery"),
    ("delete-product", "deleteProduct"),
    ("refund-purchase", "refundPurchase"),
];

#[test]
fn keys_and_functions_are_unique() {
    let keys: BTreeSet<&str> = CATALOG.iter().map(|a| a.key).collect();
    let functions: BTreeSet<&str> = CATALOG.iter().map(|a| a.function).collect();
    assert_eq!(keys.len(), CATALOG.len());
    assert_eq!(functions.len(), CATALOG.len());
}

#[test]
fn every_key_follows_the_naming_rule() {
    for a in CATALOG {
        assert_eq!(a.key, key_for(a.function), "{}", a.function);
    }
    assert_eq!(key_for("listOrderforms"), "list-order-forms");
    assert_eq!(key_for("createPaymentplan"), "create-payment-plan");
    assert_eq!(key_for("getSmartupgrade"), "get-smart-upgrade");
    assert_eq!(key_for("ipnSetup"), "ipn-setup");
    assert_eq!(key_for("listEtickets"), "list-etickets");
}

#[test]
fn the_twenty_popular_actions_have_exactly_the_listed_keys() {
    for (key, function) in POPULAR {
        assert_eq!(find(key).map(|a| a.function), Some(function), "{key}");
        assert_eq!(
            find(function).map(|a| a.key),
            Some(key),
            "{function} as alias"
        );
    }
}

#[test]
fn every_action_has_a_one_line_summary_and_described_parameters() {
    for a in CATALOG {
        assert!(
            !a.summary.is_empty() && !a.summary.contains('\n'),
            "{}",
            a.key
        );
        assert!(
            a.summary.ends_with('.'),
            "{}: summary ends with a full stop",
            a.key
        );
        assert!(!a.tag.is_empty(), "{}", a.key);
        walk(a.params, &mut |p| {
            assert!(
                !p.description.is_empty(),
                "{}: {} has no description",
                a.key,
                p.name
            );
        });
    }
}

#[test]
fn parameter_names_are_unique_within_each_action_and_object() {
    fn check(key: &str, params: &[Param]) {
        let names: BTreeSet<&str> = params.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), params.len(), "{key}: duplicate parameter");
        for p in params {
            check(key, p.ty.fields());
            if let ParamType::Array(item) = p.ty {
                check(key, item.fields());
            }
        }
    }
    for a in CATALOG {
        check(a.key, a.params);
    }
}

#[test]
fn paged_actions_are_the_five_of_the_facts_and_take_page_no_and_page_size() {
    let paged: BTreeSet<&str> = CATALOG
        .iter()
        .filter(|a| a.is_paged())
        .map(|a| a.function)
        .collect();
    let expected = [
        "listBuyers",
        "listCommissions",
        "listPurchases",
        "listRebillingStatusChanges",
        "listTransactions",
    ];
    assert_eq!(paged, expected.into_iter().collect());
    for a in CATALOG.iter().filter(|a| a.is_paged()) {
        assert!(
            matches!(a.param("page_no").map(|p| p.ty), Some(ParamType::Integer)),
            "{}",
            a.key
        );
        assert!(
            matches!(a.param("page_size").map(|p| p.ty), Some(ParamType::Integer)),
            "{}",
            a.key
        );
        assert!(!a.paging.unwrap().items_field.is_empty());
    }
    assert_eq!(
        find("list-purchases").unwrap().paging.unwrap().items_field,
        "purchase_list"
    );
    assert_eq!(
        find("list-transactions")
            .unwrap()
            .paging
            .unwrap()
            .items_field,
        "transaction_list"
    );
}

#[test]
fn money_moving_functions_are_money_and_unknown_functions_count_as_writes() {
    for f in [
        "refundPurchase",
        "refundPartially",
        "refundTransaction",
        "createBillingOnDemand",
        "addBalanceToPurchase",
    ] {
        assert_eq!(effect_of_function(f), Effect::Money, "{f}");
    }
    assert_eq!(effect_of_function("listProducts"), Effect::Read);
    assert_eq!(effect_of_function("createProduct"), Effect::Write);
    assert_eq!(effect_of_function("getTestpayKey"), Effect::Write);
    assert_eq!(effect_of_function("noSuchFunction"), Effect::Write);
    assert_eq!(serde_json::to_value(Effect::Money).unwrap(), json!("money"));
}

fn walk(params: &[Param], f: &mut impl FnMut(&Param)) {
    for p in params {
        f(p);
        walk(p.ty.fields(), f);
        if let ParamType::Array(item) = p.ty {
            walk(item.fields(), f);
        }
    }
}

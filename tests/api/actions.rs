//! Named actions over HTTP, against the sandbox (which records what it
//! received): what was sent for each popular action, the `{data, meta}`
//! answer, validation, unknown actions, upstream errors, paging, ranking.

use serde_json::{Value, json};

use crate::helpers::client;
use crate::sandbox::SandboxApp;
use ds24_proxy::sandbox::{self, ErrorStyle};

impl SandboxApp {
    /// POSTs `input` to `/actions/{key}`; returns status and JSON body.
    pub async fn action(&self, key: &str, input: &Value) -> (u16, Value) {
        let response = client()
            .post(self.url(&format!("/actions/{key}")))
            .json(input)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

/// For each of the 20 popular actions: an input, the parameters the
/// sandbox must have received (after its PHP bracket parsing), and a JSON
/// pointer into `data` that the answer must have.
fn popular() -> Vec<(&'static str, Value, Value, &'static str)> {
    vec![
        (
            "list-products",
            json!({"sort_by": "name"}),
            json!({"sort_by": "name"}),
            "/products/0/id",
        ),
        (
            "list-purchases",
            json!({"from": "start", "search": {"email": "anna.schmidt@example.com"}, "page_size": 5}),
            json!({"from": "start", "search": {"email": "anna.schmidt@example.com"}, "page_size": "5"}),
            "/purchase_list/0/id",
        ),
        (
            "list-buyers",
            json!({"page_no": 2, "page_size": 3}),
            json!({"page_no": "2", "page_size": "3"}),
            "/items/0/id",
        ),
        (
            "list-transactions",
            json!({"from": "start", "to": "now", "page_size": 10}),
            json!({"from": "start", "to": "now", "page_size": "10"}),
            "/transaction_list/0/id",
        ),
        ("list-order-forms", json!({}), json!({}), "/orderforms/0/id"),
        (
            "list-deliveries",
            json!({"search": {"purchase_id": "SBX00004", "type": ["request", "delivery"]}}),
            json!({"search": {"purchase_id": "SBX00004", "type": "request,delivery"}}),
            "/delivery",
        ),
        ("list-vouchers", json!({}), json!({}), "/coupons/0/code"),
        (
            "list-invoices",
            json!({"purchase_id": "SBX00001"}),
            json!({"purchase_id": "SBX00001"}),
            "/invoice_list",
        ),
        (
            "get-product",
            json!({"product_id": 10001}),
            json!({"product_id": "10001"}),
            "/product/id",
        ),
        (
            "get-purchase",
            json!({"purchase_id": ["SBX00001"]}),
            json!({"purchase_id": "SBX00001"}),
            "/purchase_id",
        ),
        (
            "get-buyer",
            json!({"buyer_id": "50002"}),
            json!({"buyer_id": "50002"}),
            "/buyer/email",
        ),
        (
            "get-voucher",
            json!({"code": "SANDBOX10"}),
            json!({"code": "SANDBOX10"}),
            "/coupon/code",
        ),
        (
            "create-product",
            json!({"data": {"name_intern": "Kurs Ä&B", "name_de": "Kurs", "product_type_id": 1, "is_active": true}}),
            json!({"data": {"name_intern": "Kurs Ä&B", "name_de": "Kurs", "product_type_id": "1", "is_active": "Y"}}),
            "/product_id",
        ),
        (
            "create-voucher",
            json!({"data": {"code": "PROXY20", "product_ids": [10001, 10002], "first_rate": 20.5}}),
            json!({"data": {"code": "PROXY20", "product_ids": "10001,10002", "first_rate": "20.5"}}),
            "/code",
        ),
        (
            "update-product",
            json!({"product_id": "10005", "data": {"name_intern": "renamed", "is_active": false}}),
            json!({"product_id": "10005", "data": {"name_intern": "renamed", "is_active": "N"}}),
            "/modified",
        ),
        (
            "update-purchase",
            json!({"purchase_id": "SBX00005", "data": {"custom": "crm-7", "unlock_invoices": "Y"}}),
            json!({"purchase_id": "SBX00005", "data": {"custom": "crm-7", "unlock_invoices": "Y"}}),
            "/is_modified",
        ),
        (
            "update-buyer",
            json!({"buyer_id": 50003, "data": {"first_name": "Zoë"}}),
            json!({"buyer_id": "50003", "data": {"first_name": "Zoë"}}),
            "/is_modified",
        ),
        (
            "update-delivery",
            json!({"delivery_id": 80003, "notify_via_email": false, "data": {"is_shipped": true}, "tracking": [{"parcel_service": "dhl", "tracking_id": "00340434"}]}),
            json!({"delivery_id": "80003", "notify_via_email": "N", "data": {"is_shipped": "Y"}, "tracking": [{"parcel_service": "dhl", "tracking_id": "00340434"}]}),
            "/is_modified",
        ),
        (
            "delete-product",
            json!({"product_id": 10005}),
            json!({"product_id": "10005"}),
            "",
        ),
        (
            "refund-purchase",
            json!({"purchase_id": "SBX00001", "force": false}),
            json!({"purchase_id": "SBX00001", "force": "N"}),
            "/purchase_id",
        ),
    ]
}

#[tokio::test]
async fn each_popular_action_sends_the_right_function_and_form_and_unwraps_the_answer() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    for (key, input, expected_params, pointer) in popular() {
        app.sandbox.clear_recorded();
        let (status, body) = app.action(key, &input).await;
        assert_eq!(status, 200, "{key}: {body}");
        let recorded = app.sandbox.recorded();
        assert_eq!(recorded.len(), 1, "{key}");
        let sent = &recorded[0];
        assert_eq!(sent.method, "POST", "{key}");
        assert_eq!(
            sent.function,
            body["meta"]["function"].as_str().unwrap(),
            "{key}"
        );
        assert_eq!(
            ds24_proxy::actions::find(key).unwrap().function,
            sent.function,
            "{key}"
        );
        assert_eq!(
            sent.headers["content-type"],
            "application/x-www-form-urlencoded; charset=utf-8"
        );
        assert_eq!(
            sent.params, expected_params,
            "{key}: the form parameters the upstream received"
        );
        assert!(
            !String::from_utf8_lossy(&sent.body).contains("true"),
            "{key}: a JSON boolean went out as text"
        );
        if pointer.is_empty() {
            assert_eq!(
                body["data"],
                json!({}),
                "{key}: Digistore24 answers an empty data object"
            );
        } else {
            assert!(
                body["data"].pointer(pointer).is_some(),
                "{key}: no {pointer} in {}",
                body["data"]
            );
        }
        assert_eq!(body["meta"]["action"], key);
        assert_eq!(body["meta"]["connection"], "main");
        assert_eq!(body["meta"]["api_version"], "1.2");
        assert!(
            body["meta"]["request_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
}

#[tokio::test]
async fn the_function_name_is_an_alias_of_the_key_and_a_connection_can_be_chosen() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let (status, body) = app
        .action("getProduct", &json!({"product_id": "10002"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["action"], "get-product");
    let response = client()
        .post(app.url("/connections/main/actions/get-product"))
        .json(&json!({"product_id": "10002"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client()
        .post(app.url("/actions/get-product"))
        .header("X-DS24-Connection", "nope")
        .json(&json!({"product_id": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn invalid_input_is_refused_with_every_problem_and_never_reaches_the_upstream() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let (status, body) = app
        .action(
            "update-delivery",
            &json!({"notify_via_email": "maybe", "data": {"type": "teleport"}, "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "validation_failed");
    let paths: Vec<&str> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for expected in ["/delivery_id", "/notify_via_email", "/data/type", "/colour"] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        body["error"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["message"].as_str().unwrap().is_empty())
    );

    let (status, body) = app
        .action("get-product", &json!({"product_id": {"nested": 1}}))
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("validation_failed"))
    );
    assert!(
        app.sandbox.recorded().is_empty(),
        "an invalid input reached the upstream"
    );
}

#[tokio::test]
async fn malformed_json_and_non_objects_are_bad_requests() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    for body in ["{\"product_id\": ", "[1,2]", "\"text\""] {
        let response = client()
            .post(app.url("/actions/get-product"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["error"]["type"], "bad_request", "{body}");
    }
    let huge = format!("{{\"product_id\": \"{}\"}}", "9".repeat(1024 * 1024 + 1));
    let response = client()
        .post(app.url("/actions/get-product"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(app.sandbox.recorded().is_empty());
}

#[tokio::test]
async fn an_unknown_action_gets_404_with_the_closest_keys() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    for key in ["refund-purchse", "refundPurchse"] {
        let (status, body) = app.action(key, &json!({})).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["type"], "unknown_action");
        assert_eq!(body["error"]["suggestions"][0], "refund-purchase", "{body}");
    }
    let response = client()
        .get(app.url("/actions/nope-nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn digistore24_errors_become_upstream_error_with_a_fitting_status_in_both_styles() {
    let writable = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let readonly = SandboxApp::start(sandbox::READONLY_KEY).await;
    let bad_key = SandboxApp::start("1999-NotAKeyTheSandboxKnows").await;
    for style in [ErrorStyle::Http4xx, ErrorStyle::Http200] {
        for app in [&writable, &readonly, &bad_key] {
            app.sandbox.set_error_style(style);
        }
        let cases = [
            (
                writable
                    .action("get-product", &json!({"product_id": "99999"}))
                    .await,
                404,
                4,
            ),
            (
                readonly
                    .action("refund-purchase", &json!({"purchase_id": "SBX00001"}))
                    .await,
                403,
                5,
            ),
            (
                writable
                    .action("refund-purchase", &json!({"purchase_id": "SBX00002"}))
                    .await,
                400,
                3,
            ),
        ];
        for ((status, body), expected_status, code) in cases {
            assert_eq!(status, expected_status, "{style:?}: {body}");
            assert_eq!(body["error"]["type"], "upstream_error", "{body}");
            assert_eq!(body["error"]["upstream"]["code"], code, "{body}");
            assert!(
                !body["error"]["upstream"]["message"]
                    .as_str()
                    .unwrap()
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn all_pages_walks_every_page_into_one_list() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let (status, body) = app
        .action(
            "list-purchases",
            &json!({"from": "start", "page_size": 10, "all_pages": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["data"]["purchase_list"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    let ids: std::collections::HashSet<_> =
        items.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 30, "a page was fetched twice");
    assert_eq!(body["meta"]["paging"]["pages_fetched"], 3);
    assert_eq!(body["meta"]["paging"]["complete"], true);
    let pages: Vec<String> = app
        .sandbox
        .recorded()
        .iter()
        .map(|r| r.params["page_no"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
    assert!(
        app.sandbox
            .recorded()
            .iter()
            .all(|r| r.params.get("all_pages").is_none()),
        "control fields were sent upstream"
    );

    let (_, body) = app
        .action(
            "list-purchases",
            &json!({"from": "start", "page_size": 10, "all_pages": true, "max_pages": 2}),
        )
        .await;
    assert_eq!(body["data"]["purchase_list"].as_array().unwrap().len(), 20);
    assert_eq!(body["meta"]["paging"]["complete"], false);
}

#[tokio::test]
async fn ndjson_streams_one_item_per_line() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let response = client()
        .post(app.url("/actions/list-buyers"))
        .header("accept", "application/x-ndjson")
        .json(&json!({"page_size": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let mut buyers: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = buyers.pop().unwrap();
    assert_eq!(
        last["meta"]["paging"]["complete"], true,
        "the stream ends with its meta line: {last}"
    );
    assert_eq!(last["meta"]["paging"]["pages_fetched"], 3);
    assert_eq!(last["meta"]["action"], "list-buyers");
    assert_eq!(buyers.len(), 8);
    assert!(buyers.iter().all(|b| b["id"].is_string()));
    assert_eq!(app.sandbox.recorded().len(), 3);

    let response = client()
        .post(app.url("/actions/list-buyers"))
        .header("accept", "application/x-ndjson")
        .json(&json!({"page_size": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a first-page error keeps its status"
    );
}

#[tokio::test]
async fn intent_ranks_actions_by_plain_words() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let cases: [(&str, &[&str], usize); 4] = [
        ("refund an order", &["refund-purchase"], 3),
        ("customer", &["get-buyer", "list-buyers", "update-buyer"], 6),
        (
            "coupon",
            &["get-voucher", "list-vouchers", "create-voucher"],
            6,
        ),
        ("list products", &["list-products"], 1),
    ];
    for (intent, expected, within) in cases {
        let listed: Value = client()
            .get(app.url("/actions"))
            .query(&[("intent", intent)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys: Vec<&str> = listed["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap())
            .collect();
        for key in expected {
            assert!(
                keys.iter().take(within).any(|k| k == key),
                "`{intent}`: {key} not in the top {within} of {:?}",
                &keys[..keys.len().min(8)]
            );
        }
    }
}

#[tokio::test]
async fn the_listing_and_one_action_show_key_function_summary_effect_paging_and_schema() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let listed: Value = client()
        .get(app.url("/actions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions = listed["actions"].as_array().unwrap();
    assert_eq!(actions.len(), ds24_proxy::actions::CATALOG.len());
    for a in actions {
        for field in [
            "key",
            "function",
            "summary",
            "effect",
            "paged",
            "input_schema",
        ] {
            assert!(!a[field].is_null(), "{field} missing in {a}");
        }
    }
    let one: Value = client()
        .get(app.url("/actions/refund-purchase"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["effect"], "money");
    assert_eq!(one["function"], "refundPurchase");
    assert_eq!(one["input_schema"]["required"], json!(["purchase_id"]));
}

#[tokio::test]
async fn openapi_json_parses_and_lists_every_action() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let doc: Value = client()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for action in ds24_proxy::actions::CATALOG {
        let op = &doc["paths"][format!("/actions/{}", action.key)]["post"];
        assert_eq!(op["operationId"], action.function);
        assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object());
    }
}

#[tokio::test]
async fn sandbox_data_stays_consistent_across_action_calls() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let (_, created) = app
        .action(
            "create-product",
            &json!({"data": {"name_de": "Neuer Kurs", "product_type_id": 1}}),
        )
        .await;
    let id = created["data"]["product_id"].as_str().unwrap().to_owned();
    let (status, fetched) = app.action("get-product", &json!({"product_id": id})).await;
    assert_eq!(status, 200, "{fetched}");
    let (_, _) = app
        .action(
            "update-product",
            &json!({"product_id": id, "data": {"name_intern": "intern-7"}}),
        )
        .await;
    let (_, fetched) = app.action("get-product", &json!({"product_id": id})).await;
    assert_eq!(
        fetched["data"]["product"]["name_intern"], "intern-7",
        "{fetched}"
    );
    let (status, _) = app
        .action("delete-product", &json!({"product_id": id}))
        .await;
    assert_eq!(status, 200);
    let (status, gone) = app.action("get-product", &json!({"product_id": id})).await;
    assert_eq!(
        (status, gone["error"]["upstream"]["code"].as_i64()),
        (404, Some(4)),
        "{gone}"
    );

    let (status, _) = app
        .action("refund-purchase", &json!({"purchase_id": "SBX00001"}))
        .await;
    assert_eq!(status, 200);
    let (_, purchase) = app
        .action("get-purchase", &json!({"purchase_id": "SBX00001"}))
        .await;
    assert_eq!(purchase["data"]["payment_status"], "refunded", "{purchase}");
    let (status, again) = app
        .action("refund-purchase", &json!({"purchase_id": "SBX00001"}))
        .await;
    assert_eq!(status, 400, "a second refund must be refused: {again}");
}

#[tokio::test]
async fn all_pages_also_walks_a_list_without_paging_fields() {
    // Real listPurchases replies carry no page_count; the fake does the same.
    let app = crate::helpers::spawn_app().await;
    let response = app
        .client
        .post(app.url("/actions/list-purchases"))
        .json(&json!({"page_size": 10, "all_pages": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["data"]["purchase_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 25, "{ids:?}");
    assert_eq!(ids.first(), Some(&"P001"));
    assert_eq!(ids.last(), Some(&"P025"));
    assert_eq!(body["meta"]["paging"]["pages_fetched"], 3);
    assert_eq!(body["meta"]["paging"]["complete"], true);

    // Exactly 20 items: two full pages, then an empty one ends the walk.
    let response = app
        .client
        .post(app.url("/actions/list-purchases"))
        .json(&json!({"page_size": 5, "page_no": 2, "all_pages": true}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["purchase_list"].as_array().unwrap().len(),
        20,
        "starting at page 2 of 5"
    );
}

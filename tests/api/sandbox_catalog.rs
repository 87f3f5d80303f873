//! Every catalog action against the served sandbox, through the proxy:
//! a minimal valid input built from the action's parameter definitions
//! (required parameters filled with plausible values, seeded ids where the
//! sandbox keeps state) must answer `200` with `data`, and the sandbox must
//! have received exactly the form the encoder promised. A function the
//! sandbox does not answer fails here (code 9 becomes a 400).

use std::collections::BTreeMap;

use ds24_proxy::actions::{ActionDef, CATALOG, Param, ParamType};
use ds24_proxy::sandbox::{self, Permission};
use serde_json::{Map, Value, json};

use crate::helpers::client;
use crate::sandbox::SandboxApp;

/// A key the test adds as if connected interactively, so `unregister`
/// (which deletes the calling key) has one it may delete.
const UNREGISTER_KEY: &str = "1777-SandboxCatalogUnregister000000000000000000";

/// Connections besides `main` (the writable key): the developer key for the
/// connect flow, and the key `unregister` deletes.
const CONNECTIONS: &str = r#"
[connections.dev]
credential = { source = "env", var = "CATALOG_DEV_KEY" }

[connections.leaving]
credential = { source = "env", var = "CATALOG_LEAVING_KEY" }
"#;

/// Values of parameters by name where the sandbox keeps state: ids of the
/// seed (see `src/sandbox/data.rs`) and names it checks.
fn seeded(function: &str, name: &str) -> Option<Value> {
    Some(match (function, name) {
        // 10005 never sold, so it may be deleted.
        ("deleteProduct", "product_id") => json!(10005),
        (_, "product_id") => json!(10001),
        (_, "purchase_id") => json!("SBX00001"),
        (_, "buyer_id") => json!(50002),
        (_, "delivery_id") => json!(80001),
        ("createVoucher", "code") => json!("CATALOG20"),
        (_, "code") => json!("SANDBOX10"),
        (_, "product_ids") => json!("10001"),
        _ => return None,
    })
}

/// A plausible value of one parameter.
fn value_for(function: &str, param: &Param, ipn_url: &str) -> Value {
    if let Some(v) = seeded(function, param.name) {
        return v;
    }
    if let Some(first) = param.enum_values.first() {
        return json!(first);
    }
    let name = param.name;
    match &param.ty {
        ParamType::String if name == "ipn_url" => json!(ipn_url),
        ParamType::String | ParamType::Date | ParamType::List if name.contains("url") => {
            json!(format!("https://example.com/{name}"))
        }
        ParamType::String if name.contains("email") => json!("buyer@example.com"),
        ParamType::String => json!("sandbox"),
        ParamType::Integer => json!(1),
        ParamType::Number => json!(9.5),
        ParamType::Flag => json!(true),
        ParamType::Date => json!("2025-01-01 00:00:00"),
        ParamType::List => json!("1"),
        ParamType::Object(fields) | ParamType::OpenObject(fields) => {
            Value::Object(minimal_object(function, fields, ipn_url))
        }
        ParamType::Map => json!({ "key": "value" }),
        ParamType::Array(item) => {
            let item = Param {
                name: param.name,
                ty: **item,
                required: true,
                enum_values: &[],
                description: "",
            };
            json!([value_for(function, &item, ipn_url)])
        }
    }
}

/// The required fields of an object, or its first field when none is
/// required: an empty object would put nothing on the wire.
fn minimal_object(function: &str, fields: &[Param], ipn_url: &str) -> Map<String, Value> {
    let mut out: Map<String, Value> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| (f.name.to_owned(), value_for(function, f, ipn_url)))
        .collect();
    if out.is_empty()
        && let Some(first) = fields.first()
    {
        out.insert(first.name.to_owned(), value_for(function, first, ipn_url));
    }
    // Fields the stateful sandbox needs beyond the spec's required ones.
    if function == "createProduct" {
        out.insert("name".into(), json!("Catalog Course"));
    }
    out
}

/// The minimal valid input of an action.
fn minimal_input(action: &ActionDef, ipn_url: &str) -> Map<String, Value> {
    action
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| (p.name.to_owned(), value_for(action.function, p, ipn_url)))
        .collect()
}

/// Form pairs, decoded, in order.
fn pairs(form: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(form).into_owned().collect()
}

/// Which connection calls an action: the connect flow needs the developer
/// key, `unregister` a key it may delete, everything else `main`.
fn connection_of(action: &ActionDef) -> &'static str {
    match action.function {
        "requestApiKey" | "retrieveApiKey" => "dev",
        "unregister" => "leaving",
        _ => "main",
    }
}

#[tokio::test]
async fn every_catalog_action_answers_through_the_proxy_and_the_sandbox_gets_the_encoded_form() {
    let app = SandboxApp::start_with(
        CONNECTIONS,
        &[
            ("DS24_API_KEY", sandbox::WRITABLE_KEY),
            ("CATALOG_DEV_KEY", sandbox::DEVELOPER_KEY),
            ("CATALOG_LEAVING_KEY", UNREGISTER_KEY),
        ],
    )
    .await;
    app.sandbox.add_key(UNREGISTER_KEY, Permission::Writable);
    // ipnSetup checks its URL with a GET that must answer 200; the proxy's
    // own IPN receiver does.
    let ipn_url = app.url("/ipn/main");
    let mut failures: BTreeMap<&str, String> = BTreeMap::new();
    for action in CATALOG {
        let input = minimal_input(action, &ipn_url);
        if let Err(errors) = action.validate(&input) {
            failures.insert(action.key, format!("test input invalid: {errors:?}"));
            continue;
        }
        app.sandbox.clear_recorded();
        let response = client()
            .post(app.url(&format!("/actions/{}", action.key)))
            .header("X-DS24-Connection", connection_of(action))
            .json(&Value::Object(input.clone()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 || body.get("data").is_none() {
            failures.insert(action.key, format!("{status} {body}"));
            continue;
        }
        let recorded = app.sandbox.recorded();
        let [request] = recorded.as_slice() else {
            failures.insert(
                action.key,
                format!("{} requests reached the sandbox", recorded.len()),
            );
            continue;
        };
        let promised = pairs(action.encode_form(&input).as_bytes());
        let received = pairs(&request.body);
        if request.function != action.function || received != promised {
            failures.insert(
                action.key,
                format!(
                    "sandbox got {} with {received:?}, the encoder promised {promised:?}",
                    request.function
                ),
            );
        }
    }
    assert_eq!(CATALOG.len(), 123);
    assert!(
        failures.is_empty(),
        "{} of {} actions failed:\n{}",
        failures.len(),
        CATALOG.len(),
        failures
            .iter()
            .map(|(k, v)| format!("  {k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

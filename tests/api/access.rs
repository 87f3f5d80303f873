//! Inbound access: tokens with policies, and the start refusal on a public
//! address.

use serde_json::{Value, json};

use crate::binary::Proxy;
use crate::helpers::spawn_app_with;

const ADMIN: &str = "admin-token-0123456789abcdef0123";
const AGENT: &str = "agent-token-0123456789abcdef0123";

fn agent_policy() -> String {
    "[[policies]]\nname = \"agent\"\ntoken_env = \"AGENT_TOKEN\"\neffects = [\"read\"]\ndeny_functions = [\"get-buyer\"]\n".to_owned()
}

#[tokio::test]
async fn a_read_only_token_is_refused_on_refunds_before_anything_is_sent() {
    let app = spawn_app_with(
        &agent_policy(),
        &[("DS24_PROXY_TOKEN", ADMIN), ("AGENT_TOKEN", AGENT)],
    )
    .await;
    let refused = [
        app.client
            .post(app.url("/refundPurchase"))
            .bearer_auth(AGENT)
            .body("purchase_id=1"),
        app.client
            .post(app.url("/actions/refund-purchase"))
            .bearer_auth(AGENT)
            .json(&json!({"purchase_id": "1"})),
        app.client
            .post(app.url("/updateProduct"))
            .bearer_auth(AGENT),
        app.client
            .post(app.url("/someUnknownFunction"))
            .bearer_auth(AGENT),
        app.client
            .post(app.url("/getBuyer"))
            .bearer_auth(AGENT)
            .body("buyer_id=1"),
    ];
    for request in refused {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "forbidden_by_policy", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("agent"));
    }
    assert!(
        app.fake.requests().is_empty(),
        "a refused call reached the upstream"
    );

    let read = app
        .client
        .get(app.url("/listProducts"))
        .bearer_auth(AGENT)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let admin = app
        .client
        .post(app.url("/refundPurchase"))
        .bearer_auth(ADMIN)
        .body("purchase_id=1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin.status(),
        200,
        "the token without a policy may do everything"
    );
    assert_eq!(app.fake.requests().len(), 2);
}

#[test]
fn a_policy_naming_an_unknown_function_is_a_config_error() {
    let toml = "[[policies]]\nname = \"x\"\ntoken_env = \"X_TOKEN\"\ndeny_functions = [\"refund-purchse\"]\n";
    let env = std::collections::HashMap::from([("X_TOKEN".to_owned(), AGENT.to_owned())]);
    let err = ds24_proxy::config::from_parts(
        ds24_proxy::config::parse_toml(toml, "t").unwrap(),
        &env,
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.key, "policies[0].deny_functions");
    assert!(err.fix.contains("refund-purchase"), "{err}");
}

#[test]
fn a_public_address_without_a_token_refuses_to_start_unless_loudly_allowed() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ds24-proxy"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("DS24_PROXY_TOKEN")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DS24_PROXY_TOKEN") && stderr.contains("--listen"),
        "{stderr}"
    );

    let proxy = Proxy::start_command(
        &[
            "serve".to_owned(),
            "--dangerously-allow-public-listen-without-token".to_owned(),
            "--listen".to_owned(),
            "0.0.0.0:0".to_owned(),
        ],
        &[],
    );
    // The warning follows the "listening" line; give the reader a moment.
    let started = std::time::Instant::now();
    while !proxy.log().contains("WITHOUT INBOUND TOKENS")
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        proxy.log().contains("WITHOUT INBOUND TOKENS"),
        "{}",
        proxy.log()
    );
}

#[tokio::test]
async fn letter_case_and_path_tricks_do_not_get_around_a_policy() {
    let toml = "[[policies]]\nname = \"agent\"\ntoken_env = \"AGENT_TOKEN\"\neffects = [\"read\", \"write\"]\ndeny_functions = [\"refund-purchase\"]\n";
    let app = spawn_app_with(toml, &[("DS24_PROXY_TOKEN", ADMIN), ("AGENT_TOKEN", AGENT)]).await;
    for path in [
        "/RefundPurchase",
        "/REFUNDPURCHASE",
        "/api/call/refundpurchase",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(AGENT)
            .body("purchase_id=1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    for path in [
        "/getProduct/json/refundPurchase",
        "/listPurchases/json/refundPurchase",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(AGENT)
            .body("purchase_id=1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    // An unknown function may do anything: it needs the money right too.
    let response = app
        .client
        .post(app.url("/someNewFunction"))
        .bearer_auth(AGENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        app.fake.requests().is_empty(),
        "a trick reached the upstream"
    );
    // A case variant from an allowed caller goes out in the catalog's spelling.
    app.client
        .post(app.url("/GETPRODUCT"))
        .bearer_auth(AGENT)
        .body("product_id=1")
        .send()
        .await
        .unwrap();
    assert_eq!(app.fake.single().path, "/api/call/getProduct");
}

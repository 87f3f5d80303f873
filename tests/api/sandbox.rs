//! The built-in sandbox behind the proxy: the README quick start, the
//! stateful sandbox functions through the pass-through, a catalog-only
//! function under `serve --sandbox`, and the two error styles passing
//! through unchanged. Every catalog action is run in `sandbox_catalog.rs`.

use std::collections::HashMap;

use ds24_proxy::config::{self, Overrides};
use ds24_proxy::sandbox::{self, ErrorStyle, Sandbox, SandboxOptions};
use serde_json::Value;

use crate::binary::Proxy;
use crate::helpers::client;

/// A proxy in front of an in-process sandbox, with `key` as `main`'s key.
pub struct SandboxApp {
    pub proxy: std::net::SocketAddr,
    pub sandbox: Sandbox,
    /// Where the sandbox itself listens (`sandbox::serve`).
    pub upstream: std::net::SocketAddr,
}

impl SandboxApp {
    pub async fn start(key: &str) -> Self {
        Self::start_with("", &[("DS24_API_KEY", key)]).await
    }

    /// A proxy configured by `toml` and `env` (plus `DS24_BASE_URL`
    /// pointing at a fresh sandbox).
    pub async fn start_with(toml: &str, env: &[(&str, &str)]) -> Self {
        let sandbox = Sandbox::new(SandboxOptions::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let base = format!("http://{upstream}/api/call");
        tokio::spawn(sandbox::serve(
            listener,
            sandbox.clone(),
            std::future::pending(),
        ));
        // Never the real home directory: writes open the store.
        let data = tempfile::tempdir().unwrap().keep();
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DS24_BASE_URL".into(), base),
            ("DS24_PROXY_DATA_DIR".into(), data.display().to_string()),
        ]);
        vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = config::from_parts(
            config::parse_toml(toml, "test.toml").unwrap(),
            &vars,
            &Overrides::default(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        tokio::spawn(ds24_proxy::run(listener, config, std::future::pending()));
        Self {
            proxy,
            sandbox,
            upstream,
        }
    }

    /// `GET /connections`, the entry of `name`.
    pub async fn connection(&self, name: &str) -> Value {
        let all: Value = client()
            .get(self.url("/connections"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// POSTs a form to a function through the proxy; returns status and JSON.
    pub async fn call(&self, function: &str, form: &str) -> (u16, Value) {
        let response = client()
            .post(self.url(&format!("/{function}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        // A fault may answer plain text (a front server's 503); keep it.
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "raw": text })),
        )
    }
}

/// The README's Quick start: its `sh` commands, in order.
fn readme_quick_start_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a Quick start section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .flat_map(|block| block.split("```").next().unwrap().lines())
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The arguments the quick start runs `ds24-proxy` with.
fn readme_quick_start_args() -> Vec<String> {
    let commands = readme_quick_start_commands();
    assert_eq!(
        commands,
        [
            "cargo install --locked --path . && ds24-proxy serve --sandbox",
            "cargo test --locked"
        ],
        "the Quick start is two commands: install and run on the sandbox, and the tests"
    );
    // The install puts the binary this test suite built on PATH.
    commands[0]
        .split("&& ds24-proxy ")
        .nth(1)
        .expect("`… && ds24-proxy ARGS`")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_readme_quick_start_runs_the_proxy_on_the_sandbox_and_a_function_answers() {
    let args = readme_quick_start_args();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    // The quick start's own command, but on a free port: 7424 may be taken.
    let proxy = Proxy::start_command(&args, &[]);
    let response = client()
        .get(proxy.url("/listProducts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"], "success", "{body}");
    assert!(
        !body["data"]["products"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let ready = client().get(proxy.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn serve_sandbox_runs_a_catalog_action_the_sandbox_keeps_no_state_for() {
    let args: Vec<String> = ["serve", "--sandbox"].map(str::to_owned).to_vec();
    let proxy = Proxy::start_command(&args, &[]);
    let response = client()
        .post(proxy.url("/actions/get-image"))
        .json(&serde_json::json!({"image_id": "IMG7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["image"].is_object(), "{body}");
    assert_eq!(body["meta"]["function"], "getImage", "{body}");
}

#[tokio::test]
async fn every_sandbox_function_answers_success_through_the_proxy() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let calls = [
        ("ping", ""),
        ("getUserInfo", ""),
        ("listProducts", ""),
        ("getProduct", "product_id=10001"),
        (
            "createProduct",
            "data[name]=Proxy+Course&data[product_type_id]=1",
        ),
        (
            "updateProduct",
            "product_id=10005&data[name_intern]=renamed",
        ),
        ("deleteProduct", "product_id=10005"),
        ("listPurchases", "page_size=10"),
        ("getPurchase", "purchase_id=SBX00001"),
        ("updatePurchase", "purchase_id=SBX00001&custom=abc"),
        ("refundPurchase", "purchase_id=SBX00001"),
        ("listTransactions", ""),
        ("listInvoices", "purchase_id=SBX00001"),
        ("listBuyers", ""),
        ("getBuyer", "buyer_id=50002"),
        ("updateBuyer", "buyer_id=50002&data[first_name]=J%C3%BCrgen"),
        ("listVouchers", ""),
        ("getVoucher", "code=SANDBOX10"),
        (
            "createVoucher",
            "code=PROXY20&first_rate=20&product_ids=10001",
        ),
        ("listDeliveries", ""),
        ("updateDelivery", "delivery_id=80001&data[is_shipped]=Y"),
        ("listOrderforms", ""),
    ];
    for (function, form) in calls {
        let (status, body) = app.call(function, form).await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("success")),
            "{function}: {body}"
        );
    }
    let (_, purchase) = app.call("getPurchase", "purchase_id=SBX00001").await;
    assert_eq!(purchase["data"]["payment_status"], "refunded", "{purchase}");
    let recorded = app.sandbox.recorded();
    assert_eq!(recorded.len(), calls.len() + 1);
    assert!(
        recorded
            .iter()
            .all(|r| r.headers["x-ds-api-key"] == sandbox::WRITABLE_KEY)
    );
}

#[tokio::test]
async fn sandbox_errors_pass_through_unchanged_in_both_styles() {
    let app = SandboxApp::start(sandbox::READONLY_KEY).await;
    for (style, expected_status) in [(ErrorStyle::Http4xx, 403), (ErrorStyle::Http200, 200)] {
        app.sandbox.set_error_style(style);
        let (status, body) = app.call("refundPurchase", "purchase_id=SBX00001").await;
        assert_eq!(status, expected_status, "{style:?}");
        assert_eq!(body["result"], "error");
        assert_eq!(body["code"], 5, "{body}");
    }
    app.sandbox.set_error_style(ErrorStyle::Http4xx);
    let (status, body) = app.call("getProduct", "product_id=99999").await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(4)), "{body}");
}

#[tokio::test]
async fn the_served_sandbox_answers_411_to_a_post_without_a_length() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    let mut stream = tokio::net::TcpStream::connect(app.upstream).await.unwrap();
    let request = format!(
        "POST /api/call/refundPurchase HTTP/1.1\r\nHost: {}\r\nX-DS-API-KEY: {}\r\nConnection: close\r\n\r\n",
        app.upstream,
        sandbox::WRITABLE_KEY
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();

    assert!(reply.starts_with("HTTP/1.1 411"), "{reply}");
    assert!(reply.ends_with("\r\n\r\n411 Length Required\n"), "{reply}");
    assert_eq!(app.sandbox.calls("refundPurchase"), 1);
    let rejected = app.sandbox.rejected();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].rejected,
        Some(http::StatusCode::LENGTH_REQUIRED)
    );
}

#[tokio::test]
async fn serve_sandbox_started_twice_logs_no_warning_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    for run in 1..=2 {
        let mut proxy = Proxy::start(&["--sandbox"], &[("DS24_PROXY_DATA_DIR", &data)]);
        // A write opens (the first time: creates) the store for its audit row.
        let response = client()
            .post(proxy.url("/updateProduct"))
            .form(&[("product_id", "10001"), ("data[name_intern]", "run")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "run {run}");
        let missing = client()
            .get(proxy.url("/connections/nosuch/listProducts"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        proxy.signal("TERM");
        assert!(proxy.wait(std::time::Duration::from_secs(10)).success());
        let log = proxy.log();
        assert!(
            !log.contains(" WARN ") && !log.contains(" ERROR "),
            "run {run}:\n{log}"
        );
    }
}

//! The shell commands: the binary's own parser, and real runs of
//! `actions …` and `request …` against a running `ds24-proxy sandbox`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use clap::Parser;
use ds24_proxy::cli::{Cli, Command as Sub};
use ds24_proxy::sandbox;
use serde_json::Value;

use crate::binary::Proxy;

const BIN: &str = env!("CARGO_BIN_EXE_ds24-proxy");

/// A running `ds24-proxy sandbox` and a way to run CLI commands against it.
struct Shell {
    sandbox: Proxy,
}

impl Shell {
    fn start() -> Self {
        Self {
            sandbox: Proxy::start_command(&["sandbox".to_owned()], &[]),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with(args, stdin, &[])
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let base = format!("http://{}/api/call", self.sandbox.addr);
        let mut child = Command::new(BIN)
            .args(args)
            .env("DS24_API_KEY", sandbox::WRITABLE_KEY)
            .env("DS24_BASE_URL", base)
            .env_remove("RUST_LOG")
            .env_remove("DS24_PROXY_TOKEN")
            .envs(env.iter().copied())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn actions_run_calls_the_sandbox_with_input_from_text_a_file_or_stdin() {
    let shell = Shell::start();
    let text = stdout_json(&shell.run(
        &[
            "actions",
            "run",
            "get-product",
            "--input",
            r#"{"product_id": "10001"}"#,
        ],
        None,
    ));
    assert_eq!(text["data"]["product"]["id"], "10001");
    assert_eq!(text["meta"]["function"], "getProduct");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.json");
    std::fs::write(&file, r#"{"buyer_id": 50002}"#).unwrap();
    let from_file = stdout_json(&shell.run(
        &[
            "actions",
            "run",
            "getBuyer",
            "--input",
            &format!("@{}", file.display()),
        ],
        None,
    ));
    assert_eq!(from_file["data"]["buyer"]["id"], "50002");

    let from_stdin = stdout_json(&shell.run(
        &["actions", "run", "list-vouchers", "--input", "-"],
        Some("{}"),
    ));
    assert!(from_stdin["data"]["coupons"].is_array());
}

#[test]
fn actions_run_fails_with_a_clear_message_and_a_non_zero_exit() {
    let shell = Shell::start();
    let unknown = shell.run(&["actions", "run", "refund-purchse"], None);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown_action") && stderr.contains("refund-purchase"),
        "{stderr}"
    );

    let invalid = shell.run(&["actions", "run", "get-product", "--input", "{}"], None);
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("validation_failed"));

    let upstream = shell.run(
        &[
            "actions",
            "run",
            "get-product",
            "--input",
            r#"{"product_id": 99999}"#,
        ],
        None,
    );
    assert!(!upstream.status.success());
    assert!(String::from_utf8_lossy(&upstream.stderr).contains("upstream_error"));
}

#[test]
fn actions_list_and_show_describe_the_catalog() {
    let shell = Shell::start();
    let listed = shell.run(&["actions", "list", "--intent", "refund an order"], None);
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.lines()
            .take(3)
            .any(|l| l.starts_with("refund-purchase")),
        "{text}"
    );

    let all = stdout_json(&shell.run(&["actions", "list", "--json"], None));
    assert_eq!(
        all["actions"].as_array().unwrap().len(),
        ds24_proxy::actions::CATALOG.len()
    );

    let shown = stdout_json(&shell.run(&["actions", "show", "listProducts"], None));
    assert_eq!(shown["key"], "list-products");
    assert!(shown["input_schema"].is_object());
}

#[test]
fn request_sends_forms_queries_json_raw_bodies_and_path_params() {
    let shell = Shell::start();
    let form = stdout_json(&shell.run(&["request", "/getProduct", "-d", "product_id=10002"], None));
    assert_eq!(form["data"]["product"]["id"], "10002");

    let query = stdout_json(&shell.run(
        &[
            "request",
            "/api/call/getProduct",
            "-X",
            "get",
            "--query",
            "product_id=10003",
        ],
        None,
    ));
    assert_eq!(query["data"]["product"]["id"], "10003");

    let json = stdout_json(&shell.run(
        &["request", "/getBuyer", "--json", r#"{"buyer_id": "50001"}"#],
        None,
    ));
    assert_eq!(json["data"]["buyer"]["id"], "50001");

    let raw = stdout_json(&shell.run(
        &[
            "request",
            "/getVoucher",
            "--raw-data",
            "code=WELCOME5",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
        ],
        None,
    ));
    assert_eq!(raw["data"]["coupon"]["code"], "WELCOME5");

    let path = stdout_json(&shell.run(
        &["request", "/api/call/{fn}", "--path-param", "fn=ping"],
        None,
    ));
    assert_eq!(path["result"], "success");

    let failed = shell.run(&["request", "/getProduct", "-d", "product_id=99999"], None);
    assert!(
        !failed.status.success(),
        "an error status must give a non-zero exit"
    );
    let body: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(body["code"], 4, "the upstream reply is printed unchanged");
}

#[test]
fn the_request_parser_takes_the_flags_people_know() {
    let cli = Cli::try_parse_from([
        "ds24-proxy",
        "request",
        "/x",
        "-X",
        "PUT",
        "-H",
        "A: 1",
        "-H",
        "B: 2",
        "-d",
        "a=1",
        "-d",
        "b=2",
        "--query",
        "k=v",
        "--connection",
        "shop2",
    ])
    .unwrap();
    let Sub::Request(args) = cli.command else {
        panic!("not a request")
    };
    assert_eq!(args.method.as_deref(), Some("PUT"));
    assert_eq!(args.headers, ["A: 1", "B: 2"]);
    assert_eq!(args.data, ["a=1", "b=2"]);
    assert_eq!(args.call.connection.as_deref(), Some("shop2"));
    assert!(
        Cli::try_parse_from(["ds24-proxy", "request", "/x", "-d", "a=1", "--json", "{}"]).is_err(),
        "-d and --json conflict"
    );
    assert!(
        Cli::try_parse_from(["ds24-proxy", "actions", "run"]).is_err(),
        "run needs a key"
    );
}

#[test]
fn the_cli_works_in_a_sidecar_environment_with_inbound_tokens_set() {
    let shell = Shell::start();
    let env = [
        ("DS24_PROXY_TOKEN", "t0ken-0123456789abcdef0123456789"),
        ("DS24_PROXY_LISTEN", "0.0.0.0:7424"),
    ];
    let ran = shell.run_with(&["actions", "run", "ping"], None, &env);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let listed = shell.run_with(
        &["actions", "list"],
        None,
        &[("DS24_PROXY_LISTEN", "0.0.0.0:7424")],
    );
    assert!(
        listed.status.success(),
        "listing needs no configuration: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let failed = shell.run_with(
        &["request", "/ping", "-H", "X-DS24-Connection: nope"],
        None,
        &env,
    );
    assert!(!failed.status.success());
    assert!(failed.stdout.is_empty(), "a proxy error went to stdout");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("unknown_connection"));
}

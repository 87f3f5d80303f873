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
            .env(
                "DS24_PROXY_DATA_DIR",
                std::env::temp_dir().join(format!("ds24-cli-{}", std::process::id())),
            )
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

#[test]
fn connect_stores_a_key_from_stdin_and_connections_manage_it_without_showing_it() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.display().to_string();
    let env = [("DS24_PROXY_DATA_DIR", data_dir.as_str())];

    let connected = shell.run_with(
        &["connect", "--name", "shop2", "--api-key-stdin"],
        Some(&format!("{}\n", sandbox::WRITABLE_KEY)),
        &env,
    );
    assert!(
        connected.status.success(),
        "{}",
        String::from_utf8_lossy(&connected.stderr)
    );
    let said = String::from_utf8_lossy(&connected.stderr);
    assert!(
        said.contains("key id 1000") && said.contains("writable"),
        "{said}"
    );

    let rejected = shell.run_with(
        &["connect", "--name", "shop3", "--api-key-stdin"],
        Some("1999-NotAValidSandboxKey"),
        &env,
    );
    assert!(!rejected.status.success(), "an unverified key was stored");

    let listed = shell.run_with(&["connections", "list", "--json"], None, &env);
    let listed_json = stdout_json(&listed);
    let shop2 = listed_json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shop2")
        .expect("shop2 is listed")
        .clone();
    assert_eq!(shop2["source"], "stored");
    assert_eq!(shop2["key_id"], "1000");
    assert!(
        !listed_json["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "shop3")
    );

    let tested = shell.run_with(&["connections", "test", "shop2"], None, &env);
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let shown = shell.run_with(&["connections", "show", "shop2"], None, &env);
    let plain = shell.run_with(&["connections", "list"], None, &env);
    for output in [&connected, &listed, &tested, &shown, &plain] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains("SandboxWritableKey"),
            "a secret in CLI output: {all}"
        );
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(18).any(|w| w == b"SandboxWritableKey"),
            "the key is in the store in plain text"
        );
    }

    let env_source = shell.run_with(&["connections", "remove", "main"], None, &env);
    assert!(
        !env_source.status.success(),
        "main comes from the environment and cannot be removed here"
    );
    let removed = shell.run_with(&["connections", "remove", "shop2"], None, &env);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let after = stdout_json(&shell.run_with(&["connections", "list", "--json"], None, &env));
    assert!(
        !after["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "shop2")
    );
}

#[test]
fn connections_test_fails_for_a_key_digistore24_refuses() {
    let shell = Shell::start();
    let refused = shell.run_with(
        &["connections", "test", "main"],
        None,
        &[("DS24_API_KEY", "1999-NotAValidSandboxKey")],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("credential_rejected"));
}

#[tokio::test]
async fn connect_runs_the_developer_key_flow_against_the_sandbox_end_to_end() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let (mut child, url, reader) = start_connect(
        &shell,
        &data_dir,
        &["--name", "live", "--permissions", "readonly"],
    );

    // What a person sees: a page with both buttons.
    let page = crate::helpers::client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approve") && page.contains("Abort"), "{page}");
    // The person clicks Approve.
    let clicked = crate::helpers::client()
        .post(&url)
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert!(clicked.status().is_success());

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let said = reader.join().unwrap();
    assert!(status.success(), "connect failed:\n{said}");
    assert!(
        said.contains("Connected `live`") && said.contains("readonly"),
        "{said}"
    );
    assert!(
        said.contains("waiting for approval"),
        "no progress was shown: {said}"
    );

    let env = [("DS24_PROXY_DATA_DIR", data_dir.as_str())];
    let listed = stdout_json(&shell.run_with(&["connections", "show", "live"], None, &env));
    assert_eq!(listed["source"], "stored");
    let key_id: u64 = listed["key_id"].as_str().unwrap().parse().unwrap();
    assert!(key_id >= 2000, "a minted key, not a built-in one: {key_id}");
    let tested = shell.run_with(&["connections", "test", "live"], None, &env);
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(String::from_utf8_lossy(&tested.stdout).contains("readonly"));

    let removed = shell.run_with(
        &["connections", "remove", "live", "--unregister"],
        None,
        &env,
    );
    let said = String::from_utf8_lossy(&removed.stderr);
    assert!(removed.status.success(), "{said}");
    assert!(said.contains("deleted at Digistore24"), "{said}");
    let after = stdout_json(&shell.run_with(&["connections", "list", "--json"], None, &env));
    assert!(
        !after["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "live")
    );
}

/// Starts `connect` against the sandbox; returns the child, the approval
/// URL it printed, and a handle that yields the rest of its stderr.
fn start_connect(
    shell: &Shell,
    data_dir: &str,
    args: &[&str],
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let base = format!("http://{}/api/call", shell.sandbox.addr);
    let mut child = Command::new(BIN)
        .arg("connect")
        .args(args)
        .args(["--no-browser", "--poll-secs", "1", "--timeout-secs", "60"])
        .env("DS24_BASE_URL", &base)
        .env("DS24_DEVELOPER_KEY", sandbox::DEVELOPER_KEY)
        .env("DS24_PROXY_DATA_DIR", data_dir)
        .env_remove("DS24_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http")) {
                let _ = tx.send(url.to_owned());
            }
            all.push(line);
        }
        all.join("\n")
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("connect printed no approval URL");
    (child, url, reader)
}

#[tokio::test]
async fn connect_stops_with_a_clear_message_when_the_request_is_aborted() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let (mut child, url, reader) = start_connect(&shell, &data_dir, &["--name", "nope"]);
    let clicked = crate::helpers::client()
        .post(&url)
        .form(&[("decision", "abort")])
        .send()
        .await
        .unwrap();
    assert!(clicked.status().is_success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let said = reader.join().unwrap();
    assert!(!status.success());
    assert!(said.contains("aborted"), "{said}");
    let listed = stdout_json(&shell.run_with(
        &["connections", "list", "--json"],
        None,
        &[("DS24_PROXY_DATA_DIR", data_dir.as_str())],
    ));
    assert!(
        !listed["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "nope")
    );
}

#[test]
fn a_serve_with_ds24_api_key_leaves_a_stored_main_as_it_was() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let base = format!("http://{}/api/call", shell.sandbox.addr);
    // `connect` with no DS24_API_KEY around: main is stored.
    let no_key = [
        ("DS24_PROXY_DATA_DIR", data_dir.as_str()),
        ("DS24_API_KEY", ""),
    ];
    let connected = shell.run_with(
        &["connect", "--api-key-stdin"],
        Some(sandbox::READONLY_KEY),
        &no_key,
    );
    assert!(
        connected.status.success(),
        "{}",
        String::from_utf8_lossy(&connected.stderr)
    );

    // One run with DS24_API_KEY set (the README's IPN loop does this), used
    // for a call, stopped the ordinary way.
    let mut with_env = Proxy::start(
        &[],
        &[
            ("DS24_API_KEY", sandbox::WRITABLE_KEY),
            ("DS24_BASE_URL", &base),
            ("DS24_PROXY_DATA_DIR", &data_dir),
        ],
    );
    let info = get_user_info(&with_env);
    assert_eq!(info["data"]["permissions"], "writable", "{info}");
    with_env.signal("TERM");
    assert!(with_env.wait(std::time::Duration::from_secs(10)).success());

    // Without it, main is the stored (read-only) key again.
    let without = Proxy::start(
        &[],
        &[("DS24_BASE_URL", &base), ("DS24_PROXY_DATA_DIR", &data_dir)],
    );
    let info = get_user_info(&without);
    assert_eq!(info["data"]["permissions"], "readonly", "{info}");
    drop(without);
    let shown = stdout_json(&shell.run_with(&["connections", "show", "main"], None, &no_key));
    assert_eq!(shown["source"], "stored", "{shown}");
    assert_eq!(shown["state"], "ok", "{shown}");
    let removed = shell.run_with(&["connections", "remove", "main"], None, &no_key);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
}

/// `POST /getUserInfo` through a running proxy, as JSON.
fn get_user_info(proxy: &Proxy) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = crate::helpers::client()
            .post(proxy.url("/getUserInfo"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    })
}

/// Runs `args` with stdout a pipe whose reader is gone before the command
/// writes (what `| head` does to a long output), with backtraces on.
fn run_into_closed_pipe(shell: &Shell, args: &[&str]) -> Output {
    let base = format!("http://{}/api/call", shell.sandbox.addr);
    let mut child = Command::new(BIN)
        .args(args)
        .env("DS24_API_KEY", sandbox::WRITABLE_KEY)
        .env("DS24_BASE_URL", base)
        .env(
            "DS24_PROXY_DATA_DIR",
            std::env::temp_dir().join(format!("ds24-cli-{}", std::process::id())),
        )
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_a_command_quietly_with_status_141() {
    let shell = Shell::start();
    for args in [
        &["actions", "list"][..],
        &["actions", "list", "--json"],
        &["actions", "show", "list-purchases"],
        &["request", "/listProducts"],
    ] {
        let output = run_into_closed_pipe(&shell, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(141),
            "`{}`: {stderr}",
            args.join(" ")
        );
        assert!(stderr.is_empty(), "`{}` said: {stderr}", args.join(" "));
    }
}

#[test]
fn an_ordinary_error_is_one_line_on_stderr_with_no_log_noise() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    // A store exists (a write created it), and main has no key.
    let no_key = [
        ("DS24_PROXY_DATA_DIR", data_dir.as_str()),
        ("DS24_API_KEY", ""),
    ];
    let made = shell.run_with(
        &[
            "request",
            "/updateProduct",
            "-d",
            "product_id=10001",
            "-d",
            "data[name_intern]=Course A",
        ],
        None,
        &[("DS24_PROXY_DATA_DIR", data_dir.as_str())],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for args in [
        &["request", "/listProducts"][..],
        &["actions", "run", "list-products"],
        &["request", "/refundPurchase", "-d", "purchase_id=SBX00001"],
    ] {
        let failed = shell.run_with(args, None, &no_key);
        assert!(!failed.status.success());
        let stderr = String::from_utf8_lossy(&failed.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(['{', '}', ' ']))
            .collect();
        assert_eq!(lines.len(), 1, "`{}` said: {stderr}", args.join(" "));
        assert!(lines[0].contains("credential_missing"), "{stderr}");
    }
    // Digistore24 cannot be reached: the error, once.
    let unreachable = shell.run_with(
        &["request", "/listProducts"],
        None,
        &[("DS24_BASE_URL", "http://127.0.0.1:1/api/call")],
    );
    assert!(!unreachable.status.success());
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("upstream_unavailable"), "{stderr}");
}

#[test]
fn a_key_connected_on_the_sandbox_is_used_there_and_not_sent_to_digistore24() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let sandbox_url = format!("http://{}/api/call", shell.sandbox.addr);
    let connected = shell.run_with(
        &["connect", "--api-key-stdin"],
        Some(sandbox::WRITABLE_KEY),
        &[
            ("DS24_PROXY_DATA_DIR", data_dir.as_str()),
            ("DS24_API_KEY", ""),
        ],
    );
    assert!(
        connected.status.success(),
        "{}",
        String::from_utf8_lossy(&connected.stderr)
    );

    // Later, with no DS24_BASE_URL (the default is www.digistore24.com).
    let later = [
        ("DS24_PROXY_DATA_DIR", data_dir.as_str()),
        ("DS24_API_KEY", ""),
        ("DS24_BASE_URL", ""),
    ];
    let shown = stdout_json(&shell.run_with(&["connections", "show", "main"], None, &later));
    assert_eq!(shown["base_url"], sandbox_url.as_str(), "{shown}");
    let tested = shell.run_with(&["connections", "test", "main"], None, &later);
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let proxy = Proxy::start(&[], &[("DS24_PROXY_DATA_DIR", data_dir.as_str())]);
    let info = get_user_info(&proxy);
    assert_eq!(info["data"]["permissions"], "writable", "{info}");
}

#[test]
fn serve_sandbox_keeps_its_own_store_apart_from_the_real_one() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.display().to_string();
    let real = [("DS24_PROXY_DATA_DIR", data_dir.as_str())];
    // A real stored connection, and an audit row of a real write.
    let connected = shell.run_with(
        &["connect", "--name", "shop2", "--api-key-stdin"],
        Some(sandbox::WRITABLE_KEY),
        &real,
    );
    assert!(connected.status.success());

    let proxy = Proxy::start(&["--sandbox"], &real);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listed: Value = runtime.block_on(async {
        let refund = crate::helpers::client()
            .post(proxy.url("/refundPurchase"))
            .form(&[("purchase_id", "SBX00001")])
            .send()
            .await
            .unwrap();
        assert_eq!(refund.status(), 200);
        crate::helpers::client()
            .get(proxy.url("/connections"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    drop(proxy);
    let names: Vec<&str> = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main"], "a real connection joined the sandbox run");

    let real_audit = stdout_json(&shell.run_with(&["audit", "list", "--json"], None, &real));
    assert_eq!(
        real_audit["entries"].as_array().unwrap().len(),
        0,
        "the sandbox's refund is in the real audit log: {real_audit}"
    );
    let sandbox_dir = data.join("sandbox").display().to_string();
    let sandbox_audit = stdout_json(&shell.run_with(
        &["audit", "list", "--json"],
        None,
        &[("DS24_PROXY_DATA_DIR", sandbox_dir.as_str())],
    ));
    let entries = sandbox_audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{sandbox_audit}");
    assert_eq!(entries[0]["function"], "refundPurchase");
}

#[test]
fn the_tables_have_header_rows_and_errors_are_said_in_words() {
    let shell = Shell::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let env = [("DS24_PROXY_DATA_DIR", data_dir.as_str())];
    let refund = shell.run_with(
        &["request", "/refundPurchase", "-d", "purchase_id=SBX00001"],
        None,
        &env,
    );
    assert!(refund.status.success());
    for (args, header, rows) in [
        (&["connections", "list"][..], "NAME ", 1),
        (&["audit", "list"], "AT ", 1),
        (&["events", "list"], "ID ", 0),
    ] {
        let output = shell.run_with(args, None, &env);
        assert!(output.status.success(), "{args:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(
            lines
                .first()
                .is_some_and(|l| l.trim_start().starts_with(header)),
            "`{}`:\n{stdout}",
            args.join(" ")
        );
        assert_eq!(lines.len(), rows + 1, "`{}`:\n{stdout}", args.join(" "));
    }

    let unknown = shell.run(&["actions", "show", "zzzzqqq"], None);
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(!said.trim_end().ends_with("closest:"), "{said}");
    assert!(said.contains("actions list"), "{said}");

    // The README's example URL: the sandbox cannot reach it and says so.
    let setup = shell.run_with(
        &[
            "ipn",
            "setup",
            "--url",
            "https://hooks.example.com/ipn/main",
        ],
        None,
        &env,
    );
    assert!(!setup.status.success());
    let said = String::from_utf8_lossy(&setup.stderr);
    assert!(
        said.contains("ipnSetup failed") && said.contains("could not be reached"),
        "{said}"
    );
    assert!(!said.contains('{'), "a raw envelope: {said}");
}

/// Splits a shell line into words: spaces separate, '…' and "…" quote,
/// a `#` after a space starts a comment. Enough for the README's examples.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, ' ') => words.extend(word.take()),
            (None, '#') if word.is_none() => break,
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn the_readme_shell_examples_of_actions_and_request_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("From the shell, through exactly the same code")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's `From the shell` block");
    let shell = Shell::start();
    let mut ran = 0;
    for line in block.lines() {
        let words = shell_words(line);
        // The block's own set-up (a sandbox and its key) is what Shell does.
        if words.first().map(String::as_str) != Some("ds24-proxy") || words[1] == "sandbox" {
            continue;
        }
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let output = shell.run(&args, None);
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "`{line}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if line.contains("search[email]") {
            let found = stdout_json(&output);
            assert!(
                !found["data"]["purchase_list"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "`{line}` matches nothing in the sandbox: {found}"
            );
        }
        ran += 1;
    }
    assert_eq!(ran, 5, "{block}");
}

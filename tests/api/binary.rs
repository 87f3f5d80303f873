//! Tests that run the real binary: streaming memory, logs at trace level,
//! SIGTERM, config errors, and the README quick start.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fake_ds24::{FNV_START, FakeDs24, fnv1a};
use crate::helpers::{TEST_KEY, client};

pub const BIN: &str = env!("CARGO_BIN_EXE_ds24-proxy");

/// The binary, running; killed when dropped.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Runs `ds24-proxy serve --listen 127.0.0.1:0 ARGS` with `env` and
    /// waits until it says where it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut full = vec!["serve".to_owned()];
        full.extend(args.iter().map(|a| (*a).to_owned()));
        Self::start_command(&full, env)
    }

    /// Runs the binary with `args` (a `serve` command) on a free port.
    pub fn start_command(args: &[String], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command.args(args);
        if !args.iter().any(|a| a == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        for var in [
            "DS24_API_KEY",
            "DS24_API_KEY_FILE",
            "DS24_BASE_URL",
            "DS24_PROXY_LISTEN",
            "DS24_PROXY_TOKEN",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        // Never the real home directory: writes open the store.
        command.env(
            "DS24_PROXY_DATA_DIR",
            std::env::temp_dir().join(format!("ds24-proxy-test-{}", std::process::id())),
        );
        command
            .envs(env.iter().copied())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                // Text logs say `listen=ADDR`, JSON logs `"listen":"ADDR"`.
                let found = line
                    .split("listen=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .or_else(|| {
                        line.split("\"listen\":\"")
                            .nth(1)
                            .and_then(|rest| rest.split('"').next())
                    });
                if let Some(addr) = found {
                    let _ = tx.send(addr.parse::<SocketAddr>().ok());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the proxy did not start: {:?}", stderr.lock().unwrap()));
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Peak resident memory so far, in bytes (Linux `VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }

    /// Resident memory now, in bytes (Linux `VmRSS`).
    pub fn rss(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the proxy did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_100_mib_body_streams_through_without_being_held_in_memory() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let proxy = Proxy::start(&[], &[("DS24_API_KEY", TEST_KEY), ("DS24_BASE_URL", &base)]);
    let before = proxy.peak_rss();

    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let expected_hash = (0..TOTAL / CHUNK as u64).fold(FNV_START, |h, _| fnv1a(h, &chunk));
    let stream = futures_util::stream::iter(
        (0..TOTAL / CHUNK as u64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let response = client()
        .post(proxy.url("/api/call/uploadLarge"))
        .header("content-length", TOTAL.to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let seen = fake.single();
    assert_eq!(seen.body_len, TOTAL);
    assert_eq!(seen.body_hash, expected_hash, "the body changed on the way");
    let peak = proxy.peak_rss();
    eprintln!(
        "proxy peak RSS: {} MiB before, {} MiB after streaming 100 MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < 48 * 1024 * 1024,
        "peak RSS {} MiB (before: {} MiB) for a 100 MiB body",
        peak >> 20,
        before >> 20
    );
}

#[tokio::test]
async fn no_log_line_at_trace_level_contains_a_key() {
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let proxy = Proxy::start(
        &[],
        &[
            ("DS24_API_KEY", TEST_KEY),
            ("DS24_BASE_URL", &base),
            ("RUST_LOG", "trace"),
        ],
    );
    let c = client();
    c.get(proxy.url("/listProducts"))
        .header("X-DS-API-KEY", "555-ClientSentSecret")
        .send()
        .await
        .unwrap();
    c.post(proxy.url("/api/call/777-LegacyPathSecret/json/getProduct"))
        .body("product_id=1")
        .send()
        .await
        .unwrap();
    c.get(proxy.url("/888-RefusedPathSecret/json/ping"))
        .send()
        .await
        .unwrap();
    c.get(proxy.url("/listBuyers?email=private.person@example.com"))
        .header("x-fake-status", "500")
        .send()
        .await
        .unwrap();
    c.get(proxy.url("/ping"))
        .header("x-fake-error", "2")
        .header("x-fake-status", "401")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = proxy.log();
    assert!(log.lines().count() > 20, "trace logging seems off:\n{log}");
    assert!(
        log.contains("getProduct"),
        "requests were not logged:\n{log}"
    );
    for secret in [
        TEST_KEY,
        "TestKeyDoNotLeak",
        "ClientSentSecret",
        "LegacyPathSecret",
        "RefusedPathSecret",
        "private.person",
    ] {
        assert!(!log.contains(secret), "`{secret}` appears in the log");
    }
}

#[tokio::test]
async fn sigterm_lets_slow_requests_in_flight_finish() {
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let mut proxy = Proxy::start(&[], &[("DS24_API_KEY", TEST_KEY), ("DS24_BASE_URL", &base)]);
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let r = client()
                .get(proxy.url("/listTransactions"))
                .header("x-fake-delay-ms", "1500");
            tokio::spawn(async move { r.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let started = Instant::now();
    while fake.requests().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "requests did not reach the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.signal("TERM");
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap(), 200);
    }
    assert!(proxy.wait(Duration::from_secs(10)).success());
}

#[test]
fn a_bad_config_stops_the_start_with_the_key_and_the_fix() {
    let output = Command::new(BIN)
        .args([
            "serve",
            "--config",
            "tests/fixtures/config/invalid/bad_listen.toml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DS24_PROXY_LISTEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`server.listen`") && stderr.contains("Fix:"),
        "{stderr}"
    );
}

/// Runs the binary with `args` in `dir` with an empty environment (as
/// `env -i`, a bare systemd unit or some CI runners give it), killing it
/// if it is still running after 10 s (a proxy that started).
fn run_without_environment(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    match status {
        Some(status) => (status.success(), stderr),
        None => panic!(
            "`{}` kept running without a data directory: {stderr}",
            args.join(" ")
        ),
    }
}

#[test]
fn without_home_or_a_data_dir_nothing_starts_and_nothing_is_written_in_the_working_directory() {
    use std::os::unix::fs::PermissionsExt;
    // What a clone of the repository once held: a store folder with a
    // published master key, mode 0644 as git checks files out.
    let dir = tempfile::tempdir().unwrap();
    let published = dir.path().join("ds24-proxy-data");
    std::fs::create_dir(&published).unwrap();
    std::fs::write(published.join("master.key"), "ab".repeat(32)).unwrap();
    std::fs::set_permissions(
        published.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["serve", "--sandbox", "--listen", "127.0.0.1:0"],
        &["connect", "--api-key-stdin"],
        &["connections", "list"],
        &["events", "list"],
        &["audit", "list"],
    ] {
        let (ok, stderr) = run_without_environment(dir.path(), args);
        let command = args.join(" ");
        assert!(!ok, "`{command}` succeeded without a data directory");
        assert!(
            stderr.contains("set DS24_PROXY_DATA_DIR"),
            "`{command}` does not say what to set: {stderr}"
        );
        assert!(!stderr.contains("chmod"), "`{command}`: {stderr}");
        assert!(!stderr.contains("panicked"), "`{command}`: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&published)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["master.key"], "something was written beside the key");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn no_store_or_key_is_in_the_repository_and_the_data_folder_is_ignored() {
    let listed = Command::new("git")
        .args(["ls-files"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if !listed.status.success() {
        // A source tarball: nothing to check.
        return;
    }
    let files = String::from_utf8_lossy(&listed.stdout);
    for file in files.lines() {
        let name = file.rsplit('/').next().unwrap_or(file);
        assert!(
            name != ds24_proxy::store::KEY_FILE
                && name != ds24_proxy::store::DB_FILE
                && !file.starts_with("ds24-proxy-data/"),
            "{file} is in the repository"
        );
    }
    let ignored = Command::new("git")
        .args(["check-ignore", "-q", "ds24-proxy-data/master.key"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(ignored.success(), "ds24-proxy-data/ is not in .gitignore");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    // The line per finished request is at debug (docs/LOGGING.md).
    let proxy = Proxy::start(
        &["--log-format", "json"],
        &[
            ("DS24_API_KEY", TEST_KEY),
            ("DS24_BASE_URL", &base),
            ("RUST_LOG", "info,tower_http=debug"),
        ],
    );
    client()
        .get(proxy.url("/listProducts"))
        .header("x-request-id", "json-log-1")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = proxy.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["span"]["request.id"] == "json-log-1")
        .unwrap_or_else(|| panic!("no line for the request:\n{log}"));
    assert_eq!(finished["span"]["ds24.function"], "listProducts");
    assert_eq!(finished["span"]["ds24.connection"], "main");
}

#[tokio::test]
async fn an_ndjson_export_of_100_000_items_streams_in_flat_memory() {
    use crate::fake_ds24::{GENERATED_PAGE_SIZE, GENERATED_PAGES};
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let proxy = Proxy::start(&[], &[("DS24_API_KEY", TEST_KEY), ("DS24_BASE_URL", &base)]);
    let mut response = client()
        .post(proxy.url("/actions/list-buyers"))
        .header("accept", "application/x-ndjson")
        .json(
            &serde_json::json!({ "page_size": GENERATED_PAGE_SIZE, "max_pages": GENERATED_PAGES }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (mut lines, mut bytes, mut last_id, mut meta_seen, mut early_rss) =
        (0u64, 0u64, 0u64, false, 0u64);
    let mut partial = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let item: serde_json::Value = serde_json::from_slice(&line).unwrap();
            if let Some(meta) = item.get("meta") {
                assert_eq!(meta["paging"]["complete"], true, "{meta}");
                meta_seen = true;
                continue;
            }
            assert!(!meta_seen, "an item after the meta line");
            let id: u64 = item["id"].as_str().unwrap().parse().unwrap();
            assert_eq!(id, last_id + 1, "items out of order or missing");
            last_id = id;
            lines += 1;
            if lines == GENERATED_PAGE_SIZE * 10 {
                early_rss = proxy.rss();
            }
        }
    }
    assert_eq!(lines, GENERATED_PAGE_SIZE * GENERATED_PAGES);
    assert!(meta_seen, "the export did not end with its meta line");
    assert_eq!(fake.requests().len() as u64, GENERATED_PAGES);
    let peak = proxy.peak_rss();
    eprintln!(
        "NDJSON export: {} MiB streamed, proxy RSS {} MiB after 10 pages, peak {} MiB",
        bytes >> 20,
        early_rss >> 20,
        peak >> 20
    );
    assert!(
        bytes > 36 * 1024 * 1024,
        "the export should be large ({bytes} bytes)"
    );
    // Flat memory: the last 90 pages cost next to nothing over the first 10.
    assert!(
        peak < early_rss + 8 * 1024 * 1024,
        "RSS grew from {} MiB to {} MiB while streaming {} MiB",
        early_rss >> 20,
        peak >> 20,
        bytes >> 20
    );
    assert!(peak < bytes, "the proxy held as much as it streamed");
}

#[tokio::test]
async fn a_100_mib_reply_streams_back_without_being_held_in_memory() {
    use crate::fake_ds24::DOWNLOAD_BYTES;
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let proxy = Proxy::start(&[], &[("DS24_API_KEY", TEST_KEY), ("DS24_BASE_URL", &base)]);
    let mut response = client()
        .get(proxy.url("/downloadLarge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        DOWNLOAD_BYTES.to_string().as_str()
    );
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        assert!(chunk.iter().all(|&b| b == b'x'));
        received += chunk.len() as u64;
    }
    assert_eq!(received, DOWNLOAD_BYTES);
    let peak = proxy.peak_rss();
    eprintln!(
        "proxy peak RSS {} MiB after streaming a 100 MiB reply",
        peak >> 20
    );
    assert!(
        peak < 48 * 1024 * 1024,
        "peak RSS {} MiB for a 100 MiB reply",
        peak >> 20
    );
}

#[tokio::test]
async fn server_workers_sets_the_threads_that_serve_connections() {
    let fake = FakeDs24::start().await;
    let base = fake.base_url();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ds24.toml");
    std::fs::write(&config, "[server]\nworkers = 3\n").unwrap();
    let proxy = Proxy::start(
        &["--config", config.to_str().unwrap()],
        &[("DS24_API_KEY", TEST_KEY), ("DS24_BASE_URL", &base)],
    );
    // Several connections (a fresh client each), so every worker gets one.
    for _ in 0..6 {
        let response = reqwest::Client::new()
            .get(proxy.url("/listProducts"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut workers: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", proxy.child.id()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("ds24-worker-"))
        .collect();
    workers.sort();
    assert_eq!(workers, ["ds24-worker-0", "ds24-worker-1", "ds24-worker-2"]);
}

//! `spawn_app()`: the real server on `127.0.0.1:0`, configured against the
//! recording fake, plus a client with redirects off. Logs are quiet unless
//! `TEST_LOG` is set.

use std::collections::HashMap;
use std::net::SocketAddr;

use ds24_proxy::config::{self, Overrides};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fake_ds24::FakeDs24;

/// The key the tests configure for `main`.
pub const TEST_KEY: &str = "4711-TestKeyDoNotLeak0123456789abcdefABCDEF";

/// A running proxy and its fake upstream.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub fake: FakeDs24,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The store's directory (the audit log and idempotency records).
    pub data_dir: std::path::PathBuf,
    _data: Option<tempfile::TempDir>,
}

impl TestApp {
    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts graceful shutdown and returns the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap()
    }
}

/// The client tests use: no redirects, no system proxy.
pub fn client() -> reqwest::Client {
    // reqwest is built without a default TLS crypto provider (see
    // upstream/mod.rs); plain-HTTP test clients still need one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A proxy with default settings in front of a fresh fake.
pub async fn spawn_app() -> TestApp {
    spawn_app_with("", &[]).await
}

/// A proxy with `toml` as its config file and `env` on top of the test
/// defaults (`DS24_API_KEY`, `DS24_BASE_URL` pointing at the fake).
pub async fn spawn_app_with(toml: &str, env: &[(&str, &str)]) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        ds24_proxy::telemetry::init(ds24_proxy::config::LogFormat::Text);
    }
    let fake = FakeDs24::start().await;
    // Never the real home directory: writes open the store.
    let data = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DS24_API_KEY".to_owned(), TEST_KEY.to_owned()),
        ("DS24_BASE_URL".to_owned(), fake.base_url()),
        (
            "DS24_PROXY_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
    ]);
    for (k, v) in env {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let raw = config::parse_toml(toml, "test.toml").unwrap();
    let config = config::from_parts(raw, &vars, &Overrides::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(ds24_proxy::run(listener, config, async move {
        let _ = rx.await;
    }));
    let data_dir = vars
        .get("DS24_PROXY_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    TestApp {
        addr,
        fake,
        client: client(),
        shutdown: Some(tx),
        task: Some(task),
        data_dir,
        _data: Some(data),
    }
}

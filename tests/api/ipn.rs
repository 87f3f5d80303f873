//! IPN end to end: the receiver (signature, fail closed, durable before OK,
//! redeliveries), the relay to the app (order per purchase, retries, dead
//! letter, replay, restarts after SIGKILL) and the sandbox → proxy → app
//! loop. Everything on loopback.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::HeaderMap;
use serde_json::Value;

use crate::binary::{BIN, Proxy};
use crate::helpers::{TestApp, client, spawn_app_with};

const PASS: &str = "s3cret-test-passphrase";

/// The app behind the proxy: answers with `status` (changeable) and keeps
/// every request, and separately the ones it accepted, in arrival order.
#[derive(Clone)]
struct App {
    url: String,
    status: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    /// `transaction_id` of every request, accepted or not, in order.
    tried: Arc<Mutex<Vec<String>>>,
    /// Transactions to refuse (503) this many more times.
    fail: Arc<Mutex<std::collections::HashMap<String, u32>>>,
}

impl App {
    async fn start(status: u16) -> Self {
        let app = Self {
            url: String::new(),
            status: Arc::new(AtomicU16::new(status)),
            accepted: Arc::default(),
            tried: Arc::default(),
            fail: Arc::default(),
        };
        let router = Router::new()
            .route("/hooks/ds24", post(receive))
            .with_state(app.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/ds24", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, ..app }
    }

    fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn fail(&self, transaction: &str, times: u32) {
        self.fail
            .lock()
            .unwrap()
            .insert(transaction.to_owned(), times);
    }

    /// Like `wait_for`, then checks that nothing more comes in a while.
    async fn wait_for_exactly(&self, n: usize, limit: Duration) -> Vec<(HeaderMap, Value)> {
        self.wait_for(n, limit).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = self.accepted();
        assert_eq!(got.len(), n, "an event came more than once");
        got
    }

    fn accepted(&self) -> Vec<(HeaderMap, Value)> {
        self.accepted.lock().unwrap().clone()
    }

    /// Waits until the app accepted `n` deliveries.
    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<(HeaderMap, Value)> {
        let started = Instant::now();
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "the app got {} of {n} events within {limit:?}: {:?}",
                got.len(),
                got.iter().map(|(_, b)| b["id"].clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(State(app): State<App>, headers: HeaderMap, body: String) -> http::StatusCode {
    let json: Value = serde_json::from_str(&body).expect("the relay posts JSON");
    let tx = json["transaction_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.tried.lock().unwrap().push(tx.clone());
    let mut status = http::StatusCode::from_u16(app.status.load(Ordering::SeqCst)).unwrap();
    if let Some(left) = app.fail.lock().unwrap().get_mut(&tx)
        && *left > 0
    {
        *left -= 1;
        status = http::StatusCode::SERVICE_UNAVAILABLE;
    }
    if status.is_success() {
        app.accepted.lock().unwrap().push((headers, json));
    }
    status
}

fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A form as Digistore24 posts it, signed with `passphrase`.
fn signed_form(fields: &[(&str, &str)], passphrase: &str) -> String {
    let fields = owned(fields);
    let sign = ds24_proxy::ipn::signature::sign(&fields, passphrase, false);
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .append_pair("sha_sign", &sign)
        .finish()
}

fn payment(order: &str, tx: &str, event: &str) -> Vec<(String, String)> {
    owned(&[
        ("event", event),
        ("order_id", order),
        ("transaction_id", tx),
        ("product_id", "10001"),
        ("buyer_email", "anna.schmidt@example.com"),
        ("buyer_first_name", "Anna"),
        ("amount", "29.00"),
        ("currency", "EUR"),
    ])
}

async fn post_ipn(url: &str, form: String) -> (u16, String) {
    let response = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_fields(
    app: &TestApp,
    fields: &[(String, String)],
    passphrase: &str,
) -> (u16, String) {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_ipn(&app.url("/ipn/main"), signed_form(&borrowed, passphrase)).await
}

/// `GET /events{query}` (without a token).
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    events_as(app, query, None).await
}

/// `GET /events{query}`, with `token` if given.
async fn events_as(app: &TestApp, query: &str, token: Option<&str>) -> Vec<Value> {
    let mut request = client().get(app.url(&format!("/events{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

async fn metrics(app: &TestApp) -> String {
    client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn wait_for_state(app: &TestApp, id: i64, state: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let event: Value = client()
            .get(app.url(&format!("/events/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if event["state"] == state {
            return event;
        }
        assert!(
            started.elapsed() < limit,
            "event {id} is not {state}: {event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const FAST_RELAY: &str = "[ipn]\nretry_initial_ms = 50\nretry_max_secs = 1\n";

#[tokio::test]
async fn every_shared_vector_is_accepted_and_a_changed_one_refused_with_nothing_stored() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/digistore24/ipn-vectors.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIPPED: {} is absent; the IPN vectors were not sent through the receiver",
            path.display()
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "ipn-vectors.json must be present in CI"
        );
        return;
    };
    let file: Value = serde_json::from_str(&text).unwrap();
    let passphrase = file["passphrase"].as_str().unwrap();
    let app = spawn_app_with("", &[("DS24_IPN_PASSPHRASE", passphrase)]).await;
    let mut accepted = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for vector in file["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let expected = vector["expected"].as_str().unwrap();
        let fields: Vec<(String, String)> = vector["params"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "sha_sign")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let form = |fields: &[(String, String)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .append_pair("sha_sign", expected)
                .finish()
        };
        // One character changed in the first non-empty value: refused.
        let mut changed = fields.clone();
        let i = changed.iter().position(|(_, v)| !v.is_empty()).unwrap();
        changed[i].1.push('x');
        let (status, body) = post_ipn(&app.url("/ipn/main"), form(&changed)).await;
        assert_eq!(status, 403, "vector {name} changed: {body}");
        assert!(body.contains("ipn_refused"), "{body}");
        let (status, body) = post_ipn(&app.url("/ipn/main"), form(&fields)).await;
        assert_eq!((status, body.as_str()), (200, "OK"), "vector {name}");
        accepted += 1;
        // What the signature covers: the non-empty fields.
        let mut key: Vec<_> = fields
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        key.sort();
        distinct.insert((key, expected.to_owned()));
    }
    assert_eq!(accepted, 9);
    // The refused ones left nothing behind; each distinct vector is one
    // event (`sha-sign-excluded` and `empty-values-skipped` sign what
    // `minimal` signs: the same event delivered again).
    assert_eq!(events(&app, "").await.len(), distinct.len());
    assert_eq!(distinct.len(), 7);
}

#[tokio::test]
async fn without_a_passphrase_or_with_a_bad_signature_nothing_is_stored() {
    let app = spawn_app_with("", &[]).await;
    let fields = payment("ORD-1", "T1", "on_payment");
    let (status, body) = post_fields(&app, &fields, PASS).await;
    assert_eq!(status, 403, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "ipn_refused");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ipn setup"),
        "{error}"
    );
    assert!(events(&app, "").await.is_empty());

    let app = spawn_app_with("", &[("DS24_IPN_PASSPHRASE", PASS)]).await;
    let (status, _) = post_fields(&app, &fields, "another-passphrase").await;
    assert_eq!(status, 403);
    let unsigned = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let (status, body) = post_ipn(&app.url("/ipn/main"), unsigned).await;
    assert_eq!(status, 403);
    assert!(body.contains("no sha_sign"), "{body}");
    assert!(events(&app, "").await.is_empty());
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains(
            r#"ds24_proxy_ipn_rejected_total{connection="main",outcome="wrong_signature"} 1"#
        ),
        "{metrics}"
    );
    // An unknown connection has no IPN route.
    let (status, _) = post_ipn(&app.url("/ipn/other"), "a=1".to_owned()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_receiver_needs_no_token_but_everything_around_it_does() {
    let app = spawn_app_with(
        "",
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_PROXY_TOKEN", "inbound-token-0123456789abcdef"),
        ],
    )
    .await;
    let check = client().get(app.url("/ipn/main")).send().await.unwrap();
    assert_eq!(check.status(), 200, "ipnSetup's GET check must pass");
    assert_eq!(check.text().await.unwrap(), "OK");
    let (status, body) = post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    for path in ["/events", "/ipn/main/listProducts", "/ipn/main/", "/ipn"] {
        let status = client().get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 401, "{path} answered without a token");
    }
    let listed = client()
        .get(app.url("/events"))
        .bearer_auth("inbound-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_and_stored_once_and_connection_test_is_recorded() {
    let app = spawn_app_with("", &[("DS24_IPN_PASSPHRASE", PASS)]).await;
    let fields = payment("ORD-1", "T1", "on_payment");
    for _ in 0..3 {
        let (status, body) = post_fields(&app, &fields, PASS).await;
        assert_eq!((status, body.as_str()), (200, "OK"));
    }
    let test = owned(&[
        ("event", "connection_test"),
        ("merchant_id", "1000"),
        ("merchant_name", "Sandbox"),
    ]);
    let (status, body) = post_fields(&app, &test, PASS).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    // The same event with the signature in lower case and an empty field
    // added still verifies: it must count as a redelivery, not a new event
    // with a new id (the app's idempotency key).
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let copy = signed_form(&borrowed, PASS);
    let (head, sign) = copy.rsplit_once("sha_sign=").unwrap();
    let altered = format!("{head}note=&sha_sign={}", sign.to_ascii_lowercase());
    let (status, body) = post_ipn(&app.url("/ipn/main"), altered).await;
    assert_eq!((status, body.as_str()), (200, "OK"));

    let listed = events(&app, "").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let payment = listed.iter().find(|e| e["event"] == "on_payment").unwrap();
    assert_eq!(payment["redeliveries"], 3);
    assert_eq!(payment["order_id"], "ORD-1");
    assert_eq!(payment["transaction_id"], "T1");
    assert_eq!(payment["state"], "stored", "no target is configured");
    assert!(
        payment.get("fields").is_none(),
        "lists leave out personal data"
    );
    let shown: Value = client()
        .get(app.url(&format!("/events/{}", payment["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["fields"]["buyer_email"], "anna.schmidt@example.com");
    assert_eq!(events(&app, "?type=connection_test").await.len(), 1);
    assert_eq!(events(&app, "?purchase=ORD-1").await.len(), 1);
    let (status, _) = {
        let r = client()
            .get(app.url("/events?state=lost"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 400);
}

#[tokio::test]
async fn events_reach_the_app_as_json_and_in_order_per_purchase_after_it_was_down() {
    let target = App::start(503).await;
    let app = spawn_app_with(
        FAST_RELAY,
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_IPN_FORWARD_TO", &target.url),
        ],
    )
    .await;
    let sent = [
        ("ORD-A", "A1", "on_payment"),
        ("ORD-B", "B1", "on_payment"),
        ("ORD-A", "A2", "on_payment"),
        ("ORD-B", "B2", "on_refund"),
        ("ORD-A", "A3", "on_refund"),
    ];
    for (order, tx, event) in sent {
        let (status, _) = post_fields(&app, &payment(order, tx, event), PASS).await;
        assert_eq!(status, 200);
    }
    // Down for a while: every event is tried and kept.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        target.tried.lock().unwrap().len() >= 2,
        "the relay did not try while the app was down"
    );
    assert!(target.accepted().is_empty());
    // After the outage, A1 keeps failing a few more times: A2 and A3 must
    // wait for it rather than overtake it, while purchase B goes on.
    target.fail("A1", 3);
    target.set_status(200);
    let got = target
        .wait_for_exactly(sent.len(), Duration::from_secs(15))
        .await;
    for order in ["ORD-A", "ORD-B"] {
        let seen: Vec<&str> = got
            .iter()
            .filter(|(_, b)| b["order_id"] == order)
            .map(|(_, b)| b["transaction_id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = sent.iter().filter(|s| s.0 == order).map(|s| s.1).collect();
        assert_eq!(seen, expected, "purchase {order} out of order");
    }
    let (headers, body) = &got[0];
    assert_eq!(headers["x-ds24-verified"], "sha512");
    assert_eq!(headers["x-ds24-event-id"], body["id"].to_string().as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert!(body["attempt"].as_u64().unwrap() >= 2);
    assert_eq!(body["fields"]["buyer_first_name"], "Anna");
    assert!(body["fields"]["sha_sign"].is_string());
    for event in events(&app, "").await {
        assert_eq!(event["state"], "delivered", "{event}");
    }
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains(
            r#"ds24_proxy_ipn_deliveries_total{connection="main",outcome="delivered"} 5"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ds24_proxy_ipn_deliveries_total{connection="main",outcome="retried"}"#)
    );
    assert!(
        metrics.contains(
            r#"ds24_proxy_ipn_received_total{connection="main",event="on_payment",result="new"} 3"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn several_targets_each_get_every_event() {
    let first = App::start(200).await;
    let second = App::start(200).await;
    let targets = format!("{}, {}", first.url, second.url);
    let app = spawn_app_with(
        FAST_RELAY,
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_IPN_FORWARD_TO", &targets),
        ],
    )
    .await;
    post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    post_fields(&app, &payment("ORD-1", "T2", "on_refund"), PASS).await;
    first.wait_for(2, Duration::from_secs(10)).await;
    second.wait_for(2, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_dead_lettered_and_a_replay_delivers_it() {
    let target = App::start(500).await;
    let app = spawn_app_with(
        "[ipn]\nretry_initial_ms = 20\nmax_attempts = 3\n",
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_IPN_FORWARD_TO", &target.url),
        ],
    )
    .await;
    post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    // A later event of the same purchase waits behind the first ...
    post_fields(&app, &payment("ORD-1", "T2", "on_refund"), PASS).await;
    let listed = events(&app, "").await;
    let (second, first) = (
        listed[0]["id"].as_i64().unwrap(),
        listed[1]["id"].as_i64().unwrap(),
    );
    let dead = wait_for_state(&app, first, "dead", Duration::from_secs(10)).await;
    assert_eq!(dead["deliveries"][0]["attempts"], 3);
    assert_eq!(
        dead["deliveries"][0]["last_error"],
        "the app answered HTTP 500"
    );
    // ... and is tried once the first is dead-lettered.
    wait_for_state(&app, second, "dead", Duration::from_secs(10)).await;
    assert_eq!(events(&app, "?state=dead").await.len(), 2);
    let tried = target.tried.lock().unwrap().clone();
    let last_t1 = tried.iter().rposition(|t| t == "T1").unwrap();
    let first_t2 = tried.iter().position(|t| t == "T2").unwrap();
    assert!(
        last_t1 < first_t2,
        "T2 was tried before T1 was given up: {tried:?}"
    );
    assert_eq!(tried.iter().filter(|t| *t == "T1").count(), 3);

    let metrics = metrics(&app).await;
    assert!(
        metrics.contains(
            r#"ds24_proxy_ipn_deliveries_total{connection="main",outcome="dead_lettered"} 2"#
        ),
        "{metrics}"
    );
    target.set_status(200);
    for id in [first, second] {
        let replay = client()
            .post(app.url(&format!("/events/{id}/replay")))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
    }
    let got = target.wait_for_exactly(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].1["transaction_id"], "T1",
        "the replay kept the order"
    );
    assert_eq!(got[1].1["transaction_id"], "T2");
    wait_for_state(&app, first, "delivered", Duration::from_secs(5)).await;
    let missing = client()
        .post(app.url("/events/99999/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Writes `toml` to a file in `dir` and returns its path.
fn config_file(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("ds24-proxy.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn an_event_acknowledged_before_a_sigkill_is_delivered_after_the_restart() {
    let target = App::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let config = config_file(dir.path(), FAST_RELAY);
    let env = [
        ("DS24_API_KEY", "1000-unused-key-for-this-test"),
        ("DS24_PROXY_DATA_DIR", data.as_str()),
        ("DS24_IPN_PASSPHRASE", PASS),
        ("DS24_IPN_FORWARD_TO", target.url.as_str()),
    ];
    let mut proxy = Proxy::start(&["--config", &config], &env);
    let fields = payment("ORD-K", "K1", "on_payment");
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, body) = post_ipn(&proxy.url("/ipn/main"), signed_form(&borrowed, PASS)).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    proxy.signal("KILL");
    proxy.wait(Duration::from_secs(5));
    assert!(target.accepted().is_empty());

    target.set_status(200);
    let proxy = Proxy::start(&["--config", &config], &env);
    let got = target.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].1["transaction_id"], "K1");
    assert_eq!(got[0].1["event"], "on_payment");
    drop(proxy);
}

#[tokio::test]
async fn sandbox_to_proxy_to_app_with_ipn_setup_on_loopback() {
    let target = App::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let sandbox = Proxy::start_command(
        &[
            "sandbox".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ],
        &[],
    );
    let base = format!("http://{}/api/call", sandbox.addr);
    let env = [
        ("DS24_API_KEY", ds24_proxy::sandbox::WRITABLE_KEY),
        ("DS24_BASE_URL", base.as_str()),
        ("DS24_PROXY_DATA_DIR", data.as_str()),
        ("DS24_IPN_FORWARD_TO", target.url.as_str()),
    ];
    let proxy = Proxy::start(&[], &env);
    // Before setup the proxy has no passphrase: the sandbox's event would
    // be refused, so register first.
    let cli = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env)
            .output()
            .unwrap()
    };
    let public = proxy.url("/ipn/main");
    let output = cli(&["ipn", "setup", "--url", &public]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("registered {public}")), "{stdout}");
    assert!(stdout.contains("not shown"), "{stdout}");

    // A refund through the proxy: the sandbox sends a signed on_refund.
    let refund = client()
        .post(proxy.url("/refundPurchase"))
        .form(&[("purchase_id", "SBX00001")])
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);
    // A sale made in the sandbox: on_payment.
    let sale: Value = client()
        .post(format!("http://{}/sandbox/purchases", sandbox.addr))
        .form(&[("product_id", "10002")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = target.wait_for(2, Duration::from_secs(15)).await;
    let refund_event = got
        .iter()
        .find(|(_, b)| b["event"] == "on_refund")
        .expect("on_refund");
    assert_eq!(refund_event.1["order_id"], "SBX00001");
    assert_eq!(refund_event.0["x-ds24-verified"], "sha512");
    let payment_event = got
        .iter()
        .find(|(_, b)| b["event"] == "on_payment")
        .expect("on_payment");
    assert_eq!(payment_event.1["order_id"], sale["purchase_id"]);
    // On demand, with the registered passphrase.
    let sent: Value = client()
        .post(format!("http://{}/sandbox/ipn", sandbox.addr))
        .form(&[("event", "connection_test")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["sent"][0]["acknowledged"], true, "{sent}");

    // The CLI sees what the server stored.
    let listed = cli(&["events", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["events"].as_array().unwrap().len(), 3, "{listed}");
    let info = cli(&["ipn", "info"]);
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(info_text.contains(&public), "{info_text}");
    assert!(
        info_text.contains("[redacted]"),
        "the passphrase was printed: {info_text}"
    );

    // events show and replay from the shell; the running proxy delivers.
    let oldest = listed["events"].as_array().unwrap().last().unwrap()["id"].to_string();
    let shown: Value = serde_json::from_slice(&cli(&["events", "show", &oldest]).stdout).unwrap();
    assert_eq!(shown["fields"]["order_id"], "SBX00001", "{shown}");
    let before = target.accepted().len();
    let replayed = cli(&["events", "replay", &oldest]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let got = target.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(got.last().unwrap().1["order_id"], "SBX00001");
    let deleted = String::from_utf8_lossy(&cli(&["ipn", "delete"]).stdout).into_owned();
    assert!(deleted.contains(r#""modified": "Y""#), "{deleted}");
    let info = String::from_utf8_lossy(&cli(&["ipn", "info"]).stdout).into_owned();
    assert!(info.contains(r#""have_settings": "N""#), "{info}");
}

#[tokio::test]
async fn if_the_event_cannot_be_stored_digistore24_gets_an_error_not_ok() {
    // The data directory cannot be created (its parent is a file).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let data = file.join("data").display().to_string();
    let app = spawn_app_with(
        "",
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_PROXY_DATA_DIR", &data),
        ],
    )
    .await;
    let (status, body) = post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body, "OK");
    assert!(body.contains("will send it again"), "{body}");
}

#[tokio::test]
async fn events_follow_the_token_policy() {
    let toml = r#"
[connections.shop2]
credential = { source = "env", var = "SHOP2_KEY" }

[[policies]]
name = "shop2-reader"
token_env = "READER_TOKEN"
effects = ["read"]
connections = ["shop2"]
"#;
    let app = spawn_app_with(
        toml,
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("SHOP2_KEY", "2000-shop2-key"),
            ("READER_TOKEN", "reader-token-0123456789abcdef"),
            ("DS24_PROXY_TOKEN", "admin-token-0123456789abcdef"),
        ],
    )
    .await;
    post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    let id = events_as(&app, "", Some("admin-token-0123456789abcdef")).await[0]["id"].clone();
    // The reader may not see `main`'s events, nor replay anything.
    assert!(
        events_as(&app, "", Some("reader-token-0123456789abcdef"))
            .await
            .is_empty()
    );
    for (method, path) in [
        (reqwest::Method::GET, format!("/events/{id}")),
        (reqwest::Method::GET, "/events?connection=main".to_owned()),
        (reqwest::Method::POST, format!("/events/{id}/replay")),
    ] {
        let response = client()
            .request(method, app.url(&path))
            .bearer_auth("reader-token-0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn events_stored_before_a_target_was_configured_are_delivered_once_there_is_one() {
    let target = App::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let app = spawn_app_with(
        FAST_RELAY,
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_PROXY_DATA_DIR", &data),
        ],
    )
    .await;
    post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    assert_eq!(events(&app, "").await[0]["state"], "stored");
    drop(app);
    let app = spawn_app_with(
        FAST_RELAY,
        &[
            ("DS24_IPN_PASSPHRASE", PASS),
            ("DS24_PROXY_DATA_DIR", &data),
            ("DS24_IPN_FORWARD_TO", &target.url),
        ],
    )
    .await;
    let got = target.wait_for_exactly(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].1["transaction_id"], "T1");
    drop(app);
}

#[tokio::test]
async fn an_event_older_than_max_age_is_dead_lettered_at_its_next_failure() {
    let target = App::start(503).await;
    let app = spawn_app_with(
        "[ipn]\nretry_initial_ms = 300\nretry_max_secs = 1\nmax_attempts = 1000\nmax_age_secs = 1\n",
        &[("DS24_IPN_PASSPHRASE", PASS), ("DS24_IPN_FORWARD_TO", &target.url)],
    )
    .await;
    post_fields(&app, &payment("ORD-1", "T1", "on_payment"), PASS).await;
    let id = events(&app, "").await[0]["id"].as_i64().unwrap();
    let dead = wait_for_state(&app, id, "dead", Duration::from_secs(10)).await;
    let attempts = dead["deliveries"][0]["attempts"].as_u64().unwrap();
    assert!(
        (2..20).contains(&attempts),
        "dead after {attempts} attempts, not by age"
    );
}

#[tokio::test]
async fn a_refused_event_is_logged_without_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let proxy = Proxy::start(
        &[],
        &[
            ("DS24_API_KEY", "1000-unused-key-for-this-test"),
            ("DS24_PROXY_DATA_DIR", &data),
            ("DS24_IPN_PASSPHRASE", PASS),
        ],
    );
    let fields = owned(&[
        ("event", "on_payment"),
        ("order_id", "ORD-SECRET-77"),
        ("buyer_email", "private.person@example.org"),
        ("buyer_last_name", "Geheimnis"),
    ]);
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _) = post_ipn(
        &proxy.url("/ipn/main"),
        signed_form(&borrowed, "wrong-passphrase"),
    )
    .await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = proxy.log();
    assert!(log.contains("IPN refused"), "{log}");
    assert!(log.contains("wrong_signature"), "{log}");
    for secret in [
        "private.person@example.org",
        "Geheimnis",
        "ORD-SECRET-77",
        PASS,
    ] {
        assert!(!log.contains(secret), "`{secret}` was logged:\n{log}");
    }
}

#[tokio::test]
async fn ipn_requests_are_logged_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let proxy = Proxy::start(
        &[],
        &[
            ("DS24_API_KEY", "1000-unused-key-for-this-test"),
            ("DS24_PROXY_DATA_DIR", &data),
            ("DS24_IPN_PASSPHRASE", PASS),
        ],
    );
    let fields = payment("ORD-LOG", "L1", "on_payment");
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, body) = post_ipn(&proxy.url("/ipn/main"), signed_form(&borrowed, PASS)).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, _) = post_ipn(
        &proxy.url("/ipn/main"),
        signed_form(&borrowed, "wrong-passphrase"),
    )
    .await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = proxy.log();
    for said in ["IPN stored", "IPN refused"] {
        let line = log
            .lines()
            .find(|l| l.contains(said))
            .unwrap_or_else(|| panic!("no `{said}` line:\n{log}"));
        assert!(line.contains("http.path=/ipn/main"), "{line}");
    }
    assert!(!log.contains("[refused path]"), "{log}");
}

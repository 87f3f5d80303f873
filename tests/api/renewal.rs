//! Renewal under load and across restarts: a key rotated at the upstream,
//! hundreds of requests at once, replays, OAuth2 refresh tokens, a rejected
//! key that is not sent again, and renewals by expiry in the metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::helpers::{TEST_KEY, TestApp, client, spawn_app, spawn_app_with};
use ds24_proxy::credentials::PROBE_INTERVAL;

const KEY_A: &str = "31-OldKeyAaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "32-NewKeyBbbbbbbbbbbbbbbbbbbbbbbb";

/// A proxy whose `main` key comes from a command source (`cat reply.json`),
/// warmed up with key A; then the source answers key B, as after a
/// rotation at Digistore24.
struct KeyRotation {
    app: TestApp,
    _dir: tempfile::TempDir,
}

impl KeyRotation {
    async fn start(extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let reply = dir.path().join("reply.json");
        std::fs::write(&reply, format!(r#"{{"api_key": "{KEY_A}"}}"#)).unwrap();
        let toml = format!(
            "{extra_toml}[connections.main]\ncredential = {{ source = \"command\", command = [\"cat\", \"{}\"] }}\n",
            reply.display()
        );
        let app = spawn_app_with(&toml, &[("DS24_API_KEY", "")]).await;
        app.client
            .get(app.url("/ping"))
            .header("x-fake-accept", KEY_A)
            .send()
            .await
            .unwrap();
        std::fs::write(&reply, format!(r#"{{"api_key": "{KEY_B}"}}"#)).unwrap();
        Self { app, _dir: dir }
    }
}

#[tokio::test]
async fn after_a_rotation_500_concurrent_requests_succeed_and_the_source_is_asked_once() {
    // Warmed up with the old key, then rotated: the upstream now accepts only B.
    let rotated = KeyRotation::start("").await;
    let app = &rotated.app;

    let requests: Vec<_> = (0..500)
        .map(|i| {
            let request = app
                .client
                .post(app.url("/updatePurchase"))
                .header("x-fake-accept", KEY_B)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("purchase_id=P{i}&data[custom]=n%2B{i}"));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), 200);
    }
    let conn: Value = client()
        .get(app.url("/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        conn["connections"][0]["source_reads"], 2,
        "the source was asked more than once after the rotation: {conn}"
    );
    assert_eq!(conn["connections"][0]["state"], "ok");

    // Every request that went out with A was replayed with B, byte for byte.
    let seen = app.fake.requests();
    for i in [0, 137, 499] {
        let body = format!("purchase_id=P{i}&data[custom]=n%2B{i}");
        let sent: Vec<_> = seen.iter().filter(|s| s.body == body.as_bytes()).collect();
        assert!(
            !sent.is_empty() && sent.len() <= 2,
            "request {i} went out {} times",
            sent.len()
        );
        assert_eq!(sent.last().unwrap().headers["x-ds-api-key"], KEY_B);
        if let [first, replay] = sent.as_slice() {
            assert_eq!(first.headers["x-ds-api-key"], KEY_A);
            assert_eq!(first.body, replay.body);
            assert_eq!(
                first.headers["content-type"],
                replay.headers["content-type"]
            );
            assert_eq!(first.query, replay.query);
        }
    }
    let with_b = seen
        .iter()
        .filter(|s| s.headers["x-ds-api-key"] == KEY_B)
        .count();
    assert_eq!(with_b, 500);
}

#[tokio::test]
async fn a_streamed_body_is_not_replayed_and_the_caller_is_told_to_resend() {
    let rotated = KeyRotation::start("[upstream]\nreplay_max_bytes = 16\n").await;
    let app = &rotated.app;
    let response = app
        .client
        .post(app.url("/createProduct"))
        .header("x-fake-accept", KEY_B)
        .body("data[name]=a+body+longer+than+sixteen+bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "credential_rejected");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send the request again"),
        "{body}"
    );
    let sent = app
        .fake
        .requests()
        .iter()
        .filter(|s| s.path.ends_with("createProduct"))
        .count();
    assert_eq!(sent, 1, "a streamed body was sent twice");
    // Sent again, it goes through with the new key.
    let again = app
        .client
        .post(app.url("/createProduct"))
        .header("x-fake-accept", KEY_B)
        .body("data[name]=a+body+longer+than+sixteen+bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

/// A token endpoint that accepts only the newest refresh token and rotates
/// it on every use; access tokens live one second.
#[derive(Debug, Default)]
struct Broker {
    valid_refresh: String,
    issued: u32,
}

async fn token(State(broker): State<Arc<Mutex<Broker>>>, body: String) -> Response {
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let mut broker = broker.lock().unwrap();
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || form.get("refresh_token") != Some(&broker.valid_refresh)
        || form.get("client_id").map(String::as_str) != Some("proxy")
    {
        return (http::StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "refresh token unknown or used"}))).into_response();
    }
    broker.issued += 1;
    let n = broker.issued;
    broker.valid_refresh = format!("refresh-{n}");
    axum::Json(json!({"access_token": format!("7{n}-Access{n}xxxxxxxx"), "token_type": "Bearer", "expires_in": 1, "refresh_token": broker.valid_refresh})).into_response()
}

#[tokio::test]
async fn oauth2_refresh_tokens_rotate_and_the_rotated_one_survives_a_restart() {
    let broker = Arc::new(Mutex::new(Broker {
        valid_refresh: "refresh-0".into(),
        issued: 0,
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/token", axum::routing::post(token))
        .with_state(broker.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.display().to_string();
    let toml = format!(
        "[connections.main.credential]\nsource = \"oauth2\"\ntoken_url = \"{token_url}\"\nclient_id = \"proxy\"\nrefresh_token_env = \"BROKER_RT\"\nheader = \"Authorization\"\nheader_prefix = \"Bearer \"\n"
    );
    let env = [
        ("DS24_API_KEY", ""),
        ("BROKER_RT", "refresh-0"),
        ("DS24_PROXY_DATA_DIR", data.as_str()),
    ];

    let mut first = spawn_app_with(&toml, &env).await;
    let response = first.client.get(first.url("/ping")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        first.fake.single().headers["authorization"],
        "Bearer 71-Access1xxxxxxxx"
    );
    first.begin_shutdown().await.unwrap().unwrap();

    // The environment still holds refresh-0, which the broker no longer
    // accepts; the restarted proxy must use refresh-1 from the store.
    let second = spawn_app_with(&toml, &env).await;
    let response = second.client.get(second.url("/ping")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        second.fake.single().headers["authorization"],
        "Bearer 72-Access2xxxxxxxx"
    );
    assert_eq!(broker.lock().unwrap().issued, 2);

    // Nothing secret is readable in the store's files.
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in ["refresh-1", "refresh-2", "Access1", "Access2"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in plain text in {}",
                path.display()
            );
        }
    }
}

/// A read's body that arrives in pieces: it streams, and is still sent again
/// byte for byte with the renewed key.
#[tokio::test]
async fn a_streamed_read_body_is_replayed_after_a_renewal() {
    let rotated = KeyRotation::start("").await;
    let app = &rotated.app;
    let pieces: [&'static str; 3] = ["page_size=50", "&search[email]=", "anna%40example.com"];
    let stream = futures_util::stream::iter(
        pieces
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from_static(p.as_bytes()))),
    );
    let response = app
        .client
        .post(app.url("/getPurchase"))
        .header("x-fake-accept", KEY_B)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent: Vec<_> = app
        .fake
        .requests()
        .into_iter()
        .filter(|s| s.path.ends_with("getPurchase"))
        .collect();
    assert_eq!(sent.len(), 2, "expected the first try and one replay");
    assert_eq!(sent[0].headers["x-ds-api-key"], KEY_A);
    assert_eq!(sent[1].headers["x-ds-api-key"], KEY_B);
    for s in &sent {
        assert_eq!(s.body, pieces.concat().as_bytes());
    }
}

/// A read's body over `replay_max_bytes` still streams, but only once.
#[tokio::test]
async fn a_read_body_over_the_replay_limit_is_sent_once() {
    let rotated = KeyRotation::start("[upstream]\nreplay_max_bytes = 16\n").await;
    let app = &rotated.app;
    let response = app
        .client
        .post(app.url("/getPurchase"))
        .header("x-fake-accept", KEY_B)
        .body("search[note]=a+body+longer+than+sixteen+bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "credential_rejected", "{body}");
    let sent = app
        .fake
        .requests()
        .iter()
        .filter(|s| s.path.ends_with("getPurchase"))
        .count();
    assert_eq!(sent, 1, "a body over the limit was sent twice");
}

/// `n` concurrent `GET /getUserInfo` for which the fake accepts only
/// `accepted`; each answer's status and error type.
async fn concurrent_calls(app: &TestApp, n: usize, accepted: &str) -> Vec<(u16, Value)> {
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let request = app
                .client
                .get(app.url("/getUserInfo"))
                .header("x-fake-accept", accepted);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body["error"]["type"].clone())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for request in requests {
        out.push(request.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_rejected_key_is_not_sent_again_by_300_concurrent_callers_and_a_new_key_file_works_at_once()
 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ds24.key");
    std::fs::write(&file, format!("{KEY_A}\n")).unwrap();
    let toml = format!(
        "[connections.main]\ncredential = {{ source = \"file\", path = \"{}\" }}\n",
        file.display()
    );
    let app = spawn_app_with(&toml, &[("DS24_API_KEY", "")]).await;

    // Digistore24 accepts only B; the file holds A.
    let first = concurrent_calls(&app, 1, KEY_B).await;
    assert_eq!(first[0], (401, json!("credential_rejected")));
    assert_eq!(app.fake.requests().len(), 1);

    let started = Instant::now();
    let answers = concurrent_calls(&app, 300, KEY_B).await;
    let elapsed = started.elapsed();
    for answer in &answers {
        assert_eq!(*answer, (401, json!("credential_rejected")));
    }
    // Nothing but the occasional probe, one per interval after a rejection.
    let sent = app.fake.requests().len() - 1;
    let probes_allowed = (elapsed.as_secs_f64() / PROBE_INTERVAL.as_secs_f64()).ceil() as usize;
    assert!(
        sent <= probes_allowed,
        "{sent} requests with the rejected key in {elapsed:?}"
    );
    let conn = &client()
        .get(app.url("/connections"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["connections"][0];
    assert_eq!(conn["state"], "needs_attention", "{conn}");

    // The key file is rewritten in place with the good key: the very next
    // calls use it, without waiting for a probe.
    std::fs::write(&file, format!("{KEY_B}\n")).unwrap();
    let before = app.fake.requests().len();
    let answers = concurrent_calls(&app, 300, KEY_B).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{:?}",
        answers.iter().find(|(status, _)| *status != 200)
    );
    let seen = app.fake.requests();
    assert_eq!(seen.len() - before, 300);
    assert!(
        seen[before..]
            .iter()
            .all(|s| s.headers["x-ds-api-key"] == KEY_B)
    );
    let ready = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_rejected_key_that_digistore24_accepts_again_works_after_one_probe() {
    let app = spawn_app().await;
    // Digistore24 refuses the key for a while (a blocked account, say).
    let first = concurrent_calls(&app, 1, "99-SomeOtherKey").await;
    assert_eq!(first[0], (401, json!("credential_rejected")));
    let marked = Instant::now();

    // It accepts the key again; callers keep getting the error, without a
    // request, until a probe finds out.
    let mut refused = 0;
    loop {
        let answer = concurrent_calls(&app, 1, TEST_KEY).await.remove(0);
        if answer.0 == 200 {
            break;
        }
        assert_eq!(answer, (401, json!("credential_rejected")));
        refused += 1;
        assert!(
            marked.elapsed() < PROBE_INTERVAL * 3,
            "no probe got through"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused > 0);
    assert!(
        marked.elapsed() >= PROBE_INTERVAL,
        "probed after {:?}",
        marked.elapsed()
    );
    assert_eq!(
        app.fake.requests().len(),
        2,
        "the rejection and the probe, nothing else"
    );
    let answers = concurrent_calls(&app, 50, TEST_KEY).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    let ready = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_renewal_by_expiry_is_counted_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let reply = dir.path().join("reply.json");
    let expiring = |key: &str| {
        let at = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        std::fs::write(
            &reply,
            format!(r#"{{"api_key": "{key}", "expires_at": "{at}"}}"#),
        )
        .unwrap();
    };
    // A key that lives 2 s, shorter than the renewal margin: renewed halfway.
    expiring(KEY_A);
    let toml = format!(
        "[connections.main]\ncredential = {{ source = \"command\", command = [\"cat\", \"{}\"] }}\n",
        reply.display()
    );
    let app = spawn_app_with(&toml, &[("DS24_API_KEY", "")]).await;
    let counted = || async {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| {
                l.starts_with("ds24_proxy_credential_renewals_total{")
                    && l.contains(r#"connection="main""#)
                    && l.contains(r#"trigger="expiry""#)
                    && l.contains(r#"result="ok""#)
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(concurrent_calls(&app, 1, KEY_A).await[0].0, 200);
    assert_eq!(counted().await, 0.0, "the first read is not a renewal");

    expiring(KEY_B);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(concurrent_calls(&app, 1, KEY_B).await[0].0, 200);
    assert_eq!(counted().await, 1.0);
    assert_eq!(
        app.fake.requests().last().unwrap().headers["x-ds-api-key"],
        KEY_B
    );
}

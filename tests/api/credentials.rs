//! Credentials end to end: sources, rotation, rejection, replay, readiness,
//! and what `/connections` shows.

use serde_json::{Value, json};

use crate::helpers::client;
use crate::sandbox::SandboxApp;
use ds24_proxy::sandbox;

#[tokio::test]
async fn a_rotated_key_file_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ds24.key");
    std::fs::write(&file, format!("{}\n", sandbox::READONLY_KEY)).unwrap();
    let path = file.display().to_string();
    let app = SandboxApp::start_with("", &[("DS24_API_KEY_FILE", path.as_str())]).await;

    let (status, _) = app.call("getUserInfo", "").await;
    assert_eq!(status, 200);
    std::fs::write(&file, format!("  {}\n\n", sandbox::WRITABLE_KEY)).unwrap();
    let (status, _) = app.call("getUserInfo", "").await;
    assert_eq!(status, 200);

    let keys: Vec<String> = app
        .sandbox
        .recorded()
        .iter()
        .map(|r| r.headers["x-ds-api-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [sandbox::READONLY_KEY, sandbox::WRITABLE_KEY],
        "whitespace around the key is not part of it"
    );
    let conn = app.connection("main").await;
    assert_eq!(conn["source"], "file");
    assert_eq!(conn["key_id"], "1000");
}

#[tokio::test]
async fn a_command_source_supplies_the_key() {
    let toml = format!(
        "[connections.shop]\ncredential = {{ source = \"command\", command = [\"sh\", \"-c\", \"printf '{{\\\"api_key\\\": \\\"{}\\\", \\\"expires_at\\\": \\\"2099-01-01T00:00:00Z\\\"}}'\"] }}\n",
        sandbox::WRITABLE_KEY
    );
    let app = SandboxApp::start_with(&toml, &[("DS24_API_KEY", sandbox::READONLY_KEY)]).await;
    let response = client()
        .get(app.url("/connections/shop/getUserInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.sandbox.recorded()[0].headers["x-ds-api-key"],
        sandbox::WRITABLE_KEY
    );
    let conn = app.connection("shop").await;
    assert_eq!(conn["source"], "command");
    assert_eq!(conn["expires_at"], "2099-01-01T00:00:00Z");
    assert!(conn["last_renewal_at"].is_string());
}

#[tokio::test]
async fn a_key_digistore24_rejects_with_an_unchanged_source_gives_credential_rejected_and_readyz_503()
 {
    // One proxy per error style: once a key is known to be rejected, the
    // next request is refused without being sent, so a second style on the
    // same proxy would not reach the sandbox.
    for (style, path, body) in [
        ("4xx", "/listProducts", ""),
        ("200", "/actions/list-products", "{}"),
    ] {
        let app = SandboxApp::start("1999-AKeyTheSandboxDoesNotKnow").await;
        let send = || {
            client()
                .post(app.url(path))
                .header("X-DS24-Sandbox-Error-Style", style)
                .header(
                    "content-type",
                    if body.is_empty() {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/json"
                    },
                )
                .body(body)
                .send()
        };
        for attempt in ["rejected upstream", "refused without a request"] {
            let response = send().await.unwrap();
            assert_eq!(response.status(), 401, "{style} {path} {attempt}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "credential_rejected", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("DS24_API_KEY"),
                "{body}"
            );
        }
        assert_eq!(app.sandbox.recorded().len(), 1, "{style} {path}");

        let ready = client().get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(
            body["connections"]["main"]["state"], "needs_attention",
            "{body}"
        );
        let conn = app.connection("main").await;
        assert_eq!(conn["state"], "needs_attention");
        assert!(conn["last_error"].as_str().unwrap().contains("rejected"));
    }
}

#[tokio::test]
async fn a_permission_error_passes_through_untouched_and_causes_no_renewal() {
    let app = SandboxApp::start(sandbox::READONLY_KEY).await;
    let reads_before = app.connection("main").await["source_reads"].as_u64();
    let (status, body) = app.call("refundPurchase", "purchase_id=SBX00001").await;
    assert_eq!(status, 403);
    assert_eq!(body["result"], "error");
    assert_eq!(
        body["code"], 5,
        "Digistore24's own reply, unchanged: {body}"
    );
    let (status, body) = app
        .action("refund-purchase", &json!({"purchase_id": "SBX00001"}))
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (403, Some("upstream_error"))
    );
    let conn = app.connection("main").await;
    assert_eq!(
        conn["source_reads"].as_u64(),
        reads_before.max(Some(1)),
        "a permission error re-read the source"
    );
    assert_eq!(conn["state"], "ok");
    assert_eq!(app.sandbox.recorded().len(), 2, "nothing was replayed");
}

#[tokio::test]
async fn connections_lists_state_without_any_secret() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    app.call("ping", "").await;
    let all = client()
        .get(app.url("/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(all.contains("\"key_id\":\"1000\""), "{all}");
    assert!(
        !all.contains("SandboxWritableKey"),
        "a secret in /connections: {all}"
    );
}

#[tokio::test]
async fn a_stored_main_whose_state_an_older_version_rewrote_to_env_is_adopted_again() {
    use ds24_proxy::store::{ConnectionState, SecretString, SqliteStore, Store};
    // What a run with DS24_API_KEY left behind before the fix: the key
    // `connect` stored, and a state row that says `env`.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), None).unwrap();
    let key = SecretString::from(sandbox::WRITABLE_KEY.to_owned());
    store
        .save(
            "main",
            &[("api_key", &key)],
            &ConnectionState {
                connection: "main".into(),
                source_kind: "env".into(),
                key_id: Some("1000".into()),
                updated_at: 1,
                ..ConnectionState::default()
            },
        )
        .unwrap();
    drop(store);
    let data = dir.path().display().to_string();
    let app = SandboxApp::start_with("", &[("DS24_PROXY_DATA_DIR", data.as_str())]).await;
    let (status, body) = app.call("getUserInfo", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.connection("main").await["source"], "stored");
}

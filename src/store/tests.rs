//! Tests of the store: round trips, encryption at rest, keys, file modes,
//! schema upgrades, atomicity and crash safety. Idempotency records and the
//! audit log have their own files (`tests_idempotency.rs`, `tests_audit.rs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::crypto::tests::encode_base64_for_test;
use super::migrations::MIGRATIONS;
use super::*;

/// Two different master keys, as `DS24_PROXY_MASTER_KEY` would hold them.
pub(super) const KEY_A: &str = "8f3a1c5e7b9d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c2e4b6d8f0a2c4e6b8d0f1a";
const KEY_B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(super) fn secret(value: &str) -> SecretString {
    SecretString::from(value)
}

pub(super) fn key(hex_or_base64: &str) -> SecretString {
    SecretString::from(hex_or_base64)
}

pub(super) fn state(connection: &str, kind: &str, updated_at: i64) -> ConnectionState {
    ConnectionState {
        connection: connection.into(),
        source_kind: kind.into(),
        key_id: Some("1234".into()),
        expires_at: Some(updated_at + 3600),
        last_renewal_at: Some(updated_at),
        last_error: None,
        needs_attention: false,
        updated_at,
        base_url: None,
    }
}

pub(super) fn read(store: &SqliteStore, connection: &str, name: &str) -> Option<String> {
    store
        .secret(connection, name)
        .expect("secret")
        .map(|s| s.expose_secret().to_owned())
}

pub(super) fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    (tmp, data)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn secrets_and_state_survive_reopening_with_the_key_file() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    assert_eq!(store.path(), data.join("ds24-proxy.db"));
    assert_eq!(
        store.key_source(),
        &KeySource::File(data.join("master.key"))
    );
    let shop2 = state("shop2", "stored", 100);
    let mut main = state("main", "oauth2", 200);
    main.last_error = Some("the token endpoint answered 503".into());
    main.needs_attention = true;
    store
        .save("shop2", &[("api_key", &secret("5678-shop2-key"))], &shop2)
        .expect("save shop2");
    store
        .save(
            "main",
            &[
                ("access_token", &secret("1234-access")),
                ("refresh_token", &secret("refresh-1")),
            ],
            &main,
        )
        .expect("save main");
    drop(store);

    let store = SqliteStore::open(&data, None).expect("reopen");
    assert_eq!(
        read(&store, "main", "access_token").as_deref(),
        Some("1234-access")
    );
    assert_eq!(
        read(&store, "main", "refresh_token").as_deref(),
        Some("refresh-1")
    );
    assert_eq!(
        read(&store, "shop2", "api_key").as_deref(),
        Some("5678-shop2-key")
    );
    assert_eq!(read(&store, "main", "api_key"), None);
    assert_eq!(read(&store, "nobody", "api_key"), None);
    assert_eq!(store.state("main").expect("state"), Some(main.clone()));
    assert_eq!(store.state("nobody").expect("state"), None);
    assert_eq!(store.states().expect("states"), vec![main, shop2.clone()]);

    assert!(store.remove("main").expect("remove"));
    assert_eq!(read(&store, "main", "access_token"), None);
    assert_eq!(read(&store, "main", "refresh_token"), None);
    assert_eq!(store.state("main").expect("state"), None);
    assert_eq!(store.states().expect("states"), vec![shop2]);
    assert!(
        !store.remove("main").expect("remove again"),
        "nothing left to remove"
    );
}

#[test]
fn secrets_survive_reopening_with_an_explicit_key_in_hex_or_base64() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, Some(&key(KEY_A))).expect("open");
    assert_eq!(store.key_source(), &KeySource::Given);
    store
        .save(
            "main",
            &[("api_key", &secret("1234-abcdef"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    drop(store);
    assert!(
        !data.join("master.key").exists(),
        "an explicit key writes no key file"
    );

    let bytes = hex::decode(KEY_A).expect("hex");
    let base64 = encode_base64_for_test(&bytes);
    for form in [
        format!("{}\n", KEY_A.to_uppercase()),
        base64.clone(),
        base64
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_"),
    ] {
        let store = SqliteStore::open(&data, Some(&key(&form))).expect("reopen");
        assert_eq!(
            read(&store, "main", "api_key").as_deref(),
            Some("1234-abcdef")
        );
        assert_eq!(
            store.state("main").expect("state"),
            Some(state("main", "stored", 1))
        );
    }

    // Without the key, a store holding secrets does not quietly get a new one.
    let err = SqliteStore::open(&data, None).expect_err("no key");
    assert!(
        matches!(err, StoreError::MissingMasterKey { .. }),
        "{err:?}"
    );
    assert!(!data.join("master.key").exists());
}

#[test]
fn a_save_replaces_the_named_secrets_and_keeps_the_others() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    store
        .save(
            "main",
            &[
                ("access_token", &secret("a1")),
                ("refresh_token", &secret("r1")),
            ],
            &state("main", "oauth2", 1),
        )
        .expect("save");
    store
        .save(
            "main",
            &[("access_token", &secret("a2"))],
            &state("main", "oauth2", 2),
        )
        .expect("save");
    assert_eq!(read(&store, "main", "access_token").as_deref(), Some("a2"));
    assert_eq!(read(&store, "main", "refresh_token").as_deref(), Some("r1"));
    assert_eq!(
        store.state("main").expect("state"),
        Some(state("main", "oauth2", 2))
    );
}

#[test]
fn save_state_updates_only_the_state() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1234-k"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    let mut next = state("main", "stored", 2);
    next.needs_attention = true;
    next.last_error = Some("Digistore24 rejected the key".into());
    store.save_state(&next).expect("save_state");
    assert_eq!(store.state("main").expect("state"), Some(next));
    assert_eq!(read(&store, "main", "api_key").as_deref(), Some("1234-k"));

    // A connection whose key lives elsewhere has state and no secrets.
    store
        .save_state(&state("envconn", "env", 3))
        .expect("save_state");
    assert_eq!(
        store.state("envconn").expect("state"),
        Some(state("envconn", "env", 3))
    );
    assert!(store.remove("envconn").expect("remove"));
}

#[test]
fn the_database_files_never_contain_a_plaintext_secret() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let api_key = "4242-PLAINTEXT-NEEDLE-API-KEY-q8Zr3";
    let mut needles = vec![api_key.to_owned()];
    store
        .save(
            "main",
            &[("api_key", &secret(api_key))],
            &state("main", "stored", 1),
        )
        .expect("save");
    for i in 0..20 {
        let token = format!("PLAINTEXT-NEEDLE-REFRESH-{i:03}");
        store
            .save(
                "other",
                &[("refresh_token", &secret(&token))],
                &state("other", "oauth2", i),
            )
            .expect("save");
        needles.push(token);
    }
    let master_key = std::fs::read_to_string(data.join("master.key")).expect("key file");
    needles.push(master_key.trim().to_owned());

    let scan = |when: &str| {
        let mut scanned = Vec::new();
        for entry in std::fs::read_dir(&data).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.file_name() == Some("master.key".as_ref()) {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{when}: {} contains a plaintext secret",
                    path.display()
                );
            }
            scanned.push(
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        scanned.sort();
        scanned
    };
    // While open, the WAL holds the recent pages.
    let open_files = scan("while open");
    assert!(
        open_files.contains(&"ds24-proxy.db-wal".to_owned()),
        "{open_files:?}"
    );
    assert!(
        open_files.contains(&"ds24-proxy.db-shm".to_owned()),
        "{open_files:?}"
    );
    assert_eq!(read(&store, "main", "api_key").as_deref(), Some(api_key));
    drop(store);
    scan("after closing");
}

#[test]
fn a_different_master_key_is_refused_with_a_helpful_message() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, Some(&key(KEY_A))).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1234-abc"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    drop(store);

    let err = SqliteStore::open(&data, Some(&key(KEY_B))).expect_err("wrong key");
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err:?}");
    let message = err.to_string();
    for part in [
        "DS24_PROXY_MASTER_KEY",
        "differs from the key that encrypted it",
        "ds24-proxy connect",
    ] {
        assert!(message.contains(part), "{message}");
    }
    assert!(
        message.contains(&*data.join("ds24-proxy.db").to_string_lossy()),
        "{message}"
    );
    assert!(
        !message.contains(KEY_A) && !message.contains(KEY_B),
        "{message}"
    );
    assert!(!format!("{err:?}").contains(KEY_B));

    // The same with the key file: the message points at the file.
    let (_tmp2, data2) = data_dir();
    let store = SqliteStore::open(&data2, None).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1234-abc"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    drop(store);
    let key_file = data2.join("master.key");
    std::fs::write(&key_file, format!("{KEY_B}\n")).expect("overwrite key file");
    let err = SqliteStore::open(&data2, None).expect_err("wrong key file");
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*key_file.to_string_lossy()),
        "{err}"
    );
    assert!(!err.to_string().contains(KEY_B));
}

#[test]
fn a_sealed_secret_copied_to_another_row_does_not_decrypt() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1111-main"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    store
        .save(
            "shop2",
            &[("api_key", &secret("2222-shop2"))],
            &state("shop2", "stored", 1),
        )
        .expect("save");
    store.with_connection(|conn| {
        conn.execute_batch(
            "UPDATE secrets SET sealed = (SELECT sealed FROM secrets
                 WHERE connection = 'main' AND name = 'api_key')
             WHERE connection = 'shop2' AND name = 'api_key';
             INSERT INTO secrets (connection, name, sealed, updated_at)
             SELECT connection, 'refresh_token', sealed, updated_at FROM secrets
             WHERE connection = 'main' AND name = 'api_key';",
        )
        .expect("copy blobs");
    });
    for (connection, name) in [("shop2", "api_key"), ("main", "refresh_token")] {
        let err = store.secret(connection, name).expect_err("moved blob");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("copied from another row"), "{message}");
        assert!(!message.contains("1111-main"), "{message}");
    }
    assert_eq!(
        read(&store, "main", "api_key").as_deref(),
        Some("1111-main")
    );
}

#[test]
fn a_lost_key_file_is_not_replaced_by_a_new_key() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1234-abc"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    drop(store);
    std::fs::remove_file(data.join("master.key")).expect("remove key file");
    let err = SqliteStore::open(&data, None).expect_err("key file gone");
    assert!(
        matches!(err, StoreError::MissingMasterKey { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("DS24_PROXY_MASTER_KEY"), "{err}");
    assert!(!data.join("master.key").exists());
}

#[test]
fn malformed_master_keys_are_refused_without_echoing_them() {
    let (_tmp, data) = data_dir();
    for (bad, expect) in [
        ("", "it is empty"),
        ("QQQQ:not:a:key:QQQQ", "neither hex nor base64"),
        (&KEY_A[..63], "63 hex characters, not 64"),
        ("QUJDREVGR0hJSktMTU5PUA==", "base64 of 16 bytes, not 32"),
    ] {
        let err = SqliteStore::open(&data, Some(&key(bad))).expect_err("bad key");
        assert!(matches!(err, StoreError::BadMasterKey { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(expect), "{message}");
        assert!(message.contains("DS24_PROXY_MASTER_KEY"), "{message}");
        assert!(bad.is_empty() || !message.contains(bad), "{message}");
        assert!(bad.is_empty() || !format!("{err:?}").contains(bad));
    }
    assert!(!data.exists(), "a malformed given key creates nothing");

    let (_tmp2, data2) = data_dir();
    std::fs::create_dir_all(&data2).expect("mkdir");
    let key_file = data2.join("master.key");
    std::fs::write(&key_file, "QQQQ:not:a:key:QQQQ\n").expect("write");
    #[cfg(unix)]
    set_mode(&key_file, 0o600);
    let err = SqliteStore::open(&data2, None).expect_err("bad key file");
    assert!(matches!(err, StoreError::BadMasterKey { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*key_file.to_string_lossy()),
        "{err}"
    );
    assert!(!err.to_string().contains("QQQQ"), "{err}");
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_0700_and_the_key_and_database_files_are_0600() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("nested").join("data");
    let store = SqliteStore::open(&data, None).expect("open");
    store
        .save(
            "main",
            &[("api_key", &secret("1234-abc"))],
            &state("main", "stored", 1),
        )
        .expect("save");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    for file in ["ds24-proxy.db", "ds24-proxy.db-wal", "ds24-proxy.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let key_text = std::fs::read_to_string(data.join("master.key")).expect("read key");
    assert_eq!(key_text.len(), 65, "64 hex characters and a newline");
    assert!(key_text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    let (_tmp, data) = data_dir();
    drop(SqliteStore::open(&data, None).expect("open"));
    let key_file = data.join("master.key");
    for loose in [0o644, 0o640, 0o604, 0o660] {
        set_mode(&key_file, loose);
        let err = SqliteStore::open(&data, None).expect_err("loose key file");
        assert!(matches!(err, StoreError::InsecureKeyFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&format!("{loose:04o}")), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }
    set_mode(&key_file, 0o400);
    SqliteStore::open(&data, None).expect("a read-only key file for its owner is fine");
}

#[cfg(unix)]
#[test]
fn an_existing_data_dir_open_to_others_is_tightened_to_0700() {
    let (_tmp, data) = data_dir();
    std::fs::create_dir(&data).expect("mkdir");
    set_mode(&data, 0o755);
    drop(SqliteStore::open(&data, None).expect("open"));
    assert_eq!(mode(&data), 0o700);
    // And a database file left readable by others is tightened too.
    set_mode(&data.join("ds24-proxy.db"), 0o644);
    drop(SqliteStore::open(&data, None).expect("open"));
    assert_eq!(mode(&data.join("ds24-proxy.db")), 0o600);
}

#[test]
fn a_save_whose_state_cannot_be_written_leaves_the_earlier_secrets_in_place() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let first = state("main", "oauth2", 1);
    store
        .save(
            "main",
            &[
                ("access_token", &secret("access-1")),
                ("refresh_token", &secret("refresh-1")),
            ],
            &first,
        )
        .expect("first save");
    // The state row is written after the secrets in the same transaction;
    // make that write fail the way a full disk or I/O error would.
    store.with_connection(|conn| {
        conn.execute_batch(
            "CREATE TEMP TRIGGER fail_state_write BEFORE UPDATE ON main.connections
             BEGIN SELECT RAISE(ABORT, 'simulated failure writing the state'); END;",
        )
        .expect("trigger");
    });
    let err = store
        .save(
            "main",
            &[
                ("access_token", &secret("access-2")),
                ("refresh_token", &secret("refresh-2")),
            ],
            &state("main", "oauth2", 2),
        )
        .expect_err("state write fails");
    assert!(err.to_string().contains("simulated failure"), "{err}");
    assert_eq!(
        read(&store, "main", "access_token").as_deref(),
        Some("access-1")
    );
    assert_eq!(
        read(&store, "main", "refresh_token").as_deref(),
        Some("refresh-1")
    );
    assert_eq!(store.state("main").expect("state"), Some(first));

    // The store is still usable once the cause is gone.
    store.with_connection(|conn| {
        conn.execute_batch("DROP TRIGGER temp.fail_state_write")
            .expect("drop");
    });
    store
        .save(
            "main",
            &[("refresh_token", &secret("refresh-3"))],
            &state("main", "oauth2", 3),
        )
        .expect("save");
    assert_eq!(
        read(&store, "main", "refresh_token").as_deref(),
        Some("refresh-3")
    );
}

#[test]
fn invalid_input_is_refused_before_anything_is_written() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a SecretString)],
        ConnectionState,
        &'a str,
    );
    let cases: [Case<'_>; 4] = [
        (
            "main",
            &[],
            state("other", "stored", 1),
            "state of connection `other`",
        ),
        (
            "main",
            &[],
            state("main", "vault", 1),
            "unknown credential source kind `vault`",
        ),
        ("", &[], state("", "stored", 1), "connection name is empty"),
        (
            "main",
            &[("", &secret("x"))],
            state("main", "stored", 1),
            "secret name is empty",
        ),
    ];
    for (connection, secrets, st, expect) in cases {
        let err = store.save(connection, secrets, &st).expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{err}");
    }
    assert!(store.states().expect("states").is_empty());
    for kind in SOURCE_KINDS {
        store
            .save_state(&state("main", kind, 1))
            .expect("every known kind is accepted");
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let (_tmp, data) = data_dir();
    let value = "9876-DEBUG-NEEDLE-secret";
    for master_key in [None, Some(key(KEY_A))] {
        let dir = data.join(if master_key.is_some() {
            "given"
        } else {
            "file"
        });
        let store = SqliteStore::open(&dir, master_key.as_ref()).expect("open");
        store
            .save(
                "main",
                &[("api_key", &secret(value))],
                &state("main", "stored", 1),
            )
            .expect("save");
        let fetched = store.secret("main", "api_key").expect("secret");
        let file_key = std::fs::read_to_string(dir.join("master.key")).unwrap_or_default();
        for shown in [
            format!("{store:?}"),
            format!("{store:#?}"),
            format!("{fetched:?}"),
            format!("{:?}", store.states().expect("states")),
        ] {
            assert!(!shown.contains(value), "{shown}");
            assert!(!shown.contains(KEY_A), "{shown}");
            assert!(
                file_key.is_empty() || !shown.contains(file_key.trim()),
                "{shown}"
            );
        }
        assert!(format!("{store:?}").contains("ds24-proxy.db"));
    }
}

#[test]
fn migrations_are_numbered_from_one_without_gaps() {
    for (i, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, i as i64 + 1, "{}", migration.description);
    }
    assert_eq!(SqliteStore::schema_version(), MIGRATIONS.len() as i64);
}

#[test]
fn a_new_store_is_at_the_latest_schema_in_wal_mode_with_full_sync() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    store.with_connection(|conn| {
        let get = |pragma: &str| -> String {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .expect("pragma")
        };
        assert_eq!(
            get("user_version"),
            SqliteStore::schema_version().to_string()
        );
        assert_eq!(get("journal_mode"), "wal");
        assert_eq!(get("synchronous"), "2", "FULL");
        assert_eq!(get("foreign_keys"), "1");
        assert_eq!(get("busy_timeout"), "5000");
    });
}

#[test]
fn a_store_written_by_a_newer_version_is_refused() {
    let (_tmp, data) = data_dir();
    drop(SqliteStore::open(&data, None).expect("open"));
    let conn = rusqlite::Connection::open(data.join("ds24-proxy.db")).expect("raw open");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    let err = SqliteStore::open(&data, None).expect_err("too new");
    assert!(
        matches!(err, StoreError::UnsupportedSchema { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade ds24-proxy"), "{err}");
}

/// Writes, without [`SqliteStore`], a database as schema version 1 left it:
/// its tables, the key check value and one connection's sealed secrets, in
/// WAL mode, sealed under `master_key` (hex).
fn write_schema_1_store(data: &Path, master_key: &str, secrets: &[(&str, &str, &str)]) {
    use super::crypto::{KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT, Sealer, secret_aad};
    std::fs::create_dir_all(data).expect("mkdir");
    let bytes: [u8; 32] = hex::decode(master_key)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let sealer = Sealer::new(&bytes);
    let mut conn = rusqlite::Connection::open(data.join(DB_FILE)).expect("raw open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    let tx = conn.transaction().expect("tx");
    tx.execute_batch(MIGRATIONS[0].sql).expect("schema 1");
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('key_check', ?1)",
        [sealer
            .seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)
            .expect("seal")],
    )
    .expect("key check");
    for (connection, name, value) in secrets {
        tx.execute(
            "INSERT OR IGNORE INTO connections (connection, source_kind, key_id, updated_at)
             VALUES (?1, 'stored', '1234', 7)",
            [connection],
        )
        .expect("state");
        tx.execute(
            "INSERT INTO secrets (connection, name, sealed, updated_at) VALUES (?1, ?2, ?3, 7)",
            rusqlite::params![
                connection,
                name,
                sealer
                    .seal(&secret_aad(connection, name), value.as_bytes())
                    .expect("seal"),
            ],
        )
        .expect("secret");
    }
    tx.pragma_update(None, "user_version", 1).expect("version");
    tx.commit().expect("commit");
}

#[test]
fn a_store_created_at_schema_1_keeps_its_secrets_when_upgraded() {
    let (_tmp, data) = data_dir();
    write_schema_1_store(
        &data,
        KEY_A,
        &[
            ("main", "access_token", "1234-access-v1"),
            ("main", "refresh_token", "refresh-v1"),
            ("shop2", "api_key", "5678-shop2-v1"),
        ],
    );

    let store = SqliteStore::open(&data, Some(&key(KEY_A))).expect("open and migrate");
    store.with_connection(|conn| {
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, SqliteStore::schema_version());
        assert!(version >= 2);
    });
    assert_eq!(
        read(&store, "main", "access_token").as_deref(),
        Some("1234-access-v1")
    );
    assert_eq!(
        read(&store, "main", "refresh_token").as_deref(),
        Some("refresh-v1")
    );
    assert_eq!(
        read(&store, "shop2", "api_key").as_deref(),
        Some("5678-shop2-v1")
    );
    let main = store.state("main").expect("state").expect("kept");
    assert_eq!(
        (
            main.source_kind.as_str(),
            main.key_id.as_deref(),
            main.updated_at
        ),
        ("stored", Some("1234"), 7)
    );

    // The tables of version 2 are there and work.
    assert_eq!(
        store
            .begin_idempotent("main", "k1", "ab12", 100, 60, 60)
            .expect("begin"),
        Begin::Started
    );
    let id = store
        .append_audit(&AuditEntry {
            id: 0,
            at: 100,
            connection: "main".into(),
            token: "anonymous".into(),
            function: "refundPurchase".into(),
            effect: "money".into(),
            request_id: "req-1".into(),
            outcome: "200".into(),
            params_digest: "cd34".into(),
        })
        .expect("append");
    assert_eq!(
        store.audit(&AuditFilter::default()).expect("audit")[0].id,
        id
    );
    drop(store);

    // Reopening migrates nothing more and still reads the old secrets.
    let store = SqliteStore::open(&data, Some(&key(KEY_A))).expect("reopen");
    assert_eq!(
        read(&store, "shop2", "api_key").as_deref(),
        Some("5678-shop2-v1")
    );
    assert!(store.idempotent("main", "k1").expect("record").is_some());
    // And the old store's key is still the only one that opens it.
    drop(store);
    let err = SqliteStore::open(&data, Some(&key(KEY_B))).expect_err("wrong key");
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err:?}");
}

#[test]
fn a_database_file_that_is_not_sqlite_is_reported_as_damaged() {
    let (_tmp, data) = data_dir();
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("ds24-proxy.db"), vec![0x5a; 8192]).expect("write");
    let err = SqliteStore::open(&data, None).expect_err("garbage");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
}

#[test]
fn two_stores_on_one_data_directory_share_their_writes() {
    let (_tmp, data) = data_dir();
    let a = SqliteStore::open(&data, None).expect("open a");
    let b = SqliteStore::open(&data, None).expect("open b");
    a.save(
        "main",
        &[("api_key", &secret("1234-a"))],
        &state("main", "stored", 1),
    )
    .expect("save");
    assert_eq!(read(&b, "main", "api_key").as_deref(), Some("1234-a"));
    b.save(
        "main",
        &[("api_key", &secret("1234-b"))],
        &state("main", "stored", 2),
    )
    .expect("save");
    assert_eq!(read(&a, "main", "api_key").as_deref(), Some("1234-b"));
}

#[test]
fn stores_opened_at_once_on_a_fresh_directory_agree_on_one_key() {
    let (_tmp, data) = data_dir();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let stores: Vec<SqliteStore> = (0..4)
        .map(|_| {
            let (data, barrier) = (data.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                SqliteStore::open(&data, None).expect("open")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for (i, store) in stores.iter().enumerate() {
        let name = format!("conn{i}");
        store
            .save(
                &name,
                &[("api_key", &secret(&format!("{i}-key")))],
                &state(&name, "stored", 1),
            )
            .expect("save");
    }
    for store in &stores {
        for i in 0..stores.len() {
            assert_eq!(
                read(store, &format!("conn{i}"), "api_key"),
                Some(format!("{i}-key"))
            );
        }
    }
}

#[test]
fn concurrent_saves_from_many_threads_all_land() {
    let (_tmp, data) = data_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data, None).expect("open"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..10 {
                    let name = format!("conn{t}");
                    let value = secret(&format!("token-{t}-{i}"));
                    store
                        .save(
                            &name,
                            &[("refresh_token", &value)],
                            &state(&name, "oauth2", i),
                        )
                        .expect("save");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let states = store.states().expect("states");
    assert_eq!(
        states
            .iter()
            .map(|s| s.connection.as_str())
            .collect::<Vec<_>>(),
        ["conn0", "conn1", "conn2", "conn3"]
    );
    for t in 0..4 {
        let value = store
            .secret(&format!("conn{t}"), "refresh_token")
            .expect("secret");
        assert_eq!(value.expect("some").expose_secret(), format!("token-{t}-9"));
    }
}

// --- crash safety -----------------------------------------------------------

/// Set in the child process: the data directory the writer uses.
const CRASH_WRITER_ENV: &str = "DS24_PROXY_STORE_TEST_CRASH_WRITER_DIR";
const CRASH_WRITER_TEST: &str = "the_crash_writer_child_saves_rotated_refresh_tokens_until_killed";

fn stored_token_number(store: &SqliteStore) -> Option<u64> {
    let token = store.secret("main", "refresh_token").expect("readable")?;
    token.expose_secret().strip_prefix("token-")?.parse().ok()
}

/// Not a test on its own: it does its work only in the child process that
/// the crash test starts (with [`CRASH_WRITER_ENV`] set).
#[test]
fn the_crash_writer_child_saves_rotated_refresh_tokens_until_killed() {
    let Some(dir) = std::env::var_os(CRASH_WRITER_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&dir), None).expect("child: open");
    let mut n = stored_token_number(&store).unwrap_or(0);
    // Bounded, in case the parent dies before it kills us.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        n += 1;
        let token = secret(&format!("token-{n}"));
        let mut st = state("main", "oauth2", i64::try_from(n).expect("small"));
        st.key_id = Some(n.to_string());
        store
            .save("main", &[("refresh_token", &token)], &st)
            .expect("child: save");
        println!("<saved {n}>");
    }
}

/// Kills the child if a test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn saved_numbers(line: &str) -> Vec<u64> {
    line.split("<saved ")
        .skip(1)
        .filter_map(|rest| rest.split_once('>')?.0.parse().ok())
        .collect()
}

#[test]
fn a_writer_killed_mid_save_leaves_a_readable_store_with_the_last_acknowledged_token() {
    let (_tmp, data) = data_dir();
    // Creates the key file the child will use.
    drop(SqliteStore::open(&data, None).expect("open"));
    let test_name = match module_path!().split_once("::") {
        Some((_crate, path)) => format!("{path}::{CRASH_WRITER_TEST}"),
        None => CRASH_WRITER_TEST.to_owned(),
    };
    let exe = std::env::current_exe().expect("test binary");
    let mut previous = 0;
    for delay_ms in [150, 300, 450, 250] {
        let child = Command::new(&exe)
            .args([
                test_name.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_WRITER_ENV, &data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for n in saved_numbers(&line) {
                    let _ = tx.send(n);
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer acknowledged no save");
        std::thread::sleep(Duration::from_millis(delay_ms));
        // `Child::kill` sends SIGKILL on Unix: no destructor, no cleanup.
        child.0.kill().expect("SIGKILL the writer");
        let status = child.0.wait().expect("wait");
        assert!(!status.success(), "the writer was killed, not finished");
        reader.join().expect("reader");
        let last = rx.try_iter().fold(first, u64::max);
        assert!(
            first > previous,
            "each writer continues from the stored token"
        );

        let store = SqliteStore::open(&data, None).expect("the store opens after a kill");
        let stored = stored_token_number(&store).expect("a token is stored");
        assert!(
            stored == last || stored == last + 1,
            "stored token-{stored}, last acknowledged token-{last}"
        );
        let st = store.state("main").expect("state").expect("some state");
        assert_eq!(
            st.updated_at,
            i64::try_from(stored).expect("small"),
            "secret and state are one transaction"
        );
        assert_eq!(st.key_id, Some(stored.to_string()));
        previous = stored;
    }
}

#[test]
fn the_base_url_a_connection_was_made_against_is_kept_by_state_updates() {
    let (_tmp, data) = data_dir();
    let store = SqliteStore::open(&data, None).expect("open");
    let mut made = state("main", "stored", 100);
    made.base_url = Some("http://127.0.0.1:7425/api/call".into());
    store
        .save("main", &[("api_key", &secret("1000-sandbox-key"))], &made)
        .expect("save");
    // Renewal bookkeeping does not know the URL and must not erase it.
    store
        .save_state(&state("main", "stored", 200))
        .expect("save_state");
    drop(store);
    let store = SqliteStore::open(&data, None).expect("reopen");
    let kept = store.state("main").expect("state").expect("a row");
    assert_eq!(kept.updated_at, 200);
    assert_eq!(
        kept.base_url.as_deref(),
        Some("http://127.0.0.1:7425/api/call")
    );
}

//! The credential cache with real sources (`cat`, `sh`) and a clock moved
//! by hand: no sleeps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::source::SourceContext;
use super::*;

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn context(clock: &ManualClock) -> SourceContext {
    let _ = rustls::crypto::ring::default_provider().install_default();
    SourceContext {
        connection: "main".into(),
        store: None,
        http: reqwest::Client::new(),
        clock: Arc::new(clock.clone()),
    }
}

fn credential(source: CredentialSource, clock: &ManualClock) -> Credential {
    Credential::new(
        source,
        context(clock),
        Duration::from_secs(60),
        crate::proxy::headers::API_KEY,
        String::new(),
    )
}

fn command_reading(path: &std::path::Path) -> CredentialSource {
    CredentialSource::Command {
        argv: vec!["cat".into(), path.display().to_string()],
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_key_near_its_expiry_is_renewed_before_use_and_not_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.json");
    let start = SystemTime::now();
    let clock = ManualClock::new(start);
    std::fs::write(
        &file,
        format!(
            r#"{{"api_key": "1-first", "expires_at": "{}"}}"#,
            rfc3339(start + Duration::from_secs(300))
        ),
    )
    .unwrap();
    let cred = credential(command_reading(&file), &clock);

    assert!(
        cred.key()
            .await
            .unwrap()
            .same_as(&ApiKey::parse("1-first").unwrap())
    );
    std::fs::write(
        &file,
        format!(
            r#"{{"api_key": "2-second", "expires_at": "{}"}}"#,
            rfc3339(start + Duration::from_secs(900))
        ),
    )
    .unwrap();

    // 300 s lifetime, 60 s margin plus at most 12 s jitter: still fresh at 200 s.
    clock.advance(Duration::from_secs(200));
    assert!(
        cred.key()
            .await
            .unwrap()
            .same_as(&ApiKey::parse("1-first").unwrap())
    );
    assert_eq!(cred.fetch_count(), 1);

    // Inside the margin (at 240 s): renewed before use.
    clock.advance(Duration::from_secs(40));
    assert!(
        cred.key()
            .await
            .unwrap()
            .same_as(&ApiKey::parse("2-second").unwrap())
    );
    assert_eq!(cred.fetch_count(), 2);
    assert_eq!(
        cred.status().expires_at,
        Some(SystemTime::from(
            time::OffsetDateTime::parse(
                &rfc3339(start + Duration::from_secs(900)),
                &time::format_description::well_known::Rfc3339
            )
            .unwrap()
        ))
    );
}

#[tokio::test]
async fn many_callers_of_a_stale_key_share_one_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.json");
    let clock = ManualClock::new(SystemTime::now());
    // A slow source, so that every caller arrives while it runs.
    let script = format!("sleep 0.3; cat {}", file.display());
    std::fs::write(&file, r#"{"api_key": "7-only"}"#).unwrap();
    let cred = Arc::new(credential(
        CredentialSource::Command {
            argv: vec!["sh".into(), "-c".into(), script],
            timeout: Duration::from_secs(5),
        },
        &clock,
    ));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let cred = cred.clone();
            tokio::spawn(async move { cred.key().await.map(|k| k.id().map(str::to_owned)) })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().as_deref(), Some("7"));
    }
    assert_eq!(cred.fetch_count(), 1);
}

#[tokio::test]
async fn a_rejected_key_is_fetched_again_once_and_an_unchanged_one_needs_attention() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "5-old\n").unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = credential(CredentialSource::File { path: file.clone() }, &clock);
    let old = cred.key().await.unwrap();

    assert!(matches!(
        cred.renew_after_rejection(&old).await.unwrap(),
        Renewal::Unchanged
    ));
    assert!(cred.status().needs_attention);
    let reads = cred.fetch_count();
    // Within the cool-down a second rejection does not ask the source again.
    assert!(matches!(
        cred.renew_after_rejection(&old).await.unwrap(),
        Renewal::Unchanged
    ));
    assert_eq!(cred.fetch_count(), reads);

    std::fs::write(&file, "5-newer-key\n").unwrap();
    clock.advance(Duration::from_secs(11));
    let Renewal::Changed(new) = cred.renew_after_rejection(&old).await.unwrap() else {
        panic!("the new key was not picked up")
    };
    assert!(new.same_as(&ApiKey::parse("5-newer-key").unwrap()));
    assert!(!cred.status().needs_attention, "a new key clears the mark");
    // Another request that saw the same rejection gets the new key without a read.
    let reads = cred.fetch_count();
    assert!(matches!(
        cred.renew_after_rejection(&old).await.unwrap(),
        Renewal::Changed(_)
    ));
    assert_eq!(cred.fetch_count(), reads);
}

#[tokio::test]
async fn a_key_file_that_changes_is_read_again_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "1-aaaa\n").unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = credential(CredentialSource::File { path: file.clone() }, &clock);
    assert_eq!(cred.key().await.unwrap().id(), Some("1"));
    assert_eq!(cred.key().await.unwrap().id(), Some("1"));
    assert_eq!(cred.fetch_count(), 1, "an unchanged file is not read again");
    std::fs::write(&file, "22-bbbbbbbb\n").unwrap();
    assert_eq!(cred.key().await.unwrap().id(), Some("22"));
}

#[tokio::test]
async fn a_failing_command_says_why_without_showing_its_output() {
    let clock = ManualClock::new(SystemTime::now());
    let cases = [
        (
            vec!["sh", "-c", "echo 'not json 9-SECRETVALUE'"],
            "not JSON",
        ),
        (vec!["sh", "-c", "echo oops >&2; exit 3"], "oops"),
        (vec!["sh", "-c", "sleep 5"], "did not finish"),
        (vec!["/no/such/program"], "cannot start"),
        (
            vec![
                "sh",
                "-c",
                r#"echo '{"api_key": "1-a", "expires_at": "tomorrow"}'"#,
            ],
            "RFC 3339",
        ),
    ];
    for (argv, expected) in cases {
        let source = CredentialSource::Command {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            timeout: Duration::from_secs(1),
        };
        let err = credential(source, &clock)
            .key()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{argv:?}: {err}");
        assert!(!err.contains("SECRETVALUE"), "{err}");
    }
}

#[test]
fn debug_of_sources_and_credentials_shows_no_secret() {
    let clock = ManualClock::new(SystemTime::now());
    let key = ApiKey::parse("12-TopSecretKeyMaterial").unwrap();
    let source = CredentialSource::Env {
        var: "DS24_API_KEY".into(),
        key: key.clone(),
    };
    let cred = credential(source.clone(), &clock);
    for shown in [
        format!("{source:?}"),
        format!("{cred:?}"),
        format!("{:?}", CredentialSource::Static(key)),
    ] {
        assert!(!shown.contains("TopSecret"), "{shown}");
    }
}

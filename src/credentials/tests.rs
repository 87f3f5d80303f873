//! The credential cache with real sources (`cat`, `sh`) and a clock moved
//! by hand: no sleeps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cache::{PROBE_INTERVAL, PROBE_LEASE};
use super::source::{self, SourceContext};
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

// ---------------------------------------------------------------------------
// A rejected key fails fast; one probe per interval.

/// A credential whose key `K` Digistore24 has just rejected, with the source
/// still yielding `K`: the connection is marked.
async fn rejected(cred: &Credential) -> ApiKey {
    let key = cred.key().await.unwrap();
    assert!(matches!(
        cred.renew_after_rejection(&key).await.unwrap(),
        Renewal::Unchanged
    ));
    assert!(cred.status().needs_attention);
    key
}

fn env_source(key: &str) -> CredentialSource {
    CredentialSource::Env {
        var: "DS24_API_KEY".into(),
        key: ApiKey::parse(key).unwrap(),
    }
}

async fn outcomes(cred: &Arc<Credential>, callers: usize) -> (usize, usize) {
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let cred = cred.clone();
            tokio::spawn(async move { cred.key().await })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CredentialError::Rejected { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (ok, refused)
}

#[tokio::test]
async fn a_rejected_key_fails_at_once_and_one_caller_per_interval_may_probe() {
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(env_source("5-revoked"), &clock));
    let key = rejected(&cred).await;

    let (ok, refused) = outcomes(&cred, 300).await;
    assert_eq!((ok, refused), (0, 300), "the rejected key was handed out");
    let err = cred.key().await.unwrap_err().to_string();
    assert!(err.contains("DS24_API_KEY"), "{err}");

    // Just short of the interval: still nobody.
    clock.advance(PROBE_INTERVAL - Duration::from_millis(1));
    assert_eq!(outcomes(&cred, 50).await, (0, 50));
    // At the interval: exactly one of many concurrent callers probes.
    clock.advance(Duration::from_millis(1));
    assert_eq!(outcomes(&cred, 50).await, (1, 49));

    // Digistore24 refuses the probe: the next one is a full interval later,
    // not merely after the lease.
    assert!(matches!(
        cred.renew_after_rejection(&key).await.unwrap(),
        Renewal::Unchanged
    ));
    clock.advance(PROBE_LEASE);
    assert_eq!(outcomes(&cred, 20).await, (0, 20));
    clock.advance(PROBE_INTERVAL - PROBE_LEASE);
    assert_eq!(outcomes(&cred, 20).await, (1, 19));

    // Digistore24 accepts the probe: the mark is gone and everyone gets the key.
    cred.mark_ok();
    assert!(!cred.status().needs_attention);
    assert_eq!(outcomes(&cred, 50).await, (50, 0));
}

#[tokio::test]
async fn a_probe_that_is_never_answered_frees_the_slot_after_the_lease() {
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(env_source("5-revoked"), &clock));
    rejected(&cred).await;
    clock.advance(PROBE_INTERVAL);
    // Taken by a caller that never reports back (`/readyz`, a cancelled or
    // failed request).
    assert!(cred.key().await.is_ok());
    assert_eq!(outcomes(&cred, 20).await, (0, 20));
    clock.advance(PROBE_LEASE);
    assert_eq!(outcomes(&cred, 20).await, (1, 19));
}

#[tokio::test]
async fn while_rejected_a_command_source_is_run_at_most_once_per_interval_and_a_new_key_ends_the_mark()
 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.json");
    std::fs::write(&file, r#"{"api_key": "5-revoked"}"#).unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(command_reading(&file), &clock));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    cred.record_renewals_in(metrics.clone());
    rejected(&cred).await;
    let runs = cred.fetch_count();

    assert_eq!(outcomes(&cred, 300).await, (0, 300));
    assert_eq!(cred.fetch_count(), runs, "the command ran while marked");

    // The probe runs it once and, with the same key, tries that key.
    clock.advance(PROBE_INTERVAL);
    assert_eq!(outcomes(&cred, 50).await, (1, 49));
    assert_eq!(cred.fetch_count(), runs + 1);
    // An unanswered probe frees the slot after the lease, but the source is
    // not asked again before the interval is over.
    clock.advance(PROBE_LEASE);
    assert_eq!(outcomes(&cred, 50).await, (1, 49));
    assert_eq!(cred.fetch_count(), runs + 1);

    // The command now prints another key: the next probe picks it up, and
    // from then on every caller uses it.
    std::fs::write(&file, r#"{"api_key": "6-fresh"}"#).unwrap();
    clock.advance(PROBE_INTERVAL);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cred = cred.clone();
            tokio::spawn(async move { cred.key().await })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        if let Ok(key) = task.await.unwrap() {
            assert_eq!(key.id(), Some("6"), "the rejected key was handed out");
            fresh += 1;
        }
    }
    assert!(fresh >= 1);
    assert_eq!(cred.fetch_count(), runs + 2);
    assert!(!cred.status().needs_attention, "a new key clears the mark");
    assert_eq!(outcomes(&cred, 50).await, (50, 0));
    assert_eq!(renewals(&metrics, "rejection", "ok"), 1.0);
}

#[tokio::test]
async fn while_rejected_a_new_key_in_the_file_is_used_by_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "5-revoked\n").unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(
        CredentialSource::File { path: file.clone() },
        &clock,
    ));
    rejected(&cred).await;
    let reads = cred.fetch_count();
    assert_eq!(outcomes(&cred, 100).await, (0, 100));
    assert_eq!(
        cred.fetch_count(),
        reads,
        "an unchanged file was read again"
    );

    std::fs::write(&file, "6-a-new-key\n").unwrap();
    // No time passes: the change is seen at once.
    let key = cred.key().await.unwrap();
    assert_eq!(key.id(), Some("6"));
    assert!(!cred.status().needs_attention);
    assert_eq!(outcomes(&cred, 50).await, (50, 0));
}

// ---------------------------------------------------------------------------
// A key file being rewritten in place.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_rewritten_in_place_is_never_used_empty_or_half_written() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    const KEYS: [&str; 2] = [
        "1000-FirstKeyAaaaaaaaaaaaaaaaaaaaaaaaa",
        "2000-SecondKeyBbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{}\n", KEYS[0])).unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(
        CredentialSource::File { path: file.clone() },
        &clock,
    ));
    assert!(cred.key().await.is_ok());

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (file, done) = (file.clone(), done.clone());
        std::thread::spawn(move || {
            for round in 1..=8 {
                let key = KEYS[round % 2];
                let (head, tail) = key.split_at(key.len() / 2);
                // In place: truncate, then write. Every other round the file
                // stays empty for a moment; in the others the first half of
                // the key (a well-formed key on its own) is there at once and
                // the rest follows later, as from a chunked writer.
                let mut f = std::fs::File::create(&file).unwrap();
                if round % 2 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                    f.write_all(format!("{key}\n").as_bytes()).unwrap();
                } else {
                    f.write_all(head.as_bytes()).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    f.write_all(format!("{tail}\n").as_bytes()).unwrap();
                }
                drop(f);
                // Rotations are far apart compared with the settle time.
                std::thread::sleep(Duration::from_millis(400));
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (cred, done) = (cred.clone(), done.clone());
            tokio::spawn(async move {
                let mut calls = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let key = cred.key().await.map_err(|e| e.to_string())?;
                    let id = key.id().unwrap_or_default().to_owned();
                    let known = KEYS.iter().any(|k| key.same_as(&ApiKey::parse(k).unwrap()));
                    if !known {
                        return Err(format!("a wrong key (id {id}) was used"));
                    }
                    calls += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(calls)
            })
        })
        .collect();
    for reader in readers {
        let calls = reader.await.unwrap().unwrap();
        assert!(calls > 10, "the reader barely ran: {calls} calls");
    }
    writer.join().unwrap();
    assert!(
        cred.key()
            .await
            .unwrap()
            .same_as(&ApiKey::parse(KEYS[0]).unwrap()),
        "the last rotation was missed"
    );
}

#[tokio::test]
async fn a_key_file_that_stays_empty_fails_after_a_bounded_wait_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "1-first\n").unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let cred = Arc::new(credential(
        CredentialSource::File { path: file.clone() },
        &clock,
    ));
    cred.key().await.unwrap();

    std::fs::write(&file, "\n").unwrap();
    let started = std::time::Instant::now();
    let err = cred.key().await.unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(err.contains("empty"), "{err}");
    assert!(
        waited >= source::FILE_SETTLE_MAX && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Everyone else is told at once instead of waiting for the same file again.
    let reads = cred.fetch_count();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cred = cred.clone();
            tokio::spawn(async move { cred.key().await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert!(
        started.elapsed() < source::FILE_SETTLE_MAX,
        "callers waited"
    );
    assert_eq!(cred.fetch_count(), reads);

    std::fs::write(&file, "2-second\n").unwrap();
    assert_eq!(cred.key().await.unwrap().id(), Some("2"));
}

// ---------------------------------------------------------------------------
// Renewals by expiry are counted.

/// The value of `ds24_proxy_credential_renewals_total` for connection `main`.
fn renewals(metrics: &crate::metrics::Metrics, trigger: &str, result: &str) -> f64 {
    let labels = [
        "connection=\"main\"".to_owned(),
        format!("trigger=\"{trigger}\""),
        format!("result=\"{result}\""),
    ];
    metrics
        .render()
        .lines()
        .find(|l| {
            l.starts_with("ds24_proxy_credential_renewals_total{")
                && labels.iter().all(|label| l.contains(label.as_str()))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_renewal_by_expiry_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.json");
    let start = SystemTime::now();
    let clock = ManualClock::new(start);
    let reply = |key: &str, lives: u64| {
        format!(
            r#"{{"api_key": "{key}", "expires_at": "{}"}}"#,
            rfc3339(start + Duration::from_secs(lives))
        )
    };
    std::fs::write(&file, reply("1-first", 300)).unwrap();
    let cred = credential(command_reading(&file), &clock);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    cred.record_renewals_in(metrics.clone());

    cred.key().await.unwrap();
    assert_eq!(
        renewals(&metrics, "expiry", "ok"),
        0.0,
        "the first read is not a renewal"
    );
    std::fs::write(&file, reply("2-second", 900)).unwrap();
    clock.advance(Duration::from_secs(240));
    assert_eq!(cred.key().await.unwrap().id(), Some("2"));
    assert_eq!(renewals(&metrics, "expiry", "ok"), 1.0);
    assert_eq!(cred.key().await.unwrap().id(), Some("2"));
    assert_eq!(renewals(&metrics, "expiry", "ok"), 1.0, "counted once");

    // A renewal that fails is counted as an error (the old key stays in use).
    std::fs::write(&file, "not json").unwrap();
    clock.advance(Duration::from_secs(600));
    assert_eq!(cred.key().await.unwrap().id(), Some("2"));
    assert_eq!(renewals(&metrics, "expiry", "error"), 1.0);
    assert_eq!(renewals(&metrics, "rejection", "ok"), 0.0);
}

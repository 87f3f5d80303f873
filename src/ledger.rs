//! The record of write and money calls: idempotency keys (a repeated call
//! with the same `Idempotency-Key` is answered from the record instead of
//! reaching Digistore24 again) and the audit log (who called what, when,
//! with what outcome, and a digest of the parameters, never the
//! parameters).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::actions::Effect;
use crate::app::AppState;
use crate::call::record::with_heartbeat;
pub use crate::call::record::{LEASE, Record, Recorded, SendGate};
use crate::call::{CallError, Cause};
use crate::store::{AuditEntry, Begin, Store};

/// The header clients send.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Largest reply kept in a record; write replies are a few hundred bytes.
/// A write's reply is read whole (up to this) before it is passed on.
pub const MAX_RECORDED_REPLY: usize = 4 * 1024 * 1024;
/// How long a repeat waits for the first call of the same key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(60);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Hex SHA-256 of the parts, each length-prefixed so that moving a byte
/// from one part to the next changes the digest.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// One write or money call, for the ledger.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The connection used.
    pub connection: String,
    /// The caller's identity.
    pub caller: Arc<str>,
    /// The Digistore24 function.
    pub function: String,
    /// Its effect (only write and money calls are recorded).
    pub effect: Effect,
    /// The request id.
    pub request_id: String,
    /// Digest of the parameters.
    pub params_digest: String,
    /// Digest of the whole request, for idempotency.
    pub fingerprint: String,
}

/// The proxy's error reply for a failed call, as the HTTP edge renders it
/// (the ledger records it, and names it in the audit log).
#[derive(Debug, Clone)]
pub struct ErrorReply {
    /// The error's `type` (`outcome_unknown`, `upstream_error`, …).
    pub kind: &'static str,
    /// The rendered reply.
    pub reply: Recorded,
}

/// What a guarded call hands back.
#[derive(Debug)]
pub enum Guarded<T> {
    /// The call ran now.
    Fresh(T),
    /// A repeat of a recorded call: its reply, nothing sent.
    Replayed(Recorded),
}

/// Why the ledger did not run a call (or the call's own failure).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The header's value is unusable.
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)")]
    InvalidKey,
    /// The key was used for another request.
    #[error(
        "this Idempotency-Key was used for a different request; use a new key for a new request"
    )]
    KeyReused,
    /// The first call with the key is still running.
    #[error("the first request with this Idempotency-Key is still running; try again later")]
    StillRunning,
    /// The record could not be read or written; nothing was sent.
    #[error(
        "the call could not be recorded, so it was not sent ({0}); check DS24_PROXY_DATA_DIR and DS24_PROXY_MASTER_KEY"
    )]
    Store(String),
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl LedgerError {
    /// The name the audit log gives this outcome.
    fn label(&self) -> &'static str {
        match self {
            Self::InvalidKey => "bad_request",
            Self::KeyReused | Self::StillRunning => "idempotency_key_reused",
            Self::Store(_) => "not_recorded",
            Self::Call(_) => "failed",
        }
    }
}

/// Runs `call` under the idempotency key (if any) and writes the audit
/// entry. `render` is the HTTP edge's error reply for a failed call: what a
/// repeat with the same key is answered when the call may have run.
///
/// # Errors
/// [`LedgerError`]: a key reused for another request, still running, the
/// store, or the call's own failure.
pub async fn guard<T, F, Fut>(
    state: &AppState,
    entry: Entry,
    key: Option<&str>,
    render: impl Fn(&CallError) -> ErrorReply,
    call: F,
) -> Result<Guarded<T>, LedgerError>
where
    T: Record,
    F: FnOnce(SendGate) -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let store = state
        .ledger()
        .await
        .map_err(|e| LedgerError::Store(e.to_string()))?;
    let audit = AuditEntry {
        id: 0,
        at: now(),
        connection: entry.connection.clone(),
        token: entry.caller.to_string(),
        function: entry.function.clone(),
        effect: if entry.effect == Effect::Money {
            "money"
        } else {
            "write"
        }
        .to_owned(),
        request_id: entry.request_id.clone(),
        outcome: crate::store::AUDIT_IN_PROGRESS.to_owned(),
        params_digest: entry.params_digest.clone(),
    };
    let named = key.map(|k| (entry.connection.clone(), k.to_owned()));
    let gate = SendGate::new(store.clone(), audit.clone(), named);
    let result = match key {
        None => with_heartbeat(&gate, call(gate.clone()))
            .await
            .map(Guarded::Fresh)
            .map_err(LedgerError::from),
        Some(key) => idempotent(state, &store, &entry, key, &render, &gate, call).await,
    };
    let outcome = match &result {
        Ok(Guarded::Replayed(_)) => "replayed".to_owned(),
        Ok(Guarded::Fresh(answer)) => answer.status().to_string(),
        Err(LedgerError::Call(e)) => {
            let rendered = render(e);
            format!("{} {}", rendered.kind, rendered.reply.status)
        }
        Err(e) => e.label().to_owned(),
    };
    // A call that got as far as sending has its row already (written
    // before it left); one that ended before gets its row now.
    let written = match gate.audit_id() {
        Some(id) => blocking(&store, move |s| s.complete_audit(id, &outcome)).await,
        None => {
            let audit = AuditEntry { outcome, ..audit };
            blocking(&store, move |s| s.append_audit(&audit).map(|_| ())).await
        }
    };
    if let Err(e) = written {
        tracing::error!(error = %e, function = %entry.function, "could not write the audit entry");
    }
    result
}

/// Settles the records of calls whose process died (leases lapsed): a key
/// that was never sent is freed; one that may have been sent answers
/// `unknown` (the edge's `outcome_unknown` reply); an audit row left in
/// progress says `outcome_unknown`. Run at start and then every minute.
///
/// # Errors
/// When the store cannot be written.
pub async fn settle(store: &Arc<dyn Store>, unknown: &Recorded) -> Result<(), LedgerError> {
    let unknown = unknown.clone();
    let settled = blocking(store, move |s| {
        s.settle_expired(
            now(),
            unknown.status,
            unknown
                .content_type
                .as_deref()
                .unwrap_or("application/json"),
            &unknown.body,
        )
    })
    .await?;
    if settled != crate::store::Settled::default() {
        tracing::warn!(
            freed = settled.freed,
            outcome_unknown = settled.unknown,
            audit_rows = settled.audits,
            "settled the calls of a process that stopped mid-call"
        );
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, LedgerError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| LedgerError::Store(e.to_string()))?
        .map_err(|e| LedgerError::Store(e.to_string()))
}

fn replay(record: crate::store::IdempotencyRecord) -> Recorded {
    Recorded {
        status: record.status.unwrap_or(200),
        content_type: record.content_type,
        body: record.body.unwrap_or_default().into(),
    }
}

async fn idempotent<T, F, Fut>(
    state: &AppState,
    store: &Arc<dyn Store>,
    entry: &Entry,
    key: &str,
    render: &impl Fn(&CallError) -> ErrorReply,
    gate: &SendGate,
    call: F,
) -> Result<Guarded<T>, LedgerError>
where
    T: Record,
    F: FnOnce(SendGate) -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(LedgerError::InvalidKey);
    }
    let (conn, k, fp) = (
        entry.connection.clone(),
        key.to_owned(),
        entry.fingerprint.clone(),
    );
    let ttl = state.config().idempotency_ttl.as_secs() as i64;
    let waited_since = std::time::Instant::now();
    loop {
        let (c, kk, f) = (conn.clone(), k.clone(), fp.clone());
        let lease = LEASE.as_secs() as i64;
        let begun = blocking(store, move |s| {
            s.begin_idempotent(&c, &kk, &f, now(), ttl, lease)
        })
        .await?;
        match begun {
            Begin::Started => break,
            Begin::Done(record) => {
                state.metrics().idempotent_replay(&entry.connection);
                return Ok(Guarded::Replayed(replay(record)));
            }
            Begin::Mismatch(_) => return Err(LedgerError::KeyReused),
            Begin::InProgress(_) if waited_since.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Begin::InProgress(_) => return Err(LedgerError::StillRunning),
            Begin::Orphaned(_) => {
                // The first try was cut off (its process died) after it may
                // have reached Digistore24: never send it again.
                let cut_off = CallError::new(&entry.function, entry.effect, Cause::CutOff);
                let recorded = render(&cut_off).reply;
                let (c, kk, kept) = (conn.clone(), k.clone(), recorded.clone());
                blocking(store, move |s| {
                    s.complete_idempotent(
                        &c,
                        &kk,
                        kept.status,
                        kept.content_type.as_deref(),
                        &kept.body,
                    )
                })
                .await?;
                return Ok(Guarded::Replayed(recorded));
            }
        }
    }
    let result = with_heartbeat(gate, call(gate.clone())).await;
    // What is recorded, and whether the key is freed, is read from one
    // fact: whether the call may have been carried out.
    let (delivery, recorded) = match &result {
        Ok(answer) => (
            answer.delivery(),
            answer.recorded().unwrap_or_else(|| {
                // Made, but its reply is too large to keep: a repeat is told
                // so (as JSON), and sends nothing.
                let too_large = CallError::new(
                    &entry.function,
                    entry.effect,
                    Cause::ReplyTooLarge {
                        limit: MAX_RECORDED_REPLY,
                    },
                );
                render(&too_large).reply
            }),
        ),
        Err(e) => (e.delivery(), render(e).reply),
    };
    let lost_claim = matches!(&result, Err(e) if matches!(e.cause, Cause::Unrecorded(_)));
    if lost_claim {
        // The record could not be marked (the store failed, or the claim
        // lapsed and another caller holds it now): leave it alone; its
        // lease settles it.
    } else if delivery.frees_idempotency_key() {
        // Nothing was done: free the key for a later try.
        let (c, kk) = (conn, k);
        if let Err(e) = blocking(store, move |s| s.abandon_idempotent(&c, &kk)).await {
            tracing::error!(error = %e, "could not free an Idempotency-Key");
        }
    } else {
        // The call may have run: the record keeps this answer, so a repeat
        // with the same key is told the same and sends nothing.
        let (c, kk) = (conn, k);
        if let Err(e) = blocking(store, move |s| {
            s.complete_idempotent(
                &c,
                &kk,
                recorded.status,
                recorded.content_type.as_deref(),
                &recorded.body,
            )
        })
        .await
        {
            // Its answer still goes to the caller (the key stays taken).
            tracing::error!(error = %e, "could not record the reply of an idempotent call");
        }
    }
    result.map(Guarded::Fresh).map_err(LedgerError::from)
}

/// Keeps the records tidy while the proxy runs: every minute the calls of
/// a process that stopped mid-call are settled (see [`settle`]; the first
/// time at start), and every hour expired idempotency records are deleted
/// (expired records are ignored anyway, so the store does not grow with
/// every key ever sent). `unknown` is the edge's `outcome_unknown` reply.
pub async fn maintain(state: AppState, unknown: Recorded) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    for round in 0u64.. {
        tick.tick().await;
        let Some(store) = state.ledger_if_open() else {
            continue;
        };
        if let Err(e) = settle(&store, &unknown).await {
            tracing::warn!(error = %e, "could not settle the records of stopped calls");
        }
        if round % 60 != 59 {
            continue;
        }
        match tokio::task::spawn_blocking(move || store.purge_expired_idempotency(now())).await {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(records = n, "expired idempotency records deleted");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not delete expired idempotency records");
            }
            _ => {}
        }
    }
}

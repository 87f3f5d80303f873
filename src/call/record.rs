//! The ledger's stage inside the call pipeline: what a call's answer
//! records ([`Record`]), and the gate the exchange passes before an
//! attempt's bytes may leave ([`SendGate`]), which writes the audit row and
//! marks the `Idempotency-Key` "may have been sent" first. The ledger
//! (`crate::ledger`) builds the gate; the pipeline only calls it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Delivery;
use crate::store::{AuditEntry, Store, StoreError};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| format!("the store task failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// A reply as the ledger records and replays it: the exact upstream bytes,
/// or the proxy's JSON error.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// Content type, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// A call's answer that the ledger can record.
pub trait Record {
    /// Its HTTP status.
    fn status(&self) -> u16;
    /// The reply to keep for a repeat with the same `Idempotency-Key`;
    /// `None` for one too large to keep (it streams to the caller).
    fn recorded(&self) -> Option<Recorded>;
    /// Whether Digistore24 did something (see [`Delivery`]).
    fn delivery(&self) -> Delivery;
}

impl Record for Recorded {
    fn status(&self) -> u16 {
        self.status
    }
    fn recorded(&self) -> Option<Recorded> {
        Some(self.clone())
    }
    fn delivery(&self) -> Delivery {
        delivery_of_status(self.status)
    }
}

/// "Too many requests" is no outcome: nothing was done.
pub fn delivery_of_status(status: u16) -> Delivery {
    if status == 429 {
        Delivery::Declined
    } else {
        Delivery::Answered
    }
}

/// How long a record of a running call stays claimed without news from
/// its process; the ledger renews it every third of this while the call
/// runs. When a process dies, its calls are settled this long after.
pub const LEASE: Duration = Duration::from_secs(30);

/// Tells the ledger, before an attempt's bytes may leave the proxy, that a
/// write is about to be sent: the first time, its audit row is written (in
/// progress) and its `Idempotency-Key` record marked "may have been sent",
/// so a process that dies mid-call leaves a record that says so. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct SendGate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    store: Arc<dyn Store>,
    audit: AuditEntry,
    key: Option<(String, String)>,
    /// The audit row, once written.
    opened: tokio::sync::OnceCell<i64>,
}

impl SendGate {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        audit: AuditEntry,
        key: Option<(String, String)>,
    ) -> Self {
        Self {
            inner: Arc::new(GateInner {
                store,
                audit,
                key,
                opened: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Called by the exchange before each attempt is sent; writes the
    /// records the first time only.
    ///
    /// # Errors
    /// When the records cannot be written: then nothing may be sent.
    pub async fn before_send(&self) -> Result<(), String> {
        let inner = &self.inner;
        inner
            .opened
            .get_or_try_init(|| async {
                let (audit, key) = (inner.audit.clone(), inner.key.clone());
                blocking(&inner.store, move |s| {
                    let until = now() + LEASE.as_secs() as i64;
                    if let Some((connection, key)) = &key {
                        s.mark_idempotent_sending(connection, key, now(), until)?;
                    }
                    s.begin_audit(&audit, until)
                })
                .await
            })
            .await
            .map(|_| ())
    }

    /// The audit row, if the call got as far as sending.
    pub(crate) fn audit_id(&self) -> Option<i64> {
        self.inner.opened.get().copied()
    }

    /// Renews the leases of a call that is still running.
    async fn heartbeat(&self) {
        let (id, key) = (self.audit_id(), self.inner.key.clone());
        let renewed = blocking(&self.inner.store, move |s| {
            let until = now() + LEASE.as_secs() as i64;
            if let Some((connection, key)) = &key {
                s.extend_idempotent_lease(connection, key, until)?;
            }
            if let Some(id) = id {
                s.extend_audit_lease(id, until)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "could not renew the lease of a running call");
        }
    }
}

/// Runs `call`, renewing the gate's leases while it runs.
pub(crate) async fn with_heartbeat<T>(gate: &SendGate, call: impl Future<Output = T>) -> T {
    let mut call = std::pin::pin!(call);
    let mut tick = tokio::time::interval(LEASE / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut call => return out,
            _ = tick.tick() => gate.heartbeat().await,
        }
    }
}

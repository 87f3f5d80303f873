//! [`Credential`]: a connection's key, cached with its expiry.
//!
//! - A key within a margin (plus jitter, so many connections do not renew in
//!   the same second) of its expiry is renewed before use.
//! - One renewal at a time: however many requests find the key stale or
//!   rejected at the same moment, the source is asked once and all of them
//!   wait for that answer (a tokio mutex held across the fetch).
//! - After a rejection the source is asked again once; if it yields the same
//!   key the connection is marked as needing attention until a key works.
//! - While it is marked, [`Credential::key`] fails at once with
//!   [`CredentialError::Rejected`] instead of handing out the key Digistore24
//!   refused, except for one probe now and then (see [`PROBE_INTERVAL`]) that
//!   finds out whether the key works again; a new key from the source ends
//!   the mark at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use rand::Rng;

use super::source::{self, Fetched, FileStamp, SourceContext};
use super::{ApiKey, CredentialError, CredentialSource, oauth2};
use crate::metrics::Metrics;
use crate::store::ConnectionState;

/// After a rejection with an unchanged key, the source is asked again at
/// most this often: a revoked key must not turn every request into a call
/// to a secret manager or token endpoint.
const REJECTION_COOLDOWN: Duration = Duration::from_secs(10);

/// While a connection is marked as needing attention (its key was rejected
/// and the source yields the same one), requests fail at once with
/// [`CredentialError::Rejected`] and nothing is sent; one caller at most
/// this long after the last rejection is let through with the key (a probe),
/// so that the mark clears when Digistore24 accepts the key again. The same
/// caller first asks the source for a new key, so a source that is not
/// watched (`command`, `stored`, `oauth2`) is also read at most this often.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// A probe whose answer never comes back (the request failed or was
/// cancelled, or the key was only looked at, as `/readyz` does) frees the
/// probe slot after this long, so that such a caller cannot keep the real
/// requests from probing. A probe that Digistore24 refuses pushes the next one
/// out by [`PROBE_INTERVAL`].
pub const PROBE_LEASE: Duration = Duration::from_secs(1);

/// A key file that could not be used is not read again for this long unless
/// it changes: the reads wait for a file being rewritten (up to
/// [`source::FILE_SETTLE_MAX`]) under the renewal lock, and every caller
/// repeating that wait for the same broken file would queue them all.
const FAILED_READ_HOLD: Duration = Duration::from_secs(1);

/// How a renewal after a rejection went.
#[derive(Debug, Clone)]
pub enum Renewal {
    /// The source has a different key (or another request already got one).
    Changed(ApiKey),
    /// The source still yields the rejected key.
    Unchanged,
}

/// What the status endpoints and commands show. Never a secret.
#[derive(Debug, Clone, Default)]
pub struct CredentialStatus {
    /// A rejected key did not change, or the source fails.
    pub needs_attention: bool,
    /// The last problem, if any.
    pub last_error: Option<String>,
    /// When the source last yielded a key.
    pub last_renewal_at: Option<SystemTime>,
    /// When the current key expires, if known.
    pub expires_at: Option<SystemTime>,
    /// Digits before the dash of the current key.
    pub key_id: Option<String>,
    /// When the source was last asked.
    last_attempt_at: Option<SystemTime>,
}

#[derive(Debug, Clone)]
struct Cached {
    key: ApiKey,
    renew_at: Option<SystemTime>,
    file_stamp: Option<FileStamp>,
}

/// Why the cached key cannot be used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// No key has been read yet.
    First,
    /// The key is within its renewal margin.
    Expiring,
    /// The key file changed.
    FileChanged,
}

/// When the rejected key was last refused and last let through.
#[derive(Debug, Default)]
struct Probe {
    rejected_at: Option<SystemTime>,
    probed_at: Option<SystemTime>,
}

/// A read of the key file that failed, kept so that callers do not all read
/// the same broken file again.
#[derive(Debug)]
struct FailedRead {
    stamp: Option<FileStamp>,
    at: SystemTime,
    error: CredentialError,
}

/// A connection's credential.
#[derive(Debug)]
pub struct Credential {
    source: CredentialSource,
    ctx: SourceContext,
    margin: Duration,
    header: HeaderName,
    prefix: String,
    current: RwLock<Option<Cached>>,
    renewing: tokio::sync::Mutex<()>,
    status: Mutex<CredentialStatus>,
    attention: AtomicBool,
    fetches: AtomicU64,
    probe: Mutex<Probe>,
    failed_read: Mutex<Option<FailedRead>>,
    metrics: OnceLock<Arc<Metrics>>,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Credential {
    /// A credential reading from `source`, renewed `margin` (plus up to a
    /// fifth of it as jitter) before expiry; the key goes into `header`
    /// after `prefix`.
    pub fn new(
        source: CredentialSource,
        ctx: SourceContext,
        margin: Duration,
        header: HeaderName,
        prefix: String,
    ) -> Self {
        Self {
            source,
            ctx,
            margin,
            header,
            prefix,
            current: RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
            status: Mutex::new(CredentialStatus::default()),
            attention: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            probe: Mutex::new(Probe::default()),
            failed_read: Mutex::new(None),
            metrics: OnceLock::new(),
        }
    }

    /// Counts the renewals this credential does by itself in `metrics`
    /// (`ds24_proxy_credential_renewals_total`): `trigger="expiry"` for a
    /// key renewed before its expiry, and `trigger="rejection"` for a new key
    /// found while the connection is marked as needing attention. (The
    /// renewal right after a rejection is counted by the exchange that saw
    /// it.) The first call wins; later ones are ignored.
    pub fn record_renewals_in(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The source.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// How often the source has been asked (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The current status.
    pub fn status(&self) -> CredentialStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `key` into `headers` under the configured header.
    pub fn apply(&self, headers: &mut HeaderMap, key: &ApiKey) {
        headers.insert(
            self.header.clone(),
            key.header_value_with_prefix(&self.prefix),
        );
    }

    /// The header the key travels in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The key to use now, renewing it first when it is near expiry or its
    /// file changed.
    ///
    /// While the connection is marked as needing attention (Digistore24
    /// rejected the key and the source yielded the same one), this fails at
    /// once with [`CredentialError::Rejected`], so that the known-rejected
    /// key is not sent again, with two exceptions:
    ///
    /// - as soon as the source has a different key, that key is returned
    ///   (a key file is looked at on every call, as always; other sources
    ///   are asked by the probe below, at most every [`PROBE_INTERVAL`]);
    /// - one caller at a time, [`PROBE_INTERVAL`] after the last rejection,
    ///   gets the rejected key to try it once more (a probe); if Digistore24
    ///   accepts it, [`Credential::mark_ok`] ends the mark. Concurrent
    ///   callers do not probe: they get the error.
    ///
    /// # Errors
    /// When no usable key can be had, or the key is known to be rejected.
    pub async fn key(&self) -> Result<ApiKey, CredentialError> {
        if self.attention.load(Ordering::Relaxed) {
            return self.key_while_rejected().await;
        }
        self.usable_key().await
    }

    /// The cached key, renewed first when it is stale.
    async fn usable_key(&self) -> Result<ApiKey, CredentialError> {
        if let Ok(key) = self.fresh() {
            return Ok(key);
        }
        if let Some(error) = self.failed_read_again() {
            return Err(error);
        }
        let _one_at_a_time = self.renewing.lock().await;
        let stale = match self.fresh() {
            Ok(key) => return Ok(key),
            Err(stale) => stale,
        };
        if let Some(error) = self.failed_read_again() {
            return Err(error);
        }
        self.renew_locked(stale).await
    }

    async fn key_while_rejected(&self) -> Result<ApiKey, CredentialError> {
        if matches!(self.source, CredentialSource::File { .. }) {
            // Cheap (one stat, a read only when the file changed): a key
            // written into the file is used by the very next request.
            let key = self.usable_key().await?;
            if !self.attention.load(Ordering::Relaxed) {
                return Ok(key);
            }
        }
        if !self.take_probe() {
            return Err(self.rejected_error());
        }
        self.probe().await
    }

    /// Claims the probe slot: true for at most one caller per
    /// [`PROBE_INTERVAL`] after the last rejection (per [`PROBE_LEASE`]
    /// while no probe was answered).
    fn take_probe(&self) -> bool {
        let now = self.ctx.clock.now();
        // A clock that went back counts as time passed: better one probe too
        // many than a connection that stays blocked until the clock catches up.
        let passed = |since: Option<SystemTime>, wait: Duration| {
            since.is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= wait))
        };
        let mut probe = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        if passed(probe.rejected_at, PROBE_INTERVAL) && passed(probe.probed_at, PROBE_LEASE) {
            probe.probed_at = Some(now);
            true
        } else {
            false
        }
    }

    /// The probe: asks the source for a different key (at most every
    /// [`PROBE_INTERVAL`]) and returns it, or else the rejected key to try.
    async fn probe(&self) -> Result<ApiKey, CredentialError> {
        let guard = self.renewing.lock().await;
        let Some(current) = self.cached() else {
            drop(guard);
            return self.usable_key().await;
        };
        let expiring = current
            .renew_at
            .is_some_and(|at| self.ctx.clock.now() >= at);
        let changeable = !matches!(
            self.source,
            CredentialSource::Env { .. } | CredentialSource::Static(_) | CredentialSource::Missing
        );
        if changeable && (expiring || self.source_read_due()) {
            let trigger = if expiring { "expiry" } else { "rejection" };
            let stamp = self.file_stamp_now();
            match self.fetch().await {
                Ok(fetched) => {
                    self.clear_failed_read();
                    let key = self.install(fetched);
                    let changed = !key.same_as(&current.key);
                    if changed || expiring {
                        self.record_renewal(trigger, true);
                    }
                    if changed {
                        return Ok(key);
                    }
                }
                Err(e) => {
                    self.record_renewal(trigger, false);
                    self.note_error(&e.to_string(), false);
                    if matches!(self.source, CredentialSource::File { .. }) {
                        self.remember_failed_read(stamp, &e);
                        return Err(e);
                    }
                }
            }
        }
        tracing::info!(connection = %self.ctx.connection, "letting one request try the rejected key again");
        Ok(current.key)
    }

    /// True when the source was last asked [`PROBE_INTERVAL`] ago or longer.
    fn source_read_due(&self) -> bool {
        let now = self.ctx.clock.now();
        self.status()
            .last_attempt_at
            .is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= PROBE_INTERVAL))
    }

    fn cached(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fresh(&self) -> Result<ApiKey, Stale> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let cached = current.as_ref().ok_or(Stale::First)?;
        if cached.renew_at.is_some_and(|at| self.ctx.clock.now() >= at) {
            return Err(Stale::Expiring);
        }
        if let CredentialSource::File { path } = &self.source
            && source::file_stamp(path) != cached.file_stamp
        {
            return Err(Stale::FileChanged);
        }
        Ok(cached.key.clone())
    }

    /// For a file source, the file's stamp now (taken before a read, so that
    /// a change during the read is noticed later).
    fn file_stamp_now(&self) -> Option<FileStamp> {
        match &self.source {
            CredentialSource::File { path } => source::file_stamp(path),
            _ => None,
        }
    }

    /// The error of the last failed read of the key file, when the file has
    /// not changed since and the failure is recent.
    fn failed_read_again(&self) -> Option<CredentialError> {
        let CredentialSource::File { path } = &self.source else {
            return None;
        };
        let failed = self.failed_read.lock().unwrap_or_else(|p| p.into_inner());
        let failed = failed.as_ref()?;
        let recent = self
            .ctx
            .clock
            .now()
            .duration_since(failed.at)
            .is_ok_and(|d| d < FAILED_READ_HOLD);
        (recent && failed.stamp == source::file_stamp(path)).then(|| failed.error.clone())
    }

    fn remember_failed_read(&self, stamp: Option<FileStamp>, error: &CredentialError) {
        *self.failed_read.lock().unwrap_or_else(|p| p.into_inner()) = Some(FailedRead {
            stamp,
            at: self.ctx.clock.now(),
            error: error.clone(),
        });
    }

    fn clear_failed_read(&self) {
        let mut failed = self.failed_read.lock().unwrap_or_else(|p| p.into_inner());
        if failed.is_some() {
            *failed = None;
        }
    }

    fn record_renewal(&self, trigger: &str, ok: bool) {
        if let Some(metrics) = self.metrics.get() {
            metrics.renewal(&self.ctx.connection, trigger, ok);
        }
    }

    async fn renew_locked(&self, stale: Stale) -> Result<ApiKey, CredentialError> {
        if stale == Stale::First
            && matches!(self.source, CredentialSource::OAuth2(_))
            && let Some(kept) = oauth2::stored_access_token(&self.ctx).await.filter(|f| {
                f.expires_at
                    .is_some_and(|at| at > self.ctx.clock.now() + self.margin)
            })
        {
            return Ok(self.install(kept));
        }
        let stamp = self.file_stamp_now();
        let fetched = self.fetch().await;
        if stale == Stale::Expiring {
            self.record_renewal("expiry", fetched.is_ok());
        }
        match fetched {
            Ok(fetched) => {
                self.clear_failed_read();
                Ok(self.install(fetched))
            }
            Err(e) => {
                self.note_error(&e.to_string(), false);
                if matches!(self.source, CredentialSource::File { .. }) {
                    self.remember_failed_read(stamp, &e);
                    return Err(e);
                }
                // A failed early renewal keeps the old key while it still works.
                match self.cached() {
                    Some(cached) => {
                        tracing::warn!(connection = %self.ctx.connection, error = %e, "credential renewal failed; using the current key until it expires");
                        Ok(cached.key)
                    }
                    None => Err(e),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Fetched, CredentialError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_attempt_at = Some(self.ctx.clock.now());
        source::fetch(&self.source, &self.ctx).await
    }

    fn install(&self, fetched: Fetched) -> ApiKey {
        let now = self.ctx.clock.now();
        let renew_at = fetched.expires_at.map(|expires| {
            let jitter = rand::rng().random_range(0..=self.margin.as_millis() as u64 / 5);
            let early = self.margin + Duration::from_millis(jitter);
            match expires.checked_sub(early) {
                Some(at) if at > now => at,
                // Shorter-lived than the margin: renew halfway through.
                _ => now + expires.duration_since(now).unwrap_or_default() / 2,
            }
        });
        let key = fetched.key.clone();
        let changed = {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            let changed = current.as_ref().is_none_or(|c| !c.key.same_as(&key));
            *current = Some(Cached {
                key: fetched.key,
                renew_at,
                file_stamp: fetched.file_stamp,
            });
            changed
        };
        {
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            status.last_renewal_at = Some(now);
            status.expires_at = fetched.expires_at;
            status.key_id = key.id().map(str::to_owned);
            if changed {
                status.needs_attention = false;
                status.last_error = None;
                self.attention.store(false, Ordering::Relaxed);
                *self.probe.lock().unwrap_or_else(|p| p.into_inner()) = Probe::default();
            }
        }
        if changed {
            tracing::info!(connection = %self.ctx.connection, key.id = key.id().unwrap_or("?"), "credential loaded");
        }
        self.persist();
        key
    }

    /// Called after Digistore24 rejected `rejected`: asks the source once
    /// (shared by every request that saw the rejection).
    ///
    /// # Errors
    /// When the source fails.
    pub async fn renew_after_rejection(
        &self,
        rejected: &ApiKey,
    ) -> Result<Renewal, CredentialError> {
        let _one_at_a_time = self.renewing.lock().await;
        if let Some(current) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && !current.key.same_as(rejected)
        {
            return Ok(Renewal::Changed(current.key.clone()));
        }
        let recently = self.status().last_attempt_at.is_some_and(|t| {
            self.ctx.clock.now().duration_since(t).unwrap_or_default() < REJECTION_COOLDOWN
        });
        if self.attention.load(Ordering::Relaxed) && recently {
            self.note_rejection();
            return Ok(Renewal::Unchanged);
        }
        let fetched = match self.fetch().await {
            Ok(f) => f,
            Err(e) => {
                self.note_error(&e.to_string(), true);
                return Err(e);
            }
        };
        if fetched.key.same_as(rejected) {
            self.note_error(
                "Digistore24 rejected the key and the source yields the same key",
                true,
            );
            if let Some(current) = self
                .current
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                current.file_stamp = fetched.file_stamp;
            }
            return Ok(Renewal::Unchanged);
        }
        Ok(Renewal::Changed(self.install(fetched)))
    }

    /// Called when a request with the current key succeeded: clears the
    /// attention mark (cheap when there is none).
    pub fn mark_ok(&self) {
        if self.attention.swap(false, Ordering::Relaxed) {
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            status.needs_attention = false;
            status.last_error = None;
            drop(status);
            *self.probe.lock().unwrap_or_else(|p| p.into_inner()) = Probe::default();
            tracing::info!(connection = %self.ctx.connection, "credential works again");
            self.persist();
        }
    }

    /// Marks the connection as needing attention: a renewed key was refused
    /// as well.
    pub fn mark_rejected(&self) {
        self.note_error("Digistore24 rejected the renewed key as well", true);
    }

    /// The rejection error for this source, with the fix that fits it.
    pub fn rejected_error(&self) -> CredentialError {
        let fix = match &self.source {
            CredentialSource::Env { var, .. } => format!("set {var} to a valid key and restart"),
            CredentialSource::File { path } => format!("write a valid key into {}", path.display()),
            CredentialSource::Command { .. } => "make the command print a valid key".to_owned(),
            CredentialSource::Stored => format!(
                "run `ds24-proxy connect --name {}` again",
                self.ctx.connection
            ),
            CredentialSource::OAuth2(_) => "check the token broker".to_owned(),
            CredentialSource::Static(_) | CredentialSource::Missing => {
                "configure a valid key".to_owned()
            }
        };
        CredentialError::Rejected {
            connection: self.ctx.connection.clone(),
            kind: self.source.kind(),
            fix,
        }
    }

    fn note_error(&self, error: &str, attention: bool) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.last_error = Some(error.to_owned());
        if attention {
            status.needs_attention = true;
            self.attention.store(true, Ordering::Relaxed);
        }
        drop(status);
        if attention {
            self.note_rejection();
        }
        if attention {
            tracing::warn!(connection = %self.ctx.connection, error, "connection needs attention");
        }
        self.persist();
    }

    /// The current key was refused (again): the next probe waits a full
    /// [`PROBE_INTERVAL`].
    fn note_rejection(&self) {
        self.probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rejected_at = Some(self.ctx.clock.now());
    }

    /// Writes the status to the store, when there is one, off the request path.
    ///
    /// Only for a source that keeps its secret in the store (`stored`,
    /// `oauth2`): the row is the store's record of that connection, and
    /// `adopt_stored_connections` reads its source kind at the next start.
    /// A process in which the connection has another source (`DS24_API_KEY`
    /// for `main`, the sandbox's key, none) must not write it: that used to
    /// turn a stored `main` into `env`, which no later start adopted.
    fn persist(&self) {
        if !self.source.needs_store() {
            return;
        }
        let Some(store) = self.ctx.store.clone() else {
            return;
        };
        let status = self.status();
        let state = ConnectionState {
            connection: self.ctx.connection.clone(),
            source_kind: self.source.kind().to_owned(),
            key_id: status.key_id,
            expires_at: status.expires_at.map(unix),
            last_renewal_at: status.last_renewal_at.map(unix),
            last_error: status.last_error,
            needs_attention: status.needs_attention,
            updated_at: unix(self.ctx.clock.now()),
            base_url: None,
        };
        let connection = self.ctx.connection.clone();
        let write = move || {
            if let Err(e) = store.save_state(&state) {
                tracing::warn!(connection, error = %e, "could not save the credential state");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

/// A shared credential.
pub type SharedCredential = Arc<Credential>;

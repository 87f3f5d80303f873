//! [`Credential`]: a connection's key, cached with its expiry.
//!
//! - A key within a margin (plus jitter, so many connections do not renew in
//!   the same second) of its expiry is renewed before use.
//! - One renewal at a time: however many requests find the key stale or
//!   rejected at the same moment, the source is asked once and all of them
//!   wait for that answer (a tokio mutex held across the fetch).
//! - After a rejection the source is asked again once; if it yields the same
//!   key the connection is marked as needing attention until a key works.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use rand::Rng;

use super::source::{self, Fetched, FileStamp, SourceContext};
use super::{ApiKey, CredentialError, CredentialSource, oauth2};
use crate::store::ConnectionState;

/// After a rejection with an unchanged key, the source is asked again at
/// most this often: a revoked key must not turn every request into a call
/// to a secret manager or token endpoint.
const REJECTION_COOLDOWN: Duration = Duration::from_secs(10);

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
        }
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
    /// # Errors
    /// When no usable key can be had.
    pub async fn key(&self) -> Result<ApiKey, CredentialError> {
        if let Some(key) = self.fresh() {
            return Ok(key);
        }
        let _one_at_a_time = self.renewing.lock().await;
        if let Some(key) = self.fresh() {
            return Ok(key);
        }
        self.renew_locked().await
    }

    fn fresh(&self) -> Option<ApiKey> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let cached = current.as_ref()?;
        if cached.renew_at.is_some_and(|at| self.ctx.clock.now() >= at) {
            return None;
        }
        if let CredentialSource::File { path } = &self.source
            && source::file_stamp(path) != cached.file_stamp
        {
            return None;
        }
        Some(cached.key.clone())
    }

    async fn renew_locked(&self) -> Result<ApiKey, CredentialError> {
        let first = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if first
            && matches!(self.source, CredentialSource::OAuth2(_))
            && let Some(kept) = oauth2::stored_access_token(&self.ctx).await.filter(|f| {
                f.expires_at
                    .is_some_and(|at| at > self.ctx.clock.now() + self.margin)
            })
        {
            return Ok(self.install(kept));
        }
        match self.fetch().await {
            Ok(fetched) => Ok(self.install(fetched)),
            Err(e) => {
                self.note_error(&e.to_string(), false);
                // A failed early renewal keeps the old key while it still works.
                let current = self.current.read().unwrap_or_else(|p| p.into_inner());
                match current.as_ref() {
                    Some(cached) if !matches!(self.source, CredentialSource::File { .. }) => {
                        tracing::warn!(connection = %self.ctx.connection, error = %e, "credential renewal failed; using the current key until it expires");
                        Ok(cached.key.clone())
                    }
                    _ => Err(e),
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
            tracing::warn!(connection = %self.ctx.connection, error, "connection needs attention");
        }
        self.persist();
    }

    /// Writes the status to the store, when there is one, off the request path.
    fn persist(&self) {
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

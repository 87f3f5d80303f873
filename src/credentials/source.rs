//! Fetching a key from its source, once. Caching, renewal and single flight
//! are the cache's job ([`super::cache`]); this only knows how to ask.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{ApiKey, Clock, CredentialError, CredentialSource, command, oauth2};
use crate::store::Store;

/// What a source yielded.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The key.
    pub key: ApiKey,
    /// When it stops working, if the source said.
    pub expires_at: Option<SystemTime>,
    /// For file sources: modification time and length of the file read, so
    /// the cache can tell when it changed.
    pub file_stamp: Option<FileStamp>,
}

/// Modification time and length of a key file.
pub type FileStamp = (Option<SystemTime>, u64);

/// What fetching needs besides the source.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The connection's name.
    pub connection: String,
    /// The store, for `stored` and `oauth2` sources.
    pub store: Option<Arc<dyn Store>>,
    /// HTTP client for token endpoints.
    pub http: reqwest::Client,
    /// The clock (expiry of `expires_in` tokens).
    pub clock: Arc<dyn Clock>,
}

impl SourceContext {
    /// A [`CredentialError::Source`] for this connection.
    pub fn error(&self, kind: &'static str, reason: impl Into<String>) -> CredentialError {
        CredentialError::Source {
            connection: self.connection.clone(),
            kind,
            reason: reason.into(),
        }
    }

    /// The store, or an error saying that the source needs one.
    ///
    /// # Errors
    /// When the store could not be opened at start.
    pub fn store(&self, kind: &'static str) -> Result<&Arc<dyn Store>, CredentialError> {
        self.store.as_ref().ok_or_else(|| {
            self.error(
                kind,
                "the store is not open (check DS24_PROXY_DATA_DIR and DS24_PROXY_MASTER_KEY)",
            )
        })
    }
}

/// Stat of a key file, cheap enough to do per request.
pub fn file_stamp(path: &std::path::Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// Asks `source` for a key.
///
/// # Errors
/// [`CredentialError`] saying which source failed and why.
pub async fn fetch(
    source: &CredentialSource,
    ctx: &SourceContext,
) -> Result<Fetched, CredentialError> {
    let plain = |key: ApiKey| Fetched {
        key,
        expires_at: None,
        file_stamp: None,
    };
    match source {
        CredentialSource::Missing => Err(CredentialError::Missing {
            connection: ctx.connection.clone(),
        }),
        CredentialSource::Env { key, .. } | CredentialSource::Static(key) => Ok(plain(key.clone())),
        CredentialSource::File { path } => read_key_file(path, ctx).await,
        CredentialSource::Command { argv, timeout } => command::run(argv, *timeout, ctx).await,
        CredentialSource::Stored => {
            let store = ctx.store("stored")?.clone();
            let connection = ctx.connection.clone();
            let secret = tokio::task::spawn_blocking(move || store.secret(&connection, "api_key"))
                .await
                .map_err(|e| ctx.error("stored", e.to_string()))?
                .map_err(|e| ctx.error("stored", e.to_string()))?
                .ok_or_else(|| {
                    ctx.error(
                        "stored",
                        format!(
                            "no key is stored; run `ds24-proxy connect --name {}`",
                            ctx.connection
                        ),
                    )
                })?;
            let key =
                ApiKey::from_secret(&secret).map_err(|e| ctx.error("stored", e.to_string()))?;
            Ok(plain(key))
        }
        CredentialSource::OAuth2(config) => oauth2::fetch(config, ctx).await,
    }
}

/// Pause between two looks at a key file that may be in the middle of a
/// rewrite.
pub const FILE_SETTLE_STEP: Duration = Duration::from_millis(50);

/// How long a key file may take to settle before what it holds is used (or,
/// when it is still empty, reported).
pub const FILE_SETTLE_MAX: Duration = Duration::from_millis(500);

/// Reads a key file, not trusting a file that is being rewritten.
///
/// A file rewritten in place (truncated, then written, instead of renamed
/// over) is, for a moment, empty, and in principle holds only the first part
/// of the new key (a writer that writes in pieces, or a large write that a
/// reader overtakes). Both look like ordinary content to a single read:
///
/// - An empty file (nothing but whitespace) is never a key; it is read again
///   every [`FILE_SETTLE_STEP`] until it has content, for at most
///   [`FILE_SETTLE_MAX`].
/// - A prefix of the new key is a perfectly well-formed key, and a key that is
///   shorter than the previous one is an ordinary rotation, so neither shape
///   nor length tells them apart. What a write in progress does show is
///   change: the content is accepted only when two reads
///   [`FILE_SETTLE_STEP`] apart found the same text and the same modification
///   time and length. A writer still at work changes one of them.
///
/// After [`FILE_SETTLE_MAX`] the next read is used if it has content (a file
/// that keeps changing for that long is not a rotation in progress, and its
/// latest content is the best there is); if it is still empty, that is the
/// error.
///
/// The second look costs [`FILE_SETTLE_STEP`] per read of the file, and the
/// cache reads it only at the start, when its modification time or length
/// changed, and for a probe while its key is rejected, never per request. A
/// read error (missing file, no permission) is reported at once.
async fn read_key_file(path: &Path, ctx: &SourceContext) -> Result<Fetched, CredentialError> {
    let started = Instant::now();
    let mut previous: Option<(String, Option<FileStamp>)> = None;
    loop {
        let stamp = file_stamp(path);
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| ctx.error("file", format!("cannot read {}: {e}", path.display())))?;
        let out_of_time = started.elapsed() >= FILE_SETTLE_MAX;
        let trimmed = text.trim();
        let settled = !trimmed.is_empty()
            && (out_of_time
                || previous
                    .as_ref()
                    .is_some_and(|(before, at)| before == trimmed && *at == stamp));
        if settled || (out_of_time && trimmed.is_empty()) {
            let key = ApiKey::parse(trimmed)
                .map_err(|e| ctx.error("file", format!("{}: {e}", path.display())))?;
            return Ok(Fetched {
                key,
                expires_at: None,
                file_stamp: stamp,
            });
        }
        // An empty read between two equal ones means the file was rewritten
        // in between: start the comparison again.
        previous = (!trimmed.is_empty()).then(|| (trimmed.to_owned(), stamp));
        tokio::time::sleep(FILE_SETTLE_STEP).await;
    }
}

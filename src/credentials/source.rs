//! Fetching a key from its source, once. Caching, renewal and single flight
//! are the cache's job ([`super::cache`]); this only knows how to ask.

use std::sync::Arc;
use std::time::SystemTime;

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
        CredentialSource::File { path } => {
            let stamp = file_stamp(path);
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| ctx.error("file", format!("cannot read {}: {e}", path.display())))?;
            let key = ApiKey::parse(&text)
                .map_err(|e| ctx.error("file", format!("{}: {e}", path.display())))?;
            Ok(Fetched {
                key,
                expires_at: None,
                file_stamp: stamp,
            })
        }
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

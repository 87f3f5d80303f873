//! Where a connection's API key comes from, and reading it when a request
//! needs it. The key is an [`ApiKey`] from the moment it is read.

mod secret;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

pub use secret::{ApiKey, KeyFormatError};

/// A configured credential source.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// No key configured: requests on the connection fail with a message
    /// saying how to set one, and `/readyz` reports it.
    Missing,
    /// Read from an environment variable at start.
    Env {
        /// The variable's name (shown in `connections` output, never its value).
        var: String,
        /// The key it held.
        key: ApiKey,
    },
    /// Read from a file, re-read when the file changes (mounted secrets are
    /// rotated by replacing the file).
    File {
        /// The file's path.
        path: PathBuf,
    },
    /// A fixed key (the built-in sandbox's).
    Static(ApiKey),
}

impl CredentialSource {
    /// Short name of the source kind, for status output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "none",
            Self::Env { .. } => "env",
            Self::File { .. } => "file",
            Self::Static(_) => "static",
        }
    }
}

/// Why no key could be had. Never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The connection has no source.
    #[error("connection `{connection}` has no API key configured")]
    Missing {
        /// The connection's name.
        connection: String,
    },
    /// The key file could not be read or holds no key.
    #[error("connection `{connection}`: cannot read the key file {path}: {reason}")]
    Unreadable {
        /// The connection's name.
        connection: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A connection's credential: the source plus what was last read from it.
#[derive(Debug)]
pub struct Credential {
    connection: String,
    source: CredentialSource,
    /// For file sources: the file's modification time and length when it was
    /// last read, and the key read then. A stat per request is cheap next to
    /// an upstream round trip, and picks up a rotated secret immediately.
    file_cache: Mutex<Option<(Option<SystemTime>, u64, ApiKey)>>,
}

impl Credential {
    /// A credential for `connection` reading from `source`.
    pub fn new(connection: impl Into<String>, source: CredentialSource) -> Self {
        Self {
            connection: connection.into(),
            source,
            file_cache: Mutex::new(None),
        }
    }

    /// The source it reads from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// The key to use now.
    ///
    /// # Errors
    /// [`CredentialError`] when the source yields no usable key.
    pub fn key(&self) -> Result<ApiKey, CredentialError> {
        match &self.source {
            CredentialSource::Missing => Err(CredentialError::Missing {
                connection: self.connection.clone(),
            }),
            CredentialSource::Env { key, .. } | CredentialSource::Static(key) => Ok(key.clone()),
            CredentialSource::File { path } => self.read_file(path),
        }
    }

    fn read_file(&self, path: &PathBuf) -> Result<ApiKey, CredentialError> {
        let unreadable = |reason: String| CredentialError::Unreadable {
            connection: self.connection.clone(),
            path: path.clone(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cache = self.file_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((mtime, len, key)) = cache.as_ref()
            && (*mtime, *len) == stamp
        {
            return Ok(key.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let key = ApiKey::parse(&text).map_err(|e| unreadable(e.to_string()))?;
        *cache = Some((stamp.0, stamp.1, key.clone()));
        Ok(key)
    }
}

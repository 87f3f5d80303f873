//! [`StoreError`]: what can go wrong opening or using the store. No message
//! ever contains a secret or the master key.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given to [`super::SqliteStore::open`]: the value of `DS24_PROXY_MASTER_KEY`.
    Given,
    /// Read from (or created as) this key file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given => f.write_str("DS24_PROXY_MASTER_KEY"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// An error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or directory could not be created, read, written or chmod'ed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `create the data directory`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// SQLite failed.
    #[error("store database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The master key is not the one that encrypted the store.
    #[error("{}", wrong_master_key(db_path, key_source))]
    WrongMasterKey {
        /// The database file.
        db_path: PathBuf,
        /// Where the (wrong) master key came from.
        key_source: KeySource,
    },

    /// The master key is not 32 bytes as 64 hex characters or base64.
    #[error(
        "the master key in {key_source} is not valid: {reason}; it must be 32 bytes written as \
         64 hex characters or as base64 (make one with `openssl rand -hex 32`)"
    )]
    BadMasterKey {
        /// Where the key came from.
        key_source: KeySource,
        /// What is wrong with it (never the key itself).
        reason: String,
    },

    /// The master key file can be read or written by group or others.
    #[error(
        "refusing the master key file {}: its mode is {mode:04o}, so users other than its owner \
         can reach it; run `chmod 600 {}` (and consider the key exposed if others could read it)",
        path.display(),
        path.display()
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The store holds encrypted data but its key file is gone.
    #[error(
        "the store {} holds encrypted secrets but its master key file {} is missing; put the \
         original master.key back or set DS24_PROXY_MASTER_KEY to the original key (if the key \
         is lost, move the database aside and store the credentials again with `ds24-proxy connect`)",
        db_path.display(),
        key_path.display()
    )]
    MissingMasterKey {
        /// The database file.
        db_path: PathBuf,
        /// Where the key file was expected.
        key_path: PathBuf,
    },

    /// The database was written by a newer ds24-proxy.
    #[error(
        "the store {} has schema version {found}, newer than this ds24-proxy supports ({supported}); \
         upgrade ds24-proxy or use another data directory",
        path.display()
    )]
    UnsupportedSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// The database content is damaged or was altered.
    #[error("the store {} is damaged: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong (never a secret).
        detail: String,
    },

    /// A caller passed something the store does not accept.
    #[error("invalid store input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
}

fn wrong_master_key(db_path: &Path, key_source: &KeySource) -> String {
    let db = db_path.display();
    let fix = match key_source {
        KeySource::Given => "set DS24_PROXY_MASTER_KEY to that key (or unset it if the original \
                             master.key is still in the data directory)"
            .to_owned(),
        KeySource::File(path) => format!(
            "put the original key back into {} or set DS24_PROXY_MASTER_KEY to it",
            path.display()
        ),
    };
    format!(
        "the master key from {key_source} does not decrypt the store {db}: it differs from the key \
         that encrypted it; {fix}. If that key is lost, move {db} aside and store the credentials \
         again with `ds24-proxy connect`"
    )
}

impl StoreError {
    pub(super) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(super) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }
}

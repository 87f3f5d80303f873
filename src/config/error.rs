//! Configuration errors. Each one names the key that is wrong, where the
//! value came from, and how to fix it, because a proxy that refuses to start
//! is only helpful when the message says what to change.

use std::fmt;

/// A setting that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key as the user wrote it (`upstream.base_url`, `DS24_BASE_URL`, …).
    pub key: String,
    /// What is wrong with the value (never the value itself when it may be a secret).
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl ConfigError {
    /// Builds an error for `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: `{}`: {}. Fix: {}",
            self.key, self.problem, self.fix
        )
    }
}

impl std::error::Error for ConfigError {}

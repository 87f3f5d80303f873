//! Environment variables, read through a small trait so that tests pass a
//! map instead of mutating the process environment (which is shared by every
//! test thread).

use std::collections::HashMap;

/// Names of the environment variables the proxy reads.
pub mod vars {
    /// Key of the default connection `main`.
    pub const API_KEY: &str = "DS24_API_KEY";
    /// Path of a file holding the key of `main`.
    pub const API_KEY_FILE: &str = "DS24_API_KEY_FILE";
    /// Upstream base URL of every connection that does not set its own.
    pub const BASE_URL: &str = "DS24_BASE_URL";
    /// Listen address.
    pub const LISTEN: &str = "DS24_PROXY_LISTEN";
    /// Inbound bearer token(s), comma-separated.
    pub const TOKEN: &str = "DS24_PROXY_TOKEN";
    /// Directory of the store.
    pub const DATA_DIR: &str = "DS24_PROXY_DATA_DIR";
    /// Key that encrypts secrets at rest (64 hex characters or base64 of 32 bytes).
    pub const MASTER_KEY: &str = "DS24_PROXY_MASTER_KEY";
    /// `text` or `json`.
    pub const LOG_FORMAT: &str = "DS24_PROXY_LOG_FORMAT";
    /// IPN passphrase of the `main` connection (beats the file and the store).
    pub const IPN_PASSPHRASE: &str = "DS24_IPN_PASSPHRASE";
    /// Where `main`'s IPN events are relayed: URLs, comma-separated.
    pub const IPN_FORWARD_TO: &str = "DS24_IPN_FORWARD_TO";
}

/// A source of environment variables.
pub trait Env {
    /// The value of `name`, if it is set (an empty value counts as unset).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.is_empty())
    }
}

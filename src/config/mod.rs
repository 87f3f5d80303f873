//! Configuration: layered as built-in defaults < config file < environment <
//! command-line flags, then validated into a [`Config`] in one step so that a
//! bad setting stops the start with a message naming the key and the fix.

mod credential;
mod env;
mod error;
mod file;
mod ipn;
mod policy;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{Env, ProcessEnv, vars};
pub use error::ConfigError;
pub use file::{DEFAULT_BASE_URL, DEFAULT_CONNECTION, DEFAULT_LISTEN, RawConfig};
pub use ipn::{ConnectionIpn, IpnSettings};
use url::Url;

use crate::credentials::{ApiKey, CredentialSource};

/// Where the shipped configuration lives, relative to the working directory.
/// Read when present and no `--config` was given.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `server.listen` / `DS24_PROXY_LISTEN` / `--listen`; default `127.0.0.1:7424`.
    pub listen: SocketAddr,
    /// `server.drain_timeout_secs`; default 30 s.
    pub drain_timeout: Duration,
    /// `server.header_read_timeout_secs`; default 10 s.
    pub header_read_timeout: Duration,
    /// `server.max_body_bytes`; default 128 MiB.
    pub max_body_bytes: u64,
    /// `server.max_concurrent_requests`; default 1024.
    pub max_concurrent_requests: usize,
    /// `server.workers`: threads serving client connections; default (0)
    /// one per core, at most 4.
    pub workers: usize,
    /// `server.tokens` / `DS24_PROXY_TOKEN`; empty means no inbound auth.
    pub tokens: Vec<InboundToken>,
    /// `[upstream]` timeouts shared by every connection.
    pub upstream: UpstreamConfig,
    /// `store.data_dir` / `DS24_PROXY_DATA_DIR`, else
    /// `$XDG_DATA_HOME/ds24-proxy` or `$HOME/.local/share/ds24-proxy`;
    /// `None` when none of them is set (there is no relative fallback: a
    /// store in the working directory could end up in a repository). Use
    /// [`Config::data_dir`], which says what to set.
    data_dir: Option<PathBuf>,
    /// `store.idempotency_ttl_secs`; default 24 h.
    pub idempotency_ttl: Duration,
    /// `log.format` / `DS24_PROXY_LOG_FORMAT` / `--log-format`.
    pub log_format: LogFormat,
    /// `upstream.replay_max_bytes`; default 1 MiB.
    pub replay_max_bytes: u64,
    /// `upstream.renew_margin_secs`; default 60 s.
    pub renew_margin: Duration,
    /// `DS24_PROXY_MASTER_KEY`: encrypts the store; when unset, a key file in
    /// the data directory is used (created on first use).
    pub master_key: Option<secrecy::SecretString>,
    /// `[connections.NAME]`; always contains `main`.
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// `[ipn]`: relaying IPN events to the app.
    pub ipn: IpnSettings,
}

/// Upstream HTTP client settings (defined by the client that uses them).
pub use crate::upstream::UpstreamConfig;

/// One named connection to Digistore24.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The name used in `X-DS24-Connection` and `/connections/{name}/…`.
    pub name: String,
    /// Base URL, e.g. `https://www.digistore24.com/api/call` (no trailing slash).
    pub base_url: Url,
    /// Where its key comes from.
    pub credential: CredentialSource,
    /// The header the key goes into (`X-DS-API-KEY`, or another for
    /// brokered tokens).
    pub auth_header: http::HeaderName,
    /// Text before the key in that header (`Bearer ` for some brokers).
    pub auth_prefix: String,
    /// `rate_limit`, if set.
    pub rate_limit: Option<RateLimit>,
    /// `[connections.NAME.ipn]` (and `DS24_IPN_*` for `main`).
    pub ipn: ConnectionIpn,
}

/// A validated outbound rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Burst size.
    pub burst: u32,
    /// Callers that may wait at once.
    pub max_waiters: usize,
    /// Longest wait.
    pub max_wait: Duration,
}

/// An inbound bearer token. Compared in constant time; never logged.
#[derive(Clone)]
pub struct InboundToken {
    pub(crate) secret: secrecy::SecretString,
    /// Its identity in logs and the audit log (`token-1`, or a policy name).
    pub name: String,
    /// What it may do; `None` allows everything.
    pub policy: Option<std::sync::Arc<crate::policy::Policy>>,
}

impl std::fmt::Debug for InboundToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InboundToken({}, [redacted])", self.name)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`: read this instead of `config/default.toml`.
    pub config_file: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--log-format text|json`.
    pub log_format: Option<String>,
    /// `--dangerously-allow-public-listen-without-token`: lets a
    /// non-loopback address start without inbound tokens (for networks
    /// the operator controls by other means).
    pub allow_public_without_token: bool,
}

/// Loads and validates the configuration from the file, `env` and `flags`.
///
/// # Errors
/// A [`ConfigError`] naming the first bad key and how to fix it.
pub fn load(env: &dyn Env, flags: &Overrides) -> Result<Config, ConfigError> {
    let raw = match &flags.config_file {
        Some(path) => read_file(path)?,
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            read_file(Path::new(DEFAULT_CONFIG_PATH))?
        }
        None => RawConfig::default(),
    };
    from_parts(raw, env, flags)
}

/// Validates an already parsed file layer with `env` and `flags` on top
/// (what [`load`] does after reading the file; tests call it directly).
///
/// # Errors
/// A [`ConfigError`] naming the first bad key and how to fix it.
pub fn from_parts(raw: RawConfig, env: &dyn Env, flags: &Overrides) -> Result<Config, ConfigError> {
    validate::validate(raw, env, flags)
}

/// Checks a base URL by the rules of `upstream.base_url` (http(s), no
/// query, plain http only to loopback); `key` names where it came from.
///
/// # Errors
/// A [`ConfigError`] saying what is wrong.
pub fn check_base_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    validate::base_url(key, value)
}

/// Parses configuration text (the file layer only).
///
/// # Errors
/// Unknown keys and wrong types, with the TOML position.
pub fn parse_toml(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (key, line) = locate(text, e.span());
        let at = line
            .map(|l| format!(" ({origin}, line {l})"))
            .unwrap_or_else(|| format!(" ({origin})"));
        ConfigError::new(
            key.unwrap_or_else(|| origin.to_owned()),
            redact_values(e.message()) + &at,
            "correct or remove that key; config/default.toml lists every setting with its default",
        )
    })
}

/// The dotted key (`server.tokens`) and line an error span points into.
fn locate(text: &str, span: Option<std::ops::Range<usize>>) -> (Option<String>, Option<usize>) {
    let Some(span) = span else {
        return (None, None);
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let mut table = String::new();
    let mut key = None;
    for (i, line) in text.lines().enumerate().take(line_no) {
        let line = line.trim();
        if line.starts_with('[') {
            table = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned();
        }
        if i + 1 == line_no {
            key = line
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_owned())
                .filter(|k| !k.is_empty());
        }
    }
    let dotted = match (table.is_empty(), key) {
        (_, None) if !table.is_empty() => Some(table),
        (true, k) => k,
        (false, Some(k)) => Some(format!("{table}.{k}")),
        (false, None) => None,
    };
    (dotted, Some(line_no))
}

/// toml quotes offending values in its messages (`invalid type: string
/// "…"`); a value may be a token, so it is cut out.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            &origin,
            format!("cannot read the config file: {e}"),
            "pass an existing file with --config, or omit --config to use the defaults",
        )
    })?;
    parse_toml(&text, &origin)
}

/// The folder of the data directory that `serve --sandbox` keeps its store in.
pub const SANDBOX_DIR: &str = "sandbox";

/// No directory for the store could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "there is no directory for the store: DS24_PROXY_DATA_DIR is not set, and neither \
     XDG_DATA_HOME nor HOME is set to find the default (as under a systemd unit, `env -i` or \
     some CI runners); set DS24_PROXY_DATA_DIR to a directory only this user can read, for \
     example DS24_PROXY_DATA_DIR=/var/lib/ds24-proxy"
)]
pub struct NoDataDir;

impl Config {
    /// The store's directory.
    ///
    /// # Errors
    /// [`NoDataDir`], saying which variable to set, when `DS24_PROXY_DATA_DIR`,
    /// `store.data_dir`, `XDG_DATA_HOME` and `HOME` are all unset.
    pub fn data_dir(&self) -> Result<&Path, NoDataDir> {
        self.data_dir.as_deref().ok_or(NoDataDir)
    }

    /// Points `main` at a sandbox (for `serve --sandbox`): its base URL and
    /// the sandbox's writable key, so a real key never reaches the sandbox.
    ///
    /// The store moves to the `sandbox` folder of the data directory: the
    /// sandbox's audit rows, idempotency records and IPN events stay apart
    /// from the real connections' (and connections stored for real are not
    /// adopted into a sandbox run), yet in a known place that
    /// `DS24_PROXY_DATA_DIR=…/sandbox ds24-proxy events list` can read while
    /// it runs and after; a temporary directory could not be found from the
    /// shell, and would lose the events on a restart.
    pub fn use_sandbox(&mut self, base_url: Url, key: ApiKey) {
        self.data_dir = self.data_dir.take().map(|dir| dir.join(SANDBOX_DIR));
        let main = self
            .connections
            .entry(DEFAULT_CONNECTION.to_owned())
            .or_insert_with(|| ConnectionConfig {
                name: DEFAULT_CONNECTION.to_owned(),
                base_url: base_url.clone(),
                credential: CredentialSource::Missing,
                auth_header: crate::proxy::headers::API_KEY,
                auth_prefix: String::new(),
                rate_limit: None,
                ipn: ConnectionIpn::default(),
            });
        main.base_url = base_url;
        main.credential = CredentialSource::Static(key);
        main.auth_header = crate::proxy::headers::API_KEY;
        main.auth_prefix = String::new();
    }
}

#[cfg(test)]
mod tests;

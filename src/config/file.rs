//! The configuration file as written: raw serde structs that reject unknown
//! keys, and the defaults as named constants. Nothing here is validated yet;
//! `config::load` turns this into a [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// Default listen address: loopback only, so nothing outside the machine can
/// use the stored key unless the operator opts in.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7424";
/// The real Digistore24 API.
pub const DEFAULT_BASE_URL: &str = "https://www.digistore24.com/api/call";
/// Time in-flight requests get to finish after SIGTERM / Ctrl-C.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;
/// A client must send its request headers within this time (no slowloris).
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Requests handled at once; more are refused with 503 at once instead of
/// queueing until memory or file descriptors run out.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: u64 = 1024;
/// Largest pass-through request body, counted as it streams (DESIGN.md).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 128 * 1024 * 1024;
/// TCP + TLS connect to Digistore24. Short: a connect that takes longer than
/// this is a network problem, and a failed connect is safe to report fast.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Whole upstream exchange, headers and body. The official connectors use
/// 30 s (API-FACTS §5); large exports through the pass-through need more.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 120;
/// Idle pooled upstream connections are closed after this time.
pub const DEFAULT_POOL_IDLE_TIMEOUT_SECS: u64 = 90;
/// Request bodies up to this size are held so that a request can be sent
/// again after its key was rejected and renewed; larger ones stream once.
pub const DEFAULT_REPLAY_MAX_BYTES: u64 = 1024 * 1024;
/// A credential with an expiry is renewed this long (plus up to a fifth of
/// it as jitter) before it expires.
pub const DEFAULT_RENEW_MARGIN_SECS: u64 = 60;
/// How long a `command` credential source may run.
pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 10;
/// The connection used when a request names none.
pub const DEFAULT_CONNECTION: &str = "main";
/// `ipn.max_attempts`: deliveries to the app before an event is dead-lettered.
pub const DEFAULT_IPN_MAX_ATTEMPTS: u32 = 25;
/// `ipn.max_age_secs`: an event not delivered after this long is dead-lettered.
pub const DEFAULT_IPN_MAX_AGE_SECS: u64 = 3 * 24 * 3600;
/// `ipn.retry_initial_ms`: the first wait after a failed delivery (doubles).
pub const DEFAULT_IPN_RETRY_INITIAL_MS: u64 = 1_000;
/// `ipn.retry_max_secs`: the longest wait between deliveries.
pub const DEFAULT_IPN_RETRY_MAX_SECS: u64 = 600;
/// `ipn.delivery_timeout_secs`: how long the app may take to answer.
pub const DEFAULT_IPN_DELIVERY_TIMEOUT_SECS: u64 = 10;

/// Top level of `config/default.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub ipn: RawIpn,
    #[serde(default)]
    pub connections: BTreeMap<String, RawConnection>,
    /// `[[policies]]`: tokens with narrowed rights.
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
}

/// `[[policies]]`: an inbound token (read from an environment variable)
/// and what it may do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Identity in logs and the audit log.
    pub name: String,
    /// Environment variable holding the token.
    pub token_env: String,
    /// Allowed effects: `read`, `write`, `money` (default: all).
    pub effects: Option<Vec<String>>,
    /// Only these functions or action keys.
    pub allow_functions: Option<Vec<String>>,
    /// Never these functions or action keys.
    #[serde(default)]
    pub deny_functions: Vec<String>,
    /// Only these connections.
    pub connections: Option<Vec<String>>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub drain_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub max_concurrent_requests: Option<u64>,
    pub workers: Option<u64>,
    /// Inbound bearer tokens. Prefer `DS24_PROXY_TOKEN` over writing them here.
    pub tokens: Option<Vec<String>>,
}

/// `[upstream]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub base_url: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub pool_idle_timeout_secs: Option<u64>,
    pub replay_max_bytes: Option<u64>,
    pub renew_margin_secs: Option<u64>,
    /// Attempts per read call (the first included).
    pub max_attempts: Option<u32>,
    /// Total seconds for a read call's attempts and waits.
    pub retry_budget_secs: Option<u64>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub data_dir: Option<String>,
    /// Seconds an idempotency record answers repeats (default 86400).
    pub idempotency_ttl_secs: Option<u64>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
}

/// `[ipn]`: how events are relayed to the app.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpn {
    pub max_attempts: Option<u32>,
    pub max_age_secs: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_secs: Option<u64>,
    pub delivery_timeout_secs: Option<u64>,
}

/// `[connections.NAME.ipn]`: the connection's IPN passphrase (never in the
/// file itself) and where its events go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnectionIpn {
    /// Environment variable holding the passphrase.
    pub passphrase_env: Option<String>,
    /// File holding the passphrase (a mounted secret).
    pub passphrase_file: Option<String>,
    /// URLs the events are relayed to.
    pub forward_to: Option<Vec<String>>,
}

/// `[connections.NAME]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnection {
    /// Overrides `upstream.base_url` for this connection.
    pub base_url: Option<String>,
    /// Optional outbound rate limit: `{ per_second = 5.0, burst = 10 }`.
    pub rate_limit: Option<RawRateLimit>,
    pub credential: Option<RawCredential>,
    pub ipn: Option<RawConnectionIpn>,
}

/// `[connections.NAME] rate_limit`: a token bucket per connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once after a quiet spell (default: 1).
    pub burst: Option<u32>,
    /// Callers that may wait for a token at once (default 64); more get 429.
    pub max_waiters: Option<usize>,
    /// Longest wait for a token in milliseconds (default 10000); longer gets 429.
    pub max_wait_ms: Option<u64>,
}

/// `[connections.NAME.credential]`: where the key comes from. The key itself
/// never goes into the file.
#[derive(Debug, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawCredential {
    /// Read from an environment variable.
    Env { var: String },
    /// Read from a file (a mounted secret); re-read when it changes.
    File { path: String },
    /// A program that prints `{"api_key": "…", "expires_at": "RFC3339"?}`.
    Command {
        command: Vec<String>,
        timeout_secs: Option<u64>,
    },
    /// Obtained by `ds24-proxy connect`, kept encrypted in the store.
    Stored,
    /// An OAuth2 token endpoint (refresh-token or client-credentials grant).
    Oauth2 {
        token_url: String,
        /// `refresh_token` (default) or `client_credentials`.
        grant: Option<String>,
        client_id: String,
        /// Environment variable holding the client secret.
        client_secret_env: Option<String>,
        /// Environment variable holding the first refresh token.
        refresh_token_env: Option<String>,
        scope: Option<String>,
        /// Header the token goes into (default `X-DS-API-KEY`).
        header: Option<String>,
        /// Text before the token in that header (e.g. `Bearer `).
        header_prefix: Option<String>,
    },
}

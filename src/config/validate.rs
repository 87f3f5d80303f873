//! Turns the raw layers into a validated [`Config`]. Each check names the key
//! the user has to change, in the spelling of the layer that set it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::file::{self, RawConfig, RawConnection};
use super::{
    Config, ConfigError, ConnectionConfig, Env, InboundToken, LogFormat, Overrides, UpstreamConfig,
    vars,
};

pub(super) fn validate(
    raw: RawConfig,
    env: &dyn Env,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let listen = pick(
        &flags.listen,
        "--listen",
        env,
        vars::LISTEN,
        &raw.server.listen,
        "server.listen",
    );
    let (listen_key, listen) = listen.unwrap_or(("server.listen", file::DEFAULT_LISTEN.to_owned()));
    let listen: SocketAddr = listen.parse().map_err(|_| {
        ConfigError::new(
            listen_key,
            format!("`{listen}` is not an IP address with a port"),
            "write it as IP:PORT, for example 127.0.0.1:7424",
        )
    })?;

    let tokens = tokens(&raw, env)?;
    if !listen.ip().is_loopback() && tokens.is_empty() && !flags.allow_public_without_token {
        return Err(ConfigError::new(
            listen_key,
            format!(
                "{listen} is reachable from other machines, but no inbound token is configured, so anyone there could use the stored key"
            ),
            format!(
                "set {} to a long random token (clients then send `Authorization: Bearer <token>`), or listen on 127.0.0.1",
                vars::TOKEN
            ),
        ));
    }

    let (base_key, base) = pick(
        &None,
        "",
        env,
        vars::BASE_URL,
        &raw.upstream.base_url,
        "upstream.base_url",
    )
    .unwrap_or(("upstream.base_url", file::DEFAULT_BASE_URL.to_owned()));
    let base_url = base_url(base_key, &base)?;

    let log_format = pick(
        &flags.log_format,
        "--log-format",
        env,
        vars::LOG_FORMAT,
        &raw.log.format,
        "log.format",
    );
    let log_format = match log_format {
        None => LogFormat::Text,
        Some((_, v)) if v == "text" => LogFormat::Text,
        Some((_, v)) if v == "json" => LogFormat::Json,
        Some((key, v)) => {
            return Err(ConfigError::new(
                key,
                format!("`{v}` is not a log format"),
                "use `text` or `json`",
            ));
        }
    };

    let data_dir = env
        .var(vars::DATA_DIR)
        .or(raw.store.data_dir.clone())
        .map(PathBuf::from)
        .or_else(|| default_data_dir(env));

    let upstream = UpstreamConfig {
        connect_timeout: Duration::from_millis(positive(
            raw.upstream.connect_timeout_ms,
            file::DEFAULT_CONNECT_TIMEOUT_MS,
            "upstream.connect_timeout_ms",
        )?),
        request_timeout: secs(
            raw.upstream.request_timeout_secs,
            file::DEFAULT_REQUEST_TIMEOUT_SECS,
            "upstream.request_timeout_secs",
        )?,
        pool_idle_timeout: secs(
            raw.upstream.pool_idle_timeout_secs,
            file::DEFAULT_POOL_IDLE_TIMEOUT_SECS,
            "upstream.pool_idle_timeout_secs",
        )?,
        retry: crate::resilience::RetryPolicy {
            max_attempts: positive(
                raw.upstream.max_attempts.map(u64::from),
                3,
                "upstream.max_attempts",
            )? as u32,
            budget: secs(
                raw.upstream.retry_budget_secs,
                10,
                "upstream.retry_budget_secs",
            )?,
            ..crate::resilience::RetryPolicy::default()
        },
    };

    let ipn = super::ipn::settings(&raw.ipn)?;
    let connections = connections(raw.connections, &base_url, env)?;
    let replay_max_bytes = positive(
        raw.upstream.replay_max_bytes,
        file::DEFAULT_REPLAY_MAX_BYTES,
        "upstream.replay_max_bytes",
    )?;
    let renew_margin = secs(
        raw.upstream.renew_margin_secs,
        file::DEFAULT_RENEW_MARGIN_SECS,
        "upstream.renew_margin_secs",
    )?;
    let master_key = env.var(vars::MASTER_KEY).map(SecretString::from);

    Ok(Config {
        listen,
        drain_timeout: secs(
            raw.server.drain_timeout_secs,
            file::DEFAULT_DRAIN_TIMEOUT_SECS,
            "server.drain_timeout_secs",
        )?,
        header_read_timeout: secs(
            raw.server.header_read_timeout_secs,
            file::DEFAULT_HEADER_READ_TIMEOUT_SECS,
            "server.header_read_timeout_secs",
        )?,
        max_body_bytes: positive(
            raw.server.max_body_bytes,
            file::DEFAULT_MAX_BODY_BYTES,
            "server.max_body_bytes",
        )?,
        tokens,
        max_concurrent_requests: positive(
            raw.server.max_concurrent_requests,
            file::DEFAULT_MAX_CONCURRENT_REQUESTS,
            "server.max_concurrent_requests",
        )? as usize,
        workers: match raw.server.workers {
            None | Some(0) => 0,
            Some(n) if n <= MAX_WORKERS => n as usize,
            Some(n) => {
                return Err(ConfigError::new(
                    "server.workers",
                    format!("{n} is more than {MAX_WORKERS}"),
                    "use 0 (one per core) or a number up to the cores you give the proxy",
                ));
            }
        },
        idempotency_ttl: match raw.store.idempotency_ttl_secs {
            // A record in progress must outlive the slowest call, or a repeat
            // could take over a refund that is still running.
            Some(t) if t < 600 => {
                return Err(ConfigError::new(
                    "store.idempotency_ttl_secs",
                    format!("{t} s is shorter than a slow call may take"),
                    "use at least 600 (default 86400)",
                ));
            }
            _ => secs(
                raw.store.idempotency_ttl_secs,
                86_400,
                "store.idempotency_ttl_secs",
            )?,
        },
        replay_max_bytes,
        renew_margin,
        master_key,
        upstream,
        data_dir,
        log_format,
        connections,
        ipn,
    })
}

/// The value of the highest layer that sets it, with the key name of that layer.
fn pick(
    flag: &Option<String>,
    flag_name: &'static str,
    env: &dyn Env,
    var: &'static str,
    file: &Option<String>,
    file_key: &'static str,
) -> Option<(&'static str, String)> {
    flag.clone()
        .map(|v| (flag_name, v))
        .or_else(|| env.var(var).map(|v| (var, v)))
        .or_else(|| file.clone().map(|v| (file_key, v)))
}

/// More connection threads than this only adds context switches.
const MAX_WORKERS: u64 = 256;

fn positive(value: Option<u64>, default: u64, key: &str) -> Result<u64, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::new(
            key,
            "must be greater than zero",
            format!("remove it to use the default ({default})"),
        )),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn secs(value: Option<u64>, default: u64, key: &str) -> Result<Duration, ConfigError> {
    positive(value, default, key).map(Duration::from_secs)
}

fn tokens(raw: &RawConfig, env: &dyn Env) -> Result<Vec<InboundToken>, ConfigError> {
    let (key, list): (&str, Vec<String>) = match env.var(vars::TOKEN) {
        Some(v) => (
            vars::TOKEN,
            v.split(',').map(|t| t.trim().to_owned()).collect(),
        ),
        None => (
            "server.tokens",
            raw.server.tokens.clone().unwrap_or_default(),
        ),
    };
    let mut out = Vec::new();
    for (i, t) in list.into_iter().enumerate() {
        out.push(InboundToken {
            secret: token_secret(key, t)?,
            name: format!("token-{}", i + 1),
            policy: None,
        });
    }
    for (i, p) in raw.policies.iter().enumerate() {
        let at = |field: &str| format!("policies[{i}].{field}");
        if p.name.is_empty() || out.iter().any(|t| t.name == p.name) {
            return Err(ConfigError::new(
                at("name"),
                "a policy needs a unique, non-empty name",
                "name each policy differently, e.g. \"agent\"",
            ));
        }
        let value = env.var(&p.token_env).ok_or_else(|| {
            ConfigError::new(
                at("token_env"),
                format!("the environment variable {} is not set", p.token_env),
                format!(
                    "export {}=<a long random token> for policy `{}`",
                    p.token_env, p.name
                ),
            )
        })?;
        let policy = super::policy::policy(p, &at)?;
        out.push(InboundToken {
            secret: token_secret(&p.token_env, value)?,
            name: p.name.clone(),
            policy: Some(std::sync::Arc::new(policy)),
        });
    }
    Ok(out)
}

fn token_secret(key: &str, t: String) -> Result<SecretString, ConfigError> {
    if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            key,
            "a token is shorter than 16 characters or contains spaces or control characters",
            "use long random tokens, e.g. `openssl rand -hex 32`, separated by commas",
        ));
    }
    Ok(SecretString::from(t))
}

pub(super) fn base_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    let fix = "use an http(s) URL without query, like https://www.digistore24.com/api/call";
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|e| ConfigError::new(key, format!("`{value}` is not a URL ({e})"), fix))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
        || url.cannot_be_a_base()
    {
        return Err(ConfigError::new(
            key,
            format!("`{value}` is not a plain http(s) base URL"),
            fix,
        ));
    }
    // Why: the key travels in a header; over plain HTTP to another machine it
    // would cross the network readable by anyone on the path.
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(ConfigError::new(
            key,
            format!(
                "`{value}` uses plain http to a host that is not loopback; the API key would travel unencrypted"
            ),
            "use https://, or http:// only for a sandbox on 127.0.0.1",
        ));
    }
    Ok(url)
}

fn connections(
    raw: BTreeMap<String, RawConnection>,
    default_base: &Url,
    env: &dyn Env,
) -> Result<BTreeMap<String, ConnectionConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut raw = raw;
    raw.entry(file::DEFAULT_CONNECTION.to_owned()).or_default();
    for (name, conn) in raw {
        let prefix = format!("connections.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                &prefix,
                "a connection name may only hold letters, digits, `-` and `_` (at most 64)",
                "rename the connection",
            ));
        }
        let base_url = match &conn.base_url {
            Some(v) => base_url(&format!("{prefix}.base_url"), v)?,
            None => default_base.clone(),
        };
        let (credential, auth_header, auth_prefix) =
            super::credential::credential(&name, conn.credential, env)?;
        let rate_limit = match conn.rate_limit {
            None => None,
            Some(r) if !(r.per_second.is_finite() && r.per_second > 0.0) => {
                return Err(ConfigError::new(
                    format!("{prefix}.rate_limit.per_second"),
                    "must be a positive number",
                    "e.g. per_second = 5.0",
                ));
            }
            Some(r) => Some(super::RateLimit {
                per_second: r.per_second,
                burst: r.burst.unwrap_or(1).max(1),
                max_waiters: r.max_waiters.unwrap_or(64),
                max_wait: Duration::from_millis(r.max_wait_ms.unwrap_or(10_000)),
            }),
        };
        let ipn = super::ipn::connection(&name, conn.ipn, env)?;
        out.insert(
            name.clone(),
            ConnectionConfig {
                name,
                base_url,
                credential,
                auth_header,
                auth_prefix,
                rate_limit,
                ipn,
            },
        );
    }
    Ok(out)
}

/// `$XDG_DATA_HOME/ds24-proxy`, else `$HOME/.local/share/ds24-proxy`, else
/// nothing: never a directory relative to the working directory, where a
/// master key would be created next to whatever else is there (a clone of
/// this repository once shipped one that way).
pub(super) fn default_data_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(xdg) = env.var("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("ds24-proxy"));
    }
    env.var("HOME")
        .map(|home| PathBuf::from(home).join(".local/share/ds24-proxy"))
}

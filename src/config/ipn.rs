//! `[ipn]` and `[connections.NAME.ipn]`: validated into [`IpnSettings`] and
//! [`ConnectionIpn`].

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::error::ConfigError;
use super::file::{self, RawConnectionIpn, RawIpn};
use super::{Env, vars};

/// How events are relayed to the app.
#[derive(Debug, Clone)]
pub struct IpnSettings {
    /// `ipn.max_attempts`: attempts per target before dead-lettering.
    pub max_attempts: u32,
    /// `ipn.max_age_secs`: an event older than this is dead-lettered at its
    /// next failure.
    pub max_age: Duration,
    /// `ipn.retry_initial_ms`: first wait after a failure; doubles up to
    /// `retry_max`.
    pub retry_initial: Duration,
    /// `ipn.retry_max_secs`.
    pub retry_max: Duration,
    /// `ipn.delivery_timeout_secs`: how long the app may take.
    pub delivery_timeout: Duration,
}

/// One connection's IPN settings.
#[derive(Debug, Clone, Default)]
pub struct ConnectionIpn {
    /// The passphrase from the environment or a file; `None` means "look in
    /// the store" (set by `ds24-proxy ipn setup`), and without one there
    /// every IPN is refused.
    pub passphrase: Option<SecretString>,
    /// Where verified events are relayed (may be empty: stored only).
    pub forward_to: Vec<Url>,
}

pub(super) fn settings(raw: &RawIpn) -> Result<IpnSettings, ConfigError> {
    let positive = |value: Option<u64>, default: u64, key: &str| match value {
        Some(0) => Err(ConfigError::new(
            key,
            "must be greater than 0",
            "remove it to use the default",
        )),
        v => Ok(v.unwrap_or(default)),
    };
    let retry_initial = Duration::from_millis(positive(
        raw.retry_initial_ms,
        file::DEFAULT_IPN_RETRY_INITIAL_MS,
        "ipn.retry_initial_ms",
    )?);
    let retry_max = Duration::from_secs(positive(
        raw.retry_max_secs,
        file::DEFAULT_IPN_RETRY_MAX_SECS,
        "ipn.retry_max_secs",
    )?);
    Ok(IpnSettings {
        max_attempts: positive(
            raw.max_attempts.map(u64::from),
            u64::from(file::DEFAULT_IPN_MAX_ATTEMPTS),
            "ipn.max_attempts",
        )?
        .min(u64::from(u32::MAX)) as u32,
        max_age: Duration::from_secs(positive(
            raw.max_age_secs,
            file::DEFAULT_IPN_MAX_AGE_SECS,
            "ipn.max_age_secs",
        )?),
        retry_initial,
        retry_max: retry_max.max(retry_initial),
        delivery_timeout: Duration::from_secs(positive(
            raw.delivery_timeout_secs,
            file::DEFAULT_IPN_DELIVERY_TIMEOUT_SECS,
            "ipn.delivery_timeout_secs",
        )?),
    })
}

pub(super) fn connection(
    name: &str,
    raw: Option<RawConnectionIpn>,
    env: &dyn Env,
) -> Result<ConnectionIpn, ConfigError> {
    let raw = raw.unwrap_or_default();
    let prefix = format!("connections.{name}.ipn");
    let is_main = name == file::DEFAULT_CONNECTION;
    // Environment beats file, as everywhere.
    let passphrase = if let Some(p) = env.var(vars::IPN_PASSPHRASE).filter(|_| is_main) {
        Some(check_passphrase(vars::IPN_PASSPHRASE, p)?)
    } else {
        match (raw.passphrase_env, raw.passphrase_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    &prefix,
                    "both passphrase_env and passphrase_file are set",
                    "keep one of them",
                ));
            }
            (Some(var), None) => {
                let key = format!("{prefix}.passphrase_env");
                let value = env.var(&var).ok_or_else(|| {
                    ConfigError::new(
                        &key,
                        format!("the variable {var} is not set"),
                        format!("set {var} to the IPN passphrase, or remove {key}"),
                    )
                })?;
                Some(check_passphrase(&key, value)?)
            }
            (None, Some(path)) => {
                let key = format!("{prefix}.passphrase_file");
                let value = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(
                        &key,
                        format!("{path} cannot be read ({})", e.kind()),
                        "check the path and its permissions",
                    )
                })?;
                Some(check_passphrase(
                    &key,
                    value.trim_end_matches(['\r', '\n']).to_owned(),
                )?)
            }
            (None, None) => None,
        }
    };
    let forward_to = match env.var(vars::IPN_FORWARD_TO).filter(|_| is_main) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| target(vars::IPN_FORWARD_TO, s))
            .collect::<Result<Vec<_>, _>>()?,
        None => raw
            .forward_to
            .unwrap_or_default()
            .iter()
            .map(|s| target(&format!("{prefix}.forward_to"), s))
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(ConnectionIpn {
        passphrase,
        forward_to,
    })
}

fn check_passphrase(key: &str, value: String) -> Result<SecretString, ConfigError> {
    // Digistore24 accepts at most 63 characters (API-FACTS §7.2).
    if value.is_empty() || value.chars().count() > 63 {
        return Err(ConfigError::new(
            key,
            "the IPN passphrase must have 1 to 63 characters",
            "use the passphrase registered with ipnSetup (`ds24-proxy ipn setup` makes one)",
        ));
    }
    Ok(SecretString::from(value))
}

fn target(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| {
        ConfigError::new(
            key,
            format!("`{value}` is not a URL"),
            "write it like http://127.0.0.1:3000/ipn",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            key,
            format!("`{value}` is not an http(s) URL"),
            "write it like http://127.0.0.1:3000/ipn",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            key,
            "a relay URL must not carry a user name or password",
            "remove them from the URL",
        ));
    }
    Ok(url)
}

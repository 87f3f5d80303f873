//! Validating a connection's `credential` section (and, for `main`, the
//! `DS24_API_KEY` / `DS24_API_KEY_FILE` variables that override it).

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

use super::file::{self, RawCredential};
use super::{ConfigError, Env, vars};
use crate::credentials::{ApiKey, CredentialSource, OAuth2Grant, OAuth2Source};
use crate::proxy::headers::API_KEY;

/// The source, the header the key goes into, and the text before it.
pub(super) type Resolved = (CredentialSource, HeaderName, String);

pub(super) fn credential(
    name: &str,
    raw: Option<RawCredential>,
    env: &dyn Env,
) -> Result<Resolved, ConfigError> {
    let plain = |source: CredentialSource| Ok((source, API_KEY, String::new()));
    // `main` also takes its key from DS24_API_KEY / DS24_API_KEY_FILE, which
    // override the file (environment beats file).
    if name == file::DEFAULT_CONNECTION {
        match (env.var(vars::API_KEY), env.var(vars::API_KEY_FILE)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    format!("{} and {}", vars::API_KEY, vars::API_KEY_FILE),
                    "both are set, so it is unclear which key `main` should use",
                    format!(
                        "unset one of them (prefer {} for a mounted secret)",
                        vars::API_KEY_FILE
                    ),
                ));
            }
            (Some(v), None) => {
                let key = key_from(vars::API_KEY, &v)?;
                return plain(CredentialSource::Env {
                    var: vars::API_KEY.to_owned(),
                    key,
                });
            }
            (None, Some(path)) => return plain(file_source(vars::API_KEY_FILE, &path)?),
            (None, None) => {}
        }
    }
    let at = |field: &str| format!("connections.{name}.credential.{field}");
    match raw {
        None => plain(CredentialSource::Missing),
        Some(RawCredential::Env { var }) => {
            let value = required_var(env, &at("var"), &var)?;
            plain(CredentialSource::Env {
                key: key_from(&var, &value)?,
                var,
            })
        }
        Some(RawCredential::File { path }) => plain(file_source(&at("path"), &path)?),
        Some(RawCredential::Command {
            command,
            timeout_secs,
        }) => {
            if command.first().is_none_or(String::is_empty) {
                return Err(ConfigError::new(
                    at("command"),
                    "the command is empty",
                    "give the program and its arguments as a list, e.g. [\"/usr/local/bin/get-ds24-key\", \"--shop\", \"a\"]",
                ));
            }
            let timeout = Duration::from_secs(match timeout_secs {
                Some(0) => {
                    return Err(ConfigError::new(
                        at("timeout_secs"),
                        "must be greater than zero",
                        "remove it to use the default (10)",
                    ));
                }
                Some(t) => t,
                None => file::DEFAULT_COMMAND_TIMEOUT_SECS,
            });
            plain(CredentialSource::Command {
                argv: command,
                timeout,
            })
        }
        Some(RawCredential::Stored) => plain(CredentialSource::Stored),
        Some(RawCredential::Oauth2 {
            token_url,
            grant,
            client_id,
            client_secret_env,
            refresh_token_env,
            scope,
            header,
            header_prefix,
        }) => {
            let token_url = url::Url::parse(&token_url)
                .ok()
                .filter(|u| {
                    u.scheme() == "https"
                        || u.host_str()
                            .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
                })
                .ok_or_else(|| {
                    ConfigError::new(
                        at("token_url"),
                        format!("`{token_url}` is not an https URL"),
                        "use the broker's https token endpoint (http only on loopback)",
                    )
                })?;
            let grant = match grant.as_deref() {
                None | Some("refresh_token") => OAuth2Grant::RefreshToken,
                Some("client_credentials") => OAuth2Grant::ClientCredentials,
                Some(other) => {
                    return Err(ConfigError::new(
                        at("grant"),
                        format!("`{other}` is not a supported grant"),
                        "use `refresh_token` or `client_credentials`",
                    ));
                }
            };
            let client_secret = client_secret_env
                .map(|var| {
                    required_var(env, &at("client_secret_env"), &var)
                        .and_then(|v| key_from(&var, &v))
                })
                .transpose()?;
            let initial_refresh_token = match refresh_token_env {
                // Optional once a rotated token is in the store, so a
                // missing variable is not an error here.
                Some(var) => env.var(&var).map(|v| key_from(&var, &v)).transpose()?,
                None => None,
            };
            if grant == OAuth2Grant::ClientCredentials && client_secret.is_none() {
                return Err(ConfigError::new(
                    at("client_secret_env"),
                    "the client_credentials grant needs a client secret",
                    "name the variable that holds it",
                ));
            }
            let header = match header {
                Some(h) => HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    ConfigError::new(
                        at("header"),
                        format!("`{h}` is not a header name"),
                        "use e.g. X-DS-API-KEY or Authorization",
                    )
                })?,
                None => API_KEY,
            };
            let source = CredentialSource::OAuth2(OAuth2Source {
                token_url,
                grant,
                client_id,
                client_secret,
                initial_refresh_token,
                scope,
            });
            Ok((source, header, header_prefix.unwrap_or_default()))
        }
    }
}

fn required_var(env: &dyn Env, key: &str, var: &str) -> Result<String, ConfigError> {
    env.var(var).ok_or_else(|| {
        ConfigError::new(
            key,
            format!("the environment variable {var} is not set"),
            format!("export {var}=… before starting, or change the credential source"),
        )
    })
}

fn key_from(var: &str, value: &str) -> Result<ApiKey, ConfigError> {
    ApiKey::parse(value).map_err(|e| {
        ConfigError::new(
            var,
            format!("the value is unusable: {e}"),
            "set it to the key exactly as Digistore24 (or the broker) shows it",
        )
    })
}

fn file_source(key: &str, path: &str) -> Result<CredentialSource, ConfigError> {
    let path = PathBuf::from(path);
    match std::fs::read_to_string(&path) {
        Ok(text) => match ApiKey::parse(&text) {
            Ok(_) => Ok(CredentialSource::File { path }),
            Err(e) => Err(ConfigError::new(
                key,
                format!("the file {} holds no usable API key: {e}", path.display()),
                "write the key alone into the file",
            )),
        },
        Err(e) => Err(ConfigError::new(
            key,
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable file that holds the key",
        )),
    }
}

//! Shared application state: the configuration, the connections with their
//! credentials, and the upstream client. Cheap to clone (one `Arc`).

use std::collections::HashMap;
use std::sync::Arc;

use url::Url;

use crate::config::Config;
use crate::credentials::Credential;
use crate::server::error::{ApiError, ErrorKind};
use crate::upstream::Upstream;

/// State shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    connections: HashMap<String, Connection>,
    upstream: Upstream,
}

/// A configured connection, ready to be used.
#[derive(Debug)]
pub struct Connection {
    /// Its name.
    pub name: String,
    /// Its base URL (no trailing slash).
    pub base_url: Url,
    /// Its credential.
    pub credential: Credential,
}

impl AppState {
    /// Builds the state for `config`.
    ///
    /// # Errors
    /// When the upstream HTTP client cannot be built (TLS setup).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let upstream = Upstream::new(&config.upstream)?;
        let connections = config
            .connections
            .values()
            .map(|c| {
                let conn = Connection {
                    name: c.name.clone(),
                    base_url: c.base_url.clone(),
                    credential: Credential::new(&c.name, c.credential.clone()),
                };
                (c.name.clone(), conn)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                connections,
                upstream,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The connection called `name`, if configured.
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.inner.connections.get(name)
    }

    /// All connections, by name.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.inner.connections.values()
    }

    /// The upstream client.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    /// The connection a request names: the `/connections/{name}/` prefix or
    /// the `X-DS24-Connection` header (they must agree), else `main`.
    ///
    /// # Errors
    /// `bad_request` for a conflict, `unknown_connection` for a name that is
    /// not configured.
    pub fn choose_connection(
        &self,
        from_path: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<&Connection, ApiError> {
        let from_header = match headers.get(crate::proxy::headers::CONNECTION_CHOICE) {
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::bad_request("X-DS24-Connection must be a plain connection name")
            })?),
            None => None,
        };
        let name = match (from_path, from_header) {
            (Some(p), Some(h)) if p != h => {
                return Err(ApiError::bad_request(format!(
                    "the path names connection `{p}` but X-DS24-Connection names `{h}`; use one of them"
                )));
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => crate::config::DEFAULT_CONNECTION,
        };
        self.connection(name).ok_or_else(|| {
            let known: Vec<&str> = self.connections().map(|c| c.name.as_str()).collect();
            ApiError::new(
                ErrorKind::UnknownConnection,
                format!(
                    "no connection named `{}` is configured; configured: {}",
                    name.chars().take(64).collect::<String>(),
                    known.join(", ")
                ),
            )
        })
    }
}

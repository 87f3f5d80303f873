//! Shared application state: the configuration, the connections with their
//! credentials, and the upstream client. Cheap to clone (one `Arc`).

use std::collections::HashMap;
use std::sync::Arc;

use url::Url;

use crate::config::Config;
use crate::credentials::Credential;
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
}

//! The application as composed at start: the configuration, the
//! connections with their credentials, breakers and rate limits, the
//! upstream client, the store and the metrics. Cheap to clone (one `Arc`).
//! The services (the call pipeline, the ledger, IPN) take it; the HTTP edge
//! holds it as its router state. It knows nothing about HTTP responses.

use std::collections::HashMap;
use std::sync::Arc;

use url::Url;

use crate::config::Config;
use crate::credentials::source::SourceContext;
use crate::credentials::{Clock, Credential, CredentialSource, SystemClock};
use crate::metrics::Metrics;
use crate::resilience::{BreakerConfig, CircuitBreaker, RateLimiter};
use crate::store::{SqliteStore, Store};
use crate::upstream::Upstream;

/// State shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    connections: HashMap<String, Arc<Connection>>,
    upstream: Upstream,
    store: Option<Arc<dyn Store>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
    /// The store when it is first needed for idempotency records and the
    /// audit log (a proxy that never writes never creates one).
    late_store: tokio::sync::OnceCell<Arc<dyn Store>>,
    /// Wakes the IPN relay when an event was stored or replayed.
    ipn_wake: tokio::sync::Notify,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("the store cannot be opened ({0}); check DS24_PROXY_DATA_DIR and DS24_PROXY_MASTER_KEY")]
pub struct StoreUnavailable(String);

/// A configured connection, ready to be used.
#[derive(Debug)]
pub struct Connection {
    /// Its name.
    pub name: String,
    /// Its base URL (no trailing slash).
    pub base_url: Url,
    /// Its credential.
    pub credential: Credential,
    /// Fails fast while its upstream is down.
    pub breaker: CircuitBreaker,
    /// Its outbound rate limit, if configured.
    pub rate: Option<RateLimiter>,
}

impl AppState {
    /// Builds the state for `config`.
    ///
    /// # Errors
    /// When the upstream HTTP client cannot be built (TLS setup).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        Self::with_clock(config, &(Arc::new(SystemClock) as Arc<dyn Clock>))
    }

    /// Like [`AppState::new`] with an injected clock (tests move it by hand).
    ///
    /// # Errors
    /// When the upstream client or the store cannot be set up.
    pub fn with_clock(mut config: Config, clock: &Arc<dyn Clock>) -> anyhow::Result<Self> {
        let upstream = Upstream::new(&config.upstream)?;
        let store = open_store(&config)?;
        if let Some(store) = &store {
            adopt_stored_connections(&mut config, store.as_ref())?;
        }
        let metrics = Arc::new(Metrics::new());
        let connections = config
            .connections
            .values()
            .map(|c| {
                let ctx = SourceContext {
                    connection: c.name.clone(),
                    store: store.clone(),
                    http: upstream.client().clone(),
                    clock: clock.clone(),
                };
                let credential = Credential::new(
                    c.credential.clone(),
                    ctx,
                    config.renew_margin,
                    c.auth_header.clone(),
                    c.auth_prefix.clone(),
                );
                credential.record_renewals_in(metrics.clone());
                // Without a configured limit the bucket is effectively
                // unlimited, but still there: a 429 from Digistore24 pauses
                // every caller of the connection, not only the one that saw it.
                let rate = Some(match c.rate_limit {
                    Some(r) => RateLimiter::new(r.per_second, r.burst, r.max_waiters, r.max_wait),
                    None => RateLimiter::new(
                        1_000_000.0,
                        1_000_000,
                        100_000,
                        std::time::Duration::from_secs(30),
                    ),
                });
                let conn = Connection {
                    name: c.name.clone(),
                    base_url: c.base_url.clone(),
                    credential,
                    breaker: CircuitBreaker::new(BreakerConfig::default()),
                    rate,
                };
                (c.name.clone(), Arc::new(conn))
            })
            .collect();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_requests));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                connections,
                upstream,
                store,
                in_flight,
                metrics,
                late_store: tokio::sync::OnceCell::new(),
                ipn_wake: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Tells the IPN relay that there is work.
    pub fn ipn_wake(&self) {
        self.inner.ipn_wake.notify_one();
    }

    /// Resolves when [`AppState::ipn_wake`] was called (at most one wake-up
    /// is kept while nobody waits).
    pub async fn ipn_notified(&self) {
        self.inner.ipn_wake.notified().await;
    }

    /// Permits for requests in flight (`server.max_concurrent_requests`).
    pub fn in_flight(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.in_flight
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The store, opened now if it was not needed at start.
    ///
    /// # Errors
    /// When it cannot be opened (data directory, master key).
    pub async fn ledger(&self) -> Result<Arc<dyn Store>, StoreUnavailable> {
        if let Some(store) = &self.inner.store {
            return Ok(store.clone());
        }
        self.inner
            .late_store
            .get_or_try_init(|| async {
                let config = self.inner.config.clone();
                let data_dir = config
                    .data_dir()
                    .map_err(|e| StoreUnavailable(e.to_string()))?
                    .to_owned();
                tokio::task::spawn_blocking(move || {
                    SqliteStore::open(&data_dir, config.master_key.as_ref())
                })
                .await
                .map_err(|e| StoreUnavailable(e.to_string()))?
                .map(|s| Arc::new(s) as Arc<dyn Store>)
                .map_err(|e| StoreUnavailable(e.to_string()))
            })
            .await
            .cloned()
    }

    /// The store if it is open (never opens it).
    pub fn ledger_if_open(&self) -> Option<Arc<dyn Store>> {
        self.inner
            .store
            .clone()
            .or_else(|| self.inner.late_store.get().cloned())
    }

    /// The store, when one is open.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.inner.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The connection called `name`, if configured.
    pub fn connection(&self, name: &str) -> Option<&Arc<Connection>> {
        self.inner.connections.get(name)
    }

    /// All connections, by name.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.inner.connections.values().map(|c| &**c)
    }

    /// The upstream client.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    /// The connection a request names: the `/connections/{name}/` prefix or
    /// the `X-DS24-Connection` header (they must agree), else `main`.
    ///
    /// # Errors
    /// [`ConnectionChoice`]: a conflict, an unreadable header, or a name
    /// that is not configured.
    pub fn choose_connection(
        &self,
        from_path: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<&Arc<Connection>, ConnectionChoice> {
        let from_header = match headers.get(crate::proxy::headers::CONNECTION_CHOICE) {
            Some(v) => Some(v.to_str().map_err(|_| ConnectionChoice::Unreadable)?),
            None => None,
        };
        let name = match (from_path, from_header) {
            (Some(p), Some(h)) if p != h => {
                return Err(ConnectionChoice::Conflict {
                    path: p.to_owned(),
                    header: h.to_owned(),
                });
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => crate::config::DEFAULT_CONNECTION,
        };
        self.connection(name).ok_or_else(|| {
            let mut known: Vec<&str> = self.connections().map(|c| c.name.as_str()).collect();
            known.sort_unstable();
            ConnectionChoice::Unknown {
                name: name.chars().take(64).collect(),
                known: known.join(", "),
            }
        })
    }
}

/// Why a request's connection could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionChoice {
    /// The header is not text.
    #[error("X-DS24-Connection must be a plain connection name")]
    Unreadable,
    /// Path and header disagree.
    #[error(
        "the path names connection `{path}` but X-DS24-Connection names `{header}`; use one of them"
    )]
    Conflict {
        /// From the path.
        path: String,
        /// From the header.
        header: String,
    },
    /// No such connection.
    #[error("no connection named `{name}` is configured; configured: {known}")]
    Unknown {
        /// The name asked for (cut to 64 characters).
        name: String,
        /// The configured names.
        known: String,
    },
}

/// Opens the store when a connection keeps its secret there, or when one
/// already exists (connections made with `ds24-proxy connect`). A proxy
/// that only uses `env` or `file` keys never creates a data directory.
///
/// # Errors
/// When a store is needed but cannot be opened.
pub fn open_store(config: &Config) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let needed = config
        .connections
        .values()
        .any(|c| c.credential.needs_store());
    let exists = config
        .data_dir()
        .is_ok_and(|dir| dir.join(crate::store::DB_FILE).exists());
    if !needed && !exists {
        return Ok(None);
    }
    let data_dir = config.data_dir()?;
    let store = SqliteStore::open(data_dir, config.master_key.as_ref())
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", data_dir.display()))?;
    Ok(Some(Arc::new(store)))
}

/// The base URL a stored connection was made against, if recorded and
/// still acceptable as a base URL (the store is not trusted more than the
/// configuration: plain http only to loopback).
fn recorded_base_url(state: &crate::store::ConnectionState) -> Option<Url> {
    let value = state.base_url.as_deref()?;
    match crate::config::check_base_url("the store's base URL", value) {
        Ok(url) => Some(url),
        Err(e) => {
            tracing::warn!(connection = %state.connection, error = %e, "ignoring the stored base URL");
            None
        }
    }
}

/// Connections stored by `connect` but not in the configuration join it
/// with a `stored` source; so does `main` when it has no other source. An
/// adopted connection uses the base URL `connect` verified its key against
/// (a key made on the sandbox is never sent to Digistore24), else the
/// configured one.
///
/// A connection is stored when its state says so, or when the store holds
/// its `api_key` (only `connect` writes one): earlier versions let a run
/// with `DS24_API_KEY` rewrite a stored `main`'s state to `env`, and such a
/// store is repaired here rather than leaving the key orphaned.
fn adopt_stored_connections(config: &mut Config, store: &dyn Store) -> anyhow::Result<()> {
    let default_base = config
        .connections
        .get(crate::config::DEFAULT_CONNECTION)
        .map(|c| c.base_url.clone());
    for state in store.states()? {
        let stored = state.source_kind == "stored"
            || (state.source_kind != "oauth2"
                && store.secret(&state.connection, "api_key")?.is_some());
        if !stored {
            continue;
        }
        let recorded = recorded_base_url(&state);
        match config.connections.get_mut(&state.connection) {
            Some(c) if matches!(c.credential, CredentialSource::Missing) => {
                c.credential = CredentialSource::Stored;
                if let Some(url) = recorded {
                    c.base_url = url;
                }
            }
            Some(_) => {}
            None => {
                let Some(base_url) = recorded.or_else(|| default_base.clone()) else {
                    continue;
                };
                config.connections.insert(
                    state.connection.clone(),
                    crate::config::ConnectionConfig {
                        name: state.connection.clone(),
                        base_url,
                        credential: CredentialSource::Stored,
                        auth_header: crate::proxy::headers::API_KEY,
                        auth_prefix: String::new(),
                        rate_limit: None,
                        ipn: crate::config::ConnectionIpn::default(),
                    },
                );
            }
        }
    }
    Ok(())
}

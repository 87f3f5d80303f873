//! ds24-proxy: a local authenticating proxy for the Digistore24 vendor API.
//!
//! Module map:
//! - [`actions`]: the catalog of every Digistore24 function as a named action (data),
//!   with schema generation, validation, form encoding and intent ranking.
//! - [`call`]: calling an action upstream: envelope unwrapping, `all_pages`, NDJSON.
//! - [`cli`]: the command line (clap) and what each command does.
//! - [`config`]: layered configuration (defaults < file < env < flags), validated.
//! - [`credentials`]: credential sources and the [`credentials::ApiKey`] secret type.
//! - [`upstream`]: the pooled HTTP client to Digistore24 and its error classification.
//! - [`ledger`]: idempotency keys and the audit log of write and money calls.
//! - [`metrics`]: Prometheus metrics served at `GET /metrics`.
//! - [`policy`]: inbound callers and what their token's policy allows.
//! - [`proxy`]: the pass-through route: path normalisation, header rules, streaming.
//! - [`server`]: router, serve loop with drain, state, error rendering, middleware.
//! - [`resilience`]: retry policy, circuit breaker and outbound rate limiter.
//! - [`sandbox`]: a local stand-in for the Digistore24 API (offline use and tests).
//! - [`store`]: the embedded SQLite store: encrypted secrets and connection state.
//! - [`telemetry`]: tracing subscriber setup.

pub mod actions;
pub mod app;
pub mod call;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod ipn;
pub mod ledger;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod resilience;
pub mod sandbox;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod upstream;

use std::future::Future;

use tokio::net::TcpListener;

pub use app::AppState;
pub use config::Config;

/// Runs the proxy on an already bound `listener` until `shutdown` resolves,
/// then drains requests in flight (up to `server.drain_timeout_secs`).
///
/// # Errors
/// When the upstream client cannot be built or the listener fails.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let options = server::ServeOptions {
        drain: config.drain_timeout,
        header_read_timeout: config.header_read_timeout,
        workers: config.workers,
    };
    let state = AppState::new(config)?;
    let purge = tokio::spawn(ledger::maintain(
        state.clone(),
        server::error::cut_off_reply(),
    ));
    // The relay runs when events have somewhere to go; its work list is in
    // the store, so deliveries left over from before a restart go on too.
    let relay = if state
        .config()
        .connections
        .values()
        .any(|c| !c.ipn.forward_to.is_empty())
    {
        let client = ipn::relay::client(&state.config().ipn)?;
        Some(tokio::spawn(ipn::relay::run(
            state.clone(),
            client,
            std::future::pending(),
        )))
    } else {
        None
    };
    let app = server::router(state);
    let served = server::serve(listener, app, shutdown, options).await;
    purge.abort();
    if let Some(relay) = relay {
        // A delivery cut short stays pending in the store: sent again later.
        relay.abort();
    }
    served?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

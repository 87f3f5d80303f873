//! The HTTP server: [`router`] builds the whole app (tests use it too) and
//! [`serve`] runs it on a bound listener until a shutdown signal, then drains.

// The HTTP edge is the one place allowed to use the HTTP error (clippy.toml).
#![allow(clippy::disallowed_types)]

pub mod error;
pub mod middleware;
pub mod routes;
mod trace;
pub mod workers;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::header;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::app::AppState;
use crate::proxy;

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/openapi.json", get(routes::openapi::openapi))
        .route("/connections", get(routes::connections::list_connections))
        .route("/metrics", get(routes::health::metrics))
        .route("/actions", get(routes::actions::list_actions))
        .route(
            "/actions/{key}",
            get(routes::actions::show_action).post(routes::actions::call_action),
        )
        .route(
            "/connections/{name}/actions/{key}",
            post(routes::actions::call_action_on),
        )
        .route(
            "/ipn/{connection}",
            get(routes::ipn::check).post(routes::ipn::receive),
        )
        .route("/events", get(routes::events::list))
        .route("/events/{id}", get(routes::events::show))
        .route("/events/{id}/replay", post(routes::events::replay))
        .fallback(routes::passthrough::pass_through)
        .with_state(state.clone());
    // Outermost first: secrets are marked sensitive before anything can log
    // them; the request id exists before the span and the error renderer.
    routes.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                proxy::headers::API_KEY,
            ]))
            .layer(SetRequestIdLayer::x_request_id(middleware::NewRequestId))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(trace::layer())
            .layer(axum::middleware::from_fn_with_state(
                state,
                middleware::per_request,
            )),
    )
}

/// How [`serve`] runs connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How long requests in flight may take to finish after shutdown.
    pub drain: Duration,
    /// A client must send a request's head within this time.
    pub header_read_timeout: Duration,
    /// Connection worker threads ([`workers`]); 0 means one per core, at
    /// most [`workers::MAX_DEFAULT`].
    pub workers: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish for up to `options.drain` before returning.
///
/// Connections are accepted here and each is served to its end on one of
/// the [`workers`].
///
/// Built on hyper-util rather than `axum::serve` because it exposes the
/// header read timeout (a client that trickles headers is cut off) and
/// per-connection graceful shutdown.
///
/// # Errors
/// Only if the listener itself fails permanently.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let workers = workers::Workers::start(match options.workers {
        0 => workers::default_count(),
        n => n,
    })?;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors is transient: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The socket moves to the worker's own I/O driver.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "accepted connection lost before it was served");
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        workers.spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "accepted connection lost before it was served");
                    return;
                }
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        drain_secs = options.drain.as_secs(),
        "shutting down; letting requests in flight finish"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.drain) => tracing::warn!("drain time over; closing remaining connections"),
    }
    workers.stop().await;
    Ok(())
}

//! The HTTP server: [`router`] builds the whole app (tests use it too) and
//! [`serve`] runs it on a bound listener until a shutdown signal, then drains.

pub mod error;
pub mod middleware;
pub mod routes;
pub mod state;
mod trace;

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

use crate::proxy;
use state::AppState;

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
            get(crate::ipn::receiver::check).post(crate::ipn::receiver::receive),
        )
        .route("/events", get(crate::ipn::events::list))
        .route("/events/{id}", get(crate::ipn::events::show))
        .route("/events/{id}/replay", post(crate::ipn::events::replay))
        .fallback(proxy::pass_through)
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
                state.clone(),
                middleware::record_metrics,
            ))
            .layer(axum::middleware::from_fn(middleware::render_errors))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                middleware::limit_concurrency,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state,
                middleware::require_token,
            )),
    )
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish for up to `drain` before returning.
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
    drain: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
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
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        drain_secs = drain.as_secs(),
        "shutting down; letting requests in flight finish"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(drain) => tracing::warn!("drain time over; closing remaining connections"),
    }
    Ok(())
}

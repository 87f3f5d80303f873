//! `GET /healthz` (the process is up) and `GET /readyz` (it can serve:
//! every connection has a usable credential).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::app::AppState;

/// Liveness: answers as long as the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 when every connection can produce a key, else 503 naming
/// each connection that cannot and why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut connections = Map::new();
    let mut ready = true;
    for conn in state.connections() {
        let attention = conn.credential.status();
        let entry = match conn.credential.key().await {
            Ok(_) if attention.needs_attention => {
                ready = false;
                json!({ "state": "needs_attention", "source": conn.credential.source().kind(), "reason": attention.last_error })
            }
            Ok(_) => json!({ "state": "ok", "source": conn.credential.source().kind() }),
            Err(e) => {
                ready = false;
                json!({ "state": "needs_attention", "source": conn.credential.source().kind(), "reason": e.to_string() })
            }
        };
        connections.insert(conn.name.clone(), entry);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body =
        json!({ "status": if ready { "ready" } else { "not_ready" }, "connections": connections });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus/OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics().render(),
    )
        .into_response()
}

//! `GET /connections`: each connection's name, credential source, state,
//! key id prefix, expiry, last renewal and last error. Never a secret.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::{AppState, Connection};
use crate::credentials::CredentialSource;

/// RFC 3339 in UTC, or null.
pub fn rfc3339(t: Option<SystemTime>) -> Value {
    t.and_then(|t| {
        time::OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(Value::Null, Value::String)
}

/// The public description of one connection.
pub fn describe(conn: &Connection) -> Value {
    let status = conn.credential.status();
    let source = conn.credential.source();
    let detail = match source {
        CredentialSource::Env { var, .. } => json!({ "var": var }),
        CredentialSource::File { path } => json!({ "path": path }),
        CredentialSource::Command { argv, .. } => json!({ "program": argv.first() }),
        CredentialSource::OAuth2(o) => {
            json!({ "token_url": o.token_url.as_str(), "header": conn.credential.header().as_str() })
        }
        CredentialSource::Missing | CredentialSource::Stored | CredentialSource::Static(_) => {
            json!({})
        }
    };
    let state = match (source, status.needs_attention) {
        (CredentialSource::Missing, _) => "no_credential",
        (_, true) => "needs_attention",
        _ => "ok",
    };
    json!({
        "name": conn.name,
        "base_url": conn.base_url.as_str(),
        "source": source.kind(),
        "source_detail": detail,
        "state": state,
        "key_id": status.key_id,
        "expires_at": rfc3339(status.expires_at),
        "last_renewal_at": rfc3339(status.last_renewal_at),
        "last_error": status.last_error,
        "source_reads": conn.credential.fetch_count(),
    })
}

/// `GET /connections`
pub async fn list_connections(State(state): State<AppState>) -> Json<Value> {
    let mut connections: Vec<&Connection> = state.connections().collect();
    connections.sort_by(|a, b| a.name.cmp(&b.name));
    Json(json!({ "connections": connections.into_iter().map(describe).collect::<Vec<_>>() }))
}

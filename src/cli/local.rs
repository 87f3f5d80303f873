//! Running one request through the server's own router in-process, so that
//! `request` and `actions run` take exactly the code path a client of
//! `serve` takes (validation, connection choice, key, timeouts, errors).

use std::path::PathBuf;

use anyhow::Context;
use axum::body::Body;
use http::{Request, StatusCode};
use tower::ServiceExt;

use crate::app::AppState;
use crate::config::{self, Overrides, ProcessEnv};
use crate::server;

/// Options shared by the commands that call Digistore24.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CallOptions {
    /// Connection to use (default `main`).
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Configuration file (default: config/default.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A reply, fully read.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: bytes::Bytes,
    /// The reply is Digistore24's own (pass-through), not an answer or an
    /// error made by the proxy.
    pub from_upstream: bool,
}

/// Sends `request` through the router built from the configuration.
///
/// # Errors
/// A configuration error, or a body that could not be read.
pub async fn send(options: &CallOptions, mut request: Request<Body>) -> anyhow::Result<Reply> {
    let overrides = Overrides {
        config_file: options.config.clone(),
        ..Overrides::default()
    };
    let mut config = config::load(&ProcessEnv, &overrides)?;
    crate::telemetry::init_cli(config.log_format);
    // The call never leaves this process: inbound tokens (set for the
    // server in a sidecar's environment) do not apply.
    config.tokens.clear();
    if let Some(name) = &options.connection {
        request.headers_mut().insert(
            crate::proxy::headers::CONNECTION_CHOICE,
            name.parse().context("--connection must be a plain name")?,
        );
    }
    // Over the network hyper sets Content-Length; in-process nobody does,
    // and the proxy would take the request for body-less. An empty body
    // gets none (a GET carries no Content-Length).
    if let Some(len) = http_body::Body::size_hint(request.body())
        .exact()
        .filter(|n| *n > 0)
        && !request.headers().contains_key(http::header::CONTENT_LENGTH)
    {
        request
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, len.into());
    }
    let state = AppState::new(config)?;
    let response = server::router(state)
        .oneshot(request)
        .await
        .context("the request failed inside the proxy")?;
    let (parts, body) = response.into_parts();
    let from_upstream = parts
        .extensions
        .get::<crate::server::middleware::UpstreamReply>()
        .is_some();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .context("reading the reply")?;
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        from_upstream,
    })
}

/// Fails with an error reply's message (the proxy's JSON error, or
/// Digistore24's error envelope in words), or passes a successful reply on.
///
/// # Errors
/// For any status of 400 or more.
pub fn check(reply: Reply) -> anyhow::Result<Reply> {
    if reply.status.as_u16() < 400 {
        return Ok(reply);
    }
    let detail = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| {
            let error = v.get("error")?;
            Some(format!(
                "{} ({}): {}",
                error.get("type")?.as_str()?,
                reply.status,
                error.get("message")?.as_str()?
            ))
        })
        .or_else(|| digistore24_error(&reply))
        .unwrap_or_else(|| {
            format!(
                "HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )
        });
    anyhow::bail!("{detail}")
}

/// Digistore24's own error envelope (`{"result": "error", "code": …,
/// "message": …}`), said in words rather than printed raw.
fn digistore24_error(reply: &Reply) -> Option<String> {
    let v = serde_json::from_slice::<serde_json::Value>(&reply.body).ok()?;
    if v.get("result")?.as_str()? != "error" {
        return None;
    }
    let message = v
        .get("message")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .unwrap_or("no message");
    let code = v
        .get("code")
        .filter(|c| !c.is_null())
        .map(|c| match c.as_str() {
            Some(s) => format!(", code {s}"),
            None => format!(", code {c}"),
        })
        .unwrap_or_default();
    Some(format!(
        "Digistore24 refused the call ({}{code}): {message}",
        reply.status
    ))
}

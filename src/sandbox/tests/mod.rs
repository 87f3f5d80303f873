//! Tests of the sandbox, driving `router()` in-process with `oneshot`.
//! Helpers live here; each file covers one concern.

mod approval;
mod auth;
mod catalog;
mod clock;
mod connect;
mod faults;
mod functions;
mod keys;
mod paging;
mod params;
mod products;
mod purchases;
mod quirks;
mod recording;
mod routes;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::{Sandbox, SandboxOptions, WRITABLE_KEY};

/// Form content type, as the official connectors send it.
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// A decoded sandbox reply.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Reply {
    /// The `data` of a success, after checking it is one.
    fn data(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "reply: {}", self.json);
        assert_eq!(self.json["result"], "success", "reply: {}", self.json);
        &self.json["data"]
    }

    /// The error code, after checking the reply is an error.
    fn code(&self) -> u64 {
        assert_eq!(self.json["result"], "error", "reply: {}", self.json);
        self.json["code"].as_u64().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }
}

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxOptions::default())
}

/// A reply as it came, for the ones that are not JSON.
#[derive(Debug)]
struct RawReply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RawReply {
    /// The body as text (pages, plain-text faults).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request through a fresh router of `sandbox`; returns the reply
/// whatever its body.
async fn send_raw(sandbox: &Sandbox, request: Request<Body>) -> RawReply {
    let response = sandbox
        .router()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body is in memory")
        .to_bytes();
    RawReply {
        status,
        headers,
        body,
    }
}

/// Sends a request through a fresh router of `sandbox`.
async fn send(sandbox: &Sandbox, request: Request<Body>) -> Reply {
    let raw = send_raw(sandbox, request).await;
    let json = serde_json::from_slice(&raw.body).expect("every reply is JSON");
    Reply {
        status: raw.status,
        headers: raw.headers,
        json,
    }
}

/// A form POST to `path` with an optional key.
fn post(path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::post(path).header(header::CONTENT_TYPE, FORM);
    if let Some(key) = key {
        builder = builder.header("X-DS-API-KEY", key);
    }
    builder
        .body(Body::from(body.to_owned()))
        .expect("a valid request")
}

/// Calls `function` with a form body and the given key.
async fn call_as(sandbox: &Sandbox, key: &str, function: &str, body: &str) -> Reply {
    send(
        sandbox,
        post(&format!("/api/call/{function}"), Some(key), body),
    )
    .await
}

/// Calls `function` with the writable key.
async fn call(sandbox: &Sandbox, function: &str, body: &str) -> Reply {
    call_as(sandbox, WRITABLE_KEY, function, body).await
}

/// Calls `function` with the writable key and returns its `data`.
async fn data(sandbox: &Sandbox, function: &str, body: &str) -> Value {
    call(sandbox, function, body).await.data().clone()
}

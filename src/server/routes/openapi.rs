//! `GET /openapi.json`: this proxy's own API as OpenAPI 3.1, generated from
//! the action table, so client generators and API browsers see every route
//! (pass-through, actions, events, IPN, admin) and every action with its
//! input schema.
//!
//! The document is built once; each request gets its `servers` (the address
//! the client reached the proxy at: the request's `Host`, else the configured
//! listen address) and, when inbound tokens are configured, the bearer
//! scheme as the default `security`.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use crate::actions::{CATALOG, Effect};
use crate::app::AppState;

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// Name of the bearer scheme under `components.securitySchemes`.
pub const BEARER_SCHEME: &str = "bearerToken";

/// The document for this request.
pub async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let config = state.config();
    Json(for_request(
        &DOCUMENT,
        &server_url(&headers, config.listen),
        !config.tokens.is_empty(),
    ))
}

/// `doc` with `servers` set to `url` and, with `tokens`, the bearer scheme
/// required everywhere but on the routes that take no token (`/healthz`,
/// `/ipn/{connection}`, which say `security: []` themselves).
pub fn for_request(doc: &Value, url: &str, tokens: bool) -> Value {
    let mut doc = doc.clone();
    doc["servers"] = json!([{ "url": url, "description": "this proxy" }]);
    if tokens {
        doc["components"]["securitySchemes"] = json!({ BEARER_SCHEME: {
            "type": "http", "scheme": "bearer",
            "description": "One of the inbound tokens (DS24_PROXY_TOKEN): `Authorization: Bearer <token>`."
        } });
        doc["security"] = json!([{ BEARER_SCHEME: [] }]);
    }
    doc
}

/// `http://{Host}` when the request's `Host` is a plain authority, else
/// the listen address (an unspecified one, `0.0.0.0`, as loopback).
pub fn server_url(headers: &HeaderMap, listen: SocketAddr) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        // No user info: `Host: user@evil` is not an address to advertise.
        .filter(|a| !a.as_str().contains('@'));
    match host {
        Some(authority) => format!("http://{authority}"),
        None => {
            let mut listen = listen;
            if listen.ip().is_unspecified() {
                listen.set_ip(match listen {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{listen}")
        }
    }
}

fn json_content(schema: Value) -> Value {
    let mut media = Map::new();
    media.insert("schema".into(), schema);
    let mut content = Map::new();
    content.insert("application/json".into(), Value::Object(media));
    Value::Object(content)
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": json_content(schema) })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Error")) })
}

/// The error responses every operation of the proxy's own routes has: the
/// specific ones given, then `4XX`/`5XX` for the rest (an inbound token, a
/// policy, load shedding, the store).
fn with_errors(ok: Value, specific: &[(&str, &str)]) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for (status, description) in specific {
        responses.insert((*status).into(), error_response(description));
    }
    responses.insert(
        "4XX".into(),
        error_response("an error made by the proxy: bad_request, unauthorized, forbidden_by_policy, rate_limited, …"),
    );
    responses.insert(
        "5XX".into(),
        error_response(
            "an error made by the proxy: upstream_unavailable, overloaded, internal_error, …",
        ),
    );
    Value::Object(responses)
}

fn header_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": { "type": "string" } })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    let mut param =
        json!({ "name": name, "in": "path", "required": true, "description": description });
    param["schema"] = schema;
    param
}

fn connection_header() -> Value {
    header_param(
        "X-DS24-Connection",
        "The connection to use (default `main`).",
    )
}

fn idempotency_header() -> Value {
    header_param(
        "Idempotency-Key",
        "On a write: a repeat with the same key is answered with the recorded reply (`Idempotent-Replayed: true`) instead of calling again.",
    )
}

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Read => "read",
        Effect::Write => "write",
        Effect::Money => "money",
    }
}

/// Builds the document (without `servers` and `security`, see
/// [`for_request`]).
pub fn build() -> Value {
    let mut paths = Map::new();
    admin_paths(&mut paths);
    action_paths(&mut paths);
    pass_through_paths(&mut paths);
    event_paths(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ds24-proxy", "version": env!("CARGO_PKG_VERSION"),
            "description": "Local authenticating proxy for the Digistore24 vendor API. Errors made by the proxy are `{\"error\": {type, message, request_id, …}}`; on the pass-through routes they also carry Digistore24's envelope fields (`api_version`, `result: \"error\"`, `code`, `message`)."
        },
        "servers": [{ "url": "http://127.0.0.1:7424" }],
        "tags": [
            { "name": "admin", "description": "Health, metrics, connections, this document" },
            { "name": "actions", "description": "The action catalog" },
            { "name": "pass-through", "description": "Any Digistore24 function, with the stored key" },
            { "name": "events", "description": "IPN events received from Digistore24" },
        ],
        "paths": paths,
        "components": { "schemas": schemas() },
    })
}

fn admin_paths(paths: &mut Map<String, Value>) {
    paths.insert("/healthz".into(), json!({ "get": {
        "operationId": "healthz", "summary": "Liveness", "tags": ["admin"], "security": [],
        "responses": with_errors(ok("up", json!({ "type": "object", "properties": { "status": { "type": "string" } } })), &[]) } }));
    paths.insert("/readyz".into(), json!({ "get": {
        "operationId": "readyz", "summary": "Readiness: every connection has a usable key", "tags": ["admin"],
        "responses": with_errors(ok("ready", schema_ref("Readiness")), &[]) } }));
    // 503 of /readyz is the not-ready document, not an error object.
    paths["/readyz"]["get"]["responses"]["503"] =
        ok("a connection needs attention", schema_ref("Readiness"));
    paths.insert("/metrics".into(), json!({ "get": {
        "operationId": "metrics", "summary": "Prometheus metrics", "tags": ["admin"],
        "responses": with_errors(json!({ "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } }), &[]) } }));
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
        "operationId": "openapi", "summary": "This document", "tags": ["admin"],
        "responses": with_errors(ok("OpenAPI 3.1", json!({ "type": "object" })), &[]) } }),
    );
    paths.insert("/connections".into(), json!({ "get": {
        "operationId": "listConnections", "summary": "The configured connections (never a secret)", "tags": ["admin"],
        "responses": with_errors(ok("the connections", json!({ "type": "object", "properties": { "connections": { "type": "array", "items": { "type": "object" } } } })), &[]) } }));
}

fn action_paths(paths: &mut Map<String, Value>) {
    paths.insert("/actions".into(), json!({ "get": {
        "operationId": "listActions", "summary": "List actions, ranked by relevance when `intent` is given", "tags": ["actions"],
        "parameters": [{ "name": "intent", "in": "query", "required": false, "schema": { "type": "string" } }],
        "responses": with_errors(ok("the actions", json!({ "type": "object", "properties": { "actions": { "type": "array", "items": schema_ref("Action") } } })), &[]) } }));
    let call_errors: &[(&str, &str)] = &[
        ("400", "validation_failed or bad_request"),
        (
            "401",
            "unauthorized (inbound token) or credential_rejected / upstream_error: the key was refused",
        ),
        (
            "403",
            "forbidden_by_policy or upstream_error: permission denied",
        ),
        (
            "404",
            "unknown_action, unknown_connection or upstream_error: not found",
        ),
        ("429", "rate_limited"),
        (
            "502",
            "upstream_error, upstream_unavailable or outcome_unknown (a write whose fate is not known: check before trying again)",
        ),
        (
            "503",
            "upstream_unavailable (circuit open), overloaded or credential_missing",
        ),
        ("504", "upstream_unavailable: timeout"),
    ];
    for action in CATALOG {
        let mut schema = action.input_schema();
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
        }
        let mut parameters = vec![connection_header()];
        if action.effect != Effect::Read {
            parameters.push(idempotency_header());
        }
        if action.is_paged() {
            parameters.push(header_param(
                "Accept",
                "`application/x-ndjson` with `all_pages: true` streams the items, one JSON object a line.",
            ));
        }
        paths.insert(format!("/actions/{}", action.key), json!({
            "get": {
                "operationId": format!("show_{}", action.function), "summary": format!("Describe {}", action.key), "tags": [action.tag],
                "responses": with_errors(ok("the action", schema_ref("Action")), &[("404", "unknown_action")]),
            },
            "post": {
                "operationId": action.function, "summary": action.summary, "tags": [action.tag],
                "x-effect": effect_name(action.effect), "x-paged": action.is_paged(),
                "parameters": parameters,
                "requestBody": { "required": true, "content": json_content(schema) },
                "responses": with_errors(ok("Digistore24's data, unwrapped", schema_ref("Result")), call_errors),
            },
        }));
    }
    paths.insert("/connections/{name}/actions/{key}".into(), json!({ "post": {
        "operationId": "callActionOn", "summary": "Run an action on the connection named in the path (input as for /actions/{key})", "tags": ["actions"],
        "parameters": [
            path_param("name", "the connection", json!({ "type": "string" })),
            path_param("key", "the action key (or its function name)", json!({ "type": "string" })),
            idempotency_header(),
        ],
        "requestBody": { "required": true, "content": json_content(json!({ "type": "object" })) },
        "responses": with_errors(ok("Digistore24's data, unwrapped", schema_ref("Result")), call_errors) } }));
}

/// One pass-through operation: the proxy forwards it and returns
/// Digistore24's reply unchanged; its own errors are [`PassThroughError`].
fn pass_through_operation(
    operation_id: &str,
    summary: &str,
    params: Vec<Value>,
    body: bool,
) -> Value {
    let mut params = params;
    params.push(connection_header());
    params.push(idempotency_header());
    let error = json!({ "description": "Digistore24's error envelope, or an error made by the proxy (then with `error` too)", "content": json_content(schema_ref("PassThroughError")) });
    let mut op = json!({
        "operationId": operation_id, "summary": summary, "tags": ["pass-through"],
        "description": "Forwarded to `{base_url}/{function}` with the stored key in `X-DS-API-KEY`; method, query and body are kept (PUT, PATCH and DELETE are forwarded too). Parameters are Digistore24's, in the query or a form body.",
        "parameters": params,
        "responses": {
            "200": { "description": "Digistore24's reply, unchanged", "content": json_content(schema_ref("Envelope")) },
            "4XX": error,
            "5XX": error,
        },
    });
    if body {
        op["requestBody"] = json!({ "required": false, "content": {
            "application/x-www-form-urlencoded": { "schema": { "type": "object", "additionalProperties": true } } } });
    }
    op
}

fn pass_through_paths(paths: &mut Map<String, Value>) {
    let function = || {
        path_param(
            "function",
            "a Digistore24 function, e.g. listProducts",
            json!({ "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$" }),
        )
    };
    let name = || path_param("name", "the connection", json!({ "type": "string" }));
    let forms: [(&str, &str, &str, Vec<Value>); 5] = [
        (
            "/{function}",
            "passThrough",
            "Call a Digistore24 function",
            vec![function()],
        ),
        (
            "/api/call/{function}",
            "passThroughApiCall",
            "Call a Digistore24 function (Digistore24's own path)",
            vec![function()],
        ),
        (
            "/api/call/{function}/format/json",
            "passThroughFormatJson",
            "Call a Digistore24 function (with the format suffix some clients send)",
            vec![function()],
        ),
        (
            "/connections/{name}/{function}",
            "passThroughOn",
            "Call a Digistore24 function on the connection named in the path",
            vec![name(), function()],
        ),
        (
            "/connections/{name}/api/call/{function}",
            "passThroughOnApiCall",
            "Call a Digistore24 function on the connection named in the path (Digistore24's own path)",
            vec![name(), function()],
        ),
    ];
    for (path, id, summary, params) in forms {
        paths.insert(
            path.into(),
            json!({
                "get": pass_through_operation(&format!("{id}Get"), summary, params.clone(), false),
                "post": pass_through_operation(id, summary, params, true),
            }),
        );
    }
    let mut legacy = pass_through_operation(
        "passThroughLegacy",
        "The old PHP connector's form: the key in the path is discarded, the stored key is sent",
        vec![
            path_param(
                "api_key",
                "ignored (never forwarded)",
                json!({ "type": "string" }),
            ),
            function(),
        ],
        true,
    );
    legacy["deprecated"] = Value::Bool(true);
    paths.insert(
        "/api/call/{api_key}/json/{function}".into(),
        json!({ "post": legacy }),
    );
}

fn event_paths(paths: &mut Map<String, Value>) {
    let query = |name: &str, description: &str, schema: Value| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema });
    paths.insert("/events".into(), json!({ "get": {
        "operationId": "listEvents", "summary": "IPN events received, newest first", "tags": ["events"],
        "parameters": [
            query("connection", "only this connection", json!({ "type": "string" })),
            query("type", "only this event type (on_payment, …)", json!({ "type": "string" })),
            query("state", "only events in this state", json!({ "type": "string", "enum": ["stored", "pending", "delivered", "dead"] })),
            query("purchase", "only this purchase (order_id)", json!({ "type": "string" })),
            query("limit", "at most this many (default 100, at most 1000)", json!({ "type": "integer", "minimum": 1 })),
        ],
        "responses": with_errors(ok("the events", json!({ "type": "object", "properties": { "events": { "type": "array", "items": schema_ref("Event") } } })), &[("400", "bad_request: unknown state")]) } }));
    let id = || path_param("id", "the event id", json!({ "type": "integer" }));
    paths.insert("/events/{id}".into(), json!({ "get": {
        "operationId": "showEvent", "summary": "One event with its fields and deliveries", "tags": ["events"],
        "parameters": [id()],
        "responses": with_errors(ok("the event", schema_ref("Event")), &[("404", "not_found")]) } }));
    paths.insert("/events/{id}/replay".into(), json!({ "post": {
        "operationId": "replayEvent", "summary": "Deliver an event to the app again", "tags": ["events"],
        "parameters": [id()],
        "responses": with_errors(ok("replayed", json!({ "type": "object", "properties": { "id": { "type": "integer" }, "replayed_deliveries": { "type": "integer" } } })), &[("404", "not_found"), ("409", "nothing to deliver to")]) } }));
    let connection = || {
        path_param(
            "connection",
            "the connection the notifications are for",
            json!({ "type": "string" }),
        )
    };
    let plain_ok = json!({ "description": "`OK`", "content": { "text/plain": { "schema": { "type": "string" } } } });
    paths.insert("/ipn/{connection}".into(), json!({
        "get": {
            "operationId": "checkIpn", "summary": "Digistore24's reachability check of the IPN URL", "tags": ["events"], "security": [],
            "parameters": [connection()],
            "responses": with_errors(plain_ok.clone(), &[("404", "unknown_connection")]),
        },
        "post": {
            "operationId": "receiveIpn", "summary": "Receive a signed notification from Digistore24 (checked by its signature, not a token)", "tags": ["events"], "security": [],
            "parameters": [connection()],
            "requestBody": { "required": true, "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object", "additionalProperties": true } } } },
            "responses": with_errors(plain_ok, &[("403", "ipn_refused: the signature does not verify"), ("404", "unknown_connection")]),
        },
    }));
}

fn schemas() -> Value {
    let error_object = json!({ "type": "object", "required": ["type", "message", "request_id"], "properties": {
        "type": { "type": "string", "description": "bad_request, validation_failed, unknown_action, unknown_connection, unauthorized, forbidden_by_policy, credential_missing, credential_rejected, upstream_error, upstream_unavailable, outcome_unknown, idempotency_key_reused, rate_limited, overloaded, payload_too_large, not_found, method_not_allowed, internal_error, …" },
        "message": { "type": "string" }, "request_id": { "type": "string" },
        "errors": { "type": "array", "items": { "type": "object", "properties": { "path": { "type": "string" }, "message": { "type": "string" } } } },
        "error_count": { "type": "integer" },
        "suggestions": { "type": "array", "items": { "type": "string" } },
        "retry_after_ms": { "type": "integer" },
        "upstream": { "type": "object", "properties": { "code": { "type": ["integer", "null"] }, "message": { "type": "string" }, "http_status": { "type": "integer" } } } } });
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": error_object.clone() } },
        "PassThroughError": {
            "type": "object", "required": ["result", "code", "message"],
            "description": "Digistore24's error envelope. When the proxy made the error, `error` holds its own error object, and `code` is Digistore24's code of that meaning (2 bad key, 3 bad parameters, 4 not found, 5 permission denied, 9 bad call, 10 key missing, 11 internal, 12 too many requests).",
            "properties": {
                "api_version": { "type": "string" }, "current_time": { "type": "string" },
                "result": { "type": "string", "enum": ["error"] },
                "code": { "type": "integer" }, "message": { "type": "string" },
                "error": error_object,
            } },
        "Envelope": { "type": "object", "required": ["result"], "description": "Digistore24's reply envelope", "properties": {
            "api_version": { "type": "string" }, "current_time": { "type": "string" },
            "result": { "type": "string", "enum": ["success", "error"] },
            "data": {}, "code": { "type": "integer" }, "message": { "type": "string" } } },
        "Result": { "type": "object", "required": ["data", "meta"], "properties": { "data": {}, "meta": { "type": "object", "properties": {
            "action": { "type": "string" }, "function": { "type": "string" }, "connection": { "type": "string" }, "api_version": { "type": ["string", "null"] }, "request_id": { "type": "string" } } } } },
        "Action": { "type": "object", "required": ["key", "function", "summary", "effect", "paged", "input_schema"], "properties": {
            "key": { "type": "string" }, "function": { "type": "string" }, "summary": { "type": "string" }, "tag": { "type": "string" },
            "effect": { "type": "string", "enum": ["read", "write", "money"] }, "paged": { "type": "boolean" }, "input_schema": { "type": "object" } } },
        "Readiness": { "type": "object", "properties": { "status": { "type": "string", "enum": ["ready", "not_ready"] },
            "connections": { "type": "object", "additionalProperties": { "type": "object" } } } },
        "Event": { "type": "object", "description": "An IPN event as stored: its summary, state, deliveries and (shown alone) its fields", "additionalProperties": true },
    })
}

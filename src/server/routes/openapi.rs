//! `GET /openapi.json`: this proxy's own API as OpenAPI 3.1, generated from
//! the action table, so client generators and API browsers see every action
//! with its input schema.

use std::sync::LazyLock;

use axum::Json;
use serde_json::{Map, Value, json};

use crate::actions::{CATALOG, Effect};

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// The document (built once; the catalog is static).
pub async fn openapi() -> Json<Value> {
    Json(DOCUMENT.clone())
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// Builds the document.
pub fn build() -> Value {
    let mut paths = Map::new();
    paths.insert("/healthz".into(), json!({ "get": { "operationId": "healthz", "summary": "Liveness", "responses": { "200": { "description": "up" } } } }));
    paths.insert("/readyz".into(), json!({ "get": { "operationId": "readyz", "summary": "Readiness: every connection has a usable key", "responses": { "200": { "description": "ready" }, "503": { "description": "a connection needs attention" } } } }));
    paths.insert("/actions".into(), json!({ "get": {
        "operationId": "listActions", "summary": "List actions, ranked by relevance when `intent` is given",
        "parameters": [{ "name": "intent", "in": "query", "required": false, "schema": { "type": "string" } }],
        "responses": { "200": { "description": "the actions", "content": { "application/json": { "schema": { "type": "object", "properties": { "actions": { "type": "array", "items": { "$ref": "#/components/schemas/Action" } } } } } } } } } }));
    for action in CATALOG {
        let mut schema = action.input_schema();
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
        }
        let effect = match action.effect {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Money => "money",
        };
        paths.insert(format!("/actions/{}", action.key), json!({
            "get": { "operationId": format!("show_{}", action.function), "summary": format!("Describe {}", action.key), "tags": [action.tag],
                     "responses": { "200": { "description": "the action", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Action" } } } } } },
            "post": {
                "operationId": action.function, "summary": action.summary, "tags": [action.tag],
                "x-effect": effect, "x-paged": action.is_paged(),
                "parameters": [{ "name": "X-DS24-Connection", "in": "header", "required": false, "schema": { "type": "string" } }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema } } },
                "responses": {
                    "200": { "description": "Digistore24's data, unwrapped", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Result" } } } },
                    "400": error_response("validation_failed or bad_request"),
                    "401": error_response("upstream_error: the key was refused"),
                    "403": error_response("upstream_error: permission denied"),
                    "404": error_response("upstream_error: not found"),
                    "429": error_response("too many requests"),
                    "502": error_response("upstream_error or upstream_unavailable"),
                    "504": error_response("upstream_unavailable: timeout"),
                },
            },
        }));
    }
    paths.insert("/{function}".into(), json!({ "post": {
        "operationId": "passThrough", "summary": "Forward any Digistore24 function with the stored key (also GET, PUT, DELETE; also /api/call/{function})",
        "parameters": [{ "name": "function", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$" } }],
        "requestBody": { "required": false, "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object" } } } },
        "responses": { "default": { "description": "Digistore24's reply, unchanged" } } } }));
    json!({
        "openapi": "3.1.0",
        "info": { "title": "ds24-proxy", "version": env!("CARGO_PKG_VERSION"), "description": "Local authenticating proxy for the Digistore24 vendor API" },
        "servers": [{ "url": "http://127.0.0.1:7424" }],
        "paths": paths,
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["type", "message", "request_id"], "properties": {
                "type": { "type": "string" }, "message": { "type": "string" }, "request_id": { "type": "string" },
                "errors": { "type": "array", "items": { "type": "object", "properties": { "path": { "type": "string" }, "message": { "type": "string" } } } },
                "suggestions": { "type": "array", "items": { "type": "string" } },
                "upstream": { "type": "object", "properties": { "code": { "type": ["integer", "null"] }, "message": { "type": "string" } } } } } } },
            "Result": { "type": "object", "required": ["data", "meta"], "properties": { "data": {}, "meta": { "type": "object", "properties": {
                "action": { "type": "string" }, "function": { "type": "string" }, "connection": { "type": "string" }, "api_version": { "type": ["string", "null"] }, "request_id": { "type": "string" } } } } },
            "Action": { "type": "object", "required": ["key", "function", "summary", "effect", "paged", "input_schema"], "properties": {
                "key": { "type": "string" }, "function": { "type": "string" }, "summary": { "type": "string" }, "tag": { "type": "string" },
                "effect": { "enum": ["read", "write", "money"] }, "paged": { "type": "boolean" }, "input_schema": { "type": "object" } } },
        } },
    })
}

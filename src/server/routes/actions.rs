//! `GET /actions`, `GET /actions/{key}`, `POST /actions/{key}`: the action
//! catalog over HTTP. The `/connections/{name}/actions/{key}` form chooses
//! the connection by path, like the pass-through prefix.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::actions::{self, ActionDef};
use crate::app::AppState;
use crate::call::{self, CallError, pages};
use crate::ledger::{self, Recorded};
use crate::server::error::{ApiError, ErrorKind};
use crate::server::middleware::request_id;

/// Largest action input (DESIGN.md: 1 MiB).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// At most this many validation errors are listed (`error_count` says how
/// many there were).
pub const MAX_REPORTED_ERRORS: usize = 50;
/// A client must have sent its whole action input within this time; the
/// header read timeout does not cover bodies.
pub const INPUT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `?intent=…`
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    intent: Option<String>,
}

/// The listing entry of one action.
pub fn describe(action: &ActionDef) -> Value {
    json!({
        "key": action.key,
        "function": action.function,
        "summary": action.summary,
        "tag": action.tag,
        "effect": action.effect,
        "paged": action.is_paged(),
        "input_schema": action.input_schema(),
    })
}

/// `GET /actions[?intent=TEXT]`: all actions, or those relevant to the
/// intent, best first.
pub async fn list_actions(Query(query): Query<ListQuery>) -> Json<Value> {
    let listed: Vec<Value> = match query
        .intent
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(intent) => actions::rank(intent)
            .into_iter()
            .map(|(a, score)| {
                let mut entry = describe(a);
                entry["score"] = json!((f64::from(score) * 1000.0).round() / 1000.0);
                entry
            })
            .collect(),
        None => actions::CATALOG.iter().map(describe).collect(),
    };
    Json(json!({ "actions": listed }))
}

/// `GET /actions/{key}`
pub async fn show_action(Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(describe(lookup(&key)?)))
}

/// `POST /actions/{key}`
pub async fn call_action(
    State(state): State<AppState>,
    Path(key): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    run(state, None, key, req).await
}

/// `POST /connections/{name}/actions/{key}`
pub async fn call_action_on(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    run(state, Some(name), key, req).await
}

fn lookup(key: &str) -> Result<&'static ActionDef, ApiError> {
    actions::find(key).ok_or_else(|| {
        // Edit distance costs time in proportion to the length: no key is
        // longer than 64 characters, so a longer one gets no suggestions.
        let suggestions = if key.len() <= 64 {
            actions::suggest(key, 5)
        } else {
            Vec::new()
        };
        let hint = suggestions
            .first()
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        ApiError::new(
            ErrorKind::UnknownAction,
            format!(
                "there is no action `{}`{hint} GET /actions lists them all",
                key.chars().take(64).collect::<String>()
            ),
        )
        .with("suggestions", json!(suggestions))
    })
}

async fn run(
    state: AppState,
    path_connection: Option<String>,
    key: String,
    req: Request,
) -> Result<Response, ApiError> {
    let id: Arc<str> = request_id(&req).into();
    let action = lookup(&key)?;
    let (parts, body) = req.into_parts();
    let conn = state.choose_connection(path_connection.as_deref(), &parts.headers)?;
    let span = tracing::Span::current();
    span.record("ds24.connection", conn.name.as_str());
    span.record("ds24.function", action.function);
    crate::server::middleware::CallLabels::set(&parts.extensions, action.function, &conn.name);
    let caller = crate::policy::authorize(
        &parts.extensions,
        &conn.name,
        action.function,
        action.effect,
    )?;

    let input = read_input(body).await?;
    action.validate(&input).map_err(|mut errors| {
        // A huge input of unknown keys must not turn into a huger answer.
        let total = errors.len();
        errors.truncate(MAX_REPORTED_ERRORS);
        ApiError::new(ErrorKind::ValidationFailed, format!("the input of `{}` is not valid: fix the listed fields (GET /actions/{} shows the schema)", action.key, action.key))
            .with("errors", json!(errors))
            .with("error_count", json!(total))
    })?;

    // The start of a page walk's `meta`; the walk adds `paging` and
    // `api_version` as it learns them. A single call writes its own below.
    let walk_meta = || {
        json!({
            "action": action.key,
            "function": action.function,
            "connection": conn.name,
            "request_id": &*id,
        })
    };
    let wants_all = input
        .get("all_pages")
        .is_some_and(|v| v == &Value::Bool(true));
    let wants_ndjson = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if action.is_paged() && wants_ndjson {
        let walk = pages::Walk::new(action, input);
        let request_id = id.clone();
        let render = move |e: &CallError| ApiError::from(e).body(&request_id);
        let stream = pages::ndjson(state.clone(), conn.clone(), walk, walk_meta(), render).await?;
        let mut response = Response::new(Body::from_stream(stream));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        return Ok(response);
    }
    if action.is_paged() && wants_all {
        let mut walk = pages::Walk::new(action, input);
        let (data, api_version) = pages::collect(&state, conn, &mut walk).await?;
        let mut meta = walk_meta();
        meta["paging"] = walk.meta();
        meta["api_version"] = json!(api_version);
        return Ok(Json(json!({ "data": data, "meta": meta })).into_response());
    }
    // Writes and money calls go through the ledger: audit log, and the
    // Idempotency-Key record when the client sent one.
    let form = action.encode_form(&input);
    // Only writes are recorded: a read skips the digests and copies.
    let entry = (action.effect != crate::actions::Effect::Read).then(|| crate::ledger::Entry {
        connection: conn.name.clone(),
        caller: caller.name.clone(),
        function: action.function.to_owned(),
        effect: action.effect,
        request_id: id.to_string(),
        params_digest: crate::ledger::digest(&[form.as_bytes()]),
        fingerprint: crate::ledger::digest(&[
            b"action",
            action.function.as_bytes(),
            form.as_bytes(),
        ]),
    });
    let key = parts
        .headers
        .get(crate::ledger::IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok());
    let key = key.map(str::to_owned);
    let conn = conn.clone();
    let action_key = action.key;
    let call = move |state: AppState, gate: Option<ledger::SendGate>| async move {
        let answer =
            call::call_function_raw(&state, &conn, action.function, form, gate.as_ref()).await?;
        let meta = Meta {
            action: action_key,
            function: action.function,
            connection: &conn.name,
            request_id: &id,
            api_version: answer.api_version.as_deref(),
        };
        Ok::<_, CallError>(data_and_meta(&answer.data, &meta))
    };
    let Some(entry) = entry else {
        return Ok(into_response(call(state, None).await?));
    };
    super::guarded(
        &state,
        entry,
        key,
        move |state, gate| call(state, Some(gate)),
        into_response,
    )
    .await
}

fn into_response(answer: Recorded) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn read_input(body: Body) -> Result<Map<String, Value>, ApiError> {
    let read = tokio::time::timeout(
        INPUT_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_INPUT_BYTES),
    )
    .await
    .map_err(|_| {
        ApiError::bad_request(format!(
            "the input did not arrive within {} s",
            INPUT_READ_TIMEOUT.as_secs()
        ))
        .with_status(http::StatusCode::REQUEST_TIMEOUT)
    })?;
    let bytes = read.map_err(|e| {
        if !is_length_limit(&e) {
            return ApiError::bad_request("the input could not be read (the connection broke off)");
        }
        ApiError::new(ErrorKind::PayloadTooLarge, format!("an action input may be at most {MAX_INPUT_BYTES} bytes; send large data through the pass-through route"))
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "the input must be a JSON object, e.g. {\"product_id\": \"123\"}",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the input is not valid JSON: {e}"
        ))),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The `meta` member of an action's answer, written without building a
/// `serde_json` map (key order as documented: action, function,
/// connection, request_id, then api_version and, for walks, paging).
#[derive(Debug, serde::Serialize)]
struct Meta<'a> {
    action: &'a str,
    function: &'a str,
    connection: &'a str,
    request_id: &'a str,
    api_version: Option<&'a str>,
}

/// `{"data": <Digistore24's data, verbatim>, "meta": …}` written directly:
/// the same JSON as `json!({"data": data, "meta": meta})` without parsing
/// and re-encoding the reply.
fn data_and_meta(data: &serde_json::value::RawValue, meta: &Meta<'_>) -> Recorded {
    let mut body = Vec::with_capacity(data.get().len() + 256);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(data.get().as_bytes());
    body.extend_from_slice(b",\"meta\":");
    // Writing a struct of borrowed strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, meta);
    body.push(b'}');
    Recorded {
        status: 200,
        content_type: Some("application/json".to_owned()),
        body: body.into(),
    }
}

//! `GET /openapi.json` as a client generator reads it: every action and
//! route, enums of one type, the bearer scheme when tokens are configured,
//! `servers` where the proxy really listens, error responses everywhere.

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &crate::helpers::TestApp, token: Option<&str>) -> Value {
    let mut request = app.client.get(app.url("/openapi.json"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_owned(), op));
            }
        }
    }
    out
}

/// Every `enum` anywhere in `v`, with the `type` beside it.
fn enums<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a Value, Option<&'a Value>)>) {
    match v {
        Value::Object(map) => {
            if let Some(members) = map.get("enum") {
                out.push((at.to_owned(), members, map.get("type")));
            }
            for (k, child) in map {
                enums(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter().enumerate() {
                enums(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[tokio::test]
async fn every_action_is_an_operation_with_its_input_schema() {
    let app = spawn_app().await;
    let doc = document(&app, None).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let listed: Value = app
        .client
        .get(app.url("/actions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions = listed["actions"].as_array().unwrap();
    assert_eq!(actions.len(), ds24_proxy::actions::CATALOG.len());
    for action in actions {
        let key = action["key"].as_str().unwrap();
        let post = &doc["paths"][format!("/actions/{key}")]["post"];
        assert_eq!(post["operationId"], action["function"], "{key}");
        let mut schema = action["input_schema"].clone();
        schema.as_object_mut().unwrap().remove("$schema");
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"], schema,
            "{key}: the document's input schema is not the one /actions serves"
        );
        assert!(doc["paths"][format!("/actions/{key}")]["get"].is_object());
    }
    // Operation ids are unique (generators name functions after them).
    let ops = operations(&doc);
    let ids: std::collections::HashSet<_> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), ops.len(), "duplicate operationId");
}

#[tokio::test]
async fn every_route_is_described() {
    let app = spawn_app().await;
    let doc = document(&app, None).await;
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/connections", "get"),
        ("/actions", "get"),
        ("/connections/{name}/actions/{key}", "post"),
        ("/{function}", "post"),
        ("/{function}", "get"),
        ("/api/call/{function}", "post"),
        ("/api/call/{function}/format/json", "post"),
        ("/api/call/{api_key}/json/{function}", "post"),
        ("/connections/{name}/{function}", "post"),
        ("/connections/{name}/api/call/{function}", "post"),
        ("/events", "get"),
        ("/events/{id}", "get"),
        ("/events/{id}/replay", "post"),
        ("/ipn/{connection}", "get"),
        ("/ipn/{connection}", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    // A path parameter of every templated path is declared.
    for (path, method, op) in operations(&doc) {
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                declared.contains(&name),
                "{method} {path}: {name} not declared"
            );
        }
    }
}

#[tokio::test]
async fn no_enum_mixes_json_types() {
    let app = spawn_app().await;
    let doc = document(&app, None).await;
    let mut all = Vec::new();
    enums(&doc, "", &mut all);
    assert!(all.len() > 37, "only {} enums", all.len());
    for (at, members, ty) in all {
        let members = members.as_array().unwrap();
        let ty = ty
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{at}: enum without a single type: {members:?}"));
        for m in members {
            assert_eq!(json_type(m), ty, "{at}: {members:?}");
        }
    }
    // Flags are booleans or "Y"/"N".
    let flag = &doc["paths"]["/actions/list-purchases"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["search"]["properties"]["has_affiliate"];
    assert_eq!(flag["anyOf"][0]["type"], "boolean", "{flag}");
    assert_eq!(flag["anyOf"][1]["enum"], serde_json::json!(["Y", "N"]));
}

#[tokio::test]
async fn every_operation_has_error_responses_with_the_error_schema() {
    let app = spawn_app().await;
    let doc = document(&app, None).await;
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        for range in ["4XX", "5XX"] {
            let schema = &responses
                .get(range)
                .unwrap_or_else(|| panic!("{method} {path}: no {range}"))["content"]["application/json"]
                ["schema"]["$ref"];
            let schema = schema.as_str().unwrap_or_default();
            assert!(
                [
                    "#/components/schemas/Error",
                    "#/components/schemas/PassThroughError"
                ]
                .contains(&schema),
                "{method} {path} {range}: {schema}"
            );
        }
        let wanted = if path.starts_with("/actions") && method == "post" {
            vec!["400", "401", "403", "404", "429", "502", "503", "504"]
        } else {
            vec![]
        };
        for status in wanted {
            assert!(responses.contains_key(status), "{method} {path}: {status}");
        }
    }
    let envelope = &doc["components"]["schemas"]["PassThroughError"]["properties"];
    for field in ["result", "code", "message", "error"] {
        assert!(envelope[field].is_object(), "PassThroughError.{field}");
    }
    assert!(doc["components"]["schemas"]["Error"]["properties"]["error"].is_object());
}

#[tokio::test]
async fn servers_say_where_the_proxy_listens_and_no_security_without_tokens() {
    let app = spawn_app().await;
    let doc = document(&app, None).await;
    assert_eq!(
        doc["servers"][0]["url"],
        format!("http://{}", app.addr),
        "{}",
        doc["servers"]
    );
    assert!(doc.get("security").is_none());
    assert!(doc["components"].get("securitySchemes").is_none());
    // The request's Host decides (the name the client used).
    let by_name: Value = app
        .client
        .get(app.url("/openapi.json"))
        .header("host", format!("localhost:{}", app.addr.port()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_name["servers"][0]["url"],
        format!("http://localhost:{}", app.addr.port())
    );
}

#[tokio::test]
async fn with_tokens_the_bearer_scheme_is_required_except_where_no_token_is_taken() {
    let app = spawn_app_with(
        "",
        &[(
            "DS24_PROXY_TOKEN",
            "tok-one-0123456789abcdef,tok-two-0123456789abcdef",
        )],
    )
    .await;
    let doc = document(&app, Some("tok-one-0123456789abcdef")).await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let (name, scheme) = schemes.iter().next().unwrap();
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], serde_json::json!([{ name: [] }]));
    for (path, method) in [
        ("/healthz", "get"),
        ("/ipn/{connection}", "get"),
        ("/ipn/{connection}", "post"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            serde_json::json!([]),
            "{method} {path} takes no token"
        );
    }
    assert!(
        doc["paths"]["/actions/list-products"]["post"]
            .get("security")
            .is_none()
    );
    assert_eq!(doc["servers"][0]["url"], format!("http://{}", app.addr));
}

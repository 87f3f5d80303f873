//! Digistore24's response envelope (API-FACTS §4):
//! `{"api_version", "current_time", "result": "success"|"error", "data" | "code"+"message"}`.
//! Errors arrive with HTTP 200 (historic) or with a 4xx status; both are read
//! the same way here, so callers only look at [`Reply`].

use serde_json::Value;

/// A parsed reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `result: "success"`.
    Success {
        /// The `data` member (`null` when absent).
        data: Value,
        /// `api_version`, when present.
        api_version: Option<String>,
    },
    /// `result: "error"`, or a reply that is not an envelope at all.
    Error(Ds24Error),
}

/// An error reported by Digistore24 (or a reply that could not be read).
#[derive(Debug, Clone, thiserror::Error)]
#[error("Digistore24 answered with an error{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
pub struct Ds24Error {
    /// Digistore24's error code, when it sent one.
    pub code: Option<i64>,
    /// Digistore24's message (or ours, for an unreadable reply).
    pub message: String,
    /// The HTTP status of the reply.
    pub http_status: u16,
    /// The reply was not a Digistore24 envelope at all (an HTML error page
    /// from a front server, say): Digistore24 did not refuse anything.
    pub not_an_envelope: bool,
}

/// Digistore24's error codes as the 2025 official connector names them
/// (API-FACTS §2). The numbers are not documented by Digistore24; they are
/// used to pick an HTTP status, and the HTTP status of a 4xx reply decides
/// when the code is unknown.
pub mod codes {
    /// Invalid API key.
    pub const BAD_KEY: i64 = 2;
    /// Bad function parameters.
    pub const BAD_PARAMS: i64 = 3;
    /// Object not found.
    pub const NOT_FOUND: i64 = 4;
    /// Permission denied (e.g. a read-only key calling a write).
    pub const PERMISSION_DENIED: i64 = 5;
    /// Unknown function / bad API call.
    pub const BAD_CALL: i64 = 9;
    /// API key missing.
    pub const KEY_MISSING: i64 = 10;
    /// Internal error on Digistore24's side.
    pub const INTERNAL: i64 = 11;
    /// Too many requests.
    pub const TOO_MANY_REQUESTS: i64 = 12;
}

impl Ds24Error {
    /// The HTTP status the proxy answers with for this error.
    pub fn status(&self) -> u16 {
        match self.code {
            Some(codes::BAD_KEY | codes::KEY_MISSING) => 401,
            Some(codes::PERMISSION_DENIED) => 403,
            Some(codes::NOT_FOUND) => 404,
            Some(codes::BAD_PARAMS | codes::BAD_CALL) => 400,
            Some(codes::TOO_MANY_REQUESTS) => 429,
            Some(codes::INTERNAL) => 502,
            _ => match self.http_status {
                s @ (400 | 401 | 403 | 404 | 429) => s,
                _ => 502,
            },
        }
    }
}

/// Parses a reply body received with `http_status`.
/// A success envelope's `data` as the raw JSON text Digistore24 sent, for
/// callers that pass it on unchanged: no tree is built for it.
#[derive(Debug, Clone)]
pub struct RawSuccess {
    /// The `data` member, verbatim (`null` when absent).
    pub data: Box<serde_json::value::RawValue>,
    /// The envelope's `api_version`.
    pub api_version: Option<String>,
}

/// Like [`parse`], but a success keeps `data` as raw JSON. Anything that
/// is not a plain success envelope is read by [`parse`], so errors are
/// judged in one place.
///
/// # Errors
/// The [`Ds24Error`] that [`parse`] finds.
pub fn parse_raw(http_status: u16, body: &[u8]) -> Result<RawSuccess, Ds24Error> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        result: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        api_version: Option<String>,
        #[serde(borrow, default)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    if http_status < 400
        && let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body)
        && envelope.result.as_deref() == Some("success")
    {
        let data = envelope.data.map_or_else(
            || serde_json::value::RawValue::from_string("null".to_owned()),
            |raw| Ok(raw.to_owned()),
        );
        if let Ok(data) = data {
            return Ok(RawSuccess {
                data,
                api_version: envelope.api_version,
            });
        }
    }
    match parse(http_status, body) {
        Reply::Error(e) => Err(e),
        // A success that the borrowing reader could not take (a string
        // `api_version` it could not borrow, say): write the tree back.
        Reply::Success { data, api_version } => Ok(RawSuccess {
            data: serde_json::value::to_raw_value(&data).map_err(|_| Ds24Error {
                code: None,
                message: "the reply's data could not be re-encoded".to_owned(),
                http_status,
                not_an_envelope: true,
            })?,
            api_version,
        }),
    }
}

pub fn parse(http_status: u16, body: &[u8]) -> Reply {
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(body) else {
        return Reply::Error(Ds24Error {
            code: None,
            message: format!(
                "the reply (HTTP {http_status}, {} bytes) is not a Digistore24 JSON envelope",
                body.len()
            ),
            http_status,
            not_an_envelope: true,
        });
    };
    let api_version = envelope
        .get("api_version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match envelope.get("result").and_then(Value::as_str) {
        Some("success") if http_status < 400 => Reply::Success {
            data: envelope.remove("data").unwrap_or(Value::Null),
            api_version,
        },
        _ => Reply::Error(Ds24Error {
            code: envelope
                .get("code")
                .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok())),
            message: envelope
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned(),
            http_status,
            not_an_envelope: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(status: u16, body: &str) -> Ds24Error {
        match parse(status, body.as_bytes()) {
            Reply::Error(e) => e,
            Reply::Success { .. } => panic!("{body} parsed as success"),
        }
    }

    #[test]
    fn errors_map_to_a_fitting_status_under_both_error_styles() {
        for (code, status) in [
            (2, 401),
            (10, 401),
            (5, 403),
            (4, 404),
            (3, 400),
            (9, 400),
            (12, 429),
            (11, 502),
        ] {
            let body =
                format!(r#"{{"api_version":"1.2","result":"error","code":{code},"message":"m"}}"#);
            assert_eq!(
                error_of(200, &body).status(),
                status,
                "code {code} with HTTP 200"
            );
            assert_eq!(
                error_of(400, &body).status(),
                status,
                "code {code} with HTTP 400"
            );
        }
        // An unknown code falls back to the HTTP status, and to 502 for a 200.
        assert_eq!(
            error_of(200, r#"{"result":"error","code":77,"message":"m"}"#).status(),
            502
        );
        assert_eq!(
            error_of(403, r#"{"result":"error","code":77,"message":"m"}"#).status(),
            403
        );
        assert_eq!(
            error_of(404, r#"{"result":"error","message":"gone"}"#).status(),
            404
        );
        assert_eq!(error_of(500, "<html>oops</html>").status(), 502);
        assert_eq!(
            error_of(200, r#"{"result":"error","code":"4","message":"x"}"#).code,
            Some(4)
        );
    }

    #[test]
    fn the_raw_reader_keeps_data_verbatim_and_agrees_with_the_tree_reader() {
        let body =
            br#"{"api_version":"1.2","result":"success","data":{"b":[1,2.50,"\u00fc"],"a":null}}"#;
        let raw = parse_raw(200, body).unwrap();
        assert_eq!(raw.data.get(), r#"{"b":[1,2.50,"\u00fc"],"a":null}"#);
        assert_eq!(raw.api_version.as_deref(), Some("1.2"));
        let no_data = parse_raw(200, br#"{"result":"success"}"#).unwrap();
        assert_eq!(no_data.data.get(), "null");
        for (status, body) in [
            (200, r#"{"result":"error","code":4,"message":"gone"}"#),
            (404, r#"{"result":"success","data":{}}"#),
            (502, "<html>bad gateway</html>"),
            (200, "not json"),
        ] {
            let Reply::Error(expected) = parse(status, body.as_bytes()) else {
                panic!("{body} parsed as success");
            };
            let got = parse_raw(status, body.as_bytes()).unwrap_err();
            assert_eq!(
                (got.code, got.message),
                (expected.code, expected.message),
                "{body}"
            );
        }
    }

    #[test]
    fn a_success_envelope_yields_its_data() {
        let Reply::Success { data, api_version } = parse(
            200,
            br#"{"api_version":"1.2","result":"success","data":{"a":1}}"#,
        ) else {
            panic!("not success");
        };
        assert_eq!(data["a"], 1);
        assert_eq!(api_version.as_deref(), Some("1.2"));
    }
}

//! Which function a request path names (API-FACTS §1, three URL shapes).

use percent_encoding::percent_decode_str;

/// Prefix every API path starts with.
const PREFIX: &str = "/api/call/";

/// The function a path calls and, for the legacy shape, the key in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Function name as written in the path (percent-decoded).
    pub function: String,
    /// The key segment of `/api/call/{key}/json/{function}`.
    pub path_key: Option<String>,
}

/// Resolves `/api/call/{function}`, `/api/call/{function}/format/json` and
/// `/api/call/{key}/json/{function}`; `None` for every other path. One
/// trailing slash is tolerated.
pub(crate) fn resolve(path: &str) -> Option<Target> {
    let rest = path.strip_prefix(PREFIX)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments = rest
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8().ok())
        .collect::<Option<Vec<_>>>()?;
    let (function, path_key) = match segments.as_slice() {
        [function] => (function, None),
        [function, format, json] if format == "format" && json == "json" => (function, None),
        [key, json, function] if json == "json" => (function, Some(key.to_string())),
        _ => return None,
    };
    if function.is_empty() {
        return None;
    }
    Some(Target {
        function: function.to_string(),
        path_key,
    })
}

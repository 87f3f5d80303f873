//! Which headers cross the proxy. Requests lose hop-by-hop headers, `Host`,
//! and every credential the client sent; responses lose hop-by-hop headers.

use http::header::{self, HeaderMap, HeaderName};

/// Header the proxy sets from the connection's key.
pub const API_KEY: HeaderName = HeaderName::from_static("x-ds-api-key");
/// Header choosing the connection.
pub const CONNECTION_CHOICE: HeaderName = HeaderName::from_static("x-ds24-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the non-standard ones proxies
/// commonly see. They describe one connection, not the message.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ]
    .contains(&name)
}

/// Removes every header `doomed` picks, plus hop-by-hop headers and those
/// the `Connection` header names.
///
/// One pass over the names present: a message usually carries none of the
/// headers to drop, and looking each candidate up by name (hashing it, and
/// parsing it when given as text) cost more than the scan on every request.
fn strip(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    let remove: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n) || named.contains(n) || doomed(n))
        .cloned()
        .collect();
    for name in remove {
        headers.remove(name);
    }
}

/// Prepares client headers for the upstream: hop-by-hop headers, `Host`
/// (the client may have sent anything; the client sets the real one),
/// `Expect` (answered by our own server), the connection choice, and every
/// credential the client sent are dropped.
pub fn for_upstream(mut headers: HeaderMap) -> HeaderMap {
    strip(&mut headers, |name| {
        [
            &header::HOST,
            &header::EXPECT,
            &header::AUTHORIZATION,
            &header::COOKIE,
            &API_KEY,
            &CONNECTION_CHOICE,
        ]
        .contains(&name)
            || is_lookalike(name)
    });
    // Replies must be readable to spot a rejected key in a small error
    // envelope; compression on loopback-to-API traffic buys little.
    headers.insert(
        header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("identity"),
    );
    headers
}

/// PHP (and other CGI-style servers) read `X_DS_API_KEY` as the same
/// variable as `X-DS-API-KEY`; such spellings must not smuggle a key in.
fn is_lookalike(name: &HeaderName) -> bool {
    name.as_str().contains('_')
        && [
            "x-ds-api-key",
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-ds24-connection",
        ]
        .contains(&name.as_str().replace('_', "-").as_str())
}

/// Prepares upstream response headers for the client.
pub fn for_client(mut headers: HeaderMap) -> HeaderMap {
    static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
    // The proxy's own request id is the one the client correlates with, and
    // only the proxy says whether an answer was replayed from its record.
    strip(&mut headers, |name| name == REQUEST_ID || name == REPLAYED);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_never_reach_the_upstream() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ds-api-key", "999-client"),
            ("authorization", "Bearer t"),
            ("connection", "close, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("host", "evil.example"),
            ("transfer-encoding", "chunked"),
            ("x-ds24-connection", "main"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x_ds_api_key", "1-smuggled"),
            ("authorization_x", "kept"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        let out = for_upstream(h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["authorization_x", "content-type", "accept-encoding"]
        );
    }

    #[test]
    fn replies_lose_hop_by_hop_named_and_proxy_owned_headers_only() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("keep-alive", "timeout=5"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("proxy-connection", "keep-alive"),
            ("x-request-id", "upstream-id"),
            ("idempotent-replayed", "true"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("x-request-id-extra", "kept"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        let out = for_client(h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["content-length", "content-type", "x-request-id-extra"]
        );
    }
}

//! Which headers cross the proxy. Requests lose hop-by-hop headers, `Host`,
//! and every credential the client sent; responses lose hop-by-hop headers.

use http::header::{self, HeaderMap, HeaderName};

/// Header the proxy sets from the connection's key.
pub const API_KEY: HeaderName = HeaderName::from_static("x-ds-api-key");
/// Header choosing the connection.
pub const CONNECTION_CHOICE: HeaderName = HeaderName::from_static("x-ds24-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the non-standard ones proxies
/// commonly see. They describe one connection, not the message.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Prepares client headers for the upstream: hop-by-hop headers, `Host`
/// (the client may have sent anything; reqwest sets the real one), `Expect`
/// (answered by our own server), the connection choice, and every
/// credential the client sent are dropped.
pub fn for_upstream(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    for name in [
        header::HOST,
        header::EXPECT,
        header::AUTHORIZATION,
        header::COOKIE,
        API_KEY,
        CONNECTION_CHOICE,
    ] {
        headers.remove(name);
    }
    // Replies must be readable to spot a rejected key in a small error
    // envelope; compression on loopback-to-API traffic buys little.
    headers.insert(
        header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("identity"),
    );
    // PHP (and other CGI-style servers) read `X_DS_API_KEY` as the same
    // variable as `X-DS-API-KEY`; such spellings must not smuggle a key in.
    let lookalikes: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .filter(|n| {
            let normal = n.as_str().replace('_', "-");
            [
                "x-ds-api-key",
                "authorization",
                "proxy-authorization",
                "cookie",
                "x-ds24-connection",
            ]
            .contains(&normal.as_str())
        })
        .cloned()
        .collect();
    for name in lookalikes {
        headers.remove(name);
    }
    headers
}

/// Prepares upstream response headers for the client.
pub fn for_client(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    // The proxy's own request id is the one the client correlates with.
    headers.remove("x-request-id");
    // Only the proxy says whether an answer was replayed from its record.
    headers.remove("idempotent-replayed");
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
}

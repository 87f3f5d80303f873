//! The upstream URI of a pass-through or action call, checked to stay
//! under the connection's base URL.

use url::Url;

/// The request path would leave the configured base URL.
#[derive(Debug, thiserror::Error)]
#[error("the request path would leave the configured Digistore24 base URL")]
pub struct LeavesBase;

/// `{base}/{function}{rest}?{query}` as the request URI, checked to stay
/// under `base`.
///
/// Built as a string and parsed once by `http` (what the client sends
/// anyway), not through `url::Url`: the `url` parse and the re-parse into a
/// `Uri` cost about 4% of the proxy's CPU per pass-through request.
///
/// # Errors
/// [`LeavesBase`] when the result would leave the base URL (defence in
/// depth: `path::parse` already refuses such paths).
pub fn target_url(
    base: &Url,
    function: &str,
    rest: &str,
    query: Option<&str>,
) -> Result<http::Uri, LeavesBase> {
    let base_str = base.as_str().trim_end_matches('/');
    let mut s = String::with_capacity(
        base_str.len() + function.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1,
    );
    s.push_str(base_str);
    s.push('/');
    s.push_str(function);
    s.push_str(rest);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    let uri = http::Uri::try_from(s).map_err(|_| LeavesBase)?;
    let base_path = base.path().trim_end_matches('/');
    let path = uri.path();
    // `Uri` keeps dot segments and backslashes where `url` would have
    // resolved them; a server that resolves them could be led out of the
    // base path, so any such segment is refused outright.
    let stays = uri.scheme_str() == Some(base.scheme())
        && uri.host() == base.host_str()
        && uri.port_u16().or_else(|| default_port(base.scheme())) == base.port_or_known_default()
        && path
            .strip_prefix(base_path)
            .is_some_and(|p| p.starts_with('/'))
        && !path.contains('\\')
        && !path.split('/').any(is_dot_segment);
    if stays { Ok(uri) } else { Err(LeavesBase) }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`, …).
fn is_dot_segment(segment: &str) -> bool {
    [".", "..", "%2e", "%2e%2e", ".%2e", "%2e."]
        .iter()
        .any(|dot| segment.eq_ignore_ascii_case(dot))
}

#[cfg(test)]
mod tests {
    use super::target_url;

    fn base() -> url::Url {
        url::Url::parse("https://www.digistore24.com/api/call").unwrap()
    }

    #[test]
    fn the_target_is_base_function_rest_and_query_unchanged() {
        let uri = target_url(&base(), "getPurchase", "/A1B2", Some("x=1&y=%C3%A4")).unwrap();
        assert_eq!(
            uri.to_string(),
            "https://www.digistore24.com/api/call/getPurchase/A1B2?x=1&y=%C3%A4"
        );
        let local = url::Url::parse("http://127.0.0.1:8080/api/call/").unwrap();
        let uri = target_url(&local, "listProducts", "", None).unwrap();
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:8080/api/call/listProducts"
        );
    }

    #[test]
    fn dot_segments_and_backslashes_are_refused_in_any_spelling() {
        for rest in [
            "/..",
            "/.",
            "/../x",
            "/%2e%2e",
            "/%2E%2e/x",
            "/.%2E",
            "/%2e",
            "/a\\..",
        ] {
            let err = target_url(&base(), "getPurchase", rest, None).unwrap_err();
            assert!(err.to_string().contains("base URL"), "{rest}: {err}");
        }
        // A dot inside a segment is an ordinary character.
        assert!(target_url(&base(), "getPurchase", "/a..b/.x/%2e%2e%2e", None).is_ok());
    }

    #[test]
    fn the_host_stays_whatever_the_rest_and_text_that_is_no_uri_is_an_error() {
        let uri = target_url(&base(), "getPurchase", "/@evil.example:99", None).unwrap();
        assert_eq!(uri.host(), Some("www.digistore24.com"));
        assert!(target_url(&base(), "getPurchase", "/a b", None).is_err());
        assert!(target_url(&base(), "getPurchase", "", Some("a b")).is_err());
    }
}

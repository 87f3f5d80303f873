//! Parsing and normalising the path of a pass-through request.
//!
//! This is the SSRF boundary: whatever the client sends, the upstream target
//! is `base_url` + `/{function}` + validated segments. A segment that decodes
//! to `.`/`..` or holds an encoded slash or backslash is refused, so no path
//! can climb out of `base_url` or name another host.
//!
//! Empty segments are collapsed (`/api/call//listProducts`, from a client
//! whose base URL ends in `/`, is `/api/call/listProducts`): the target is
//! built from the remaining segments alone, so an empty one cannot name a
//! host (`//evil.example/x` still fails, `evil.example` is no function).

/// Where a pass-through request goes, as parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The connection named by a `/connections/{name}/` prefix.
    pub connection: Option<&'a str>,
    /// The Digistore24 function.
    pub function: &'a str,
    /// Further raw segments after the function (`/format/json`), each
    /// validated, with their leading slash; empty when there are none.
    pub rest: String,
    /// The legacy `/api/call/{key}/json/{function}` form was used; the key
    /// in the path is discarded.
    pub legacy: bool,
}

/// Why a path cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No function named.
    #[error("the path names no Digistore24 function; call /{{function}}, e.g. /listProducts")]
    NoFunction,
    /// The function segment is not a plain identifier.
    #[error(
        "`{0}` is not a Digistore24 function name (letters, digits and `_`, starting with a letter)"
    )]
    BadFunction(String),
    /// A segment that could change the target (`..`, encoded `/`).
    #[error("the path contains a `.`/`..` or encoded-slash segment, which the proxy refuses")]
    Unsafe,
    /// Segments after the function other than `/format/json`.
    #[error(
        "only `/format/json` may follow the function name; call /{{function}} with parameters in the query or body"
    )]
    ExtraSegments,
    /// `/connections/` without a usable name.
    #[error("`/connections/` must be followed by a connection name and a function")]
    BadConnection,
}

/// Parses `path` (without query).
///
/// # Errors
/// [`PathError`] when the path is not a function call the proxy may forward.
pub fn parse(path: &str) -> Result<Target<'_>, PathError> {
    let path = path.strip_prefix('/').ok_or(PathError::Unsafe)?;
    // Empty segments (`//`, a trailing `/`) are collapsed: they come from
    // clients that join a base URL ending in `/` with `/function`.
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| !segment_is_safe(s)) {
        return Err(PathError::Unsafe);
    }
    let mut connection = None;
    if segments.first() == Some(&"connections") {
        if segments.len() < 3 || !is_connection_name(segments[1]) {
            return Err(PathError::BadConnection);
        }
        connection = Some(segments[1]);
        segments.drain(..2);
    }
    let mut under_api_call = false;
    if segments.len() >= 2 && segments[0] == "api" && segments[1] == "call" {
        segments.drain(..2);
        under_api_call = true;
    }
    let mut legacy = false;
    // Only right after `/api/call/`: elsewhere `x/json/y` is not the legacy
    // form, and treating it as one would let any first segment be dropped.
    if under_api_call && segments.len() >= 3 && segments[1] == "json" {
        // `/api/call/{key}/json/{function}`: drop the key and the format.
        segments.drain(..2);
        legacy = true;
    }
    let (&function, rest) = segments.split_first().ok_or(PathError::NoFunction)?;
    if !is_function(function) {
        return Err(PathError::BadFunction(function.chars().take(64).collect()));
    }
    // After the function only the format suffix some clients send is
    // accepted: any other segments could spell a second function
    // (`/getProduct/json/refundPurchase` is Digistore24's legacy form for
    // refundPurchase), and policies, retries and the audit log must judge
    // the function that actually runs.
    let rest_path = match rest {
        [] => String::new(),
        ["format", "json"] => "/format/json".to_owned(),
        _ => return Err(PathError::ExtraSegments),
    };
    Ok(Target {
        connection,
        function,
        rest: rest_path,
        legacy,
    })
}

/// A function name: ASCII letter, then letters, digits or `_`, at most 64.
pub fn is_function(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && s.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A connection name: letters, digits, `-` and `_`, at most 64.
pub fn is_connection_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn segment_is_safe(raw: &str) -> bool {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    // Decode twice: a double-encoded `%252e%252e` must not slip past a
    // server that decodes once more.
    let twice: Vec<u8> = percent_encoding::percent_decode(&decoded).collect();
    [decoded, twice].iter().all(|d| {
        d.as_slice() != b"."
            && d.as_slice() != b".."
            && !d
                .iter()
                .any(|&b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> (Option<&str>, &str, String, bool) {
        let t = parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        (t.connection, t.function, t.rest, t.legacy)
    }

    #[test]
    fn every_path_form_names_the_function() {
        assert_eq!(
            ok("/listProducts"),
            (None, "listProducts", String::new(), false)
        );
        assert_eq!(
            ok("/api/call/listProducts"),
            (None, "listProducts", String::new(), false)
        );
        assert_eq!(
            ok("/api/call/getProduct/format/json"),
            (None, "getProduct", "/format/json".into(), false)
        );
        assert_eq!(
            ok("/api/call/123-SECRET/json/listProducts"),
            (None, "listProducts", String::new(), true)
        );
        assert_eq!(
            ok("/connections/shop2/api/call/ping"),
            (Some("shop2"), "ping", String::new(), false)
        );
        assert_eq!(
            ok("/connections/shop2/ping/"),
            (Some("shop2"), "ping", String::new(), false)
        );
    }

    #[test]
    fn paths_that_could_leave_the_base_url_are_refused() {
        for path in [
            "/../listProducts",
            "/api/call/../../etc",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/listProducts/%2f%2fevil",
            "//evil.example/x",
            "/api/call//evil.example",
            "//%2e%2e//listProducts",
            "/api/call//%2F/listProducts",
            "/listProducts/..",
            "/a/%252e%252e/b",
            "/listProducts/%5c..",
            "/x/%00",
            "noslash",
        ] {
            assert!(parse(path).is_err(), "{path} was accepted");
        }
    }

    #[test]
    fn empty_segments_are_collapsed() {
        for path in [
            "/api/call//listProducts",
            "//listProducts",
            "/api//call/listProducts",
            "/api/call/listProducts//",
            "///api///call///listProducts///",
        ] {
            assert_eq!(
                ok(path),
                (None, "listProducts", String::new(), false),
                "{path}"
            );
        }
        assert_eq!(
            ok("/api/call//getProduct//format//json"),
            (None, "getProduct", "/format/json".into(), false)
        );
        assert_eq!(
            ok("//connections//shop2//api/call//9-K/json//ping"),
            (Some("shop2"), "ping", String::new(), true)
        );
        // Collapsing never makes a second function out of the rest.
        assert_eq!(
            parse("/getProduct//json//deleteProduct"),
            Err(PathError::ExtraSegments)
        );
        assert_eq!(parse("//"), Err(PathError::NoFunction));
    }

    #[test]
    fn the_legacy_form_counts_only_right_after_api_call() {
        // `x/json/y` elsewhere is refused: it would name a second function.
        assert_eq!(
            parse("/getProduct/json/deleteProduct"),
            Err(PathError::ExtraSegments)
        );
        assert!(parse("/123-SECRET/json/ping").is_err());
        assert_eq!(
            ok("/connections/main/api/call/9-K/json/ping"),
            (Some("main"), "ping", String::new(), true)
        );
    }

    #[test]
    fn function_names_must_be_identifiers() {
        for path in [
            "/list-products",
            "/1abc",
            "/@evil.example",
            "/evil.example:80",
            "/a%20b",
        ] {
            assert!(
                matches!(parse(path), Err(PathError::BadFunction(_))),
                "{path}"
            );
        }
        assert_eq!(parse("/"), Err(PathError::NoFunction));
        assert_eq!(parse("/api/call"), Err(PathError::NoFunction));
        assert_eq!(parse("/connections/x"), Err(PathError::BadConnection));
    }
}

/// `path` fit for a log line, derived from the same parse the proxy acts
/// on: the key segment of the legacy form is never shown, and a refused
/// path (which may hold anything the client typed) is not logged at all.
pub fn loggable(path: &str) -> std::borrow::Cow<'_, str> {
    match parse(path) {
        Ok(t) if t.legacy => {
            let prefix = t
                .connection
                .map(|c| format!("/connections/{c}"))
                .unwrap_or_default();
            format!("{prefix}/api/call/[redacted]/json/{}{}", t.function, t.rest).into()
        }
        Ok(_) if path.len() <= 256 => path.into(),
        Ok(t) => format!("/{}[…]", t.function).into(),
        Err(_) => "[refused path]".into(),
    }
}

#[cfg(test)]
mod loggable_tests {
    #[test]
    fn the_key_in_a_legacy_path_is_never_logged() {
        assert_eq!(
            super::loggable("/api/call/123-SECRET/json/listProducts"),
            "/api/call/[redacted]/json/listProducts"
        );
        assert_eq!(
            super::loggable("/connections/a/api/call/9-X/json/ping"),
            "/connections/a/api/call/[redacted]/json/ping"
        );
        assert_eq!(super::loggable("/listProducts"), "/listProducts");
        assert_eq!(super::loggable("/123-SECRET/json/ping"), "[refused path]");
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    proptest! {
        /// Whatever the path, parsing never panics, and an accepted path
        /// names a plain function and only segments that cannot climb out
        /// of the base URL or name another host.
        #[test]
        fn any_path_is_parsed_safely(path in "(/[a-zA-Z0-9%._~@:+-]{0,12}){0,6}/?") {
            if let Ok(target) = super::parse(&path) {
                prop_assert!(super::is_function(target.function));
                for segment in target.rest.split('/').skip(1) {
                    let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
                    prop_assert!(!segment.is_empty());
                    prop_assert!(decoded != b"." && decoded != b"..");
                    prop_assert!(!decoded.contains(&b'/') && !decoded.contains(&b'\\'));
                }
                let base = url::Url::parse("https://www.digistore24.com/api/call").unwrap();
                let url = super::super::target_url(&base, target.function, &target.rest, None);
                if let Ok(url) = url {
                    prop_assert_eq!(url.host(), Some("www.digistore24.com"));
                    prop_assert!(url.path().starts_with("/api/call/"));
                }
            }
        }

        /// Arbitrary bytes as a path (any UTF-8) never panic the parser or
        /// the log redaction.
        #[test]
        fn arbitrary_text_never_panics(path in "\\PC{0,64}") {
            let _ = super::parse(&path);
            let _ = super::loggable(&path);
        }
    }
}

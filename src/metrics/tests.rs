use std::time::Instant;

use super::*;

// ---------------------------------------------------------------------------
// A small parser for the exposition text
// ---------------------------------------------------------------------------

type Labels = Vec<(String, String)>;

/// One sample line: `name{key="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Splits a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) off the front of `s`.
fn take_name(s: &str) -> Result<(&str, &str), String> {
    if !s.starts_with(is_name_start) {
        return Err(format!("no metric name at {s:?}"));
    }
    let end = s.find(|c| !is_name_char(c)).unwrap_or(s.len());
    Ok(s.split_at(end))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
        _ => Err(format!("bad value {s:?}")),
    }
}

/// Parses `{key="value",...}` (the leading `{` already consumed); returns the
/// labels and the rest after `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    if let Some(rest) = s.strip_prefix('}') {
        return Ok((labels, rest));
    }
    loop {
        if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(format!("bad label name at {s:?}"));
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("label name runs to end of line")?;
        let key = &s[..end];
        s = s[end..]
            .strip_prefix("=\"")
            .ok_or_else(|| format!("expected =\" after label {key}"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label {key}")),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated value of label {key}")),
            }
        };
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} repeated"));
        }
        labels.push((key.to_owned(), value));
        s = &s[close + 1..];
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        } else {
            return Err(format!("expected , or }} at {s:?}"));
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, rest) = take_name(line)?;
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(rest) => parse_labels(rest)?,
        None => (Labels::new(), rest),
    };
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("expected one space before the value in {line:?}"))?;
    if value.contains(' ') {
        return Err(format!("unexpected timestamp or trailing text in {line:?}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// Checks `text` line by line against the text exposition rules that matter
/// here and returns its samples. `openmetrics` selects OpenMetrics 1.0.0
/// (family names of counters without `_total`, `# UNIT`, `# EOF`) over the
/// classic 0.0.4 format.
fn check_exposition(text: &str, openmetrics: bool) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut lines: Vec<&str> = text.lines().collect();
    if openmetrics {
        assert_eq!(
            lines.pop(),
            Some("# EOF"),
            "OpenMetrics text ends with # EOF"
        );
        assert!(!lines.contains(&"# EOF"), "only one # EOF");
    } else {
        assert!(!lines.contains(&"# EOF"), "classic text has no # EOF");
    }

    let mut seen_families: HashSet<String> = HashSet::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut samples = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let (kind, rest) = comment.split_once(' ').expect(&at);
            let (name, rest) = take_name(rest).expect(&at);
            let arg = rest.strip_prefix(' ').expect(&at);
            assert!(!arg.is_empty(), "{at}: empty {kind}");
            match kind {
                "HELP" => {
                    assert!(seen_families.insert(name.to_owned()), "{at}: family twice");
                    family = None;
                }
                "TYPE" => {
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "untyped",
                            "unknown"
                        ]
                        .contains(&arg),
                        "{at}: type"
                    );
                    family = Some((name.to_owned(), arg.to_owned()));
                }
                "UNIT" => {
                    assert!(openmetrics, "{at}: # UNIT only in OpenMetrics");
                    assert!(
                        name.ends_with(&format!("_{arg}")),
                        "{at}: name carries the unit"
                    );
                }
                _ => panic!("{at}: unknown comment"),
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|e| panic!("{at}: {e}"));
        let (fam, ty) = family
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: sample before # TYPE"));
        let suffix = sample
            .name
            .strip_prefix(fam.as_str())
            .unwrap_or_else(|| panic!("{at}: sample outside family {fam}"));
        let allowed: &[&str] = match (ty.as_str(), openmetrics) {
            ("counter", true) => &["_total", "_created"],
            ("counter", false) | ("gauge", _) => &[""],
            ("histogram", _) => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(
            allowed.contains(&suffix),
            "{at}: suffix {suffix:?} on a {ty}"
        );
        if suffix == "_bucket" {
            assert!(
                sample.labels.iter().any(|(k, _)| k == "le"),
                "{at}: bucket without le"
            );
        }
        if ty == "counter" {
            assert!(sample.value >= 0.0, "{at}: negative counter");
        }
        samples.push(sample);
    }
    samples
}

/// The value of the sample `name` whose labels are exactly `labels` (in any
/// order), if it is there.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let body = text.strip_suffix("# EOF\n").unwrap_or(text);
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| parse_sample(l).unwrap())
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
}

/// Records one sample into every family.
fn record_everything(m: &Metrics) {
    m.request("action", "listProducts", "default", 200);
    m.upstream_latency("listProducts", "ok", 0.12);
    m.retry("listProducts", "status_503");
    m.renewal("default", "expiry", true);
    m.idempotent_replay("default");
    m.policy_denial("agent", "deleteProduct");
    m.rate_limit_wait("default", 0.02);
    m.rate_limited("default");
    m.shed();
    m.breaker_state("default", breaker::HALF_OPEN);
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn render_holds_every_family_with_help_type_and_a_sample_after_recording() {
    let m = Metrics::new();
    record_everything(&m);
    let _guard = m.in_flight();
    let text = m.render();
    let families = [
        (
            "ds24_proxy_requests",
            "counter",
            "ds24_proxy_requests_total",
        ),
        (
            "ds24_proxy_requests_in_flight",
            "gauge",
            "ds24_proxy_requests_in_flight",
        ),
        (
            "ds24_proxy_requests_shed",
            "counter",
            "ds24_proxy_requests_shed_total",
        ),
        (
            "ds24_proxy_upstream_request_duration_seconds",
            "histogram",
            "ds24_proxy_upstream_request_duration_seconds_count",
        ),
        (
            "ds24_proxy_upstream_retries",
            "counter",
            "ds24_proxy_upstream_retries_total",
        ),
        (
            "ds24_proxy_credential_renewals",
            "counter",
            "ds24_proxy_credential_renewals_total",
        ),
        (
            "ds24_proxy_idempotent_replays",
            "counter",
            "ds24_proxy_idempotent_replays_total",
        ),
        (
            "ds24_proxy_policy_denials",
            "counter",
            "ds24_proxy_policy_denials_total",
        ),
        (
            "ds24_proxy_rate_limit_wait_seconds",
            "histogram",
            "ds24_proxy_rate_limit_wait_seconds_count",
        ),
        (
            "ds24_proxy_rate_limited",
            "counter",
            "ds24_proxy_rate_limited_total",
        ),
        (
            "ds24_proxy_circuit_breaker_state",
            "gauge",
            "ds24_proxy_circuit_breaker_state",
        ),
    ];
    for (family, ty, sample) in families {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {family} ")) && l.len() > 40),
            "no HELP for {family}:\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} {ty}\n")),
            "no TYPE for {family}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{sample}{{"))
                    || l.starts_with(&format!("{sample} "))),
            "no sample {sample}"
        );
    }
    assert!(text.contains("# UNIT ds24_proxy_upstream_request_duration_seconds seconds\n"));
    assert!(text.contains("# UNIT ds24_proxy_rate_limit_wait_seconds seconds\n"));
    assert_eq!(
        text.matches("# HELP ").count(),
        families.len(),
        "a family not covered by this test was added"
    );
}

#[test]
fn unlabelled_metrics_show_zero_and_labelled_families_appear_with_their_first_sample() {
    let m = Metrics::new();
    let text = m.render();
    assert!(!text.contains("ds24_proxy_requests_total"));
    assert!(!text.contains("ds24_proxy_circuit_breaker_state"));
    assert_eq!(
        value(&text, "ds24_proxy_requests_in_flight", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_requests_shed_total", &[]),
        Some(0.0)
    );
    check_exposition(&text, true);
    m.breaker_state("default", breaker::CLOSED);
    let text = m.render();
    assert!(text.contains("# TYPE ds24_proxy_circuit_breaker_state gauge\n"));
    assert_eq!(
        value(
            &text,
            "ds24_proxy_circuit_breaker_state",
            &[("connection", "default")]
        ),
        Some(0.0)
    );
}

#[test]
fn counters_add_up_per_label_set() {
    let m = Metrics::new();
    for _ in 0..3 {
        m.request("action", "listProducts", "default", 200);
    }
    m.request("action", "listProducts", "default", 502);
    m.request("passthrough", "", "", 200);
    m.request("passthrough", "", "", 200);
    m.retry("listProducts", "connect");
    m.retry("listProducts", "connect");
    m.retry("getProduct", "status_429");
    m.renewal("default", "rejection", false);
    m.renewal("default", "rejection", true);
    m.renewal("default", "rejection", true);
    m.policy_denial("agent", "deleteProduct");
    m.idempotent_replay("shop-b");
    m.rate_limited("shop-b");
    m.rate_limited("shop-b");
    m.shed();
    m.shed();
    m.shed();

    let text = m.render();
    let req = |route, function, connection, status| {
        value(
            &text,
            "ds24_proxy_requests_total",
            &[
                ("route", route),
                ("function", function),
                ("connection", connection),
                ("status", status),
            ],
        )
    };
    assert_eq!(req("action", "listProducts", "default", "200"), Some(3.0));
    assert_eq!(req("action", "listProducts", "default", "502"), Some(1.0));
    assert_eq!(req("passthrough", "", "", "200"), Some(2.0));
    assert_eq!(req("admin", "", "", "200"), None);

    let retries = "ds24_proxy_upstream_retries_total";
    assert_eq!(
        value(
            &text,
            retries,
            &[("function", "listProducts"), ("reason", "connect")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            retries,
            &[("function", "getProduct"), ("reason", "status_429")]
        ),
        Some(1.0)
    );

    let renewals = "ds24_proxy_credential_renewals_total";
    let renewal = |result| {
        value(
            &text,
            renewals,
            &[
                ("connection", "default"),
                ("trigger", "rejection"),
                ("result", result),
            ],
        )
    };
    assert_eq!(renewal("ok"), Some(2.0));
    assert_eq!(renewal("error"), Some(1.0));

    let denials = "ds24_proxy_policy_denials_total";
    assert_eq!(
        value(
            &text,
            denials,
            &[("token", "agent"), ("function", "deleteProduct")]
        ),
        Some(1.0)
    );
    let shop_b = [("connection", "shop-b")];
    assert_eq!(
        value(&text, "ds24_proxy_idempotent_replays_total", &shop_b),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_rate_limited_total", &shop_b),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_requests_shed_total", &[]),
        Some(3.0)
    );
}

#[test]
fn counters_add_up_when_threads_record_at_once() {
    let m = Arc::new(Metrics::new());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for n in 0..5_000 {
                    m.request("action", "listProducts", "default", 200);
                    // Some new label sets while others are being counted.
                    if n % 1_000 == 0 {
                        m.request("action", &format!("fn{i}_{n}"), "default", 200);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = m.render();
    let labels = [
        ("route", "action"),
        ("function", "listProducts"),
        ("connection", "default"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&text, "ds24_proxy_requests_total", &labels),
        Some(20_000.0)
    );
}

#[test]
fn histogram_buckets_count_observations_cumulatively() {
    let m = Metrics::new();
    // 3 ms, 7 ms, 40 ms, 0.3 s, 3 s, 29 s and one past the last bound.
    for s in [0.003, 0.007, 0.04, 0.3, 3.0, 29.0, 45.0] {
        m.upstream_latency("listProducts", "ok", s);
    }
    m.upstream_latency("listProducts", "timeout", 30.0);
    let text = m.render();
    let name = "ds24_proxy_upstream_request_duration_seconds";
    let bucket = |le| {
        value(
            &text,
            &format!("{name}_bucket"),
            &[("function", "listProducts"), ("outcome", "ok"), ("le", le)],
        )
    };
    let expected = [
        ("0.005", 1.0),
        ("0.01", 2.0),
        ("0.025", 2.0),
        ("0.05", 3.0),
        ("0.1", 3.0),
        ("0.25", 3.0),
        ("0.5", 4.0),
        ("1.0", 4.0),
        ("2.5", 4.0),
        ("5.0", 5.0),
        ("10.0", 5.0),
        ("20.0", 5.0),
        ("30.0", 6.0),
        ("+Inf", 7.0),
    ];
    assert_eq!(expected.len(), LATENCY_BUCKETS.len() + 1);
    for (le, count) in expected {
        assert_eq!(bucket(le), Some(count), "le={le}");
    }
    let ok = [("function", "listProducts"), ("outcome", "ok")];
    assert_eq!(value(&text, &format!("{name}_count"), &ok), Some(7.0));
    let sum = value(&text, &format!("{name}_sum"), &ok).unwrap();
    assert!((sum - 77.35).abs() < 1e-9, "sum {sum}");
    // A bound is inclusive: 30 s lands in le="30.0".
    let timeout = [
        ("function", "listProducts"),
        ("outcome", "timeout"),
        ("le", "30.0"),
    ];
    assert_eq!(value(&text, &format!("{name}_bucket"), &timeout), Some(1.0));
}

#[test]
fn rate_limit_waits_fill_their_own_histogram() {
    let m = Metrics::new();
    m.rate_limit_wait("default", 0.0);
    m.rate_limit_wait("default", 0.2);
    let text = m.render();
    let name = "ds24_proxy_rate_limit_wait_seconds";
    let le = |le| {
        value(
            &text,
            &format!("{name}_bucket"),
            &[("connection", "default"), ("le", le)],
        )
    };
    assert_eq!(le("0.005"), Some(1.0));
    assert_eq!(le("0.25"), Some(2.0));
    assert_eq!(
        value(
            &text,
            &format!("{name}_count"),
            &[("connection", "default")]
        ),
        Some(2.0)
    );
}

#[test]
fn non_finite_durations_are_ignored_and_negative_ones_count_as_zero() {
    let m = Metrics::new();
    m.upstream_latency("f", "ok", f64::NAN);
    m.upstream_latency("f", "ok", f64::INFINITY);
    m.rate_limit_wait("c", f64::NEG_INFINITY);
    let text = m.render();
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_request_duration_seconds_count",
            &[("function", "f"), ("outcome", "ok")]
        ),
        None
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_rate_limit_wait_seconds_count",
            &[("connection", "c")]
        ),
        None
    );

    m.upstream_latency("f", "ok", -0.5);
    let text = m.render();
    let name = "ds24_proxy_upstream_request_duration_seconds";
    let labels = [("function", "f"), ("outcome", "ok")];
    assert_eq!(value(&text, &format!("{name}_count"), &labels), Some(1.0));
    assert_eq!(value(&text, &format!("{name}_sum"), &labels), Some(0.0));
}

#[test]
fn in_flight_guard_goes_up_and_back_down() {
    let m = Metrics::new();
    let gauge = |m: &Metrics| value(&m.render(), "ds24_proxy_requests_in_flight", &[]);
    assert_eq!(gauge(&m), Some(0.0));
    let a = m.in_flight();
    let b = m.in_flight();
    assert_eq!(gauge(&m), Some(2.0));
    drop(a);
    assert_eq!(gauge(&m), Some(1.0));
    drop(b);
    assert_eq!(gauge(&m), Some(0.0));
}

#[test]
fn in_flight_guard_is_released_by_an_early_return() {
    fn handler(
        m: &Metrics,
        input: Result<u16, &'static str>,
        seen: &mut Option<f64>,
    ) -> Result<u16, &'static str> {
        let _guard = m.in_flight();
        *seen = value(&m.render(), "ds24_proxy_requests_in_flight", &[]);
        let status = input?; // early return on Err, guard dropped on the way out
        Ok(status)
    }
    let m = Metrics::new();
    let mut seen = None;
    assert_eq!(
        handler(&m, Err("bad request"), &mut seen),
        Err("bad request")
    );
    assert_eq!(seen, Some(1.0), "counted while the handler ran");
    assert_eq!(
        value(&m.render(), "ds24_proxy_requests_in_flight", &[]),
        Some(0.0)
    );
    assert_eq!(handler(&m, Ok(200), &mut seen), Ok(200));
    assert_eq!(
        value(&m.render(), "ds24_proxy_requests_in_flight", &[]),
        Some(0.0)
    );
}

#[test]
fn in_flight_guard_can_move_to_another_thread() {
    fn send_static<T: Send + 'static>(_: &T) {}
    let m = Metrics::new();
    let guard = m.in_flight();
    send_static(&guard);
    std::thread::spawn(move || drop(guard)).join().unwrap();
    assert_eq!(
        value(&m.render(), "ds24_proxy_requests_in_flight", &[]),
        Some(0.0)
    );
}

#[test]
fn metrics_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Metrics>();
}

#[test]
fn breaker_gauge_shows_the_last_state_per_connection() {
    let m = Metrics::new();
    m.breaker_state("a", breaker::OPEN);
    m.breaker_state("b", breaker::HALF_OPEN);
    m.breaker_state("a", breaker::CLOSED);
    let text = m.render();
    let name = "ds24_proxy_circuit_breaker_state";
    assert_eq!(value(&text, name, &[("connection", "a")]), Some(0.0));
    assert_eq!(value(&text, name, &[("connection", "b")]), Some(1.0));
}

#[test]
fn function_names_that_are_not_short_ascii_identifiers_become_other() {
    let m = Metrics::new();
    let long = "a".repeat(65);
    let longest = "b".repeat(64);
    for bad in [
        "list products",
        "1abc",
        "listProdücts",
        "a\"b",
        "a\nb",
        "a-b",
        "a.b",
        long.as_str(),
    ] {
        m.request("action", bad, "default", 400);
    }
    for good in [
        "listProducts",
        "_private",
        "x",
        "get_product2",
        longest.as_str(),
    ] {
        m.request("action", good, "default", 200);
    }
    let text = m.render();
    let count = |function: &str, status| {
        value(
            &text,
            "ds24_proxy_requests_total",
            &[
                ("route", "action"),
                ("function", function),
                ("connection", "default"),
                ("status", status),
            ],
        )
    };
    assert_eq!(count(OTHER, "400"), Some(8.0));
    for good in [
        "listProducts",
        "_private",
        "x",
        "get_product2",
        longest.as_str(),
    ] {
        assert_eq!(count(good, "200"), Some(1.0), "{good}");
    }
    assert!(!text.contains("list products") && !text.contains(&long));
    check_exposition(&text, true);
}

#[test]
fn function_names_beyond_the_cap_become_other_and_known_ones_keep_their_label() {
    let m = Metrics::new();
    for i in 0..MAX_FUNCTIONS {
        m.request("action", &format!("fn{i}"), "default", 200);
    }
    // The cap is shared by every family with a function label.
    m.upstream_latency("excess1", "ok", 0.1);
    m.retry("excess2", "connect");
    m.policy_denial("agent", "excess3");
    m.request("action", "excess4", "default", 200);
    m.request("action", "fn0", "default", 200);
    // "" (no function) is always allowed and is not counted.
    m.request("passthrough", "", "default", 200);

    let text = m.render();
    let request_labels = |function| {
        [
            ("route", "action"),
            ("function", function),
            ("connection", "default"),
            ("status", "200"),
        ]
    };
    assert_eq!(
        value(&text, "ds24_proxy_requests_total", &request_labels("fn0")),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_requests_total", &request_labels("fn255")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_requests_total", &request_labels(OTHER)),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_request_duration_seconds_count",
            &[("function", OTHER), ("outcome", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_retries_total",
            &[("function", OTHER), ("reason", "connect")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_policy_denials_total",
            &[("token", "agent"), ("function", OTHER)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_requests_total",
            &[
                ("route", "passthrough"),
                ("function", ""),
                ("connection", "default"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    assert!(!text.contains("excess"));
    let functions: HashSet<String> = check_exposition(&text, true)
        .into_iter()
        .flat_map(|s| s.labels)
        .filter(|(k, _)| k == "function")
        .map(|(_, v)| v)
        .collect();
    // 256 names, "other" and "".
    assert_eq!(functions.len(), MAX_FUNCTIONS + 2);
}

#[test]
fn connection_token_and_keyword_labels_are_bounded_too() {
    let m = Metrics::new();
    m.rate_limited("shop a");
    m.breaker_state(&"c".repeat(65), breaker::OPEN);
    m.policy_denial("tok\"en", "listProducts");
    m.upstream_latency("listProducts", "status 500", 0.1);
    m.retry("listProducts", "status-503");
    m.renewal("default", "ex piry", true);
    // "default" already holds one of the connection slots.
    for i in 1..MAX_NAMES {
        m.idempotent_replay(&format!("conn-{i}.x:1"));
    }
    m.idempotent_replay("one-too-many");
    // "status-503" above was refused and took no slot.
    for i in 0..MAX_KEYWORDS {
        m.retry("f", &format!("r{i}"));
    }
    m.retry("f", "one_too_many");

    let text = m.render();
    let other = [("connection", OTHER)];
    assert_eq!(
        value(&text, "ds24_proxy_rate_limited_total", &other),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_circuit_breaker_state", &other),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "ds24_proxy_idempotent_replays_total", &other),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_idempotent_replays_total",
            &[("connection", "conn-1.x:1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_policy_denials_total",
            &[("token", OTHER), ("function", "listProducts")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_request_duration_seconds_count",
            &[("function", "listProducts"), ("outcome", OTHER)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_retries_total",
            &[("function", "listProducts"), ("reason", OTHER)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_upstream_retries_total",
            &[("function", "f"), ("reason", OTHER)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ds24_proxy_credential_renewals_total",
            &[
                ("connection", "default"),
                ("trigger", OTHER),
                ("result", "ok")
            ]
        ),
        Some(1.0)
    );
    assert!(!text.contains("one-too-many") && !text.contains("one_too_many"));
    check_exposition(&text, true);
}

#[test]
fn repeated_label_sets_keep_counting_whether_remembered_or_refused() {
    let m = Metrics::new();
    for _ in 0..3 {
        m.request("action", "ab", "", 200);
        m.request("action", "a", "b", 200);
        m.request("action", "bad name", "default", 200);
        m.request("action", "bad name", "default", 201);
    }
    let text = m.render();
    let count = |function, connection, status| {
        value(
            &text,
            "ds24_proxy_requests_total",
            &[
                ("route", "action"),
                ("function", function),
                ("connection", connection),
                ("status", status),
            ],
        )
    };
    // Raw values that run together ("ab"+"" and "a"+"b") stay apart.
    assert_eq!(count("ab", "", "200"), Some(3.0));
    assert_eq!(count("a", "b", "200"), Some(3.0));
    // A refused value is never remembered; each call still lands on "other".
    assert_eq!(count(OTHER, "default", "200"), Some(3.0));
    assert_eq!(count(OTHER, "default", "201"), Some(3.0));
}

#[test]
fn unknown_routes_are_recorded_as_other() {
    let m = Metrics::new();
    for route in ["passthrough", "action", "admin", "ipn", "/etc/passwd", ""] {
        m.request(route, "", "", 404);
    }
    let text = m.render();
    let count = |route| {
        value(
            &text,
            "ds24_proxy_requests_total",
            &[
                ("route", route),
                ("function", ""),
                ("connection", ""),
                ("status", "404"),
            ],
        )
    };
    for route in ["passthrough", "action", "admin", "ipn"] {
        assert_eq!(count(route), Some(1.0), "{route}");
    }
    assert_eq!(count(OTHER), Some(2.0));
}

#[test]
fn rendered_text_parses_as_openmetrics_line_by_line() {
    let m = Metrics::new();
    record_everything(&m);
    m.request("ipn", "", "", 204);
    m.upstream_latency("listProducts", "timeout", 31.0);
    let _guard = m.in_flight();
    let samples = check_exposition(&m.render(), true);
    // 11 families; the two histograms have 14 buckets + sum + count each.
    assert!(samples.len() > 40, "{} samples", samples.len());
    assert!(samples.iter().all(|s| s.name.starts_with("ds24_proxy_")));
}

#[test]
fn classic_text_rendering_parses_as_the_0_0_4_format() {
    let m = Metrics::new();
    record_everything(&m);
    let text = m.render_prometheus_text();
    check_exposition(&text, false);
    assert!(text.contains("# TYPE ds24_proxy_requests_total counter\n"));
    assert!(PROMETHEUS_TEXT_CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
}

#[test]
fn the_checker_refuses_malformed_lines() {
    for bad in [
        "1abc 1",
        "abc{a=\"1\"}1",
        "abc{a=1} 1",
        "abc{a=\"1\" 1",
        "abc{a=\"x\",a=\"y\"} 1",
        "abc one",
        "abc 1 2 3",
        "abc{a=\"\\q\"} 1",
    ] {
        assert!(parse_sample(bad).is_err(), "{bad:?} accepted");
    }
    let s = parse_sample("a_b:c{x=\"q\\\"uote\\\\ \\n\",y=\"\"} +Inf").unwrap();
    assert_eq!(s.name, "a_b:c");
    assert_eq!(
        s.labels,
        vec![
            ("x".into(), "q\"uote\\ \n".into()),
            ("y".into(), String::new())
        ]
    );
    assert!(s.value.is_infinite());
}

/// Not a benchmark, a tripwire: recording into a label set that exists is a
/// couple of read-locked hash look-ups and an atomic add (see the module
/// docs: no allocation, no write lock). Even an unoptimised test build on a
/// busy 2-core machine stays far below the bound; a regression to, say, a
/// write lock per call plus allocation would still pass, so the real guard is
/// the reasoning in the module docs. Run with `--nocapture` to see the cost.
#[test]
fn recording_an_existing_label_set_is_cheap() {
    let m = Metrics::new();
    m.request("action", "listProducts", "default", 200);
    m.upstream_latency("listProducts", "ok", 0.1);
    const N: u32 = 100_000;
    let start = Instant::now();
    for _ in 0..N {
        m.request("action", "listProducts", "default", 200);
    }
    let per_request = start.elapsed() / N;
    let start = Instant::now();
    for _ in 0..N {
        m.upstream_latency("listProducts", "ok", 0.1);
    }
    let per_observation = start.elapsed() / N;
    println!(
        "request(): {per_request:?} per call; upstream_latency(): {per_observation:?} per call"
    );
    assert!(per_request.as_micros() < 50, "{per_request:?}");
    assert!(per_observation.as_micros() < 50, "{per_observation:?}");
}

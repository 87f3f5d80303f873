use crate::sandbox::clock::{bound, format, format_date, parse};

/// 2025-01-06 09:15:00 UTC.
const T: i64 = 1_736_154_900;

#[test]
fn times_format_as_digistore24_writes_them() {
    assert_eq!(format(0), "1970-01-01 00:00:00");
    assert_eq!(format(T), "2025-01-06 09:15:00");
    assert_eq!(format(951_782_400), "2000-02-29 00:00:00", "leap day");
    assert_eq!(format_date(T), "2025-01-06");
}

#[test]
fn parsing_accepts_dates_times_and_offsets() {
    assert_eq!(parse("2025-01-06 09:15:00", false), Some(T));
    assert_eq!(parse("2025-01-06T09:15:00Z", false), Some(T));
    assert_eq!(parse("2025-01-06T04:15:00-05:00", false), Some(T));
    assert_eq!(parse("2025-01-06", false), Some(T - 33_300));
    assert_eq!(parse("2025-01-06", true), Some(T - 33_300 + 86_399));
}

#[test]
fn parsing_refuses_malformed_text_without_panicking() {
    for text in [
        "",
        "2025-13-01",
        "2025-01-06 25:00:00",
        "2025-1-6",
        "2025-01-06X09:15:00",
        "2025-01-06 ü",
        "ääääääääääää",
    ] {
        assert_eq!(parse(text, false), None, "{text}");
    }
}

#[test]
fn bounds_understand_now_start_and_offsets() {
    assert_eq!(bound("", T, false), Ok(None));
    assert_eq!(bound("start", T, false), Ok(None));
    assert_eq!(bound("now", T, false), Ok(Some(T)));
    assert_eq!(bound("-24h", T, false), Ok(Some(T - 86_400)));
    assert_eq!(bound("-3d", T, false), Ok(Some(T - 3 * 86_400)));
    assert_eq!(bound("-1w", T, false), Ok(Some(T - 7 * 86_400)));
    assert!(bound("-3x", T, false).is_err());
    assert!(bound("-é", T, false).is_err());
    assert!(bound("tomorrow", T, false).is_err());
}

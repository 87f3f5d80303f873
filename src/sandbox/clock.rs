//! Times as Digistore24 writes them (`YYYY-MM-DD HH:MM:SS`) and the
//! `from`/`to` filter values it accepts (API-FACTS §5).
//!
//! Times are seconds since the Unix epoch, shown in UTC. The real server
//! shows its local time; a sandbox has no reason to pick a zone. The calendar
//! maths is Howard Hinnant's `days_from_civil`/`civil_from_days`, so no date
//! crate is needed.

use std::time::{SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Formats as `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn format(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let t = secs.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// Formats the date part only, `YYYY-MM-DD`.
pub(crate) fn format_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD HH:MM:SS` (also with `T`, optionally followed by `Z`
/// or an offset such as `-05:00`). A bare `YYYY-MM-DD` means midnight, or
/// 23:59:59 when `end_of_day` is set (so `to=2025-03-01` includes that day).
pub(crate) fn parse(text: &str, end_of_day: bool) -> Option<i64> {
    let text = text.trim();
    let date = text.get(..10)?;
    let days = parse_date(date)?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(days * DAY + if end_of_day { DAY - 1 } else { 0 });
    }
    let rest = rest.strip_prefix([' ', 'T'])?;
    let time = rest.get(..8)?;
    let secs = parse_time(time)?;
    let offset = parse_offset(&rest[8..])?;
    Some(days * DAY + secs - offset)
}

/// Parses a `from`/`to` value: empty or `start` (no bound), `now`, a
/// relative offset (`-24h`, `-3d`, `-2w`) or a date/time accepted by
/// [`parse`].
///
/// # Errors
/// A short reason when the value is none of these.
pub(crate) fn bound(text: &str, now: i64, end_of_day: bool) -> Result<Option<i64>, &'static str> {
    const HINT: &str = "use YYYY-MM-DD HH:MM:SS, now, start or an offset like -24h";
    let text = text.trim();
    match text {
        "" | "start" => return Ok(None),
        "now" => return Ok(Some(now)),
        _ => {}
    }
    if let Some(offset) = text.strip_prefix('-') {
        let unit = match offset.chars().last() {
            Some('h') => 3600,
            Some('d') => DAY,
            Some('w') => 7 * DAY,
            _ => return Err(HINT),
        };
        // The unit is one ASCII byte, so this slice is on a char boundary.
        let count: i64 = offset[..offset.len() - 1].parse().map_err(|_| HINT)?;
        return Ok(Some(now.saturating_sub(count.saturating_mul(unit))));
    }
    parse(text, end_of_day).map(Some).ok_or(HINT)
}

fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [h, m, s].iter().any(|p| p.len() != 2) {
        return None;
    }
    let (h, m, s): (i64, i64, i64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// Seconds east of UTC for `""`, `Z`, `+HH:MM` or `-HH:MM`.
fn parse_offset(text: &str) -> Option<i64> {
    let sign = match text.get(..1) {
        None => return Some(0),
        Some("Z") if text.len() == 1 => return Some(0),
        Some("+") => 1,
        Some("-") => -1,
        Some(_) => return None,
    };
    let (h, m) = text[1..].split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

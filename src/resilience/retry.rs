//! When to try an upstream call again, and how long to wait first.
//!
//! The one rule that matters for money: a call whose effect is [`Effect::Write`]
//! or [`Effect::Money`] is retried only when it provably never left the proxy
//! ([`Outcome::ConnectFailed`]). Once its bytes may have reached Digistore24 —
//! a reset, a timeout, any HTTP status — the proxy must not send it again; the
//! caller answers `outcome_unknown` instead. A [`Effect::Read`] has no side
//! effects and is retried on transport trouble, 502/503/504 and 429.
//!
//! Everything here is pure apart from the jitter drawn from `rand`: the caller
//! keeps the attempt counter and the start time, and does the sleeping.

use std::time::{Duration, SystemTime};

/// What a call does to the vendor's account; decides whether it may be sent twice.
///
/// The request path maps its own catalog type onto this (an unknown function is a
/// `Write`, see DESIGN.md "Safety of money").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// No side effects upstream: safe to repeat.
    Read,
    /// Changes state upstream: never sent twice once it may have arrived.
    Write,
    /// Moves money (refunds, charges, billing on demand): as `Write`, and more so.
    Money,
}

impl Effect {
    /// Whether repeating the call after it may have reached upstream is harmless.
    #[must_use]
    pub fn is_read(self) -> bool {
        matches!(self, Self::Read)
    }
}

/// How one attempt ended, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Connecting (TCP, TLS) failed: not one byte of the request was written, so
    /// upstream cannot have seen it. Only map an error here when that is certain.
    ConnectFailed,
    /// The connection was reset or closed before any response arrived; the request
    /// may or may not have been received and acted on.
    Reset,
    /// No (complete) response within the per-attempt timeout; the request may have
    /// been received and acted on.
    Timeout,
    /// Upstream answered with this status. `retry_after` is the raw `Retry-After`
    /// header value, if there was one.
    Status {
        /// HTTP status code.
        status: u16,
        /// Raw `Retry-After` header value.
        retry_after: Option<&'a str>,
    },
}

impl Outcome<'_> {
    /// Whether a call with `effect` that ended like this may be sent again.
    ///
    /// * Every effect: [`Outcome::ConnectFailed`] (the request never left).
    /// * Reads only: [`Outcome::Reset`], [`Outcome::Timeout`], 429, 502, 503, 504.
    ///
    /// A read is retried after a timeout because it has no side effects, so the
    /// only cost of a second try is load; timeouts are usually transient (a stale
    /// pooled connection, a slow upstream node), and the retry budget bounds the
    /// total time anyway (with a per-attempt timeout longer than the remaining
    /// budget, [`RetryPolicy::decide`] gives up on its own). A persistently slow
    /// upstream trips the circuit breaker, which stops the extra load.
    ///
    /// 500 and other statuses are not retried: they are answers, not transient
    /// transport trouble. Writes are not retried on 429 either: Digistore24's
    /// throttling semantics are undocumented (API-FACTS §5), so we do not rely on
    /// "429 means not executed".
    #[must_use]
    pub fn is_retryable(&self, effect: Effect) -> bool {
        match *self {
            Self::ConnectFailed => true,
            Self::Reset | Self::Timeout => effect.is_read(),
            Self::Status { status, .. } => {
                effect.is_read() && matches!(status, 429 | 502 | 503 | 504)
            }
        }
    }

    /// Whether this outcome says something is wrong with the upstream connection,
    /// i.e. whether it should be recorded as a failure in the circuit breaker.
    ///
    /// Transport failures and 5xx count; 429 does not (upstream is healthy and
    /// throttling: that is the rate limiter's job, via `pause_until`), nor does any
    /// other status (a 4xx is the client's problem, a 2xx/3xx is a success).
    #[must_use]
    pub fn is_upstream_failure(&self) -> bool {
        match *self {
            Self::ConnectFailed | Self::Reset | Self::Timeout => true,
            Self::Status { status, .. } => (500..=599).contains(&status),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Sleep this long, then make the next attempt.
    Retry(Duration),
    /// Return the outcome to the client as it is (for a write that may have
    /// reached upstream, as `outcome_unknown`).
    GiveUp,
}

/// Limits for retrying one upstream call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (so 3 = at most 2 retries). 0 acts as 1.
    pub max_attempts: u32,
    /// Ceiling of the first backoff; it doubles per retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Total time for all attempts and waits, measured from the first attempt's
    /// start; no wait is begun that would end after it.
    pub budget: Duration,
    /// Longest `Retry-After` honoured; a longer one is shortened to this (and then
    /// still has to fit in the budget).
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of [`backoff`](Self::backoff) for `attempt`:
    /// `min(max_delay, base_delay * 2^attempt)`, without overflow.
    #[must_use]
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        2u32.checked_pow(attempt)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// Backoff before retry number `attempt` (0-based: 0 before the first retry),
    /// with AWS "full jitter": uniform in `[0, min(max_delay, base_delay * 2^attempt)]`.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Decide what follows a failed attempt.
    ///
    /// `attempt` is the number of attempts made so far (≥ 1, the one that just
    /// ended included); `elapsed` is the time since the first attempt started.
    ///
    /// Retries only if the outcome is retryable for `effect` (see
    /// [`Outcome::is_retryable`]), fewer than `max_attempts` attempts were made,
    /// and the wait fits in what is left of the budget. The wait is the
    /// `Retry-After` of a 429/503 (capped at `retry_after_cap`) when it parses,
    /// otherwise [`backoff`](Self::backoff)`(attempt - 1)`.
    #[must_use]
    pub fn decide(
        &self,
        effect: Effect,
        attempt: u32,
        elapsed: Duration,
        outcome: Outcome<'_>,
    ) -> Verdict {
        if !outcome.is_retryable(effect) {
            return Verdict::GiveUp;
        }
        if attempt >= self.max_attempts.max(1) {
            tracing::debug!(
                attempt,
                max = self.max_attempts,
                "retry: attempts exhausted"
            );
            return Verdict::GiveUp;
        }
        let server_wait = match outcome {
            Outcome::Status {
                status: 429 | 503,
                retry_after: Some(value),
            } => parse_retry_after(value, SystemTime::now()),
            _ => None,
        };
        let wait = match server_wait {
            Some(wait) => wait.min(self.retry_after_cap),
            None => self.backoff(attempt.saturating_sub(1)),
        };
        let remaining = self.budget.saturating_sub(elapsed);
        if remaining.is_zero() || wait > remaining {
            tracing::debug!(
                attempt,
                ?wait,
                ?remaining,
                "retry: wait does not fit in the budget"
            );
            return Verdict::GiveUp;
        }
        Verdict::Retry(wait)
    }
}

/// Parse a `Retry-After` value (RFC 9110 §10.2.3): either delta-seconds (a run of
/// digits) or an HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms,
/// which recipients must accept). Returns the wait from `now`; a date in the past
/// is a wait of zero. Anything else (negative or fractional numbers, garbage) is
/// `None`. A number too large for `u64` is read as "very long" (`Duration::MAX`).
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_EFFECTS: [Effect; 3] = [Effect::Read, Effect::Write, Effect::Money];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn status(status: u16) -> Outcome<'static> {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    /// A policy whose backoff is always zero, so verdicts are deterministic.
    fn no_backoff() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.base_delay, ms(100));
        assert_eq!(p.max_delay, Duration::from_secs(2));
        assert_eq!(p.budget, Duration::from_secs(10));
        assert_eq!(p.retry_after_cap, Duration::from_secs(30));
    }

    #[test]
    fn backoff_ceiling_doubles_per_attempt_until_max_delay() {
        let p = RetryPolicy::default();
        let ceilings: Vec<_> = (0..8).map(|a| p.backoff_ceiling(a)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 2000, 2000, 2000].map(ms)
        );
    }

    #[test]
    fn backoff_ceiling_does_not_overflow_for_huge_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ceiling(31), p.max_delay);
        assert_eq!(p.backoff_ceiling(32), p.max_delay);
        assert_eq!(p.backoff_ceiling(u32::MAX), p.max_delay);
        let _ = p.backoff(u32::MAX);
    }

    #[test]
    fn backoff_stays_within_zero_and_its_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            let ceiling = p.backoff_ceiling(attempt);
            for _ in 0..200 {
                assert!(p.backoff(attempt) <= ceiling, "attempt {attempt}");
            }
        }
    }

    #[test]
    fn backoff_is_jittered_and_grows_on_average() {
        let p = RetryPolicy::default();
        let n = 2000u32;
        let mean = |attempt| (0..n).map(|_| p.backoff(attempt)).sum::<Duration>() / n;
        let (m0, m3) = (mean(0), mean(3));
        // Full jitter: the mean is half the ceiling (50 ms, then 400 ms).
        assert!(m0 > ms(35) && m0 < ms(65), "mean of attempt 0: {m0:?}");
        assert!(m3 > ms(320) && m3 < ms(480), "mean of attempt 3: {m3:?}");
        // Jitter means the draws are not all the same.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(2)).collect();
        assert!(draws.len() > 10);
    }

    #[test]
    fn backoff_with_zero_base_is_zero() {
        assert_eq!(no_backoff().backoff(5), Duration::ZERO);
    }

    #[test]
    fn connect_failed_is_retried_for_every_effect_including_money() {
        let p = no_backoff();
        for effect in ALL_EFFECTS {
            assert_eq!(
                p.decide(effect, 1, ms(0), Outcome::ConnectFailed),
                Verdict::Retry(Duration::ZERO),
                "{effect:?}"
            );
        }
    }

    #[test]
    fn a_read_is_retried_after_reset_timeout_429_502_503_504() {
        let p = no_backoff();
        for outcome in [
            Outcome::Reset,
            Outcome::Timeout,
            status(429),
            status(502),
            status(503),
            status(504),
        ] {
            assert_eq!(
                p.decide(Effect::Read, 1, ms(0), outcome),
                Verdict::Retry(Duration::ZERO),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn writes_and_money_are_never_retried_once_the_request_may_have_arrived() {
        let p = no_backoff();
        for effect in [Effect::Write, Effect::Money] {
            for outcome in [
                Outcome::Reset,
                Outcome::Timeout,
                status(429),
                status(500),
                status(502),
                status(503),
                status(504),
                Outcome::Status {
                    status: 503,
                    retry_after: Some("1"),
                },
                status(200),
                status(400),
            ] {
                assert_eq!(
                    p.decide(effect, 1, ms(0), outcome),
                    Verdict::GiveUp,
                    "{effect:?} {outcome:?}"
                );
            }
        }
    }

    #[test]
    fn other_statuses_are_not_retried_even_for_a_read() {
        let p = no_backoff();
        for code in [200, 201, 301, 400, 401, 403, 404, 409, 422, 500, 501, 505] {
            assert_eq!(
                p.decide(Effect::Read, 1, ms(0), status(code)),
                Verdict::GiveUp,
                "{code}"
            );
        }
    }

    #[test]
    fn retry_waits_are_the_jittered_backoff_of_the_previous_attempt_count() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            match p.decide(Effect::Read, 2, ms(0), Outcome::Reset) {
                Verdict::Retry(d) => assert!(d <= p.backoff_ceiling(1), "{d:?}"),
                Verdict::GiveUp => panic!("should retry"),
            }
        }
    }

    #[test]
    fn never_more_than_max_attempts_in_total() {
        let p = no_backoff();
        assert!(matches!(
            p.decide(Effect::Read, 2, ms(0), Outcome::Reset),
            Verdict::Retry(_)
        ));
        assert_eq!(
            p.decide(Effect::Read, 3, ms(0), Outcome::Reset),
            Verdict::GiveUp
        );
        assert_eq!(
            p.decide(Effect::Money, 3, ms(0), Outcome::ConnectFailed),
            Verdict::GiveUp
        );
        assert_eq!(
            p.decide(Effect::Read, 99, ms(0), Outcome::Timeout),
            Verdict::GiveUp
        );

        // Simulate a caller's loop: count how many attempts it makes.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match p.decide(Effect::Read, attempts, ms(0), status(503)) {
                Verdict::Retry(_) => continue,
                Verdict::GiveUp => break,
            }
        }
        assert_eq!(attempts, 3);
    }

    #[test]
    fn max_attempts_of_one_or_zero_means_no_retry() {
        for max_attempts in [0, 1] {
            let p = RetryPolicy {
                max_attempts,
                ..no_backoff()
            };
            assert_eq!(
                p.decide(Effect::Read, 1, ms(0), Outcome::ConnectFailed),
                Verdict::GiveUp
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_is_honoured_on_429_and_503() {
        let p = RetryPolicy::default();
        for code in [429, 503] {
            let outcome = Outcome::Status {
                status: code,
                retry_after: Some("3"),
            };
            assert_eq!(
                p.decide(Effect::Read, 1, ms(0), outcome),
                Verdict::Retry(Duration::from_secs(3)),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_on_other_statuses_is_ignored_in_favour_of_backoff() {
        let p = RetryPolicy::default();
        let outcome = Outcome::Status {
            status: 502,
            retry_after: Some("5"),
        };
        match p.decide(Effect::Read, 1, ms(0), outcome) {
            Verdict::Retry(d) => assert!(d <= p.backoff_ceiling(0)),
            Verdict::GiveUp => panic!("502 on a read is retried"),
        }
    }

    #[test]
    fn retry_after_as_an_http_date_is_honoured() {
        let p = RetryPolicy::default();
        // Whole seconds in the future; the date has second resolution and the clock
        // moves on between formatting and parsing, so allow a second of slack.
        let at = SystemTime::now() + Duration::from_secs(5);
        let header = httpdate::fmt_http_date(at);
        let outcome = Outcome::Status {
            status: 429,
            retry_after: Some(&header),
        };
        match p.decide(Effect::Read, 1, ms(0), outcome) {
            Verdict::Retry(d) => {
                assert!(
                    d > Duration::from_secs(3) && d <= Duration::from_secs(5),
                    "{d:?}"
                );
            }
            Verdict::GiveUp => panic!("should wait for the date"),
        }
    }

    #[test]
    fn an_unparseable_retry_after_falls_back_to_backoff() {
        let p = RetryPolicy::default();
        let outcome = Outcome::Status {
            status: 503,
            retry_after: Some("soon"),
        };
        match p.decide(Effect::Read, 1, ms(0), outcome) {
            Verdict::Retry(d) => assert!(d <= p.backoff_ceiling(0)),
            Verdict::GiveUp => panic!("should retry with backoff"),
        }
    }

    #[test]
    fn retry_after_is_capped_at_retry_after_cap() {
        let p = RetryPolicy {
            retry_after_cap: Duration::from_secs(4),
            ..RetryPolicy::default()
        };
        let outcome = Outcome::Status {
            status: 429,
            retry_after: Some("3600"),
        };
        assert_eq!(
            p.decide(Effect::Read, 1, ms(0), outcome),
            Verdict::Retry(Duration::from_secs(4))
        );
    }

    #[test]
    fn a_wait_beyond_the_remaining_budget_gives_up() {
        let p = RetryPolicy::default(); // budget 10 s, cap 30 s
        let ra = |v| Outcome::Status {
            status: 429,
            retry_after: Some(v),
        };
        // 20 s is under the cap but over the budget.
        assert_eq!(p.decide(Effect::Read, 1, ms(0), ra("20")), Verdict::GiveUp);
        // A huge value is capped to 30 s, still over the budget.
        assert_eq!(
            p.decide(Effect::Read, 1, ms(0), ra("99999999999999999999999")),
            Verdict::GiveUp
        );
        // 4 s fits at the start, but not after 7 s have gone by.
        assert_eq!(
            p.decide(Effect::Read, 1, ms(0), ra("4")),
            Verdict::Retry(Duration::from_secs(4))
        );
        assert_eq!(
            p.decide(Effect::Read, 1, Duration::from_secs(7), ra("4")),
            Verdict::GiveUp
        );
        // Exactly filling the budget is allowed.
        assert_eq!(
            p.decide(Effect::Read, 1, Duration::from_secs(6), ra("4")),
            Verdict::Retry(Duration::from_secs(4))
        );
    }

    #[test]
    fn an_exhausted_budget_gives_up_even_for_a_connect_failure() {
        let p = no_backoff();
        for elapsed in [Duration::from_secs(10), Duration::from_secs(11)] {
            assert_eq!(
                p.decide(Effect::Read, 1, elapsed, Outcome::ConnectFailed),
                Verdict::GiveUp
            );
        }
    }

    #[test]
    fn parse_retry_after_reads_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("123456789012345678901234567890", now),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn parse_retry_after_reads_all_three_http_date_forms() {
        // RFC 9110 §5.6.7 example instant.
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:00 GMT").unwrap();
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // obsolete RFC 850
            "Sun Nov  6 08:49:37 1994",       // obsolete asctime
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::from_secs(37)),
                "{value}"
            );
        }
    }

    #[test]
    fn parse_retry_after_treats_a_past_date_as_no_wait() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn parse_retry_after_rejects_garbage() {
        let now = SystemTime::now();
        for value in [
            "",
            "  ",
            "-5",
            "1.5",
            "+3",
            "3s",
            "tomorrow",
            "Sun, 06 Nov 1994",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn upstream_failures_for_the_breaker_are_transport_errors_and_5xx() {
        for outcome in [
            Outcome::ConnectFailed,
            Outcome::Reset,
            Outcome::Timeout,
            status(500),
            status(502),
            status(503),
            status(504),
        ] {
            assert!(outcome.is_upstream_failure(), "{outcome:?}");
        }
        for code in [200, 302, 400, 404, 429] {
            assert!(!status(code).is_upstream_failure(), "{code}");
        }
    }
}

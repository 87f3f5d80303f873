//! A circuit breaker for one upstream connection.
//!
//! ```text
//!            failure_threshold consecutive failures
//!   Closed ───────────────────────────────────────────▶ Open
//!     ▲                                                  │ open_for has passed:
//!     │ probe succeeds              probe fails          │ the next caller is
//!     └──────────────── HalfOpen ◀───────────────────────┘ the (only) probe
//!                          │  ▲
//!                          └──┘ (re-opens for open_for again)
//! ```
//!
//! Time is passed in (`now: Instant`) rather than read, so tests drive it by hand
//! and the caller decides which clock is "now" (use
//! `tokio::time::Instant::now().into_std()` to follow tokio's paused clock).
//!
//! [`CircuitBreaker::try_acquire`] hands out a [`Call`], which reports its result
//! with [`Call::success`] / [`Call::failure`]. A call's result only counts in the
//! state it was admitted in: a slow request admitted while Closed that finishes
//! after the breaker opened cannot close it again, and only the probe decides a
//! HalfOpen breaker. A probe dropped without a result (its request was cancelled)
//! frees the probe slot, so the next caller probes instead; the breaker never
//! hangs in HalfOpen.
//!
//! The Closed fast path is lock-free: state, consecutive failures and an epoch are
//! packed into one `AtomicU64`; admitting a call is a single load, and a success
//! while there are no failures to clear is a load too. The `Mutex` is taken only
//! for the transitions and while not Closed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// While the probe is out nobody knows when it will end; rejected callers are told
/// to come back after this (or `open_for`, if shorter).
const PROBE_OUT_RETRY_HINT: Duration = Duration::from_secs(1);

/// Largest threshold the packed word can count to.
const MAX_THRESHOLD: u32 = (1 << 30) - 1;

/// Settings of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How long the breaker stays open before letting a probe through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

/// The breaker's state, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; failures are being counted.
    Closed,
    /// Calls are rejected until `open_for` has passed (the switch to HalfOpen
    /// happens at the next `try_acquire` after that, so a breaker nobody asks
    /// stays Open).
    Open,
    /// One probe is (or may be) out; its result decides.
    HalfOpen,
}

impl BreakerState {
    /// A stable lower-case name for metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// The answer of [`CircuitBreaker::try_acquire`].
#[derive(Debug)]
#[must_use = "a granted call must be made and its result recorded"]
pub enum Permit<'a> {
    /// Go ahead; report the result on the [`Call`].
    Granted(Call<'a>),
    /// Do not call upstream; ask again in `retry_in` at the earliest.
    Rejected {
        /// Time until the breaker may admit a call again (a hint).
        retry_in: Duration,
    },
}

/// A call admitted by the breaker; report how it went with [`success`](Self::success)
/// or [`failure`](Self::failure). Dropping it unreported counts as neither (and
/// frees the probe slot if it was the probe).
#[derive(Debug)]
#[must_use = "report the call's result with success() or failure()"]
pub struct Call<'a> {
    breaker: &'a CircuitBreaker,
    epoch: u32,
    probe: bool,
    settled: bool,
}

impl Call<'_> {
    /// Whether this call is the HalfOpen probe.
    #[must_use]
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call succeeded (upstream is healthy): clears the failure count, or
    /// closes the breaker if this was the probe.
    pub fn success(mut self) {
        self.settled = true;
        if self.probe {
            self.breaker.probe_result(self.epoch, true, None);
        } else {
            self.breaker.closed_success(self.epoch);
        }
    }

    /// The call failed at `now` (see `Outcome::is_upstream_failure`): counts
    /// towards opening, or re-opens the breaker if this was the probe.
    pub fn failure(mut self, now: Instant) {
        self.settled = true;
        if self.probe {
            self.breaker.probe_result(self.epoch, false, Some(now));
        } else {
            self.breaker.closed_failure(self.epoch, now);
        }
    }

    /// [`success`](Self::success) or [`failure`](Self::failure), by a flag.
    pub fn record(self, success: bool, now: Instant) {
        if success {
            self.success();
        } else {
            self.failure(now);
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.probe_abandoned(self.epoch);
        }
    }
}

/// Circuit breaker for one upstream connection; share it by reference or `Arc`.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    open_for: Duration,
    /// A packed [`Word`]. Only the Closed-state failure count changes without
    /// holding `slow`; every change of state or epoch happens with `slow` held.
    word: AtomicU64,
    slow: Mutex<Slow>,
}

#[derive(Debug)]
struct Slow {
    /// While Open: when the probe may go.
    reopen_at: Option<Instant>,
    /// While HalfOpen: whether the probe is out.
    probe_out: bool,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(BreakerConfig::default())
    }
}

impl CircuitBreaker {
    /// A Closed breaker. A threshold of 0 acts as 1.
    #[must_use]
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            failure_threshold: config.failure_threshold.clamp(1, MAX_THRESHOLD),
            open_for: config.open_for,
            word: AtomicU64::new(Word::closed(0).pack()),
            slow: Mutex::new(Slow {
                reopen_at: None,
                probe_out: false,
            }),
        }
    }

    /// May a call go upstream at `now`?
    pub fn try_acquire(&self, now: Instant) -> Permit<'_> {
        let word = self.load();
        if word.state == BreakerState::Closed {
            return self.grant(word.epoch, false);
        }
        self.acquire_slow(now)
    }

    /// The current state (Open is reported until a `try_acquire` after `open_for`
    /// moves it to HalfOpen).
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.load().state
    }

    /// Consecutive failures counted while Closed (0 in the other states).
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        self.load().failures
    }

    fn grant(&self, epoch: u32, probe: bool) -> Permit<'_> {
        Permit::Granted(Call {
            breaker: self,
            epoch,
            probe,
            settled: false,
        })
    }

    fn load(&self) -> Word {
        Word::unpack(self.word.load(Ordering::Acquire))
    }

    fn lock(&self) -> MutexGuard<'_, Slow> {
        // Nothing panics while the lock is held; if something ever did, the state
        // is still consistent enough to go on with.
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire_slow(&self, now: Instant) -> Permit<'_> {
        let mut slow = self.lock();
        let word = self.load();
        match word.state {
            // Closed again by the time we got the lock.
            BreakerState::Closed => self.grant(word.epoch, false),
            BreakerState::Open => {
                let reopen_at = slow.reopen_at.unwrap_or(now);
                if now < reopen_at {
                    return Permit::Rejected {
                        retry_in: reopen_at - now,
                    };
                }
                let epoch = word.epoch.wrapping_add(1);
                self.word
                    .store(Word::half_open(epoch).pack(), Ordering::Release);
                slow.reopen_at = None;
                slow.probe_out = true;
                tracing::info!("circuit breaker half-open: sending one probe");
                self.grant(epoch, true)
            }
            BreakerState::HalfOpen => {
                if slow.probe_out {
                    Permit::Rejected {
                        retry_in: PROBE_OUT_RETRY_HINT.min(self.open_for),
                    }
                } else {
                    slow.probe_out = true;
                    self.grant(word.epoch, true)
                }
            }
        }
    }

    fn closed_success(&self, epoch: u32) {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(current);
            if word.state != BreakerState::Closed || word.epoch != epoch || word.failures == 0 {
                return;
            }
            let cleared = Word {
                failures: 0,
                ..word
            }
            .pack();
            match self.word.compare_exchange_weak(
                current,
                cleared,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    fn closed_failure(&self, epoch: u32, now: Instant) {
        // Taken only once this failure would open the breaker, so that the switch
        // and `reopen_at` are published together.
        let mut slow: Option<MutexGuard<'_, Slow>> = None;
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(current);
            if word.state != BreakerState::Closed || word.epoch != epoch {
                return; // a stale result from before the last transition
            }
            let failures = word.failures + 1;
            let (next, opens) = if failures >= self.failure_threshold {
                if slow.is_none() {
                    slow = Some(self.lock());
                    current = self.word.load(Ordering::Acquire);
                    continue;
                }
                (Word::open(epoch.wrapping_add(1)), true)
            } else {
                (Word { failures, ..word }, false)
            };
            match self.word.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if opens && let Some(slow) = slow.as_mut() {
                        slow.reopen_at = Some(now + self.open_for);
                        slow.probe_out = false;
                        tracing::warn!(
                            failures,
                            open_for = ?self.open_for,
                            "circuit breaker opened"
                        );
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn probe_result(&self, epoch: u32, success: bool, now: Option<Instant>) {
        let mut slow = self.lock();
        let word = self.load();
        if word.state != BreakerState::HalfOpen || word.epoch != epoch {
            return;
        }
        let next = epoch.wrapping_add(1);
        slow.probe_out = false;
        match now {
            Some(now) if !success => {
                slow.reopen_at = Some(now + self.open_for);
                self.word.store(Word::open(next).pack(), Ordering::Release);
                tracing::warn!(open_for = ?self.open_for, "circuit breaker probe failed: re-opened");
            }
            _ => {
                slow.reopen_at = None;
                self.word
                    .store(Word::closed(next).pack(), Ordering::Release);
                tracing::info!("circuit breaker probe succeeded: closed");
            }
        }
    }

    fn probe_abandoned(&self, epoch: u32) {
        let mut slow = self.lock();
        let word = self.load();
        if word.state == BreakerState::HalfOpen && word.epoch == epoch {
            slow.probe_out = false;
        }
    }
}

/// State, Closed-state failure count and epoch, packed into a `u64`:
/// bits 0–1 state, bits 2–31 failures, bits 32–63 epoch. The epoch changes on
/// every transition, so a call can tell whether its result still applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    state: BreakerState,
    failures: u32,
    epoch: u32,
}

impl Word {
    fn closed(epoch: u32) -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            epoch,
        }
    }

    fn open(epoch: u32) -> Self {
        Self {
            state: BreakerState::Open,
            failures: 0,
            epoch,
        }
    }

    fn half_open(epoch: u32) -> Self {
        Self {
            state: BreakerState::HalfOpen,
            failures: 0,
            epoch,
        }
    }

    fn pack(self) -> u64 {
        let state = match self.state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        (u64::from(self.epoch) << 32) | (u64::from(self.failures.min(MAX_THRESHOLD)) << 2) | state
    }

    fn unpack(bits: u64) -> Self {
        let state = match bits & 0b11 {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        };
        Self {
            state,
            // Both masks keep the value within 32 bits, so the casts are exact.
            failures: ((bits >> 2) & u64::from(MAX_THRESHOLD)) as u32,
            epoch: (bits >> 32) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn granted(permit: Permit<'_>) -> Call<'_> {
        match permit {
            Permit::Granted(call) => call,
            Permit::Rejected { retry_in } => panic!("rejected, retry in {retry_in:?}"),
        }
    }

    fn rejected(permit: Permit<'_>) -> Duration {
        match permit {
            Permit::Granted(call) => panic!("granted (probe: {})", call.is_probe()),
            Permit::Rejected { retry_in } => retry_in,
        }
    }

    /// Fail `n` calls at `now`.
    fn fail(breaker: &CircuitBreaker, n: u32, now: Instant) {
        for _ in 0..n {
            granted(breaker.try_acquire(now)).failure(now);
        }
    }

    /// A default breaker (5 failures, 10 s) that was opened at `t0`.
    fn opened_at(t0: Instant) -> CircuitBreaker {
        let b = CircuitBreaker::default();
        fail(&b, 5, t0);
        assert_eq!(b.state(), BreakerState::Open);
        b
    }

    #[test]
    fn a_new_breaker_is_closed_and_lets_calls_through() {
        let b = CircuitBreaker::default();
        let now = Instant::now();
        assert_eq!(b.state(), BreakerState::Closed);
        let call = granted(b.try_acquire(now));
        assert!(!call.is_probe());
        call.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn it_opens_after_failure_threshold_consecutive_failures() {
        let b = CircuitBreaker::default();
        let now = Instant::now();
        fail(&b, 4, now);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 4);
        fail(&b, 1, now);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_success_resets_the_consecutive_failure_count() {
        let b = CircuitBreaker::default();
        let now = Instant::now();
        fail(&b, 4, now);
        granted(b.try_acquire(now)).success();
        assert_eq!(b.consecutive_failures(), 0);
        fail(&b, 4, now);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 1, now);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_threshold_of_zero_acts_as_one() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 0,
            open_for: secs(1),
        });
        fail(&b, 1, Instant::now());
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn while_open_it_rejects_with_the_time_left_until_the_probe() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        assert_eq!(rejected(b.try_acquire(t0)), secs(10));
        assert_eq!(rejected(b.try_acquire(t0 + secs(3))), secs(7));
        assert_eq!(
            rejected(b.try_acquire(t0 + Duration::from_millis(9_999))),
            Duration::from_millis(1)
        );
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn after_open_for_exactly_one_probe_goes_through() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        let t1 = t0 + secs(10);
        let probe = granted(b.try_acquire(t1));
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // A second caller while the probe is out is rejected.
        assert_eq!(rejected(b.try_acquire(t1)), PROBE_OUT_RETRY_HINT);
        assert_eq!(rejected(b.try_acquire(t1 + secs(60))), PROBE_OUT_RETRY_HINT);
        probe.success();
    }

    #[test]
    fn concurrent_callers_in_half_open_get_one_probe_between_them() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        let t1 = t0 + secs(11);
        let threads = 8;
        let barrier = Barrier::new(threads);
        let probes: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        match b.try_acquire(t1) {
                            // Keep the probe out (leak it) so that the others
                            // really race against an outstanding probe.
                            Permit::Granted(call) => {
                                assert!(call.is_probe());
                                std::mem::forget(call);
                                1
                            }
                            Permit::Rejected { .. } => 0,
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(probes, 1);
    }

    #[test]
    fn the_probes_success_closes_the_breaker() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        let t1 = t0 + secs(10);
        granted(b.try_acquire(t1)).success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
        let call = granted(b.try_acquire(t1));
        assert!(!call.is_probe());
        call.success();
        // And it takes a full threshold of failures to open it again.
        fail(&b, 4, t1);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn the_probes_failure_reopens_the_breaker_for_open_for_again() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        let t1 = t0 + secs(12);
        granted(b.try_acquire(t1)).failure(t1 + secs(1));
        assert_eq!(b.state(), BreakerState::Open);
        // Measured from the probe's failure, not from the first opening.
        assert_eq!(rejected(b.try_acquire(t1 + secs(1))), secs(10));
        assert_eq!(rejected(b.try_acquire(t1 + secs(6))), secs(5));
        let probe = granted(b.try_acquire(t1 + secs(11)));
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_caller_probe() {
        let t0 = Instant::now();
        let b = opened_at(t0);
        let t1 = t0 + secs(10);
        drop(granted(b.try_acquire(t1)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = granted(b.try_acquire(t1));
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn results_of_calls_admitted_before_a_transition_are_ignored() {
        let t0 = Instant::now();
        let b = CircuitBreaker::default();
        // Two slow calls admitted while Closed.
        let late_success = granted(b.try_acquire(t0));
        let late_failure = granted(b.try_acquire(t0));
        fail(&b, 5, t0);
        assert_eq!(b.state(), BreakerState::Open);
        // A late success cannot close an open breaker...
        late_success.success();
        assert_eq!(b.state(), BreakerState::Open);
        // ...nor decide a half-open one; only the probe can.
        let probe = granted(b.try_acquire(t0 + secs(10)));
        late_failure.failure(t0 + secs(10));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn record_with_a_flag_is_success_or_failure() {
        let now = Instant::now();
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            open_for: secs(1),
        });
        granted(b.try_acquire(now)).record(false, now);
        assert_eq!(b.consecutive_failures(), 1);
        granted(b.try_acquire(now)).record(true, now);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn concurrent_failures_open_the_breaker_exactly_once() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 50,
            open_for: secs(10),
        });
        let now = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if let Permit::Granted(call) = b.try_acquire(now) {
                            call.failure(now);
                        }
                    }
                });
            }
        });
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(rejected(b.try_acquire(now)), secs(10));
        // One transition to Open (epoch 0 -> 1): no failure opened it twice.
        assert_eq!(b.load().epoch, 1);
    }

    #[test]
    fn the_packed_word_round_trips() {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            for failures in [0, 1, MAX_THRESHOLD] {
                for epoch in [0, 7, u32::MAX] {
                    let w = Word {
                        state,
                        failures,
                        epoch,
                    };
                    assert_eq!(Word::unpack(w.pack()), w);
                }
            }
        }
    }

    #[test]
    fn state_names_are_stable_metric_labels() {
        assert_eq!(BreakerState::Closed.as_str(), "closed");
        assert_eq!(BreakerState::Open.as_str(), "open");
        assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
    }
}

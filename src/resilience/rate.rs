//! Outbound rate limiting for one upstream connection: a token bucket with a
//! bounded, fair (FIFO) wait queue, and a pause for when upstream says 429.
//!
//! Hand-written rather than built on `governor`: governor's `until_ready` waits
//! with `futures-timer` and re-polls after each delay, so waiters are not served
//! in arrival order, it has no bound on how many may wait, no way to pause a
//! limiter until an instant, and its clock does not follow tokio's paused time
//! (which the tests rely on). What is needed here is small.
//!
//! The bucket is kept as a GCRA ("virtual scheduling") in integer time: `tat` is
//! the theoretical arrival time of the next request, `interval` = 1 / rate, and
//! `tolerance` = (burst − 1) × interval. A request at `now` conforms when
//! `now ≥ tat − tolerance`, and taking it moves `tat` to `max(tat, now) + interval`.
//! That is exactly a bucket of `burst` tokens refilled at `per_second`, without
//! floating-point drift.
//!
//! Waiting: a caller that finds no token (or finds others already waiting — no
//! overtaking) joins the queue if fewer than `max_waiters` are in it and its
//! estimated wait is at most `max_wait`; otherwise it is refused at once with a
//! `retry_after` estimate. The queue is a fair `tokio::sync::Mutex`: its holder
//! is the head, which sleeps until its token is due, takes it and lets the next
//! one in. A waiter whose future is dropped simply leaves the queue.
//!
//! `max_wait` bounds every wait, also one stretched by a `pause_until` that came
//! after the caller joined: such a waiter gives up (`WaitTooLong`) as soon as it
//! sees its token would come too late.
//!
//! A late wake-up (tokio's timer has millisecond ticks; a busy runtime) is lost
//! capacity, never extra: the limiter only ever errs towards sending slower.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Slowest rate honoured: one token per this interval (a lower `per_second`
/// is raised to it, so instants never overflow).
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A token was handed out after waiting this long (zero when one was there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited(pub Duration);

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitReason {
    /// `max_waiters` callers were already waiting.
    QueueFull,
    /// The token would come later than `max_wait` after the call.
    WaitTooLong,
}

/// No token now, and waiting for one is not allowed; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outbound rate limit reached ({reason:?}); retry in {retry_after:?}")]
pub struct RateLimited {
    /// Estimated time until a token would be available to this caller.
    pub retry_after: Duration,
    /// Which limit refused the call.
    pub reason: RateLimitReason,
}

/// Token bucket with a bounded FIFO wait queue; share it by reference or `Arc`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    max_waiters: usize,
    max_wait: Duration,
    state: Mutex<State>,
    /// Held by the head of the queue; tokio's mutex is fair, so this is the FIFO.
    queue: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    /// Theoretical arrival time of the next request (GCRA).
    tat: Instant,
    /// Callers queued, the head included.
    waiters: usize,
}

impl RateLimiter {
    /// `per_second` tokens a second (a rate that is not positive, NaN, or slower
    /// than one a year is one a year; infinity is one a nanosecond), at most
    /// `burst` at once (0 acts as 1; the bucket starts full), at most `max_waiters` callers waiting, none of
    /// them longer than `max_wait`.
    #[must_use]
    pub fn new(per_second: f64, burst: u32, max_waiters: usize, max_wait: Duration) -> Self {
        let interval = if per_second > 0.0 {
            Duration::try_from_secs_f64(per_second.recip())
                .unwrap_or(MAX_INTERVAL)
                .clamp(Duration::from_nanos(1), MAX_INTERVAL)
        } else {
            MAX_INTERVAL
        };
        let tolerance = interval.saturating_mul(burst.max(1) - 1);
        Self {
            interval,
            tolerance,
            max_waiters,
            max_wait,
            state: Mutex::new(State {
                tat: Instant::now(),
                waiters: 0,
            }),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// Take a token: at once if one is there and nobody is waiting; else wait in
    /// line for it, if the queue has room and the wait would be at most
    /// `max_wait`; else fail at once.
    ///
    /// Cancel-safe: dropping the future leaves the queue without taking a token.
    pub async fn acquire(&self) -> Result<Waited, RateLimited> {
        let start = Instant::now();
        let refusal = {
            let mut state = self.lock();
            let wait = self.wait_for(&state, state.waiters, start);
            if state.waiters == 0 && wait.is_zero() {
                self.take(&mut state, start);
                return Ok(Waited(Duration::ZERO));
            }
            if state.waiters >= self.max_waiters {
                Some((RateLimitReason::QueueFull, wait))
            } else if wait > self.max_wait {
                Some((RateLimitReason::WaitTooLong, wait))
            } else {
                state.waiters += 1;
                None
            }
        };
        match refusal {
            None => self.wait_in_line(start).await,
            Some((reason, retry_after)) => {
                tracing::debug!(?reason, ?retry_after, "outbound rate limit: refused");
                Err(RateLimited {
                    retry_after,
                    reason,
                })
            }
        }
    }

    /// Hand out no token before `until`: upstream said "too many requests". The
    /// bucket restarts empty at `until` (one token then, the rest at the steady
    /// rate: no burst right after a pause). Only ever extends an existing pause or
    /// queue; waiters already in line are delayed too.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
        if let Some(tat) = until.checked_add(self.tolerance)
            && tat > state.tat
        {
            state.tat = tat;
            tracing::debug!(pause = ?until.saturating_duration_since(Instant::now()), "outbound rate limit: paused");
        }
    }

    /// Callers currently waiting for a token (for metrics).
    #[must_use]
    pub fn waiters(&self) -> usize {
        self.lock().waiters
    }

    async fn wait_in_line(&self, start: Instant) -> Result<Waited, RateLimited> {
        // Counted in `waiters` by the caller; uncounted when this leaves, however.
        let _slot = WaiterSlot(self);
        let _head = self.queue.lock().await;
        // `None`: a `max_wait` too long to add to an instant, i.e. no limit.
        let deadline = start.checked_add(self.max_wait);
        loop {
            let now = Instant::now();
            let wait = {
                let mut state = self.lock();
                let wait = self.wait_for(&state, 0, now);
                if wait.is_zero() {
                    self.take(&mut state, now);
                    return Ok(Waited(now - start));
                }
                wait
            };
            // Only a pause that came after we joined can push us past the deadline.
            if deadline.is_some_and(|deadline| wait > deadline.saturating_duration_since(now)) {
                tracing::debug!(retry_after = ?wait, "outbound rate limit: waiter gave up after a pause");
                return Err(RateLimited {
                    retry_after: wait,
                    reason: RateLimitReason::WaitTooLong,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// How long from `now` until the token after the next `ahead` ones is due.
    fn wait_for(&self, state: &State, ahead: usize, now: Instant) -> Duration {
        let queued = self
            .interval
            .saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
        // due = tat + queued − tolerance, as a non-negative offset from now.
        if state.tat >= now {
            (state.tat - now)
                .saturating_add(queued)
                .saturating_sub(self.tolerance)
        } else {
            queued
                .saturating_sub(now - state.tat)
                .saturating_sub(self.tolerance)
        }
    }

    fn take(&self, state: &mut State, now: Instant) {
        state.tat = state.tat.max(now) + self.interval;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes a queued caller out of the `waiters` count when it leaves, by any path.
struct WaiterSlot<'a>(&'a RateLimiter);

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.waiters = state.waiters.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Let spawned tasks run until they block (on the queue or a timer).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// Spawn a task that acquires and reports (its label, the result, when).
    fn spawn_acquire(
        limiter: &Arc<RateLimiter>,
        label: usize,
    ) -> tokio::task::JoinHandle<(usize, Result<Waited, RateLimited>, Instant)> {
        let limiter = Arc::clone(limiter);
        tokio::spawn(async move {
            let result = limiter.acquire().await;
            (label, result, Instant::now())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_through_at_once_then_the_steady_rate_applies() {
        let limiter = RateLimiter::new(10.0, 5, 100, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.acquire().await, Ok(Waited(Duration::ZERO)));
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        for i in 1..=10u32 {
            let Waited(waited) = limiter.acquire().await.unwrap();
            assert!(waited >= ms(100) && waited <= ms(101), "{i}: {waited:?}");
        }
        let elapsed = t0.elapsed();
        assert!(
            elapsed >= ms(1000) && elapsed <= ms(1010),
            "10 tokens at 10/s took {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_up_to_burst_and_no_further() {
        let limiter = RateLimiter::new(10.0, 3, 0, Duration::ZERO);
        for _ in 0..3 {
            limiter.acquire().await.unwrap();
        }
        assert!(limiter.acquire().await.is_err());
        tokio::time::sleep(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert_eq!(limiter.acquire().await, Ok(Waited(Duration::ZERO)));
        }
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(refused.retry_after, ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_waiter_beyond_max_waiters_is_refused_at_once() {
        let limiter = Arc::new(RateLimiter::new(1.0, 1, 2, Duration::from_secs(60)));
        limiter.acquire().await.unwrap();
        let waiting = [spawn_acquire(&limiter, 0), spawn_acquire(&limiter, 1)];
        settle().await;
        assert_eq!(limiter.waiters(), 2);

        let t = Instant::now();
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(t.elapsed(), Duration::ZERO, "refused without waiting");
        assert_eq!(refused.reason, RateLimitReason::QueueFull);
        // Two are ahead of it, and it would need the third token: 3 s.
        assert_eq!(refused.retry_after, Duration::from_secs(3));

        for handle in waiting {
            assert!(handle.await.unwrap().1.is_ok());
        }
        assert_eq!(limiter.waiters(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_max_wait_is_refused_at_once() {
        let limiter = Arc::new(RateLimiter::new(1.0, 1, 10, ms(1500)));
        limiter.acquire().await.unwrap();
        // The next token is 1 s away: within max_wait.
        let first = spawn_acquire(&limiter, 0);
        settle().await;
        // The one after is 2 s away: too long.
        let t = Instant::now();
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(refused.reason, RateLimitReason::WaitTooLong);
        assert_eq!(refused.retry_after, Duration::from_secs(2));

        let (_, result, _) = first.await.unwrap();
        assert_eq!(result, Ok(Waited(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn max_waiters_of_zero_means_never_wait() {
        let limiter = RateLimiter::new(1.0, 1, 0, Duration::from_secs(60));
        limiter.acquire().await.unwrap();
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(refused.reason, RateLimitReason::QueueFull);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order_one_interval_apart() {
        let limiter = Arc::new(RateLimiter::new(10.0, 1, 10, Duration::from_secs(10)));
        let t0 = Instant::now();
        limiter.acquire().await.unwrap();
        let mut handles = Vec::new();
        for label in 0..5 {
            handles.push(spawn_acquire(&limiter, label));
            // Make sure each has joined the queue before the next arrives.
            settle().await;
        }
        let mut finished = Vec::new();
        for handle in handles {
            finished.push(handle.await.unwrap());
        }
        finished.sort_by_key(|(_, _, at)| *at);
        let order: Vec<usize> = finished.iter().map(|(label, _, _)| *label).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
        for (i, (label, result, at)) in finished.iter().enumerate() {
            let expected = ms(100) * (u32::try_from(i).unwrap() + 1);
            let got = *at - t0;
            assert!(result.is_ok(), "{label}");
            assert!(
                got >= expected && got <= expected + ms(5),
                "waiter {label} served at {got:?}, expected {expected:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_until_delays_everyone_and_restarts_without_a_burst() {
        let limiter = Arc::new(RateLimiter::new(10.0, 5, 10, Duration::from_secs(10)));
        let t0 = Instant::now();
        limiter.acquire().await.unwrap(); // the bucket still has 4 tokens
        limiter.pause_until(t0 + Duration::from_secs(2));

        let handles: Vec<_> = (0..3).map(|label| spawn_acquire(&limiter, label)).collect();
        settle().await;
        assert_eq!(limiter.waiters(), 3);
        let direct = limiter.acquire().await.unwrap();
        assert!(direct.0 >= Duration::from_secs(2));

        let mut served: Vec<Duration> = Vec::new();
        for handle in handles {
            let (_, result, at) = handle.await.unwrap();
            assert!(result.is_ok());
            served.push(at - t0);
        }
        served.push(Instant::now() - t0); // when the direct caller was served
        served.sort();
        // The first token comes at the end of the pause, the others one interval
        // apart: the 4 tokens left before the pause are gone.
        for (i, at) in served.iter().enumerate() {
            let expected = Duration::from_secs(2) + ms(100) * u32::try_from(i).unwrap();
            assert!(
                *at >= expected && *at <= expected + ms(5),
                "token {i} at {at:?}, expected {expected:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn while_paused_a_newcomer_is_refused_when_the_pause_exceeds_max_wait() {
        let limiter = RateLimiter::new(10.0, 5, 10, Duration::from_secs(1));
        let t0 = Instant::now();
        limiter.pause_until(t0 + Duration::from_secs(30));
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(refused.reason, RateLimitReason::WaitTooLong);
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_after_joining_the_queue_makes_a_waiter_give_up_at_max_wait() {
        let limiter = Arc::new(RateLimiter::new(1.0, 1, 10, Duration::from_secs(2)));
        let t0 = Instant::now();
        limiter.acquire().await.unwrap();
        let waiter = spawn_acquire(&limiter, 0); // due in 1 s
        settle().await;
        limiter.pause_until(t0 + Duration::from_secs(30));
        let (_, result, at) = waiter.await.unwrap();
        let refused = result.unwrap_err();
        assert_eq!(refused.reason, RateLimitReason::WaitTooLong);
        // It noticed when it woke for its original token, 1 s in.
        assert_eq!(at - t0, Duration::from_secs(1));
        assert_eq!(refused.retry_after, Duration::from_secs(29));
        assert_eq!(limiter.waiters(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_never_shortens_an_earlier_longer_one() {
        let limiter = RateLimiter::new(10.0, 1, 10, Duration::from_secs(60));
        let t0 = Instant::now();
        limiter.pause_until(t0 + Duration::from_secs(5));
        limiter.pause_until(t0 + Duration::from_secs(1));
        let Waited(waited) = limiter.acquire().await.unwrap();
        assert_eq!(waited, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaves_the_queue_and_its_token_goes_to_the_next() {
        let limiter = Arc::new(RateLimiter::new(10.0, 1, 10, Duration::from_secs(10)));
        let t0 = Instant::now();
        limiter.acquire().await.unwrap();
        let cancelled = spawn_acquire(&limiter, 0);
        settle().await;
        let next = spawn_acquire(&limiter, 1);
        settle().await;
        assert_eq!(limiter.waiters(), 2);
        cancelled.abort();
        settle().await;
        assert_eq!(limiter.waiters(), 1);
        let (_, result, at) = next.await.unwrap();
        assert!(result.is_ok());
        // The token the cancelled waiter would have had, at 100 ms.
        assert!(at - t0 >= ms(100) && at - t0 <= ms(105), "{:?}", at - t0);
        assert_eq!(limiter.waiters(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_nonsensical_rate_is_one_token_a_year() {
        for rate in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 1e-12] {
            let limiter = RateLimiter::new(rate, 0, 0, Duration::ZERO);
            assert!(limiter.acquire().await.is_ok(), "{rate}");
            let refused = limiter.acquire().await.unwrap_err();
            assert_eq!(refused.retry_after, MAX_INTERVAL, "{rate}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_infinite_rate_is_one_token_a_nanosecond() {
        let limiter = RateLimiter::new(f64::INFINITY, 1, 0, Duration::ZERO);
        assert!(limiter.acquire().await.is_ok());
        let refused = limiter.acquire().await.unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_nanos(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unbounded_max_wait_does_not_overflow() {
        let limiter = Arc::new(RateLimiter::new(10.0, 1, 10, Duration::MAX));
        limiter.acquire().await.unwrap();
        let (_, result, _) = spawn_acquire(&limiter, 0).await.unwrap();
        assert_eq!(result, Ok(Waited(ms(100))));
    }
}

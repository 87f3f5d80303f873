//! Building blocks that keep upstream calls safe and polite; the request path
//! wires them together (DESIGN.md, "Safety of money").
//!
//! * [`retry`] — whether a failed attempt may be repeated and after how long:
//!   [`RetryPolicy::decide`] per [`Effect`] × [`Outcome`] (a write or money call
//!   is retried only when it never left the proxy), exponential backoff with
//!   full jitter, `Retry-After` parsing ([`parse_retry_after`]), a total time
//!   budget and an attempt limit. Pure apart from the jitter.
//! * [`breaker`] — a per-connection [`CircuitBreaker`] (Closed → Open after N
//!   consecutive failures → one HalfOpen probe → Closed or Open again). Time is
//!   passed in, so it is deterministic to test.
//! * [`rate`] — a per-connection outbound [`RateLimiter`]: token bucket, bounded
//!   FIFO wait queue with a maximum wait, and [`RateLimiter::pause_until`] for
//!   when upstream answers 429. Runs on `tokio::time`.
//!
//! A sketch of one upstream call with all three:
//!
//! ```text
//! let start = Instant::now();
//! for attempt in 1.. {
//!     limiter.acquire().await?;                       // RateLimited -> 429 to the client
//!     let call = match breaker.try_acquire(now) {     // Rejected -> 503 to the client
//!         Permit::Granted(call) => call,
//!         Permit::Rejected { retry_in } => return unavailable(retry_in),
//!     };
//!     let outcome = send().await;
//!     call.record(!outcome.is_upstream_failure(), now);
//!     if status == 429 { limiter.pause_until(now + retry_after) }
//!     match policy.decide(effect, attempt, start.elapsed(), outcome) {
//!         Verdict::Retry(wait) => sleep(wait).await,
//!         Verdict::GiveUp => return reply(outcome),   // write/money: outcome_unknown
//!     }
//! }
//! ```

pub mod breaker;
pub mod rate;
pub mod retry;

pub use breaker::{BreakerConfig, BreakerState, Call, CircuitBreaker, Permit};
pub use rate::{RateLimitReason, RateLimited, RateLimiter, Waited};
pub use retry::{Effect, Outcome, RetryPolicy, Verdict, parse_retry_after};

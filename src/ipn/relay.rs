//! Delivers stored IPN events to the app: each event to each of its
//! connection's `forward_to` URLs, as JSON, until the app answers 2xx.
//!
//! The work list is the store (`ipn_deliveries`), so deliveries survive a
//! restart: an event acknowledged to Digistore24 and then the process
//! killed is delivered when the proxy runs again. Per target and purchase
//! only the oldest undelivered event is tried, so the app sees a purchase's
//! events in the order they arrived. A failure waits (doubling from
//! `ipn.retry_initial_ms` up to `ipn.retry_max_secs`); after
//! `ipn.max_attempts` attempts, or once the event is older than
//! `ipn.max_age_secs`, the delivery is dead-lettered: visible in `/events`
//! and `ds24-proxy events`, and sent again by a replay. A dead-lettered
//! event no longer holds back later events of its purchase.

use std::future::Future;
use std::time::Duration;

use http::{HeaderValue, header};

use super::payload;
use crate::config::IpnSettings;
use crate::server::state::AppState;
use crate::store::{Attempt, DueDelivery};

/// The shortest pause between rounds that found nothing to do.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// Events received while a connection had no target get today's targets.
async fn adopt_targets(state: &AppState) {
    let Ok(store) = state.ledger().await else {
        return;
    };
    for conn in state.config().connections.values() {
        let targets: Vec<String> = conn
            .ipn
            .forward_to
            .iter()
            .map(ToString::to_string)
            .collect();
        let (store, name) = (store.clone(), conn.name.clone());
        let adopted = tokio::task::spawn_blocking(move || {
            store.ipn_adopt_targets(&name, &targets, super::now_ms())
        })
        .await;
        if let Ok(Ok(n)) = adopted
            && n > 0
        {
            tracing::info!(connection = %conn.name, events = n, "IPN: events stored without a target are now delivered");
        }
    }
}

/// A target URL as logs show it: without query or fragment, which may
/// carry a secret of the app.
pub fn shown_target(target: &str) -> String {
    url::Url::parse(target).map_or_else(
        |_| "[unparsable URL]".to_owned(),
        |mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        },
    )
}

/// Most deliveries tried in one round.
const BATCH: usize = 64;
/// Longest sleep between rounds: also how soon a replay made by another
/// process (the CLI) is noticed.
const POLL: Duration = Duration::from_secs(1);

/// The client the relay posts with.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn client(settings: &IpnSettings) -> anyhow::Result<reqwest::Client> {
    Ok(crate::upstream::client_builder()
        .timeout(settings.delivery_timeout)
        .connect_timeout(settings.delivery_timeout.min(Duration::from_secs(5)))
        // The app's endpoint answers; a redirect is a failure, never followed.
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Runs the relay until `shutdown` resolves.
pub async fn run(state: AppState, client: reqwest::Client, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    adopt_targets(&state).await;
    loop {
        let wait = match round(&state, &client).await {
            Ok(true) => Duration::ZERO, // there may be more due right now
            // Never a busy loop, whatever the clock says.
            Ok(false) => until_next_due(&state).await.max(MIN_WAIT),
            Err(e) => {
                tracing::warn!(error = %e, "IPN relay: the store failed; trying again");
                POLL
            }
        };
        if wait.is_zero() {
            // Give the shutdown a chance between busy rounds.
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::task::yield_now() => {}
            }
            continue;
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = state.ipn_notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn until_next_due(state: &AppState) -> Duration {
    let Some(store) = state.ledger_if_open() else {
        return POLL;
    };
    let next = tokio::task::spawn_blocking(move || store.ipn_next_due())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    match next {
        Some(at) => {
            Duration::from_millis((at - super::now_ms()).clamp(0, POLL.as_millis() as i64) as u64)
        }
        None => POLL,
    }
}

/// Tries every due delivery once. `Ok(true)` when a full batch was found.
async fn round(state: &AppState, client: &reqwest::Client) -> Result<bool, String> {
    let store = state.ledger().await.map_err(|e| e.to_string())?;
    let now = super::now_ms();
    let due = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.ipn_due(now, BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    let full = due.len() == BATCH;
    let attempts = due.into_iter().map(|d| deliver(state, client, d));
    for (event_id, target, generation, attempt) in futures_util::future::join_all(attempts).await {
        // Each result on its own: one failed write must not drop the others.
        let store = store.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            store.ipn_attempted(event_id, &target, generation, &attempt)
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(id = event_id, error = %e, "IPN relay: the result of a delivery was not stored; it will be tried again");
            }
            Err(e) => {
                tracing::warn!(id = event_id, error = %e, "IPN relay: recording a result failed");
            }
        }
    }
    Ok(full)
}

/// One attempt of one delivery, and what it means for the next.
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    due: DueDelivery,
) -> (i64, String, i64, Attempt) {
    let generation = due.generation;
    let shown = shown_target(&due.target);
    let settings = &state.config().ipn;
    let attempt_no = due.attempts + 1;
    let event = &due.event;
    let body = payload::body(event, attempt_no);
    let request = client
        .post(&due.target)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .header(payload::EVENT_ID, event.id.to_string())
        .header(payload::VERIFIED, "sha512")
        .header(payload::EVENT, event.event.as_str())
        .header(payload::CONNECTION, event.connection.as_str())
        .header(payload::ATTEMPT, attempt_no.to_string())
        .body(body.to_string());
    let error = match request.send().await {
        Ok(response) if response.status().is_success() => {
            state.metrics().ipn_delivered(&event.connection);
            tracing::info!(id = event.id, event = %event.event, target = %shown, attempt = attempt_no, "IPN delivered");
            return (
                event.id,
                due.target,
                generation,
                Attempt::Delivered {
                    at_ms: super::now_ms(),
                },
            );
        }
        Ok(response) => format!("the app answered HTTP {}", response.status().as_u16()),
        // Without the URL: it may carry a query the app treats as secret.
        Err(e) if e.is_timeout() => format!(
            "the app did not answer within {} s",
            settings.delivery_timeout.as_secs()
        ),
        Err(e) if e.is_connect() => "the app could not be reached".to_owned(),
        Err(_) => "the connection to the app failed".to_owned(),
    };
    // Age counts from arrival or from the last replay.
    let age = Duration::from_millis((super::now_ms() - due.pending_since_ms).max(0) as u64);
    if attempt_no >= settings.max_attempts || age >= settings.max_age {
        state.metrics().ipn_dead_lettered(&event.connection);
        tracing::warn!(id = event.id, event = %event.event, target = %shown, attempts = attempt_no, error = %error, "IPN dead-lettered; replay it with `ds24-proxy events replay {}`", event.id);
        return (event.id, due.target, generation, Attempt::Dead { error });
    }
    let wait = backoff(settings, attempt_no);
    state.metrics().ipn_retried(&event.connection);
    tracing::info!(id = event.id, target = %shown, attempt = attempt_no, wait_ms = wait.as_millis() as u64, error = %error, "IPN delivery failed; will retry");
    (
        event.id,
        due.target,
        generation,
        Attempt::Retry {
            error,
            next_at_ms: super::now_ms() + wait.as_millis() as i64,
        },
    )
}

/// The wait after failed attempt `n` (from 1): initial × 2^(n-1), at most
/// `retry_max`, plus up to a tenth at random so that many events do not
/// hit a recovering app at the same instant.
pub fn backoff(settings: &IpnSettings, n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.saturating_sub(1).min(20));
    let base = settings
        .retry_initial
        .saturating_mul(factor)
        .min(settings.retry_max);
    let jitter = base.mul_f64(rand::random::<f64>() * 0.1);
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_shown_without_query_or_fragment() {
        assert_eq!(
            shown_target("http://127.0.0.1:3000/hooks?token=s3cret#x"),
            "http://127.0.0.1:3000/hooks"
        );
        assert_eq!(shown_target("not a url"), "[unparsable URL]");
    }

    #[test]
    fn the_wait_doubles_up_to_the_maximum() {
        let settings = IpnSettings {
            max_attempts: 10,
            max_age: Duration::from_secs(3600),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_secs(1),
        };
        let within = |n: u32, ms: u64| {
            let wait = backoff(&settings, n);
            assert!(
                wait >= Duration::from_millis(ms) && wait <= Duration::from_millis(ms + ms / 10),
                "attempt {n}: {wait:?}"
            );
        };
        within(1, 100);
        within(2, 200);
        within(3, 400);
        within(5, 1000);
        within(60, 1000);
    }
}

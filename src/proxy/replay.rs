//! A request body that streams to Digistore24 as it arrives and can still be
//! sent again.
//!
//! Holding a body until it has fully arrived before sending anything costs
//! the caller a round of latency and the proxy its memory per request;
//! streaming it means a renewal or a retried read cannot send it a second
//! time. [`ReplayBody`] does both: every attempt reads what earlier attempts
//! already received (kept in memory, up to a limit) and then goes on pulling
//! from the client. Only while everything received so far is kept can a
//! later attempt start; past the limit the body is sent once, as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// The client's body as chunks (already counted against the size limit).
pub type Source = Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>;

/// The shared state of one request body.
struct Shared {
    /// Chunks received so far, in order, while `complete_copy`.
    kept: Vec<Bytes>,
    /// Bytes received so far.
    received: u64,
    /// Keep at most this many bytes.
    keep_max: u64,
    /// False once a chunk was dropped because the limit was passed.
    complete_copy: bool,
    /// The client's body, until it ended.
    source: Option<Source>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("kept_chunks", &self.kept.len())
            .field("received", &self.received)
            .field("keep_max", &self.keep_max)
            .field("complete_copy", &self.complete_copy)
            .field("source_open", &self.source.is_some())
            .finish()
    }
}

/// A request body shared by the attempts of one exchange.
#[derive(Debug, Clone)]
pub struct ReplayBody(Arc<Mutex<Shared>>);

impl ReplayBody {
    /// Wraps the client's body; up to `keep_max` bytes are kept for replays.
    pub fn new(source: Source, keep_max: u64) -> Self {
        Self(Arc::new(Mutex::new(Shared {
            kept: Vec::new(),
            received: 0,
            keep_max,
            complete_copy: true,
            source: Some(source),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave the chunk list torn
        // (every update is a push or a flag), so a poisoned lock is usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True while an attempt can start from the first byte.
    pub fn can_replay(&self) -> bool {
        self.lock().complete_copy
    }

    /// A reader for one attempt: what earlier attempts received, then the
    /// rest from the client.
    pub fn attempt(&self) -> Attempt {
        Attempt {
            shared: self.clone(),
            next: 0,
        }
    }
}

/// `Attempt::next` of the attempt that passed the limit: it goes on
/// streaming; no other attempt may start.
const STREAMING_ONLY: usize = usize::MAX;

/// One attempt's view of the body.
#[derive(Debug)]
pub struct Attempt {
    shared: ReplayBody,
    /// Index of the next kept chunk to yield.
    next: usize,
}

impl Stream for Attempt {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let shared = self.shared.clone();
        let mut s = shared.lock();
        if !s.complete_copy && self.next != STREAMING_ONLY {
            // Bytes were dropped (or the client's body broke) before this
            // attempt got them: it would send a body with a hole. The
            // exchange asks `can_replay` first; this is the last line.
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::other(
                "the request body cannot be sent again",
            )))));
        }
        if self.next < s.kept.len() {
            let chunk = s.kept[self.next].clone();
            self.next += 1;
            return Poll::Ready(Some(Ok(chunk)));
        }
        let Some(source) = s.source.as_mut() else {
            return Poll::Ready(None);
        };
        match source.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.source = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken client body cannot be replayed either.
                s.source = None;
                s.complete_copy = false;
                s.kept.clear();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(chunk))) => {
                s.received += chunk.len() as u64;
                if s.complete_copy && s.received <= s.keep_max {
                    s.kept.push(chunk.clone());
                    self.next = s.kept.len();
                } else if s.complete_copy {
                    s.complete_copy = false;
                    s.kept.clear();
                    // From here on this attempt only streams.
                    self.next = STREAMING_ONLY;
                }
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn body_of(chunks: &[&'static [u8]]) -> Source {
        let stream = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, axum::Error>(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        );
        Box::pin(stream)
    }

    async fn collect(mut attempt: Attempt) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        while let Some(chunk) = attempt.next().await {
            out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_second_attempt_sends_the_same_bytes() {
        let body = ReplayBody::new(body_of(&[b"a=1", b"&b=2", b"&c=3"]), 1024);
        assert_eq!(collect(body.attempt()).await.unwrap(), b"a=1&b=2&c=3");
        assert!(body.can_replay());
        assert_eq!(collect(body.attempt()).await.unwrap(), b"a=1&b=2&c=3");
    }

    #[tokio::test]
    async fn an_attempt_cut_short_is_continued_by_the_next() {
        let body = ReplayBody::new(body_of(&[b"one", b"two", b"three"]), 1024);
        let mut first = body.attempt();
        assert_eq!(first.next().await.unwrap().unwrap(), "one");
        drop(first); // the upstream answered (or failed) after one chunk
        assert!(body.can_replay());
        assert_eq!(collect(body.attempt()).await.unwrap(), b"onetwothree");
    }

    #[tokio::test]
    async fn past_the_limit_the_body_streams_once_and_cannot_be_replayed() {
        let body = ReplayBody::new(body_of(&[b"12345", b"67890", b"abc"]), 8);
        assert_eq!(collect(body.attempt()).await.unwrap(), b"1234567890abc");
        assert!(!body.can_replay());
        assert!(collect(body.attempt()).await.is_err());
    }

    #[tokio::test]
    async fn an_untouched_body_over_the_limit_can_still_be_sent_once() {
        let body = ReplayBody::new(body_of(&[b"12345", b"67890"]), 4);
        assert!(body.can_replay(), "nothing was read yet");
        assert_eq!(collect(body.attempt()).await.unwrap(), b"1234567890");
    }

    #[tokio::test]
    async fn a_broken_client_body_is_an_error_and_not_replayable() {
        let stream = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(axum::Error::new(std::io::Error::other("client went away"))),
        ]);
        let body = ReplayBody::new(Box::pin(stream), 1024);
        assert!(collect(body.attempt()).await.is_err());
        assert!(!body.can_replay());
    }
}

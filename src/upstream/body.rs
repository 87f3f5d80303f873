//! The body of a reply from Digistore24: hyper's stream, with the request
//! deadline applied to every chunk (a reply that trickles forever is cut off
//! like one that never starts) and errors already classified.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::UpstreamError;

/// A reply body streaming from Digistore24.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl UpstreamBody {
    pub(super) fn new(inner: Incoming, deadline: Instant, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
        }
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    ///
    /// # Errors
    /// A transport failure, the deadline, or `limit` passed (as `Ok(None)`).
    pub async fn read_up_to(self, limit: usize) -> Result<Option<Bytes>, UpstreamError> {
        use http_body_util::BodyExt;
        let hint = usize::try_from(self.size_hint().lower()).unwrap_or(0);
        let mut out = bytes::BytesMut::with_capacity(hint.min(limit).min(1 << 20));
        let mut body = self;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if out.len() + data.len() > limit {
                    return Ok(None);
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Some(out.freeze()))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| {
                f.map_err(|e| UpstreamError::Transport {
                    host: "Digistore24".to_owned(),
                    reason: format!("reading the reply: {}", super::error_chain(&e)),
                })
            }));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(UpstreamError::Timeout {
                host: "Digistore24".to_owned(),
                timeout: self.timeout,
            })));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! A request body counted as it flows, failing past a limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use futures_util::StreamExt;

/// Streams `body`, failing once more than `max` bytes went through.
pub fn limited(body: Body, max: u64, tripped: Arc<AtomicBool>) -> super::replay::Source {
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > max {
            tripped.store(true, Ordering::Relaxed);
            return Err(axum::Error::new(std::io::Error::other(
                "request body over the limit",
            )));
        }
        Ok(chunk)
    });
    Box::pin(stream)
}

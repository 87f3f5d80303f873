//! Connection workers: one single-threaded tokio runtime per core, each
//! serving the client connections handed to it from start to end.
//!
//! Why not the multi-threaded runtime that runs everything else: under load
//! a pass-through request wakes the client connection's task, the upstream
//! connection's task and the reply's, and with work stealing those wake-ups
//! cross threads. Pinning a client connection, and the upstream connections
//! it uses (see [`crate::upstream`]'s per-thread pools), to one thread cut
//! the CPU per proxied GET by about a quarter (docs/BENCHMARKS.md). Store
//! work already goes to `spawn_blocking`, so nothing slow runs on a worker.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// A fixed set of worker threads; dropping it stops them.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    // Held only to be dropped: each worker runs until its sender goes.
    _stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` workers (at least one).
    ///
    /// # Errors
    /// When a runtime or a thread cannot be created.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = count.max(1);
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("ds24-blocking-{i}"))
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("ds24-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // Connections still open were given their drain time by
                    // the server; whatever is left is cut here. A store call
                    // in flight on the blocking pool is not waited for long.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?;
        }
        Ok(Self {
            handles,
            _stops: stops,
            next: AtomicUsize::new(0),
        })
    }

    /// The number of workers.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `task` on the next worker, round-robin.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(task));
    }
}

/// The default number of workers: one per core the process may use.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_are_spread_round_robin_and_stop_with_the_workers() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        let mut names = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = oneshot::channel();
            workers.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            names.push(rx.await.unwrap().unwrap());
        }
        assert_eq!(
            names,
            [
                "ds24-worker-0",
                "ds24-worker-1",
                "ds24-worker-0",
                "ds24-worker-1"
            ]
        );

        // A task still running when the workers are dropped is cancelled.
        let (tx, rx) = oneshot::channel::<()>();
        workers.spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .is_ok(),
            "the pending task was not dropped when the workers stopped"
        );
    }
}

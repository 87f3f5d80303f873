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
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Store work a request started (an audit entry, a renewed key being saved)
/// runs on its worker's blocking pool; at shutdown each worker waits this
/// long for it before the thread ends.
const BLOCKING_GRACE: Duration = Duration::from_secs(30);

/// The blocking threads of all workers together (tokio's default for one
/// runtime), shared out so that more workers do not mean more threads.
const BLOCKING_THREADS: usize = 512;

/// A fixed set of worker threads. [`Workers::stop`] ends them and waits;
/// dropping them without `stop` only tells them to end.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` workers (at least one).
    ///
    /// # Errors
    /// When a runtime or a thread cannot be created.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = count.max(1);
        let mut workers = Self {
            handles: Vec::with_capacity(count),
            stops: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
            next: AtomicUsize::new(0),
        };
        for i in 0..count {
            let (stop, stopped) = oneshot::channel::<()>();
            let (started, handle) = std::sync::mpsc::channel();
            // The runtime is built on its own thread: a runtime dropped in
            // async code (here, if a later step failed) would panic.
            let thread = std::thread::Builder::new()
                .name(format!("ds24-worker-{i}"))
                .spawn(move || {
                    let runtime = match Builder::new_current_thread()
                        .enable_all()
                        .thread_name(format!("ds24-blocking-{i}"))
                        .max_blocking_threads((BLOCKING_THREADS / count).max(8))
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = started.send(Err(e));
                            return;
                        }
                    };
                    let _ = started.send(Ok(runtime.handle().clone()));
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // Connections still open had their drain time; they are
                    // cut here. Blocking work already running is waited for.
                    runtime.shutdown_timeout(BLOCKING_GRACE);
                })?;
            let handle = handle
                .recv()
                .map_err(|_| std::io::Error::other("a connection worker died while starting"))??;
            workers.handles.push(handle);
            workers.stops.push(stop);
            workers.threads.push(thread);
        }
        Ok(workers)
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

    /// Ends every worker: tasks still running are cancelled, store work
    /// already started is waited for (up to 30 s). Returns once all threads
    /// have ended, so nothing a request started is cut off by the process
    /// exiting.
    pub async fn stop(mut self) {
        self.stops.clear();
        let threads = std::mem::take(&mut self.threads);
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

/// The default number of workers: one per core the process may use, at
/// most [`MAX_DEFAULT`]: each worker keeps its own pool of connections to
/// Digistore24, and a seller's traffic rarely needs more.
pub fn default_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_DEFAULT)
}

/// See [`default_count`].
pub const MAX_DEFAULT: usize = 4;

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

        // A task still running when the workers stop is cancelled, and
        // blocking work it had started is finished first.
        let (tx, rx) = oneshot::channel::<()>();
        let wrote = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (began, begun) = oneshot::channel::<()>();
        let flag = wrote.clone();
        workers.spawn(async move {
            let _keep = tx;
            drop(tokio::task::spawn_blocking(move || {
                let _ = began.send(());
                std::thread::sleep(Duration::from_millis(300));
                flag.store(true, Ordering::SeqCst);
            }));
            std::future::pending::<()>().await;
        });
        begun.await.unwrap();
        workers.stop().await;
        assert!(
            wrote.load(Ordering::SeqCst),
            "stop returned before the blocking work had finished"
        );
        assert!(
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .is_ok(),
            "the pending task was not dropped when the workers stopped"
        );
    }

    #[test]
    fn the_default_is_one_per_core_up_to_four() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(default_count(), cores.min(MAX_DEFAULT));
    }
}

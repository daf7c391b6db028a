//! What a container's guests use, as they run: their linear memory (the
//! sum over every live guest of the run, main program and execs) and the
//! CPU time they spent executing (the time spent inside their futures'
//! polls, which is where wasm runs). `docker stats`, `kubectl top` and the
//! dashboard read it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How many files a container's guests may hold open at once when the
/// container names no `nofile` ulimit (Docker's default soft limit).
pub const DEFAULT_OPEN_FILES: u64 = 1024;

/// One container run's usage, shared by its guests and its readers.
#[derive(Debug)]
pub struct Usage {
    memory: AtomicU64,
    cpu_ns: AtomicU64,
    /// Files and directories the run's guests hold open now, and how
    /// many they may: each is a host descriptor of the daemon's, so one
    /// container must not take them all.
    open_files: AtomicU64,
    open_files_limit: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Self::with_open_files(DEFAULT_OPEN_FILES)
    }
}

impl Usage {
    /// A run whose guests may hold `limit` files open at once.
    pub fn with_open_files(limit: u64) -> Self {
        Self {
            memory: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            open_files: AtomicU64::new(0),
            open_files_limit: limit,
        }
    }

    /// Counts a file about to be opened; false (and nothing counted) when
    /// the limit is reached.
    pub(super) fn opening_file(&self) -> bool {
        self.open_files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.open_files_limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts a file closed (or one whose opening failed).
    pub(super) fn closed_file(&self) {
        let _ = self
            .open_files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// Bytes of linear memory the run's live guests hold now.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// CPU time the run's guests have spent executing.
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    pub(super) fn grew(&self, bytes: u64) {
        self.memory.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn released(&self, bytes: u64) {
        // Never below zero, whatever the order of updates.
        let _ = self
            .memory
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some(m.saturating_sub(bytes))
            });
    }

    fn ran(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// A guest's sockets count against its container's open-file limit, with
/// its files.
impl crate::net::wasi::SocketBudget for Usage {
    fn take(&self) -> bool {
        self.opening_file()
    }

    fn give(&self) {
        self.closed_file();
    }
}

/// A guest's future that counts the time spent in its polls.
pub(super) struct Metered<F> {
    inner: Pin<Box<F>>,
    usage: Arc<Usage>,
}

impl<F> Metered<F> {
    pub(super) fn new(inner: F, usage: Arc<Usage>) -> Self {
        Self {
            inner: Box::pin(inner),
            usage,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let began = Instant::now();
        let out = self.inner.as_mut().poll(cx);
        self.usage.ran(began.elapsed());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_and_cpu_are_counted() {
        let usage = Arc::new(Usage::default());
        usage.grew(65_536);
        usage.grew(65_536);
        usage.released(65_536);
        assert_eq!(usage.memory(), 65_536);
        usage.released(1 << 30);
        assert_eq!(usage.memory(), 0, "never below zero");
        let busy = Metered::new(
            async {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(20) {
                    std::hint::spin_loop();
                }
            },
            usage.clone(),
        );
        busy.await;
        assert!(
            usage.cpu() >= Duration::from_millis(20),
            "{:?}",
            usage.cpu()
        );
    }
}

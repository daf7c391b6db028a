//! Where a guest runs. A guest starts on the runtime of the task that runs
//! it (the daemon's, the CLI's or the shim's), beside the sockets, the API
//! and the guests that mostly wait. A guest that computes through whole
//! epoch slices in a row moves to a pool of compute threads at a lower OS
//! priority, and moves back the first time it waits for something.
//!
//! So a spinning guest never holds the threads that serve everything else,
//! and the OS scheduler treats wrun's guests as it treats native
//! processes: a thread that wakes for a request runs before one that has
//! been computing.
//!
//! **Architecture Invariant:** a guest away on the compute pool runs inside
//! its home runtime's context, so the sockets, timers and blocking tasks it
//! makes belong to the home runtime, whose threads stay free to drive them.
//! It does not matter to a guest which thread polls it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};

/// Polls in a row that end at an epoch deadline (each a whole slice of
/// computing, bar the first) before a guest moves to the compute pool.
const SLICES_BEFORE_MOVING: u32 = 2;

/// The nice value of the compute pool's threads, where the OS has one per
/// thread (Linux). Lower than the serving threads' 0, so that they win
/// when both want the CPU; not the lowest, so that computing guests still
/// get a fair share beside other busy processes on the machine.
#[cfg(target_os = "linux")]
const COMPUTE_NICE: i32 = 10;

thread_local! {
    /// Set by the epoch deadline callback when it yields the guest that
    /// this thread is polling.
    static YIELDED: Cell<bool> = const { Cell::new(false) };
}

/// Called by the epoch deadline callback as it yields a guest: the poll in
/// progress ends because the guest used up its slice, not because it waits.
pub(super) fn epoch_yield() {
    YIELDED.with(|y| y.set(true));
}

fn take_yielded() -> bool {
    YIELDED.with(|y| y.replace(false))
}

/// A guest whose compute-pool task ended without an answer.
#[derive(Debug)]
pub(super) struct Lost(pub String);

/// Runs `guest` to its end, on this task while it mostly waits and on the
/// compute pool while it computes.
pub(super) async fn run<F>(guest: F) -> Result<F::Output, Lost>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let home = Handle::current();
    let mut guest = Box::pin(guest);
    loop {
        match Slices::new(guest, None).await {
            Step::Done(out) => return Ok(out),
            Step::Move(g) => guest = g,
        }
        let Some(pool) = compute_pool() else {
            // No pool to move to: the guest stays here, as it would if it
            // never computed for long.
            return Ok(guest.await);
        };
        let mut away = AbortOnDrop(pool.spawn(Slices::new(guest, Some(home.clone()))));
        match (&mut away.0).await {
            Ok(Step::Done(out)) => return Ok(out),
            Ok(Step::Move(g)) => guest = g,
            Err(e) => return Err(Lost(format!("the guest's compute task failed: {e}"))),
        }
    }
}

/// What polling a guest came to: its end, or a move to the other side.
enum Step<F: Future> {
    Done(F::Output),
    Move(Pin<Box<F>>),
}

/// Polls a guest until it ends or ought to move: from home after
/// [`SLICES_BEFORE_MOVING`] slices of computing in a row, from the compute
/// pool (where `home` is set) as soon as it waits.
struct Slices<F: Future> {
    guest: Option<Pin<Box<F>>>,
    home: Option<Handle>,
    streak: u32,
}

impl<F: Future> Slices<F> {
    fn new(guest: Pin<Box<F>>, home: Option<Handle>) -> Self {
        Self {
            guest: Some(guest),
            home,
            streak: 0,
        }
    }
}

impl<F: Future> Future for Slices<F> {
    type Output = Step<F>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step<F>> {
        let this = self.get_mut();
        let Some(guest) = this.guest.as_mut() else {
            // Polled again after it answered; it has nothing left to do.
            return Poll::Pending;
        };
        let polled = {
            let _context = this.home.as_ref().map(Handle::enter);
            take_yielded();
            let polled = guest.as_mut().poll(cx);
            (polled, take_yielded())
        };
        match polled {
            (Poll::Ready(out), _) => {
                this.guest = None;
                Poll::Ready(Step::Done(out))
            }
            (Poll::Pending, yielded) => {
                let away = this.home.is_some();
                this.streak = if yielded { this.streak + 1 } else { 0 };
                let moving = if away {
                    !yielded
                } else {
                    this.streak >= SLICES_BEFORE_MOVING
                };
                match (moving, this.guest.take()) {
                    // The guest is polled again on the other side at once,
                    // so the waker it registers there is the one that
                    // counts.
                    (true, Some(g)) => Poll::Ready(Step::Move(g)),
                    (_, g) => {
                        this.guest = g;
                        Poll::Pending
                    }
                }
            }
        }
    }
}

/// Aborts a guest's compute-pool task when whoever ran the guest gives up
/// on it, so that the guest ends with the task that ran it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The compute pool, started on first use: one thread per core. `None`
/// when its threads cannot be started.
fn compute_pool() -> Option<&'static Handle> {
    static POOL: OnceLock<Option<Runtime>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("wrun-compute")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot start the compute pool; computing guests share the serving threads");
            })
            .ok()
    })
    .as_ref()
    .map(Runtime::handle)
}

/// Lowers the calling thread's priority. On Linux a nice value belongs to
/// a thread, so only this compute thread is lowered.
#[cfg(target_os = "linux")]
fn lower_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), COMPUTE_NICE) {
        tracing::debug!(error = %e, "cannot lower a compute thread's priority");
    }
}

/// Elsewhere a process-wide call would lower the serving threads too, so
/// the compute threads keep the normal priority; they still never hold
/// the serving threads.
#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A future that computes for `slice` per poll, `polls` times, each
    /// poll ending as an epoch yield does; then returns the name of the
    /// thread that polled it last.
    fn computing(polls: u32, slice: Duration) -> impl Future<Output = String> + Send {
        let mut left = polls;
        std::future::poll_fn(move |cx| {
            let t = Instant::now();
            while t.elapsed() < slice {
                std::hint::spin_loop();
            }
            if left == 0 {
                return Poll::Ready(std::thread::current().name().unwrap_or("").to_string());
            }
            left -= 1;
            epoch_yield();
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    #[tokio::test]
    async fn a_computing_guest_moves_to_the_compute_pool() {
        let thread = run(computing(4, Duration::from_millis(1)))
            .await
            .expect("ran");
        assert_eq!(thread, "wrun-compute");
    }

    #[tokio::test]
    async fn a_guest_that_waits_stays_home_or_comes_back() {
        let here = std::thread::current().name().unwrap_or("").to_string();
        let short = run(computing(1, Duration::ZERO)).await.expect("ran");
        assert_eq!(short, here, "one slice is no reason to move");
        let back = run(async {
            computing(4, Duration::from_millis(1)).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            std::thread::current().name().unwrap_or("").to_string()
        })
        .await
        .expect("ran");
        assert_eq!(back, here, "a guest that waits comes home");
    }

    #[tokio::test]
    async fn a_guest_away_makes_its_sockets_on_its_home_runtime() {
        let home = Handle::current().id();
        let id = run(async move {
            computing(4, Duration::from_millis(1)).await;
            Handle::current().id()
        })
        .await
        .expect("ran");
        assert_eq!(id, home);
    }
}

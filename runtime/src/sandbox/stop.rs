//! Stopping a guest: a flag checked at every epoch deadline, plus a wake-up
//! for a guest that is blocked in a host call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// Why a guest was stopped; decides its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C on a foreground run: 128 + SIGINT.
    Interrupted,
    /// `stop` or `kill`: 128 + SIGKILL. A wasm guest has no signal handlers,
    /// so there is nothing to give a grace period to.
    Killed,
}

impl StopReason {
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Interrupted => 130,
            Self::Killed => 137,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Interrupted => 1,
            Self::Killed => 2,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Interrupted),
            2 => Some(Self::Killed),
            _ => None,
        }
    }
}

/// A cloneable handle that stops one running guest (or every instance
/// sharing the handle, as a container's processes do).
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    reason: AtomicU8,
    notify: Notify,
}

impl StopHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the guest to stop. The first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let _ =
            self.0
                .reason
                .compare_exchange(0, reason.to_u8(), Ordering::SeqCst, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_u8(self.0.reason.load(Ordering::SeqCst))
    }

    /// Resolves once `stop` has been called.
    pub async fn stopped(&self) -> StopReason {
        loop {
            let notified = self.0.notify.notified();
            if let Some(r) = self.reason() {
                return r;
            }
            notified.await;
        }
    }
}

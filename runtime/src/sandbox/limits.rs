//! Per-guest resource limits enforced through wasmtime's `ResourceLimiter`.

use std::sync::Arc;

use super::usage::Usage;

/// Tables may hold at most this many elements: enough for any real program,
/// small enough that a table bomb cannot exhaust host memory.
const MAX_TABLE_ELEMENTS: usize = 10_000_000;

/// Tracks a store's total linear memory against an optional limit, and
/// remembers an attempt to exceed it so the exit can say so.
/// What it holds is also counted in the run's [`Usage`], and given back
/// there when the guest's store goes.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: Option<u64>,
    used: u64,
    exceeded: Option<u64>,
    usage: Arc<Usage>,
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.usage.released(self.used);
    }
}

impl MemoryLimiter {
    pub fn new(limit: Option<u64>, usage: Arc<Usage>) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: None,
            usage,
        }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Forgets what was counted so far, given back to the run's usage: the
    /// memories it counted went with a store that is gone, and the guest
    /// starts again in another.
    pub fn start_over(&mut self) {
        self.usage.released(self.used);
        self.used = 0;
        self.exceeded = None;
    }

    /// The total size the guest asked for when it hit the limit.
    pub fn exceeded(&self) -> Option<u64> {
        self.exceeded
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.used + (desired.saturating_sub(current)) as u64;
        if let Some(limit) = self.limit
            && wanted > limit
        {
            self.exceeded = Some(wanted);
            return Err(wasmtime::format_err!(
                "memory limit exceeded: the guest asked for {wanted} bytes of linear memory, the limit is {limit}"
            ));
        }
        self.usage.grew(wanted - self.used);
        self.used = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

//! The kernel's ceiling on a process's memory mappings (Linux's
//! `vm.max_map_count`, 65,530 by default). Every guest takes a few
//! mappings (its linear memory, tables and stack, each split by guard
//! pages), and when the process has none left, any allocation fails and
//! the whole process aborts, with every container in it. So a guest is
//! refused at start, with the limit named, while room remains for the
//! process's own needs.
//!
//! Counting the mappings means reading `/proc/self/maps`, so between two
//! counts each start is assumed to take [`PER_GUEST`] more, and the count
//! is read again only when that estimate nears the ceiling: seldom while
//! the process is far from it (a wasi:http component starts a guest per
//! request), at every start once it is close.

use std::sync::atomic::{AtomicU64, Ordering};

/// Mappings one guest may take, at most, for the estimate between counts.
const PER_GUEST: u64 = 16;
/// The share of the ceiling kept for the process itself (allocations,
/// threads, sockets), in percent.
const KEPT_PERCENT: u64 = 10;

#[derive(Debug)]
pub(super) struct Mappings {
    /// The ceiling, where the OS has one (0: none). Read again with the
    /// count, so that raising it takes effect without a restart.
    ceiling: AtomicU64,
    /// Where the ceiling is read from.
    read_ceiling: fn() -> Option<u64>,
    /// The mappings counted last.
    counted: AtomicU64,
    /// Starts since then.
    since: AtomicU64,
}

impl Mappings {
    pub(super) fn new() -> Self {
        Self {
            ceiling: AtomicU64::new(ceiling().unwrap_or(0)),
            read_ceiling: ceiling,
            counted: AtomicU64::new(count().unwrap_or(0)),
            since: AtomicU64::new(0),
        }
    }

    /// Whether a guest may start; the refusal says why and what to do.
    pub(super) fn admit(&self) -> Result<(), String> {
        let mut ceiling = self.ceiling.load(Ordering::Relaxed);
        if ceiling == 0 {
            return Ok(());
        }
        let room = |ceiling: u64| ceiling - ceiling * KEPT_PERCENT / 100;
        let since = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let estimate = self.counted.load(Ordering::Relaxed) + PER_GUEST * since;
        if estimate >= room(ceiling)
            && let Some(n) = count()
        {
            self.counted.store(n, Ordering::Relaxed);
            self.since.store(0, Ordering::Relaxed);
            if let Some(now) = (self.read_ceiling)() {
                ceiling = now;
                self.ceiling.store(now, Ordering::Relaxed);
            }
        }
        let room = room(ceiling);
        let used = self.counted.load(Ordering::Relaxed);
        if used + PER_GUEST > room {
            return Err(format!(
                "the daemon holds {used} memory mappings, near the kernel's limit of \
                 {ceiling} (vm.max_map_count), which it needs room under to run at all; \
                 stop some containers, or raise the limit \
                 (sysctl -w vm.max_map_count=1048576)"
            ));
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn ceiling() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn ceiling() -> Option<u64> {
    None
}

/// The process's mappings now: the lines of `/proc/self/maps`.
#[cfg(target_os = "linux")]
fn count() -> Option<u64> {
    use std::io::Read as _;
    let mut f = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn count() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ceiling the tests' views read.
    static CEILING: AtomicU64 = AtomicU64::new(0);

    #[test]
    fn a_start_is_refused_near_the_ceiling_naming_it_until_it_is_raised() {
        let Some(now) = count() else {
            return; // no ceiling to test on this OS
        };
        let mut m = Mappings::new();
        m.read_ceiling = || Some(CEILING.load(Ordering::Relaxed));
        CEILING.store(now * 100, Ordering::Relaxed);
        m.ceiling.store(now * 100, Ordering::Relaxed);
        assert!(m.admit().is_ok(), "far below the ceiling");
        CEILING.store(now + 1, Ordering::Relaxed);
        m.ceiling.store(now + 1, Ordering::Relaxed);
        let refused = m.admit().expect_err("at the ceiling");
        assert!(refused.contains("vm.max_map_count"), "{refused}");
        // The limit raised (sysctl) while the process runs: the next start
        // reads it again, and goes ahead.
        CEILING.store(now * 100, Ordering::Relaxed);
        assert!(m.admit().is_ok(), "the raised ceiling is read again");
    }
}

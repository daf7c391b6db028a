//! Where guests go when the engine's instance pool is full. The pool is
//! sized when the process starts (`--max-instances`). Past it, a guest is
//! instantiated in a second engine with the same settings and no pool,
//! which allocates each instance on demand, so the number of guests has no
//! fixed ceiling. That engine starts on first need.
//!
//! Whether a guest goes past the pool is decided before it starts, by the
//! pool's [`Seats`]; a start that still finds the pool full (its other
//! limits) moves over then.
//!
//! Its code is the pooled program's, moved over once per program: both
//! engines compile alike (they differ only in how they allocate
//! instances), so the compiled bytes load unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::engine::{EpochTicker, base_config};
use super::run::{Linkers, P2State};
use super::serve::HttpState;
use super::{LOADED_PROGRAMS, Program};
use crate::image::Digest;

/// The overflow engine, once started, and the programs made ready on it:
/// commands, and wasi:http components (one instance per request).
#[derive(Default)]
pub(super) struct Overflow {
    tier: OnceLock<Result<Tier, String>>,
    commands: Mutex<HashMap<Digest, CommandPre<P2State>>>,
    proxies: Mutex<HashMap<Digest, ProxyPre<HttpState>>>,
}

struct Tier {
    engine: Engine,
    linkers: Linkers,
    /// Epochs are per engine: this one needs its own ticker for its guests
    /// to be time-sliced and stoppable.
    _ticker: EpochTicker,
}

impl Overflow {
    fn tier(&self) -> wasmtime::Result<&Tier> {
        let tier = self.tier.get_or_init(|| {
            let engine = Engine::new(&base_config()).map_err(|e| format!("{e:#}"))?;
            tracing::info!("the instance pool is full; guests past it are allocated on demand");
            Ok(Tier {
                linkers: Linkers::new(&engine),
                _ticker: EpochTicker::start(engine.clone()),
                engine,
            })
        });
        tier.as_ref().map_err(|e| {
            wasmtime::format_err!("cannot start the engine for guests past the instance pool: {e}")
        })
    }

    /// The overflow engine, and the command `program` made ready to
    /// instantiate on it.
    pub(super) fn command(
        &self,
        program: &Program,
    ) -> wasmtime::Result<(Engine, CommandPre<P2State>)> {
        let tier = self.tier()?;
        let pre = ready(
            &self.commands,
            program,
            |component| {
                let linker = tier
                    .linkers
                    .p2()
                    .map_err(|e| wasmtime::format_err!("{e}"))?;
                CommandPre::new(linker.instantiate_pre(component)?)
            },
            tier,
        )?;
        Ok((tier.engine.clone(), pre))
    }

    /// The overflow engine, and the wasi:http component `program` made
    /// ready to instantiate on it.
    pub(super) fn proxy(
        &self,
        program: &Program,
    ) -> wasmtime::Result<(Engine, ProxyPre<HttpState>)> {
        let tier = self.tier()?;
        let pre = ready(
            &self.proxies,
            program,
            |component| {
                let linker = tier
                    .linkers
                    .http()
                    .map_err(|e| wasmtime::format_err!("{e}"))?;
                ProxyPre::new(linker.instantiate_pre(component)?)
            },
            tier,
        )?;
        Ok((tier.engine.clone(), pre))
    }
}

/// `program` made ready on the overflow engine by `prepare`, from `made`
/// when it was before.
fn ready<P: Clone>(
    made: &Mutex<HashMap<Digest, P>>,
    program: &Program,
    prepare: impl FnOnce(&Component) -> wasmtime::Result<P>,
    tier: &Tier,
) -> wasmtime::Result<P> {
    let lock = || made.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pre) = lock().get(&program.digest) {
        return Ok(pre.clone());
    }
    let bytes = program.component.serialize()?;
    // SAFETY: `deserialize` trusts its input to be wasmtime's own output.
    // These bytes were serialized just now, in this process, from a
    // component that it compiled or loaded from its checked cache; wasmtime
    // still refuses an incompatible engine.
    let component = unsafe { Component::deserialize(&tier.engine, &bytes) }?;
    let pre = prepare(&component)?;
    let mut made = lock();
    if made.len() >= LOADED_PROGRAMS {
        made.clear();
    }
    made.insert(program.digest.clone(), pre.clone());
    Ok(pre)
}

/// Guests that may be in the pool at once: a few short of its size, so
/// that whether a guest goes past it is decided before it starts, and not
/// by an attempt that fails (and holds one of the pool's fiber stacks
/// meanwhile, which a guest already in the pool may need).
#[derive(Debug)]
pub(super) struct Seats {
    free: AtomicI64,
}

/// A guest's place in the pool, given back when dropped: after its store.
#[derive(Debug)]
pub(super) struct Seat(Arc<Seats>);

/// Seats kept empty below the pool's size (an eighth of a small pool).
const SPARE_SEATS: u32 = 16;

impl Seats {
    /// Seats for a pool of `size` instances; `None` (no pool) is unlimited.
    pub(super) fn new(size: Option<u32>) -> Arc<Self> {
        let free = size.map_or(i64::MAX, |n| i64::from(n - (n / 8).min(SPARE_SEATS)));
        Arc::new(Self {
            free: AtomicI64::new(free),
        })
    }

    /// A seat in the pool, or `None` when the guest goes past it.
    pub(super) fn take(self: &Arc<Self>) -> Option<Seat> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                (f > 0).then_some(f - 1)
            })
            .ok()
            .map(|_| Seat(self.clone()))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.free.fetch_add(1, Ordering::AcqRel);
    }
}

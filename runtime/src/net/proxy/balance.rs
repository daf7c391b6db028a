//! One service port's ready endpoints and the choice among them: the next
//! one in turn for each new connection (a counter per port), or, with
//! `ClientIP` affinity, the one a client used last while its timeout has
//! not run out. Each endpoint carries its counters; an endpoint that
//! leaves is kept, uncounted for new connections, until its open ones end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::{Affinity, Endpoint, EndpointStats};
use crate::net::Proto;

/// How many clients a port remembers for affinity before it forgets
/// those whose timeout ran out.
const STICKY_PRUNE: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connections open to each endpoint address, across every service: what
/// a pod worker waits on before it stops a deleted pod's guests.
#[derive(Debug, Default)]
pub(super) struct Active(Mutex<HashMap<IpAddr, usize>>);

impl Active {
    fn add(&self, ip: IpAddr) {
        *lock(&self.0).entry(ip).or_default() += 1;
    }

    fn sub(&self, ip: IpAddr) {
        let mut map = lock(&self.0);
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    pub(super) fn to(&self, ip: IpAddr) -> usize {
        lock(&self.0).get(&ip).copied().unwrap_or(0)
    }
}

/// One endpoint of a port, with its counters.
#[derive(Debug)]
pub(super) struct Backend {
    pub(super) ep: Endpoint,
    connections: AtomicU64,
    active: AtomicU64,
    /// From clients to the endpoint.
    pub(super) bytes_in: AtomicU64,
    /// From the endpoint back to clients.
    pub(super) bytes_out: AtomicU64,
}

impl Backend {
    fn new(ep: Endpoint) -> Arc<Self> {
        Arc::new(Self {
            ep,
            connections: AtomicU64::new(0),
            active: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        })
    }

    fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    fn stats(&self, ready: bool) -> EndpointStats {
        EndpointStats {
            ip: self.ep.ip,
            port: self.ep.port,
            ready,
            connections: self.connections.load(Ordering::Relaxed),
            active: self.active(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// A connection's claim on an endpoint. It counts as active from the
/// pick, so a draining pod also waits for a dial under way, until the
/// guard is dropped.
#[derive(Debug)]
pub(super) struct ConnGuard {
    backend: Arc<Backend>,
    active: Arc<Active>,
}

impl ConnGuard {
    /// The dial succeeded: one more connection in the totals.
    pub(super) fn established(&self) {
        self.backend.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.backend.active.fetch_sub(1, Ordering::Relaxed);
        self.active.sub(self.backend.ep.ip);
    }
}

/// Where a client's connections stick, and since when.
#[derive(Debug, Clone, Copy)]
struct Sticky {
    ep: Endpoint,
    last: Instant,
}

#[derive(Debug, Default)]
struct PortState {
    ready: Vec<Arc<Backend>>,
    /// Endpoints that left while connections to them were open.
    draining: Vec<Arc<Backend>>,
    affinity: Affinity,
    sticky: HashMap<IpAddr, Sticky>,
}

/// One port of a service, shared by the listeners that serve it.
#[derive(Debug)]
pub(super) struct Port {
    pub(super) name: String,
    pub(super) port: u16,
    pub(super) proto: Proto,
    active: Arc<Active>,
    /// The round-robin counter.
    next: AtomicUsize,
    state: Mutex<PortState>,
}

impl Port {
    pub(super) fn new(name: String, port: u16, proto: Proto, active: Arc<Active>) -> Self {
        Self {
            name,
            port,
            proto,
            active,
            next: AtomicUsize::new(0),
            state: Mutex::default(),
        }
    }

    /// Sets the ready endpoints (in the order given) and the affinity.
    /// An endpoint that stays keeps its counters; one that leaves gets no
    /// new connection, and is listed as draining while some are open.
    pub(super) fn set(&self, endpoints: &[Endpoint], affinity: Affinity) {
        let mut st = lock(&self.state);
        let mut old: Vec<Arc<Backend>> = std::mem::take(&mut st.ready);
        old.append(&mut st.draining);
        let mut ready: Vec<Arc<Backend>> = Vec::with_capacity(endpoints.len());
        for ep in endpoints {
            if ready.iter().any(|b| b.ep == *ep) {
                continue;
            }
            let backend = match old.iter().position(|b| b.ep == *ep) {
                Some(i) => old.swap_remove(i),
                None => Backend::new(*ep),
            };
            ready.push(backend);
        }
        st.draining = old.into_iter().filter(|b| b.active() > 0).collect();
        st.ready = ready;
        st.affinity = affinity;
        match affinity {
            Affinity::None => st.sticky.clear(),
            Affinity::ClientIp { .. } => {
                let PortState { ready, sticky, .. } = &mut *st;
                sticky.retain(|_, s| ready.iter().any(|b| b.ep == s.ep));
            }
        }
    }

    pub(super) fn has_ready(&self) -> bool {
        !lock(&self.state).ready.is_empty()
    }

    /// The endpoints to try for a new connection from `client`, best
    /// first: the sticky one or the next in turn, then the others in
    /// turn (for when the first cannot be reached).
    pub(super) fn pick(&self, client: Option<IpAddr>) -> Vec<Arc<Backend>> {
        let st = lock(&self.state);
        let n = st.ready.len();
        if n == 0 {
            return Vec::new();
        }
        let sticky = match (st.affinity, client) {
            (Affinity::ClientIp { timeout }, Some(c)) => st
                .sticky
                .get(&c)
                .filter(|s| s.last.elapsed() < timeout)
                .and_then(|s| st.ready.iter().position(|b| b.ep == s.ep)),
            _ => None,
        };
        let start = match sticky {
            Some(i) => i,
            None => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        (0..n).map(|k| st.ready[(start + k) % n].clone()).collect()
    }

    /// Records that `client`'s connection went to `ep` (with `ClientIP`
    /// affinity, its next ones go there too).
    pub(super) fn stick(&self, client: Option<IpAddr>, ep: Endpoint) {
        let Some(client) = client else { return };
        let mut st = lock(&self.state);
        let Affinity::ClientIp { timeout } = st.affinity else {
            return;
        };
        let now = Instant::now();
        if st.sticky.len() >= STICKY_PRUNE {
            st.sticky
                .retain(|_, s| now.saturating_duration_since(s.last) < timeout);
        }
        st.sticky.insert(client, Sticky { ep, last: now });
    }

    /// Claims `backend` for a connection.
    pub(super) fn begin(&self, backend: &Arc<Backend>) -> ConnGuard {
        backend.active.fetch_add(1, Ordering::Relaxed);
        self.active.add(backend.ep.ip);
        ConnGuard {
            backend: backend.clone(),
            active: self.active.clone(),
        }
    }

    /// The counters of the ready endpoints, then of the draining ones.
    pub(super) fn stats(&self) -> Vec<EndpointStats> {
        let mut st = lock(&self.state);
        st.draining.retain(|b| b.active() > 0);
        st.ready
            .iter()
            .map(|b| b.stats(true))
            .chain(st.draining.iter().map(|b| b.stats(false)))
            .collect()
    }
}

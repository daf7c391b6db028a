//! The loop every controller runs: look at everything at the start, then
//! at what each batch of changes touches, and at everything again after
//! missing changes. The reconciling itself (store reads and writes, which
//! block) runs on tokio's blocking pool, so a controller busy with a
//! thousand pods never holds up the async workers that serve the API and
//! run the node agent.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::cluster::store::{Event, Store};
use crate::kube::KubeError;

/// A level-triggered reconciler over the store's changes.
pub trait Controller: Send + 'static {
    /// What is reconciled: a workload's namespace and name, a namespace, …
    type Key: Ord + Clone + Send + std::fmt::Debug + 'static;

    /// Its name in logs.
    const NAME: &'static str;

    /// Every key worth a look from scratch: at the start, and after the
    /// controller fell behind the store's changes.
    fn all(&mut self, store: &Store, keys: &mut BTreeSet<Self::Key>);

    /// The keys one change concerns.
    fn changed(&mut self, store: &Store, event: &Event, keys: &mut BTreeSet<Self::Key>);

    /// Brings one key's objects to what they should be.
    fn reconcile(&mut self, store: &Store, key: &Self::Key) -> Result<(), KubeError>;

    /// Time passing with no change matters to some (minReadySeconds, a
    /// progress deadline, a backoff): how often to call `tick`.
    fn period(&self) -> Option<Duration> {
        None
    }

    /// The keys to look at again when `period` passes.
    fn tick(&mut self, store: &Store, keys: &mut BTreeSet<Self::Key>) {
        self.all(store, keys);
    }
}

/// Runs `c` until `cancel`.
pub async fn run<C: Controller>(store: Arc<Store>, cancel: CancellationToken, mut c: C) {
    // Subscribe before the first look, so no change falls between.
    let mut rx = store.subscribe();
    let mut keys = BTreeSet::new();
    c.all(&store, &mut keys);
    // A ticker, not a sleep per wait, so a steady stream of changes does
    // not keep postponing it.
    let mut ticker = c.period().map(|p| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        if !keys.is_empty() {
            let work = std::mem::take(&mut keys);
            let s = store.clone();
            let done = tokio::task::spawn_blocking(move || {
                for key in &work {
                    if let Err(e) = c.reconcile(&s, key) {
                        tracing::warn!(controller = C::NAME, ?key, error = %e, "cannot reconcile");
                    }
                }
                c
            })
            .await;
            match done {
                Ok(back) => c = back,
                Err(e) => {
                    tracing::error!(controller = C::NAME, error = %e, "controller stopped");
                    return;
                }
            }
        }
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = async {
                match &mut ticker {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                c.tick(&store, &mut keys);
                continue;
            }
            () = cancel.cancelled() => return,
        };
        // Take what else has arrived, so a burst is reconciled once.
        let mut batch = vec![first];
        while let Ok(e) = rx.try_recv() {
            batch.push(Ok(e));
        }
        for event in batch {
            match event {
                Ok(e) => c.changed(&store, &e, &mut keys),
                Err(RecvError::Lagged(_)) => c.all(&store, &mut keys),
                Err(RecvError::Closed) => return,
            }
        }
    }
}

//! The task events (TaskCreate, TaskStart, TaskExit, ...), sent to
//! containerd in the order they happened but off the request path: a
//! request queues its event and answers at once, and one task forwards the
//! queue, as containerd's own shims do. Before the shim ends it flushes
//! the queue, so the last TaskExit and TaskDelete are not lost.

use containerd_shim::Context;
use containerd_shim::event::Event;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::publisher::RemotePublisher;
use tokio::sync::{mpsc, oneshot};

enum Queued {
    Event(String, Box<dyn MessageDyn>),
    /// Answered once everything queued before it has been sent.
    Flush(oneshot::Sender<()>),
}

/// The queue of one shim's events; clones share it.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Events {
    /// Starts the task that forwards events through `publisher`, in
    /// `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(queued) = rx.recv().await {
                match queued {
                    Queued::Event(topic, event) => {
                        if let Err(e) = publisher
                            .publish(Context::default(), &topic, &namespace, event)
                            .await
                        {
                            log::warn!("publish {topic}: {e}");
                        }
                    }
                    Queued::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { tx }
    }

    /// Queues `event`.
    pub fn publish<E: Event + MessageDyn + 'static>(&self, event: E) {
        let topic = event.topic();
        if self
            .tx
            .send(Queued::Event(topic.clone(), Box::new(event)))
            .is_err()
        {
            log::warn!("publish {topic}: the event queue is gone");
        }
    }

    /// Waits until every event queued so far has been sent (or failed).
    pub async fn flush(&self) {
        let (done, sent) = oneshot::channel();
        if self.tx.send(Queued::Flush(done)).is_ok() {
            let _ = sent.await;
        }
    }
}

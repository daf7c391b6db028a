//! The shim process: containerd runs the binary with `start` to get an
//! address, with `delete` to clean up after a shim that died, and the
//! process `start` spawned serves the task API until its last task is gone.
//!
//! Grouping: `start` names the pod (the `io.kubernetes.cri.sandbox-id`
//! annotation, else the container's own ID). The crate derives the socket
//! from that name, so a second container of a pod finds the first one's
//! shim listening there and is served by it: one process per pod.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::asynchronous::{ExitSignal, Shim, spawn};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::timestamp;
use containerd_shim::{Config, DeleteResponse, Error, Flags, StartOpts};

use crate::bundle;
use crate::engine::Engine;
use crate::task::TaskService;

pub struct Service {
    exit: Arc<ExitSignal>,
    namespace: String,
}

#[async_trait]
impl Shim for Service {
    type T = TaskService;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Self {
            exit: Arc::new(ExitSignal::default()),
            namespace: args.namespace.clone(),
        }
    }

    /// The `start` action, run in the bundle: containerd reads everything
    /// this process prints as the address, so it prints nothing else.
    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let grouping = bundle::grouping(Path::new("."), &opts.id);
        // The process that serves the pod starts inside the pod's network
        // namespace, so every socket its guests open is the pod's.
        let netns = bundle::network_namespace(Path::new("."))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut vars = Vec::new();
        if !netns.is_empty() {
            vars.push((crate::netns::ENV, netns.as_str()));
        }
        let address = spawn(opts, &grouping, vars).await?;
        // containerd reconnects through it after a restart.
        containerd_shim::asynchronous::util::write_str_to_file("address", &address).await?;
        Ok(address)
    }

    /// The `delete` action, run in the bundle of a task whose shim is gone.
    async fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        bundle::unmount_rootfs(&Path::new(".").join("rootfs"));
        Ok(DeleteResponse {
            exit_status: 137,
            exited_at: Some(timestamp()?).into(),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        TaskService::new(
            self.namespace.clone(),
            publisher,
            self.exit.clone(),
            Engine::start(),
        )
    }
}

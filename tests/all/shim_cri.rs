//! The kubelet's path to the shim: containerd's CRI service driven as the
//! kubelet drives it, with a CRI client (k8s-cri, over containerd's Unix
//! socket): a pod with the `wrun` runtime handler, two containers, their
//! logs in the CRI format, ExecSync, stats, then stop and remove. The pod
//! is one shim process.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatsRequest,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest,
    RunPodSandboxRequest, StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::shim::Containerd;
use crate::support::{Root, poll_within};

const IMAGE: &str = "docker.io/library/busybox:latest";

async fn connect(c: &Containerd) -> RuntimeServiceClient<Channel> {
    let sock = c.dir.path().join("c.sock");
    let channel = Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .expect("connect to containerd's CRI");
    RuntimeServiceClient::new(channel)
}

fn container(name: &str, command: &[&str], sandbox: &PodSandboxConfig) -> CreateContainerRequest {
    CreateContainerRequest {
        pod_sandbox_id: String::new(),
        config: Some(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            ..Default::default()
        }),
        sandbox_config: Some(sandbox.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_runs_a_pod_of_two_containers_in_one_shim() {
    let root = Root::new();
    root.busybox();
    let archive = root.path().join("busybox.tar");
    root.wrun(&["save", "-o", archive.to_str().expect("utf8"), "busybox"])
        .ok();
    let c = tokio::task::spawn_blocking(Containerd::start)
        .await
        .expect("start");
    // CRI looks for images in containerd's k8s.io namespace; the pod's
    // sandbox image (busybox here) is one of them, imported beforehand.
    c.import_into("k8s.io", &archive);
    let mut rt = connect(&c).await;

    let logs = tempfile::tempdir().expect("tempdir");
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "kubia".into(),
            uid: "uid-kubia".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "kubia".into(),
        log_directory: logs.path().display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: "wrun".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()))
        .into_inner()
        .pod_sandbox_id;

    let mut ids = Vec::new();
    for (name, cmd) in [
        (
            "greeter",
            vec![
                "sh",
                "-c",
                "echo hello from the pod; echo oops >&2; sleep 300",
            ],
        ),
        ("sleeper", vec!["sleep", "300"]),
    ] {
        let mut req = container(name, &cmd, &sandbox);
        req.pod_sandbox_id = pod.clone();
        let id = rt
            .create_container(req)
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}\n{}", c.log()))
            .into_inner()
            .container_id;
        rt.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer {name}: {e}\n{}", c.log()));
        ids.push(id);
    }
    for id in &ids {
        let status = rt
            .container_status(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("a status");
        assert_eq!(
            status.state,
            ContainerState::ContainerRunning as i32,
            "{status:?}"
        );
    }

    // The greeter's output, in the CRI log format at its log_path.
    let log = logs.path().join("greeter.log");
    let text = tokio::task::block_in_place(|| {
        poll_within("the greeter's logs", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("oops") && text.contains("hello") {
                Ok(text)
            } else {
                Err(format!("{}: {text:?}", log.display()))
            }
        })
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" stdout F hello from the pod")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(" stderr F oops")),
        "{lines:?}"
    );

    // ExecSync: a second guest in the sleeper, its output and exit code.
    let exec = rt
        .exec_sync(ExecSyncRequest {
            container_id: ids[1].clone(),
            cmd: ["sh", "-c", "ps aux; echo bad >&2; exit 3"]
                .map(String::from)
                .to_vec(),
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", c.log()))
        .into_inner();
    let stdout = String::from_utf8_lossy(&exec.stdout);
    assert!(stdout.contains("sleep 300"), "{stdout}");
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "bad\n");
    assert_eq!(exec.exit_code, 3);

    // Stats: the guests' memory.
    let stats = rt
        .container_stats(ContainerStatsRequest {
            container_id: ids[1].clone(),
        })
        .await
        .expect("ContainerStats")
        .into_inner()
        .stats
        .expect("stats");
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value)
        .unwrap_or_default();
    assert!(memory > 0, "{stats:?}");

    // The pod (its sandbox and both containers) is one shim process.
    assert_eq!(c.shims().len(), 1, "{:?}", c.shims());

    for id in &ids {
        rt.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .expect("StopContainer");
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("RemoveContainer");
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("RemovePodSandbox");
    tokio::task::block_in_place(|| c.await_no_shims());
}

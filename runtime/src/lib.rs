//! wrun: Docker plus a single-node Kubernetes for WebAssembly, as a library.
//!
//! The layers, from the bottom up (dependencies only point down):
//! - [`state`]: the state root on disk and the embedded metadata database;
//! - [`host`]: the host machine's memory, kernel and CPUs;
//! - [`image`]: references, the content-addressed store, layers, Dockerfile builds;
//! - [`net`]: virtual network namespaces, socket rewriting, published ports;
//! - [`vfs`]: a container's root as its image's shared layers under a
//!   private writable layer;
//! - [`sandbox`]: the shared wasmtime engine and the one place that grants a
//!   guest its capabilities;
//! - [`tty`]: a terminal's line discipline, for guests, which have no pty;
//! - [`container`]: containers as records plus a rootfs, run through the sandbox;
//! - [`api`]: the Docker Engine API's wire format;
//! - [`daemon`]: the long-running server that owns containers and serves the API;
//! - [`client`]: the API client the CLI uses, which starts the daemon on demand;
//! - [`cli`]: the `wrun` command line.

pub mod api;
#[cfg(feature = "runtime")]
pub mod cli;
#[cfg(feature = "runtime")]
pub mod client;
pub mod cluster;
pub mod container;
#[cfg(feature = "runtime")]
pub mod daemon;
pub mod host;
pub mod image;
pub mod kube;
pub mod net;
pub mod registry;
#[cfg(feature = "runtime")]
pub mod sandbox;
pub mod state;
pub mod transport;
#[cfg(feature = "runtime")]
pub mod tty;
pub mod vfs;

//! wrun's end-to-end tests: one binary, each test with its own state root so
//! that they run in parallel. They drive the real `wrun` binary and the real
//! sample guests; `make e2e` builds both first.

mod access;
mod archive;
mod artifact;
mod bad_input;
mod bollard;
mod build;
mod busybox;
mod cli_format;
mod cluster;
mod cluster_streams;
mod compose;
mod daemon;
mod dashboard;
mod docker_cli;
mod escape;
mod faults;
mod images;
mod interop;
mod kube_client;
mod layers;
mod network;
mod pull_on_demand;
mod registry;
mod registry_faults;
mod registry_tls;
mod run;
mod sandbox;
mod services;
mod shim;
mod shim_cri;
mod support;
mod workloads;

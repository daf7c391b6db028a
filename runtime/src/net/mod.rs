//! wrun's virtual networking, with no Linux network namespace: each
//! container (later each pod) gets a [`Namespace`] holding a virtual IP and
//! its own TCP and UDP port tables. Guests bind and connect to virtual
//! addresses; [`wasi`] rewrites them onto real sockets on 127.0.0.1. The
//! daemon publishes ports (`-p`) by forwarding real listeners into a
//! namespace ([`publish`]), and UDP ones through per-client relay sessions
//! ([`relay`]). The service proxy ([`proxy`]) forwards connections to
//! Services' ClusterIPs and host ports to their ready endpoints.
//!
//! **Architecture Invariant:** virtual IPs exist only inside wrun. No code
//! here ever dials or binds one on the host; every real socket a guest gets
//! in a virtual namespace is on the loopback interface, unless its
//! [`NetGrant`] holds an egress rule for the address, or it is a listener
//! that took over the host address of a port published to it
//! ([`handover`]).
//!
//! **Architecture Invariant:** a port-table entry is owned by a guard kept
//! in the guest's store, so it is freed when the store is dropped, however
//! the guest ended.

mod fabric;
pub mod handover;
mod namespace;
mod policy;
pub mod proxy;
pub mod publish;
mod relay;
#[cfg(feature = "runtime")]
pub mod wasi;

pub use fabric::{BRIDGE, DEFAULT_SUBNET, Fabric, HOST, NONE, NetworkInfo};
pub use namespace::{Namespace, Proto, reachable};
pub use policy::{EgressRule, NetGrant, NetMode, Route};

/// Errors of the network layer, each naming its object.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("network {name}: {message}")]
    BadNetwork { name: String, message: String },
    #[error("network {name} has active endpoints ({users})")]
    NetworkInUse { name: String, users: String },
    #[error("network {0}: no free address left in its subnet")]
    Exhausted(String),
    #[error("--allow-net {rule:?}: {message}")]
    BadEgress { rule: String, message: String },
    #[error("{spec:?}: {message}")]
    BadPublish { spec: String, message: String },
    #[error("publish {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

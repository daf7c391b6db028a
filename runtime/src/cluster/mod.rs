//! The single-node cluster: the object store with its watch hub, what the
//! API server does to objects before storing them (admission), the objects
//! every cluster has (bootstrap), the API's certificates and token, and
//! the node agent that turns pods into running guests.
//!
//! **Architecture Invariant:** controllers only talk to the store; the
//! node agent alone turns pods into running guests, through the
//! `node::ContainerRuntime` trait that the daemon implements (so this
//! module never imports the daemon).

pub mod admission;
mod batch;
pub mod bootstrap;
pub mod controllers;
pub mod events;
pub mod pki;
pub mod store;

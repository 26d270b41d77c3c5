//! A drop-in replacement for corosync's client libraries `libcpg.so.4`
//! (closed process groups) and, later, `libevs.so.4`, in Rust.
//!
//! Layers, in the order a message travels:
//! - [`ffi`]: the C exports; checks arguments, calls the core, maps results;
//! - [`cpg`]: the safe CPG client (handles, dispatch, fragmentation);
//! - [`proto`]: the CPG service's messages (encode/decode, no I/O);
//! - [`ipc`]: libqb's IPC protocol (handshake, shared-memory rings, socket
//!   mode), with all OS calls in `ipc::sys`.

pub mod cpg;
pub mod error;
pub mod ffi;
pub mod ipc;
pub mod proto;
pub mod server;

//! A drop-in replacement for corosync's client libraries `libcpg.so.4`
//! (closed process groups) and `libevs.so.4` (corosync 1.x's extended
//! virtual synchrony, mapped onto CPG), in Rust.
//!
//! Layers, in the order a message travels:
//! - [`ffi`]: the C exports; checks arguments, calls the core, maps results;
//! - [`cpg`]: the safe CPG client (handles, dispatch, fragmentation);
//! - [`evs`]: EVS on top of the CPG client (one hub connection per process);
//! - [`proto`]: the CPG service's messages (encode/decode, no I/O);
//! - [`ipc`]: libqb's IPC protocol (handshake, shared-memory rings, socket
//!   mode), with all OS calls in `ipc::sys`.

pub mod cpg;
pub mod error;
pub mod evs;
pub mod ffi;
pub mod ipc;
pub mod proto;
pub mod server;

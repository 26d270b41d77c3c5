//! libqb IPC, the transport corosync speaks: the connection handshake,
//! shared-memory rings with their semaphores and notification bytes, and
//! socket mode. OS calls live in `sys`.

pub mod client;
pub mod fault;
pub mod handshake;
pub mod ring;
pub mod sys;
pub mod zerocopy;

pub use client::{connect, Events, Link, Requester};

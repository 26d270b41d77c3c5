//! The server side of one libqb IPC connection: the per-connection
//! directory, and the two transports (SHM rings, datagram sockets) behind
//! one interface the event loop drives without ever blocking.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::service::Peer;
use super::shm::ShmTransport;
use super::socket::SockTransport;
use crate::ipc::handshake::Response;
use crate::ipc::sys;

/// The per-connection directory `/dev/shm/qb-<server pid>-<client pid>-<fd>-XXXXXX`
/// and the files in it; everything is removed on drop (ENOENT ignored:
/// a libqb client may have removed them already).
pub struct ConnDir {
    pub path: String,
    files: Vec<String>,
}

impl ConnDir {
    pub fn create(setup: &OwnedFd, peer: &Peer) -> io::Result<ConnDir> {
        let template = format!(
            "/dev/shm/qb-{}-{}-{}-XXXXXX",
            sys::getpid(),
            peer.pid,
            setup.as_raw_fd()
        );
        let path = sys::mkdtemp(&template)?;
        let dir = ConnDir {
            path,
            files: Vec::new(),
        };
        sys::chmod_chown(&dir.path, 0o770, owner(peer))?;
        grant(&dir.path, peer, true);
        Ok(dir)
    }

    /// `<dir>/qb`, the prefix of every name of the connection.
    pub fn desc(&self) -> String {
        format!("{}/qb", self.path)
    }

    /// Records a file to remove at teardown and grants the client access.
    pub fn adopt(&mut self, file: &str, peer: &Peer) {
        self.files.push(file.to_string());
        grant(file, peer, false);
    }
}

impl Drop for ConnDir {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = sys::unlink(f);
        }
        let _ = sys::rmdir(&self.path);
    }
}

/// Owner for the connection's files: the client, when we may chown.
pub fn owner(peer: &Peer) -> Option<(u32, u32)> {
    (sys::geteuid() == 0).then_some((peer.uid, peer.gid))
}

/// An unprivileged server cannot chown; when it admits another uid, that
/// uid gets an ACL entry instead (best effort: tmpfs without ACL support
/// leaves the client unable to open the rings, which it reports).
fn grant(path: &str, peer: &Peer, dir: bool) {
    if sys::geteuid() != 0 && peer.uid != sys::geteuid() && peer.uid != 0 {
        if let Err(e) = sys::grant_user_acl(path, peer.uid, dir) {
            super::log::warn(format_args!("cannot grant uid {} access to {path}: {e}", peer.uid));
        }
    }
}

/// Result of trying to write one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Done,
    /// No room now (ring or socket full, or the client's socket is not
    /// bound yet): keep it and retry later.
    Later,
}

pub enum Transport {
    Shm(Box<ShmTransport>),
    Socket(SockTransport),
}

impl Transport {
    /// Creates the transport objects for a new connection; returns the
    /// handshake response to send, or the error and the setup socket.
    pub fn create(
        socket_mode: bool,
        setup: OwnedFd,
        peer: &Peer,
        service: &str,
        max: usize,
    ) -> Result<(Transport, Response), (io::Error, OwnedFd)> {
        if socket_mode {
            SockTransport::create(setup, peer, service, max).map(|(t, r)| (Transport::Socket(t), r))
        } else {
            ShmTransport::create(setup, peer, service, max).map(|(t, r)| (Transport::Shm(Box::new(t)), r))
        }
    }

    pub fn setup_fd(&self) -> RawFd {
        match self {
            Transport::Shm(t) => t.setup.as_raw_fd(),
            Transport::Socket(t) => t.setup.as_raw_fd(),
        }
    }

    /// The request datagram socket (socket mode only).
    pub fn request_fd(&self) -> Option<RawFd> {
        match self {
            Transport::Shm(_) => None,
            Transport::Socket(t) => Some(t.request_fd()),
        }
    }

    /// Sends the handshake response on the setup socket.
    pub fn send_handshake(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Shm(t) => send_blocking_bounded(&t.setup, bytes),
            Transport::Socket(t) => send_blocking_bounded(&t.setup, bytes),
        }
    }

    /// Takes the next request into `buf`; `Ok(None)` when there is none.
    /// An error means the connection is unusable.
    pub fn recv_request(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Transport::Shm(t) => t.recv_request(buf),
            Transport::Socket(t) => t.recv_request(buf),
        }
    }

    pub fn send_response(&mut self, frame: &[u8]) -> io::Result<Sent> {
        match self {
            Transport::Shm(t) => t.send_response(frame),
            Transport::Socket(t) => t.send_response(frame),
        }
    }

    pub fn send_event(&mut self, frame: &[u8]) -> io::Result<Sent> {
        match self {
            Transport::Shm(t) => t.send_event(frame),
            Transport::Socket(t) => t.send_event(frame),
        }
    }

    /// Reads what the client sent on the setup socket (SHM notification
    /// bytes; nothing in socket mode). `Ok(false)` on hang-up.
    pub fn read_setup(&mut self) -> io::Result<bool> {
        match self {
            Transport::Shm(t) => t.read_setup(),
            Transport::Socket(t) => t.read_setup(),
        }
    }

    /// Sends event notification bytes still owed (SHM).
    pub fn flush_notifications(&mut self) -> io::Result<()> {
        match self {
            Transport::Shm(t) => t.flush_notifications(),
            Transport::Socket(_) => Ok(()),
        }
    }

    pub fn has_unsent_notifications(&self) -> bool {
        match self {
            Transport::Shm(t) => t.unsent > 0,
            Transport::Socket(_) => false,
        }
    }

    /// Writes the flow-control word the client checks before each send.
    /// Whether the client shrank one of the connection's shared files
    /// under the server (see `ipc::fault`).
    pub fn faulted(&self) -> bool {
        match self {
            Transport::Shm(t) => t.faulted(),
            _ => false,
        }
    }

    pub fn set_flow_control(&self, value: i32) {
        match self {
            Transport::Shm(t) => t.set_flow_control(value),
            Transport::Socket(t) => t.set_flow_control(value),
        }
    }
}

/// Sends all of `bytes` on a non-blocking stream socket, waiting for room
/// at most a second (a fresh socket always has room for the handshake).
pub fn send_blocking_bounded(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    let mut waits = 0;
    while sent < bytes.len() {
        match sys::send(fd.as_raw_fd(), &bytes[sent..], libc::MSG_DONTWAIT) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && waits < 100 => {
                waits += 1;
                let mut p = [libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                sys::poll(&mut p, Some(std::time::Duration::from_millis(10)))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

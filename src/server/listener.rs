//! The listening socket and the first step of every connection: read the
//! 24-byte request with the client's credentials, decide admission.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use super::service::Peer;
use super::ServerError;
use crate::ipc::handshake::{self, REQUEST_LEN};
use crate::ipc::sys;

/// Binds `@<service>` (abstract, padded, as libqb does) and listens.
pub fn bind(service: &str) -> Result<OwnedFd, ServerError> {
    let io_err = |what: &'static str| move |e: io::Error| ServerError::Io(what, e);
    let sock = sys::unix_socket(libc::SOCK_STREAM, true).map_err(io_err("socket"))?;
    let addr = sys::abstract_addr(service.as_bytes())
        .map_err(|_| ServerError::Usage(format!("service name too long: {service}")))?;
    sys::set_passcred(&sock, true).map_err(io_err("setsockopt(SO_PASSCRED)"))?;
    match sys::bind(&sock, &addr) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
            return Err(ServerError::AddressInUse(service.to_string()))
        }
        Err(e) => return Err(ServerError::Io("bind", e)),
    }
    sys::listen(&sock, 128).map_err(io_err("listen"))?;
    Ok(sock)
}

/// A connection whose 24-byte request has not fully arrived yet.
pub struct Pending {
    pub sock: OwnedFd,
    buf: [u8; REQUEST_LEN],
    got: usize,
    cred: Option<libc::ucred>,
    pub deadline: Instant,
}

/// What a complete connection request says.
pub struct Hello {
    pub peer: Peer,
    pub max_msg_size: u32,
}

impl Pending {
    pub fn new(sock: OwnedFd, deadline: Instant) -> io::Result<Pending> {
        sys::set_passcred(&sock, true)?;
        Ok(Pending {
            sock,
            buf: [0; REQUEST_LEN],
            got: 0,
            cred: None,
            deadline,
        })
    }

    /// Reads what has arrived. `Ok(Some)` once the request is complete,
    /// `Ok(None)` to wait, an error when the client is gone or talks
    /// nonsense.
    pub fn read(&mut self) -> io::Result<Option<Hello>> {
        while self.got < REQUEST_LEN {
            match sys::recv_with_cred(self.sock.as_raw_fd(), &mut self.buf[self.got..], libc::MSG_DONTWAIT) {
                Ok((0, _)) => return Err(io::Error::from_raw_os_error(libc::ECONNRESET)),
                Ok((n, c)) => {
                    self.got += n;
                    self.cred = self.cred.or(c);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let _ = sys::set_passcred(&self.sock, false);
        let max_msg_size =
            handshake::decode_request(&self.buf).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADMSG))?;
        // The kernel attaches credentials to every message once SO_PASSCRED
        // is on; SO_PEERCRED (taken at connect) is the same information.
        let cred = match self.cred {
            Some(c) => c,
            None => sys::peer_cred(&self.sock)?,
        };
        Ok(Some(Hello {
            peer: Peer {
                pid: cred.pid as u32,
                uid: cred.uid,
                gid: cred.gid,
            },
            max_msg_size,
        }))
    }
}

/// Admission: our own uid, root, or an explicitly allowed uid / gid.
pub fn admitted(peer: &Peer, own_uid: u32, allow_uids: &[u32], allow_gids: &[u32]) -> bool {
    peer.uid == own_uid || peer.uid == 0 || allow_uids.contains(&peer.uid) || allow_gids.contains(&peer.gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_rules() {
        let p = |uid, gid| Peer { pid: 1, uid, gid };
        assert!(admitted(&p(1000, 1000), 1000, &[], &[]));
        assert!(admitted(&p(0, 0), 1000, &[], &[]));
        assert!(!admitted(&p(65534, 65534), 0, &[], &[]));
        assert!(!admitted(&p(1001, 0), 1000, &[], &[]));
        assert!(admitted(&p(65534, 65534), 0, &[65534], &[]));
        assert!(admitted(&p(1001, 189), 0, &[], &[189]));
    }
}

//! SHM transport, server side: three rings (request, response, event) in
//! the connection directory; the setup socket carries one notification
//! byte per request (client → server) and per event (server → client).
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::service::Peer;
use super::transport::{owner, ConnDir, Sent};
use crate::ipc::fault;
use crate::ipc::handshake::{Response, TYPE_SHM};
use crate::ipc::ring::{Ring, RingError};
use crate::ipc::sys;

pub struct ShmTransport {
    pub setup: OwnedFd,
    request: Ring,
    response: Ring,
    event: Ring,
    /// Requests taken minus notification bytes read. Bytes arrive after
    /// their chunk (the client posts first), so this is read without ever
    /// waiting; a negative value means bytes ran ahead of our reading.
    owed: i64,
    /// Event notification bytes not yet sent (socket buffer was full).
    pub unsent: usize,
    // Dropped last: removes the files and the directory.
    _dir: ConnDir,
}

impl ShmTransport {
    /// Creates the directory and the rings. On failure the setup socket
    /// is handed back so that the refusal can still be sent on it.
    pub fn create(
        setup: OwnedFd,
        peer: &Peer,
        service: &str,
        max: usize,
    ) -> Result<(ShmTransport, Response), (io::Error, OwnedFd)> {
        let built = (|| -> io::Result<_> {
            let mut dir = ConnDir::create(&setup, peer)?;
            let desc = dir.desc();
            let base = |kind: &str| format!("{desc}-{kind}-{service}");
            let mut make = |kind: &str| -> io::Result<Ring> {
                let ring = Ring::create(&base(kind), max, owner(peer))?;
                for p in ring.paths() {
                    dir.adopt(p, peer);
                }
                Ok(ring)
            };
            let rings = (make("request")?, make("response")?, make("event")?);
            // A ring the SIGBUS guard does not watch could kill the server
            // if the client truncated it: refuse the connection instead.
            if fault::installed() && ![&rings.0, &rings.1, &rings.2].iter().all(|r| r.guarded()) {
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            let resp = Response {
                error: 0,
                connection_type: TYPE_SHM,
                max_msg_size: max as u32,
                request: base("request"),
                response: base("response"),
                event: base("event"),
            };
            Ok((dir, rings, resp))
        })();
        match built {
            Ok((dir, (request, response, event), resp)) => Ok((
                ShmTransport {
                    setup,
                    request,
                    response,
                    event,
                    owed: 0,
                    unsent: 0,
                    _dir: dir,
                },
                resp,
            )),
            Err(e) => Err((e, setup)),
        }
    }

    pub fn recv_request(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.request.try_read(buf) {
            Ok(Some(n)) => {
                self.owed += 1;
                Ok(Some(n))
            }
            Ok(None) => Ok(None),
            Err(RingError::Full) => Ok(None),
            Err(RingError::TooSmall(_)) | Err(RingError::Corrupt) => Err(io::Error::from_raw_os_error(libc::EBADMSG)),
        }
    }

    pub fn send_response(&mut self, frame: &[u8]) -> io::Result<Sent> {
        match self.response.write(&[frame]) {
            Ok(()) => Ok(Sent::Done),
            Err(RingError::Full) => Ok(Sent::Later),
            Err(_) => Err(io::Error::from_raw_os_error(libc::EBADMSG)),
        }
    }

    pub fn send_event(&mut self, frame: &[u8]) -> io::Result<Sent> {
        match self.event.write(&[frame]) {
            Ok(()) => {
                // The byte goes out with the others at the end of the batch
                // (one send for many events).
                self.unsent += 1;
                Ok(Sent::Done)
            }
            Err(RingError::Full) => Ok(Sent::Later),
            Err(_) => Err(io::Error::from_raw_os_error(libc::EBADMSG)),
        }
    }

    pub fn flush_notifications(&mut self) -> io::Result<()> {
        const ZEROS: [u8; 1024] = [0u8; 1024];
        while self.unsent > 0 {
            let n = self.unsent.min(ZEROS.len());
            match sys::send(self.setup.as_raw_fd(), &ZEROS[..n], libc::MSG_DONTWAIT) {
                Ok(sent) => self.unsent -= sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn read_setup(&mut self) -> io::Result<bool> {
        let mut scratch = [0u8; 512];
        loop {
            match sys::recv(self.setup.as_raw_fd(), &mut scratch, libc::MSG_DONTWAIT) {
                Ok(0) => return Ok(false),
                Ok(n) => self.owed -= n as i64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn faulted(&self) -> bool {
        self.request.faulted() || self.response.faulted() || self.event.faulted()
    }

    pub fn set_flow_control(&self, value: i32) {
        self.request.user_word().store(value, Ordering::Release);
    }
}

impl Drop for ShmTransport {
    fn drop(&mut self) {
        // A libqb client checks the request ring's count before each send:
        // 0 tells it at once that the server is gone.
        for ring in [&self.request, &self.response, &self.event] {
            ring.ref_count().store(0, Ordering::Release);
        }
        sys::shutdown(&self.setup);
    }
}

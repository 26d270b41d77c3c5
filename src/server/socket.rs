//! Socket transport, server side: a 24-byte control file (message
//! counters and the flow-control word) and two datagram socket pairs;
//! the setup socket only tells us when the client goes away.
#![forbid(unsafe_code)]

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;

use super::service::Peer;
use super::transport::{owner, ConnDir, Sent};
use crate::ipc::handshake::{Response, TYPE_SOCKET};
use crate::ipc::sys::{self, Mapping};

const CTL_REQ_SENT: usize = 0;
const CTL_REQ_FC: usize = 4;
const CTL_RESP_SENT: usize = 8;
const CTL_EV_SENT: usize = 16;
const CTL_LEN: usize = 24;

pub struct SockTransport {
    pub setup: OwnedFd,
    control: Mapping,
    request: OwnedFd,
    event: OwnedFd,
    base: String,
    request_connected: bool,
    event_connected: bool,
    _dir: ConnDir,
}

fn dgram_bound(name: &str, max: usize) -> io::Result<OwnedFd> {
    let s = sys::unix_socket(libc::SOCK_DGRAM, true)?;
    sys::bind(&s, &sys::abstract_addr(name.as_bytes())?)?;
    sys::force_buffers(&s, max);
    Ok(s)
}

impl SockTransport {
    /// Creates the directory, control file and sockets. On failure the
    /// setup socket is handed back so that the refusal can still be sent.
    pub fn create(
        setup: OwnedFd,
        peer: &Peer,
        service: &str,
        max: usize,
    ) -> Result<(SockTransport, Response), (io::Error, OwnedFd)> {
        let built = (|| -> io::Result<_> {
            let mut dir = ConnDir::create(&setup, peer)?;
            let desc = dir.desc();
            let control_path = format!("{desc}-control-{service}");
            let base = format!("{desc}-{service}");
            let fd = sys::create_excl(&control_path, 0o600)?;
            dir.adopt(&control_path, peer);
            if let Some((uid, gid)) = owner(peer) {
                let _ = sys::fchown(&fd, uid, gid);
            }
            sys::set_len(&fd, CTL_LEN as u64)?;
            let control = Mapping::map_shared(&fd, CTL_LEN)?;
            let request = dgram_bound(&format!("{base}-request"), max)?;
            let event = dgram_bound(&format!("{base}-event-tx"), max)?;
            let resp = Response {
                error: 0,
                connection_type: TYPE_SOCKET,
                max_msg_size: max as u32,
                request: control_path,
                response: base.clone(),
                event: String::new(),
            };
            Ok((dir, control, request, event, base, resp))
        })();
        match built {
            Ok((dir, control, request, event, base, resp)) => Ok((
                SockTransport {
                    setup,
                    control,
                    request,
                    event,
                    base,
                    request_connected: false,
                    event_connected: false,
                    _dir: dir,
                },
                resp,
            )),
            Err(e) => Err((e, setup)),
        }
    }

    fn counter(&self, off: usize) -> &std::sync::atomic::AtomicI32 {
        self.control.atomic_i32(off).expect("offset inside the control file")
    }

    pub fn request_fd(&self) -> RawFd {
        self.request.as_raw_fd()
    }

    /// Connects the request socket to the client's response socket, so
    /// that from then on only the client can send us requests.
    fn connect_request(&mut self) -> io::Result<()> {
        if !self.request_connected {
            let addr = sys::abstract_addr(format!("{}-response", self.base).as_bytes())?;
            sys::connect(&self.request, &addr)?;
            self.request_connected = true;
        }
        Ok(())
    }

    pub fn recv_request(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match sys::recv(self.request.as_raw_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
            Ok(n) if n > buf.len() => Err(io::Error::from_raw_os_error(libc::EMSGSIZE)),
            Ok(n) => {
                self.counter(CTL_REQ_SENT).fetch_sub(1, Ordering::AcqRel);
                let _ = self.connect_request();
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn send_response(&mut self, frame: &[u8]) -> io::Result<Sent> {
        self.connect_request()?;
        match sys::sendv(self.request.as_raw_fd(), &[IoSlice::new(frame)], libc::MSG_DONTWAIT) {
            Ok(_) => {
                self.counter(CTL_RESP_SENT).fetch_add(1, Ordering::AcqRel);
                Ok(Sent::Done)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Sent::Later),
            Err(e) => Err(e),
        }
    }

    pub fn send_event(&mut self, frame: &[u8]) -> io::Result<Sent> {
        if !self.event_connected {
            let addr = sys::abstract_addr(format!("{}-event", self.base).as_bytes())?;
            match sys::connect(&self.event, &addr) {
                Ok(()) => self.event_connected = true,
                // The client binds its event socket after the handshake.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => {
                    return Ok(Sent::Later)
                }
                Err(e) => return Err(e),
            }
        }
        match sys::sendv(self.event.as_raw_fd(), &[IoSlice::new(frame)], libc::MSG_DONTWAIT) {
            Ok(_) => {
                self.counter(CTL_EV_SENT).fetch_add(1, Ordering::AcqRel);
                Ok(Sent::Done)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Sent::Later),
            Err(e) => Err(e),
        }
    }

    pub fn read_setup(&mut self) -> io::Result<bool> {
        let mut scratch = [0u8; 256];
        loop {
            match sys::recv(self.setup.as_raw_fd(), &mut scratch, libc::MSG_DONTWAIT) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn set_flow_control(&self, value: i32) {
        self.counter(CTL_REQ_FC).store(value, Ordering::Release);
    }
}

impl Drop for SockTransport {
    fn drop(&mut self) {
        sys::shutdown(&self.setup);
    }
}

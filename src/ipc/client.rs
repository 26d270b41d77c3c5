//! The client side of a libqb IPC connection, in both transports.
//!
//! A connection is split in two halves so that the CPG layer can lock them
//! separately: [`Requester`] (request channel + response channel, used by
//! synchronous calls and multicasts) and [`Events`] (event channel, used by
//! dispatch). Both share the [`Link`]: the setup socket, which carries the
//! SHM notification bytes and tells us when the server goes away.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handshake::{self, Response};
use super::ring::{Ring, RingError};
use super::sys::{self, Mapping};
use crate::error::CsError;

/// How long one wait for a response sleeps before it checks that the
/// server is still there.
const LIVENESS_SLICE: Duration = Duration::from_millis(200);
/// Bound on waiting for an event's notification byte after its chunk.
const NOTIFY_WAIT_LIMIT: Duration = Duration::from_secs(1);
const NOTIFY_WAIT_SLICE: Duration = Duration::from_millis(10);
/// Bound on the handshake: a server that accepts but never answers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a server with these credentials may be trusted: root or our own
/// uid, unless `CPG_RS_ALLOW_ANY_SERVER=1` says otherwise.
fn server_trusted(cred: Option<libc::ucred>) -> bool {
    if std::env::var_os("CPG_RS_ALLOW_ANY_SERVER").is_some_and(|v| v == "1") {
        return true;
    }
    match cred {
        Some(c) => c.uid == 0 || c.uid == sys::getuid(),
        // A server that did not send credentials cannot be checked.
        None => false,
    }
}

/// State both halves share.
pub struct Link {
    setup: OwnedFd,
    server_pid: i32,
    dead: AtomicBool,
    max_msg_size: u32,
    /// Files and directory to remove when the server is gone at close
    /// (SHM), or always (socket mode, where the client owns the clean-up).
    files: Vec<String>,
    dir: Option<String>,
    always_clean: bool,
}

impl Link {
    pub fn setup_fd(&self) -> RawFd {
        self.setup.as_raw_fd()
    }

    pub fn max_msg_size(&self) -> u32 {
        self.max_msg_size
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub fn mark_dead(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// Fails with `Library` once the server is known to be gone.
    pub fn check(&self) -> Result<(), CsError> {
        if self.is_dead() {
            return Err(CsError::Library);
        }
        match sys::poll_now(self.setup.as_raw_fd(), libc::POLLIN) {
            Ok(rev) if rev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
                self.mark_dead();
                Err(CsError::Library)
            }
            Ok(_) => Ok(()),
            Err(_) => {
                self.mark_dead();
                Err(CsError::Library)
            }
        }
    }

    /// Maps a transport error: anything but "try again" means the
    /// connection is unusable from now on.
    fn fail(&self, err: io::Error) -> CsError {
        match err.raw_os_error() {
            Some(libc::EAGAIN) => CsError::TryAgain,
            Some(libc::EMSGSIZE) => CsError::TooBig,
            _ => {
                self.mark_dead();
                CsError::Library
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The server is done with the files once it is gone or has hung up
        // on us (a SIGKILLed daemon closes its sockets before it becomes a
        // zombie, so "still alive" alone would leave them behind).
        let clean = self.always_clean || self.is_dead() || !sys::process_alive(self.server_pid);
        if clean {
            for f in &self.files {
                let _ = sys::unlink(f);
            }
            if let Some(d) = &self.dir {
                let _ = sys::rmdir(d);
            }
        }
        // Shut the socket down so the server sees the hang-up even if a
        // forked child still holds a copy of the descriptor.
        sys::shutdown(&self.setup);
    }
}

/// The directory part of a path, if it looks like a libqb connection
/// directory under which we may clean up.
fn connection_dir(path: &str) -> Option<String> {
    let (dir, _) = path.rsplit_once('/')?;
    let last = dir.rsplit('/').next()?;
    (last.starts_with("qb-") && !dir.contains("..")).then(|| dir.to_string())
}

/// Connects to `service` and performs the handshake.
pub fn connect(service: &str, max_msg_size: u32) -> Result<(Requester, Events), CsError> {
    let sock = sys::unix_socket(libc::SOCK_STREAM, false).map_err(|_| CsError::Library)?;
    let addr = sys::abstract_addr(service.as_bytes()).map_err(|_| CsError::InvalidParam)?;
    sys::connect(&sock, &addr).map_err(|_| CsError::Library)?;
    sys::set_nonblocking(&sock, true).map_err(|_| CsError::Library)?;
    sys::set_passcred(&sock, true).map_err(|_| CsError::Library)?;
    let req = handshake::encode_request(max_msg_size);
    send_all(&sock, &req, HANDSHAKE_TIMEOUT)?;
    let mut resp = vec![0u8; handshake::RESPONSE_LEN];
    let cred = recv_exact_with_cred(&sock, &mut resp, HANDSHAKE_TIMEOUT)?;
    let _ = sys::set_passcred(&sock, false);
    // Nothing an untrusted server says is believed, its refusals included.
    if !server_trusted(cred) {
        return Err(CsError::Security);
    }
    let resp = handshake::decode_response(&resp).ok_or(CsError::Library)?;
    if resp.error != 0 {
        return Err(CsError::from_neg_errno(resp.error).err().unwrap_or(CsError::Library));
    }
    let server_pid = cred.map(|c| c.pid).unwrap_or(0);
    match resp.connection_type {
        handshake::TYPE_SHM => connect_shm(sock, server_pid, &resp),
        handshake::TYPE_SOCKET => connect_socket(sock, server_pid, &resp),
        2 | 3 => Err(CsError::NotSupported),
        _ => Err(CsError::InvalidParam),
    }
}

fn send_all(sock: &OwnedFd, buf: &[u8], timeout: Duration) -> Result<(), CsError> {
    let start = Instant::now();
    let mut sent = 0;
    while sent < buf.len() {
        match sys::send(sock.as_raw_fd(), &buf[sent..], 0) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = timeout.checked_sub(start.elapsed()).ok_or(CsError::TryAgain)?;
                let mut p = [libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                sys::poll(&mut p, Some(left)).map_err(|_| CsError::Library)?;
            }
            Err(_) => return Err(CsError::Library),
        }
    }
    Ok(())
}

fn recv_exact_with_cred(sock: &OwnedFd, buf: &mut [u8], timeout: Duration) -> Result<Option<libc::ucred>, CsError> {
    let start = Instant::now();
    let mut got = 0;
    let mut cred = None;
    while got < buf.len() {
        match sys::recv_with_cred(sock.as_raw_fd(), &mut buf[got..], 0) {
            Ok((0, _)) => return Err(CsError::Library),
            Ok((n, c)) => {
                got += n;
                cred = cred.or(c);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = timeout.checked_sub(start.elapsed()).ok_or(CsError::TryAgain)?;
                let mut p = [libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                sys::poll(&mut p, Some(left)).map_err(|_| CsError::Library)?;
            }
            Err(_) => return Err(CsError::Library),
        }
    }
    Ok(cred)
}

fn connect_shm(sock: OwnedFd, server_pid: i32, resp: &Response) -> Result<(Requester, Events), CsError> {
    let open = |base: &str| Ring::open(base).map_err(|_| CsError::Library);
    let request = open(&resp.request)?;
    let response = open(&resp.response)?;
    let event = open(&resp.event)?;
    let mut files = Vec::new();
    for r in [&request, &response, &event] {
        files.extend(r.paths().iter().map(|p| p.to_string()));
    }
    let link = Arc::new(Link {
        setup: sock,
        server_pid,
        dead: AtomicBool::new(false),
        max_msg_size: resp.max_msg_size,
        files,
        dir: connection_dir(&resp.request),
        always_clean: false,
    });
    Ok((
        Requester {
            link: link.clone(),
            chan: ReqChannel::Shm { request, response },
        },
        Events {
            link,
            chan: EvChannel::Shm { event, owed: 0 },
        },
    ))
}

/// The 24-byte control file of socket mode: three (sent, flow control)
/// pairs of i32 for the request, response and event channels.
struct Control(Mapping);

impl Control {
    fn word(&self, index: usize) -> &AtomicI32 {
        assert!(index < 6);
        // SAFETY: the mapping holds at least 24 bytes (checked at open) and
        // is page-aligned; index < 6 keeps the i32 inside it.
        unsafe { &*(self.0.as_ptr().add(index * 4) as *const AtomicI32) }
    }
}

const CTL_REQ_SENT: usize = 0;
const CTL_REQ_FC: usize = 1;
const CTL_RESP_SENT: usize = 2;
const CTL_EV_SENT: usize = 4;

fn connect_socket(sock: OwnedFd, server_pid: i32, resp: &Response) -> Result<(Requester, Events), CsError> {
    let ctl_fd = sys::open_rw(&resp.request).map_err(|_| CsError::Library)?;
    if sys::file_size(&ctl_fd).map_err(|_| CsError::Library)? < 24 {
        return Err(CsError::Library);
    }
    let control = Arc::new(Control(Mapping::map_shared(&ctl_fd, 24).map_err(|_| CsError::Library)?));
    let base = &resp.response;
    let dgram = |local: &str, remote: &str| -> Result<OwnedFd, CsError> {
        let s = sys::unix_socket(libc::SOCK_DGRAM, true).map_err(|_| CsError::Library)?;
        let la = sys::abstract_addr(local.as_bytes()).map_err(|_| CsError::Library)?;
        let ra = sys::abstract_addr(remote.as_bytes()).map_err(|_| CsError::Library)?;
        sys::bind(&s, &la).map_err(|_| CsError::Library)?;
        sys::connect(&s, &ra).map_err(|_| CsError::Library)?;
        let _ = sys::grow_buffers(&s, resp.max_msg_size as usize);
        Ok(s)
    };
    let req_sock = dgram(&format!("{base}-response"), &format!("{base}-request"))?;
    let ev_sock = dgram(&format!("{base}-event"), &format!("{base}-event-tx"))?;
    let link = Arc::new(Link {
        setup: sock,
        server_pid,
        dead: AtomicBool::new(false),
        max_msg_size: resp.max_msg_size,
        files: vec![resp.request.clone()],
        dir: connection_dir(&resp.request),
        always_clean: true,
    });
    Ok((
        Requester {
            link: link.clone(),
            chan: ReqChannel::Socket {
                sock: req_sock,
                control: control.clone(),
            },
        },
        Events {
            link,
            chan: EvChannel::Socket { sock: ev_sock, control },
        },
    ))
}

// One per connection, made once and never moved about: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum ReqChannel {
    Shm { request: Ring, response: Ring },
    Socket { sock: OwnedFd, control: Arc<Control> },
}

/// The request and response channels of one connection.
pub struct Requester {
    link: Arc<Link>,
    chan: ReqChannel,
}

impl Requester {
    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// The server's flow-control word (0 = off, 1 or 2 = back off).
    pub fn flow_control(&self) -> i32 {
        match &self.chan {
            ReqChannel::Shm { request, .. } => request.user_word().load(Ordering::Acquire),
            ReqChannel::Socket { control, .. } => control.word(CTL_REQ_FC).load(Ordering::Acquire),
        }
    }

    /// Sends one request made of `parts`. `fc_max` is libqb's
    /// `fc_enable_max`: the send backs off with `TryAgain` while the
    /// flow-control word is in `1..=fc_max`.
    pub fn send(&mut self, parts: &[&[u8]], fc_max: i32) -> Result<(), CsError> {
        if self.link.is_dead() {
            return Err(CsError::Library);
        }
        let fc = self.flow_control();
        if fc > 0 && fc <= fc_max {
            return Err(CsError::TryAgain);
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.link.max_msg_size as usize {
            return Err(CsError::TooBig);
        }
        match &self.chan {
            ReqChannel::Shm { request, .. } => {
                if request.ref_count().load(Ordering::Acquire) != 2 {
                    self.link.mark_dead();
                    return Err(CsError::Library);
                }
                match request.write(parts) {
                    Ok(()) => {}
                    Err(RingError::Full) => return Err(CsError::TryAgain),
                    Err(_) => {
                        self.link.mark_dead();
                        return Err(CsError::Library);
                    }
                }
                // Exactly one notification byte per request: the server is
                // driven by these, and a missing one stalls it.
                self.notify(len as u8)
            }
            ReqChannel::Socket { sock, control } => {
                let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                match sys::sendv(sock.as_raw_fd(), &slices, libc::MSG_DONTWAIT) {
                    Ok(_) => {
                        control.word(CTL_REQ_SENT).fetch_add(1, Ordering::AcqRel);
                        Ok(())
                    }
                    Err(e) => Err(self.link.fail(e)),
                }
            }
        }
    }

    fn notify(&self, byte: u8) -> Result<(), CsError> {
        let fd = self.link.setup_fd();
        loop {
            match sys::send(fd, &[byte], libc::MSG_DONTWAIT) {
                Ok(1) => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The server is not reading its socket: wait for room
                    // but keep noticing a hang-up.
                    let mut p = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    sys::poll(&mut p, Some(LIVENESS_SLICE)).map_err(|e| self.link.fail(e))?;
                    if p[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                        self.link.mark_dead();
                        return Err(CsError::Library);
                    }
                }
                Err(e) => return Err(self.link.fail(e)),
            }
        }
    }

    /// Waits for the next response (forever, while the server lives) and
    /// copies it into `buf`. Returns its length.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, CsError> {
        loop {
            match &self.chan {
                ReqChannel::Shm { response, .. } => {
                    if response.take_timeout(LIVENESS_SLICE) {
                        return match response.read_taken(buf) {
                            Ok(n) => Ok(n),
                            Err(RingError::TooSmall(_)) => Err(CsError::MessageError),
                            Err(_) => {
                                self.link.mark_dead();
                                Err(CsError::Library)
                            }
                        };
                    }
                }
                ReqChannel::Socket { sock, control } => {
                    match sys::recv(sock.as_raw_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                        Ok(n) if n > buf.len() => {
                            control.word(CTL_RESP_SENT).fetch_sub(1, Ordering::AcqRel);
                            return Err(CsError::MessageError);
                        }
                        Ok(n) => {
                            control.word(CTL_RESP_SENT).fetch_sub(1, Ordering::AcqRel);
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            let mut p = [
                                libc::pollfd {
                                    fd: sock.as_raw_fd(),
                                    events: libc::POLLIN,
                                    revents: 0,
                                },
                                libc::pollfd {
                                    fd: self.link.setup_fd(),
                                    events: 0,
                                    revents: 0,
                                },
                            ];
                            sys::poll(&mut p, Some(LIVENESS_SLICE)).map_err(|e| self.link.fail(e))?;
                        }
                        Err(e) => return Err(self.link.fail(e)),
                    }
                }
            }
            self.link.check()?;
        }
    }

    /// `send` then `recv`: one synchronous request.
    pub fn request(&mut self, parts: &[&[u8]], buf: &mut [u8]) -> Result<usize, CsError> {
        self.send(parts, 1)?;
        self.recv(buf)
    }
}

enum EvChannel {
    Shm { event: Ring, owed: usize },
    Socket { sock: OwnedFd, control: Arc<Control> },
}

/// The event channel of one connection.
pub struct Events {
    link: Arc<Link>,
    chan: EvChannel,
}

impl Events {
    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Descriptors that become readable when an event may be pending or
    /// the server went away.
    pub fn wait_fds(&self) -> Vec<RawFd> {
        match &self.chan {
            EvChannel::Shm { .. } => vec![self.link.setup_fd()],
            EvChannel::Socket { sock, .. } => vec![sock.as_raw_fd(), self.link.setup_fd()],
        }
    }

    /// The descriptor that libqb would hand out (`qb_ipcc_fd_get`).
    pub fn natural_fd(&self) -> RawFd {
        match &self.chan {
            EvChannel::Shm { .. } => self.link.setup_fd(),
            EvChannel::Socket { sock, .. } => sock.as_raw_fd(),
        }
    }

    pub fn is_shm(&self) -> bool {
        matches!(self.chan, EvChannel::Shm { .. })
    }

    /// Takes the next event into `buf` without waiting. `Ok(None)` when
    /// nothing is pending and the server is alive.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, CsError> {
        match &mut self.chan {
            EvChannel::Shm { event, owed } => match event.try_read(buf) {
                Ok(Some(n)) => {
                    *owed += 1;
                    Ok(Some(n))
                }
                Ok(None) => {
                    self.settle(true)?;
                    self.link.check()?;
                    Ok(None)
                }
                // An event larger than the buffer stays queued, as with
                // libqb; report it rather than spin on it.
                Err(RingError::TooSmall(_)) => Err(CsError::MessageError),
                Err(_) => {
                    self.link.mark_dead();
                    Err(CsError::Library)
                }
            },
            EvChannel::Socket { sock, control } => {
                match sys::recv(sock.as_raw_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                    Ok(n) => {
                        control.word(CTL_EV_SENT).fetch_sub(1, Ordering::AcqRel);
                        if n > buf.len() {
                            return Err(CsError::MessageError);
                        }
                        Ok(Some(n))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.link.check()?;
                        Ok(None)
                    }
                    Err(e) => Err(self.link.fail(e)),
                }
            }
        }
    }

    /// Consumes the notification bytes of the events already taken, so
    /// that the descriptor is readable exactly while events are pending.
    /// The server posts an event before it sends its byte: with `wait`, a
    /// byte still on its way is waited for (bounded; a server that never
    /// sends it only leaves the debt for later).
    pub fn settle(&mut self, wait: bool) -> Result<(), CsError> {
        let EvChannel::Shm { owed, .. } = &mut self.chan else {
            return Ok(());
        };
        let fd = self.link.setup_fd();
        let mut scratch = [0u8; 256];
        let mut waited = Duration::ZERO;
        while *owed > 0 {
            let want = (*owed).min(scratch.len());
            match sys::recv(fd, &mut scratch[..want], libc::MSG_DONTWAIT) {
                Ok(0) => {
                    self.link.mark_dead();
                    return Err(CsError::Library);
                }
                Ok(n) => *owed -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait || waited >= NOTIFY_WAIT_LIMIT {
                        break;
                    }
                    let mut p = [libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    sys::poll(&mut p, Some(NOTIFY_WAIT_SLICE)).map_err(|e| self.link.fail(e))?;
                    waited += NOTIFY_WAIT_SLICE;
                }
                Err(e) => return Err(self.link.fail(e)),
            }
        }
        Ok(())
    }
}

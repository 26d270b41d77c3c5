//! `cpgd`, a single-host server for the CPG service, as a library.
//!
//! It speaks libqb's IPC (SHM rings or sockets) and corosync's CPG
//! messages, so corosync's own libcpg and ours both work against it.
//! One thread runs a mio loop over a `Token → connection` table:
//! - [`listener`]: the listening socket, connection requests, admission;
//! - [`transport`] ([`shm`], [`socket`]): the server side of each channel;
//! - [`service`]: the CPG state machine (no I/O);
//! - [`flow`]: flow control and the slow-consumer policy;
//! - [`zc`]: zero-copy buffers.
#![forbid(unsafe_code)]

pub mod cli;
pub mod flow;
pub mod listener;
pub mod log;
pub mod service;
pub mod shm;
pub mod socket;
pub mod transport;
pub mod zc;

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::error::CsError;
use crate::ipc::fault;
use crate::ipc::handshake::{self, Response};
use crate::ipc::ring::data_file_size;
use crate::ipc::sys;
use crate::proto;
use flow::{Limits, Verdict};
use listener::Pending;
use service::{Admission, ConnId, IdMap, Outcome, Peer, Service};
use transport::{Sent, Transport};

/// Smallest buffer size offered: libcpg sizes its messages for 1 MiB
/// whatever it is told.
pub const MIN_MSG_SIZE: u32 = 1 << 20;
/// Largest buffer size granted (a client asking for more gets this).
pub const MAX_MSG_SIZE: u32 = 64 << 20;
/// Requests taken from one connection before the others get a turn.
const BATCH: usize = 64;
/// Requests processed for a connection that is being closed.
const FINAL_DRAIN: usize = 4096;
/// Event bytes written in a batch after which their notification bytes
/// are sent at once rather than at the end of the batch. Our library reads
/// an event as soon as it is in the ring and then waits for its byte; a
/// batch of 64 large messages kept it waiting for the whole batch (40 KB
/// messages: 73k -> 135k msgs/s). One send per 4 KiB of events costs the
/// server little and leaves small messages batched.
const SIGNAL_EVERY: usize = 4096;
/// Default of `Config::busy_poll` (`--busy-poll`).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);
/// Time a client has to send its 24-byte connection request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry period while output is queued (rings give no wake-up on room).
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNAL: Token = Token(2);
const KIND_SETUP: usize = 0;
const KIND_REQUEST: usize = 1;

fn token(id: ConnId, kind: usize) -> Token {
    Token(((id as usize) << 2) | kind)
}

/// Which transport the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcMode {
    Shm,
    Socket,
}

/// Everything the server can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// libqb service name (the abstract socket `@<service>`); "cpg".
    pub service: String,
    /// The node id reported by LOCAL_GET and in every event.
    pub nodeid: u32,
    pub ipc: IpcMode,
    /// Admitted besides our own uid and root.
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    pub limits: Limits,
    /// Connections served at once; more are refused with EMFILE.
    pub max_connections: usize,
    pub verbose: bool,
    /// After handling a request, keep polling without sleeping this long
    /// before blocking in epoll_wait (zero: never). A request/response
    /// client (zero copy, fragments) or a ping-pong then finds the server
    /// awake: no wake-up on either side, which on this class of machine
    /// costs more than the work (see docs/benchmarks.md).
    pub busy_poll: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            service: "cpg".into(),
            nodeid: 1,
            ipc: IpcMode::Shm,
            allow_uids: Vec::new(),
            allow_gids: Vec::new(),
            limits: Limits::default(),
            max_connections: 4096,
            verbose: false,
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the IPC name @{0} is already in use (is corosync or another cpgd running in this network namespace?)")]
    AddressInUse(String),
    #[error("{0}: {1}")]
    Io(&'static str, #[source] io::Error),
    #[error("{0}")]
    Usage(String),
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Stopper {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// A connection that finished its handshake.
struct Active {
    transport: Transport,
    peer: Peer,
    /// Events not yet written, oldest first.
    events: VecDeque<service::Frame>,
    /// Replies not yet written (the response channel was full).
    replies: VecDeque<Vec<u8>>,
    /// Bytes in `events` and `replies`.
    queued: usize,
    /// A multicast taken while congested, processed first when it ends.
    held: Option<Vec<u8>>,
    over_since: Option<Instant>,
}

enum Slot {
    Pending(Pending),
    Active(Box<Active>),
}

pub struct Server {
    config: Config,
    poll: Poll,
    listener: OwnedFd,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    signals: Option<OwnedFd>,
    service: Service,
    conns: IdMap<Slot>,
    next_id: ConnId,
    scratch: Vec<u8>,
    /// Connections that may have more requests waiting.
    ready: BTreeSet<ConnId>,
    /// Connections with queued output.
    backlog: BTreeSet<ConnId>,
    /// Connections with event notification bytes to send (may repeat).
    notify: Vec<ConnId>,
    /// Reused buffers (no allocation per message).
    spare_events: Vec<(ConnId, service::Frame)>,
    touched: Vec<ConnId>,
    ids: Vec<ConnId>,
    pending: BTreeSet<ConnId>,
    to_close: Vec<(ConnId, String)>,
    congested: bool,
    accept_blocked: bool,
    uid: u32,
    /// When the last request was handled (for busy polling).
    last_request: Instant,
    /// `fault::faults()` when housekeeping last looked for faulted rings.
    faults_seen: u64,
    /// Bytes of events written to rings whose notification bytes are not
    /// sent yet.
    unsignalled: usize,
}

fn io_err(what: &'static str) -> impl Fn(io::Error) -> ServerError {
    move |e| ServerError::Io(what, e)
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), ServerError> {
    sys::tune_malloc();
    // A client that truncates its ring files must not take the server down.
    if let Err(e) = fault::install() {
        log::warn(format_args!(
            "no SIGBUS guard ({e}): a client truncating its ring files would kill the server"
        ));
    }
    let mut server = Server::bind(config)?;
    server.watch_signals()?;
    server.run()
}

impl Server {
    /// Binds the service name; fails if it is taken.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        log::set_verbose(config.verbose);
        if config.nodeid == 0 {
            return Err(ServerError::Usage("the node id must not be 0".into()));
        }
        if config.service.is_empty() || config.service.len() > 106 || config.service.contains('/') {
            return Err(ServerError::Usage(format!("invalid service name {:?}", config.service)));
        }
        let listener = listener::bind(&config.service)?;
        let poll = Poll::new().map_err(io_err("epoll"))?;
        poll.registry()
            .register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)
            .map_err(io_err("epoll_ctl"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("eventfd"))?);
        let service = Service::new(config.nodeid, service::ring_seq_now());
        log::notice(format_args!(
            "listening on @{} ({} IPC), node id {}",
            config.service,
            match config.ipc {
                IpcMode::Shm => "shared-memory",
                IpcMode::Socket => "socket",
            },
            config.nodeid
        ));
        Ok(Server {
            config,
            poll,
            listener,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            signals: None,
            service,
            conns: IdMap::default(),
            next_id: 0,
            scratch: vec![0; data_file_size(MIN_MSG_SIZE as usize)],
            ready: BTreeSet::new(),
            backlog: BTreeSet::new(),
            notify: Vec::new(),
            spare_events: Vec::new(),
            touched: Vec::new(),
            ids: Vec::new(),
            pending: BTreeSet::new(),
            to_close: Vec::new(),
            congested: false,
            accept_blocked: false,
            uid: sys::geteuid(),
            last_request: Instant::now(),
            faults_seen: 0,
            unsignalled: 0,
        })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper {
            waker: self.waker.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Stops on SIGTERM / SIGINT (blocks them for this thread and the
    /// threads it starts afterwards).
    pub fn watch_signals(&mut self) -> Result<(), ServerError> {
        let fd = sys::signalfd_for(&[libc::SIGTERM, libc::SIGINT]).map_err(io_err("signalfd"))?;
        self.poll
            .registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), SIGNAL, Interest::READABLE)
            .map_err(io_err("epoll_ctl"))?;
        self.signals = Some(fd);
        Ok(())
    }

    /// The event loop; returns after a stop request, with every
    /// connection closed and its files removed.
    pub fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(512);
        let result = loop {
            if self.stop.load(Ordering::Acquire) {
                break Ok(());
            }
            let mut timeout = self.timeout();
            if timeout != Some(Duration::ZERO) && self.last_request.elapsed() < self.config.busy_poll {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(ServerError::Io("epoll_wait", e));
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    SIGNAL => self.read_signals(),
                    t => {
                        let hangup = ev.is_read_closed() || ev.is_error();
                        self.on_conn_event(t, ev.is_readable() || hangup, ev.is_writable(), hangup)
                    }
                }
            }
            self.housekeeping();
        };
        self.shutdown();
        result
    }

    fn read_signals(&mut self) {
        let Some(fd) = &self.signals else { return };
        while let Ok(Some(sig)) = sys::read_signal(fd) {
            log::notice(format_args!("signal {sig} received, shutting down"));
            self.stop.store(true, Ordering::Release);
        }
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() || !self.to_close.is_empty() {
            Some(Duration::ZERO)
        } else if !self.backlog.is_empty() || !self.notify.is_empty() {
            Some(BACKLOG_RETRY)
        } else if !self.pending.is_empty() || self.congested || self.accept_blocked {
            Some(Duration::from_millis(200))
        } else {
            None
        }
    }

    // ----- accepting and handshakes -----

    fn accept_all(&mut self) {
        self.accept_blocked = false;
        loop {
            match sys::accept(&self.listener) {
                Ok(sock) => self.start_pending(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // EMFILE and friends: retry from the housekeeping timer.
                    log::warn(format_args!("accept: {e}"));
                    self.accept_blocked = true;
                    break;
                }
            }
        }
    }

    fn start_pending(&mut self, sock: OwnedFd) {
        self.next_id += 1;
        let id = self.next_id;
        let pending = match Pending::new(sock, Instant::now() + HANDSHAKE_TIMEOUT) {
            Ok(p) => p,
            Err(e) => {
                log::warn(format_args!("new connection: {e}"));
                return;
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&pending.sock.as_raw_fd()),
            token(id, KIND_SETUP),
            Interest::READABLE,
        ) {
            log::warn(format_args!("epoll_ctl: {e}"));
            return;
        }
        self.conns.insert(id, Slot::Pending(pending));
        self.pending.insert(id);
        self.advance_handshake(id);
    }

    fn advance_handshake(&mut self, id: ConnId) {
        let Some(Slot::Pending(p)) = self.conns.get_mut(&id) else {
            return;
        };
        let hello = match p.read() {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                log::debug(format_args!("connection {id}: handshake failed: {e}"));
                self.drop_pending(id);
                return;
            }
        };
        let Some(Slot::Pending(p)) = self.remove_slot(id) else {
            return;
        };
        let peer = hello.peer;
        let refuse = |sock: &OwnedFd, errno: i32, why: &str| {
            log::notice(format_args!(
                "refused client pid {} uid {} gid {}: {why}",
                peer.pid, peer.uid, peer.gid
            ));
            let r = Response {
                error: -errno,
                connection_type: 0,
                max_msg_size: 0,
                request: String::new(),
                response: String::new(),
                event: String::new(),
            };
            let _ = transport::send_blocking_bounded(sock, &handshake::encode_response(&r, 0));
        };
        let active = self.conns.values().filter(|s| matches!(s, Slot::Active(_))).count();
        if !listener::admitted(&peer, self.uid, &self.config.allow_uids, &self.config.allow_gids) {
            refuse(
                &p.sock,
                libc::EACCES,
                "uid/gid not allowed (see --allow-uid / --allow-gid)",
            );
            return;
        }
        if active >= self.config.max_connections {
            refuse(&p.sock, libc::EMFILE, "too many connections");
            return;
        }
        let max = hello.max_msg_size.clamp(MIN_MSG_SIZE, MAX_MSG_SIZE) as usize;
        let socket_mode = self.config.ipc == IpcMode::Socket;
        let (transport, resp) = match Transport::create(socket_mode, p.sock, &peer, &self.config.service, max) {
            Ok(v) => v,
            Err((e, sock)) => {
                refuse(
                    &sock,
                    e.raw_os_error().unwrap_or(libc::EIO),
                    &format!("cannot create the IPC objects: {e}"),
                );
                return;
            }
        };
        if self.congested {
            transport.set_flow_control(2);
        }
        if let Err(e) = transport.send_handshake(&handshake::encode_response(&resp, id)) {
            log::debug(format_args!("connection {id}: cannot answer: {e}"));
            return;
        }
        let registry = self.poll.registry();
        let setup = transport.setup_fd();
        let mut ok = registry
            .register(
                &mut SourceFd(&setup),
                token(id, KIND_SETUP),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_ok();
        if let Some(fd) = transport.request_fd() {
            ok &= registry
                .register(&mut SourceFd(&fd), token(id, KIND_REQUEST), Interest::READABLE)
                .is_ok();
        }
        if !ok {
            log::warn(format_args!("connection {id}: epoll_ctl failed"));
            return;
        }
        let need = data_file_size(max);
        if self.scratch.len() < need {
            self.scratch.resize(need, 0);
        }
        log::notice(format_args!(
            "connection {id}: client pid {} uid {} gid {} connected ({} bytes)",
            peer.pid, peer.uid, peer.gid, max
        ));
        self.service.connect(id, peer);
        self.conns.insert(
            id,
            Slot::Active(Box::new(Active {
                transport,
                peer,
                events: VecDeque::new(),
                replies: VecDeque::new(),
                queued: 0,
                held: None,
                over_since: None,
            })),
        );
        // Requests may already be waiting (the client does not wait for us).
        self.ready.insert(id);
    }

    fn drop_pending(&mut self, id: ConnId) {
        let _ = self.remove_slot(id);
    }

    /// Removes a slot and its registrations.
    fn remove_slot(&mut self, id: ConnId) -> Option<Slot> {
        let slot = self.conns.remove(&id)?;
        self.pending.remove(&id);
        self.ready.remove(&id);
        self.backlog.remove(&id);
        self.notify.retain(|&n| n != id);
        let registry = self.poll.registry();
        match &slot {
            Slot::Pending(p) => {
                let _ = registry.deregister(&mut SourceFd(&p.sock.as_raw_fd()));
            }
            Slot::Active(a) => {
                let _ = registry.deregister(&mut SourceFd(&a.transport.setup_fd()));
                if let Some(fd) = a.transport.request_fd() {
                    let _ = registry.deregister(&mut SourceFd(&fd));
                }
            }
        }
        Some(slot)
    }

    // ----- connection traffic -----

    fn on_conn_event(&mut self, t: Token, readable: bool, writable: bool, hangup: bool) {
        let id = (t.0 >> 2) as ConnId;
        let kind = t.0 & 3;
        match self.conns.get(&id) {
            None => {}
            Some(Slot::Pending(_)) => self.advance_handshake(id),
            Some(Slot::Active(_)) => {
                // Notification bytes first, then the ring: a client posts
                // its chunk before it sends the byte, so every byte read
                // here has its chunk visible to the pump below. (The other
                // order loses a wake-up: a byte that arrives between the
                // pump and the read is consumed, and its edge is then
                // reported without EPOLLIN.)
                if kind == KIND_SETUP && (readable || hangup) {
                    let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
                        return;
                    };
                    match c.transport.read_setup() {
                        Ok(true) => {}
                        Ok(false) => self.to_close.push((id, "client disconnected".into())),
                        Err(e) => self.to_close.push((id, format!("setup socket: {e}"))),
                    }
                }
                if readable || writable {
                    self.pump(id, false);
                }
                if writable {
                    self.flush(id);
                }
            }
        }
    }

    /// Takes and handles requests of one connection, in order.
    fn pump(&mut self, id: ConnId, closing: bool) {
        self.ready.remove(&id);
        let batch = if closing { FINAL_DRAIN } else { BATCH };
        for _ in 0..batch {
            let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
                return;
            };
            // Replies go out in request order; wait for the channel.
            if !c.replies.is_empty() && !closing {
                log::debug(format_args!("connection {id}: waiting for the response channel"));
                return;
            }
            let congested = self.congested && !closing;
            let hold = congested && self.config.limits.may_hold(c.queued);
            let outcome = if let Some(h) = c.held.take() {
                if hold {
                    c.held = Some(h);
                    return;
                }
                self.service.handle(id, &h)
            } else {
                match c.transport.recv_request(&mut self.scratch) {
                    // The client shrank a ring under us: what was read may be
                    // zeros; housekeeping closes the connection.
                    Ok(Some(_)) if fault::faults() != 0 && c.transport.faulted() => return,
                    Ok(Some(n)) => {
                        let frame = &self.scratch[..n];
                        if log::verbose() {
                            let rid = frame.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                            log::debug(format_args!(
                                "connection {id}: request {rid:?}, {n} bytes, queued {}",
                                c.queued
                            ));
                        }
                        match Service::admission(frame) {
                            // A synchronous multicast is refused rather than
                            // held: its sender waits for the reply and could
                            // not read the events that end the congestion.
                            Admission::RefuseWhenCongested if congested => {
                                Outcome::Reply(proto::error_response(0, CsError::TryAgain as i32).to_vec())
                            }
                            Admission::HoldWhenCongested if hold => {
                                c.held = Some(frame.to_vec());
                                return;
                            }
                            _ => self.service.handle(id, frame),
                        }
                    }
                    Ok(None) => {
                        log::debug(format_args!("connection {id}: no request pending"));
                        return;
                    }
                    Err(e) => {
                        if !closing {
                            self.to_close.push((id, format!("request channel: {e}")));
                        }
                        return;
                    }
                }
            };
            self.last_request = Instant::now();
            // The request's events are written and signalled before its
            // reply: a client that dispatches when a call returns (libqb
            // reads an event only once its notification byte is there)
            // then finds them.
            self.distribute();
            if self.unsignalled >= SIGNAL_EVERY {
                self.notify_all();
            }
            if self.congested {
                if let Some(Slot::Active(c)) = self.conns.get(&id) {
                    c.transport.set_flow_control(self.fc_word(id));
                }
            }
            match outcome {
                Outcome::NoReply => {}
                Outcome::Disconnect => {
                    self.to_close.push((id, "client asked to disconnect".into()));
                    return;
                }
                Outcome::Reply(r) => {
                    self.notify_all();
                    self.reply(id, r, closing);
                }
            }
        }
        self.ready.insert(id);
        self.notify_all();
    }

    /// Sends a reply, or queues it behind earlier ones.
    fn reply(&mut self, id: ConnId, r: Vec<u8>, closing: bool) {
        let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.replies.is_empty() {
            if !closing {
                c.queued += r.len();
                c.replies.push_back(r);
            }
            return;
        }
        match c.transport.send_response(&r) {
            Ok(Sent::Done) => {}
            Ok(Sent::Later) => {
                log::debug(format_args!("connection {id}: response channel full, reply queued"));
                c.queued += r.len();
                c.replies.push_back(r);
                self.backlog.insert(id);
            }
            Err(e) => {
                if !closing {
                    self.to_close.push((id, format!("response channel: {e}")));
                }
            }
        }
    }

    /// Queues the service's new events on their connections and writes
    /// what fits.
    fn distribute(&mut self) {
        if !self.service.has_events() {
            return;
        }
        let mut events = std::mem::take(&mut self.spare_events);
        self.service.swap_events(&mut events);
        let mut touched = std::mem::take(&mut self.touched);
        for (to, frame) in events.drain(..) {
            if let Some(Slot::Active(c)) = self.conns.get_mut(&to) {
                c.queued += frame.len();
                c.events.push_back(frame);
                touched.push(to);
            }
        }
        self.spare_events = events;
        touched.sort_unstable();
        touched.dedup();
        for &id in &touched {
            self.flush(id);
        }
        touched.clear();
        self.touched = touched;
    }

    /// Writes queued replies and events of one connection while there is
    /// room, then applies the queue limits.
    fn flush(&mut self, id: ConnId) {
        let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
            return;
        };
        let had_replies = !c.replies.is_empty();
        let mut signalled = 0;
        let result = (|| -> io::Result<()> {
            while let Some(r) = c.replies.front() {
                match c.transport.send_response(r)? {
                    Sent::Done => {
                        c.queued -= r.len();
                        c.replies.pop_front();
                    }
                    Sent::Later => break,
                }
            }
            while let Some(f) = c.events.front() {
                match c.transport.send_event(f)? {
                    Sent::Done => {
                        c.queued -= f.len();
                        signalled += f.len();
                        c.events.pop_front();
                    }
                    Sent::Later => break,
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.to_close.push((id, format!("event channel: {e}")));
            return;
        }
        if c.transport.has_unsent_notifications() {
            self.unsignalled += signalled;
            if self.notify.last() != Some(&id) {
                self.notify.push(id);
            }
        }
        if c.events.is_empty() && c.replies.is_empty() {
            self.backlog.remove(&id);
        } else {
            self.backlog.insert(id);
        }
        if had_replies && c.replies.is_empty() {
            self.ready.insert(id);
        }
        if self.config.limits.congests(c.queued) && !self.congested {
            log::debug(format_args!(
                "connection {id} (pid {}) has {} bytes queued: flow control on",
                c.peer.pid, c.queued
            ));
            self.set_congested(true);
        }
    }

    /// Sends the event notification bytes owed, one send per connection.
    fn notify_all(&mut self) {
        if self.notify.is_empty() {
            return;
        }
        self.unsignalled = 0;
        let mut ids = std::mem::take(&mut self.notify);
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
                continue;
            };
            match c.transport.flush_notifications() {
                // Socket full: the client reads them; retried from the timer.
                Ok(()) if c.transport.has_unsent_notifications() => {
                    self.backlog.insert(id);
                    self.notify.push(id);
                }
                Ok(()) => {}
                Err(e) => self.to_close.push((id, format!("setup socket: {e}"))),
            }
        }
        ids.clear();
        if self.notify.is_empty() {
            self.notify = ids;
        }
    }

    /// The flow-control word of a connection: 2 while congested, except
    /// for one in the middle of a fragmented message. That sender cannot
    /// read its own fragments before its call returns; raising its word
    /// would stop it mid-message (libcpg gives up after 1 s) whenever its
    /// message is larger than the soft limit, while letting it finish adds
    /// at most one message to the queues (still bounded by the hard limit).
    fn fc_word(&self, id: ConnId) -> i32 {
        if self.congested && !self.service.sending_fragments(id) {
            2
        } else {
            0
        }
    }

    fn set_congested(&mut self, on: bool) {
        self.congested = on;
        for (&id, slot) in &self.conns {
            if let Slot::Active(c) = slot {
                c.transport.set_flow_control(self.fc_word(id));
                if !on {
                    self.ready.insert(id);
                }
            }
        }
        if !on {
            log::debug(format_args!("queues drained: flow control off"));
        }
    }

    /// Periodic work: closes, retries, the queue policy, timeouts.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let faults = fault::faults();
        if faults != self.faults_seen {
            self.faults_seen = faults;
            for (&id, slot) in &self.conns {
                if let Slot::Active(c) = slot {
                    if c.transport.faulted() {
                        log::warn(format_args!(
                            "connection {id} (pid {}): a shared-memory file shrank under the server; disconnecting it",
                            c.peer.pid
                        ));
                        self.to_close.push((id, "ring file truncated by the client".into()));
                    }
                }
            }
        }
        if self.accept_blocked {
            self.accept_all();
        }
        let mut ids = std::mem::take(&mut self.ids);
        ids.extend(self.pending.iter());
        for &id in &ids {
            if let Some(Slot::Pending(p)) = self.conns.get(&id) {
                if p.deadline <= now {
                    log::debug(format_args!("connection {id}: no connection request in time"));
                    self.drop_pending(id);
                }
            }
        }
        self.reap();
        ids.clear();
        ids.extend(self.ready.iter());
        for &id in &ids {
            self.pump(id, false);
        }
        ids.clear();
        ids.extend(self.backlog.iter());
        for &id in &ids {
            self.flush(id);
        }
        let limits = self.config.limits;
        let congested = self.congested;
        ids.clear();
        ids.extend(self.backlog.iter());
        for &id in &ids {
            let Some(Slot::Active(c)) = self.conns.get_mut(&id) else {
                continue;
            };
            if c.held.is_some() && !limits.may_hold(c.queued) {
                // Its own queue grew: release it (see flow.rs).
                self.ready.insert(id);
            }
            match limits.judge(c.queued, c.over_since, now, congested) {
                Verdict::Fine => c.over_since = None,
                Verdict::Over(since) => c.over_since = Some(since),
                Verdict::Disconnect(why) => {
                    log::warn(format_args!(
                        "connection {id} (pid {}): {why}; disconnecting it",
                        c.peer.pid
                    ));
                    self.to_close.push((id, why.into()));
                }
            }
        }
        ids.clear();
        self.ids = ids;
        self.reap();
        self.notify_all();
        if self.congested
            && self
                .conns
                .values()
                .all(|s| !matches!(s, Slot::Active(c) if !limits.relieved(c.queued)))
        {
            self.set_congested(false);
        }
    }

    /// Closes every connection marked for closing (closing one may mark
    /// others, through the events it causes).
    fn reap(&mut self) {
        while let Some((id, why)) = self.to_close.pop() {
            self.close(id, &why);
        }
    }

    fn close(&mut self, id: ConnId, why: &str) {
        if !matches!(self.conns.get(&id), Some(Slot::Active(_))) {
            self.drop_pending(id);
            return;
        }
        // What the client sent before it went away is handled first, in
        // order: its last messages are delivered before its PROCDOWN.
        self.pump(id, true);
        let Some(Slot::Active(c)) = self.remove_slot(id) else {
            return;
        };
        log::notice(format_args!("connection {id}: client pid {} closed: {why}", c.peer.pid));
        drop(c);
        self.service.disconnect(id);
        self.distribute();
    }

    fn shutdown(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        if !ids.is_empty() {
            log::notice(format_args!("closing {} connection(s)", ids.len()));
        }
        for id in ids {
            // Every client is being disconnected: no confchgs to send.
            let _ = self.remove_slot(id);
        }
        log::notice(format_args!("stopped"));
    }
}

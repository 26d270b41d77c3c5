//! The CPG client: one [`Cpg`] per `cpg_handle_t`, speaking corosync's CPG
//! service over a libqb connection. No raw pointers here: the C boundary
//! lives in `crate::ffi`.
//!
//! Locking: synchronous requests and multicasts share the request lock
//! (so concurrent callers never take each other's responses, unlike the
//! C library); dispatch uses the event lock. Neither is held while a
//! callback runs or while a dispatcher sleeps, so callbacks may call any
//! function (including `finalize`) and a thread cancelled in its sleep
//! leaves no lock behind.
#![forbid(unsafe_code)]

pub mod handles;
// Public only for the fuzz targets (fuzz/fuzz_targets/reassembly.rs).
#[doc(hidden)]
pub mod reassembly;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use parking_lot::Mutex;

use crate::error::CsError;
use crate::ipc::zerocopy::ZcBuffer;
use crate::ipc::{self, sys, Events, Requester};
use crate::proto::{self, Address, Event, GroupName, RingId};
use reassembly::Reassembly;

pub use proto::GroupName as Name;

/// Service name corosync publishes for CPG.
pub const SERVICE: &str = "cpg";
/// Buffer size the library asks for, and the largest event it reads.
pub const IPC_SIZE: u32 = 1 << 20;
/// Largest payload sent unfragmented (room for corosync's headers).
pub const MAX_ATOMIC_MSG: usize = IPC_SIZE as usize - 1024;
/// Largest zero-copy payload: its DELIVER event (184-byte header) must fit
/// the receivers' 1 MiB buffer, or their dispatch would wedge.
pub const MAX_ZC_MSG: usize = IPC_SIZE as usize - proto::DELIVER_HDR_LEN;
/// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`.
pub const FLAG_INITIAL_TOTEM_CONF: u32 = 0x1;

/// How long `join`/`leave` keep re-sending while the server answers BUSY
/// (the C library retries forever; a leave-then-join-other-group bug of
/// the daemon would then spin for ever).
const BUSY_RETRY_LIMIT: Duration = Duration::from_secs(10);
/// Fragment retries on flow control, as the C library: 100 × 10 ms.
const FRAGMENT_RETRIES: u32 = 100;
const FRAGMENT_RETRY_SLEEP: Duration = Duration::from_millis(10);
/// Events dispatched between two settlements of notification bytes.
const SETTLE_EVERY: usize = 64;

/// `cs_dispatch_flags_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchMode {
    One,
    All,
    Blocking,
    OneNonblocking,
}

impl DispatchMode {
    pub fn from_raw(v: u32) -> Result<DispatchMode, CsError> {
        match v {
            1 => Ok(DispatchMode::One),
            2 => Ok(DispatchMode::All),
            3 => Ok(DispatchMode::Blocking),
            4 => Ok(DispatchMode::OneNonblocking),
            _ => Err(CsError::InvalidParam),
        }
    }
}

/// Where a dispatch step stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Done,
    /// Nothing pending and the mode waits: sleep, then step again.
    Sleep,
}

/// What dispatch hands to the application, borrowing from its buffers.
pub enum Callback<'a> {
    Deliver {
        group: &'a GroupName,
        nodeid: u32,
        pid: u32,
        msg: &'a mut [u8],
    },
    Confchg {
        group: &'a GroupName,
        members: &'a [Address],
        left: &'a [Address],
        joined: &'a [Address],
    },
    TotemConfchg {
        ring_id: RingId,
        members: &'a [u32],
    },
}

/// A byte buffer whose usable window starts 8-byte aligned, so message
/// pointers handed to C are aligned as the C library's are.
pub(crate) struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn try_new(len: usize) -> Result<AlignedBuf, CsError> {
        let mut raw = Vec::new();
        raw.try_reserve_exact(len + 8).map_err(|_| CsError::NoMemory)?;
        raw.resize(len + 8, 0);
        let start = raw.as_ptr().align_offset(8).min(8);
        Ok(AlignedBuf { raw, start, len })
    }

    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

struct EvState {
    events: Events,
    /// The receive buffer, lent to one dispatcher at a time.
    buf: Option<AlignedBuf>,
    partial: Reassembly,
}

/// One CPG connection.
pub struct Cpg {
    req: Mutex<Requester>,
    ev: Mutex<EvState>,
    flags: u32,
    finalized: AtomicBool,
    /// Signalled on finalize: wakes sleepers, stays readable.
    wake: OwnedFd,
    /// Poller for blocking waits, lent out while someone sleeps.
    sleeper: Mutex<Option<Poll>>,
    /// Socket mode only: the epoll set handed to the application, which
    /// sees both the event socket and the liveness of the server. Polling
    /// an epoll descriptor re-checks the readiness of its members, so it
    /// is readable exactly while one of them is: it needs no upkeep.
    _app_poll: Option<Poll>,
    app_fd: RawFd,
    context: AtomicUsize,
    /// Zero-copy buffers of this connection, by payload address.
    zc: Mutex<HashMap<usize, ZcBuffer>>,
}

const TOKEN_EVENTS: Token = Token(0);
const TOKEN_SETUP: Token = Token(1);
const TOKEN_WAKE: Token = Token(2);

impl Cpg {
    /// Connects to the CPG service. `flags` are the model-v1 flags, sent
    /// with every join.
    pub fn connect(flags: u32, context: usize) -> Result<Cpg, CsError> {
        Cpg::connect_to(SERVICE, flags, context)
    }

    /// [`Cpg::connect`] to another service name (tests run private servers).
    #[doc(hidden)]
    pub fn connect_to(service: &str, flags: u32, context: usize) -> Result<Cpg, CsError> {
        let (requester, events) = ipc::connect(service, IPC_SIZE)?;
        let wake = sys::eventfd().map_err(|_| CsError::NoResources)?;
        let (app_poll, app_fd) = if events.is_shm() {
            (None, events.natural_fd())
        } else {
            let poll = Poll::new().map_err(|_| CsError::NoResources)?;
            register_all(&poll, &events, &wake).map_err(|_| CsError::NoResources)?;
            let fd = poll.as_raw_fd();
            (Some(poll), fd)
        };
        Ok(Cpg {
            req: Mutex::new(requester),
            ev: Mutex::new(EvState {
                events,
                buf: None,
                partial: Reassembly::default(),
            }),
            flags,
            finalized: AtomicBool::new(false),
            wake,
            sleeper: Mutex::new(None),
            _app_poll: app_poll,
            app_fd,
            context: AtomicUsize::new(context),
            zc: Mutex::new(HashMap::new()),
        })
    }

    /// The descriptor to poll: readable while an event is pending or when
    /// the server has gone. Stable for the life of the handle.
    pub fn fd(&self) -> RawFd {
        self.app_fd
    }

    pub fn context(&self) -> usize {
        self.context.load(Ordering::Acquire)
    }

    pub fn set_context(&self, ctx: usize) {
        self.context.store(ctx, Ordering::Release)
    }

    pub fn is_finalized(&self) -> bool {
        self.finalized.load(Ordering::Acquire)
    }

    /// The server's flow-control word seen by multicasts: on when it is
    /// non-zero.
    pub fn flow_control_enabled(&self) -> bool {
        self.req.lock().flow_control() != 0
    }

    /// Marks the connection finalized, tells the server, and wakes any
    /// thread sleeping in dispatch. The connection itself closes when the
    /// last reference goes.
    pub fn finalize(&self) -> Result<(), CsError> {
        self.finalized.store(true, Ordering::Release);
        sys::eventfd_signal(&self.wake);
        let mut buf = [0u8; proto::RES_HDR];
        let result = self
            .req
            .lock()
            .request(&[&proto::header_only(proto::req::FINALIZE)], &mut buf);
        result.map(drop)
    }

    /// One synchronous request; returns the response frame length.
    fn call(&self, parts: &[&[u8]], buf: &mut [u8]) -> Result<usize, CsError> {
        self.req.lock().request(parts, buf)
    }

    /// Join and leave re-send while the server answers BUSY.
    fn call_busy_retry(&self, frame: &[u8]) -> Result<(), CsError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let mut buf = [0u8; proto::RES_HDR];
            let n = self.call(&[frame], &mut buf)?;
            let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
            match CsError::check(h.error) {
                Err(CsError::Busy) if start.elapsed() < BUSY_RETRY_LIMIT => {
                    spins += 1;
                    if spins > 16 {
                        std::thread::sleep(Duration::from_millis(1));
                    } else {
                        std::thread::yield_now();
                    }
                }
                other => return other,
            }
        }
    }

    pub fn join(&self, group: &GroupName) -> Result<(), CsError> {
        self.call_busy_retry(&proto::join(group, sys::getpid(), self.flags))
    }

    pub fn leave(&self, group: &GroupName) -> Result<(), CsError> {
        self.call_busy_retry(&proto::leave(group, sys::getpid()))
    }

    pub fn local_get(&self) -> Result<u32, CsError> {
        let mut buf = [0u8; 32];
        let n = self.call(&[&proto::header_only(proto::req::LOCAL_GET)], &mut buf)?;
        let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)?;
        proto::local_nodeid(&buf[..n]).ok_or(CsError::Library)
    }

    pub fn membership(&self, group: &GroupName) -> Result<Vec<Address>, CsError> {
        let mut buf = vec![0u8; proto::MEMBERSHIP_RES_LEN];
        let n = self.call(&[&proto::membership(group)], &mut buf)?;
        let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)?;
        proto::membership_entries(&buf[..n]).ok_or(CsError::Library)
    }

    /// Starts a server-side iteration; returns the server's token.
    pub fn iteration_initialize(&self, kind: u32, group: Option<&GroupName>) -> Result<u64, CsError> {
        let mut buf = [0u8; 32];
        let n = self.call(&[&proto::iteration_initialize(group, kind)], &mut buf)?;
        let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)?;
        proto::iteration_handle(&buf[..n]).ok_or(CsError::Library)
    }

    /// The next item of an iteration: `NoSections` at the end (the next
    /// call starts over).
    pub fn iteration_next(&self, token: u64) -> Result<(GroupName, u32, u32), CsError> {
        let mut buf = [0u8; proto::ITERATION_NEXT_RES_LEN];
        let n = self.call(&[&proto::with_handle(proto::req::ITERATION_NEXT, token)], &mut buf)?;
        let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)?;
        proto::iteration_description(&buf[..n]).ok_or(CsError::Library)
    }

    pub fn iteration_finalize(&self, token: u64) -> Result<(), CsError> {
        let mut buf = [0u8; proto::RES_HDR];
        let n = self.call(&[&proto::with_handle(proto::req::ITERATION_FINALIZE, token)], &mut buf)?;
        let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)
    }

    /// Allocates a zero-copy buffer of `size` payload bytes and registers
    /// it with the server; returns the payload address.
    pub fn zcb_alloc(&self, size: usize) -> Result<usize, CsError> {
        let buf = ZcBuffer::create(size).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => CsError::InvalidParam,
            Some(libc::ENAMETOOLONG) => CsError::NameTooLong,
            _ => CsError::NoMemory,
        })?;
        let mut resp = [0u8; proto::RES_HDR];
        let result = self.call(&[&proto::zc_alloc(buf.map_size() as u64, buf.path())], &mut resp);
        // The server opened (and normally unlinked) the file while
        // handling the request; make sure no name is left behind.
        buf.unlink();
        result?;
        buf.write_map_size();
        let addr = buf.payload_ptr() as usize;
        self.zc.lock().insert(addr, buf);
        Ok(addr)
    }

    /// Releases a buffer from `zcb_alloc`; unknown addresses are refused.
    pub fn zcb_free(&self, addr: usize) -> Result<(), CsError> {
        let buf = self.zc.lock().remove(&addr).ok_or(CsError::InvalidParam)?;
        let mut resp = [0u8; proto::RES_HDR];
        let frame = proto::zc_free(buf.map_size() as u64, buf.server_address());
        self.call(&[&frame], &mut resp).map(drop)
    }

    /// Multicasts `len` bytes of a zero-copy buffer, read in place by the
    /// server.
    pub fn zcb_mcast(&self, guarantee: u32, addr: usize, len: usize) -> Result<(), CsError> {
        if len > IPC_SIZE as usize {
            return Err(CsError::TooBig);
        }
        let zc = self.zc.lock();
        let buf = zc.get(&addr).ok_or(CsError::InvalidParam)?;
        if len > buf.capacity() {
            return Err(CsError::InvalidParam);
        }
        if len > MAX_ZC_MSG {
            return Err(CsError::TooBig);
        }
        buf.write_mcast_header(&proto::mcast_header(guarantee, len));
        let frame = proto::with_handle(proto::req::ZC_EXECUTE, buf.server_address());
        let mut resp = [0u8; proto::RES_HDR];
        let n = self.call(&[&frame], &mut resp)?;
        let h = proto::res_header(&resp[..n]).ok_or(CsError::Library)?;
        CsError::check(h.error)
    }

    /// Multicasts the concatenation of `parts` to the joined group;
    /// messages above the atomic size are fragmented exactly as corosync's
    /// library does, so that its receivers reassemble them.
    pub fn mcast(&self, guarantee: u32, parts: &[&[u8]]) -> Result<(), CsError> {
        let total = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(CsError::TooBig)?;
        // The request lock is held for the whole message: the fragments of
        // two threads' messages on one handle must not interleave (the
        // receivers reassemble per sending process), and a send that comes
        // after `finalize` has told the server must fail, not vanish.
        let mut req = self.req.lock();
        if self.is_finalized() {
            return Err(CsError::BadHandle);
        }
        if total <= MAX_ATOMIC_MSG {
            let header = proto::mcast_header(guarantee, total);
            let mut frame: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
            frame.push(&header);
            frame.extend(parts.iter().filter(|p| !p.is_empty()));
            return req.send(&frame, 2);
        }
        if total > u32::MAX as usize {
            return Err(CsError::TooBig);
        }
        let mut sent = 0usize;
        for part in parts {
            for chunk in part.chunks(MAX_ATOMIC_MSG) {
                let kind = if sent == 0 {
                    proto::FRAG_FIRST
                } else if sent + chunk.len() == total {
                    proto::FRAG_LAST
                } else {
                    proto::FRAG_CONTINUED
                };
                send_fragment(&mut req, guarantee, total, kind, chunk)?;
                sent += chunk.len();
            }
        }
        Ok(())
    }

    /// Dispatches events to `sink` as `mode` says. The sink runs with no
    /// lock held.
    pub fn dispatch(&self, mode: DispatchMode, mut sink: impl FnMut(Callback<'_>)) -> Result<(), CsError> {
        loop {
            match self.dispatch_step(mode, &mut sink)? {
                Step::Done => return Ok(()),
                Step::Sleep => self.sleep()?,
            }
        }
    }

    /// Dispatches what is pending without sleeping: `Step::Sleep` when the
    /// mode wants to wait for more. Callers that must stay cancellable
    /// (the C door) call [`Cpg::sleep`] themselves, outside any
    /// panic-catching frame.
    pub fn dispatch_step(&self, mode: DispatchMode, sink: &mut dyn FnMut(Callback<'_>)) -> Result<Step, CsError> {
        let mut since_settle = 0usize;
        loop {
            if self.is_finalized() {
                return Err(CsError::BadHandle);
            }
            let (got, mut buf, prepared) = {
                let mut ev = self.ev.lock();
                let mut buf = match ev.buf.take() {
                    Some(b) => b,
                    None => AlignedBuf::try_new(IPC_SIZE as usize)?,
                };
                let got = ev.events.try_recv(buf.as_mut());
                if matches!(got, Ok(Some(_))) {
                    since_settle += 1;
                    if since_settle >= SETTLE_EVERY || matches!(mode, DispatchMode::One | DispatchMode::OneNonblocking)
                    {
                        since_settle = 0;
                        if let Err(e) = ev.events.settle(true) {
                            ev.buf.get_or_insert(buf);
                            return Err(e);
                        }
                    }
                }
                // Fragments are reassembled while the event lock is still
                // held, so that concurrent dispatchers add them in ring order.
                let prepared = match &got {
                    Ok(Some(n)) => Some(prepare(&mut ev.partial, &buf.as_mut()[..*n])),
                    _ => None,
                };
                (got, buf, prepared)
            };
            let result = match (got, prepared) {
                (Ok(Some(n)), Some(p)) => p
                    .and_then(|p| self.deliver(&mut buf.as_mut()[..n], p, sink))
                    .map(|()| true),
                (Ok(_), _) => Ok(false),
                (Err(e), _) => Err(e),
            };
            self.ev.lock().buf.get_or_insert(buf);
            let delivered = match result {
                Ok(_) if self.is_finalized() => return Err(CsError::BadHandle),
                Ok(d) => d,
                Err(e) => return Err(e),
            };
            if delivered {
                match mode {
                    DispatchMode::One | DispatchMode::OneNonblocking => return Ok(Step::Done),
                    DispatchMode::All | DispatchMode::Blocking => continue,
                }
            }
            // Nothing pending.
            return match mode {
                DispatchMode::All => Ok(Step::Done),
                DispatchMode::OneNonblocking => Err(CsError::TryAgain),
                DispatchMode::One | DispatchMode::Blocking => Ok(Step::Sleep),
            };
        }
    }

    /// Runs the callback for one event frame, prepared by [`prepare`].
    fn deliver(&self, frame: &mut [u8], prepared: Prepared, sink: &mut dyn FnMut(Callback<'_>)) -> Result<(), CsError> {
        let event = match prepared {
            Prepared::Event(e) => e,
            Prepared::Incomplete => return Ok(()),
            Prepared::Whole {
                group,
                nodeid,
                pid,
                mut data,
            } => {
                if data.as_ptr().align_offset(8) == 0 {
                    sink(Callback::Deliver {
                        group: &group,
                        nodeid,
                        pid,
                        msg: &mut data,
                    });
                } else {
                    // Keep the C library's 8-byte alignment promise.
                    let mut aligned = AlignedBuf::try_new(data.len())?;
                    aligned.as_mut().copy_from_slice(&data);
                    drop(data);
                    sink(Callback::Deliver {
                        group: &group,
                        nodeid,
                        pid,
                        msg: aligned.as_mut(),
                    });
                }
                return Ok(());
            }
        };
        match event {
            Event::Deliver {
                group,
                nodeid,
                pid,
                payload,
            } => {
                sink(Callback::Deliver {
                    group: &group,
                    nodeid,
                    pid,
                    msg: &mut frame[payload],
                });
            }
            Event::Confchg {
                group,
                members,
                left,
                joined,
            } => {
                sink(Callback::Confchg {
                    group: &group,
                    members: &members,
                    left: &left,
                    joined: &joined,
                });
            }
            Event::TotemConfchg { ring_id, members } => {
                sink(Callback::TotemConfchg {
                    ring_id,
                    members: &members,
                });
            }
            Event::PartialDeliver { .. } | Event::Unknown(_) => return Err(CsError::Library),
        }
        Ok(())
    }

    /// Sleeps until an event may be pending, the server goes away, or the
    /// handle is finalized. Holds no lock while asleep; the wait is a
    /// thread-cancellation point.
    pub fn sleep(&self) -> Result<(), CsError> {
        self.ev.lock().events.settle(true)?;
        let lent = self.sleeper.lock().take();
        let mut poll = match lent {
            Some(p) => p,
            None => {
                let p = Poll::new().map_err(|_| CsError::NoResources)?;
                let ev = self.ev.lock();
                register_all(&p, &ev.events, &self.wake).map_err(|_| CsError::NoResources)?;
                p
            }
        };
        let mut events = mio::Events::with_capacity(4);
        let result = poll.poll(&mut events, None);
        *self.sleeper.lock() = Some(poll);
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(CsError::Library),
        }
    }
}

/// An event frame after the steps that must run in ring order.
enum Prepared {
    Event(Event),
    /// The last fragment of a message: the whole message.
    Whole {
        group: GroupName,
        nodeid: u32,
        pid: u32,
        data: Vec<u8>,
    },
    /// A fragment that did not complete a message (no callback).
    Incomplete,
}

/// Decodes an event and feeds the reassembly; runs under the event lock.
/// A frame we cannot parse is consumed, as the C library does with unknown
/// ids, and reported as `Library`.
fn prepare(partial: &mut Reassembly, frame: &[u8]) -> Result<Prepared, CsError> {
    let event = proto::event(frame).map_err(|_| CsError::Library)?;
    Ok(match event {
        Event::PartialDeliver {
            group,
            msglen,
            nodeid,
            pid,
            kind,
            payload,
        } => match partial.add(nodeid, pid, kind, msglen, &frame[payload]) {
            Some(data) => Prepared::Whole {
                group,
                nodeid,
                pid,
                data,
            },
            None => Prepared::Incomplete,
        },
        Event::Confchg { ref left, .. } => {
            for a in left {
                partial.forget(a.nodeid, a.pid);
            }
            Prepared::Event(event)
        }
        Event::Unknown(_) => return Err(CsError::Library),
        other => Prepared::Event(other),
    })
}

/// One fragment of a large multicast: a synchronous PARTIAL_MCAST, retried
/// under flow control as the C library does (the caller holds the lock).
fn send_fragment(req: &mut Requester, guarantee: u32, total: usize, kind: u32, chunk: &[u8]) -> Result<(), CsError> {
    let header = proto::partial_header(guarantee, total, chunk.len(), kind);
    let mut buf = [0u8; proto::RES_HDR];
    let mut tries = 0;
    loop {
        match req.send(&[&header, chunk], 2).and_then(|()| req.recv(&mut buf)) {
            Ok(n) => {
                let h = proto::res_header(&buf[..n]).ok_or(CsError::Library)?;
                return CsError::check(h.error);
            }
            Err(CsError::TryAgain) if tries < FRAGMENT_RETRIES => {
                tries += 1;
                std::thread::sleep(FRAGMENT_RETRY_SLEEP);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Registers the descriptors a connection's pollers watch.
fn register_all(poll: &Poll, events: &Events, wake: &OwnedFd) -> std::io::Result<()> {
    let reg = poll.registry();
    for (i, fd) in events.wait_fds().iter().enumerate() {
        let token = if i == 0 { TOKEN_EVENTS } else { TOKEN_SETUP };
        reg.register(&mut SourceFd(fd), token, Interest::READABLE)?;
    }
    reg.register(&mut SourceFd(&wake.as_raw_fd()), TOKEN_WAKE, Interest::READABLE)
}

impl Drop for Cpg {
    fn drop(&mut self) {
        // Wake anyone still asleep on this connection's poller.
        sys::eventfd_signal(&self.wake);
    }
}

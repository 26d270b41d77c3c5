//! EVS (corosync 1.x's Extended Virtual Synchrony service) mapped onto
//! CPG, so that libevs programs run on corosync 3 and on cpgd.
//!
//! One CPG connection per process, the *hub*, joins the one CPG group of
//! the wire contract ([`wire`], docs/evs-wire.md). Every EVS handle of the
//! process shares it and keeps its own joined keys, event queue and
//! descriptor. Whoever needs events *pumps* the hub: the CPG events are
//! decoded, filtered against each handle's joined keys (one copy per
//! handle, however many of its keys match) and queued; application
//! callbacks only ever run from a handle's own queue, with no lock held.
//!
//! Node membership and the ring id come from CPG's totem confchg
//! (model v1, initial one requested), never from CPG's process-level
//! confchg: EVS reports nodes, whether or not they run an EVS program.
#![forbid(unsafe_code)]

pub mod wire;

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cpg::{AlignedBuf, Callback, Cpg, DispatchMode, Step, FLAG_INITIAL_TOTEM_CONF, MAX_ATOMIC_MSG};
use crate::error::CsError;
use crate::ipc::sys;
use crate::proto::RingId;
use wire::{Key, KEY_LEN};

/// Groups one `evs_join` may name (corosync 1.4's limit).
pub const MAX_JOIN: usize = 50;
/// Largest encoded message: header, keys and payload in one CPG message.
pub const MAX_MESSAGE: usize = MAX_ATOMIC_MSG;
/// How long `evs_initialize` waits for the join and the first totem
/// confchg before answering `CS_ERR_TRY_AGAIN`.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
const JOIN_RETRY_SLEEP: Duration = Duration::from_millis(10);
/// `CPG_TYPE_AGREED`: every EVS guarantee is sent agreed, as 1.4 did.
const AGREED: u32 = 2;

/// An item of a handle's queue.
enum Event {
    Deliver {
        nodeid: u32,
        msg: Arc<AlignedBuf>,
    },
    Confchg {
        members: Vec<u32>,
        left: Vec<u32>,
        joined: Vec<u32>,
        ring: RingId,
    },
}

/// What dispatch hands to the application.
pub enum EvsCallback<'a> {
    Deliver {
        nodeid: u32,
        msg: &'a [u8],
    },
    Confchg {
        members: &'a [u32],
        left: &'a [u32],
        joined: &'a [u32],
        ring: RingId,
    },
}

/// The last node membership the hub saw.
struct View {
    members: Vec<u32>,
    ring: RingId,
    known: bool,
}

struct Queue {
    /// Joined keys in join order, duplicates kept (1.4's multiset).
    joined: Vec<Key>,
    events: VecDeque<Event>,
}

/// One EVS handle's share of the hub.
struct Member {
    queue: Mutex<Queue>,
    /// Readable while `queue.events` is non-empty, or for good once the
    /// handle is finalized or its hub has died.
    notify: OwnedFd,
    finalized: AtomicBool,
}

impl Member {
    fn push(&self, q: &mut Queue, event: Event) {
        if q.events.is_empty() {
            sys::eventfd_signal(&self.notify);
        }
        q.events.push_back(event);
    }
}

/// The process's CPG connection in the EVS group.
struct Hub {
    cpg: Cpg,
    /// The process that connected it: a child after fork() inherits the
    /// memory but must not share the connection, so it opens its own.
    pid: u32,
    nodeid: u32,
    dead: AtomicBool,
    /// Held while pumping: one pump at a time, and membership changes
    /// are queued in the order the server sent them.
    view: Mutex<View>,
    members: Mutex<Vec<Arc<Member>>>,
}

/// The live hub, if any. Handles of a hub that died keep theirs; the next
/// `evs_initialize` builds a new one. Lock order: HUB, then a hub's
/// `view`, then its `members`, then a member's `queue`.
static HUB: Mutex<Option<Arc<Hub>>> = Mutex::new(None);

/// Connection-level failures of the hub's CPG calls.
fn lost(e: CsError) -> CsError {
    match e {
        CsError::NoMemory | CsError::TryAgain => e,
        _ => CsError::Library,
    }
}

impl Hub {
    fn connect() -> Result<Hub, CsError> {
        let cpg = Cpg::connect(FLAG_INITIAL_TOTEM_CONF, 0).map_err(|e| match e {
            // 1.4 answered TRY_AGAIN when the daemon was not there.
            CsError::Library | CsError::NotExist | CsError::TryAgain => CsError::TryAgain,
            CsError::Access | CsError::Security => CsError::Security,
            other => other,
        })?;
        let nodeid = cpg.local_get().map_err(lost)?;
        let hub = Hub {
            cpg,
            pid: sys::getpid(),
            nodeid,
            dead: AtomicBool::new(false),
            view: Mutex::new(View {
                members: Vec::new(),
                ring: RingId { nodeid: 0, seq: 0 },
                known: false,
            }),
            members: Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + CONNECT_LIMIT;
        let group = wire::group_name();
        loop {
            match hub.cpg.join(&group) {
                Ok(()) => break,
                Err(CsError::TryAgain) if Instant::now() < deadline => std::thread::sleep(JOIN_RETRY_SLEEP),
                Err(CsError::TryAgain) => return Err(CsError::TryAgain),
                // One hub per process: the server refusing our join means
                // someone else in this process holds the group.
                Err(CsError::Exist) => return Err(CsError::Library),
                Err(e) => return Err(lost(e)),
            }
        }
        // The first totem confchg follows our join before any message.
        loop {
            hub.pump()?;
            if hub.view.lock().known {
                return Ok(hub);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CsError::TryAgain);
            }
            let mut p = [libc::pollfd {
                fd: hub.cpg.fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            sys::poll(&mut p, Some(left)).map_err(|_| CsError::Library)?;
        }
    }

    fn check(&self) -> Result<(), CsError> {
        if self.dead.load(Ordering::Acquire) {
            Err(CsError::Library)
        } else {
            Ok(())
        }
    }

    /// Marks the hub dead and wakes every handle's sleeper.
    fn die(&self) {
        self.dead.store(true, Ordering::Release);
        for m in self.members.lock().iter() {
            sys::eventfd_signal(&m.notify);
        }
    }

    /// Moves everything the server has sent into the handles' queues,
    /// without blocking.
    fn pump(&self) -> Result<(), CsError> {
        self.check()?;
        let mut view = self.view.lock();
        let mut failure = None;
        let result = self.cpg.dispatch_step(DispatchMode::All, &mut |cb| {
            if failure.is_none() {
                failure = self.route(&mut view, cb).err();
            }
        });
        drop(view);
        match (result, failure) {
            (Ok(_), None) => Ok(()),
            // A message we could not keep is a loss: report it to every
            // handle rather than carry on without it.
            (_, Some(e)) | (Err(e), None) => {
                self.die();
                Err(if e == CsError::NoMemory { e } else { CsError::Library })
            }
        }
    }

    /// Files one CPG event.
    fn route(&self, view: &mut View, cb: Callback<'_>) -> Result<(), CsError> {
        match cb {
            Callback::Deliver { nodeid, msg, .. } => {
                let Some(parsed) = wire::parse(msg) else {
                    return Ok(());
                };
                let payload = &msg[parsed.payload_at..];
                let mut shared: Option<Arc<AlignedBuf>> = None;
                for m in self.members.lock().iter() {
                    let mut q = m.queue.lock();
                    if !parsed.keys().any(|k| q.joined.iter().any(|j| j[..] == *k)) {
                        continue;
                    }
                    let buf = match &shared {
                        Some(b) => b.clone(),
                        None => {
                            let mut b = AlignedBuf::try_new(payload.len())?;
                            b.as_mut().copy_from_slice(payload);
                            shared.insert(Arc::new(b)).clone()
                        }
                    };
                    m.push(&mut q, Event::Deliver { nodeid, msg: buf });
                }
            }
            Callback::TotemConfchg { ring_id, members } => {
                if !view.known {
                    view.members = members.to_vec();
                    view.ring = ring_id;
                    view.known = true;
                    return Ok(());
                }
                if ring_id == view.ring && members == view.members.as_slice() {
                    return Ok(());
                }
                // 1.4 reported a transitional configuration (who came
                // along from the old ring) and then the regular one.
                let Transition { kept, left, joined } = transition(&view.members, members);
                for m in self.members.lock().iter() {
                    let mut q = m.queue.lock();
                    m.push(
                        &mut q,
                        Event::Confchg {
                            members: kept.clone(),
                            left: left.clone(),
                            joined: Vec::new(),
                            ring: ring_id,
                        },
                    );
                    m.push(
                        &mut q,
                        Event::Confchg {
                            members: members.to_vec(),
                            left: Vec::new(),
                            joined: joined.clone(),
                            ring: ring_id,
                        },
                    );
                }
                view.members = members.to_vec();
                view.ring = ring_id;
            }
            // Process membership of the EVS group: not EVS's business.
            Callback::Confchg { .. } => {}
        }
        Ok(())
    }
}

/// One EVS handle.
pub struct Evs {
    hub: Arc<Hub>,
    member: Arc<Member>,
    /// Level-triggered epoll over the member's eventfd and the hub's CPG
    /// descriptor: what `evs_fd_get` hands out.
    poll: OwnedFd,
    context: AtomicUsize,
}

impl Evs {
    /// Opens a handle on the process's hub (connecting it first if
    /// needed) and queues its startup configuration change.
    pub fn initialize() -> Result<Evs, CsError> {
        let notify = sys::eventfd().map_err(|_| CsError::NoResources)?;
        let mut global = HUB.lock();
        let hub = match &*global {
            Some(h) if !h.dead.load(Ordering::Acquire) && h.pid == sys::getpid() => h.clone(),
            _ => {
                let h = Arc::new(Hub::connect()?);
                *global = Some(h.clone());
                h
            }
        };
        let poll = match sys::epoll_level(&[notify.as_raw_fd(), hub.cpg.fd()]) {
            Ok(p) => p,
            Err(_) => {
                release_if_unused(&mut global, &hub);
                return Err(CsError::NoResources);
            }
        };
        let member = Arc::new(Member {
            queue: Mutex::new(Queue {
                joined: Vec::new(),
                events: VecDeque::new(),
            }),
            notify,
            finalized: AtomicBool::new(false),
        });
        {
            // Under the pump lock, so no change slips in before it.
            let view = hub.view.lock();
            let mut q = member.queue.lock();
            member.push(
                &mut q,
                Event::Confchg {
                    members: view.members.clone(),
                    left: Vec::new(),
                    joined: view.members.clone(),
                    ring: view.ring,
                },
            );
            drop(q);
            hub.members.lock().push(member.clone());
        }
        Ok(Evs {
            hub,
            member,
            poll,
            context: AtomicUsize::new(0),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    pub fn context(&self) -> usize {
        self.context.load(Ordering::Acquire)
    }

    pub fn set_context(&self, ctx: usize) {
        self.context.store(ctx, Ordering::Release)
    }

    fn live(&self) -> Result<(), CsError> {
        if self.member.finalized.load(Ordering::Acquire) {
            return Err(CsError::BadHandle);
        }
        self.hub.check()
    }

    /// Closes the handle: its queue is dropped, a thread blocked in its
    /// dispatch returns, and the hub goes with its last handle.
    pub fn finalize(&self) -> Result<(), CsError> {
        if self.member.finalized.swap(true, Ordering::AcqRel) {
            return Err(CsError::BadHandle);
        }
        sys::eventfd_signal(&self.member.notify);
        self.member.queue.lock().events.clear();
        let mut global = HUB.lock();
        self.hub.members.lock().retain(|m| !Arc::ptr_eq(m, &self.member));
        release_if_unused(&mut global, &self.hub);
        Ok(())
    }

    /// Adds keys to the joined list (duplicates kept). What the server
    /// has already sent is filed under the old list first.
    pub fn join(&self, keys: &[u8]) -> Result<(), CsError> {
        self.live()?;
        if keys.len() / KEY_LEN > MAX_JOIN {
            return Err(CsError::TooManyGroups);
        }
        self.hub.pump()?;
        let mut q = self.member.queue.lock();
        for k in keys.chunks_exact(KEY_LEN) {
            q.joined.push(k.try_into().map_err(|_| CsError::InvalidParam)?);
        }
        Ok(())
    }

    /// Removes one entry per listed key, in order; stops with
    /// `CS_ERR_NOT_EXIST` at the first key not joined (the earlier ones
    /// stay removed), as 1.4 did.
    pub fn leave(&self, keys: &[u8]) -> Result<(), CsError> {
        self.live()?;
        self.hub.pump()?;
        let mut q = self.member.queue.lock();
        for k in keys.chunks_exact(KEY_LEN) {
            match q.joined.iter().position(|j| j[..] == *k) {
                Some(i) => {
                    q.joined.remove(i);
                }
                None => return Err(CsError::NotExist),
            }
        }
        Ok(())
    }

    /// Multicasts to the groups this handle has joined (each once).
    pub fn mcast_joined(&self, guarantee: u32, parts: &[&[u8]]) -> Result<(), CsError> {
        self.live()?;
        let mut keys: Vec<u8> = Vec::new();
        {
            let q = self.member.queue.lock();
            for (i, k) in q.joined.iter().enumerate() {
                if !q.joined[..i].contains(k) {
                    keys.extend_from_slice(k);
                }
            }
        }
        self.send(guarantee, wire::FLAG_JOINED, &keys, parts)
    }

    /// Multicasts to `keys` (32 bytes each); no join needed.
    pub fn mcast_groups(&self, guarantee: u32, keys: &[u8], parts: &[&[u8]]) -> Result<(), CsError> {
        self.live()?;
        self.send(guarantee, 0, keys, parts)
    }

    fn send(&self, guarantee: u32, flags: u16, keys: &[u8], parts: &[&[u8]]) -> Result<(), CsError> {
        let payload = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(CsError::InvalidParam)?;
        let total = wire::HEADER_LEN
            .checked_add(keys.len())
            .and_then(|n| n.checked_add(payload))
            .ok_or(CsError::InvalidParam)?;
        if total > MAX_MESSAGE {
            return Err(CsError::InvalidParam);
        }
        if keys.is_empty() {
            // Nobody could receive it: 1.4 sent it to be dropped everywhere.
            return Ok(());
        }
        let n = u32::try_from(keys.len() / KEY_LEN).map_err(|_| CsError::InvalidParam)?;
        let header = wire::header(n, guarantee, flags);
        let mut frame: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
        frame.push(&header);
        frame.push(keys);
        frame.extend(parts.iter().copied());
        match self.hub.cpg.mcast(AGREED, &frame) {
            Ok(()) => Ok(()),
            Err(CsError::TryAgain) => Err(CsError::TryAgain),
            Err(CsError::NoMemory) => Err(CsError::NoMemory),
            Err(CsError::TooBig) => Err(CsError::InvalidParam),
            Err(_) => {
                self.hub.die();
                Err(CsError::Library)
            }
        }
    }

    /// This node's id and the node membership of the last configuration
    /// change the hub has seen.
    pub fn membership(&self) -> Result<(u32, Vec<u32>), CsError> {
        self.live()?;
        self.hub.pump()?;
        let members = self.hub.view.lock().members.clone();
        Ok((self.hub.nodeid, members))
    }

    fn pop(&self) -> Option<Event> {
        let mut q = self.member.queue.lock();
        let event = q.events.pop_front();
        if q.events.is_empty()
            && !self.member.finalized.load(Ordering::Acquire)
            && !self.hub.dead.load(Ordering::Acquire)
        {
            sys::eventfd_drain(&self.member.notify);
        }
        event
    }

    /// Serves this handle's queue as `mode` says, pumping the hub when it
    /// runs dry; `Step::Sleep` when the mode wants to wait for more (the
    /// caller then calls [`Evs::sleep`]). The sink runs with no lock held
    /// and may finalize the handle: dispatch then returns `Ok`.
    pub fn dispatch_step(&self, mode: DispatchMode, sink: &mut dyn FnMut(EvsCallback<'_>)) -> Result<Step, CsError> {
        loop {
            if self.member.finalized.load(Ordering::Acquire) {
                return Ok(Step::Done);
            }
            let event = match self.pop() {
                Some(e) => Some(e),
                None => {
                    self.hub.pump()?;
                    self.pop()
                }
            };
            let Some(event) = event else {
                return match mode {
                    DispatchMode::All => Ok(Step::Done),
                    DispatchMode::OneNonblocking => Err(CsError::TryAgain),
                    DispatchMode::One | DispatchMode::Blocking => Ok(Step::Sleep),
                };
            };
            match &event {
                Event::Deliver { nodeid, msg } => sink(EvsCallback::Deliver {
                    nodeid: *nodeid,
                    msg: msg.as_slice(),
                }),
                Event::Confchg {
                    members,
                    left,
                    joined,
                    ring,
                } => sink(EvsCallback::Confchg {
                    members,
                    left,
                    joined,
                    ring: *ring,
                }),
            }
            if matches!(mode, DispatchMode::One | DispatchMode::OneNonblocking) {
                return Ok(Step::Done);
            }
        }
    }

    /// Waits until this handle may have an event, the hub has traffic or
    /// has died, or the handle is finalized. No lock is held while
    /// asleep; the wait is a thread-cancellation point.
    pub fn sleep(&self) -> Result<(), CsError> {
        let mut p = [libc::pollfd {
            fd: self.poll.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        sys::poll(&mut p, None).map_err(|_| CsError::Library)?;
        Ok(())
    }
}

/// The node lists of the transitional and regular configuration changes
/// that take membership `old` to `new`.
#[derive(Debug, PartialEq, Eq)]
struct Transition {
    /// Members of `old` still in `new`, in `old`'s order.
    kept: Vec<u32>,
    /// Members of `old` not in `new`, in `old`'s order.
    left: Vec<u32>,
    /// Members of `new` not in `old`, in `new`'s order.
    joined: Vec<u32>,
}

fn transition(old: &[u32], new: &[u32]) -> Transition {
    Transition {
        kept: old.iter().copied().filter(|x| new.contains(x)).collect(),
        left: old.iter().copied().filter(|x| !new.contains(x)).collect(),
        joined: new.iter().copied().filter(|x| !old.contains(x)).collect(),
    }
}

/// Closes `hub` when no handle uses it any more (called under `HUB`).
fn release_if_unused(global: &mut Option<Arc<Hub>>, hub: &Arc<Hub>) {
    if !hub.members.lock().is_empty() {
        return;
    }
    if global.as_ref().is_some_and(|h| Arc::ptr_eq(h, hub)) {
        *global = None;
    }
    // A hub inherited through fork() is the parent's to close.
    if hub.pid == sys::getpid() && !hub.dead.swap(true, Ordering::AcqRel) {
        let _ = hub.cpg.finalize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kept: &[u32], left: &[u32], joined: &[u32]) -> Transition {
        Transition {
            kept: kept.to_vec(),
            left: left.to_vec(),
            joined: joined.to_vec(),
        }
    }

    #[test]
    fn node_leaves_and_returns() {
        assert_eq!(transition(&[1, 2, 3], &[1, 3]), t(&[1, 3], &[2], &[]));
        assert_eq!(transition(&[1, 3], &[1, 2, 3]), t(&[1, 3], &[], &[2]));
    }

    #[test]
    fn merge_and_split_keep_each_side_order() {
        assert_eq!(transition(&[3, 1], &[1, 2, 3, 4]), t(&[3, 1], &[], &[2, 4]));
        assert_eq!(transition(&[1, 2, 3, 4], &[4, 2]), t(&[2, 4], &[1, 3], &[]));
    }

    #[test]
    fn same_members_new_ring() {
        assert_eq!(transition(&[1, 2], &[1, 2]), t(&[1, 2], &[], &[]));
        assert_eq!(transition(&[], &[7]), t(&[], &[], &[7]));
    }
}

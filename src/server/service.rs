//! The CPG service of a single node: connections, the membership list,
//! and the totally ordered stream of join / leave / message records.
//!
//! No I/O here. The event loop hands in request frames and gets back a
//! reply (or none) plus the events to write, per connection, in order.
//! Semantics follow corosync 3.1.7's CPG service on one node (see
//! docs/server.md for the deliberate differences).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::zc::ZcTable;
use crate::error::{CsError, CS_OK};
use crate::ipc::handshake::MSG_DISCONNECT;
use crate::proto::{self, req, res, Address, GroupName, Request, RingId};

/// Identifies one IPC connection; larger ids are newer connections.
pub type ConnId = u64;

/// Hashes ids the server hands out itself (connection ids, buffer and
/// iteration tokens): one multiplication instead of SipHash, which was a
/// tenth of the server's instructions per message. The keys are not chosen
/// by clients, so there is no flooding to defend against.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

/// A map keyed by server-made ids.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Largest event ever produced: the size of libcpg's receive buffer.
pub const EVENT_MAX: usize = 1 << 20;

/// An event frame, shared by all its recipients.
pub type Frame = Arc<Vec<u8>>;
/// Iteration instances one connection may hold.
const MAX_ITERATIONS: usize = 1024;
/// Snapshot entries (about 140 bytes each) one connection may hold across
/// its iterations; one iteration of any size is always allowed.
const MAX_ITERATION_ITEMS: usize = 16384;

const ITERATION_NAME_ONLY: u32 = 1;
const ITERATION_ONE_GROUP: u32 = 2;
const ITERATION_ALL: u32 = 3;

/// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`.
const FLAG_INITIAL_TOTEM_CONF: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unjoined,
    JoinStarted,
    JoinCompleted,
    LeaveStarted,
}

/// The credentials the client connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

struct Iteration {
    items: Vec<(GroupName, u32, u32)>,
    cursor: usize,
}

/// A fragmented message being received from one connection.
#[derive(Clone, Copy)]
struct Assembly {
    msglen: u64,
    got: u64,
}

struct Conn {
    peer: Peer,
    state: State,
    group: GroupName,
    pid: u32,
    flags: u32,
    /// Sent FINALIZE: no more events, not counted by JOIN's checks.
    finalized: bool,
    totem_sent: bool,
    transitions: u64,
    initial_transitions: u64,
    assembly: Option<Assembly>,
    iterations: IdMap<Iteration>,
    zc: ZcTable,
}

impl Conn {
    fn joined(&self) -> bool {
        matches!(self.state, State::JoinStarted | State::JoinCompleted)
    }

    /// Receives the group's events (corosync: JOIN_COMPLETED or LEAVE_STARTED).
    fn receives(&self, group: &GroupName) -> bool {
        !self.finalized && matches!(self.state, State::JoinCompleted | State::LeaveStarted) && self.group == *group
    }
}

/// One entry of the membership list.
#[derive(Clone, Copy)]
struct Member {
    nodeid: u32,
    pid: u32,
    group: GroupName,
}

/// A record of the ordered stream.
enum Record {
    Join {
        group: GroupName,
        pid: u32,
    },
    Leave {
        group: GroupName,
        pid: u32,
        reason: u32,
    },
    /// A DELIVER or PARTIAL_DELIVER event, ready to send.
    Deliver {
        group: GroupName,
        frame: Frame,
    },
}

/// How a request is admitted while the server is congested (see flow.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not flow-controlled.
    Always,
    /// Adds to the ordered stream: left in the request ring (the sender's
    /// later requests wait behind it) until the congestion ends.
    HoldWhenCongested,
    /// Adds to the ordered stream and its sender waits for the reply: the
    /// generic CS_ERR_TRY_AGAIN reply (id 0), as corosync gives when its
    /// queue has no room.
    RefuseWhenCongested,
}

/// What to do after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    NoReply,
    /// The client asked to disconnect (id -3 or an empty request).
    Disconnect,
}

/// The whole service state.
pub struct Service {
    nodeid: u32,
    ring_id: RingId,
    conns: BTreeMap<ConnId, Conn>,
    /// Sorted by (nodeid, pid); equal keys in insertion order.
    members: Vec<Member>,
    records: VecDeque<Record>,
    next_token: u64,
    /// Events produced, in order, with their recipient.
    events: Vec<(ConnId, Frame)>,
}

fn reply_error(id: i32, err: Result<(), CsError>) -> Outcome {
    Outcome::Reply(proto::error_response(id, code(err)).to_vec())
}

fn code(r: Result<(), CsError>) -> i32 {
    match r {
        Ok(()) => CS_OK,
        Err(e) => e as i32,
    }
}

/// A ring sequence number for a server starting now: milliseconds since
/// the epoch, so that it does not decrease across restarts (corosync keeps
/// its ring id in a state file; cpgd has none) unless the clock goes back.
pub fn ring_seq_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| (d.as_millis() as u64).max(1))
}

impl Service {
    /// A service for node `nodeid` whose ring id is `{nodeid, ring_seq}`.
    pub fn new(nodeid: u32, ring_seq: u64) -> Service {
        Service {
            nodeid,
            ring_id: RingId { nodeid, seq: ring_seq },
            conns: BTreeMap::new(),
            members: Vec::new(),
            records: VecDeque::new(),
            next_token: 1,
            events: Vec::new(),
        }
    }

    pub fn nodeid(&self) -> u32 {
        self.nodeid
    }

    /// Registers a new connection (UNJOINED).
    pub fn connect(&mut self, id: ConnId, peer: Peer) {
        self.conns.insert(
            id,
            Conn {
                peer,
                state: State::Unjoined,
                group: GroupName::new(b"").expect("empty name"),
                pid: 0,
                flags: 0,
                finalized: false,
                totem_sent: false,
                transitions: 0,
                initial_transitions: 0,
                assembly: None,
                iterations: IdMap::default(),
                zc: ZcTable::default(),
            },
        );
    }

    /// The connection is gone (any reason): a joined process leaves with
    /// reason PROCDOWN; its iterations and zero-copy buffers are released.
    pub fn disconnect(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        // corosync skips this for a group name of length 0 (stale member)
        // and for LEAVE_STARTED; both are fixed (see docs/server.md).
        if conn.joined() || conn.state == State::LeaveStarted {
            self.records.push_back(Record::Leave {
                group: conn.group,
                pid: conn.pid,
                reason: proto::REASON_PROCDOWN,
            });
        }
        self.apply();
    }

    /// Whether connection `id` is in the middle of a fragmented message
    /// (PARTIAL_MCAST FIRST accepted, LAST not yet).
    pub fn sending_fragments(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.assembly.is_some())
    }

    /// Takes the events produced so far, in order.
    pub fn take_events(&mut self) -> Vec<(ConnId, Frame)> {
        std::mem::take(&mut self.events)
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Swaps the events produced so far (in order) with `out`, which
    /// should be empty: lets the caller reuse one buffer.
    pub fn swap_events(&mut self, out: &mut Vec<(ConnId, Frame)>) {
        std::mem::swap(&mut self.events, out);
    }

    /// How a request is admitted while the server is congested.
    pub fn admission(frame: &[u8]) -> Admission {
        if frame.len() < 4 {
            return Admission::Always;
        }
        match i32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) {
            req::MCAST | req::PARTIAL_MCAST => Admission::HoldWhenCongested,
            req::ZC_EXECUTE => Admission::RefuseWhenCongested,
            _ => Admission::Always,
        }
    }

    /// Members of `group`, in membership order (reason 0).
    fn group_members(&self, group: &GroupName) -> Vec<Address> {
        self.members
            .iter()
            .filter(|m| m.group == *group)
            .map(|m| Address {
                nodeid: m.nodeid,
                pid: m.pid,
                reason: proto::REASON_UNDEFINED,
            })
            .collect()
    }

    fn has_member(&self, nodeid: u32, pid: u32, group: &GroupName) -> bool {
        self.members
            .iter()
            .any(|m| m.nodeid == nodeid && m.pid == pid && m.group == *group)
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        0x4350_4700_0000_0000 | self.next_token
    }

    /// Handles one request frame from connection `id`.
    pub fn handle(&mut self, id: ConnId, frame: &[u8]) -> Outcome {
        if frame.is_empty() {
            return Outcome::Disconnect;
        }
        if !self.conns.contains_key(&id) {
            return Outcome::NoReply;
        }
        let outcome = match proto::request(frame) {
            Request::Unknown(MSG_DISCONNECT) => Outcome::Disconnect,
            Request::Malformed(req::MCAST) => Outcome::NoReply,
            Request::Unknown(_) | Request::Malformed(_) => reply_error(res::JOIN, Err(CsError::InvalidParam)),
            Request::Join { group, pid, flags } => reply_error(res::JOIN, self.join(id, group, pid, flags)),
            Request::Leave { group, pid } => reply_error(res::LEAVE, self.leave(id, group, pid)),
            Request::Mcast { payload, .. } => {
                self.mcast(id, payload);
                Outcome::NoReply
            }
            Request::PartialMcast {
                msglen, kind, payload, ..
            } => reply_error(res::PARTIAL_SEND, self.partial(id, msglen, kind, payload)),
            Request::Membership { group } => {
                let members = self.group_members(&group);
                Outcome::Reply(proto::membership_response(CS_OK, &members))
            }
            Request::LocalGet => Outcome::Reply(proto::local_get_response(self.nodeid).to_vec()),
            Request::IterationInitialize { group, kind } => self.iteration_initialize(id, group, kind),
            Request::IterationNext { handle } => self.iteration_next(id, handle),
            Request::IterationFinalize { handle } => {
                let found = self.conn(id).iterations.remove(&handle).is_some();
                reply_error(
                    res::ITERATION_FINALIZE,
                    if found { Ok(()) } else { Err(CsError::Library) },
                )
            }
            Request::Finalize => {
                self.finalize(id);
                reply_error(res::FINALIZE, Ok(()))
            }
            Request::ZcAlloc { map_size, path } => {
                let token = self.token();
                let conn = self.conn(id);
                let uid = conn.peer.uid;
                reply_error(res::JOIN, conn.zc.alloc(&path, map_size, uid, token))
            }
            Request::ZcFree { server_address, .. } => {
                self.conn(id).zc.free(server_address);
                reply_error(res::JOIN, Ok(()))
            }
            Request::ZcExecute { server_address } => reply_error(res::MCAST, self.zc_execute(id, server_address)),
        };
        self.apply();
        outcome
    }

    fn conn(&mut self, id: ConnId) -> &mut Conn {
        self.conns.get_mut(&id).expect("connection checked by the caller")
    }

    fn join(&mut self, id: ConnId, group: GroupName, pid: u32, flags: u32) -> Result<(), CsError> {
        if self
            .conns
            .values()
            .any(|c| !c.finalized && c.state != State::Unjoined && c.pid == pid && c.group == group)
        {
            return Err(CsError::Exist);
        }
        if self.has_member(self.nodeid, pid, &group) {
            return Err(CsError::TryAgain);
        }
        if !group.is_valid() {
            return Err(CsError::NameTooLong);
        }
        let conn = self.conn(id);
        match conn.state {
            State::Unjoined => {}
            State::LeaveStarted => return Err(CsError::Busy),
            State::JoinStarted | State::JoinCompleted => return Err(CsError::Exist),
        }
        conn.state = State::JoinStarted;
        conn.group = group;
        conn.pid = pid;
        conn.flags = flags;
        self.records.push_back(Record::Join { group, pid });
        Ok(())
    }

    fn leave(&mut self, id: ConnId, group: GroupName, _pid: u32) -> Result<(), CsError> {
        if !group.is_valid() {
            return Err(CsError::NameTooLong);
        }
        let conn = self.conn(id);
        match conn.state {
            State::Unjoined | State::LeaveStarted => return Err(CsError::NotExist),
            State::JoinStarted => return Err(CsError::Busy),
            State::JoinCompleted => {}
        }
        // corosync accepts any group here and leaves a stale member; we
        // only leave the group this connection joined.
        if conn.group != group {
            return Err(CsError::NotExist);
        }
        conn.state = State::LeaveStarted;
        // The stored pid, not the request's: the member entry is keyed by it.
        let pid = conn.pid;
        self.records.push_back(Record::Leave {
            group,
            pid,
            reason: proto::REASON_LEAVE,
        });
        Ok(())
    }

    fn finalize(&mut self, id: ConnId) {
        let conn = self.conn(id);
        conn.finalized = true;
        if conn.joined() {
            // corosync waits for the disconnect; the member leaves now
            // (same PROCDOWN confchg, earlier).
            conn.state = State::Unjoined;
            let (group, pid) = (conn.group, conn.pid);
            self.records.push_back(Record::Leave {
                group,
                pid,
                reason: proto::REASON_PROCDOWN,
            });
        }
    }

    fn mcast(&mut self, id: ConnId, payload: &[u8]) {
        let nodeid = self.nodeid;
        let conn = self.conn(id);
        if !conn.joined() || proto::DELIVER_HDR_LEN + payload.len() > EVENT_MAX {
            return;
        }
        let hdr = proto::deliver_header(&conn.group, nodeid, conn.pid, payload.len());
        let group = conn.group;
        self.push_delivery(group, &hdr, payload);
    }

    fn partial(&mut self, id: ConnId, msglen: u32, kind: u32, payload: &[u8]) -> Result<(), CsError> {
        let nodeid = self.nodeid;
        let conn = self.conn(id);
        let mut result = if conn.joined() { Ok(()) } else { Err(CsError::NotExist) };
        if kind == proto::FRAG_FIRST {
            conn.initial_transitions = conn.transitions;
        }
        if conn.transitions != conn.initial_transitions {
            result = Err(CsError::Interrupt);
        }
        if proto::PARTIAL_DELIVER_HDR_LEN + payload.len() > EVENT_MAX {
            result = result.and(Err(CsError::TooBig));
        }
        if let Err(e) = result {
            // The library gives up on the message at the first error.
            conn.assembly = None;
            return Err(e);
        }
        // Keep every receiver's reassembly inside its buffer: fragments
        // must add up to the announced length (corosync forwards anything).
        let (msglen64, frag) = (msglen as u64, payload.len() as u64);
        let next = match (kind, conn.assembly) {
            (proto::FRAG_FIRST, _) => Assembly {
                msglen: msglen64,
                got: frag,
            },
            (proto::FRAG_CONTINUED | proto::FRAG_LAST, Some(a)) if a.msglen == msglen64 => Assembly {
                msglen: a.msglen,
                got: a.got + frag,
            },
            _ => {
                conn.assembly = None;
                return Err(CsError::InvalidParam);
            }
        };
        if next.got > next.msglen || (kind == proto::FRAG_LAST && next.got != next.msglen) {
            conn.assembly = None;
            return Err(CsError::InvalidParam);
        }
        conn.assembly = (kind != proto::FRAG_LAST).then_some(next);
        let hdr = proto::partial_deliver_header(&conn.group, msglen, payload.len(), nodeid, conn.pid, kind);
        let group = conn.group;
        self.push_delivery(group, &hdr, payload);
        Ok(())
    }

    fn zc_execute(&mut self, id: ConnId, token: u64) -> Result<(), CsError> {
        let nodeid = self.nodeid;
        let conn = self.conn(id);
        if !conn.joined() {
            return Err(CsError::NotExist);
        }
        // Read from the client's file straight behind the header's room.
        let hdr_len = proto::DELIVER_HDR_LEN;
        let mut frame = conn.zc.read_mcast(token, EVENT_MAX - hdr_len, hdr_len)?;
        let hdr = proto::deliver_header(&conn.group, nodeid, conn.pid, frame.len() - hdr_len);
        frame[..hdr_len].copy_from_slice(&hdr);
        let group = conn.group;
        self.records.push_back(Record::Deliver {
            group,
            frame: Arc::new(frame),
        });
        Ok(())
    }

    /// Appends a DELIVER / PARTIAL_DELIVER record: `hdr` then a copy of
    /// `payload` (which lives in the request buffer).
    fn push_delivery(&mut self, group: GroupName, hdr: &[u8], payload: &[u8]) {
        let mut frame = Vec::with_capacity(hdr.len() + payload.len());
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(payload);
        self.records.push_back(Record::Deliver {
            group,
            frame: Arc::new(frame),
        });
    }

    /// The iteration order of corosync: walk the membership list; a group
    /// seen for the first time goes to the front, a further entry of a
    /// group goes right after that group's first entry.
    fn snapshot(&self, kind: u32, group: &GroupName) -> Vec<(GroupName, u32, u32)> {
        let mut out: Vec<(GroupName, u32, u32)> = Vec::new();
        for m in &self.members {
            if kind == ITERATION_ONE_GROUP && m.group != *group {
                continue;
            }
            let first = out.iter().position(|(g, _, _)| *g == m.group);
            match (first, kind) {
                (Some(_), ITERATION_NAME_ONLY) => {}
                (Some(i), _) => out.insert(i + 1, (m.group, m.nodeid, m.pid)),
                (None, ITERATION_NAME_ONLY) => out.insert(0, (m.group, 0, 0)),
                (None, _) => out.insert(0, (m.group, m.nodeid, m.pid)),
            }
        }
        out
    }

    fn iteration_initialize(&mut self, id: ConnId, group: GroupName, kind: u32) -> Outcome {
        if !matches!(kind, ITERATION_NAME_ONLY | ITERATION_ONE_GROUP | ITERATION_ALL) {
            return Outcome::Reply(proto::iteration_initialize_response(CsError::InvalidParam as i32, 0).to_vec());
        }
        if self.conn(id).iterations.len() >= MAX_ITERATIONS {
            return Outcome::Reply(proto::iteration_initialize_response(CsError::NoMemory as i32, 0).to_vec());
        }
        let items = self.snapshot(kind, &group);
        let held: usize = self.conn(id).iterations.values().map(|it| it.items.len()).sum();
        if held > 0 && held + items.len() > MAX_ITERATION_ITEMS {
            return Outcome::Reply(proto::iteration_initialize_response(CsError::NoMemory as i32, 0).to_vec());
        }
        let handle = self.token();
        self.conn(id).iterations.insert(handle, Iteration { items, cursor: 0 });
        Outcome::Reply(proto::iteration_initialize_response(CS_OK, handle).to_vec())
    }

    fn iteration_next(&mut self, id: ConnId, handle: u64) -> Outcome {
        let Some(it) = self.conn(id).iterations.get_mut(&handle) else {
            return Outcome::Reply(proto::iteration_next_response(CsError::Library as i32, None).to_vec());
        };
        let reply = match it.items.get(it.cursor) {
            Some((g, n, p)) => {
                it.cursor += 1;
                proto::iteration_next_response(CS_OK, Some((g, *n, *p)))
            }
            None => {
                it.cursor = 0;
                proto::iteration_next_response(CsError::NoSections as i32, None)
            }
        };
        Outcome::Reply(reply.to_vec())
    }

    // ----- applying the ordered stream -----

    fn apply(&mut self) {
        while let Some(record) = self.records.pop_front() {
            match record {
                Record::Join { group, pid } => {
                    if self.has_member(self.nodeid, pid, &group) {
                        continue;
                    }
                    let key = (self.nodeid, pid);
                    let at = self.members.partition_point(|m| (m.nodeid, m.pid) <= key);
                    self.members.insert(
                        at,
                        Member {
                            nodeid: self.nodeid,
                            pid,
                            group,
                        },
                    );
                    let joined = Address {
                        nodeid: self.nodeid,
                        pid,
                        reason: proto::REASON_JOIN,
                    };
                    self.notify(&group, &[joined], &[]);
                }
                Record::Leave { group, pid, reason } => {
                    let left = Address {
                        nodeid: self.nodeid,
                        pid,
                        reason,
                    };
                    self.notify(&group, &[], &[left]);
                    let nodeid = self.nodeid;
                    self.members
                        .retain(|m| !(m.nodeid == nodeid && m.pid == pid && m.group == group));
                    // corosync never resets the leaver (upstream defect);
                    // a completed leave makes the connection unjoined.
                    for c in self.conns.values_mut() {
                        if c.state == State::LeaveStarted && c.pid == pid && c.group == group {
                            c.state = State::Unjoined;
                            c.group = GroupName::new(b"").expect("empty name");
                            c.pid = 0;
                            c.flags = 0;
                            c.totem_sent = false;
                            c.assembly = None;
                        }
                    }
                }
                Record::Deliver { group, frame } => {
                    let nodeid = self.nodeid;
                    if !self.members.iter().any(|m| m.nodeid == nodeid && m.group == group) {
                        continue;
                    }
                    for (&id, c) in self.conns.iter().rev() {
                        if c.receives(&group) {
                            self.events.push((id, frame.clone()));
                        }
                    }
                }
            }
        }
    }

    fn notify(&mut self, group: &GroupName, joined: &[Address], left: &[Address]) {
        let members: Vec<Address> = self
            .group_members(group)
            .into_iter()
            .filter(|m| !left.iter().any(|l| (l.nodeid, l.pid) == (m.nodeid, m.pid)))
            .collect();
        let frame: Frame = Arc::new(proto::confchg_event(group, &members, left, joined));
        for j in joined.iter().filter(|j| j.nodeid == self.nodeid) {
            for c in self.conns.values_mut() {
                if c.state == State::JoinStarted && c.pid == j.pid && c.group == *group {
                    c.state = State::JoinCompleted;
                }
            }
        }
        for (&id, c) in self.conns.iter_mut().rev() {
            if c.receives(group) {
                self.events.push((id, frame.clone()));
                c.transitions += 1;
            }
        }
        // Model v1's initial totem confchg: right after the joiner's own
        // confchg, before anything else is delivered to it.
        let mut totem: Option<Frame> = None;
        for (&id, c) in self.conns.iter_mut().rev() {
            if c.receives(group) && c.flags & FLAG_INITIAL_TOTEM_CONF != 0 && !c.totem_sent {
                c.totem_sent = true;
                let frame = totem
                    .get_or_insert_with(|| Arc::new(proto::totem_confchg_event(self.ring_id, &[self.nodeid])))
                    .clone();
                self.events.push((id, frame));
            }
        }
    }

    /// Number of membership entries (for logs and tests).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    fn peer(pid: u32) -> Peer {
        Peer { pid, uid: 0, gid: 0 }
    }

    fn err_of(o: &Outcome) -> i32 {
        match o {
            Outcome::Reply(b) => proto::res_header(b).unwrap().error,
            other => panic!("{other:?}"),
        }
    }

    fn events(s: &mut Service) -> Vec<(ConnId, proto::Event)> {
        s.take_events()
            .into_iter()
            .map(|(id, f)| (id, proto::event(&f).unwrap()))
            .collect()
    }

    #[test]
    fn join_mcast_leave_and_reset() {
        let mut s = Service::new(1, 1);
        s.connect(1, peer(100));
        let g = name("G");
        assert_eq!(err_of(&s.handle(1, &proto::join(&g, 100, 1))), CS_OK);
        let ev = events(&mut s);
        assert_eq!(ev.len(), 2, "confchg then totem confchg");
        assert!(
            matches!(&ev[0].1, proto::Event::Confchg { members, joined, .. } if members.len() == 1 && joined[0].reason == 1)
        );
        assert!(matches!(&ev[1].1, proto::Event::TotemConfchg { members, .. } if members == &[1]));
        assert_eq!(err_of(&s.handle(1, &proto::join(&g, 100, 0))), CsError::Exist as i32);
        let mut m = proto::mcast_header(2, 2).to_vec();
        m.extend_from_slice(b"hi");
        assert_eq!(s.handle(1, &m), Outcome::NoReply);
        assert!(matches!(&events(&mut s)[0].1, proto::Event::Deliver { pid: 100, .. }));
        assert_eq!(
            err_of(&s.handle(1, &proto::leave(&name("other"), 100))),
            CsError::NotExist as i32
        );
        assert_eq!(err_of(&s.handle(1, &proto::leave(&g, 100))), CS_OK);
        assert!(matches!(&events(&mut s)[0].1, proto::Event::Confchg { left, .. } if left[0].reason == 2));
        assert_eq!(s.member_count(), 0);
        // Fixed: the left connection may join again.
        assert_eq!(err_of(&s.handle(1, &proto::join(&g, 100, 0))), CS_OK);
        s.disconnect(1);
        assert_eq!(s.member_count(), 0);
    }

    #[test]
    fn empty_name_member_is_removed_on_exit() {
        let mut s = Service::new(1, 1);
        s.connect(1, peer(5));
        s.connect(2, peer(6));
        let e = name("");
        assert_eq!(err_of(&s.handle(1, &proto::join(&e, 5, 0))), CS_OK);
        assert_eq!(err_of(&s.handle(2, &proto::join(&e, 6, 0))), CS_OK);
        s.take_events();
        s.disconnect(1);
        assert_eq!(s.member_count(), 1);
        let ev = events(&mut s);
        assert!(matches!(&ev[0], (2, proto::Event::Confchg { left, .. }) if left[0].reason == 5));
    }

    #[test]
    fn iteration_order_matches_corosync() {
        let mut s = Service::new(1, 1);
        let (g1, g2) = (name("G1"), name("G2"));
        for (id, pid, g) in [
            (1, 14085, g1),
            (2, 14085, g2),
            (3, 14086, g1),
            (4, 14087, g1),
            (5, 14088, g2),
        ] {
            s.connect(id, peer(pid));
            assert_eq!(err_of(&s.handle(id, &proto::join(&g, pid, 0))), CS_OK);
        }
        let pids = |v: Vec<(GroupName, u32, u32)>| {
            v.into_iter()
                .map(|(g, _, p)| (g.bytes().to_vec(), p))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pids(s.snapshot(ITERATION_ONE_GROUP, &g1)),
            vec![
                (b"G1".to_vec(), 14085),
                (b"G1".to_vec(), 14087),
                (b"G1".to_vec(), 14086)
            ]
        );
        assert_eq!(
            pids(s.snapshot(ITERATION_ALL, &g1)),
            vec![
                (b"G2".to_vec(), 14085),
                (b"G2".to_vec(), 14088),
                (b"G1".to_vec(), 14085),
                (b"G1".to_vec(), 14087),
                (b"G1".to_vec(), 14086)
            ]
        );
        assert_eq!(
            pids(s.snapshot(ITERATION_NAME_ONLY, &g1)),
            vec![(b"G2".to_vec(), 0), (b"G1".to_vec(), 0)]
        );
    }

    #[test]
    fn iterations_are_bounded_by_entries_held() {
        let mut s = Service::new(1, 1);
        let g = name("I");
        for id in 1..=20u32 {
            s.connect(id as ConnId, peer(1000 + id));
            assert_eq!(err_of(&s.handle(id as ConnId, &proto::join(&g, 1000 + id, 0))), CS_OK);
        }
        let init = proto::iteration_initialize(None, ITERATION_ALL);
        let mut handles = Vec::new();
        loop {
            match s.handle(1, &init) {
                Outcome::Reply(b) if proto::res_header(&b).unwrap().error == CS_OK => {
                    handles.push(proto::iteration_handle(&b).unwrap())
                }
                other => {
                    assert_eq!(err_of(&other), CsError::NoMemory as i32);
                    break;
                }
            }
        }
        // 20 entries each: 819 fit in the budget, the 820th does not.
        assert_eq!(handles.len(), MAX_ITERATION_ITEMS / 20);
        let fin = proto::with_handle(req::ITERATION_FINALIZE, handles[0]);
        assert_eq!(err_of(&s.handle(1, &fin)), CS_OK);
        assert_eq!(err_of(&s.handle(1, &init)), CS_OK, "room again after a finalize");
        // Another connection has its own budget.
        assert_eq!(err_of(&s.handle(2, &init)), CS_OK);
    }

    #[test]
    fn fragments_must_add_up() {
        let mut s = Service::new(1, 1);
        s.connect(1, peer(9));
        let g = name("F");
        s.handle(1, &proto::join(&g, 9, 0));
        s.take_events();
        let frag = |kind, msglen, data: &[u8]| {
            let mut f = proto::partial_header(2, msglen, data.len(), kind).to_vec();
            f.extend_from_slice(data);
            f
        };
        assert_eq!(err_of(&s.handle(1, &frag(proto::FRAG_FIRST, 5, b"ab"))), CS_OK);
        assert_eq!(err_of(&s.handle(1, &frag(proto::FRAG_LAST, 5, b"cde"))), CS_OK);
        assert_eq!(s.take_events().len(), 2);
        assert_eq!(
            err_of(&s.handle(1, &frag(proto::FRAG_LAST, 5, b"cde"))),
            CsError::InvalidParam as i32
        );
        assert_eq!(
            err_of(&s.handle(1, &frag(proto::FRAG_FIRST, 2, b"abc"))),
            CsError::InvalidParam as i32
        );
        // A confchg while sending interrupts.
        assert_eq!(err_of(&s.handle(1, &frag(proto::FRAG_FIRST, 4, b"ab"))), CS_OK);
        s.connect(2, peer(10));
        s.handle(2, &proto::join(&g, 10, 0));
        assert_eq!(
            err_of(&s.handle(1, &frag(proto::FRAG_LAST, 4, b"cd"))),
            CsError::Interrupt as i32
        );
    }

    #[test]
    fn unknown_ids_and_finalize() {
        let mut s = Service::new(7, 1);
        s.connect(1, peer(3));
        let o = s.handle(1, &proto::header_only(13));
        assert_eq!(err_of(&o), CsError::InvalidParam as i32);
        match &o {
            Outcome::Reply(b) => assert_eq!((b.len(), proto::res_header(b).unwrap().id), (24, 0)),
            _ => unreachable!(),
        }
        assert_eq!(s.handle(1, &proto::header_only(MSG_DISCONNECT)), Outcome::Disconnect);
        match s.handle(1, &proto::header_only(req::LOCAL_GET)) {
            Outcome::Reply(b) => assert_eq!(proto::local_nodeid(&b), Some(7)),
            _ => unreachable!(),
        }
        let g = name("x");
        s.handle(1, &proto::join(&g, 3, 0));
        s.connect(2, peer(4));
        s.handle(2, &proto::join(&g, 4, 0));
        s.take_events();
        assert_eq!(err_of(&s.handle(1, &proto::header_only(req::FINALIZE))), CS_OK);
        let ev = events(&mut s);
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], (2, proto::Event::Confchg { left, .. }) if left[0].pid == 3 && left[0].reason == 5));
        s.disconnect(1);
        assert!(s.take_events().is_empty());
    }
}

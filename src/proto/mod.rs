//! The messages of corosync's CPG service on the libqb channels: requests
//! (client → server), responses, and events (server → client). Encoders
//! and decoders only, no I/O. Every field is a 32-bit value padded to 8
//! bytes; padding is written as zeros and ignored on receipt. Decoders
//! never trust a length from the other side.
#![forbid(unsafe_code)]

pub const REQ_HDR: usize = 16;
pub const RES_HDR: usize = 24;

/// Request ids.
pub mod req {
    pub const JOIN: i32 = 0;
    pub const LEAVE: i32 = 1;
    pub const MCAST: i32 = 2;
    pub const MEMBERSHIP: i32 = 3;
    pub const LOCAL_GET: i32 = 4;
    pub const ITERATION_INITIALIZE: i32 = 5;
    pub const ITERATION_NEXT: i32 = 6;
    pub const ITERATION_FINALIZE: i32 = 7;
    pub const FINALIZE: i32 = 8;
    pub const ZC_ALLOC: i32 = 9;
    pub const ZC_FREE: i32 = 10;
    pub const ZC_EXECUTE: i32 = 11;
    pub const PARTIAL_MCAST: i32 = 12;
    /// First id the service does not know.
    pub const END: i32 = 13;
}

/// Response and event ids.
pub mod res {
    pub const JOIN: i32 = 0;
    pub const LEAVE: i32 = 1;
    pub const MCAST: i32 = 2;
    pub const MEMBERSHIP: i32 = 3;
    pub const CONFCHG: i32 = 4;
    pub const DELIVER: i32 = 5;
    pub const LOCAL_GET: i32 = 7;
    pub const ITERATION_INITIALIZE: i32 = 9;
    pub const ITERATION_NEXT: i32 = 10;
    pub const ITERATION_FINALIZE: i32 = 11;
    pub const FINALIZE: i32 = 12;
    pub const TOTEM_CONFCHG: i32 = 13;
    pub const PARTIAL_DELIVER: i32 = 17;
    pub const PARTIAL_SEND: i32 = 18;
}

pub const MAX_NAME: usize = 128;
/// Entries in a membership reply.
pub const MEMBERSHIP_MAX: usize = 384;
pub const MEMBERSHIP_RES_LEN: usize = RES_HDR + 8 + MEMBERSHIP_MAX * ADDRESS_LEN;
pub const ITERATION_NEXT_RES_LEN: usize = RES_HDR + 144;
/// `mar_cpg_name_t` on the wire.
pub const NAME_LEN: usize = 136;
/// `mar_cpg_address_t` on the wire.
pub const ADDRESS_LEN: usize = 24;

pub const JOIN_LEN: usize = 168;
pub const LEAVE_LEN: usize = 160;
pub const MCAST_HDR_LEN: usize = 40;
pub const PARTIAL_HDR_LEN: usize = 56;
pub const MEMBERSHIP_LEN: usize = 152;
pub const ITERATION_INIT_LEN: usize = 160;
pub const CONFCHG_HDR_LEN: usize = 184;
pub const DELIVER_HDR_LEN: usize = 184;
pub const PARTIAL_DELIVER_HDR_LEN: usize = 200;
pub const TOTEM_CONFCHG_HDR_LEN: usize = 44;

/// Fragment types of a partial multicast.
pub const FRAG_FIRST: u32 = 1;
pub const FRAG_CONTINUED: u32 = 2;
pub const FRAG_LAST: u32 = 3;

/// Confchg reasons.
pub const REASON_UNDEFINED: u32 = 0;
pub const REASON_JOIN: u32 = 1;
pub const REASON_LEAVE: u32 = 2;
pub const REASON_NODEDOWN: u32 = 3;
pub const REASON_NODEUP: u32 = 4;
pub const REASON_PROCDOWN: u32 = 5;

/// A group name as the service stores it: the significant length and all
/// 128 value bytes (bytes past `length` travel too, but never compare).
#[derive(Clone, Copy)]
pub struct GroupName {
    pub length: u32,
    pub value: [u8; MAX_NAME],
}

impl GroupName {
    /// A name from its significant bytes; `None` past 128 bytes.
    pub fn new(bytes: &[u8]) -> Option<GroupName> {
        if bytes.len() > MAX_NAME {
            return None;
        }
        let mut value = [0u8; MAX_NAME];
        value[..bytes.len()].copy_from_slice(bytes);
        Some(GroupName {
            length: bytes.len() as u32,
            value,
        })
    }

    /// The significant bytes (length clamped to 128).
    pub fn bytes(&self) -> &[u8] {
        &self.value[..(self.length as usize).min(MAX_NAME)]
    }

    pub fn is_valid(&self) -> bool {
        self.length as usize <= MAX_NAME
    }
}

impl PartialEq for GroupName {
    fn eq(&self, other: &GroupName) -> bool {
        self.length == other.length && self.bytes() == other.bytes()
    }
}

impl Eq for GroupName {}

impl std::hash::Hash for GroupName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state)
    }
}

impl std::fmt::Debug for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))
    }
}

/// One member entry: node, process and (in confchg lists) a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub nodeid: u32,
    pub pid: u32,
    pub reason: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingId {
    pub nodeid: u32,
    pub seq: u64,
}

// ----- little helpers over byte buffers -----

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn get_i32(b: &[u8], off: usize) -> Option<i32> {
    get_u32(b, off).map(|v| v as i32)
}

fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn put_req_hdr(b: &mut [u8], id: i32, size: usize) {
    put_i32(b, 0, id);
    put_i32(b, 8, size as i32);
}

fn put_res_hdr(b: &mut [u8], id: i32, size: usize, error: i32) {
    put_i32(b, 0, id);
    put_i32(b, 8, size as i32);
    put_i32(b, 16, error);
}

fn put_name(b: &mut [u8], off: usize, name: &GroupName) {
    put_u32(b, off, name.length);
    b[off + 8..off + 8 + MAX_NAME].copy_from_slice(&name.value);
}

fn get_name(b: &[u8], off: usize) -> Option<GroupName> {
    let length = get_u32(b, off)?;
    let mut value = [0u8; MAX_NAME];
    value.copy_from_slice(b.get(off + 8..off + 8 + MAX_NAME)?);
    Some(GroupName { length, value })
}

fn put_address(b: &mut [u8], off: usize, a: &Address) {
    put_u32(b, off, a.nodeid);
    put_u32(b, off + 8, a.pid);
    put_u32(b, off + 16, a.reason);
}

fn get_address(b: &[u8], off: usize) -> Option<Address> {
    Some(Address {
        nodeid: get_u32(b, off)?,
        pid: get_u32(b, off + 8)?,
        reason: get_u32(b, off + 16)?,
    })
}

// ----- requests -----

pub fn join(name: &GroupName, pid: u32, flags: u32) -> [u8; JOIN_LEN] {
    let mut b = [0u8; JOIN_LEN];
    put_req_hdr(&mut b, req::JOIN, JOIN_LEN);
    put_name(&mut b, 16, name);
    put_u32(&mut b, 152, pid);
    put_u32(&mut b, 160, flags);
    b
}

pub fn leave(name: &GroupName, pid: u32) -> [u8; LEAVE_LEN] {
    let mut b = [0u8; LEAVE_LEN];
    put_req_hdr(&mut b, req::LEAVE, LEAVE_LEN);
    put_name(&mut b, 16, name);
    put_u32(&mut b, 152, pid);
    b
}

/// Header of an unfragmented multicast; the payload follows it.
pub fn mcast_header(guarantee: u32, msglen: usize) -> [u8; MCAST_HDR_LEN] {
    let mut b = [0u8; MCAST_HDR_LEN];
    put_req_hdr(&mut b, req::MCAST, MCAST_HDR_LEN + msglen);
    put_u32(&mut b, 24, guarantee);
    put_u32(&mut b, 32, msglen as u32);
    b
}

/// Header of one fragment of a large multicast.
pub fn partial_header(guarantee: u32, msglen: usize, fraglen: usize, kind: u32) -> [u8; PARTIAL_HDR_LEN] {
    let mut b = [0u8; PARTIAL_HDR_LEN];
    put_req_hdr(&mut b, req::PARTIAL_MCAST, PARTIAL_HDR_LEN + fraglen);
    put_u32(&mut b, 24, guarantee);
    put_u32(&mut b, 32, msglen as u32);
    put_u32(&mut b, 40, fraglen as u32);
    put_u32(&mut b, 48, kind);
    b
}

pub fn membership(name: &GroupName) -> [u8; MEMBERSHIP_LEN] {
    let mut b = [0u8; MEMBERSHIP_LEN];
    put_req_hdr(&mut b, req::MEMBERSHIP, MEMBERSHIP_LEN);
    put_name(&mut b, 16, name);
    b
}

pub fn header_only(id: i32) -> [u8; REQ_HDR] {
    let mut b = [0u8; REQ_HDR];
    put_req_hdr(&mut b, id, REQ_HDR);
    b
}

pub fn iteration_initialize(name: Option<&GroupName>, kind: u32) -> [u8; ITERATION_INIT_LEN] {
    let mut b = [0u8; ITERATION_INIT_LEN];
    put_req_hdr(&mut b, req::ITERATION_INITIALIZE, ITERATION_INIT_LEN);
    if let Some(n) = name {
        put_name(&mut b, 16, n);
    }
    put_u32(&mut b, 152, kind);
    b
}

/// ITERATIONNEXT / ITERATIONFINALIZE: header plus a server-side handle.
pub fn with_handle(id: i32, handle: u64) -> [u8; 24] {
    let mut b = [0u8; 24];
    put_req_hdr(&mut b, id, 24);
    put_u64(&mut b, 16, handle);
    b
}

pub const ZC_ALLOC_LEN: usize = 152;

/// ZC_ALLOC: the size of the mapping and the path of its file.
pub fn zc_alloc(map_size: u64, path: &str) -> [u8; ZC_ALLOC_LEN] {
    let mut b = [0u8; ZC_ALLOC_LEN];
    put_req_hdr(&mut b, req::ZC_ALLOC, ZC_ALLOC_LEN);
    put_u64(&mut b, 16, map_size);
    let n = path.len().min(127);
    b[24..24 + n].copy_from_slice(&path.as_bytes()[..n]);
    b
}

pub fn zc_free(map_size: u64, server_address: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    put_req_hdr(&mut b, req::ZC_FREE, 32);
    put_u64(&mut b, 16, map_size);
    put_u64(&mut b, 24, server_address);
    b
}

// ----- responses (client side decoding) -----

/// Header fields of a response or event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResHeader {
    pub id: i32,
    pub size: i32,
    pub error: i32,
}

pub fn res_header(b: &[u8]) -> Option<ResHeader> {
    Some(ResHeader {
        id: get_i32(b, 0)?,
        size: get_i32(b, 8)?,
        error: get_i32(b, 16)?,
    })
}

/// Members of a MEMBERSHIP reply: at most the entries the frame holds.
pub fn membership_entries(b: &[u8]) -> Option<Vec<Address>> {
    let count = get_u32(b, 24)? as usize;
    let fit = b.len().saturating_sub(RES_HDR + 8) / ADDRESS_LEN;
    if count > fit.min(MEMBERSHIP_MAX) {
        return None;
    }
    (0..count)
        .map(|i| get_address(b, RES_HDR + 8 + i * ADDRESS_LEN))
        .collect()
}

pub fn local_nodeid(b: &[u8]) -> Option<u32> {
    get_u32(b, RES_HDR)
}

pub fn iteration_handle(b: &[u8]) -> Option<u64> {
    get_u64(b, RES_HDR)
}

/// The description of an ITERATIONNEXT reply: group, nodeid, pid.
pub fn iteration_description(b: &[u8]) -> Option<(GroupName, u32, u32)> {
    let name = get_name(b, RES_HDR)?;
    Some((name, get_u32(b, RES_HDR + 136)?, get_u32(b, RES_HDR + 140)?))
}

// ----- events -----

/// An event from the server; payloads are byte ranges of the frame.
#[derive(Debug, PartialEq)]
pub enum Event {
    Confchg {
        group: GroupName,
        members: Vec<Address>,
        left: Vec<Address>,
        joined: Vec<Address>,
    },
    Deliver {
        group: GroupName,
        nodeid: u32,
        pid: u32,
        /// Byte range of the payload inside the frame.
        payload: std::ops::Range<usize>,
    },
    PartialDeliver {
        group: GroupName,
        msglen: u32,
        nodeid: u32,
        pid: u32,
        kind: u32,
        payload: std::ops::Range<usize>,
    },
    TotemConfchg {
        ring_id: RingId,
        members: Vec<u32>,
    },
    /// An id the library does not know.
    Unknown(i32),
}

/// Why an event frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Decodes one event frame. Lengths inside the frame are checked against
/// the frame itself.
pub fn event(b: &[u8]) -> Result<Event, Malformed> {
    let h = res_header(b).ok_or(Malformed)?;
    match h.id {
        res::CONFCHG => {
            let group = get_name(b, 24).ok_or(Malformed)?;
            let m = get_u32(b, 160).ok_or(Malformed)? as usize;
            let j = get_u32(b, 168).ok_or(Malformed)? as usize;
            let l = get_u32(b, 176).ok_or(Malformed)? as usize;
            let room = b.len().saturating_sub(CONFCHG_HDR_LEN) / ADDRESS_LEN;
            if m.checked_add(j).and_then(|x| x.checked_add(l)).is_none_or(|n| n > room) {
                return Err(Malformed);
            }
            let list = |start: usize, n: usize| -> Result<Vec<Address>, Malformed> {
                (0..n)
                    .map(|i| get_address(b, CONFCHG_HDR_LEN + (start + i) * ADDRESS_LEN).ok_or(Malformed))
                    .collect()
            };
            // Counts are member, joined, left; arrays are member, left, joined.
            Ok(Event::Confchg {
                group,
                members: list(0, m)?,
                left: list(m, l)?,
                joined: list(m + l, j)?,
            })
        }
        res::DELIVER => {
            let group = get_name(b, 24).ok_or(Malformed)?;
            let len = get_u32(b, 160).ok_or(Malformed)? as usize;
            let nodeid = get_u32(b, 168).ok_or(Malformed)?;
            let pid = get_u32(b, 176).ok_or(Malformed)?;
            let end = DELIVER_HDR_LEN.checked_add(len).ok_or(Malformed)?;
            if end > b.len() {
                return Err(Malformed);
            }
            Ok(Event::Deliver {
                group,
                nodeid,
                pid,
                payload: DELIVER_HDR_LEN..end,
            })
        }
        res::PARTIAL_DELIVER => {
            let group = get_name(b, 24).ok_or(Malformed)?;
            let msglen = get_u32(b, 160).ok_or(Malformed)?;
            let fraglen = get_u32(b, 168).ok_or(Malformed)? as usize;
            let nodeid = get_u32(b, 176).ok_or(Malformed)?;
            let pid = get_u32(b, 184).ok_or(Malformed)?;
            let kind = get_u32(b, 192).ok_or(Malformed)?;
            let end = PARTIAL_DELIVER_HDR_LEN.checked_add(fraglen).ok_or(Malformed)?;
            if end > b.len() {
                return Err(Malformed);
            }
            Ok(Event::PartialDeliver {
                group,
                msglen,
                nodeid,
                pid,
                kind,
                payload: PARTIAL_DELIVER_HDR_LEN..end,
            })
        }
        res::TOTEM_CONFCHG => {
            let ring_id = RingId {
                nodeid: get_u32(b, 24).ok_or(Malformed)?,
                seq: get_u64(b, 32).ok_or(Malformed)?,
            };
            let k = get_u32(b, 40).ok_or(Malformed)? as usize;
            if k > b.len().saturating_sub(TOTEM_CONFCHG_HDR_LEN) / 4 {
                return Err(Malformed);
            }
            let members = (0..k)
                .map(|i| get_u32(b, TOTEM_CONFCHG_HDR_LEN + 4 * i).ok_or(Malformed))
                .collect::<Result<_, _>>()?;
            Ok(Event::TotemConfchg { ring_id, members })
        }
        other => Ok(Event::Unknown(other)),
    }
}

// ----- server side: decoding requests, encoding responses and events -----

/// A request as the server sees it.
#[derive(Debug, PartialEq)]
pub enum Request<'a> {
    Join {
        group: GroupName,
        pid: u32,
        flags: u32,
    },
    Leave {
        group: GroupName,
        pid: u32,
    },
    Mcast {
        guarantee: u32,
        payload: &'a [u8],
    },
    PartialMcast {
        guarantee: u32,
        msglen: u32,
        kind: u32,
        payload: &'a [u8],
    },
    Membership {
        group: GroupName,
    },
    LocalGet,
    IterationInitialize {
        group: GroupName,
        kind: u32,
    },
    IterationNext {
        handle: u64,
    },
    IterationFinalize {
        handle: u64,
    },
    Finalize,
    ZcAlloc {
        map_size: u64,
        path: String,
    },
    ZcFree {
        map_size: u64,
        server_address: u64,
    },
    ZcExecute {
        server_address: u64,
    },
    /// A known id whose frame is too short or inconsistent.
    Malformed(i32),
    /// An id the service does not have.
    Unknown(i32),
}

pub fn request(b: &[u8]) -> Request<'_> {
    let Some(id) = get_i32(b, 0) else {
        return Request::Unknown(-1);
    };
    let parsed = (|| -> Option<Request<'_>> {
        Some(match id {
            req::JOIN => Request::Join {
                group: get_name(b, 16)?,
                pid: get_u32(b, 152)?,
                flags: get_u32(b, 160)?,
            },
            req::LEAVE => Request::Leave {
                group: get_name(b, 16)?,
                pid: get_u32(b, 152)?,
            },
            req::MCAST => {
                let len = get_u32(b, 32)? as usize;
                Request::Mcast {
                    guarantee: get_u32(b, 24)?,
                    payload: b.get(MCAST_HDR_LEN..MCAST_HDR_LEN.checked_add(len)?)?,
                }
            }
            req::PARTIAL_MCAST => {
                let frag = get_u32(b, 40)? as usize;
                Request::PartialMcast {
                    guarantee: get_u32(b, 24)?,
                    msglen: get_u32(b, 32)?,
                    kind: get_u32(b, 48)?,
                    payload: b.get(PARTIAL_HDR_LEN..PARTIAL_HDR_LEN.checked_add(frag)?)?,
                }
            }
            req::MEMBERSHIP => Request::Membership {
                group: get_name(b, 16)?,
            },
            req::LOCAL_GET => Request::LocalGet,
            req::ITERATION_INITIALIZE => Request::IterationInitialize {
                group: get_name(b, 16)?,
                kind: get_u32(b, 152)?,
            },
            req::ITERATION_NEXT => Request::IterationNext {
                handle: get_u64(b, 16)?,
            },
            req::ITERATION_FINALIZE => Request::IterationFinalize {
                handle: get_u64(b, 16)?,
            },
            req::FINALIZE => Request::Finalize,
            req::ZC_ALLOC => {
                let raw = b.get(24..152)?;
                let end = raw.iter().position(|&c| c == 0)?;
                Request::ZcAlloc {
                    map_size: get_u64(b, 16)?,
                    path: String::from_utf8(raw[..end].to_vec()).ok()?,
                }
            }
            req::ZC_FREE => Request::ZcFree {
                map_size: get_u64(b, 16)?,
                server_address: get_u64(b, 24)?,
            },
            req::ZC_EXECUTE => Request::ZcExecute {
                server_address: get_u64(b, 16)?,
            },
            _ => Request::Unknown(id),
        })
    })();
    parsed.unwrap_or(Request::Malformed(id))
}

/// A 24-byte response carrying only an error code.
pub fn error_response(id: i32, error: i32) -> [u8; RES_HDR] {
    let mut b = [0u8; RES_HDR];
    put_res_hdr(&mut b, id, RES_HDR, error);
    b
}

pub fn local_get_response(nodeid: u32) -> [u8; 32] {
    let mut b = [0u8; 32];
    put_res_hdr(&mut b, res::LOCAL_GET, 32, crate::error::CS_OK);
    put_u32(&mut b, 24, nodeid);
    b
}

pub fn membership_response(error: i32, members: &[Address]) -> Vec<u8> {
    let mut b = vec![0u8; MEMBERSHIP_RES_LEN];
    put_res_hdr(&mut b, res::MEMBERSHIP, MEMBERSHIP_RES_LEN, error);
    let n = members.len().min(MEMBERSHIP_MAX);
    put_u32(&mut b, 24, n as u32);
    for (i, a) in members[..n].iter().enumerate() {
        put_address(&mut b, RES_HDR + 8 + i * ADDRESS_LEN, &Address { reason: 0, ..*a });
    }
    b
}

pub fn iteration_initialize_response(error: i32, handle: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    put_res_hdr(&mut b, res::ITERATION_INITIALIZE, 32, error);
    put_u64(&mut b, 24, handle);
    b
}

pub fn iteration_next_response(error: i32, item: Option<(&GroupName, u32, u32)>) -> [u8; ITERATION_NEXT_RES_LEN] {
    let mut b = [0u8; ITERATION_NEXT_RES_LEN];
    put_res_hdr(&mut b, res::ITERATION_NEXT, ITERATION_NEXT_RES_LEN, error);
    if let Some((g, nodeid, pid)) = item {
        put_name(&mut b, RES_HDR, g);
        put_u32(&mut b, RES_HDR + 136, nodeid);
        put_u32(&mut b, RES_HDR + 140, pid);
    }
    b
}

pub fn confchg_event(group: &GroupName, members: &[Address], left: &[Address], joined: &[Address]) -> Vec<u8> {
    let n = members.len() + left.len() + joined.len();
    let size = CONFCHG_HDR_LEN + n * ADDRESS_LEN;
    let mut b = vec![0u8; size];
    put_res_hdr(&mut b, res::CONFCHG, size, crate::error::CS_OK);
    put_name(&mut b, 24, group);
    put_u32(&mut b, 160, members.len() as u32);
    put_u32(&mut b, 168, joined.len() as u32);
    put_u32(&mut b, 176, left.len() as u32);
    for (i, a) in members.iter().chain(left).chain(joined).enumerate() {
        put_address(&mut b, CONFCHG_HDR_LEN + i * ADDRESS_LEN, a);
    }
    b
}

/// Header of a DELIVER event; the payload follows it.
pub fn deliver_header(group: &GroupName, nodeid: u32, pid: u32, len: usize) -> [u8; DELIVER_HDR_LEN] {
    let mut b = [0u8; DELIVER_HDR_LEN];
    put_res_hdr(&mut b, res::DELIVER, DELIVER_HDR_LEN + len, crate::error::CS_OK);
    put_name(&mut b, 24, group);
    put_u32(&mut b, 160, len as u32);
    put_u32(&mut b, 168, nodeid);
    put_u32(&mut b, 176, pid);
    b
}

/// Header of a PARTIAL_DELIVER event; the fragment follows it.
pub fn partial_deliver_header(
    group: &GroupName,
    msglen: u32,
    fraglen: usize,
    nodeid: u32,
    pid: u32,
    kind: u32,
) -> [u8; PARTIAL_DELIVER_HDR_LEN] {
    let mut b = [0u8; PARTIAL_DELIVER_HDR_LEN];
    put_res_hdr(
        &mut b,
        res::PARTIAL_DELIVER,
        PARTIAL_DELIVER_HDR_LEN + fraglen,
        crate::error::CS_OK,
    );
    put_name(&mut b, 24, group);
    put_u32(&mut b, 160, msglen);
    put_u32(&mut b, 168, fraglen as u32);
    put_u32(&mut b, 176, nodeid);
    put_u32(&mut b, 184, pid);
    put_u32(&mut b, 192, kind);
    b
}

pub fn totem_confchg_event(ring_id: RingId, members: &[u32]) -> Vec<u8> {
    // corosync counts four bytes of struct tail padding into the size.
    let size = TOTEM_CONFCHG_HDR_LEN + 4 * members.len() + 4;
    let mut b = vec![0u8; size];
    put_res_hdr(&mut b, res::TOTEM_CONFCHG, size, crate::error::CS_OK);
    put_u32(&mut b, 24, ring_id.nodeid);
    put_u64(&mut b, 32, ring_id.seq);
    put_u32(&mut b, 40, members.len() as u32);
    for (i, m) in members.iter().enumerate() {
        put_u32(&mut b, TOTEM_CONFCHG_HDR_LEN + 4 * i, *m);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn request_layouts() {
        let g = name("G");
        let j = join(&g, 4242, 1);
        assert_eq!(j.len(), 168);
        assert_eq!(&j[8..12], &168i32.to_le_bytes());
        assert_eq!(&j[16..20], &1u32.to_le_bytes());
        assert_eq!(j[24], b'G');
        assert_eq!(&j[152..156], &4242u32.to_le_bytes());
        assert_eq!(&j[160..164], &1u32.to_le_bytes());
        assert_eq!(
            request(&j),
            Request::Join {
                group: g,
                pid: 4242,
                flags: 1
            }
        );
        let l = leave(&g, 7);
        assert_eq!(request(&l), Request::Leave { group: g, pid: 7 });
        let m = mcast_header(2, 5);
        assert_eq!(&m[8..12], &45i32.to_le_bytes());
        let mut full = m.to_vec();
        full.extend_from_slice(b"hello");
        assert_eq!(
            request(&full),
            Request::Mcast {
                guarantee: 2,
                payload: b"hello"
            }
        );
        // A payload length beyond the frame is malformed, not a panic.
        assert_eq!(request(&m), Request::Malformed(req::MCAST));
        let p = partial_header(2, 100, 3, FRAG_FIRST);
        let mut pf = p.to_vec();
        pf.extend_from_slice(b"abc");
        assert_eq!(
            request(&pf),
            Request::PartialMcast {
                guarantee: 2,
                msglen: 100,
                kind: 1,
                payload: b"abc"
            }
        );
        assert_eq!(request(&membership(&g)), Request::Membership { group: g });
        assert_eq!(request(&header_only(req::LOCAL_GET)), Request::LocalGet);
        assert_eq!(
            request(&with_handle(req::ITERATION_NEXT, 99)),
            Request::IterationNext { handle: 99 }
        );
        assert_eq!(request(&header_only(77)), Request::Unknown(77));
        let z = zc_alloc(1056, "/dev/shm/corosync_zerocopy-abc");
        assert_eq!(
            request(&z),
            Request::ZcAlloc {
                map_size: 1056,
                path: "/dev/shm/corosync_zerocopy-abc".into()
            }
        );
        assert_eq!(
            request(&zc_free(1056, 0xdead)),
            Request::ZcFree {
                map_size: 1056,
                server_address: 0xdead
            }
        );
        let x = with_handle(req::ZC_EXECUTE, 0xbeef);
        assert_eq!(request(&x), Request::ZcExecute { server_address: 0xbeef });
        assert_eq!(request(&[1, 2]), Request::Unknown(-1));
    }

    #[test]
    fn names_compare_on_significant_bytes() {
        let mut a = name("crmd");
        a.value[10] = 0xff;
        assert_eq!(a, name("crmd"));
        assert_ne!(name("crmd"), GroupName::new(b"crmd\0").unwrap());
        assert!(GroupName::new(&[0u8; 129]).is_none());
        assert_eq!(GroupName::new(&[1u8; 128]).unwrap().bytes().len(), 128);
    }

    #[test]
    fn confchg_round_trip_keeps_list_order() {
        let g = name("grp");
        let members = [
            Address {
                nodeid: 1,
                pid: 10,
                reason: 0,
            },
            Address {
                nodeid: 1,
                pid: 11,
                reason: 0,
            },
        ];
        let left = [Address {
            nodeid: 1,
            pid: 12,
            reason: REASON_PROCDOWN,
        }];
        let joined = [Address {
            nodeid: 1,
            pid: 11,
            reason: REASON_JOIN,
        }];
        let b = confchg_event(&g, &members, &left, &joined);
        assert_eq!(b.len(), 184 + 24 * 4);
        // counts: member, joined, left
        assert_eq!(&b[160..164], &2u32.to_le_bytes());
        assert_eq!(&b[168..172], &1u32.to_le_bytes());
        assert_eq!(&b[176..180], &1u32.to_le_bytes());
        assert_eq!(
            event(&b),
            Ok(Event::Confchg {
                group: g,
                members: members.to_vec(),
                left: left.to_vec(),
                joined: joined.to_vec()
            })
        );
    }

    #[test]
    fn deliver_and_totem_round_trip() {
        let g = name("x");
        let mut b = deliver_header(&g, 1, 99, 5).to_vec();
        b.extend_from_slice(b"hello");
        assert_eq!(b.len(), 189);
        match event(&b) {
            Ok(Event::Deliver {
                nodeid: 1,
                pid: 99,
                payload,
                ..
            }) => assert_eq!(&b[payload], b"hello"),
            other => panic!("{other:?}"),
        }
        let t = totem_confchg_event(RingId { nodeid: 1, seq: 5 }, &[1]);
        assert_eq!(t.len(), 52);
        assert_eq!(
            event(&t),
            Ok(Event::TotemConfchg {
                ring_id: RingId { nodeid: 1, seq: 5 },
                members: vec![1]
            })
        );
    }

    #[test]
    fn hostile_events_are_refused() {
        let g = name("x");
        // Deliver claiming more payload than the frame has.
        let b = deliver_header(&g, 1, 2, 1000);
        assert_eq!(event(&b), Err(Malformed));
        // Confchg with absurd counts.
        let mut c = confchg_event(&g, &[], &[], &[]);
        c[160..164].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(event(&c), Err(Malformed));
        c[160..164].copy_from_slice(&0x5555_5555u32.to_le_bytes());
        c[168..172].copy_from_slice(&0x5555_5555u32.to_le_bytes());
        c[176..180].copy_from_slice(&0x5555_5556u32.to_le_bytes());
        assert_eq!(event(&c), Err(Malformed));
        let mut t = totem_confchg_event(RingId { nodeid: 1, seq: 1 }, &[1]);
        t[40..44].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(event(&t), Err(Malformed));
        assert_eq!(event(&[0u8; 10]), Err(Malformed));
        let mut r = membership_response(1, &[]);
        r[24..28].copy_from_slice(&385u32.to_le_bytes());
        assert_eq!(membership_entries(&r), None);
        assert_eq!(membership_entries(&r[..24]), None);
    }
}

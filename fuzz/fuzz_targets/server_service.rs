//! cpgd's CPG service fed any sequence of connections, disconnections and
//! request frames (valid, truncated, inconsistent or random), including
//! zero-copy buffers backed by real files whose contents and size the
//! input chooses.
//!
//! Checked: no panic; every reply and event is a well-formed frame of a
//! size the protocol allows that our own client decodes; events go only to
//! live connections; when every connection is gone no member is left; the
//! server never unlinks a zero-copy file its client does not own; memory
//! stays within a fixed allowance plus a multiple of the input.
#![no_main]

use std::fs::File;
use std::os::unix::fs::FileExt;

use cpg_fuzz::{Budget, Input};
use cpg_rs::error::CsError;
use cpg_rs::ipc::handshake::MSG_DISCONNECT;
use cpg_rs::proto::{self, req, Event, GroupName};
use cpg_rs::server::service::{ConnId, Outcome, Peer, Service, EVENT_MAX};
use libfuzzer_sys::fuzz_target;

const MAX_CONNS: usize = 8;
/// A uid that owns no file.
const STRANGER: u32 = 4_000_000_123;

struct ZcFile {
    path: String,
    file: File,
}

struct State {
    conns: Vec<(ConnId, Peer)>,
    next_id: ConnId,
    iter_handles: Vec<u64>,
    zc_tokens: Vec<u64>,
    zc_files: Vec<ZcFile>,
    big_frames: u32,
}

fn name(input: &mut Input) -> GroupName {
    let mut g = GroupName::new(b"").unwrap();
    match input.u8() % 5 {
        0 => {}
        1 => g = GroupName::new(b"a").unwrap(),
        2 => g = GroupName::new(b"b").unwrap(),
        3 => {
            g.length = input.interesting_u32();
            g.value[0] = b'a' + input.u8() % 2;
        }
        _ => {
            g.length = input.u8() as u32 % 4;
            for v in g.value.iter_mut().take(4) {
                *v = b'a' + input.u8() % 2;
            }
        }
    }
    g
}

fn pick<T: Copy>(input: &mut Input, list: &[T]) -> Option<T> {
    (!list.is_empty()).then(|| list[input.u8() as usize % list.len()])
}

fn handle_or_raw(input: &mut Input, list: &[u64]) -> u64 {
    match input.u8() % 4 {
        0 => input.u64(),
        _ => pick(input, list).unwrap_or(0),
    }
}

/// A zero-copy file directly under /dev/shm, as a client creates it.
fn zc_file(input: &mut Input, st: &mut State) -> (String, u64) {
    let path = format!("/dev/shm/cpgrs-fuzz-{}-zc{}", std::process::id(), st.zc_files.len());
    let size = match input.u8() % 4 {
        0 => 56 + input.u8() as u64,
        1 => input.u8() as u64,
        2 => 56 + EVENT_MAX as u64 - proto::DELIVER_HDR_LEN as u64 + (input.u8() as u64 % 8),
        _ => input.u16() as u64,
    };
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create zero-copy file");
    file.set_len(size).expect("size zero-copy file");
    // The MCAST header's msglen at 48 and a little payload at 56.
    let msglen = match input.u8() % 3 {
        0 => size.saturating_sub(56) as u32,
        _ => input.interesting_u32(),
    };
    let _ = file.write_all_at(&msglen.to_le_bytes(), 48);
    let _ = file.write_all_at(input.bytes(8), 56);
    let map_size = match input.u8() % 3 {
        0 => input.interesting_u32() as u64,
        _ => size,
    };
    st.zc_files.push(ZcFile {
        path: path.clone(),
        file,
    });
    (path, map_size)
}

fn frame(input: &mut Input, st: &mut State) -> Vec<u8> {
    let pid = 100 + input.u8() as u32 % 4;
    let mut f = match input.u8() % 20 {
        0 | 1 => proto::join(&name(input), pid, input.u8() as u32 % 3).to_vec(),
        2 => proto::leave(&name(input), pid).to_vec(),
        3 | 4 => {
            let len = input.u8() as usize;
            let mut f = proto::mcast_header(input.u8() as u32 % 5, len).to_vec();
            f.extend_from_slice(input.bytes(len));
            f.resize(proto::MCAST_HDR_LEN + len, 0);
            f
        }
        5 if st.big_frames < 2 => {
            // Around the largest event: DELIVER header + payload = 1 MiB.
            st.big_frames += 1;
            let len = EVENT_MAX - proto::DELIVER_HDR_LEN + (input.u8() as usize % 8) - 4;
            let mut f = proto::mcast_header(2, len).to_vec();
            f.resize(proto::MCAST_HDR_LEN + len, 7);
            f
        }
        6 | 7 => {
            let len = input.u8() as usize;
            let kind = match input.u8() % 5 {
                4 => input.u32(),
                k => k as u32,
            };
            let msglen = match input.u8() % 3 {
                0 => input.interesting_u32(),
                _ => input.u16() as u32 % 600,
            };
            let mut f = proto::partial_header(2, msglen as usize, len, kind).to_vec();
            f.extend_from_slice(input.bytes(len));
            f.resize(proto::PARTIAL_HDR_LEN + len, 0);
            f
        }
        8 => proto::membership(&name(input)).to_vec(),
        9 => proto::header_only(req::LOCAL_GET).to_vec(),
        10 => {
            let g = name(input);
            proto::iteration_initialize(Some(&g), input.u8() as u32 % 5).to_vec()
        }
        11 => proto::with_handle(req::ITERATION_NEXT, handle_or_raw(input, &st.iter_handles)).to_vec(),
        12 => proto::with_handle(req::ITERATION_FINALIZE, handle_or_raw(input, &st.iter_handles)).to_vec(),
        13 => proto::header_only(req::FINALIZE).to_vec(),
        14 if st.zc_files.len() < 16 => {
            let (path, map_size) = zc_file(input, st);
            let path = match input.u8() % 4 {
                // A name beside ours or below it (never outside /dev/shm/cpgrs-fuzz-*).
                0 => {
                    let n = input.u8() as usize % 12;
                    let tail: String = input
                        .bytes(n)
                        .iter()
                        .map(|b| b"ab/.-x"[*b as usize % 6] as char)
                        .collect();
                    format!("{path}{tail}").replace("..", "x.")
                }
                _ => path,
            };
            proto::zc_alloc(map_size, &path).to_vec()
        }
        15 => proto::zc_free(input.u64(), handle_or_raw(input, &st.zc_tokens)).to_vec(),
        16 => proto::with_handle(req::ZC_EXECUTE, handle_or_raw(input, &st.zc_tokens)).to_vec(),
        17 => proto::header_only(match input.u8() % 3 {
            0 => MSG_DISCONNECT,
            1 => req::END,
            _ => input.u32() as i32,
        })
        .to_vec(),
        18 => {
            let n = input.u8() as usize;
            input.bytes(n).to_vec()
        }
        _ => Vec::new(),
    };
    // Sometimes truncate or corrupt the frame.
    match input.u8() % 8 {
        0 => {
            let keep = input.u16() as usize;
            f.truncate(keep.min(f.len()));
        }
        1 if !f.is_empty() => {
            let at = input.u16() as usize % f.len();
            f[at] = input.u8();
        }
        _ => {}
    }
    f
}

fn check_reply(b: &[u8]) {
    let h = proto::res_header(b).expect("reply has a header");
    assert_eq!(h.size as usize, b.len(), "size field");
    assert!(
        [
            proto::RES_HDR,
            32,
            proto::ITERATION_NEXT_RES_LEN,
            proto::MEMBERSHIP_RES_LEN
        ]
        .contains(&b.len()),
        "reply of {} bytes",
        b.len()
    );
    assert!(
        h.error == 1 || CsError::check(h.error).is_err() && (2..=30).contains(&h.error),
        "error code {}",
        h.error
    );
    if b.len() == proto::MEMBERSHIP_RES_LEN {
        assert!(proto::membership_entries(b).is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let budget = Budget::new(data.len(), 8 << 20, 512);
    let mut input = Input::new(data);
    let mut s = Service::new(1 + input.u8() as u32 % 3, 1);
    let mut st = State {
        conns: Vec::new(),
        next_id: 1,
        iter_handles: Vec::new(),
        zc_tokens: Vec::new(),
        zc_files: Vec::new(),
        big_frames: 0,
    };
    let me = my_uid();
    let mut ops = 0;
    while !input.is_empty() && ops < 1024 {
        ops += 1;
        match input.u8() % 16 {
            0 if st.conns.len() < MAX_CONNS => {
                let id = st.next_id;
                st.next_id += 1;
                let uid = if input.u8().is_multiple_of(4) { STRANGER } else { me };
                let peer = Peer {
                    pid: 100 + input.u8() as u32 % 4,
                    uid,
                    gid: uid,
                };
                s.connect(id, peer);
                st.conns.push((id, peer));
            }
            1 => {
                if let Some(i) = pick(&mut input, &(0..st.conns.len()).collect::<Vec<_>>()) {
                    let (id, _) = st.conns.remove(i);
                    s.disconnect(id);
                }
            }
            _ => {
                // Also frames for a connection that is gone (or never was).
                let (id, peer) = match pick(&mut input, &st.conns) {
                    Some(c) if !input.u8().is_multiple_of(16) => c,
                    _ => (
                        st.next_id + 7,
                        Peer {
                            pid: 1,
                            uid: me,
                            gid: me,
                        },
                    ),
                };
                let files_before = st.zc_files.len();
                let f = frame(&mut input, &mut st);
                let is_iter_init = f.len() >= 4 && f[..4] == req::ITERATION_INITIALIZE.to_le_bytes();
                match s.handle(id, &f) {
                    Outcome::Reply(b) => {
                        check_reply(&b);
                        if is_iter_init {
                            if let Some(h) = proto::iteration_handle(&b) {
                                st.iter_handles.push(h);
                            }
                        }
                    }
                    Outcome::NoReply => {}
                    Outcome::Disconnect => {
                        if let Some(i) = st.conns.iter().position(|c| c.0 == id) {
                            st.conns.remove(i);
                            s.disconnect(id);
                        }
                    }
                }
                if st.zc_files.len() > files_before {
                    let zf = st.zc_files.last().unwrap();
                    let exists = std::path::Path::new(&zf.path).exists();
                    if peer.uid != me {
                        assert!(exists, "server unlinked a file its client does not own");
                    } else if !exists {
                        let mut tok = [0u8; 8];
                        if zf.file.read_exact_at(&mut tok, 8).is_ok() {
                            st.zc_tokens.push(u64::from_le_bytes(tok));
                        }
                    }
                }
            }
        }
        for (to, ev) in s.take_events() {
            assert!(
                st.conns.iter().any(|c| c.0 == to),
                "event for connection {to} that is gone"
            );
            assert!(ev.len() <= EVENT_MAX, "event of {} bytes", ev.len());
            let h = proto::res_header(&ev).expect("event header");
            assert_eq!(h.size as usize, ev.len());
            match proto::event(&ev) {
                Ok(Event::Unknown(id)) => panic!("unknown event id {id}"),
                Ok(_) => {}
                Err(_) => panic!("server produced an event our client refuses"),
            }
        }
    }
    for (id, _) in std::mem::take(&mut st.conns) {
        s.disconnect(id);
    }
    let _ = s.take_events();
    assert_eq!(s.member_count(), 0, "members left after every connection closed");
    for zf in &st.zc_files {
        let _ = std::fs::remove_file(&zf.path);
    }
    drop(s);
    drop(budget);
});

/// Our own uid (the owner of the zero-copy files we create).
fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

//! The CPG client shared by threads, against an in-process server on a
//! private service name (found with c-tests/threads_hammer_ours.c):
//! a multicast racing `finalize`, fragmented multicasts of two threads on
//! one handle, and fragments taken by concurrent dispatchers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpg_rs::cpg::reassembly::Reassembly;
use cpg_rs::cpg::{Callback, Cpg, DispatchMode};
use cpg_rs::error::{CsError, CS_OK};
use cpg_rs::proto::{self, Event, GroupName};
use cpg_rs::server::{flow::Limits, IpcMode};

mod common;
use common::{Client, Running, SERIAL};

const WAIT: Duration = Duration::from_secs(20);
/// Larger than two fragments.
const BIG: usize = 2_500_000;

/// A raw client joined to `group` with a pid of our choosing, so that it
/// can share the group with a `Cpg` of the same process.
fn raw(r: &Running, group: &GroupName, pid: u32) -> Client {
    let mut c = Client::connect(r);
    assert_eq!(c.error_of(&proto::join(group, pid, 0)), CS_OK);
    c
}

fn name(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

#[test]
fn mcast_after_finalize_is_refused_not_lost() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = Running::start(IpcMode::Shm, Limits::default(), 3);
    let g = name("late");
    let mut obs = raw(&srv, &g, 4242);
    // A thread that looked the handle up before another finalized it
    // still holds the connection: its multicast must not be accepted and
    // then dropped by the server.
    let cpg = Arc::new(Cpg::connect_to(&srv.service, 0, 0).expect("connect"));
    cpg.join(&g).expect("join");
    cpg.mcast(2, &[b"early"]).expect("mcast before finalize");
    cpg.finalize().expect("finalize");
    assert_eq!(cpg.mcast(2, &[b"late"]), Err(CsError::BadHandle));
    assert_eq!(cpg.mcast(2, &[&vec![1u8; BIG]]), Err(CsError::BadHandle));
    let mut delivered = Vec::new();
    while let Some(f) = obs.event(Duration::from_millis(300)) {
        if let Ok(Event::Deliver { payload, .. }) = proto::event(&f) {
            delivered.push(f[payload].to_vec());
        }
    }
    assert_eq!(delivered, vec![b"early".to_vec()]);
}

#[test]
fn fragmented_mcasts_of_two_threads_stay_whole() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = Running::start(IpcMode::Shm, Limits::default(), 3);
    let g = name("frag-send");
    let mut obs = raw(&srv, &g, 4243);
    let cpg = Arc::new(Cpg::connect_to(&srv.service, 0, 0).expect("connect"));
    cpg.join(&g).expect("join");
    // Our own copies come back to us: keep reading them, or the server's
    // flow control stops the senders.
    let stop = Arc::new(AtomicUsize::new(0));
    let drain = {
        let (cpg, stop) = (cpg.clone(), stop.clone());
        std::thread::spawn(move || {
            while stop.load(Ordering::SeqCst) == 0 {
                cpg.dispatch(DispatchMode::All, |_| {}).expect("dispatch");
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let senders: Vec<_> = (0..4u8)
        .map(|t| {
            let cpg = cpg.clone();
            std::thread::spawn(move || {
                for k in 0..4u8 {
                    let msg = vec![t * 16 + k; BIG];
                    let start = Instant::now();
                    loop {
                        match cpg.mcast(2, &[&msg]) {
                            Err(CsError::TryAgain) if start.elapsed() < WAIT => {
                                std::thread::sleep(Duration::from_millis(5))
                            }
                            other => break other,
                        }
                    }
                    .expect("fragmented mcast");
                }
            })
        })
        .collect();
    let mut whole = Vec::new();
    let mut r = Reassembly::default();
    let start = Instant::now();
    while whole.len() < 16 && start.elapsed() < WAIT {
        let Some(f) = obs.event(Duration::from_millis(100)) else {
            continue;
        };
        if let Ok(Event::PartialDeliver {
            msglen,
            nodeid,
            pid,
            kind,
            payload,
            ..
        }) = proto::event(&f)
        {
            if let Some(m) = r.add(nodeid, pid, kind, msglen, &f[payload]) {
                assert!(m.len() == BIG && m.iter().all(|&b| b == m[0]), "a mixed message");
                whole.push(m[0]);
            }
        }
    }
    for s in senders {
        s.join().expect("sender");
    }
    stop.store(1, Ordering::SeqCst);
    drain.join().expect("drain");
    whole.sort();
    assert_eq!(
        whole,
        (0..4u8)
            .flat_map(|t| (0..4u8).map(move |k| t * 16 + k))
            .collect::<Vec<_>>()
    );
    cpg.finalize().expect("finalize");
}

#[test]
fn concurrent_dispatchers_reassemble_every_message() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = Running::start(IpcMode::Shm, Limits::default(), 3);
    let g = name("frag-recv");
    let cpg = Arc::new(Cpg::connect_to(&srv.service, 0, 0).expect("connect"));
    cpg.join(&g).expect("join");
    let mut sender = raw(&srv, &g, 4244);
    const MSGS: usize = 200;
    const FRAG: usize = 1000;
    let got = Arc::new(Mutex::new(Vec::new()));
    let dispatchers: Vec<_> = (0..4)
        .map(|_| {
            let (cpg, got) = (cpg.clone(), got.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while got.lock().unwrap().len() < MSGS && start.elapsed() < WAIT {
                    let r = cpg.dispatch(DispatchMode::All, |cb| {
                        if let Callback::Deliver { msg, pid: 4244, .. } = cb {
                            got.lock().unwrap().push(msg.to_vec());
                        }
                    });
                    assert_eq!(r, Ok(()));
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    // Many small fragments per message: plenty of chances for two
    // dispatchers to take neighbouring fragments.
    let mut buf = [0u8; proto::RES_HDR];
    for m in 0..MSGS {
        let msglen = 6 * FRAG;
        for f in 0..6 {
            let kind = match f {
                0 => proto::FRAG_FIRST,
                5 => proto::FRAG_LAST,
                _ => proto::FRAG_CONTINUED,
            };
            let chunk: Vec<u8> = (0..FRAG).map(|i| (m * 7 + f * FRAG + i) as u8).collect();
            let hdr = proto::partial_header(2, msglen, FRAG, kind);
            let n = sender.req.request(&[&hdr, &chunk], &mut buf).expect("fragment");
            assert_eq!(proto::res_header(&buf[..n]).unwrap().error, CS_OK);
        }
    }
    for d in dispatchers {
        d.join().expect("dispatcher");
    }
    let got = got.lock().unwrap();
    assert_eq!(got.len(), MSGS, "messages lost in reassembly");
    for msg in got.iter() {
        let m = (0..MSGS)
            .find(|m| msg[0] == (m * 7) as u8 && msg[1] == (m * 7 + 1) as u8)
            .expect("known message");
        let want: Vec<u8> = (0..6 * FRAG).map(|i| (m * 7 + i) as u8).collect();
        assert_eq!(msg, &want);
    }
    cpg.finalize().expect("finalize");
}

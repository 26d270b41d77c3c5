//! The server library in-process, driven through our own IPC client on a
//! unique service name: join / confchg / delivery order / leave /
//! PROCDOWN / iteration / flow control / clean shutdown.

use std::time::{Duration, Instant};

use cpg_rs::error::{CsError, CS_OK};
use cpg_rs::ipc::sys;
use cpg_rs::ipc::zerocopy::ZcBuffer;
use cpg_rs::proto::{self, req, Event, GroupName};
use cpg_rs::server::{flow::Limits, service, IpcMode};

mod common;
use common::{leftovers, Client, Running, SERIAL, WAIT};

fn name(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

/// Member pids, (pid, reason) left, (pid, reason) joined.
type Change = (Vec<u32>, Vec<(u32, u32)>, Vec<(u32, u32)>);

fn confchg(ev: Event) -> Change {
    match ev {
        Event::Confchg {
            members, left, joined, ..
        } => (
            members.iter().map(|a| a.pid).collect(),
            left.iter().map(|a| (a.pid, a.reason)).collect(),
            joined.iter().map(|a| (a.pid, a.reason)).collect(),
        ),
        other => panic!("expected a confchg, got {other:?}"),
    }
}

fn total_order(ipc: IpcMode) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut srv = Running::start(ipc, Limits::default(), 5);
    let g = name("order");
    let mut a = Client::connect(&srv);
    let mut b = Client::connect(&srv);
    assert_eq!(a.error_of(&proto::join(&g, 101, 0)), CS_OK);
    assert_eq!(confchg(a.expect_event()), (vec![101], vec![], vec![(101, 1)]));
    assert_eq!(b.error_of(&proto::join(&g, 102, 0)), CS_OK);
    assert_eq!(confchg(a.expect_event()), (vec![101, 102], vec![], vec![(102, 1)]));
    assert_eq!(confchg(b.expect_event()), (vec![101, 102], vec![], vec![(102, 1)]));
    assert_eq!(a.error_of(&proto::join(&g, 101, 0)), CsError::Exist as i32);

    // Both send interleaved; both see one and the same order, own included.
    for i in 0..200u32 {
        let c = if i % 3 == 0 { &mut b } else { &mut a };
        c.mcast(format!("m{i}").as_bytes()).unwrap();
    }
    let mut seen = [Vec::new(), Vec::new()];
    for (k, c) in [&mut a, &mut b].into_iter().enumerate() {
        for _ in 0..200 {
            match c.next() {
                (Event::Deliver { pid, nodeid: 5, .. }, p) => seen[k].push((pid, p)),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(seen[0], seen[1]);
    let from_a: Vec<_> = seen[0]
        .iter()
        .filter(|(p, _)| *p == 101)
        .map(|(_, m)| m.clone())
        .collect();
    let want: Vec<_> = (0..200u32)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("m{i}").into_bytes())
        .collect();
    assert_eq!(from_a, want, "per-sender FIFO");

    // Leave: both see it; the leaver may join again (fixed upstream defect).
    assert_eq!(b.error_of(&proto::leave(&g, 102)), CS_OK);
    assert_eq!(confchg(a.expect_event()), (vec![101], vec![(102, 2)], vec![]));
    assert_eq!(confchg(b.expect_event()), (vec![101], vec![(102, 2)], vec![]));
    assert_eq!(b.error_of(&proto::leave(&g, 102)), CsError::NotExist as i32);
    assert_eq!(b.error_of(&proto::join(&g, 102, 0)), CS_OK);
    assert_eq!(confchg(a.expect_event()).2, vec![(102, 1)]);
    assert_eq!(confchg(b.expect_event()).2, vec![(102, 1)]);

    // A dies: B sees PROCDOWN.
    drop(a);
    assert_eq!(confchg(b.expect_event()), (vec![102], vec![(101, 5)], vec![]));
    drop(b);
    srv.stop();
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn total_order_shm() {
    total_order(IpcMode::Shm);
}

#[test]
fn total_order_socket() {
    total_order(IpcMode::Socket);
}

#[test]
fn replies_membership_iteration_and_unknown_ids() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut srv = Running::start(IpcMode::Shm, Limits::default(), 5);
    let mut c = Client::connect(&srv);
    let r = c.call(&proto::header_only(req::LOCAL_GET));
    assert_eq!((r.len(), proto::local_nodeid(&r)), (32, Some(5)));
    let r = c.call(&proto::header_only(13));
    assert_eq!(r.len(), 24);
    assert_eq!(proto::res_header(&r).unwrap().id, 0);
    assert_eq!(proto::res_header(&r).unwrap().error, CsError::InvalidParam as i32);

    let (g1, g2) = (name("G1"), name("G2"));
    let mut others: Vec<Client> = (0..4).map(|_| Client::connect(&srv)).collect();
    for (k, (pid, g)) in [(14085, g1), (14085, g2), (14086, g1), (14087, g1), (14088, g2)]
        .into_iter()
        .enumerate()
    {
        let client = if k == 0 { &mut c } else { &mut others[k - 1] };
        assert_eq!(client.error_of(&proto::join(&g, pid, 0)), CS_OK);
    }
    let r = c.call(&proto::membership(&g1));
    assert_eq!(r.len(), proto::MEMBERSHIP_RES_LEN);
    let pids: Vec<u32> = proto::membership_entries(&r).unwrap().iter().map(|a| a.pid).collect();
    assert_eq!(pids, vec![14085, 14086, 14087]);

    let r = c.call(&proto::iteration_initialize(None, 3));
    let h = proto::iteration_handle(&r).unwrap();
    let mut items = Vec::new();
    loop {
        let r = c.call(&proto::with_handle(req::ITERATION_NEXT, h));
        assert_eq!(r.len(), proto::ITERATION_NEXT_RES_LEN);
        match proto::res_header(&r).unwrap().error {
            CS_OK => {
                let (g, _, pid) = proto::iteration_description(&r).unwrap();
                items.push((String::from_utf8_lossy(g.bytes()).into_owned(), pid));
            }
            e => {
                assert_eq!(e, CsError::NoSections as i32);
                break;
            }
        }
    }
    let want: Vec<(String, u32)> = [
        ("G2", 14085),
        ("G2", 14088),
        ("G1", 14085),
        ("G1", 14087),
        ("G1", 14086),
    ]
    .iter()
    .map(|(g, p)| (g.to_string(), *p))
    .collect();
    assert_eq!(items, want);
    // Wraps after NO_SECTIONS; unknown handles are LIBRARY.
    let r = c.call(&proto::with_handle(req::ITERATION_NEXT, h));
    assert_eq!(proto::iteration_description(&r).unwrap().2, 14085);
    assert_eq!(c.error_of(&proto::with_handle(req::ITERATION_FINALIZE, h)), CS_OK);
    assert_eq!(
        c.error_of(&proto::with_handle(req::ITERATION_FINALIZE, h)),
        CsError::Library as i32
    );
    assert_eq!(
        c.error_of(&proto::with_handle(req::ITERATION_NEXT, h)),
        CsError::Library as i32
    );

    // FINALIZE: the member leaves with PROCDOWN at once.
    assert_eq!(c.error_of(&proto::header_only(req::FINALIZE)), CS_OK);
    let r = others[0].call(&proto::membership(&g1));
    let pids: Vec<u32> = proto::membership_entries(&r).unwrap().iter().map(|a| a.pid).collect();
    assert_eq!(pids, vec![14086, 14087]);
    drop(c);
    drop(others);
    srv.stop();
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn shutdown_disconnects_clients_and_cleans_up() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for ipc in [IpcMode::Shm, IpcMode::Socket] {
        let mut srv = Running::start(ipc, Limits::default(), 5);
        let mut a = Client::connect(&srv);
        let mut b = Client::connect(&srv);
        assert_eq!(a.error_of(&proto::join(&name("x"), 1, 0)), CS_OK);
        assert!(!leftovers().is_empty());
        srv.stop();
        assert_eq!(leftovers(), Vec::<String>::new(), "{ipc:?}");
        let mut buf = vec![0u8; 1 << 20];
        assert_eq!(
            b.req.request(&[&proto::header_only(req::LOCAL_GET)], &mut buf),
            Err(CsError::Library)
        );
        let start = Instant::now();
        loop {
            match a.ev.try_recv(&mut buf) {
                Err(CsError::Library) => break,
                other if start.elapsed() > WAIT => panic!("disconnect not seen ({ipc:?}): {other:?}"),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

#[test]
fn flow_control_without_loss_then_slow_consumer_dropped() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits {
        soft: 256 << 10,
        hard: 64 << 20,
        stall: Duration::from_secs(2),
    };
    let mut srv = Running::start(IpcMode::Shm, limits, 5);
    let g = name("fc");
    let mut sender = Client::connect(&srv);
    let mut slow = Client::connect(&srv);
    assert_eq!(sender.error_of(&proto::join(&g, 1, 0)), CS_OK);
    assert_eq!(slow.error_of(&proto::join(&g, 2, 0)), CS_OK);
    while sender.event(Duration::from_millis(50)).is_some() {}

    // The slow member does not read: its ring (1 MiB) and then its queue
    // fill, flow control stops the sender, nothing is lost.
    let payload = vec![7u8; 16 << 10];
    let mut sent = 0u32;
    let mut refused = 0;
    let mut delivered_to_sender = 0u32;
    let start = Instant::now();
    while start.elapsed() < WAIT && refused < 50 {
        let mut p = payload.clone();
        p[..4].copy_from_slice(&sent.to_le_bytes());
        match sender.mcast(&p) {
            Ok(()) => sent += 1,
            Err(CsError::TryAgain) => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e:?}"),
        }
        while let Some(f) = sender.event(Duration::ZERO) {
            if matches!(proto::event(&f), Ok(Event::Deliver { .. })) {
                delivered_to_sender += 1;
            }
        }
    }
    assert!(refused >= 50, "flow control never engaged ({sent} sent)");
    assert_eq!(sender.req.flow_control(), 2);

    // The slow member now reads everything, in order, without loss.
    let mut next = 0u32;
    while next < sent {
        let (ev, p) = slow.next();
        if let Event::Deliver { .. } = ev {
            assert_eq!(u32::from_le_bytes([p[0], p[1], p[2], p[3]]), next);
            next += 1;
        }
    }
    let start = Instant::now();
    while sender.req.flow_control() != 0 {
        assert!(start.elapsed() < WAIT, "flow control not released");
        std::thread::sleep(Duration::from_millis(5));
    }
    while delivered_to_sender < sent {
        if let Some(f) = sender.event(WAIT) {
            if matches!(proto::event(&f), Ok(Event::Deliver { .. })) {
                delivered_to_sender += 1;
            }
        } else {
            panic!("sender missed its own messages");
        }
    }

    // Now it stops reading for good: after the stall timeout it is
    // disconnected and the sender sees its PROCDOWN.
    let start = Instant::now();
    let mut gone = false;
    while start.elapsed() < Duration::from_secs(20) && !gone {
        let _ = sender.mcast(&payload);
        while let Some(f) = sender.event(Duration::from_millis(1)) {
            if let Ok(Event::Confchg { left, .. }) = proto::event(&f) {
                assert_eq!((left[0].pid, left[0].reason), (2, proto::REASON_PROCDOWN));
                gone = true;
            }
        }
    }
    assert!(gone, "slow consumer was not disconnected");
    drop(slow);
    drop(sender);
    srv.stop();
    assert_eq!(leftovers(), Vec::<String>::new());
}

/// A zero-copy buffer registered with the server, its MCAST header set
/// for `len` bytes.
fn zc_buffer(c: &mut Client, len: usize) -> ZcBuffer {
    let buf = ZcBuffer::create(len).expect("zero-copy file");
    let err = c.error_of(&proto::zc_alloc(buf.map_size() as u64, buf.path()));
    buf.unlink();
    assert_eq!(err, CS_OK, "ZC_ALLOC");
    buf.write_map_size();
    buf.write_mcast_header(&proto::mcast_header(2, len));
    buf
}

/// Regression: a zero-copy sender (a synchronous request, for which
/// libcpg does not look at the flow-control word) that never reads its
/// events used to be served until its own queue passed the hard limit and
/// it was disconnected. It must get CS_ERR_TRY_AGAIN replies instead, and
/// everything it was told was sent must arrive. Also: the events of a
/// request are written and signalled before its reply, so a client that
/// dispatches when the call returns finds its own message.
#[test]
fn zero_copy_sender_gets_try_again_not_disconnected() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const LEN: usize = 64 << 10;
    for ipc in [IpcMode::Shm, IpcMode::Socket] {
        let limits = Limits {
            soft: 256 << 10,
            hard: 2 << 20,
            stall: Duration::from_secs(60),
        };
        let mut srv = Running::start(ipc, limits, 5);
        let mut c = Client::connect(&srv);
        assert_eq!(c.error_of(&proto::join(&name("zc"), 77, 0)), CS_OK);
        assert!(matches!(c.expect_event(), Event::Confchg { .. }));
        let buf = zc_buffer(&mut c, LEN);
        let execute = proto::with_handle(req::ZC_EXECUTE, buf.server_address());

        // Dispatching after every call: the message is already there, its
        // notification byte too (libqb reads an event only after the byte).
        for i in 0..100 {
            assert_eq!(c.error_of(&execute), CS_OK, "{ipc:?} send {i}");
            if ipc == IpcMode::Shm {
                let fd = c.ev.link().setup_fd();
                let revents = sys::poll_now(fd, libc::POLLIN).unwrap();
                assert_ne!(
                    revents & libc::POLLIN,
                    0,
                    "{ipc:?} send {i}: no notification byte with the reply"
                );
            }
            match c.event(Duration::ZERO).map(|f| proto::event(&f).map(|e| (e, f.len()))) {
                Some(Ok((Event::Deliver { pid: 77, .. }, n))) => assert_eq!(n, proto::DELIVER_HDR_LEN + LEN),
                other => panic!("{ipc:?} send {i}: own message not there with the reply: {other:?}"),
            }
        }

        // Never reading: refused before the hard limit, not disconnected.
        let mut accepted = 0usize;
        let refused = loop {
            match c.error_of(&execute) {
                CS_OK => accepted += 1,
                e if e == CsError::TryAgain as i32 => break true,
                e => panic!("{ipc:?}: ZC_EXECUTE returned {e} after {accepted}"),
            }
            if accepted * LEN > 8 * limits.hard {
                break false;
            }
        };
        assert!(refused, "{ipc:?}: {accepted} accepted, never CS_ERR_TRY_AGAIN");
        // What was accepted fits the hard limit plus what the event
        // channel holds (a 1 MiB ring, or the socket buffers).
        assert!(
            accepted * LEN <= limits.hard + (4 << 20),
            "{ipc:?}: {accepted} accepted"
        );
        for i in 0..accepted {
            match c.next() {
                (Event::Deliver { pid: 77, .. }, p) => assert_eq!(p.len(), LEN),
                other => panic!("{ipc:?}: event {i}: {other:?}"),
            }
        }
        // Read up: accepted again once the congestion is over.
        let start = Instant::now();
        loop {
            match c.error_of(&execute) {
                CS_OK => break,
                e if e == CsError::TryAgain as i32 && start.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                e => panic!("{ipc:?}: ZC_EXECUTE returned {e} after the queue drained"),
            }
        }
        assert!(matches!(c.next().0, Event::Deliver { pid: 77, .. }));
        drop(buf);
        drop(c);
        srv.stop();
        assert_eq!(leftovers(), Vec::<String>::new());
    }
}

fn totem(ev: Event) -> (proto::RingId, Vec<u32>) {
    match ev {
        Event::TotemConfchg { ring_id, members } => (ring_id, members),
        other => panic!("expected a totem confchg, got {other:?}"),
    }
}

/// Model v1 with CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF (what the EVS
/// mapping relies on): the totem confchg comes right after the joiner's own
/// confchg and before any message, once per join, members = [local
/// nodeid], ring id {nodeid, seq} with a seq that does not go back when
/// the server restarts.
#[test]
fn initial_totem_confchg_after_own_join_before_messages() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const FLAG: u32 = 1;
    let g = name("evs");
    let mut last_seq = 0;
    for round in 0..2 {
        let before = service::ring_seq_now();
        let mut srv = Running::start(IpcMode::Shm, Limits::default(), 5);
        let mut a = Client::connect(&srv);
        let mut b = Client::connect(&srv);
        let mut c = Client::connect(&srv);
        assert_eq!(a.error_of(&proto::join(&g, 301, FLAG)), CS_OK);
        assert_eq!(confchg(a.expect_event()).2, vec![(301, 1)]);
        let (ring, members) = totem(a.expect_event());
        assert_eq!((ring.nodeid, members), (5, vec![5]));
        assert!(
            ring.seq >= before && ring.seq > last_seq,
            "round {round}: seq {} (before {before})",
            ring.seq
        );
        last_seq = ring.seq;

        // B joins without the flag: no totem confchg for it; A none again.
        assert_eq!(b.error_of(&proto::join(&g, 302, 0)), CS_OK);
        assert_eq!(confchg(a.expect_event()).2, vec![(302, 1)]);
        assert_eq!(confchg(b.expect_event()).2, vec![(302, 1)]);
        b.mcast(b"m1").unwrap();
        assert_eq!(a.next().1, b"m1");
        assert_eq!(b.next().1, b"m1");

        // C joins (flag) while B keeps sending: its confchg, its totem
        // confchg, then only messages sent after its join.
        b.mcast(b"m2").unwrap();
        assert_eq!(c.error_of(&proto::join(&g, 303, FLAG)), CS_OK);
        b.mcast(b"m3").unwrap();
        assert_eq!(confchg(c.expect_event()), (vec![301, 302, 303], vec![], vec![(303, 1)]));
        assert_eq!(totem(c.expect_event()), (ring, vec![5]));
        assert_eq!(c.next().1, b"m3");
        for x in [&mut a, &mut b] {
            assert_eq!(x.next().1, b"m2");
            assert_eq!(confchg(x.expect_event()).2, vec![(303, 1)]);
            assert_eq!(x.next().1, b"m3");
        }

        // A completed leave resets the connection; a new join with the
        // flag gets the initial totem confchg again.
        assert_eq!(c.error_of(&proto::leave(&g, 303)), CS_OK);
        assert_eq!(confchg(c.expect_event()).1, vec![(303, 2)]);
        assert_eq!(c.error_of(&proto::join(&g, 303, FLAG)), CS_OK);
        assert_eq!(confchg(c.expect_event()).2, vec![(303, 1)]);
        assert_eq!(totem(c.expect_event()), (ring, vec![5]));
        b.mcast(b"m4").unwrap();
        assert_eq!(c.next().1, b"m4");
        for x in [&mut a, &mut b] {
            assert_eq!(confchg(x.expect_event()).1, vec![(303, 2)]);
            assert_eq!(confchg(x.expect_event()).2, vec![(303, 1)]);
            assert_eq!(x.next().1, b"m4");
            assert!(x.event(Duration::from_millis(50)).is_none(), "nothing else");
        }
        assert!(c.event(Duration::from_millis(50)).is_none(), "nothing else");
        drop((a, b, c));
        srv.stop();
        assert_eq!(leftovers(), Vec::<String>::new());
        // The next start must not reuse the millisecond.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A member sending a fragmented message larger than the soft limit
/// cannot read its own fragments before its call returns. It must be
/// able to finish the message (corosync takes 64 MiB in one call): its
/// flow-control word stays 0 until the last fragment, and only then
/// turns to 2. Before, the word rose mid-message and libcpg gave up after
/// a second of retries with CS_ERR_TRY_AGAIN.
#[test]
fn member_finishes_fragmented_message_above_soft_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const FRAG: usize = 1_000_000;
    const FRAGS: usize = 6;
    let limits = Limits {
        soft: 256 << 10,
        hard: 64 << 20,
        stall: Duration::from_secs(60),
    };
    let mut srv = Running::start(IpcMode::Shm, limits, 5);
    let mut c = Client::connect(&srv);
    assert_eq!(c.error_of(&proto::join(&name("frag"), 88, 0)), CS_OK);
    assert!(matches!(c.expect_event(), Event::Confchg { .. }));
    let payload = vec![0x42u8; FRAG];
    let mut resp = vec![0u8; 64];
    for message in 0..2 {
        for k in 0..FRAGS {
            let kind = match k {
                0 => proto::FRAG_FIRST,
                k if k == FRAGS - 1 => proto::FRAG_LAST,
                _ => proto::FRAG_CONTINUED,
            };
            let hdr = proto::partial_header(2, FRAG * FRAGS, FRAG, kind);
            // As libcpg: the send backs off while the word is 1 or 2.
            let sent = c.req.send(&[&hdr, &payload], 2);
            if message == 1 && k == 0 {
                // The server is congested by our own unread fragments: a
                // new message is refused until we read.
                assert_eq!(sent, Err(CsError::TryAgain), "first fragment of the second message");
                break;
            }
            assert_eq!(sent, Ok(()), "message {message} fragment {k}");
            let n = c.req.recv(&mut resp).unwrap();
            assert_eq!(proto::res_header(&resp[..n]).unwrap().error, CS_OK, "fragment {k}");
        }
    }
    assert_eq!(c.req.flow_control(), 2, "flow control on after the message");
    for k in 0..FRAGS {
        match c.next().0 {
            Event::PartialDeliver { pid: 88, kind, .. } => {
                assert_eq!(kind == proto::FRAG_LAST, k == FRAGS - 1, "fragment {k}")
            }
            other => panic!("fragment {k}: {other:?}"),
        }
    }
    let start = Instant::now();
    while c.req.flow_control() != 0 {
        assert!(start.elapsed() < WAIT, "flow control not released");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(c);
    srv.stop();
    assert_eq!(leftovers(), Vec::<String>::new());
}

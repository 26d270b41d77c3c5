//! The shared-memory ring as the client and the server use it, with the
//! other side hostile: between our reads and writes the peer may rewrite
//! any header field (positions, semaphore, reference count, flow-control
//! word) or any data word (chunk lengths, magics), or post and take counts
//! without chunks. The ring lives in an ordinary shared mapping; the
//! harness maps the same files a second time as the peer.
//!
//! Safety: never an out-of-bounds access (ASan), a panic or a hang; the
//! lengths returned fit the caller's buffer. Correctness: while the peer
//! has done nothing hostile, the ring is an exact FIFO of the chunks
//! written, and an empty ring accepts any chunk up to `max_chunk`.
#![no_main]

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use cpg_fuzz::{scratch_dir, Budget, Input, PeerMap};
use cpg_rs::ipc::ring::{self, Ring, RingError};
use libfuzzer_sys::fuzz_target;

struct Setup {
    /// The creator's view (a server) and an opener's view (a client).
    writer: Ring,
    reader: Ring,
    hdr: PeerMap,
    data: PeerMap,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = scratch_dir("ring");
        let base = format!("{dir}/qb-event-fuzz");
        // The smallest ring libqb makes: one page of data.
        let writer = Ring::create(&base, 1, None).expect("create ring");
        let reader = Ring::open(&base).expect("open ring");
        let hdr = PeerMap::new(writer.hdr_path());
        let data = PeerMap::new(writer.data_path());
        // Nothing needs the names any more: no file outlives the fuzzer.
        for p in writer.paths() {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir(&dir);
        Setup {
            writer,
            reader,
            hdr,
            data,
        }
    })
}

const HEADER_FIELDS: [usize; 7] = [
    ring::OFF_WRITE_PT,
    ring::OFF_READ_PT,
    ring::OFF_WORD_SIZE,
    ring::OFF_REF_COUNT,
    ring::OFF_SEM,
    ring::OFF_SEM + 4,
    ring::OFF_USER,
];

fn reset(s: &Setup) {
    s.data.fill(0);
    for off in HEADER_FIELDS {
        s.hdr.put_u32(off, 0);
    }
    s.hdr.put_u32(ring::OFF_WORD_SIZE, (s.data.len() / 4) as u32);
    s.hdr.put_u32(ring::OFF_SEM + 8, ring::SEM_SHARED);
    s.hdr.put_u32(ring::OFF_REF_COUNT, 2);
}

fn payload(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    reset(s);
    let _budget = Budget::new(data.len(), 1 << 20, 0);
    let words = s.data.len() / 4;
    let max_chunk = s.writer.max_chunk();
    assert_eq!(max_chunk, s.reader.max_chunk());
    let mut input = Input::new(data);
    // Chunks written and not yet read, while the peer has been honest.
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut honest = true;
    let mut seq = 0u32;
    let mut sleeps = 0;
    let mut ops = 0;
    while !input.is_empty() && ops < 512 {
        ops += 1;
        // Either view may play either role: both map the same files.
        let op = input.u8();
        let (w, r) = if op & 0x80 == 0 {
            (&s.writer, &s.reader)
        } else {
            (&s.reader, &s.writer)
        };
        match op & 0x7f {
            // Write a chunk (sometimes too large for the ring).
            0..=39 => {
                let len = match input.u8() % 4 {
                    0 => input.u8() as usize,
                    1 => max_chunk - (input.u8() as usize % 16),
                    _ => input.u16() as usize % (max_chunk + 64),
                };
                seq += 1;
                let p = payload(seq, len);
                let was_empty = model.is_empty();
                let split = (input.u8() as usize).min(len);
                match w.write(&[&p[..split], &p[split..]]) {
                    Ok(()) => {
                        assert!(len <= max_chunk);
                        // The model only means something while the peer is honest.
                        if honest {
                            model.push_back(p);
                        }
                    }
                    Err(RingError::Full) => {
                        assert!(
                            !(honest && was_empty && len <= max_chunk),
                            "an empty ring refused {len} bytes"
                        );
                    }
                    Err(RingError::Corrupt) => assert!(!honest, "honest ring reported corrupt on write"),
                    Err(RingError::TooSmall(_)) => panic!("write returned TooSmall"),
                }
            }
            // Read a chunk into a buffer of some size.
            40..=79 => {
                let size = match input.u8() % 3 {
                    0 => max_chunk,
                    1 => input.u8() as usize,
                    _ => input.u16() as usize % (max_chunk + 64),
                };
                let mut buf = vec![0u8; size];
                match r.try_read(&mut buf) {
                    Ok(Some(n)) => {
                        assert!(n <= size && n <= max_chunk);
                        if honest {
                            let want = model.pop_front().expect("read a chunk nobody wrote");
                            assert_eq!(&buf[..n], &want[..], "FIFO order or content broken");
                        }
                    }
                    Ok(None) => assert!(!honest || model.is_empty(), "chunks lost"),
                    Err(RingError::TooSmall(n)) => {
                        assert!(n > size && n <= max_chunk);
                        if honest {
                            assert_eq!(n, model.front().expect("queued chunk").len());
                        }
                    }
                    Err(RingError::Corrupt) => assert!(!honest, "honest ring reported corrupt on read"),
                    Err(RingError::Full) => panic!("read returned Full"),
                }
            }
            // Read without having taken a count (a peer that lies about it).
            80..=83 => {
                honest = false;
                let mut buf = vec![0u8; max_chunk];
                if let Ok(n) = r.read_taken(&mut buf) {
                    assert!(n <= max_chunk);
                }
            }
            // The peer rewrites a header field.
            84..=95 => {
                honest = false;
                let off = HEADER_FIELDS[input.u8() as usize % HEADER_FIELDS.len()];
                let v = match input.u8() % 3 {
                    0 => input.u16() as u32 % (words as u32 + 4),
                    _ => input.interesting_u32(),
                };
                s.hdr.put_u32(off, v);
            }
            // The peer rewrites a data word: a length, a magic, anything.
            96..=111 => {
                honest = false;
                let at = input.u16() as usize % words;
                let v = match input.u8() % 6 {
                    0 => ring::MAGIC_COMMITTED,
                    1 => ring::MAGIC_ALLOCATED,
                    2 => ring::MAGIC_CONSUMED,
                    3 => input.u16() as u32 % (max_chunk as u32 + 64),
                    _ => input.interesting_u32(),
                };
                s.data.put_u32(at * 4, v);
            }
            // Counts without chunks.
            112..=115 => {
                honest = false;
                let _ = w.post();
            }
            116..=119 => {
                if r.try_take() {
                    honest = false;
                }
            }
            120..=121 => {
                if r.take_timeout(Duration::ZERO) {
                    honest = false;
                }
            }
            // A short timed wait (the futex path), at most twice per input.
            122 if sleeps < 2 => {
                sleeps += 1;
                if r.take_timeout(Duration::from_millis(1)) {
                    honest = false;
                }
            }
            _ => {
                let pending = r.pending();
                if honest {
                    assert_eq!(pending as usize, model.len());
                }
                let _ = r.user_word().load(std::sync::atomic::Ordering::Relaxed);
                let _ = r.ref_count().load(std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
});

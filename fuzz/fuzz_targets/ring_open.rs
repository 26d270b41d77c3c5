//! Opening a ring whose header the other side wrote (a client opening the
//! server's rings): hostile header sizes, word counts, data paths and data
//! file sizes. An accepted ring must fit its data file and stay usable
//! without faults; a data path outside the header's directory is refused.
//!
//! Paths the harness lets the input choose never contain `..` and stay
//! under the scratch directories (the library refuses `..` as well; see
//! the unit test `data_path_must_stay_in_directory`), so that a bug can
//! never make the fuzzer open a file elsewhere on the machine.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use cpg_fuzz::{scratch_dir, Budget, Input};
use cpg_rs::ipc::ring::{self, Ring, RingError};
use libfuzzer_sys::fuzz_target;

struct Paths {
    dir: String,
    base: String,
    header: String,
    data: String,
    /// An existing file in another directory.
    elsewhere: String,
}

fn paths() -> &'static Paths {
    static P: OnceLock<Paths> = OnceLock::new();
    P.get_or_init(|| {
        let dir = scratch_dir("open");
        let other = scratch_dir("open-other");
        let elsewhere = format!("{other}/qb-event-fuzz-data");
        std::fs::write(&elsewhere, vec![0u8; 4096]).expect("write");
        let base = format!("{dir}/qb-event-fuzz");
        Paths {
            header: format!("{base}-header"),
            data: format!("{base}-data"),
            base,
            dir,
            elsewhere,
        }
    })
}

fn put(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_path(b: &mut [u8], off: usize, p: &[u8]) {
    let n = p.len().min(ring::PATH_LEN - 1);
    b[off..off + n].copy_from_slice(&p[..n]);
}

fuzz_target!(|data: &[u8]| {
    let p = paths();
    let _budget = Budget::new(data.len(), 1 << 20, 0);
    let mut input = Input::new(data);
    let data_len = match input.u8() % 6 {
        0 => 4096,
        1 => 8192,
        2 => 0,
        3 => input.u8() as usize * 4,
        _ => input.u16() as usize,
    };
    let words = match input.u8() % 4 {
        0 => (data_len / 4) as u32,
        1 => (data_len / 4) as u32 + (input.u8() as u32 % 8),
        _ => input.interesting_u32(),
    };
    let mut hdr = vec![0u8; ring::HDR_FILE_SIZE];
    put(&mut hdr, ring::OFF_WORD_SIZE, words);
    put(
        &mut hdr,
        ring::OFF_WRITE_PT,
        input.interesting_u32() % words.saturating_add(2).max(1),
    );
    put(
        &mut hdr,
        ring::OFF_READ_PT,
        input.interesting_u32() % words.saturating_add(2).max(1),
    );
    put(&mut hdr, ring::OFF_SEM, input.u8() as u32 % 3);
    put(&mut hdr, ring::OFF_SEM + 8, ring::SEM_SHARED);
    put(&mut hdr, ring::OFF_REF_COUNT, 1);
    put_path(&mut hdr, ring::OFF_HDR_PATH, p.header.as_bytes());
    let (data_path, same_dir): (Vec<u8>, bool) = match input.u8() % 6 {
        0 | 1 => (p.data.clone().into_bytes(), true),
        2 => (p.elsewhere.clone().into_bytes(), false),
        3 => (p.header.clone().into_bytes(), true),
        4 => (vec![b'x'; ring::PATH_LEN], false), // no terminating NUL
        _ => {
            // A name chosen by the input, below the ring's directory.
            let n = input.u8() as usize % 24;
            let mut name: Vec<u8> = input.bytes(n).iter().map(|b| b"abq-_/.x"[*b as usize % 8]).collect();
            while let Some(i) = name.windows(2).position(|w| w == b"..") {
                name[i] = b'x';
            }
            let same = !name.contains(&b'/');
            let mut full = format!("{}/", p.dir).into_bytes();
            full.extend_from_slice(&name);
            (full, same)
        }
    };
    if data_path.len() < ring::PATH_LEN {
        put_path(&mut hdr, ring::OFF_DATA_PATH, &data_path);
    } else {
        hdr[ring::OFF_DATA_PATH..ring::OFF_DATA_PATH + ring::PATH_LEN].copy_from_slice(&data_path);
    }
    let hdr_len = match input.u8() % 4 {
        0 => input.u16() as usize % ring::HDR_FILE_SIZE,
        _ => ring::HDR_FILE_SIZE,
    };
    let mut contents = vec![0u8; data_len];
    for _ in 0..input.u8() % 8 {
        let at = (input.u16() as usize * 4) % data_len.max(4);
        if at + 4 <= data_len {
            let v = match input.u8() % 3 {
                0 => ring::MAGIC_COMMITTED,
                _ => input.interesting_u32(),
            };
            contents[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::File::create(&p.header)
        .and_then(|mut f| f.write_all(&hdr[..hdr_len]))
        .expect("write header");
    std::fs::write(&p.data, &contents).expect("write data");

    match Ring::open(&p.base) {
        Ok(r) => {
            assert!(hdr_len >= ring::HDR_STRUCT_SIZE, "short header accepted");
            assert!(same_dir, "data path outside the directory accepted");
            let file_len = std::fs::metadata(r.data_path()).map(|m| m.len() as usize).unwrap_or(0);
            assert!(r.max_chunk() + 16 <= file_len, "ring larger than its file");
            assert_eq!(r.ref_count().load(std::sync::atomic::Ordering::SeqCst), 2);
            let mut buf = vec![0u8; r.max_chunk()];
            for _ in 0..3 {
                match r.try_read(&mut buf) {
                    Ok(Some(n)) => assert!(n <= buf.len()),
                    Err(RingError::TooSmall(n)) => assert!(n > buf.len()),
                    _ => {}
                }
                let _ = r.write(&[b"hello"]);
            }
        }
        Err(e) => {
            let _ = e;
        }
    }
});

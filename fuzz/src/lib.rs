//! Shared pieces of the fuzz targets: a byte cursor over the input, an
//! allocation budget (a counting global allocator: no input may make a
//! decoder hold more memory than a fixed allowance plus a small multiple
//! of the input's size), and scratch directories in /dev/shm that are
//! removed when the fuzzer exits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

// ----- allocation accounting -----

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards to the system allocator with the same
// arguments; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds alloc's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds realloc's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Memory any single input may make the code under test hold at once, on
/// top of what was live when the input started: `fixed` bytes plus
/// `per_byte` times the input's length. Checked when dropped.
pub struct Budget {
    base: usize,
    limit: usize,
}

impl Budget {
    pub fn new(input_len: usize, fixed: usize, per_byte: usize) -> Budget {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        Budget {
            base,
            limit: fixed + per_byte * input_len,
        }
    }

    /// Bytes above the starting point at the worst moment so far.
    pub fn peak(&self) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let peak = self.peak();
        assert!(
            peak <= self.limit,
            "allocated {peak} bytes at once, budget {} bytes",
            self.limit
        );
    }
}

// ----- reading the input -----

/// Reads numbers and slices off the fuzzer's input; past its end every
/// read yields zeros, so any input is a valid program.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | (self.u32() as u64) << 32
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = self.pos.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// A 32-bit value that is often an edge case.
    pub fn interesting_u32(&mut self) -> u32 {
        match self.u8() % 8 {
            0 => 0,
            1 => u32::MAX,
            2 => i32::MAX as u32,
            3 => 0x8000_0000,
            4 => self.u8() as u32,
            5 => self.u16() as u32,
            _ => self.u32(),
        }
    }
}

// ----- scratch files -----

static SCRATCH: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn remove_scratch() {
    if let Ok(dirs) = SCRATCH.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh directory `/dev/shm/cpgrs-fuzz-<pid>-<tag>`, removed at exit
/// (libFuzzer ends with `exit()`; after a crash `fuzz/run.sh` removes the
/// directories of processes that are gone).
pub fn scratch_dir(tag: &str) -> String {
    let dir = format!("/dev/shm/cpgrs-fuzz-{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("create scratch directory");
    let mut dirs = SCRATCH.lock().expect("scratch list");
    if dirs.is_empty() {
        // SAFETY: registers a plain extern "C" function without arguments.
        unsafe { libc::atexit(remove_scratch) };
    }
    dirs.push(dir.clone());
    dir
}

/// A shared, writable mapping of a whole file: the hostile peer's view.
pub struct PeerMap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain shared memory; the harness uses it from one thread.
unsafe impl Send for PeerMap {}
// SAFETY: as above.
unsafe impl Sync for PeerMap {}

impl PeerMap {
    pub fn new(path: &str) -> PeerMap {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open file to map");
        let len = f.metadata().expect("stat").len() as usize;
        // SAFETY: a fresh shared mapping of an open file, placed by the kernel.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap {path}");
        PeerMap { ptr: p.cast(), len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `v` at the 4-aligned offset `off` (must lie inside).
    pub fn put_u32(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: in bounds and aligned (checked above; the mapping is
        // page-aligned). Volatile: the other side reads it concurrently in
        // a real peer; here it only keeps the store.
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u32>(), v) }
    }

    pub fn fill(&self, byte: u8) {
        // SAFETY: the whole mapping, which we own.
        unsafe { std::ptr::write_bytes(self.ptr, byte, self.len) }
    }
}

//! libqb's shared-memory ring buffer: one header file (positions, paths,
//! reference count, a glibc process-shared semaphore, a user word) and one
//! data file of 32-bit words holding length-prefixed chunks.
//!
//! The peer is another process and may be broken or hostile: every value
//! read from shared memory is bounds-checked before it is used, and a bad
//! one yields [`RingError::Corrupt`], never an out-of-bounds access.
//!
//! Layout (all little-endian, offsets in the header file):
//! `write_pt`@0, `read_pt`@4, `word_size`@8, `hdr_path`@12 (4096),
//! `data_path`@4108 (4096), `ref_count`@8204, `sem_t`@8208 (32),
//! `user_data`@8240 (flow control on request rings).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::sys::{self, Mapping};

pub const OFF_WRITE_PT: usize = 0;
pub const OFF_READ_PT: usize = 4;
pub const OFF_WORD_SIZE: usize = 8;
pub const OFF_HDR_PATH: usize = 12;
pub const OFF_DATA_PATH: usize = 4108;
pub const PATH_LEN: usize = 4096;
pub const OFF_REF_COUNT: usize = 8204;
pub const OFF_SEM: usize = 8208;
pub const OFF_USER: usize = 8240;
/// `sizeof` of libqb's shared header struct.
pub const HDR_STRUCT_SIZE: usize = 8248;
/// Size of the header file as a creator makes it (4 bytes of user data).
pub const HDR_FILE_SIZE: usize = 8252;

pub const MAGIC_COMMITTED: u32 = 0xA1A1_A1A1;
pub const MAGIC_ALLOCATED: u32 = 0xA110_CED0;
pub const MAGIC_CONSUMED: u32 = 0xD0D0_D0D0;

/// glibc's `private` field value for a process-shared semaphore.
pub const SEM_SHARED: u32 = 0x80;
const SEM_VALUE_MAX: u32 = i32::MAX as u32;
const WAITER: u64 = 1 << 32;

/// Words of chunk overhead (length + magic) and the slack the writer keeps.
const CHUNK_OVERHEAD_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// Not enough free space for the chunk (libqb's `-EAGAIN`).
    Full,
    /// The chunk is larger than the caller's buffer (`-ENOBUFS`); it stays queued.
    TooSmall(usize),
    /// The peer left the ring in a state no correct peer produces.
    Corrupt,
}

/// Size of the data file libqb uses for a given `max_msg_size`.
pub fn data_file_size(max_msg_size: usize) -> usize {
    let page = sys::page_size();
    (max_msg_size + 13).div_ceil(page) * page
}

/// Words a chunk of `len` payload bytes occupies.
fn chunk_words(len: usize) -> usize {
    2 + len.div_ceil(4)
}

/// One mapped ring. A ring is used by exactly one reader and one writer
/// (each in its own process); callers serialise access on their side.
pub struct Ring {
    hdr: Mapping,
    data: Mapping,
    /// Number of 32-bit words in the data area, validated at open.
    words: u32,
    hdr_path: String,
    data_path: String,
}

impl Ring {
    /// Opens a ring a server created: `<base>-header`, then the data file
    /// named in the header, which must live in the same directory.
    /// Increments the reference count as a libqb client does.
    pub fn open(base: &str) -> io::Result<Ring> {
        let hdr_path = format!("{base}-header");
        let hdr_fd = sys::open_rw(&hdr_path)?;
        let hdr_len = sys::file_size(&hdr_fd)? as usize;
        if hdr_len < HDR_STRUCT_SIZE {
            return Err(io::Error::from_raw_os_error(libc::EBADMSG));
        }
        let hdr = Mapping::map_shared(&hdr_fd, HDR_STRUCT_SIZE)?;
        drop(hdr_fd);
        let data_path = read_path(&hdr, OFF_DATA_PATH).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADMSG))?;
        if !same_directory(&hdr_path, &data_path) {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        let words = header_u32(&hdr, OFF_WORD_SIZE).load(Ordering::Acquire);
        let data_fd = sys::open_rw(&data_path)?;
        let data_len = sys::file_size(&data_fd)? as usize;
        let bytes = words as usize * 4;
        if words < 4 || bytes > data_len || bytes > (u32::MAX as usize) {
            return Err(io::Error::from_raw_os_error(libc::EBADMSG));
        }
        let data = Mapping::map_shared(&data_fd, bytes)?;
        let ring = Ring {
            hdr,
            data,
            words,
            hdr_path,
            data_path,
        };
        ring.ref_count().fetch_add(1, Ordering::SeqCst);
        Ok(ring)
    }

    /// Creates a ring (server side): header and data files with mode 0600,
    /// optionally owned by `owner`, sized for `max_msg_size` exactly as libqb
    /// sizes them, semaphore initialised process-shared with value 0.
    pub fn create(base: &str, max_msg_size: usize, owner: Option<(u32, u32)>) -> io::Result<Ring> {
        let hdr_path = format!("{base}-header");
        let data_path = format!("{base}-data");
        if hdr_path.len() >= PATH_LEN || data_path.len() >= PATH_LEN {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        let made = (|| {
            let bytes = data_file_size(max_msg_size);
            let hdr_fd = sys::create_excl(&hdr_path, 0o600)?;
            let data_fd = sys::create_excl(&data_path, 0o600)?;
            chown(&hdr_fd, owner);
            chown(&data_fd, owner);
            sys::set_len(&hdr_fd, HDR_FILE_SIZE as u64)?;
            sys::set_len(&data_fd, bytes as u64)?;
            let hdr = Mapping::map_shared(&hdr_fd, HDR_STRUCT_SIZE)?;
            let data = Mapping::map_shared(&data_fd, bytes)?;
            Ok::<_, io::Error>((hdr, data, bytes))
        })();
        let (hdr, data, bytes) = match made {
            Ok(v) => v,
            Err(e) => {
                let _ = sys::unlink(&hdr_path);
                let _ = sys::unlink(&data_path);
                return Err(e);
            }
        };
        let ring = Ring {
            hdr,
            data,
            words: (bytes / 4) as u32,
            hdr_path,
            data_path,
        };
        ring.init_header();
        Ok(ring)
    }

    fn init_header(&self) {
        write_path(&self.hdr, OFF_HDR_PATH, &self.hdr_path);
        write_path(&self.hdr, OFF_DATA_PATH, &self.data_path);
        header_u32(&self.hdr, OFF_WORD_SIZE).store(self.words, Ordering::Relaxed);
        header_u32(&self.hdr, OFF_WRITE_PT).store(0, Ordering::Relaxed);
        header_u32(&self.hdr, OFF_READ_PT).store(0, Ordering::Relaxed);
        header_u32(&self.hdr, OFF_SEM + 8).store(SEM_SHARED, Ordering::Relaxed);
        self.sem_word().store(0, Ordering::Relaxed);
        self.user_word().store(0, Ordering::Relaxed);
        self.ref_count().store(1, Ordering::SeqCst);
    }

    pub fn hdr_path(&self) -> &str {
        &self.hdr_path
    }

    pub fn data_path(&self) -> &str {
        &self.data_path
    }

    /// Whether a peer shrank one of the ring's files under our mapping
    /// (only detected where `ipc::fault` is installed).
    pub fn faulted(&self) -> bool {
        self.hdr.faulted() || self.data.faulted()
    }

    /// Whether both mappings are watched by the SIGBUS guard.
    pub fn guarded(&self) -> bool {
        self.hdr.guarded() && self.data.guarded()
    }

    /// Largest payload this ring can ever hold.
    pub fn max_chunk(&self) -> usize {
        (self.words as usize * 4).saturating_sub(CHUNK_OVERHEAD_BYTES + 4)
    }

    pub fn ref_count(&self) -> &AtomicI32 {
        // SAFETY: OFF_REF_COUNT is 4-aligned and inside the header mapping.
        unsafe { &*(self.hdr.as_ptr().add(OFF_REF_COUNT) as *const AtomicI32) }
    }

    /// The user word: on a request ring, libqb's flow-control state.
    pub fn user_word(&self) -> &AtomicI32 {
        // SAFETY: OFF_USER is 4-aligned and inside the header mapping.
        unsafe { &*(self.hdr.as_ptr().add(OFF_USER) as *const AtomicI32) }
    }

    fn sem_word(&self) -> &AtomicU64 {
        // SAFETY: OFF_SEM (8208) is 8-aligned, the mapping is page-aligned
        // and covers the 32-byte sem_t.
        unsafe { &*(self.hdr.as_ptr().add(OFF_SEM) as *const AtomicU64) }
    }

    fn sem_futex(&self) -> &AtomicU32 {
        // SAFETY: the low half of the sem word (little-endian) is the value,
        // which glibc uses as the futex word; we only pass its address to
        // the kernel and never access it as a 32-bit atomic.
        unsafe { &*(self.hdr.as_ptr().add(OFF_SEM) as *const AtomicU32) }
    }

    fn pos(&self, off: usize) -> &AtomicU32 {
        header_u32(&self.hdr, off)
    }

    fn word(&self, index: u32) -> &AtomicU32 {
        let index = index % self.words;
        // SAFETY: index < words and the data mapping holds `words` u32s;
        // the mapping is page-aligned.
        unsafe { &*(self.data.as_ptr().add(index as usize * 4) as *const AtomicU32) }
    }

    /// Number of committed, unread chunks (the semaphore value).
    pub fn pending(&self) -> u32 {
        self.sem_word().load(Ordering::Acquire) as u32
    }

    // ----- semaphore, glibc 2.36 x86_64 compatible -----

    /// `sem_post`: add one; wake one sleeper if any registered.
    pub fn post(&self) -> Result<(), RingError> {
        let sem = self.sem_word();
        let mut cur = sem.load(Ordering::Relaxed);
        loop {
            if cur as u32 >= SEM_VALUE_MAX {
                return Err(RingError::Corrupt);
            }
            match sem.compare_exchange_weak(cur, cur + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur >> 32 != 0 {
            sys::futex_wake(self.sem_futex(), 1);
        }
        Ok(())
    }

    /// `sem_trywait`: take one if the value is positive.
    pub fn try_take(&self) -> bool {
        let sem = self.sem_word();
        let mut cur = sem.load(Ordering::Relaxed);
        while cur as u32 != 0 {
            match sem.compare_exchange_weak(cur, cur - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }

    /// `sem_timedwait` until `timeout` has passed: registers as a waiter so
    /// that a glibc poster wakes us. Returns whether one was taken.
    pub fn take_timeout(&self, timeout: Duration) -> bool {
        if self.try_take() {
            return true;
        }
        if timeout.is_zero() {
            return false;
        }
        let sem = self.sem_word();
        let started = Instant::now();
        let deadline = sys::realtime_deadline(timeout);
        // The waiter count is the peer's to corrupt too: wrap, never trap.
        let mut cur = sem.fetch_add(WAITER, Ordering::Relaxed).wrapping_add(WAITER);
        loop {
            if cur as u32 == 0 {
                match sys::futex_wait_abs(self.sem_futex(), 0, Some(deadline)) {
                    Ok(true) if started.elapsed() < timeout => {}
                    _ => {
                        // Timed out (or a futex error): deregister, but take
                        // a value that raced in with the deadline.
                        let mut cur = sem.load(Ordering::Relaxed);
                        loop {
                            let (next, took) = if cur as u32 != 0 {
                                (cur.wrapping_sub(1 + WAITER), true)
                            } else {
                                (cur.wrapping_sub(WAITER), false)
                            };
                            match sem.compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed) {
                                Ok(_) => return took,
                                Err(now) => cur = now,
                            }
                        }
                    }
                }
                cur = sem.load(Ordering::Relaxed);
            } else {
                match sem.compare_exchange_weak(cur, cur.wrapping_sub(1 + WAITER), Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return true,
                    Err(now) => cur = now,
                }
            }
        }
    }

    // ----- writer -----

    /// Free space in bytes by libqb's rule.
    fn free_bytes(&self, w: u32, r: u32) -> usize {
        let words = self.words as usize;
        let (w, r) = (w as usize, r as usize);
        let free = if w > r {
            words - (w - r) - 1
        } else if w < r {
            r - w - 1
        } else if self.pending() > 0 {
            0
        } else {
            words
        };
        free * 4
    }

    /// Writes one chunk made of `parts` and posts the semaphore.
    pub fn write(&self, parts: &[&[u8]]) -> Result<(), RingError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.max_chunk() {
            return Err(RingError::Full);
        }
        let w = self.pos(OFF_WRITE_PT).load(Ordering::Relaxed);
        let r = self.pos(OFF_READ_PT).load(Ordering::Acquire);
        if w >= self.words || r >= self.words {
            return Err(RingError::Corrupt);
        }
        if self.free_bytes(w, r) < len + CHUNK_OVERHEAD_BYTES {
            return Err(RingError::Full);
        }
        self.word(w).store(0, Ordering::Relaxed);
        self.word(w + 1).store(MAGIC_ALLOCATED, Ordering::Relaxed);
        let mut at = (w as usize + 2) % self.words as usize * 4;
        for part in parts {
            self.copy_in(at, part);
            at = (at + part.len()) % (self.words as usize * 4);
        }
        self.word(w).store(len as u32, Ordering::Relaxed);
        let next = ((w as usize + chunk_words(len)) % self.words as usize) as u32;
        self.pos(OFF_WRITE_PT).store(next, Ordering::Release);
        self.word(w + 1).store(MAGIC_COMMITTED, Ordering::Release);
        self.post()
    }

    fn copy_in(&self, at: usize, src: &[u8]) {
        let total = self.words as usize * 4;
        let first = src.len().min(total - at);
        // SAFETY: at < total and first <= total - at, so both copies stay in
        // the data mapping; src is a valid slice. The region belongs to the
        // chunk being written, which the reader does not touch until commit.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(at), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.data.as_ptr(), src.len() - first);
        }
    }

    fn copy_out(&self, at: usize, dst: &mut [u8]) {
        let total = self.words as usize * 4;
        let first = dst.len().min(total - at);
        // SAFETY: as in copy_in; dst is a valid mutable slice; the region
        // is a committed chunk the writer does not touch until reclaimed.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.as_ptr().add(at), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.data.as_ptr(), dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }

    // ----- reader -----

    /// Reads the oldest chunk into `buf` after the caller took one count of
    /// the semaphore (`try_take` / `take_timeout`). On error the count is
    /// given back and the chunk stays queued.
    pub fn read_taken(&self, buf: &mut [u8]) -> Result<usize, RingError> {
        let result = self.read_inner(buf);
        if result.is_err() {
            let _ = self.post();
        }
        result
    }

    fn read_inner(&self, buf: &mut [u8]) -> Result<usize, RingError> {
        let r = self.pos(OFF_READ_PT).load(Ordering::Relaxed);
        if r >= self.words {
            return Err(RingError::Corrupt);
        }
        if self.word(r + 1).load(Ordering::Acquire) != MAGIC_COMMITTED {
            return Err(RingError::Corrupt);
        }
        let len = self.word(r).load(Ordering::Relaxed) as usize;
        if len > self.max_chunk() {
            return Err(RingError::Corrupt);
        }
        if len > buf.len() {
            return Err(RingError::TooSmall(len));
        }
        let at = (r as usize + 2) % self.words as usize * 4;
        self.copy_out(at, &mut buf[..len]);
        self.word(r).store(0, Ordering::Relaxed);
        self.word(r + 1).store(MAGIC_CONSUMED, Ordering::Relaxed);
        let next = ((r as usize + chunk_words(len)) % self.words as usize) as u32;
        self.pos(OFF_READ_PT).store(next, Ordering::Release);
        Ok(len)
    }

    /// Non-blocking read of one chunk: `Ok(None)` when the ring is empty.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<Option<usize>, RingError> {
        if !self.try_take() {
            return Ok(None);
        }
        self.read_taken(buf).map(Some)
    }

    /// Paths of the two files, for unlinking.
    pub fn paths(&self) -> [&str; 2] {
        [&self.hdr_path, &self.data_path]
    }
}

fn chown(fd: &OwnedFd, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        // Failure (not privileged) is fine: libqb ignores it too.
        let _ = sys::fchown(fd, uid, gid);
    }
}

fn header_u32(hdr: &Mapping, off: usize) -> &AtomicU32 {
    debug_assert!(off % 4 == 0 && off + 4 <= hdr.len());
    // SAFETY: callers pass fixed, 4-aligned offsets inside the header
    // mapping (at least HDR_STRUCT_SIZE bytes).
    unsafe { &*(hdr.as_ptr().add(off) as *const AtomicU32) }
}

/// A NUL-terminated path stored at `off` in the header (at most 4096 bytes).
fn read_path(hdr: &Mapping, off: usize) -> Option<String> {
    let mut bytes = vec![0u8; PATH_LEN];
    // SAFETY: off + PATH_LEN lies inside the header mapping.
    unsafe { std::ptr::copy_nonoverlapping(hdr.as_ptr().add(off), bytes.as_mut_ptr(), PATH_LEN) };
    let end = bytes.iter().position(|&b| b == 0)?;
    bytes.truncate(end);
    String::from_utf8(bytes).ok()
}

fn write_path(hdr: &Mapping, off: usize, path: &str) {
    let mut bytes = [0u8; PATH_LEN];
    let n = path.len().min(PATH_LEN - 1);
    bytes[..n].copy_from_slice(&path.as_bytes()[..n]);
    // SAFETY: off + PATH_LEN lies inside the header mapping.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), hdr.as_ptr().add(off), PATH_LEN) };
}

/// Both paths absolute, free of `..`, and in the same directory.
fn same_directory(a: &str, b: &str) -> bool {
    fn dir(p: &str) -> Option<&str> {
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return None;
        }
        p.rsplit_once('/').map(|(d, _)| d)
    }
    matches!((dir(a), dir(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TmpDir(String);
    impl TmpDir {
        fn new() -> TmpDir {
            TmpDir(sys::mkdtemp("/dev/shm/cpgrs-test-XXXXXX").expect("mkdtemp"))
        }
    }
    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn pair(max: usize) -> (TmpDir, Ring, Ring) {
        let dir = TmpDir::new();
        let base = format!("{}/qb-request-test", dir.0);
        let server = Ring::create(&base, max, None).expect("create");
        let client = Ring::open(&base).expect("open");
        (dir, server, client)
    }

    #[test]
    fn sizes_match_libqb() {
        let (dir, server, client) = pair(1 << 20);
        assert_eq!(data_file_size(1 << 20), 1_052_672);
        assert_eq!(server.words, 263_168);
        assert_eq!(client.words, 263_168);
        assert_eq!(client.ref_count().load(Ordering::SeqCst), 2);
        let hdr = std::fs::metadata(format!("{}/qb-request-test-header", dir.0)).unwrap();
        assert_eq!(hdr.len(), HDR_FILE_SIZE as u64);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(hdr.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn round_trip_and_wrap() {
        let (_dir, server, client) = pair(4096);
        let mut buf = vec![0u8; 8192];
        let mut wraps = 0;
        let mut last_r = 0;
        for i in 0..5000u32 {
            let len = (i as usize * 37) % 1500;
            let payload: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            client
                .write(&[&payload[..len / 2], &payload[len / 2..]])
                .expect("write");
            assert_eq!(server.pending(), 1);
            let n = server.try_read(&mut buf).expect("read").expect("some");
            assert_eq!(&buf[..n], &payload[..]);
            let r = server.pos(OFF_READ_PT).load(Ordering::SeqCst);
            if r < last_r {
                wraps += 1;
            }
            last_r = r;
        }
        assert!(wraps > 100, "ring wrapped {wraps} times");
        assert_eq!(server.try_read(&mut buf), Ok(None));
    }

    #[test]
    fn full_ring_refuses_then_recovers() {
        let (_dir, server, client) = pair(4096);
        let chunk = vec![7u8; 1000];
        let mut n = 0;
        while client.write(&[&chunk]).is_ok() {
            n += 1;
            assert!(n < 100);
        }
        assert_eq!(client.write(&[&chunk]), Err(RingError::Full));
        assert_eq!(server.pending(), n);
        let mut buf = vec![0u8; 2000];
        assert_eq!(server.try_read(&mut buf), Ok(Some(1000)));
        client.write(&[&chunk]).expect("room again");
    }

    #[test]
    fn too_small_buffer_keeps_chunk() {
        let (_dir, server, client) = pair(4096);
        client.write(&[&[1u8; 100]]).unwrap();
        let mut small = [0u8; 10];
        assert_eq!(server.try_read(&mut small), Err(RingError::TooSmall(100)));
        assert_eq!(server.pending(), 1);
        let mut big = [0u8; 100];
        assert_eq!(server.try_read(&mut big), Ok(Some(100)));
    }

    #[test]
    fn corrupt_headers_are_refused() {
        let (_dir, server, client) = pair(4096);
        client.write(&[&[1u8; 16]]).unwrap();
        // Hostile length.
        server.word(0).store(u32::MAX, Ordering::SeqCst);
        let mut buf = vec![0u8; 1 << 16];
        assert_eq!(server.try_read(&mut buf), Err(RingError::Corrupt));
        // Hostile magic.
        server.word(0).store(16, Ordering::SeqCst);
        server.word(1).store(0x1234, Ordering::SeqCst);
        assert_eq!(server.try_read(&mut buf), Err(RingError::Corrupt));
        // Hostile read pointer.
        server.word(1).store(MAGIC_COMMITTED, Ordering::SeqCst);
        server.pos(OFF_READ_PT).store(u32::MAX, Ordering::SeqCst);
        assert_eq!(server.try_read(&mut buf), Err(RingError::Corrupt));
        server.pos(OFF_WRITE_PT).store(u32::MAX, Ordering::SeqCst);
        assert_eq!(client.write(&[&[1u8; 4]]), Err(RingError::Corrupt));
    }

    #[test]
    fn timed_take_wakes_on_post_from_other_thread() {
        let (_dir, server, client) = pair(4096);
        let start = Instant::now();
        assert!(!server.take_timeout(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert_eq!(server.sem_word().load(Ordering::SeqCst) >> 32, 0, "waiter deregistered");
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                client.write(&[b"ping"]).unwrap();
            });
            assert!(server.take_timeout(Duration::from_secs(10)));
        });
        let mut buf = [0u8; 16];
        assert_eq!(server.read_taken(&mut buf), Ok(4));
        assert_eq!(&buf[..4], b"ping");
    }

    #[test]
    fn corrupt_waiter_count_does_not_trap() {
        // Found by fuzz/fuzz_targets/ring.rs: a peer that sets the waiter
        // half of the semaphore to all ones made the timed wait overflow
        // (a panic where overflow checks are on).
        let (_dir, server, client) = pair(4096);
        server.sem_word().store(0xffff_ffff << 32, Ordering::SeqCst);
        assert!(!server.take_timeout(Duration::from_millis(2)));
        assert_eq!(server.sem_word().load(Ordering::SeqCst), 0xffff_ffff << 32);
        client.write(&[b"x"]).unwrap();
        assert!(server.take_timeout(Duration::from_millis(2)));
        assert_eq!(server.sem_word().load(Ordering::SeqCst), 0xffff_ffff << 32);
        // A post while we wait with the wrapped count: the poster sees no
        // waiter, so the value is taken when the wait deregisters.
        let took = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(10));
                client.write(&[b"y"]).unwrap();
            });
            server.take_timeout(Duration::from_millis(100))
        });
        assert!(took || server.try_take(), "the posted value was lost");
        assert_eq!(server.sem_word().load(Ordering::SeqCst), 0xffff_ffff << 32);
    }

    #[test]
    fn data_path_must_stay_in_directory() {
        assert!(same_directory("/dev/shm/qb-1/qb-a-header", "/dev/shm/qb-1/qb-a-data"));
        assert!(!same_directory("/dev/shm/qb-1/qb-a-header", "/etc/shadow"));
        assert!(!same_directory("/dev/shm/qb-1/qb-a-header", "/dev/shm/qb-1/../x"));
        assert!(!same_directory("relative-header", "relative-data"));
    }
}

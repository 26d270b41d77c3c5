//! Surviving a peer that shrinks a shared file under our mapping.
//!
//! A server maps ring files that its client may write, and so may
//! `ftruncate`. Touching a mapped page past the new end of the file raises
//! SIGBUS, whose default action kills the process — one hostile or broken
//! client would take every other client's server down (corosync 3.1.7 dies
//! that way). A process that opts in with [`install`] gets a SIGBUS handler
//! that looks the faulting address up among the mappings registered here,
//! puts private zero pages in place of that mapping (the faulting access
//! then completes on them, as Wayland compositors do for client buffers),
//! and marks the mapping *faulted*. The owner polls [`faults`] and
//! [`Guard::faulted`] and drops the connection; until then it reads zeros,
//! which the ring code treats like any other hostile content.
//!
//! Addresses that are not registered keep the default action: the handler
//! restores it and returns, so the access faults again and the process
//! dies as it would have without us. A SIGBUS sent with kill() is re-raised.
//!
//! The registry is a fixed table of atomics: the handler may not allocate
//! or take locks. A library never installs the handler (it would change a
//! host program's signal disposition); mappings made without it are not
//! registered and behave as plain mappings.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Mappings that can be guarded at once: a cpgd connection uses six, and
/// cpgd serves up to 4096 connections by default (it refuses a connection
/// it cannot guard).
const SLOTS: usize = 32768;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const LIVE: u8 = 2;

struct Slot {
    state: AtomicU8,
    faulted: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicU8::new(FREE),
    faulted: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Where the next registration starts looking for a free slot.
static HINT: AtomicUsize = AtomicUsize::new(0);
/// Faults handled so far, process-wide.
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// Installs the SIGBUS handler for this process (idempotent). Only
/// mappings made after this call are guarded.
pub fn install() -> io::Result<()> {
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid starting value; the handler has
    // the three-argument form SA_SIGINFO announces and only uses atomics,
    // signal and raise (async-signal-safe) and mmap (not on POSIX's list,
    // but glibc's wrapper is a bare system call: no lock, no allocation).
    // It replaces Rust's own SIGBUS handler, which only reports stack
    // overflows (those raise SIGSEGV on Linux).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, &sa, ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

/// Whether this process installed the handler.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Number of faults the handler has absorbed in this process; a caller
/// that remembers the last value knows when to look for faulted guards.
pub fn faults() -> u64 {
    FAULTS.load(Ordering::Acquire)
}

/// The registration of one mapping; unregisters on drop, which must come
/// before the mapping is unmapped.
pub struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Registers `[start, start + len)` when the handler is installed and a
    /// slot is free; otherwise the mapping stays unguarded.
    pub fn register(start: *mut u8, len: usize) -> Guard {
        if !INSTALLED.load(Ordering::Acquire) || len == 0 {
            return Guard { slot: None };
        }
        let first = HINT.load(Ordering::Relaxed);
        for k in 0..SLOTS {
            let i = (first + k) % SLOTS;
            let s = &TABLE[i];
            if s.state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                s.faulted.store(false, Ordering::Relaxed);
                s.start.store(start as usize, Ordering::Relaxed);
                s.len.store(len, Ordering::Relaxed);
                s.state.store(LIVE, Ordering::Release);
                HINT.store(i + 1, Ordering::Relaxed);
                return Guard { slot: Some(i) };
            }
        }
        Guard { slot: None }
    }

    /// Whether a fault in this mapping was absorbed: its content is now
    /// private zeros, no longer shared with the peer.
    pub fn faulted(&self) -> bool {
        self.slot.is_some_and(|i| TABLE[i].faulted.load(Ordering::Acquire))
    }

    /// Whether the mapping is in the table (not when the handler is not
    /// installed, or the table was full).
    pub fn registered(&self) -> bool {
        self.slot.is_some()
    }

    /// Unregisters now (before the mapping goes away).
    pub fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            TABLE[i].state.store(FREE, Ordering::Release);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.release();
    }
}

/// BUS_ADRERR: "nonexistent physical address", the code of an access past
/// the end of a mapped file.
const BUS_ADRERR: libc::c_int = 2;

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == BUS_ADRERR {
        for s in TABLE.iter() {
            if s.state.load(Ordering::Acquire) != LIVE {
                continue;
            }
            let start = s.start.load(Ordering::Relaxed);
            let len = s.len.load(Ordering::Relaxed);
            if addr < start || addr - start >= len {
                continue;
            }
            // SAFETY: [start, start + len) is a live mapping we made and
            // registered; MAP_FIXED replaces exactly it with private zero
            // pages, so the interrupted access finds memory when it resumes.
            let p = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                break;
            }
            s.faulted.store(true, Ordering::Release);
            FAULTS.fetch_add(1, Ordering::AcqRel);
            return;
        }
    }
    // Not ours: the default action, as if no handler were installed.
    // SAFETY: signal() and raise() are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        if code <= 0 {
            // sent by a process (kill, sigqueue): nothing will fault again
            libc::raise(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::sys::{self, Mapping};
    use std::sync::atomic::AtomicU32;

    #[test]
    fn truncated_file_reads_zeros_and_is_reported() {
        install().unwrap();
        let path = format!("/dev/shm/cpg-rs-fault-test-{}", std::process::id());
        let fd = sys::create_excl(&path, 0o600).unwrap();
        let _ = sys::unlink(&path);
        sys::set_len(&fd, 3 * 4096).unwrap();
        let map = Mapping::map_shared(&fd, 3 * 4096).unwrap();
        let word = |off: usize| {
            // SAFETY: off + 4 <= the mapping's length, 4-aligned.
            unsafe { &*(map.as_ptr().add(off) as *const AtomicU32) }
        };
        word(8192).store(7, Ordering::SeqCst);
        assert!(!map.faulted());
        let before = faults();
        sys::set_len(&fd, 0).unwrap();
        // Past the new end: SIGBUS, absorbed.
        assert_eq!(word(8192).load(Ordering::SeqCst), 0);
        word(4).store(9, Ordering::SeqCst);
        assert_eq!(word(4).load(Ordering::SeqCst), 9);
        assert!(map.faulted());
        assert!(faults() > before);
    }

    #[test]
    fn slots_are_reused() {
        install().unwrap();
        let mut buf = vec![0u8; 64];
        for _ in 0..2 * SLOTS {
            let g = Guard::register(buf.as_mut_ptr(), buf.len());
            assert!(g.slot.is_some());
        }
    }
}

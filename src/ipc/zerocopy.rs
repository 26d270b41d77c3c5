//! Zero-copy buffers: a file in shared memory that the client fills and
//! the server maps, so a multicast's payload is read in place.
//!
//! Layout of the mapping: `map_size` (i32) @0, the server's opaque
//! address token (u64) @8, an MCAST request header (40 bytes) @16, the
//! application's payload @56.

use std::sync::atomic::{AtomicU64, Ordering};

use super::sys::{self, Mapping};

/// Bytes in front of the payload.
pub const ZC_HEADER: usize = 56;
const PATH_MAX_ZC: usize = 128;

/// One zero-copy buffer owned by the client.
pub struct ZcBuffer {
    map: Mapping,
    path: String,
}

impl ZcBuffer {
    /// Creates and maps the file for `size` payload bytes (mode 0600, in
    /// /dev/shm, else /var/run, as corosync's library does).
    pub fn create(size: usize) -> std::io::Result<ZcBuffer> {
        let map_size = size
            .checked_add(ZC_HEADER)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        if map_size > i32::MAX as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let (fd, path) = match sys::mkstemp("/dev/shm/corosync_zerocopy-XXXXXX") {
            Ok(v) => v,
            Err(_) => sys::mkstemp("/var/run/corosync_zerocopy-XXXXXX")?,
        };
        let made = sys::set_len(&fd, map_size as u64)
            .and_then(|()| sys::allocate(&fd, map_size as u64))
            .and_then(|()| Mapping::map_shared(&fd, map_size));
        match made {
            Ok(map) if path.len() < PATH_MAX_ZC => Ok(ZcBuffer { map, path }),
            Ok(_) => {
                let _ = sys::unlink(&path);
                Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG))
            }
            Err(e) => {
                let _ = sys::unlink(&path);
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Removes the file name (the server has opened it, or never will).
    pub fn unlink(&self) {
        let _ = sys::unlink(&self.path);
    }

    pub fn map_size(&self) -> usize {
        self.map.len()
    }

    /// Capacity of the payload area.
    pub fn capacity(&self) -> usize {
        self.map.len() - ZC_HEADER
    }

    /// Address of the payload handed to the application.
    pub fn payload_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is at least ZC_HEADER bytes long.
        unsafe { self.map.as_ptr().add(ZC_HEADER) }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= ZC_HEADER);
        // SAFETY: fixed 8-aligned offsets inside the page-aligned mapping.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// Writes `map_size` at offset 0 (after the server answered).
    pub fn write_map_size(&self) {
        let cur = self.u64_at(0).load(Ordering::Relaxed);
        let v = (cur & !0xFFFF_FFFF) | (self.map.len() as u32 as u64);
        self.u64_at(0).store(v, Ordering::Release);
    }

    /// The server's token, written by it at offset 8.
    pub fn server_address(&self) -> u64 {
        self.u64_at(8).load(Ordering::Acquire)
    }

    /// Fills the MCAST request header the server reads in place.
    pub fn write_mcast_header(&self, header: &[u8; 40]) {
        // SAFETY: bytes 16..56 lie inside the mapping; the application
        // only owns the payload area after offset 56.
        unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), self.map.as_ptr().add(16), 40) };
    }
}

//! Zero-copy buffers (`cpg_zcb_*`): files in /dev/shm that a client
//! creates, names in ZC_ALLOC and fills before ZC_EXECUTE.
//!
//! corosync maps the file and trusts every address and length the client
//! sends. Here the file is validated when it is handed over (a regular
//! file directly under /dev/shm, /var/run or /run, owned by the client's
//! uid, not a symlink), unlinked as the daemon does, and kept open; it is
//! then read with `pread`, bounded by the file's current size, so neither
//! a bad length nor a client that truncates the file under us can make
//! the server read outside the buffer or fault.
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use super::service::IdMap;
use crate::error::CsError;
use crate::ipc::sys;

/// Bytes in front of the payload: 16-byte zc header + 40-byte MCAST header.
pub const ZC_HEADER: u64 = 56;
/// Offset of the token the server hands back ("server_address").
const OFF_TOKEN: u64 = 8;
/// Offset of the MCAST request header inside the buffer.
const OFF_MCAST: u64 = 16;
/// Largest buffer accepted.
const MAX_MAP_SIZE: u64 = 64 << 20;
/// Buffers one connection may hold at a time (each keeps a descriptor).
const MAX_BUFFERS: usize = 64;
/// Bytes read speculatively with the header: small messages need one
/// system call.
const PREFETCH: usize = 16 << 10;
/// Directories in which a client may create a zero-copy file.
const DIRS: [&str; 3] = ["/dev/shm/", "/var/run/", "/run/"];

struct Buffer {
    file: OwnedFd,
    size: u64,
}

/// The zero-copy buffers of one connection, by token.
#[derive(Default)]
pub struct ZcTable {
    bufs: IdMap<Buffer>,
}

/// Whether `path` names a file directly inside one of [`DIRS`].
fn path_allowed(path: &str) -> bool {
    DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|name| !name.is_empty() && !name.contains('/') && name != "." && name != "..")
    })
}

impl ZcTable {
    /// Takes over the client's file: validates, unlinks and keeps it, and
    /// writes `token` at offset 8 for the client to send back later.
    pub fn alloc(&mut self, path: &str, map_size: u64, owner_uid: u32, token: u64) -> Result<(), CsError> {
        if self.bufs.len() >= MAX_BUFFERS {
            return Err(CsError::NoResources);
        }
        if !path_allowed(path) {
            return Err(CsError::Access);
        }
        let file = sys::open_rw_nofollow(path).map_err(|e| CsError::from_errno(e.raw_os_error().unwrap_or(0)))?;
        let info = sys::fstat_info(&file).map_err(|_| CsError::Library)?;
        if !info.regular || info.uid != owner_uid || info.nlink != 1 {
            return Err(CsError::Access);
        }
        // Only unlink what we just opened (the name may have been swapped).
        let named = sys::lstat_info(path).map_err(|_| CsError::Access)?;
        if (named.dev, named.ino) != (info.dev, info.ino) {
            return Err(CsError::Access);
        }
        let _ = sys::unlink(path);
        if !(ZC_HEADER..=MAX_MAP_SIZE).contains(&map_size) || info.size < map_size {
            return Err(CsError::InvalidParam);
        }
        sys::pwrite_all(&file, OFF_TOKEN, &token.to_le_bytes()).map_err(|_| CsError::Library)?;
        self.bufs.insert(token, Buffer { file, size: map_size });
        Ok(())
    }

    /// Forgets a buffer; unknown tokens are ignored, as by corosync.
    pub fn free(&mut self, token: u64) {
        self.bufs.remove(&token);
    }

    /// The MCAST the client prepared in buffer `token` (`msglen` at offset
    /// 48, payload from offset 56) as a frame: `room` bytes for the
    /// caller's header (at least the 40 of the MCAST header), then the
    /// payload. Small messages take one `pread`, straight into the frame.
    /// `max_payload` bounds the length (so the resulting event stays
    /// readable).
    pub fn read_mcast(&self, token: u64, max_payload: usize, room: usize) -> Result<Vec<u8>, CsError> {
        const MCAST_HDR: usize = (ZC_HEADER - OFF_MCAST) as usize;
        assert!(room >= MCAST_HDR);
        let buf = self.bufs.get(&token).ok_or(CsError::InvalidParam)?;
        let capacity = (buf.size - ZC_HEADER) as usize;
        let guess = capacity.min(max_payload).min(PREFETCH);
        let mut frame = vec![0u8; room + guess];
        let got =
            sys::pread_full(&buf.file, OFF_MCAST, &mut frame[room - MCAST_HDR..]).map_err(|_| CsError::Library)?;
        if got < MCAST_HDR {
            return Err(CsError::InvalidParam);
        }
        let at = room - MCAST_HDR + 32;
        let msglen = u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]) as usize;
        if msglen > max_payload {
            return Err(CsError::TooBig);
        }
        if msglen > capacity {
            return Err(CsError::InvalidParam);
        }
        let have = got - MCAST_HDR;
        if msglen <= have {
            frame.truncate(room + msglen);
            return Ok(frame);
        }
        frame.resize(room + msglen, 0);
        let rest = &mut frame[room + have..];
        let got = sys::pread_full(&buf.file, ZC_HEADER + have as u64, rest).map_err(|_| CsError::Library)?;
        if got != rest.len() {
            // The client shrank the file under us.
            return Err(CsError::InvalidParam);
        }
        Ok(frame)
    }

    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_children_of_known_dirs() {
        assert!(path_allowed("/dev/shm/corosync_zerocopy-abc123"));
        assert!(path_allowed("/var/run/corosync_zerocopy-abc123"));
        assert!(!path_allowed("/dev/shm/"));
        assert!(!path_allowed("/dev/shm/.."));
        assert!(!path_allowed("/dev/shm/a/b"));
        assert!(!path_allowed("/dev/shm/../etc/shadow"));
        assert!(!path_allowed("/etc/shadow"));
        assert!(!path_allowed("relative"));
    }

    #[test]
    fn alloc_execute_free() {
        let path = format!("/dev/shm/corosync_zerocopy-test-{}", std::process::id());
        let size = ZC_HEADER + 10;
        std::fs::write(&path, vec![0u8; size as usize]).unwrap();
        let mut t = ZcTable::default();
        t.alloc(&path, size, sys::getuid(), 77).expect("alloc");
        assert!(std::fs::metadata(&path).is_err(), "unlinked");
        let buf = &t.bufs[&77];
        let mut tok = [0u8; 8];
        sys::pread_full(&buf.file, 8, &mut tok).unwrap();
        assert_eq!(u64::from_le_bytes(tok), 77);
        // msglen 10, payload "0123456789"
        sys::pwrite_all(&buf.file, 48, &10u32.to_le_bytes()).unwrap();
        sys::pwrite_all(&buf.file, 56, b"0123456789").unwrap();
        let f = t.read_mcast(77, 100, 50).unwrap();
        assert_eq!((f.len(), &f[50..]), (60, &b"0123456789"[..]));
        assert_eq!(t.read_mcast(77, 5, 40), Err(CsError::TooBig));
        // A length past the buffer is refused, not read.
        sys::pwrite_all(&t.bufs[&77].file, 48, &11u32.to_le_bytes()).unwrap();
        assert_eq!(t.read_mcast(77, 100, 40), Err(CsError::InvalidParam));
        assert_eq!(t.read_mcast(78, 100, 40), Err(CsError::InvalidParam));
        t.free(77);
        assert!(t.is_empty());
    }

    #[test]
    fn large_message_and_shrunk_file() {
        let path = format!("/dev/shm/corosync_zerocopy-test-large-{}", std::process::id());
        let len = 3 * PREFETCH + 5;
        let size = ZC_HEADER + len as u64;
        std::fs::write(&path, vec![0u8; size as usize]).unwrap();
        let mut t = ZcTable::default();
        t.alloc(&path, size, sys::getuid(), 9).expect("alloc");
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let file = &t.bufs[&9].file;
        sys::pwrite_all(file, 48, &(len as u32).to_le_bytes()).unwrap();
        sys::pwrite_all(file, 56, &payload).unwrap();
        let f = t.read_mcast(9, len, 184).unwrap();
        assert_eq!(f.len(), 184 + len);
        assert!(f[184..] == payload[..]);
        // Past the prefetch, then the client truncates the file.
        sys::set_len(file, size - 10).unwrap();
        assert_eq!(t.read_mcast(9, len, 184), Err(CsError::InvalidParam));
        // A short message is still read whole from the shorter file.
        sys::pwrite_all(file, 48, &7u32.to_le_bytes()).unwrap();
        assert_eq!(&t.read_mcast(9, len, 40).unwrap()[40..], &payload[..7]);
    }
}

//! Reassembly of fragmented multicasts, per sender (node, pid), as
//! corosync's library keys them. Unlike it, a fragment that would run past
//! the announced length, or a LAST that does not complete the message,
//! discards the assembly: a message is delivered whole or not at all.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::proto::{FRAG_CONTINUED, FRAG_FIRST, FRAG_LAST};

struct Assembly {
    msglen: u32,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct Reassembly {
    open: HashMap<(u32, u32), Assembly>,
}

impl Reassembly {
    /// Adds one fragment; returns the whole message when `kind` is LAST
    /// and the message is complete.
    pub fn add(&mut self, nodeid: u32, pid: u32, kind: u32, msglen: u32, frag: &[u8]) -> Option<Vec<u8>> {
        let key = (nodeid, pid);
        if kind == FRAG_FIRST {
            self.open.insert(
                key,
                Assembly {
                    msglen,
                    data: Vec::new(),
                },
            );
        } else if kind != FRAG_CONTINUED && kind != FRAG_LAST {
            self.open.remove(&key);
            return None;
        }
        let asm = self.open.get_mut(&key)?;
        let need = asm.data.len() + frag.len();
        if need > asm.msglen as usize || !grow(&mut asm.data, need, asm.msglen as usize) {
            self.open.remove(&key);
            return None;
        }
        asm.data.extend_from_slice(frag);
        if kind == FRAG_LAST {
            let asm = self.open.remove(&key)?;
            if asm.data.len() == msglen as usize && msglen == asm.msglen {
                return Some(asm.data);
            }
        }
        None
    }

    /// Drops the assembly of a sender that left.
    pub fn forget(&mut self, nodeid: u32, pid: u32) {
        self.open.remove(&(nodeid, pid));
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.open.len()
    }
}

/// Makes room for `need` bytes: capacity doubles, but never past the
/// announced length, so memory stays below both `msglen` and twice the
/// bytes received (a hostile length alone costs nothing).
fn grow(data: &mut Vec<u8>, need: usize, msglen: usize) -> bool {
    if need <= data.capacity() {
        return true;
    }
    let target = (data.capacity() * 2).max(need).min(msglen);
    data.try_reserve_exact(target - data.len()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_in_order_per_sender() {
        let mut r = Reassembly::default();
        assert_eq!(r.add(1, 10, FRAG_FIRST, 6, b"ab"), None);
        assert_eq!(r.add(1, 11, FRAG_FIRST, 4, b"xy"), None);
        assert_eq!(r.add(1, 10, FRAG_CONTINUED, 6, b"cd"), None);
        assert_eq!(r.add(1, 11, FRAG_LAST, 4, b"zw"), Some(b"xyzw".to_vec()));
        assert_eq!(r.add(1, 10, FRAG_LAST, 6, b"ef"), Some(b"abcdef".to_vec()));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn new_first_restarts_and_orphans_are_ignored() {
        let mut r = Reassembly::default();
        r.add(1, 10, FRAG_FIRST, 4, b"");
        r.add(1, 10, FRAG_FIRST, 4, b"ab");
        assert_eq!(r.add(1, 10, FRAG_LAST, 4, b"cd"), Some(b"abcd".to_vec()));
        assert_eq!(r.add(1, 12, FRAG_CONTINUED, 4, b"cd"), None);
        assert_eq!(r.add(1, 12, FRAG_LAST, 4, b"cd"), None);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn overruns_short_messages_and_bad_kinds_are_dropped() {
        let mut r = Reassembly::default();
        r.add(1, 10, FRAG_FIRST, 3, b"ab");
        assert_eq!(r.add(1, 10, FRAG_LAST, 3, b"cd"), None, "past msglen");
        r.add(1, 10, FRAG_FIRST, 6, b"ab");
        assert_eq!(r.add(1, 10, FRAG_LAST, 6, b"cd"), None, "short");
        r.add(1, 10, FRAG_FIRST, 6, b"ab");
        assert_eq!(r.add(1, 10, 9, 6, b"cd"), None);
        assert_eq!(r.pending(), 0);
        r.add(1, 10, FRAG_FIRST, 6, b"ab");
        r.forget(1, 10);
        assert_eq!(r.add(1, 10, FRAG_LAST, 6, b"cdef"), None);
        // A hostile length reserves nothing beyond the data received
        // (found by fuzz/fuzz_targets/reassembly.rs: it reserved 64 MiB).
        assert_eq!(r.add(2, 2, FRAG_FIRST, u32::MAX, b"a"), None);
        assert_eq!(r.pending(), 1);
        assert!(r.open[&(2, 2)].data.capacity() <= 2);
        for _ in 0..100 {
            assert_eq!(r.add(2, 2, FRAG_CONTINUED, u32::MAX, &[7u8; 1000]), None);
            let asm = &r.open[&(2, 2)];
            assert!(asm.data.capacity() <= 2 * asm.data.len());
        }
        // Capacity never exceeds the announced length.
        r.add(3, 3, FRAG_FIRST, 1500, &[1u8; 1000]);
        r.add(3, 3, FRAG_CONTINUED, 1500, &[1u8; 10]);
        assert!(r.open[&(3, 3)].data.capacity() <= 1500);
        assert_eq!(r.add(3, 3, FRAG_LAST, 1500, &[1u8; 490]).map(|v| v.len()), Some(1500));
    }
}

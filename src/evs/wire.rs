//! The EVS-over-CPG wire contract (docs/evs-wire.md): every EVS message of
//! every process on every node travels in one CPG group, prefixed by a
//! 16-byte header and the raw 32-byte keys of its target groups.
//!
//! ```text
//! offset  size  field
//!      0     4  magic 0x31535645 ("EVS1" in memory order)
//!      4     2  format version, 1
//!      6     2  flags: bit 0 = sent by evs_mcast_joined; others 0
//!      8     4  n, the number of group keys
//!     12     4  the sender's guarantee value (receivers ignore it)
//!     16  32·n  group keys
//! 16+32·n  rest  payload
//! ```
//!
//! All fields little-endian. The header is a multiple of 8 bytes, so a
//! payload that arrives 8-aligned stays 8-aligned.
#![forbid(unsafe_code)]

use crate::proto::GroupName;

/// The CPG group all EVS traffic uses: these 22 bytes, no trailing NUL.
pub const GROUP: &[u8] = b"corosync_evs_compat_v1";
pub const MAGIC: u32 = 0x3153_5645;
pub const VERSION: u16 = 1;
pub const FLAG_JOINED: u16 = 1;
pub const HEADER_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

/// A raw EVS group key.
pub type Key = [u8; KEY_LEN];

pub fn group_name() -> GroupName {
    GroupName::new(GROUP).expect("the EVS group name fits a CPG name")
}

/// The header for a message to `n` groups.
pub fn header(n: u32, guarantee: u32, flags: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..12].copy_from_slice(&n.to_le_bytes());
    h[12..16].copy_from_slice(&guarantee.to_le_bytes());
    h
}

/// A received message: its target keys and where its payload starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub keys: &'a [u8],
    pub payload_at: usize,
}

impl Parsed<'_> {
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.chunks_exact(KEY_LEN)
    }
}

/// Splits a CPG payload; `None` for anything that is not an EVS message
/// of this format (wrong magic or version, or keys past the end), which
/// receivers drop silently.
pub fn parse(msg: &[u8]) -> Option<Parsed<'_>> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let magic = u32::from_le_bytes(msg[0..4].try_into().ok()?);
    let version = u16::from_le_bytes(msg[4..6].try_into().ok()?);
    if magic != MAGIC || version != VERSION {
        return None;
    }
    let n = u32::from_le_bytes(msg[8..12].try_into().ok()?) as usize;
    let keys_len = n.checked_mul(KEY_LEN)?;
    let payload_at = HEADER_LEN.checked_add(keys_len)?;
    if payload_at > msg.len() {
        return None;
    }
    Some(Parsed {
        keys: &msg[HEADER_LEN..payload_at],
        payload_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(keys: &[Key], payload: &[u8]) -> Vec<u8> {
        let mut m = header(keys.len() as u32, 2, 0).to_vec();
        for k in keys {
            m.extend_from_slice(k);
        }
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn round_trip() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let m = message(&[a, b], b"hello");
        assert_eq!(&m[0..4], b"EVS1");
        let p = parse(&m).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), vec![&a[..], &b[..]]);
        assert_eq!(&m[p.payload_at..], b"hello");
    }

    #[test]
    fn empty_payload_and_no_keys() {
        let m = message(&[], b"");
        let p = parse(&m).unwrap();
        assert_eq!(p.keys().count(), 0);
        assert_eq!(p.payload_at, m.len());
    }

    #[test]
    fn refuses_foreign_or_short() {
        assert!(parse(b"").is_none());
        assert!(parse(&[0u8; 15]).is_none());
        let mut m = message(&[[7u8; 32]], b"x");
        m[0] ^= 1;
        assert!(parse(&m).is_none());
        let mut m = message(&[[7u8; 32]], b"x");
        m[4] = 2;
        assert!(parse(&m).is_none());
        // Claims more keys than the message holds.
        let mut m = message(&[[7u8; 32]], b"");
        m[8] = 2;
        assert!(parse(&m).is_none());
        m[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&m).is_none());
    }
}

//! Process-wide handle tables, laid out like libqb's handle database:
//! a handle is `(check << 32) | slot`, where `check` is drawn from the C
//! library's `random()` stream (as corosync's library does, so programs
//! that seed `random()` see the same sequence) and a check of
//! `0xFFFFFFFF` matches any live slot. A stale, finalized or forged
//! handle gives `CS_ERR_BAD_HANDLE`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::CsError;
use crate::ipc::sys;

const WILDCARD: u32 = 0xFFFF_FFFF;

struct Slot<T> {
    check: u32,
    value: Option<Arc<T>>,
}

pub struct HandleTable<T> {
    slots: Mutex<Vec<Slot<T>>>,
}

impl<T> HandleTable<T> {
    pub const fn new() -> HandleTable<T> {
        HandleTable {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Stores `value` in the first free slot and returns its handle.
    pub fn insert(&self, value: Arc<T>) -> u64 {
        self.insert_with(|_| value)
    }

    /// Like `insert`, for values that need to know their own handle.
    pub fn insert_with(&self, make: impl FnOnce(u64) -> Arc<T>) -> u64 {
        let check = sys::random_positive();
        let mut slots = self.slots.lock();
        let index = match slots.iter().position(|s| s.value.is_none()) {
            Some(i) => i,
            None => {
                slots.push(Slot { check: 0, value: None });
                slots.len() - 1
            }
        };
        let handle = (u64::from(check) << 32) | index as u64;
        slots[index] = Slot {
            check,
            value: Some(make(handle)),
        };
        handle
    }

    fn index(slots: &[Slot<T>], handle: u64) -> Result<usize, CsError> {
        let check = (handle >> 32) as u32;
        let index = (handle & 0xFFFF_FFFF) as usize;
        match slots.get(index) {
            Some(s) if s.value.is_some() && (s.check == check || check == WILDCARD) => Ok(index),
            _ => Err(CsError::BadHandle),
        }
    }

    /// The live value behind `handle` (a new reference; the table lock is
    /// released before returning).
    pub fn get(&self, handle: u64) -> Result<Arc<T>, CsError> {
        let slots = self.slots.lock();
        let i = Self::index(&slots, handle)?;
        Ok(slots[i].value.clone().expect("checked live"))
    }

    /// Removes `handle`; later lookups fail. In-flight users keep their
    /// reference until they return.
    pub fn remove(&self, handle: u64) -> Result<Arc<T>, CsError> {
        let mut slots = self.slots.lock();
        let i = Self::index(&slots, handle)?;
        Ok(slots[i].value.take().expect("checked live"))
    }

    /// Removes every entry for which `pred` holds (used to drop the
    /// iteration handles of a finalized connection).
    pub fn remove_where(&self, mut pred: impl FnMut(&T) -> bool) -> Vec<Arc<T>> {
        let mut slots = self.slots.lock();
        let mut out = Vec::new();
        for s in slots.iter_mut() {
            if s.value.as_deref().is_some_and(&mut pred) {
                out.extend(s.value.take());
            }
        }
        out
    }
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_stale_forged_and_wildcard() {
        let t: HandleTable<u32> = HandleTable::new();
        let a = t.insert(Arc::new(1));
        let b = t.insert(Arc::new(2));
        assert_eq!(a & 0xFFFF_FFFF, 0);
        assert_eq!(b & 0xFFFF_FFFF, 1);
        assert_eq!(*t.get(a).unwrap(), 1);
        assert_eq!(*t.get(b).unwrap(), 2);
        assert_eq!(t.get(0).err(), Some(CsError::BadHandle));
        assert_eq!(t.get(a ^ (1 << 40)).err(), Some(CsError::BadHandle));
        assert_eq!(t.get(a + 7).err(), Some(CsError::BadHandle));
        assert_eq!(*t.get(0xFFFF_FFFF_0000_0001).unwrap(), 2);
        let held = t.remove(a).unwrap();
        assert_eq!(*held, 1);
        assert_eq!(t.get(a).err(), Some(CsError::BadHandle));
        assert_eq!(t.remove(a).err(), Some(CsError::BadHandle));
        assert_eq!(t.get(0xFFFF_FFFF_0000_0000).err(), Some(CsError::BadHandle));
        // The freed slot is reused with a new check value.
        let c = t.insert(Arc::new(3));
        assert_eq!(c & 0xFFFF_FFFF, 0);
        assert_eq!(*t.get(c).unwrap(), 3);
        assert!((c >> 32) > 0);
    }

    #[test]
    fn remove_where_drops_matching() {
        let t: HandleTable<u32> = HandleTable::new();
        let hs: Vec<u64> = (0..6).map(|i| t.insert(Arc::new(i))).collect();
        let gone = t.remove_where(|v| v % 2 == 0);
        assert_eq!(gone.len(), 3);
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(t.get(*h).is_ok(), i % 2 == 1);
        }
    }

    #[test]
    fn concurrent_insert_get_remove() {
        let t: Arc<HandleTable<u64>> = Arc::new(HandleTable::new());
        std::thread::scope(|s| {
            for k in 0..4u64 {
                let t = t.clone();
                s.spawn(move || {
                    for i in 0..2000 {
                        let h = t.insert(Arc::new(k * 10_000 + i));
                        assert_eq!(*t.get(h).unwrap(), k * 10_000 + i);
                        t.remove(h).unwrap();
                        assert!(t.get(h).is_err());
                    }
                });
            }
        });
    }
}

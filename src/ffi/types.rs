//! The C types of `cpg.h` and `evs.h`, laid out exactly as corosync's.

use std::ffi::{c_char, c_uint, c_void};

use crate::error::CsError;
use crate::proto::{self, GroupName};

pub type cpg_handle_t = u64;
pub type cpg_iteration_handle_t = u64;

pub const CPG_MAX_NAME_LENGTH: usize = 128;
pub const CPG_MODEL_V1: c_uint = 1;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_name {
    pub length: u32,
    pub value: [c_char; CPG_MAX_NAME_LENGTH],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_address {
    pub nodeid: u32,
    pub pid: u32,
    pub reason: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_ring_id {
    pub nodeid: u32,
    pub seq: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_iteration_description_t {
    pub group: cpg_name,
    pub nodeid: u32,
    pub pid: u32,
}

pub type cpg_deliver_fn_t = Option<unsafe extern "C" fn(cpg_handle_t, *const cpg_name, u32, u32, *mut c_void, usize)>;

pub type cpg_confchg_fn_t = Option<
    unsafe extern "C" fn(
        cpg_handle_t,
        *const cpg_name,
        *const cpg_address,
        usize,
        *const cpg_address,
        usize,
        *const cpg_address,
        usize,
    ),
>;

pub type cpg_totem_confchg_fn_t = Option<unsafe extern "C" fn(cpg_handle_t, cpg_ring_id, u32, *const u32)>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_callbacks_t {
    pub cpg_deliver_fn: cpg_deliver_fn_t,
    pub cpg_confchg_fn: cpg_confchg_fn_t,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_model_data_t {
    pub model: c_uint,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct cpg_model_v1_data_t {
    pub model: c_uint,
    pub cpg_deliver_fn: cpg_deliver_fn_t,
    pub cpg_confchg_fn: cpg_confchg_fn_t,
    pub cpg_totem_confchg_fn: cpg_totem_confchg_fn_t,
    pub flags: c_uint,
}

impl cpg_name {
    /// The group name the service sees: all 128 value bytes travel, the
    /// length must be at most 128.
    pub fn to_group(&self) -> Result<GroupName, CsError> {
        if self.length as usize > CPG_MAX_NAME_LENGTH {
            return Err(CsError::NameTooLong);
        }
        let mut value = [0u8; proto::MAX_NAME];
        for (d, s) in value.iter_mut().zip(self.value.iter()) {
            *d = *s as u8;
        }
        Ok(GroupName {
            length: self.length,
            value,
        })
    }

    pub fn from_group(g: &GroupName) -> cpg_name {
        let mut value = [0 as c_char; CPG_MAX_NAME_LENGTH];
        for (d, s) in value.iter_mut().zip(g.value.iter()) {
            *d = *s as c_char;
        }
        cpg_name {
            length: g.length,
            value,
        }
    }
}

impl From<&proto::Address> for cpg_address {
    fn from(a: &proto::Address) -> cpg_address {
        cpg_address {
            nodeid: a.nodeid,
            pid: a.pid,
            reason: a.reason,
        }
    }
}

// ----- evs.h (corosync 1.4) -----

pub type evs_handle_t = u64;

/// `struct evs_group`: a raw 32-byte key.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct evs_group {
    pub key: [c_char; 32],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct evs_ring_id {
    pub nodeid: c_uint,
    pub seq: u64,
}

pub type evs_deliver_fn_t = Option<unsafe extern "C" fn(u64, c_uint, *const c_void, usize)>;

pub type evs_confchg_fn_t = Option<
    unsafe extern "C" fn(u64, *const c_uint, usize, *const c_uint, usize, *const c_uint, usize, *const evs_ring_id),
>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct evs_callbacks_t {
    pub evs_deliver_fn: evs_deliver_fn_t,
    pub evs_confchg_fn: evs_confchg_fn_t,
}

/// `evs_guarantee_t`: UNORDERED 0, FIFO 1, AGREED 2, SAFE 3.
pub const EVS_TYPE_SAFE: c_uint = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_corosync() {
        assert_eq!(size_of::<cpg_name>(), 132);
        assert_eq!(size_of::<cpg_address>(), 12);
        assert_eq!((size_of::<cpg_ring_id>(), align_of::<cpg_ring_id>()), (16, 8));
        assert_eq!(offset_of!(cpg_ring_id, seq), 8);
        assert_eq!(size_of::<cpg_iteration_description_t>(), 140);
        assert_eq!(offset_of!(cpg_iteration_description_t, nodeid), 132);
        assert_eq!(offset_of!(cpg_iteration_description_t, pid), 136);
        assert_eq!(size_of::<cpg_callbacks_t>(), 16);
        assert_eq!(size_of::<cpg_model_data_t>(), 4);
        assert_eq!(size_of::<cpg_model_v1_data_t>(), 40);
        assert_eq!(offset_of!(cpg_model_v1_data_t, cpg_deliver_fn), 8);
        assert_eq!(offset_of!(cpg_model_v1_data_t, cpg_totem_confchg_fn), 24);
        assert_eq!(offset_of!(cpg_model_v1_data_t, flags), 32);
    }

    #[test]
    fn names_convert_both_ways() {
        let mut n = cpg_name {
            length: 4,
            value: [0; 128],
        };
        for (i, b) in b"crmd\0junk".iter().enumerate() {
            n.value[i] = *b as c_char;
        }
        let g = n.to_group().unwrap();
        assert_eq!(g.bytes(), b"crmd");
        assert_eq!(g.value[5], b'j');
        let back = cpg_name::from_group(&g);
        assert_eq!(back.length, 4);
        assert_eq!(back.value[6] as u8, b'u');
        n.length = 129;
        assert_eq!(n.to_group().err(), Some(CsError::NameTooLong));
        n.length = u32::MAX;
        assert_eq!(n.to_group().err(), Some(CsError::NameTooLong));
    }

    #[test]
    fn evs_layouts() {
        assert_eq!(size_of::<evs_group>(), 32);
        assert_eq!(size_of::<evs_ring_id>(), 16);
        assert_eq!(std::mem::offset_of!(evs_ring_id, seq), 8);
        assert_eq!(size_of::<evs_callbacks_t>(), 16);
        assert_eq!(std::mem::offset_of!(evs_callbacks_t, evs_confchg_fn), 8);
    }
}

//! The `evs_*` exports of libevs.so.4 (corosync 1.4's API), served by the
//! EVS-over-CPG core. Handles are checked first, as 1.4 did; where 1.4
//! would crash (NULL pointers, more than 62 iovecs) or silently accept
//! nonsense (unknown dispatch or guarantee values) we return
//! `CS_ERR_INVALID_PARAM` (docs/evs.md lists every difference).

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;

use super::types::*;
use super::{cs_error_t, dispatch_outside_door, door, in_slice, iovec_parts, out_param};
use crate::cpg::handles::HandleTable;
use crate::cpg::DispatchMode;
use crate::error::CsError;
use crate::evs::{Evs, EvsCallback, MAX_JOIN};

/// iovec entries accepted: more than enough for any message that fits.
const MAX_IOV: usize = 1 << 20;

struct Handle {
    evs: Evs,
    deliver: evs_deliver_fn_t,
    confchg: evs_confchg_fn_t,
}

static EVS: HandleTable<Handle> = HandleTable::new();

/// The raw bytes of `count` group keys; NULL is fine for zero keys.
///
/// # Safety
/// `groups` is NULL or readable for `count` keys.
unsafe fn keys<'a>(groups: *const evs_group, count: usize) -> Result<&'a [u8], CsError> {
    let len = count.checked_mul(size_of::<evs_group>()).ok_or(CsError::InvalidParam)?;
    // SAFETY: the caller guarantees `count` readable keys.
    unsafe { in_slice(groups.cast(), len) }
}

fn guarantee(g: c_uint) -> Result<u32, CsError> {
    if g <= EVS_TYPE_SAFE {
        Ok(g)
    } else {
        Err(CsError::InvalidParam)
    }
}

/// Connects a new EVS handle (sharing the process's CPG connection) and
/// queues its startup configuration change.
///
/// # Safety
/// `handle` is NULL or writable; `callbacks` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_initialize(handle: *mut evs_handle_t, callbacks: *mut evs_callbacks_t) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(handle) }?;
        // SAFETY: caller contract above.
        let cb = unsafe { callbacks.as_ref() }.copied();
        let evs = Evs::initialize()?;
        let h = EVS.insert(Arc::new(Handle {
            evs,
            deliver: cb.and_then(|c| c.evs_deliver_fn),
            confchg: cb.and_then(|c| c.evs_confchg_fn),
        }));
        out.write(h);
        Ok(())
    })
}

/// Closes the handle; a thread dispatching it returns `CS_OK`.
///
/// # Safety
/// None beyond the C calling convention.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_finalize(handle: evs_handle_t) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        h.evs.finalize()?;
        let _ = EVS.remove(handle);
        Ok(())
    })
}

/// The descriptor to poll: readable while the handle may have events.
///
/// # Safety
/// `fd` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_fd_get(handle: evs_handle_t, fd: *mut c_int) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        // SAFETY: caller contract above.
        unsafe { out_param(fd) }?.write(h.evs.fd());
        Ok(())
    })
}

/// # Safety
/// `context` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_context_get(handle: evs_handle_t, context: *mut *mut c_void) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        // SAFETY: caller contract above.
        unsafe { out_param(context) }?.write(h.evs.context() as *mut c_void);
        Ok(())
    })
}

/// # Safety
/// None: the pointer is stored, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_context_set(handle: evs_handle_t, context: *mut c_void) -> cs_error_t {
    door(|| {
        EVS.get(handle)?.evs.set_context(context as usize);
        Ok(())
    })
}

/// Runs callbacks as `dispatch_types` says (`CS_DISPATCH_ONE`, `_ALL`,
/// `_BLOCKING`, and corosync 3's `_ONE_NONBLOCKING`). Like
/// `cpg_dispatch`, a blocked wait is a cancellation point and happens
/// outside the panic door.
///
/// # Safety
/// The registered callbacks are valid C functions.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn evs_dispatch(handle: evs_handle_t, dispatch_types: c_uint) -> cs_error_t {
    dispatch_outside_door(
        || EVS.get(handle),
        |h| {
            let mode = DispatchMode::from_raw(dispatch_types)?;
            h.evs.dispatch_step(mode, &mut |event| run_callback(handle, h, event))
        },
        |h| h.evs.sleep(),
    )
}

fn run_callback(handle: evs_handle_t, h: &Handle, event: EvsCallback<'_>) {
    match event {
        EvsCallback::Deliver { nodeid, msg } => {
            if let Some(f) = h.deliver {
                // SAFETY: the application registered `f` with this
                // signature; `msg` lives across the call.
                unsafe { f(handle, nodeid, msg.as_ptr().cast(), msg.len()) };
            }
        }
        EvsCallback::Confchg {
            members,
            left,
            joined,
            ring,
        } => {
            if let Some(f) = h.confchg {
                let ring = evs_ring_id {
                    nodeid: ring.nodeid,
                    seq: ring.seq,
                };
                // SAFETY: as above; the lists and the ring id live across
                // the call.
                unsafe {
                    f(
                        handle,
                        members.as_ptr(),
                        members.len(),
                        left.as_ptr(),
                        left.len(),
                        joined.as_ptr(),
                        joined.len(),
                        &ring,
                    )
                };
            }
        }
    }
}

/// Adds `group_cnt` keys to the handle's joined list (at most 50 per
/// call, `CS_ERR_TOO_MANY_GROUPS` beyond, with nothing joined).
///
/// # Safety
/// `groups` is NULL or readable for `group_cnt` keys.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_join(handle: evs_handle_t, groups: *const evs_group, group_cnt: usize) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        if group_cnt > MAX_JOIN {
            return Err(CsError::TooManyGroups);
        }
        // SAFETY: caller contract above.
        h.evs.join(unsafe { keys(groups, group_cnt) }?)
    })
}

/// Removes one joined entry per listed key; `CS_ERR_NOT_EXIST` at the
/// first key not joined.
///
/// # Safety
/// `groups` is NULL or readable for `group_cnt` keys.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_leave(handle: evs_handle_t, groups: *const evs_group, group_cnt: usize) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        // SAFETY: caller contract above.
        h.evs.leave(unsafe { keys(groups, group_cnt) }?)
    })
}

/// Multicasts the gathered buffers to the groups the handle has joined.
///
/// # Safety
/// `iovec` is NULL or points to `iov_len` iovecs with readable buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_mcast_joined(
    handle: evs_handle_t,
    guarantee_: c_uint,
    iovec: *const libc::iovec,
    iov_len: c_uint,
) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        let g = guarantee(guarantee_)?;
        // SAFETY: caller contract above.
        let parts = unsafe { iovec_parts(iovec, iov_len as usize, MAX_IOV) }?;
        h.evs.mcast_joined(g, &parts)
    })
}

/// Multicasts the gathered buffers to `groups` (no join needed).
///
/// # Safety
/// `groups` is NULL or readable for `group_cnt` keys; `iovec` is NULL or
/// points to `iov_len` iovecs with readable buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_mcast_groups(
    handle: evs_handle_t,
    guarantee_: c_uint,
    groups: *const evs_group,
    group_cnt: usize,
    iovec: *const libc::iovec,
    iov_len: c_uint,
) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        let g = guarantee(guarantee_)?;
        // SAFETY: caller contract above.
        let keys = unsafe { keys(groups, group_cnt) }?;
        // SAFETY: caller contract above.
        let parts = unsafe { iovec_parts(iovec, iov_len as usize, MAX_IOV) }?;
        h.evs.mcast_groups(g, keys, &parts)
    })
}

/// This node's id and the node membership. `*member_list_entries` is the
/// capacity of `member_list` on entry and the number written on return
/// (truncated silently, as 1.4); `local_nodeid` and `member_list` may be
/// NULL.
///
/// # Safety
/// `local_nodeid` is NULL or writable; `member_list` is NULL or writable
/// for `*member_list_entries` ids; `member_list_entries` is NULL or
/// readable and writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn evs_membership_get(
    handle: evs_handle_t,
    local_nodeid: *mut c_uint,
    member_list: *mut c_uint,
    member_list_entries: *mut usize,
) -> cs_error_t {
    door(|| {
        let h = EVS.get(handle)?;
        // SAFETY: caller contract above.
        let entries = unsafe { member_list_entries.as_mut() }.ok_or(CsError::InvalidParam)?;
        let (nodeid, members) = h.evs.membership()?;
        let n = (*entries).min(members.len());
        if !member_list.is_null() && n > 0 {
            // SAFETY: the caller guarantees room for `*entries` >= n ids.
            let out = unsafe { std::slice::from_raw_parts_mut(member_list, n) };
            out.copy_from_slice(&members[..n]);
        }
        // SAFETY: caller contract above.
        if let Some(id) = unsafe { local_nodeid.as_mut() } {
            *id = nodeid;
        }
        *entries = n;
        Ok(())
    })
}

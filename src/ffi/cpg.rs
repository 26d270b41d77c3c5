//! The `cpg_*` exports of libcpg.so.4. Each checks its arguments in the
//! order corosync's library does, calls the client core, and maps the
//! result; where the original would crash (NULL pointers, bad enum
//! values, huge iovec counts) we return `CS_ERR_INVALID_PARAM`.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;

use super::types::*;
use super::{cs_error_t, dispatch_outside_door, door, in_ref, iovec_parts, out_param};
use crate::cpg::handles::HandleTable;
use crate::cpg::{Callback, Cpg, DispatchMode, FLAG_INITIAL_TOTEM_CONF, MAX_ATOMIC_MSG};
use crate::error::CsError;

/// Largest iovec count accepted (`IOV_MAX`); the C library copies the
/// list into a 64-entry array and aborts beyond it.
const MAX_IOV: usize = 1024;

/// What C registered on a handle.
#[derive(Clone, Copy)]
struct Callbacks {
    deliver: cpg_deliver_fn_t,
    confchg: cpg_confchg_fn_t,
    totem: cpg_totem_confchg_fn_t,
}

struct Handle {
    cpg: Cpg,
    callbacks: Callbacks,
}

struct Iteration {
    owner: cpg_handle_t,
    conn: Arc<Handle>,
    token: u64,
}

static CPG: HandleTable<Handle> = HandleTable::new();
static ITERATIONS: HandleTable<Iteration> = HandleTable::new();

fn create(
    handle: &mut std::mem::MaybeUninit<cpg_handle_t>,
    callbacks: Callbacks,
    flags: c_uint,
    context: usize,
) -> Result<(), CsError> {
    let cpg = Cpg::connect(flags, context)?;
    let h = CPG.insert(Arc::new(Handle { cpg, callbacks }));
    handle.write(h);
    Ok(())
}

/// Connects to the CPG service with the two classic callbacks.
///
/// # Safety
/// `handle` is NULL or writable; `callbacks` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_initialize(handle: *mut cpg_handle_t, callbacks: *mut cpg_callbacks_t) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(handle) }?;
        // SAFETY: caller contract above.
        let cb = unsafe { callbacks.as_ref() }.copied();
        let callbacks = Callbacks {
            deliver: cb.and_then(|c| c.cpg_deliver_fn),
            confchg: cb.and_then(|c| c.cpg_confchg_fn),
            totem: None,
        };
        create(out, callbacks, 0, 0)
    })
}

/// Connects with a model: only `CPG_MODEL_V1`, whose data may carry a
/// totem-confchg callback and `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`.
///
/// # Safety
/// `handle` is NULL or writable; `model_data` is NULL or points to a
/// `cpg_model_v1_data_t` when `model` is `CPG_MODEL_V1`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_model_initialize(
    handle: *mut cpg_handle_t,
    model: c_uint,
    model_data: *mut cpg_model_data_t,
    context: *mut c_void,
) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(handle) }?;
        if model != CPG_MODEL_V1 {
            return Err(CsError::InvalidParam);
        }
        // SAFETY: for model V1 the data is a cpg_model_v1_data_t (caller contract).
        let data = unsafe { model_data.cast::<cpg_model_v1_data_t>().as_ref() }.copied();
        let (callbacks, flags) = match data {
            Some(d) => (
                Callbacks {
                    deliver: d.cpg_deliver_fn,
                    confchg: d.cpg_confchg_fn,
                    totem: d.cpg_totem_confchg_fn,
                },
                d.flags,
            ),
            None => (
                Callbacks {
                    deliver: None,
                    confchg: None,
                    totem: None,
                },
                0,
            ),
        };
        // Checked before connecting: the C library checks after, and leaks
        // the connection.
        if flags & !FLAG_INITIAL_TOTEM_CONF != 0 {
            return Err(CsError::InvalidParam);
        }
        create(out, callbacks, flags, context as usize)
    })
}

/// Closes the handle: later calls on it fail with `CS_ERR_BAD_HANDLE`,
/// and a thread blocked in `cpg_dispatch` on it returns.
///
/// # Safety
/// No pointer arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_finalize(handle: cpg_handle_t) -> cs_error_t {
    door(|| {
        let h = CPG.remove(handle)?;
        drop(ITERATIONS.remove_where(|it| it.owner == handle));
        h.cpg.finalize()
    })
}

/// # Safety
/// `fd` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_fd_get(handle: cpg_handle_t, fd: *mut c_int) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(fd) }?;
        let h = CPG.get(handle)?;
        out.write(h.cpg.fd());
        Ok(())
    })
}

/// # Safety
/// `size` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_max_atomic_msgsize_get(handle: cpg_handle_t, size: *mut u32) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(size) }?;
        CPG.get(handle)?;
        out.write(MAX_ATOMIC_MSG as u32);
        Ok(())
    })
}

/// # Safety
/// `context` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_context_get(handle: cpg_handle_t, context: *mut *mut c_void) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(context) }?;
        let h = CPG.get(handle)?;
        out.write(h.cpg.context() as *mut c_void);
        Ok(())
    })
}

/// # Safety
/// `context` is stored, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_context_set(handle: cpg_handle_t, context: *mut c_void) -> cs_error_t {
    door(|| {
        CPG.get(handle)?.cpg.set_context(context as usize);
        Ok(())
    })
}

/// Runs the callbacks of pending events as `dispatch_types` says.
///
/// `C-unwind`: a thread blocked here may be cancelled (`pthread_cancel`,
/// as fence_virtd does at shutdown). The wait happens outside the
/// panic-catching door, so glibc's forced unwind passes through our
/// frames, releasing what they hold, instead of being caught.
///
/// # Safety
/// The registered callbacks must be safe to call with the documented
/// arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn cpg_dispatch(handle: cpg_handle_t, dispatch_types: c_uint) -> cs_error_t {
    dispatch_outside_door(
        || CPG.get(handle),
        |h| {
            let mode = DispatchMode::from_raw(dispatch_types)?;
            h.cpg
                .dispatch_step(mode, &mut |event| run_callback(handle, &h.callbacks, event))
        },
        |h| h.cpg.sleep(),
    )
}

fn run_callback(handle: cpg_handle_t, cb: &Callbacks, event: Callback<'_>) {
    match event {
        Callback::Deliver {
            group,
            nodeid,
            pid,
            msg,
        } => {
            if let Some(f) = cb.deliver {
                let name = cpg_name::from_group(group);
                // SAFETY: the application registered `f` with this
                // signature; `name` and `msg` live across the call.
                unsafe { f(handle, &name, nodeid, pid, msg.as_mut_ptr().cast(), msg.len()) };
            }
        }
        Callback::Confchg {
            group,
            members,
            left,
            joined,
        } => {
            if let Some(f) = cb.confchg {
                let name = cpg_name::from_group(group);
                let m: Vec<cpg_address> = members.iter().map(Into::into).collect();
                let l: Vec<cpg_address> = left.iter().map(Into::into).collect();
                let j: Vec<cpg_address> = joined.iter().map(Into::into).collect();
                // SAFETY: as above; the arrays live across the call.
                unsafe {
                    f(
                        handle,
                        &name,
                        m.as_ptr(),
                        m.len(),
                        l.as_ptr(),
                        l.len(),
                        j.as_ptr(),
                        j.len(),
                    )
                };
            }
        }
        Callback::TotemConfchg { ring_id, members } => {
            if let Some(f) = cb.totem {
                let rid = cpg_ring_id {
                    nodeid: ring_id.nodeid,
                    seq: ring_id.seq,
                };
                // SAFETY: as above; `members` lives across the call.
                unsafe { f(handle, rid, members.len() as u32, members.as_ptr()) };
            }
        }
    }
}

/// # Safety
/// `group` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_join(handle: cpg_handle_t, group: *const cpg_name) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let g = unsafe { in_ref(group) }?.to_group()?;
        CPG.get(handle)?.cpg.join(&g)
    })
}

/// # Safety
/// `group` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_leave(handle: cpg_handle_t, group: *const cpg_name) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let g = unsafe { in_ref(group) }?.to_group()?;
        CPG.get(handle)?.cpg.leave(&g)
    })
}

/// Multicasts the gathered buffers to the joined group.
///
/// # Safety
/// `iovec` is NULL or points to `iov_len` iovecs, each NULL-based only
/// when its length is 0 or else readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_mcast_joined(
    handle: cpg_handle_t,
    guarantee: c_uint,
    iovec: *const libc::iovec,
    iov_len: c_uint,
) -> cs_error_t {
    door(|| {
        let h = CPG.get(handle)?;
        // SAFETY: caller contract above.
        let parts = unsafe { iovec_parts(iovec, iov_len as usize, MAX_IOV) }?;
        h.cpg.mcast(guarantee, &parts)
    })
}

/// Members of `group` (the caller need not be one).
///
/// `*member_list_entries` on entry is taken as the capacity of
/// `member_list` when positive (the C library ignores it and may write
/// past the array); zero or negative means "unknown", as before.
///
/// # Safety
/// `group` readable; `member_list` writable for the capacity (or for the
/// member count when the capacity is not given); `member_list_entries`
/// readable and writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_membership_get(
    handle: cpg_handle_t,
    group: *mut cpg_name,
    member_list: *mut cpg_address,
    member_list_entries: *mut c_int,
) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let g = unsafe { in_ref(group) }?.to_group()?;
        if member_list.is_null() || member_list_entries.is_null() {
            return Err(CsError::InvalidParam);
        }
        let h = CPG.get(handle)?;
        let members = h.cpg.membership(&g)?;
        // SAFETY: non-NULL, readable and writable (caller contract).
        let count = unsafe { &mut *member_list_entries };
        let n = if *count > 0 {
            members.len().min(*count as usize)
        } else {
            members.len()
        };
        for (i, m) in members[..n].iter().enumerate() {
            // SAFETY: i < n, within the caller's array (contract above).
            unsafe { member_list.add(i).write(m.into()) };
        }
        *count = n as c_int;
        Ok(())
    })
}

/// # Safety
/// `local_nodeid` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_local_get(handle: cpg_handle_t, local_nodeid: *mut c_uint) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(local_nodeid) }?;
        let id = CPG.get(handle)?.cpg.local_get()?;
        out.write(id);
        Ok(())
    })
}

/// `CPG_FLOW_CONTROL_ENABLED` while the server asks senders to back off
/// (the C library always reports DISABLED).
///
/// # Safety
/// `flow_control_enabled` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_flow_control_state_get(
    handle: cpg_handle_t,
    flow_control_enabled: *mut c_uint,
) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(flow_control_enabled) }?;
        let h = CPG.get(handle)?;
        out.write(h.cpg.flow_control_enabled() as c_uint);
        Ok(())
    })
}

/// Starts an iteration over groups and members.
///
/// # Safety
/// `group` is NULL or readable; `cpg_iteration_handle` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_iteration_initialize(
    handle: cpg_handle_t,
    iteration_type: c_uint,
    group: *const cpg_name,
    cpg_iteration_handle: *mut cpg_iteration_handle_t,
) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let g = unsafe { group.as_ref() }.map(|g| g.to_group()).transpose()?;
        // SAFETY: caller contract above.
        let out = unsafe { out_param(cpg_iteration_handle) }?;
        const ONE_GROUP: c_uint = 2;
        if (iteration_type == ONE_GROUP) != g.is_some() || !(1..=3).contains(&iteration_type) {
            return Err(CsError::InvalidParam);
        }
        let conn = CPG.get(handle)?;
        let token = conn.cpg.iteration_initialize(iteration_type, g.as_ref())?;
        out.write(ITERATIONS.insert(Arc::new(Iteration {
            owner: handle,
            conn,
            token,
        })));
        Ok(())
    })
}

/// # Safety
/// `description` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_iteration_next(
    handle: cpg_iteration_handle_t,
    description: *mut cpg_iteration_description_t,
) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(description) }?;
        let it = ITERATIONS.get(handle)?;
        if it.conn.cpg.is_finalized() {
            return Err(CsError::BadHandle);
        }
        let (group, nodeid, pid) = it.conn.cpg.iteration_next(it.token)?;
        out.write(cpg_iteration_description_t {
            group: cpg_name::from_group(&group),
            nodeid,
            pid,
        });
        Ok(())
    })
}

/// # Safety
/// No pointer arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_iteration_finalize(handle: cpg_iteration_handle_t) -> cs_error_t {
    door(|| {
        let it = ITERATIONS.get(handle)?;
        if it.conn.cpg.is_finalized() {
            return Err(CsError::BadHandle);
        }
        let result = it.conn.cpg.iteration_finalize(it.token);
        if !matches!(result, Err(CsError::Library)) {
            let _ = ITERATIONS.remove(handle);
        }
        result
    })
}

/// Allocates a buffer whose contents `cpg_zcb_mcast_joined` sends
/// without copying.
///
/// # Safety
/// `buffer` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_zcb_alloc(handle: cpg_handle_t, size: usize, buffer: *mut *mut c_void) -> cs_error_t {
    door(|| {
        // SAFETY: caller contract above.
        let out = unsafe { out_param(buffer) }?;
        let addr = CPG.get(handle)?.cpg.zcb_alloc(size)?;
        out.write(addr as *mut c_void);
        Ok(())
    })
}

/// Frees a buffer from `cpg_zcb_alloc` on the same handle; anything else
/// gives `CS_ERR_INVALID_PARAM` (the C library would crash).
///
/// # Safety
/// `buffer` is only compared, never dereferenced, unless it is one of ours.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_zcb_free(handle: cpg_handle_t, buffer: *mut c_void) -> cs_error_t {
    door(|| CPG.get(handle)?.cpg.zcb_free(buffer as usize))
}

/// Multicasts `msg_len` bytes of a buffer from `cpg_zcb_alloc`.
///
/// # Safety
/// `msg` is only compared, never dereferenced, unless it is one of ours.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cpg_zcb_mcast_joined(
    handle: cpg_handle_t,
    guarantee: c_uint,
    msg: *mut c_void,
    msg_len: usize,
) -> cs_error_t {
    door(|| CPG.get(handle)?.cpg.zcb_mcast(guarantee, msg as usize, msg_len))
}

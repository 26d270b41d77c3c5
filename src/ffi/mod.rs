//! The C boundary: every exported function, the C types they take, and
//! the helpers that turn raw pointers into checked Rust values. Nothing
//! below this module sees a raw pointer.

#![allow(non_camel_case_types)]

pub mod common;
pub mod cpg;
pub mod evs;
pub mod types;

use std::panic::{catch_unwind, AssertUnwindSafe};

use std::sync::Arc;

use crate::cpg::Step;
use crate::error::{CsError, CS_OK};

/// `cs_error_t` as C sees it.
pub type cs_error_t = libc::c_int;

/// Runs an export's body: `Ok` becomes `CS_OK`, an error its code, and a
/// panic `CS_ERR_LIBRARY` (it never unwinds into C). Thread cancellation
/// is deferred while the body runs (see `cpg_dispatch` for the one place
/// where a blocked call may be cancelled).
pub(crate) fn door(body: impl FnOnce() -> Result<(), CsError>) -> cs_error_t {
    let _deferred = crate::ipc::sys::CancelGuard::new();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CS_OK,
        Ok(Err(e)) => e.code(),
        Err(_) => CsError::Library.code(),
    }
}

/// A mutable out-parameter, or `InvalidParam` for NULL.
///
/// # Safety
/// `p` is NULL or valid for writing one `T` for the duration of the call.
pub(crate) unsafe fn out_param<'a, T>(p: *mut T) -> Result<&'a mut std::mem::MaybeUninit<T>, CsError> {
    // SAFETY: the caller guarantees validity when non-NULL; MaybeUninit
    // makes no claim about the current contents.
    unsafe { p.cast::<std::mem::MaybeUninit<T>>().as_mut() }.ok_or(CsError::InvalidParam)
}

/// A shared in-parameter, or `InvalidParam` for NULL.
///
/// # Safety
/// `p` is NULL or valid for reading one `T` for the duration of the call.
pub(crate) unsafe fn in_ref<'a, T>(p: *const T) -> Result<&'a T, CsError> {
    // SAFETY: the caller guarantees validity when non-NULL.
    unsafe { p.as_ref() }.ok_or(CsError::InvalidParam)
}

/// A byte slice from C; NULL is fine when `len == 0`.
///
/// # Safety
/// When `len > 0`, `p` is NULL or valid for reading `len` bytes.
pub(crate) unsafe fn in_slice<'a>(p: *const u8, len: usize) -> Result<&'a [u8], CsError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() || len > isize::MAX as usize {
        return Err(CsError::InvalidParam);
    }
    // SAFETY: non-NULL and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The buffers of a C iovec array; NULL is fine when `n == 0`, and a
/// buffer may be NULL when its length is 0. More than `max` entries, or a
/// NULL where memory is needed, gives `InvalidParam`.
///
/// # Safety
/// `iovec` is NULL or points to `n` iovecs whose buffers are readable for
/// their lengths, for the lifetime `'a`.
pub(crate) unsafe fn iovec_parts<'a>(
    iovec: *const libc::iovec,
    n: usize,
    max: usize,
) -> Result<Vec<&'a [u8]>, CsError> {
    if n > max || (n > 0 && iovec.is_null()) {
        return Err(CsError::InvalidParam);
    }
    let iovs: &[libc::iovec] = if n == 0 {
        &[]
    } else {
        // SAFETY: non-NULL, and the caller guarantees `n` iovecs.
        unsafe { std::slice::from_raw_parts(iovec, n) }
    };
    let mut parts: Vec<&[u8]> = Vec::with_capacity(n);
    for v in iovs {
        // SAFETY: the caller guarantees each iovec's buffer.
        parts.push(unsafe { in_slice(v.iov_base as *const u8, v.iov_len) }?);
    }
    Ok(parts)
}

/// The body of `cpg_dispatch` and `evs_dispatch`: each dispatch step runs
/// inside the door; the waits between steps run outside it, so that a
/// thread blocked there can be cancelled (glibc's forced unwind must pass
/// through our frames, not be caught as a panic). `open` finds the handle
/// once; `step` dispatches what is pending and says whether to wait.
pub(crate) fn dispatch_outside_door<H>(
    open: impl Fn() -> Result<Arc<H>, CsError>,
    mut step: impl FnMut(&Arc<H>) -> Result<Step, CsError>,
    wait: impl Fn(&H) -> Result<(), CsError>,
) -> cs_error_t {
    let mut conn: Option<Arc<H>> = None;
    loop {
        let mut next = Step::Done;
        let code = door(|| {
            let h = match &conn {
                Some(h) => h.clone(),
                None => conn.insert(open()?).clone(),
            };
            next = step(&h)?;
            Ok(())
        });
        match (next, &conn) {
            (Step::Sleep, Some(h)) if code == CS_OK => {
                if let Err(e) = wait(h) {
                    return e.code();
                }
            }
            _ => return code,
        }
    }
}

//! The three exports of libcorosync_common.so.4, which libcpg programs may
//! call through `corotypes.h`.

use std::ffi::{c_char, c_int, CStr};

use super::cs_error_t;
use crate::error::{self, CsError, CS_OK};

fn static_cstr(s: &'static str) -> *const c_char {
    // Every text is a literal below; keep a NUL-terminated copy per text.
    macro_rules! table {
        ($($t:literal),* $(,)?) => {
            match s { $($t => concat!($t, "\0"),)* _ => "unknown error\0" }
        };
    }
    let t: &'static str = table!(
        "success",
        "unknown error",
        "CS_ERR_LIBRARY",
        "CS_ERR_VERSION",
        "CS_ERR_INIT",
        "CS_ERR_TIMEOUT",
        "CS_ERR_TRY_AGAIN",
        "CS_ERR_INVALID_PARAM",
        "CS_ERR_NO_MEMORY",
        "CS_ERR_BAD_HANDLE",
        "CS_ERR_BUSY",
        "CS_ERR_ACCESS",
        "CS_ERR_NOT_EXIST",
        "CS_ERR_NAME_TOO_LONG",
        "CS_ERR_EXIST",
        "CS_ERR_NO_SPACE",
        "CS_ERR_INTERRUPT",
        "CS_ERR_NAME_NOT_FOUND",
        "CS_ERR_NO_RESOURCES",
        "CS_ERR_NOT_SUPPORTED",
        "CS_ERR_BAD_OPERATION",
        "CS_ERR_FAILED_OPERATION",
        "CS_ERR_MESSAGE_ERROR",
        "CS_ERR_QUEUE_FULL",
        "CS_ERR_QUEUE_NOT_AVAILABLE",
        "CS_ERR_BAD_FLAGS",
        "CS_ERR_TOO_BIG",
        "CS_ERR_NO_SECTIONS",
        "CS_ERR_CONTEXT_NOT_FOUND",
        "CS_ERR_TOO_MANY_GROUPS",
        "CS_ERR_SECURITY",
    );
    debug_assert!(CStr::from_bytes_with_nul(t.as_bytes()).is_ok());
    t.as_ptr().cast()
}

/// The name of a `cs_error_t` ("success" for `CS_OK`).
#[unsafe(no_mangle)]
pub extern "C" fn cs_strerror(err: cs_error_t) -> *const c_char {
    static_cstr(error::strerror(err))
}

/// Maps a libqb result (negative errno) to a `cs_error_t`.
#[unsafe(no_mangle)]
pub extern "C" fn qb_to_cs_error(result: c_int) -> cs_error_t {
    match CsError::from_neg_errno(result) {
        Ok(()) => CS_OK,
        Err(e) => e.code(),
    }
}

/// Maps a handle-database result to a `cs_error_t`.
#[unsafe(no_mangle)]
pub extern "C" fn hdb_error_to_cs(res: c_int) -> cs_error_t {
    match CsError::from_hdb_result(res) {
        Ok(()) => CS_OK,
        Err(e) => e.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_texts_are_c_strings() {
        for code in -5..110 {
            // SAFETY: cs_strerror returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(cs_strerror(code)) }.to_str().unwrap();
            assert_eq!(s, error::strerror(code));
        }
        assert_eq!(qb_to_cs_error(-libc::EAGAIN), 6);
        assert_eq!(qb_to_cs_error(5), 1);
        assert_eq!(hdb_error_to_cs(-libc::EMFILE), 18);
    }
}

//! `cs_error_t` and the mapping from OS / transport errors onto it.
//!
//! The numbers are corosync's (`corotypes.h`); `CS_OK` is 1 and is not a
//! variant: it is what `Ok(())` becomes at the boundary.
#![forbid(unsafe_code)]

use std::io;

/// Every failure code of `cs_error_t`, with its number written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(i32)]
pub enum CsError {
    #[error("internal library error")]
    Library = 2,
    #[error("version mismatch")]
    Version = 3,
    #[error("not initialised")]
    Init = 4,
    #[error("timed out")]
    Timeout = 5,
    #[error("try again")]
    TryAgain = 6,
    #[error("invalid parameter")]
    InvalidParam = 7,
    #[error("out of memory")]
    NoMemory = 8,
    #[error("bad handle")]
    BadHandle = 9,
    #[error("busy")]
    Busy = 10,
    #[error("access denied")]
    Access = 11,
    #[error("does not exist")]
    NotExist = 12,
    #[error("name too long")]
    NameTooLong = 13,
    #[error("already exists")]
    Exist = 14,
    #[error("no space")]
    NoSpace = 15,
    #[error("interrupted")]
    Interrupt = 16,
    #[error("name not found")]
    NameNotFound = 17,
    #[error("no resources")]
    NoResources = 18,
    #[error("not supported")]
    NotSupported = 19,
    #[error("bad operation")]
    BadOperation = 20,
    #[error("failed operation")]
    FailedOperation = 21,
    #[error("message error")]
    MessageError = 22,
    #[error("queue full")]
    QueueFull = 23,
    #[error("queue not available")]
    QueueNotAvailable = 24,
    #[error("bad flags")]
    BadFlags = 25,
    #[error("too big")]
    TooBig = 26,
    #[error("no sections")]
    NoSections = 27,
    #[error("context not found")]
    ContextNotFound = 28,
    #[error("too many groups")]
    TooManyGroups = 30,
    #[error("security")]
    Security = 100,
}

/// `CS_OK` as a raw number.
pub const CS_OK: i32 = 1;

impl CsError {
    /// Every variant, in numeric order.
    pub const ALL: [CsError; 29] = [
        CsError::Library,
        CsError::Version,
        CsError::Init,
        CsError::Timeout,
        CsError::TryAgain,
        CsError::InvalidParam,
        CsError::NoMemory,
        CsError::BadHandle,
        CsError::Busy,
        CsError::Access,
        CsError::NotExist,
        CsError::NameTooLong,
        CsError::Exist,
        CsError::NoSpace,
        CsError::Interrupt,
        CsError::NameNotFound,
        CsError::NoResources,
        CsError::NotSupported,
        CsError::BadOperation,
        CsError::FailedOperation,
        CsError::MessageError,
        CsError::QueueFull,
        CsError::QueueNotAvailable,
        CsError::BadFlags,
        CsError::TooBig,
        CsError::NoSections,
        CsError::ContextNotFound,
        CsError::TooManyGroups,
        CsError::Security,
    ];

    /// The raw `cs_error_t` number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The variant for a raw number; `None` for `CS_OK` and unknown values.
    pub fn from_code(code: i32) -> Option<CsError> {
        CsError::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// The C enumerator's own name, as `cs_strerror` prints it.
    pub fn name(self) -> &'static str {
        match self {
            CsError::Library => "CS_ERR_LIBRARY",
            CsError::Version => "CS_ERR_VERSION",
            CsError::Init => "CS_ERR_INIT",
            CsError::Timeout => "CS_ERR_TIMEOUT",
            CsError::TryAgain => "CS_ERR_TRY_AGAIN",
            CsError::InvalidParam => "CS_ERR_INVALID_PARAM",
            CsError::NoMemory => "CS_ERR_NO_MEMORY",
            CsError::BadHandle => "CS_ERR_BAD_HANDLE",
            CsError::Busy => "CS_ERR_BUSY",
            CsError::Access => "CS_ERR_ACCESS",
            CsError::NotExist => "CS_ERR_NOT_EXIST",
            CsError::NameTooLong => "CS_ERR_NAME_TOO_LONG",
            CsError::Exist => "CS_ERR_EXIST",
            CsError::NoSpace => "CS_ERR_NO_SPACE",
            CsError::Interrupt => "CS_ERR_INTERRUPT",
            CsError::NameNotFound => "CS_ERR_NAME_NOT_FOUND",
            CsError::NoResources => "CS_ERR_NO_RESOURCES",
            CsError::NotSupported => "CS_ERR_NOT_SUPPORTED",
            CsError::BadOperation => "CS_ERR_BAD_OPERATION",
            CsError::FailedOperation => "CS_ERR_FAILED_OPERATION",
            CsError::MessageError => "CS_ERR_MESSAGE_ERROR",
            CsError::QueueFull => "CS_ERR_QUEUE_FULL",
            CsError::QueueNotAvailable => "CS_ERR_QUEUE_NOT_AVAILABLE",
            CsError::BadFlags => "CS_ERR_BAD_FLAGS",
            CsError::TooBig => "CS_ERR_TOO_BIG",
            CsError::NoSections => "CS_ERR_NO_SECTIONS",
            CsError::ContextNotFound => "CS_ERR_CONTEXT_NOT_FOUND",
            CsError::TooManyGroups => "CS_ERR_TOO_MANY_GROUPS",
            CsError::Security => "CS_ERR_SECURITY",
        }
    }

    /// A `cs_error_t` carried in a wire frame: `CS_OK` becomes `Ok(())`,
    /// a known code its variant, anything else (garbage) `Library`.
    pub fn check(code: i32) -> Result<(), CsError> {
        if code == CS_OK {
            Ok(())
        } else {
            Err(CsError::from_code(code).unwrap_or(CsError::Library))
        }
    }

    /// corosync's `qb_to_cs_error` for a negative errno (or a non-negative
    /// success value).
    pub fn from_neg_errno(result: i32) -> Result<(), CsError> {
        if result >= 0 {
            return Ok(());
        }
        Err(Self::from_errno(result.saturating_neg()))
    }

    /// The row of the errno table for a positive errno value.
    pub fn from_errno(errno: i32) -> CsError {
        match errno {
            libc::EBADF => CsError::BadHandle,
            libc::ENOMEM => CsError::NoMemory,
            libc::ENOMSG | libc::ENOBUFS | libc::ETIMEDOUT | libc::EAGAIN => CsError::TryAgain,
            libc::EBADE => CsError::FailedOperation,
            libc::ETIME => CsError::Timeout,
            libc::EINVAL => CsError::InvalidParam,
            libc::EBUSY => CsError::Busy,
            libc::EACCES => CsError::Access,
            libc::EOVERFLOW => CsError::NameTooLong,
            libc::EEXIST => CsError::Exist,
            libc::ENOSPC => CsError::NoSpace,
            libc::EINTR => CsError::Interrupt,
            libc::ENOENT | libc::ENODEV => CsError::NotExist,
            libc::ENOSYS | libc::EOPNOTSUPP => CsError::NotSupported,
            libc::EBADMSG => CsError::MessageError,
            libc::EMSGSIZE | libc::E2BIG => CsError::TooBig,
            _ => CsError::Library,
        }
    }

    /// corosync's `hdb_error_to_cs`.
    pub fn from_hdb_result(result: i32) -> Result<(), CsError> {
        match result {
            0 => Ok(()),
            r if r == -libc::EBADF => Err(CsError::BadHandle),
            r if r == -libc::ENOMEM => Err(CsError::NoMemory),
            r if r == -libc::EMFILE => Err(CsError::NoResources),
            r if r == -libc::EACCES => Err(CsError::Access),
            _ => Err(CsError::Library),
        }
    }
}

impl From<io::Error> for CsError {
    fn from(err: io::Error) -> CsError {
        match err.raw_os_error() {
            Some(errno) => CsError::from_errno(errno),
            None => match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => CsError::TryAgain,
                io::ErrorKind::OutOfMemory => CsError::NoMemory,
                io::ErrorKind::InvalidInput => CsError::InvalidParam,
                _ => CsError::Library,
            },
        }
    }
}

/// `cs_strerror` text for any raw value.
pub fn strerror(code: i32) -> &'static str {
    if code == CS_OK {
        return "success";
    }
    match CsError::from_code(code) {
        Some(e) => e.name(),
        None => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table_rows() {
        let rows = [
            (libc::EBADF, CsError::BadHandle),
            (libc::ENOMEM, CsError::NoMemory),
            (libc::ENOMSG, CsError::TryAgain),
            (libc::ENOBUFS, CsError::TryAgain),
            (libc::ETIMEDOUT, CsError::TryAgain),
            (libc::EAGAIN, CsError::TryAgain),
            (libc::EBADE, CsError::FailedOperation),
            (libc::ETIME, CsError::Timeout),
            (libc::EINVAL, CsError::InvalidParam),
            (libc::EBUSY, CsError::Busy),
            (libc::EACCES, CsError::Access),
            (libc::EOVERFLOW, CsError::NameTooLong),
            (libc::EEXIST, CsError::Exist),
            (libc::ENOSPC, CsError::NoSpace),
            (libc::EINTR, CsError::Interrupt),
            (libc::ENOENT, CsError::NotExist),
            (libc::ENODEV, CsError::NotExist),
            (libc::ENOSYS, CsError::NotSupported),
            (libc::EOPNOTSUPP, CsError::NotSupported),
            (libc::EBADMSG, CsError::MessageError),
            (libc::EMSGSIZE, CsError::TooBig),
            (libc::E2BIG, CsError::TooBig),
            (libc::ENOTCONN, CsError::Library),
            (libc::ECONNREFUSED, CsError::Library),
            (libc::EPIPE, CsError::Library),
            (libc::EMFILE, CsError::Library),
        ];
        for (errno, want) in rows {
            assert_eq!(CsError::from_errno(errno), want, "errno {errno}");
            assert_eq!(CsError::from_neg_errno(-errno), Err(want));
            assert_eq!(CsError::from(io::Error::from_raw_os_error(errno)), want);
        }
        assert_eq!(CsError::from_neg_errno(0), Ok(()));
        assert_eq!(CsError::from_neg_errno(17), Ok(()));
        assert_eq!(CsError::from_neg_errno(i32::MIN), Err(CsError::Library));
    }

    #[test]
    fn hdb_table() {
        assert_eq!(CsError::from_hdb_result(0), Ok(()));
        assert_eq!(CsError::from_hdb_result(-libc::EBADF), Err(CsError::BadHandle));
        assert_eq!(CsError::from_hdb_result(-libc::ENOMEM), Err(CsError::NoMemory));
        assert_eq!(CsError::from_hdb_result(-libc::EMFILE), Err(CsError::NoResources));
        assert_eq!(CsError::from_hdb_result(-libc::EACCES), Err(CsError::Access));
        assert_eq!(CsError::from_hdb_result(5), Err(CsError::Library));
        assert_eq!(CsError::from_hdb_result(-libc::EINVAL), Err(CsError::Library));
    }

    #[test]
    fn names_and_codes() {
        assert_eq!(strerror(1), "success");
        assert_eq!(strerror(6), "CS_ERR_TRY_AGAIN");
        assert_eq!(strerror(30), "CS_ERR_TOO_MANY_GROUPS");
        assert_eq!(strerror(100), "CS_ERR_SECURITY");
        for bad in [0, 29, 31, 99, 101, -1, i32::MAX] {
            assert_eq!(strerror(bad), "unknown error");
        }
        for e in CsError::ALL {
            assert_eq!(CsError::from_code(e.code()), Some(e));
            assert_eq!(CsError::check(e.code()), Err(e));
        }
        assert_eq!(CsError::check(1), Ok(()));
        assert_eq!(CsError::check(0), Err(CsError::Library));
    }
}

//! Thin wrappers over the OS calls the transport needs.
//!
//! Every `unsafe` block that talks to the kernel lives here; callers get
//! `io::Result` and owned descriptors. Nothing in this file knows libqb.

use std::ffi::CString;
use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// `-1 → io::Error` for calls returning `c_int`.
fn cerr(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `-1 → io::Error` for calls returning `ssize_t`.
fn cerr_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Retries a call while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Length of `sockaddr_un` (family + 108 bytes of path).
pub const SOCKADDR_UN_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;

/// An abstract unix address: NUL, the name, zero padding to the full 108
/// bytes; used with the full length, as libqb does.
pub fn abstract_addr(name: &[u8]) -> io::Result<libc::sockaddr_un> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    Ok(addr)
}

/// A new unix socket of `kind` (`SOCK_STREAM` / `SOCK_DGRAM`), close-on-exec.
pub fn unix_socket(kind: libc::c_int, nonblocking: bool) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor we own.
    let fd = cerr(unsafe { libc::socket(libc::AF_UNIX, kind | flags, 0) })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn connect(fd: &OwnedFd, addr: &libc::sockaddr_un) -> io::Result<()> {
    retry(|| {
        // SAFETY: `addr` points to a whole sockaddr_un and the length says so.
        cerr(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (addr as *const libc::sockaddr_un).cast(),
                SOCKADDR_UN_LEN,
            )
        })
    })
    .map(drop)
}

pub fn bind(fd: &OwnedFd, addr: &libc::sockaddr_un) -> io::Result<()> {
    // SAFETY: `addr` points to a whole sockaddr_un and the length says so.
    cerr(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const libc::sockaddr_un).cast(),
            SOCKADDR_UN_LEN,
        )
    })
    .map(drop)
}

pub fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    cerr(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// Accepts one connection, non-blocking and close-on-exec.
pub fn accept(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let new = retry(|| {
        // SAFETY: NULL address arguments are allowed by accept4.
        cerr(unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                ptr::null_mut(),
                ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        })
    })?;
    // SAFETY: accept4 returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the option value is a c_int and the length matches.
    cerr(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: value/len describe a c_int-sized buffer.
    cerr(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) })?;
    Ok(value)
}

pub fn set_passcred(fd: &OwnedFd, on: bool) -> io::Result<()> {
    setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PASSCRED, on as i32)
}

/// Raises `SO_SNDBUF` and `SO_RCVBUF` to `size` when they are smaller.
pub fn grow_buffers(fd: &OwnedFd, size: usize) -> io::Result<()> {
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        if getsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, opt)? <= size {
            setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, opt, size)?;
        }
    }
    Ok(())
}

/// Peer credentials of a connected unix socket (`SO_PEERCRED`).
pub fn peer_cred(fd: &OwnedFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len describe a ucred-sized buffer.
    cerr(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(cred)
}

pub fn set_nonblocking(fd: &OwnedFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// `send` with `MSG_NOSIGNAL` (never SIGPIPE) plus `flags`.
pub fn send(fd: RawFd, buf: &[u8], flags: i32) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for reads of its length.
        cerr_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags | libc::MSG_NOSIGNAL) })
    })
}

/// One `sendmsg` of the gathered slices (one datagram on a DGRAM socket).
pub fn sendv(fd: RawFd, bufs: &[IoSlice<'_>], flags: i32) -> io::Result<usize> {
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // IoSlice is ABI-compatible with struct iovec (documented by std).
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len();
    retry(|| {
        // SAFETY: msg points at `bufs`, which outlives the call.
        cerr_size(unsafe { libc::sendmsg(fd, &msg, flags | libc::MSG_NOSIGNAL) })
    })
}

pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for writes of its length.
        cerr_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
    })
}

/// `recvmsg` into `buf`, returning the byte count and the
/// `SCM_CREDENTIALS` of the sender if the kernel attached them.
pub fn recv_with_cred(fd: RawFd, buf: &mut [u8], flags: i32) -> io::Result<(usize, Option<libc::ucred>)> {
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    let n = retry(|| {
        // SAFETY: msg describes `buf` and `control`, both live for the call.
        cerr_size(unsafe { libc::recvmsg(fd, &mut msg, flags | libc::MSG_CMSG_CLOEXEC) })
    })?;
    let mut cred = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen; the data is copied out unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_CREDENTIALS {
                cred = Some(ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::ucred>()));
            } else if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_RIGHTS {
                // Nobody in this protocol passes descriptors: close any we got.
                let count = (c.cmsg_len as usize - libc::CMSG_LEN(0) as usize) / mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    libc::close(ptr::read_unaligned(data.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, cred))
}

/// `poll(2)` on a set of descriptors; `None` waits forever.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        Some(d) => i32::try_from(d.as_millis()).unwrap_or(i32::MAX),
    };
    // SAFETY: `fds` is a valid array of pollfd of the given length.
    let n = cerr(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) });
    match n {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        other => other.map(|n| n as usize),
    }
}

/// `revents` of one descriptor polled with a zero timeout.
pub fn poll_now(fd: RawFd, events: i16) -> io::Result<i16> {
    let mut p = [libc::pollfd { fd, events, revents: 0 }];
    poll(&mut p, Some(Duration::ZERO))?;
    Ok(p[0].revents)
}

pub fn open_rw(path: &str) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path.
    let fd = retry(|| cerr(unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) }))?;
    // SAFETY: open returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates a new file exclusively with `mode` (umask applies as usual,
/// then the mode is forced with fchmod).
pub fn create_excl(path: &str, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fd = retry(|| {
        // SAFETY: `c` is a NUL-terminated path.
        cerr(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })
    })?;
    // SAFETY: open returned a fresh descriptor that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall on a descriptor we own.
    cerr(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })?;
    Ok(fd)
}

pub fn file_size(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: stat is plain data; fstat fills it.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    cerr(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st.st_size as u64)
}

pub fn set_len(fd: &OwnedFd, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    cerr(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }).map(drop)
}

pub fn fchown(fd: &OwnedFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    cerr(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

pub fn unlink(path: &str) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path.
    cerr(unsafe { libc::unlink(c.as_ptr()) }).map(drop)
}

pub fn rmdir(path: &str) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path.
    cerr(unsafe { libc::rmdir(c.as_ptr()) }).map(drop)
}

/// `mkdtemp` on a template ending in `XXXXXX`; returns the created path.
pub fn mkdtemp(template: &str) -> io::Result<String> {
    let mut bytes = CString::new(template)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
        .into_bytes_with_nul();
    // SAFETY: `bytes` is a writable NUL-terminated buffer, as mkdtemp needs.
    let ret = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if ret.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    String::from_utf8(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub fn chmod_chown(path: &str, mode: libc::mode_t, owner: Option<(u32, u32)>) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path.
    cerr(unsafe { libc::chmod(c.as_ptr(), mode) })?;
    if let Some((uid, gid)) = owner {
        // SAFETY: as above. Failure (not privileged) is ignored, as libqb does.
        let _ = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    }
    Ok(())
}

/// A shared read/write mapping of a whole file, unmapped on drop.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// Registration with the SIGBUS guard (see `fault`), when installed.
    guard: super::fault::Guard,
}

// SAFETY: the mapping is plain shared memory; all access goes through raw
// pointers whose synchronisation the users (the ring code) establish.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared, read/write.
    pub fn map_shared(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping chosen by the kernel; nothing else is
        // at that address.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let guard = super::fault::Guard::register(ptr.as_ptr(), len);
        Ok(Mapping { ptr, len, guard })
    }

    /// Whether the peer shrank the file under this mapping and the SIGBUS
    /// guard replaced it with private zeros (never, when not installed).
    pub fn faulted(&self) -> bool {
        self.guard.faulted()
    }

    /// Whether the SIGBUS guard watches this mapping.
    pub fn guarded(&self) -> bool {
        self.guard.registered()
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Unregistered first: the range may be reused by the next mmap.
        self.guard.release();
        // SAFETY: ptr/len are exactly what mmap returned; no references into
        // the mapping outlive the Mapping (users borrow from it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Shared (not process-private) futex wait on `word` while it equals
/// `expected`, with an absolute `CLOCK_REALTIME` deadline as glibc's
/// semaphores use. Returns `Ok(false)` on timeout.
pub fn futex_wait_abs(word: &AtomicU32, expected: u32, deadline: Option<libc::timespec>) -> io::Result<bool> {
    let ts_ptr = match &deadline {
        Some(ts) => ts as *const libc::timespec,
        None => ptr::null(),
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
    // the timespec (if any) lives on our stack.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_CLOCK_REALTIME,
            expected,
            ts_ptr,
            ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if ret == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ETIMEDOUT) => Ok(false),
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(true),
            _ => Err(err),
        };
    }
    Ok(true)
}

/// Shared futex wake of one waiter on `word`.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: `word` is a valid, aligned u32; waking never touches memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
    }
}

/// `CLOCK_REALTIME` now + `after`.
pub fn realtime_deadline(after: Duration) -> libc::timespec {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let mut sec = now.tv_sec.saturating_add(after.as_secs() as libc::time_t);
    let mut nsec = now.tv_nsec + after.subsec_nanos() as libc::c_long;
    if nsec >= 1_000_000_000 {
        sec += 1;
        nsec -= 1_000_000_000;
    }
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// A non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor.
    let fd = cerr(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: eventfd returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd counter (it then stays readable).
pub fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Whether process `pid` still exists (a zombie counts as existing).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

pub fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

pub fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// The next positive value of the C library's `random()` stream, which is
/// where corosync's handle database draws its check values from.
pub fn random_positive() -> u32 {
    extern "C" {
        fn random() -> libc::c_long;
    }
    loop {
        // SAFETY: random() has no preconditions (not reentrant-safe in
        // theory; glibc locks internally).
        let r = unsafe { random() };
        if r > 0 {
            return r as u32;
        }
    }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// `shutdown(SHUT_RDWR)`, errors ignored.
pub fn shutdown(fd: &OwnedFd) {
    // SAFETY: plain syscall on a descriptor we own.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Whether process `pid` is alive: it exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    if !process_exists(pid) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        // Reaped between the two looks.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

/// `mkstemp` on a template ending in `XXXXXX` (mode 0600); returns the
/// descriptor and the created path.
pub fn mkstemp(template: &str) -> io::Result<(OwnedFd, String)> {
    let mut bytes = CString::new(template)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
        .into_bytes_with_nul();
    // SAFETY: `bytes` is a writable NUL-terminated buffer, as mkstemp needs.
    let fd = cerr(unsafe { libc::mkostemp(bytes.as_mut_ptr().cast(), libc::O_CLOEXEC) })?;
    // SAFETY: mkostemp returned a fresh descriptor that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    bytes.pop();
    let path = String::from_utf8(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok((fd, path))
}

// ----- server-side wrappers (cpgd) -----

/// Blocks `signals` for the calling thread (and the threads it starts
/// later) and returns a non-blocking signalfd that reports them.
pub fn signalfd_for(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for all three calls.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    // SAFETY: `set` is initialised; the old mask is not wanted (NULL).
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    // SAFETY: -1 asks for a new descriptor; `set` is initialised.
    let fd = cerr(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: signalfd returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal number from a signalfd; `None` when empty.
pub fn read_signal(fd: &OwnedFd) -> io::Result<Option<i32>> {
    // SAFETY: signalfd_siginfo is plain data; all-zero is valid.
    let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
    let size = mem::size_of::<libc::signalfd_siginfo>();
    let n = retry(|| {
        // SAFETY: reads at most `size` bytes into `info`.
        cerr_size(unsafe { libc::read(fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) })
    });
    match n {
        Ok(n) if n == size => Ok(Some(info.ssi_signo as i32)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the server needs to know about a file a client names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub nlink: u64,
    pub size: u64,
    pub regular: bool,
}

fn file_info(st: &libc::stat) -> FileInfo {
    FileInfo {
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
        nlink: st.st_nlink,
        size: st.st_size.max(0) as u64,
        regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
    }
}

pub fn fstat_info(fd: &OwnedFd) -> io::Result<FileInfo> {
    // SAFETY: stat is plain data; fstat fills it.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    cerr(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(file_info(&st))
}

/// `lstat` (the last component is not followed).
pub fn lstat_info(path: &str) -> io::Result<FileInfo> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: stat is plain data; lstat fills it.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` a valid out-pointer.
    cerr(unsafe { libc::lstat(c.as_ptr(), &mut st) })?;
    Ok(file_info(&st))
}

/// Opens an existing file read/write without following a symlink in the
/// last component and without blocking (a FIFO cannot stall us).
pub fn open_rw_nofollow(path: &str) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    // SAFETY: `c` is a NUL-terminated path.
    let fd = retry(|| cerr(unsafe { libc::open(c.as_ptr(), flags) }))?;
    // SAFETY: open returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
/// Reading a file that another process shrank yields a short count,
/// never a fault (unlike a mapping).
pub fn pread_full(fd: &OwnedFd, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let rest = &mut buf[got..];
        let n = retry(|| {
            // SAFETY: `rest` is valid for writes of its length.
            cerr_size(unsafe {
                libc::pread(
                    fd.as_raw_fd(),
                    rest.as_mut_ptr().cast(),
                    rest.len(),
                    (offset + got as u64) as libc::off_t,
                )
            })
        })?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// `pwrite` of all of `data` at `offset`.
pub fn pwrite_all(fd: &OwnedFd, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        let n = retry(|| {
            // SAFETY: `rest` is valid for reads of its length.
            cerr_size(unsafe {
                libc::pwrite(
                    fd.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    (offset + done as u64) as libc::off_t,
                )
            })
        })?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        done += n;
    }
    Ok(())
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

pub fn getgid() -> u32 {
    // SAFETY: getgid has no preconditions.
    unsafe { libc::getgid() }
}

/// Like [`grow_buffers`], but when privileged also past `wmem_max` /
/// `rmem_max` (`SO_SNDBUFFORCE` / `SO_RCVBUFFORCE`); errors ignored.
pub fn force_buffers(fd: &OwnedFd, size: usize) {
    let _ = grow_buffers(fd, size);
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    for (get, force) in [
        (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE),
        (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE),
    ] {
        // The kernel reports twice the value that was set.
        if getsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, get).is_ok_and(|v| v / 2 < size) {
            let _ = setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, force, size);
        }
    }
}

impl Mapping {
    /// The i32 at `offset` as an atomic, if it lies inside the mapping and
    /// is 4-aligned.
    pub fn atomic_i32(&self, offset: usize) -> Option<&std::sync::atomic::AtomicI32> {
        if offset % 4 != 0 || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: checked above: aligned (the mapping is page-aligned) and
        // inside the mapping, which lives as long as the returned borrow.
        Some(unsafe { &*(self.as_ptr().add(offset) as *const std::sync::atomic::AtomicI32) })
    }
}

/// Adds a POSIX access ACL entry granting `uid` read/write (and search
/// on directories) to `path`, keeping the owner's bits; other users get
/// nothing. Used when an unprivileged server admits another uid, which
/// cannot be given the files with `chown`.
pub fn grant_user_acl(path: &str, uid: u32, dir: bool) -> io::Result<()> {
    const ACL_USER_OBJ: u16 = 0x01;
    const ACL_USER: u16 = 0x02;
    const ACL_GROUP_OBJ: u16 = 0x04;
    const ACL_MASK: u16 = 0x10;
    const ACL_OTHER: u16 = 0x20;
    const UNDEFINED_ID: u32 = u32::MAX;
    let rw: u16 = if dir { 7 } else { 6 };
    let mut blob = Vec::with_capacity(4 + 5 * 8);
    blob.extend_from_slice(&2u32.to_le_bytes());
    for (tag, perm, id) in [
        (ACL_USER_OBJ, rw, UNDEFINED_ID),
        (ACL_USER, rw, uid),
        (ACL_GROUP_OBJ, 0, UNDEFINED_ID),
        (ACL_MASK, rw, UNDEFINED_ID),
        (ACL_OTHER, 0, UNDEFINED_ID),
    ] {
        blob.extend_from_slice(&tag.to_le_bytes());
        blob.extend_from_slice(&perm.to_le_bytes());
        blob.extend_from_slice(&id.to_le_bytes());
    }
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` and the attribute name are NUL-terminated; `blob` is
    // valid for reads of its length.
    cerr(unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            blob.as_ptr().cast(),
            blob.len(),
            0,
        )
    })
    .map(drop)
}

/// Keeps large blocks on the heap and the heap from being trimmed after
/// every free: a server copying megabyte messages otherwise spends most
/// of its time faulting fresh pages in.
pub fn tune_malloc() {
    // SAFETY: mallopt only changes allocator parameters; called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Defers thread cancellation while alive: the library's calls run with
/// cancellation disabled, so a pending `pthread_cancel` never unwinds
/// through our panic-catching frames; the caller's state is restored on
/// drop (restoring is not itself a cancellation point).
pub struct CancelGuard {
    old: libc::c_int,
}

const PTHREAD_CANCEL_DISABLE: libc::c_int = 1;

extern "C" {
    fn pthread_setcancelstate(state: libc::c_int, oldstate: *mut libc::c_int) -> libc::c_int;
}

impl CancelGuard {
    pub fn new() -> CancelGuard {
        let mut old = 0;
        // SAFETY: `old` is a valid out-pointer; the call only flips a flag
        // of the calling thread.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        CancelGuard { old }
    }
}

impl Default for CancelGuard {
    fn default() -> Self {
        CancelGuard::new()
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let mut ignored = 0;
        // SAFETY: as above; restores the state saved by `new`.
        unsafe { pthread_setcancelstate(self.old, &mut ignored) };
    }
}

/// Reserves the file's blocks now (`posix_fallocate`), so a full
/// filesystem fails here rather than with SIGBUS on first write.
pub fn allocate(fd: &OwnedFd, len: u64) -> io::Result<()> {
    // SAFETY: plain call on a descriptor we own.
    let ret = unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len as libc::off_t) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Empties an eventfd counter (non-blocking; nothing to read is fine).
pub fn eventfd_drain(fd: &OwnedFd) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; the descriptor is
    // non-blocking, so an empty counter returns EAGAIN at once.
    unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
}

/// A close-on-exec epoll instance watching `fds` for input, level-
/// triggered: the instance itself is readable exactly while one of them
/// is (or has hung up), which is what a descriptor handed to an
/// application's own poll loop must promise.
pub fn epoll_level(fds: &[RawFd]) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor.
    let ep = cerr(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: epoll_create1 returned a fresh descriptor that we now own.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for &fd in fds {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a live epoll_event; the kernel copies it.
        cerr(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    }
    Ok(ep)
}

//! What differs between the platforms the engine builds for (Linux; macOS and the
//! BSDs): one place for each difference, so the rest is written once.
//!
//! Where a portable way costs Linux nothing, Linux uses it too, so that the path
//! macOS runs is the path Linux tests: the iovec limit is asked of `sysconf`, not
//! taken from a Linux header. What cannot be shared is a constant or one call here:
//! the clock's id, the flag or socket option that keeps `SIGPIPE` away, and the
//! BSD length byte of a socket address. (`sendfile` goes through Python's
//! `os.sendfile`, which already speaks both dialects; a child's exit without a
//! pidfd and `accept` without `accept4` are Python's paths too.)

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;

/// The clock of Python's `time.monotonic()`: `CLOCK_MONOTONIC` on Linux; on macOS
/// CPython reads `mach_absolute_time()`, which is `CLOCK_UPTIME_RAW` (macOS's
/// `CLOCK_MONOTONIC` also counts time asleep).
#[cfg(target_vendor = "apple")]
pub(crate) const MONOTONIC_CLOCK: libc::clockid_t = libc::CLOCK_UPTIME_RAW;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const MONOTONIC_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// Flags for `send`, `sendto` and `sendmsg` on a socket: no `SIGPIPE` for a peer
/// that is gone (`EPIPE` instead). macOS keeps it away per socket instead
/// ([`no_sigpipe`]); Python ignores `SIGPIPE` anyway unless a program restores it.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// Makes writes on the socket `fd` give `EPIPE` rather than raise `SIGPIPE`, where
/// that is a property of the socket (`SO_NOSIGPIPE`, macOS); elsewhere
/// `send` does it per call (`MSG_NOSIGNAL`) and this does nothing.
#[cfg(target_vendor = "apple")]
pub fn no_sigpipe(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes writes on the socket `fd` give `EPIPE` rather than raise `SIGPIPE`, where
/// that is a property of the socket (`SO_NOSIGPIPE`, macOS); elsewhere
/// `send` does it per call (`MSG_NOSIGNAL`) and this does nothing.
#[cfg(not(target_vendor = "apple"))]
pub fn no_sigpipe(_fd: RawFd) -> io::Result<()> {
    Ok(())
}

/// The most buffers one `writev` or `sendmsg` takes (`IOV_MAX`: 1024 on Linux and
/// macOS), asked of `sysconf` once; POSIX's floor of 16 if it does not say.
pub(crate) fn iov_max() -> usize {
    static IOV_MAX: OnceLock<usize> = OnceLock::new();
    *IOV_MAX.get_or_init(|| {
        // SAFETY: sysconf reads a system limit; it has no pointer arguments.
        let max = unsafe { libc::sysconf(libc::_SC_IOV_MAX) };
        usize::try_from(max).ok().filter(|&n| n > 0).unwrap_or(16)
    })
}

/// Sets the length byte BSD socket addresses start with (`sin_len`,
/// `sin6_len`); Linux's have none.
macro_rules! set_sockaddr_len {
    ($addr:expr, $field:ident) => {
        #[cfg(any(
            target_vendor = "apple",
            target_os = "freebsd",
            target_os = "openbsd",
            target_os = "netbsd",
            target_os = "dragonfly"
        ))]
        {
            $addr.$field = std::mem::size_of_val(&$addr) as u8;
        }
    };
}
pub(crate) use set_sockaddr_len;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iovec_limit_is_the_systems() {
        let max = iov_max();
        assert!(max >= 16, "{max}");
        assert_eq!(iov_max(), max);
        #[cfg(target_os = "linux")]
        assert_eq!(max, libc::UIO_MAXIOV as usize);
    }

    #[test]
    fn the_clock_is_pythons_monotonic_clock() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        assert_eq!(unsafe { libc::clock_gettime(MONOTONIC_CLOCK, &mut ts) }, 0);
        assert!(ts.tv_sec > 0 || ts.tv_nsec > 0);
    }
}

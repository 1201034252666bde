//! Non-blocking I/O on a raw socket fd: the few syscalls a transport makes.
//!
//! The fd belongs to the caller (a Python socket object keeps it open); these
//! functions only read and write it. `EINTR` is retried; `WouldBlock` is returned
//! as an error of that kind, as std does.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

/// Runs a libc call that returns -1 on error, retrying on `EINTR`.
macro_rules! syscall {
    ($call:expr) => {{
        loop {
            // SAFETY: each caller passes a pointer and length from a live Rust
            // slice (or none), valid for the duration of the call; the kernel
            // only reads or writes within them.
            let res = unsafe { $call };
            if res != -1 {
                break Ok(res);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                break Err(err);
            }
        }
    }};
}

/// Reads into `buf`; `Ok(0)` is end of stream.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    syscall!(libc::read(fd, buf.as_mut_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// Sends `buf` on a socket, without `SIGPIPE` for a peer that is gone (`EPIPE`).
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    syscall!(libc::send(
        fd,
        buf.as_ptr().cast(),
        buf.len(),
        libc::MSG_NOSIGNAL
    ))
    .map(|n| n as usize)
}

/// Sends several buffers on a socket in one call (`sendmsg`), without `SIGPIPE`.
pub fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    if let [one] = bufs {
        return send(fd, one);
    }
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec (std guarantees it on Unix).
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    syscall!(libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)).map(|n| n as usize)
}

/// Sends up to `count` bytes of the file `file_fd` from `offset` on the socket
/// `sock_fd`, in the kernel (`sendfile`); returns how many were sent (0: the file
/// ends at `offset`).
pub fn sendfile(sock_fd: RawFd, file_fd: RawFd, offset: u64, count: usize) -> io::Result<usize> {
    let mut offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    syscall!(libc::sendfile(sock_fd, file_fd, &mut offset, count)).map(|n| n as usize)
}

/// Ends the sending side of a socket (`shutdown(SHUT_WR)`).
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    syscall!(libc::shutdown(fd, libc::SHUT_WR)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn vectored_send_reaches_the_peer_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let sent =
            send_vectored(a.as_raw_fd(), &[IoSlice::new(b"ab"), IoSlice::new(b"cd")]).unwrap();
        assert_eq!(sent, 4);
        let mut buf = [0u8; 8];
        assert_eq!(read(b.as_raw_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
    }

    #[test]
    fn sendfile_sends_the_range_asked_for() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("mioloop-sendfile-{}", std::process::id()));
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(b"0123456789").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(sendfile(a.as_raw_fd(), file.as_raw_fd(), 2, 5).unwrap(), 5);
        assert_eq!(sendfile(a.as_raw_fd(), file.as_raw_fd(), 10, 5).unwrap(), 0);
        let mut buf = [0u8; 8];
        assert_eq!(read(b.as_raw_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"23456");
    }

    #[test]
    fn a_closed_peer_gives_epipe_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = send(a.as_raw_fd(), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_drained_socket_would_block_and_eof_reads_zero() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4];
        let err = read(a.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        shutdown_write(b.as_raw_fd()).unwrap();
        assert_eq!(read(a.as_raw_fd(), &mut buf).unwrap(), 0);
    }
}

//! Non-blocking I/O on a raw socket fd: the few syscalls a transport makes.
//!
//! The fd belongs to the caller (a Python socket object keeps it open); these
//! functions only read and write it. `EINTR` is retried; `WouldBlock` is returned
//! as an error of that kind, as std does.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

use crate::platform::{iov_max, SEND_FLAGS};
use crate::sock_addr::SockAddr;

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

/// Sends `buf` on a socket, without `SIGPIPE` for a peer that is gone (`EPIPE`):
/// `MSG_NOSIGNAL` per call on Linux, `SO_NOSIGPIPE` on the socket on macOS.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    send_with(fd, buf, SEND_FLAGS)
}

fn send_with(fd: RawFd, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    syscall!(libc::send(fd, buf.as_ptr().cast(), buf.len(), flags)).map(|n| n as usize)
}

/// Writes `buf` to a pipe or any other fd (`write`). A pipe whose reader is gone
/// gives `EPIPE` (Python ignores `SIGPIPE`).
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    syscall!(libc::write(fd, buf.as_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// Writes several buffers to a pipe or any other fd in one call (`writev`).
pub fn write_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    if let [one] = bufs {
        return write(fd, one);
    }
    // IoSlice is ABI-compatible with iovec (std guarantees it on Unix).
    let count = bufs.len().min(iov_max()) as libc::c_int;
    syscall!(libc::writev(fd, bufs.as_ptr().cast(), count)).map(|n| n as usize)
}

/// Receives one datagram into `buf` (`recvfrom`): its length (truncated to
/// `buf`'s) and the sender's address.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    let mut from = SockAddr::empty();
    let len = from.len_mut() as *mut libc::socklen_t;
    let n = syscall!(libc::recvfrom(
        fd,
        buf.as_mut_ptr().cast(),
        buf.len(),
        0,
        from.as_mut_ptr(),
        len
    ))?;
    Ok((n as usize, from))
}

/// Sends one datagram to `to`, or to the connected peer with `None`, without
/// `SIGPIPE`.
pub fn send_to(fd: RawFd, buf: &[u8], to: Option<&SockAddr>) -> io::Result<usize> {
    let Some(to) = to else {
        return send(fd, buf);
    };
    syscall!(libc::sendto(
        fd,
        buf.as_ptr().cast(),
        buf.len(),
        SEND_FLAGS,
        to.as_ptr(),
        to.len()
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
    msg.msg_iovlen = bufs.len().min(iov_max()) as _;
    syscall!(libc::sendmsg(fd, &msg, SEND_FLAGS)).map(|n| n as usize)
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
    fn datagrams_keep_their_sender_and_boundaries() {
        use crate::sock_addr::Address;
        use std::net::UdpSocket;
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = SockAddr::from_ip(b.local_addr().unwrap());
        assert_eq!(send_to(a.as_raw_fd(), b"one", Some(&to)).unwrap(), 3);
        assert_eq!(send_to(a.as_raw_fd(), b"", Some(&to)).unwrap(), 0);
        let mut buf = [0u8; 8];
        let (n, from) = recv_from(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        assert_eq!(
            from.address(),
            Address::V4(match a.local_addr().unwrap() {
                std::net::SocketAddr::V4(v4) => v4,
                std::net::SocketAddr::V6(_) => unreachable!(),
            })
        );
        assert_eq!(recv_from(b.as_raw_fd(), &mut buf).unwrap().0, 0);
    }

    #[test]
    fn a_unix_datagram_names_its_sender() {
        use crate::sock_addr::Address;
        use std::os::unix::net::UnixDatagram;
        let dir = std::env::temp_dir().join(format!("mioloop-dgram-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.sock");
        let _ = std::fs::remove_file(&path);
        let a = UnixDatagram::bind(&path).unwrap();
        let (b, c) = UnixDatagram::pair().unwrap();
        let unnamed = UnixDatagram::unbound().unwrap();
        unnamed.send_to(b"hi", &path).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = recv_from(a.as_raw_fd(), &mut buf).unwrap();
        // Linux gives no address at all for an unnamed sender (Python: None).
        assert_eq!((n, from.address()), (2, Address::Nothing));
        let named = UnixDatagram::bind(dir.join("b.sock")).unwrap();
        named.send_to(b"x", &path).unwrap();
        let (_, from) = recv_from(a.as_raw_fd(), &mut buf).unwrap();
        let expected = dir.join("b.sock");
        assert_eq!(
            from.address(),
            Address::Unix(expected.as_os_str().as_encoded_bytes())
        );
        b.send(b"x").unwrap();
        assert_eq!(recv_from(c.as_raw_fd(), &mut buf).unwrap().0, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_reach_a_pipe_and_epipe_once_its_reader_is_gone() {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints for pipe(2) to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, w) = (fds[0], fds[1]);
        assert_eq!(
            write_vectored(w, &[IoSlice::new(b"ab"), IoSlice::new(b"c")]).unwrap(),
            3
        );
        let mut buf = [0u8; 4];
        assert_eq!(read(r, &mut buf).unwrap(), 3);
        // SAFETY: r is ours to close, once.
        unsafe { libc::close(r) };
        // SAFETY: ignoring SIGPIPE for the process, as Python does.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        assert_eq!(
            write(w, b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        // SAFETY: w is ours to close, once.
        unsafe { libc::close(w) };
    }

    #[test]
    fn a_closed_peer_gives_epipe_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = send(a.as_raw_fd(), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn without_msg_nosignal_a_closed_peer_gives_epipe_where_sigpipe_is_ignored() {
        // macOS's path: no flag per call, the socket's own option, and Python's
        // SIG_IGN for SIGPIPE (set here as Python sets it).
        let (a, b) = UnixStream::pair().unwrap();
        crate::platform::no_sigpipe(a.as_raw_fd()).unwrap();
        // SAFETY: ignoring SIGPIPE for the process, as Python does.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        drop(b);
        let err = send_with(a.as_raw_fd(), b"x", 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn more_buffers_than_the_iovec_limit_are_sent_up_to_it() {
        let (a, b) = UnixStream::pair().unwrap();
        let bufs = vec![IoSlice::new(b"x"); iov_max() + 10];
        assert_eq!(send_vectored(a.as_raw_fd(), &bufs).unwrap(), iov_max());
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints for pipe(2) to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(write_vectored(fds[1], &bufs).unwrap(), iov_max());
        // SAFETY: both ends are ours to close, once.
        unsafe { (libc::close(fds[0]), libc::close(fds[1])) };
        drop(b);
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

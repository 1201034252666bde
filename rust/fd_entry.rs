//! What the fd table holds for one registration, why a registration is refused,
//! and which file an fd names (for registrations the poll does not hold).

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use mio::Token;

use crate::events::IoEvents;

/// Why a registration was refused.
#[derive(Debug)]
pub enum FdError {
    /// The fd is negative.
    Negative(RawFd),
    /// The fd already has a handler.
    AlreadyRegistered(RawFd),
    /// The fd has no handler (`update`).
    NotRegistered(RawFd),
    /// The kernel refused it (closed fd: EBADF; regular file: EPERM).
    Os(io::Error),
}

impl fmt::Display for FdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdError::Negative(fd) => write!(f, "invalid file descriptor: {fd}"),
            FdError::AlreadyRegistered(fd) => write!(f, "fd {fd} is already registered"),
            FdError::NotRegistered(fd) => write!(f, "fd {fd} is not registered"),
            FdError::Os(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FdError {}

/// How a registration's readiness reaches its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Called while the fd is ready (Tornado's handlers, asyncio's readers and
    /// writers): after the handler runs, the registration is re-armed, so an fd
    /// left ready is reported again.
    Level,
    /// Called when the fd becomes ready: the handler works until `WouldBlock`
    /// (a transport), so no re-arm is owed unless it asks with
    /// [`FdTable::dispatched`](crate::FdTable::dispatched).
    Edge,
}

/// One registered fd.
#[derive(Debug)]
pub struct FdEntry<H> {
    /// The token of this registration.
    pub token: Token,
    /// The events the handler asked for (ERROR is always reported).
    pub interest: IoEvents,
    /// Level- or edge-triggered.
    pub trigger: Trigger,
    /// The host's handler.
    pub handler: H,
    /// Whether the fd is in the poll's interest set (it is not while `interest`
    /// has neither READ nor WRITE).
    pub(crate) in_poll: bool,
    /// Out of the poll, the kernel keeps nothing of the registration: which file
    /// the fd named then, to tell it from another file at the same number later.
    pub(crate) file: Option<FileIdentity>,
    /// The poll count when the handler ran, if the registration has not been
    /// re-armed since nor has a new event arrived for it (see
    /// [`FdTable::rearm_owed`]).
    pub(crate) owes_rearm_since: Option<u64>,
}

/// Which open file an fd names: its device and inode (a socket or pipe has an
/// inode of its own), to tell a closed fd whose number was reused from the same
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The file `fd` names now (`EBADF` if it is closed).
    pub(crate) fn of(fd: RawFd) -> io::Result<Self> {
        // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a live, writable stat for the call's duration.
        if unsafe { libc::fstat(fd, &mut st) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        })
    }

    /// Whether `fd` still names this file.
    pub(crate) fn still(self, fd: RawFd) -> bool {
        Self::of(fd).is_ok_and(|now| now == self)
    }
}

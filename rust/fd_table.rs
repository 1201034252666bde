//! The registered file descriptors and their handlers.
//!
//! Each registration gets a fresh token (fd + generation), so events that still
//! arrive for an earlier registration of the same fd number — a closed fd whose
//! number was reused, or a dup that keeps an old epoll entry alive — match nothing
//! and are dropped instead of reaching the new handler.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Registry, Token};

use crate::events::IoEvents;

/// Generations stay below 2^31, so a token's top bit is never set (see `token.rs`).
const GENERATION_MASK: u64 = 0x7fff_ffff;

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

/// One registered fd.
#[derive(Debug)]
pub struct FdEntry<H> {
    /// The token of this registration.
    pub token: Token,
    /// The events the handler asked for (ERROR is always reported).
    pub interest: IoEvents,
    /// The host's handler.
    pub handler: H,
    /// Whether the fd is in the poll's interest set (it is not while `interest`
    /// has neither READ nor WRITE).
    in_poll: bool,
}

/// Handlers by fd, each with the token of its registration.
///
/// # Examples
/// ```
/// use mioloop::{FdTable, IoEvents};
/// use std::os::fd::AsRawFd;
/// let poll = mio::Poll::new().unwrap();
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let mut fds = FdTable::new();
/// fds.add(poll.registry(), a.as_raw_fd(), IoEvents::READ, "handler").unwrap();
/// assert!(fds.add(poll.registry(), a.as_raw_fd(), IoEvents::READ, "again").is_err());
/// assert_eq!(fds.remove(poll.registry(), a.as_raw_fd()), Some("handler"));
/// ```
#[derive(Debug)]
pub struct FdTable<H> {
    entries: Vec<Option<FdEntry<H>>>,
    generation: u64,
    len: usize,
}

impl<H> Default for FdTable<H> {
    fn default() -> Self {
        Self::new()
    }
}

fn token_fd(token: Token) -> Option<usize> {
    // The low 32 bits hold the fd.
    Some(token.0 & 0xffff_ffff)
}

impl<H> FdTable<H> {
    /// An empty table.
    pub fn new() -> Self {
        FdTable {
            entries: Vec::new(),
            generation: 0,
            len: 0,
        }
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn next_token(&mut self, fd: RawFd) -> Token {
        self.generation = (self.generation + 1) & GENERATION_MASK;
        Token(((self.generation << 32) as usize) | fd as u32 as usize)
    }

    /// The entry of `fd`.
    pub fn get(&self, fd: RawFd) -> Option<&FdEntry<H>> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get(i)?.as_ref())
    }

    /// The fd and entry of a live registration's token; `None` for a stale token.
    pub fn by_token(&self, token: Token) -> Option<(RawFd, &FdEntry<H>)> {
        let fd = token_fd(token)?;
        let entry = self.entries.get(fd)?.as_ref()?;
        (entry.token == token).then_some((fd as RawFd, entry))
    }

    /// Registers `handler` for `events` on `fd`.
    ///
    /// If `fd` has an entry whose fd was closed (its number now names another file),
    /// the stale entry is replaced; the old handler is returned in `Ok(Some(_))`.
    pub fn add(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        events: IoEvents,
        handler: H,
    ) -> Result<Option<H>, FdError> {
        let index = usize::try_from(fd).map_err(|_| FdError::Negative(fd))?;
        if let Some(old) = self.get(fd) {
            if !old.in_poll {
                return Err(FdError::AlreadyRegistered(fd));
            }
        }
        let token = self.next_token(fd);
        let already = |e: io::Error| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                FdError::AlreadyRegistered(fd)
            } else {
                FdError::Os(e)
            }
        };
        let in_poll = match events.interest() {
            Some(interest) => {
                registry
                    .register(&mut SourceFd(&fd), token, interest)
                    .map_err(already)?;
                true
            }
            None => {
                // Nothing to wait for yet, but refuse what the poll would refuse.
                registry
                    .register(&mut SourceFd(&fd), token, mio::Interest::READABLE)
                    .and_then(|()| registry.deregister(&mut SourceFd(&fd)))
                    .map_err(already)?;
                false
            }
        };
        if index >= self.entries.len() {
            self.entries.resize_with(index + 1, || None);
        }
        let entry = FdEntry {
            token,
            interest: events,
            handler,
            in_poll,
        };
        let old = self.entries[index].replace(entry);
        if old.is_none() {
            self.len += 1;
        }
        Ok(old.map(|e| e.handler))
    }

    /// Changes the events `fd` is watched for.
    pub fn update(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        events: IoEvents,
    ) -> Result<(), FdError> {
        let entry = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i)?.as_mut())
            .ok_or(FdError::NotRegistered(fd))?;
        let source = &mut SourceFd(&fd);
        match (events.interest(), entry.in_poll) {
            (Some(interest), true) => registry.reregister(source, entry.token, interest),
            (Some(interest), false) => registry.register(source, entry.token, interest),
            (None, true) => registry.deregister(source),
            (None, false) => Ok(()),
        }
        .map_err(FdError::Os)?;
        entry.in_poll = events.interest().is_some();
        entry.interest = events;
        Ok(())
    }

    /// Removes `fd`, returning its handler. Unknown fds return `None`. A closed fd is
    /// removed all the same (the kernel already forgot it).
    pub fn remove(&mut self, registry: &Registry, fd: RawFd) -> Option<H> {
        let entry = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i)?.take())?;
        self.len -= 1;
        if entry.in_poll {
            // EBADF (closed) or ENOENT (number reused by an unregistered file) both
            // mean the kernel holds nothing of ours for this fd number.
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        Some(entry.handler)
    }

    /// Re-arms a registration after its handler ran, so that an fd that is still
    /// ready is reported again (level-triggered behaviour on an edge-triggered poll).
    ///
    /// If the fd was closed meanwhile, its entry is dropped and its handler returned.
    pub fn rearm(&mut self, registry: &Registry, token: Token) -> Option<H> {
        let fd = token_fd(token)?;
        let slot = self.entries.get_mut(fd)?;
        let entry = slot.as_ref().filter(|e| e.token == token && e.in_poll)?;
        let interest = entry.interest.interest()?;
        match registry.reregister(&mut SourceFd(&(fd as RawFd)), token, interest) {
            Ok(()) => None,
            Err(_) => {
                self.len -= 1;
                slot.take().map(|e| e.handler)
            }
        }
    }

    /// Removes every entry (deregistering them), returning fds and handlers.
    pub fn drain(&mut self, registry: &Registry) -> Vec<(RawFd, H)> {
        let mut out = Vec::with_capacity(self.len);
        for (fd, slot) in self.entries.iter_mut().enumerate() {
            if let Some(entry) = slot.take() {
                if entry.in_poll {
                    let _ = registry.deregister(&mut SourceFd(&(fd as RawFd)));
                }
                out.push((fd as RawFd, entry.handler));
            }
        }
        self.len = 0;
        out
    }

    /// The first fd whose handler satisfies `pred`.
    pub fn find(&self, mut pred: impl FnMut(&H) -> bool) -> Option<RawFd> {
        self.entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| pred(&e.handler)))
            .map(|fd| fd as RawFd)
    }

    /// Removes every entry without touching the poll (after `fork()`, the poll is
    /// the parent's), returning fds and handlers.
    pub fn forget(&mut self) -> Vec<(RawFd, H)> {
        self.len = 0;
        let out = self
            .entries
            .iter_mut()
            .enumerate()
            .filter_map(|(fd, slot)| slot.take().map(|e| (fd as RawFd, e.handler)))
            .collect();
        out
    }

    /// Visits every handler (for a garbage collector's traversal).
    pub fn for_each_handler(&self, mut f: impl FnMut(&H)) {
        self.entries.iter().flatten().for_each(|e| f(&e.handler));
    }
}

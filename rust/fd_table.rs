//! The registered file descriptors and their handlers.
//!
//! Each registration gets a fresh token (fd + generation), so events that still
//! arrive for an earlier registration of the same fd number — a closed fd whose
//! number was reused, or a dup that keeps an old epoll entry alive — match nothing
//! and are dropped instead of reaching the new handler.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Registry, Token};

use crate::events::IoEvents;
use crate::fd_entry::FileIdentity;
pub use crate::fd_entry::{FdEntry, FdError, Trigger};
use crate::fd_slots::FdSlots;

/// Generations stay below 2^31, so a token's top bit is never set (see `token.rs`).
const GENERATION_MASK: u64 = 0x7fff_ffff;

/// Handlers by fd, each with the token of its registration.
///
/// # Examples
/// ```
/// use mioloop::{FdTable, IoEvents, Trigger};
/// use std::os::fd::AsRawFd;
/// let poll = mio::Poll::new().unwrap();
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let mut fds = FdTable::new();
/// fds.add(poll.registry(), a.as_raw_fd(), IoEvents::READ, Trigger::Level, "handler").unwrap();
/// assert!(fds.add(poll.registry(), a.as_raw_fd(), IoEvents::READ, Trigger::Level, "again").is_err());
/// assert_eq!(fds.remove(poll.registry(), a.as_raw_fd()), Some("handler"));
/// ```
#[derive(Debug)]
pub struct FdTable<H> {
    entries: FdSlots<FdEntry<H>>,
    generation: u64,
    /// Registrations that may owe a re-arm, with the poll count when their handler
    /// ran. Entries whose debt was settled are skipped lazily.
    owing: Vec<(Token, u64)>,
}

impl<H> Default for FdTable<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// Records that `entry`'s handler ran at poll `poll_count`, unless a debt is
/// already pending (or the fd is not in the poll at all).
fn owe_rearm<H>(owing: &mut Vec<(Token, u64)>, entry: &mut FdEntry<H>, poll_count: u64) {
    if entry.in_poll && entry.owes_rearm_since.is_none() {
        entry.owes_rearm_since = Some(poll_count);
        owing.push((entry.token, poll_count));
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
            entries: FdSlots::default(),
            generation: 0,
            owing: Vec::new(),
        }
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    fn next_token(&mut self, fd: RawFd) -> Token {
        self.generation = (self.generation + 1) & GENERATION_MASK;
        Token(((self.generation << 32) as usize) | fd as u32 as usize)
    }

    /// The entry of `fd`.
    pub fn get(&self, fd: RawFd) -> Option<&FdEntry<H>> {
        usize::try_from(fd).ok().and_then(|i| self.entries.get(i))
    }

    /// The entry of `fd`, to change its handler in place.
    pub fn get_mut(&mut self, fd: RawFd) -> Option<&mut FdEntry<H>> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// The fd and entry of a live registration's token; `None` for a stale token.
    pub fn by_token(&self, token: Token) -> Option<(RawFd, &FdEntry<H>)> {
        let fd = token_fd(token)?;
        let entry = self.entries.get(fd)?;
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
        trigger: Trigger,
        handler: H,
    ) -> Result<Option<H>, FdError> {
        let index = usize::try_from(fd).map_err(|_| FdError::Negative(fd))?;
        if let Some(old) = self.get(fd) {
            // In the poll, the kernel tells a stale entry apart (registering the
            // file the number names now succeeds); out of it, the file's identity.
            if !old.in_poll && old.file.map_or(true, |file| file.still(fd)) {
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
        let entry = FdEntry {
            token,
            interest: events,
            trigger,
            handler,
            in_poll,
            file: if in_poll {
                None
            } else {
                FileIdentity::of(fd).ok()
            },
            owes_rearm_since: None,
        };
        let old = self.entries.insert(index, entry);
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
            .and_then(|i| self.entries.get_mut(i))
            .ok_or(FdError::NotRegistered(fd))?;
        if !entry.in_poll && entry.file.is_some_and(|file| !file.still(fd)) {
            // Closed (its number maybe reused) since: not this registration's fd.
            return Err(FdError::NotRegistered(fd));
        }
        let source = &mut SourceFd(&fd);
        match (events.interest(), entry.in_poll) {
            (Some(interest), true) => registry.reregister(source, entry.token, interest),
            (Some(interest), false) => registry.register(source, entry.token, interest),
            (None, true) => registry.deregister(source),
            (None, false) => Ok(()),
        }
        .map_err(|e| match e.raw_os_error() {
            // The poll no longer holds the fd the entry was for: it was closed.
            Some(libc::ENOENT | libc::EBADF) if entry.in_poll => FdError::NotRegistered(fd),
            _ => FdError::Os(e),
        })?;
        entry.in_poll = events.interest().is_some();
        entry.file = if entry.in_poll {
            None
        } else {
            FileIdentity::of(fd).ok()
        };
        entry.interest = events;
        entry.owes_rearm_since = None;
        Ok(())
    }

    /// Removes `fd`, returning its handler. Unknown fds return `None`. A closed fd is
    /// removed all the same (the kernel already forgot it).
    pub fn remove(&mut self, registry: &Registry, fd: RawFd) -> Option<H> {
        let entry = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.remove(i))?;
        if entry.in_poll {
            // EBADF (closed) or ENOENT (number reused by an unregistered file) both
            // mean the kernel holds nothing of ours for this fd number.
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        Some(entry.handler)
    }

    /// Notes that a registration's handler ran and the fd may still be ready.
    /// Level-triggered behaviour on an edge-triggered poll needs the registration
    /// re-armed (`EPOLL_CTL_MOD` reports an fd that is still ready again), but not
    /// at once: a new event for the fd settles the debt for free, and
    /// [`rearm_owed`](Self::rearm_owed) pays the rest. An edge-triggered handler
    /// that stopped before `WouldBlock` asks for the same.
    pub fn dispatched(&mut self, token: Token, poll_count: u64) {
        let Some(fd) = token_fd(token) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(fd).filter(|e| e.token == token) {
            owe_rearm(&mut self.owing, entry, poll_count);
        }
    }

    /// What an event for `token` delivers: the fd, its entry and the events masked
    /// with the interest (ERROR always; READ_CLOSED to an edge-triggered reader,
    /// which must not stop at a short read then). `None` for a stale token or no
    /// wanted event. A level-triggered registration owes a re-arm from here on (see
    /// [`dispatched`](Self::dispatched)): its handler is about to run.
    pub fn deliver(
        &mut self,
        token: Token,
        events: IoEvents,
        poll_count: u64,
    ) -> Option<(RawFd, &FdEntry<H>, IoEvents)> {
        let fd = token_fd(token)?;
        let entry = self.entries.get_mut(fd).filter(|e| e.token == token)?;
        let mut deliver = events & (entry.interest | IoEvents::ERROR);
        if deliver.is_empty() {
            return None;
        }
        match entry.trigger {
            Trigger::Level => owe_rearm(&mut self.owing, entry, poll_count),
            Trigger::Edge if deliver.contains(IoEvents::READ) => {
                deliver |= events & IoEvents::READ_CLOSED;
            }
            Trigger::Edge => {}
        }
        Some((fd as RawFd, entry, deliver))
    }

    /// Notes an event for a registration: the poll reported it, so it owes nothing.
    pub fn reported(&mut self, token: Token) {
        if let Some(entry) = self.entry_mut(token) {
            entry.owes_rearm_since = None;
        }
    }

    /// Whether some registration may owe a re-arm.
    pub fn owes_rearm(&self) -> bool {
        !self.owing.is_empty()
    }

    fn entry_mut(&mut self, token: Token) -> Option<&mut FdEntry<H>> {
        let fd = token_fd(token)?;
        self.entries.get_mut(fd).filter(|e| e.token == token)
    }

    /// Re-arms the registrations that owe it and whose handler ran before poll
    /// number `before` (all of them with `u64::MAX`). A registration whose fd was
    /// closed meanwhile (the re-arm fails) is dropped; its handler is pushed on
    /// `dropped`.
    pub fn rearm_owed(&mut self, registry: &Registry, before: u64, dropped: &mut Vec<H>) {
        let mut owing = std::mem::take(&mut self.owing);
        owing.retain(|&(token, since)| {
            let Some(fd) = token_fd(token) else {
                return false;
            };
            // Only the debt this item recorded: a settled one may have been followed
            // by a newer debt of the same registration, with its own item.
            let Some(entry) = self
                .entries
                .get_mut(fd)
                .filter(|e| e.token == token && e.owes_rearm_since == Some(since))
            else {
                return false;
            };
            if since >= before {
                return true;
            }
            entry.owes_rearm_since = None;
            let Some(interest) = entry.interest.interest() else {
                return false;
            };
            if registry
                .reregister(&mut SourceFd(&(fd as RawFd)), token, interest)
                .is_err()
            {
                // EBADF or ENOENT: the fd was closed (and maybe its number reused).
                dropped.extend(self.entries.remove(fd).map(|e| e.handler));
            }
            false
        });
        owing.append(&mut self.owing);
        self.owing = owing;
    }

    /// Removes every entry (deregistering them), returning fds and handlers.
    pub fn drain(&mut self, registry: &Registry) -> Vec<(RawFd, H)> {
        self.owing.clear();
        let taken = self.entries.take_all();
        let mut out = Vec::with_capacity(taken.len());
        for (fd, entry) in taken {
            if entry.in_poll {
                let _ = registry.deregister(&mut SourceFd(&(fd as RawFd)));
            }
            out.push((fd as RawFd, entry.handler));
        }
        out
    }

    /// The first fd whose handler satisfies `pred`.
    pub fn find(&self, mut pred: impl FnMut(&H) -> bool) -> Option<RawFd> {
        self.entries
            .iter()
            .find(|(_, e)| pred(&e.handler))
            .map(|(fd, _)| fd as RawFd)
    }

    /// Removes every entry without touching the poll (after `fork()`, the poll is
    /// the parent's), returning fds and handlers.
    pub fn forget(&mut self) -> Vec<(RawFd, H)> {
        self.owing.clear();
        self.entries
            .take_all()
            .into_iter()
            .map(|(fd, e)| (fd as RawFd, e.handler))
            .collect()
    }

    /// Visits every handler (for a garbage collector's traversal).
    pub fn for_each_handler(&self, mut f: impl FnMut(&H)) {
        self.entries.iter().for_each(|(_, e)| f(&e.handler));
    }
}

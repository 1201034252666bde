//! The loop's state that handles, transports and other threads share.
//!
//! # Locking
//! The reactor sits behind a mutex that is never held while Python code runs —
//! not even a `Drop` of a Python object, which may run `__del__` — nor while the
//! poll blocks. So a callback may call any method, and another thread's
//! `add_callback` never waits for the poll.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use mio::Registry;
use pyo3::Python;

use super::callback::PyCallback;
use super::fd_owner::FdOwner;
use super::thread_id::{self, NO_THREAD};
use crate::{Inbox, Reactor};

pub(crate) type PyReactor = Reactor<PyCallback, FdOwner>;

/// Items waiting in the inbox beyond which a producing thread yields the GIL.
const BACKLOG_LIMIT: usize = 4 * crate::DRAIN_LIMIT;

/// A callback queued behind this many others has its context set aside from the
/// garbage collector while it waits (see `context.rs`); one queued behind fewer
/// (a chain's link, a Task's step) keeps it tracked.
const SET_ASIDE_BEHIND: usize = 64;

/// The state shared with handles, transports and other threads.
pub(crate) struct Shared {
    reactor: Mutex<PyReactor>,
    pub(crate) inbox: Inbox<PyCallback>,
    /// The id of the thread running the loop, or `NO_THREAD`.
    pub(crate) loop_thread: AtomicU64,
    pub(crate) stopping: AtomicBool,
    closed: AtomicBool,
    /// The buffer stream transports read into before the bytes go to Python: one
    /// per loop, as only the loop's thread reads. Empty until the first read.
    read_buffer: Mutex<Vec<u8>>,
}

impl Shared {
    /// The state of a loop whose poll has `registry`.
    pub(crate) fn new(registry: &Registry) -> io::Result<Self> {
        Ok(Shared {
            reactor: Mutex::new(Reactor::new(registry.try_clone()?)),
            inbox: Inbox::new(registry)?,
            loop_thread: AtomicU64::new(NO_THREAD),
            stopping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            read_buffer: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PyReactor> {
        // No code panics while holding it; a poisoned reactor is still consistent.
        self.reactor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reactor's lock, for [`locked`](super::release::locked).
    pub(crate) fn reactor(&self) -> &Mutex<PyReactor> {
        &self.reactor
    }

    /// The reactor, unless this or another thread holds it at this instant (a
    /// garbage collector's traversal must not wait).
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, PyReactor>> {
        match self.reactor.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    pub(crate) fn read_buffer(&self) -> MutexGuard<'_, Vec<u8>> {
        self.read_buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Marks the loop closed; `false` if it already was.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.loop_thread.load(Ordering::Relaxed) != NO_THREAD
    }

    pub(crate) fn on_loop_thread(&self) -> bool {
        self.loop_thread.load(Ordering::Relaxed) == thread_id::current()
    }

    /// Queues a callback on the loop's thread. What other threads queued before
    /// goes first: callbacks run in the order they were scheduled, whichever
    /// thread scheduled them. While a flood from other threads leaves items in the
    /// inbox (a drain takes a bounded number), this one queues behind them there.
    #[inline(always)]
    pub(crate) fn push(&self, mut callback: PyCallback) {
        let mut reactor = self.lock();
        if !self.inbox.drain_into(&mut *reactor) {
            if reactor.ready_len() >= SET_ASIDE_BEHIND {
                callback.set_aside();
            }
            reactor.push(callback);
            return;
        }
        drop(reactor);
        if let Err(refused) = self.to_inbox(callback) {
            drop(refused);
        }
    }

    /// Queues a callback in the inbox, where it may wait among many: its context is
    /// set aside from the garbage collector. Returns how many items wait there.
    fn to_inbox(&self, mut callback: PyCallback) -> Result<usize, PyCallback> {
        callback.set_aside();
        self.inbox.push(callback)
    }

    /// Queues a callback from any thread: onto the ready queue on the loop's
    /// thread or while no loop runs, through the inbox (waking the poll) from any
    /// other. A loop closed meanwhile drops it silently, as Tornado does. Inlined:
    /// the loop's own thread is the hot case.
    ///
    /// Backpressure: a thread that finds more than [`BACKLOG_LIMIT`] items waiting
    /// lets go of the GIL for a moment, so the loop's thread (which needs it to run
    /// them) gets its turn instead of waiting out the interpreter's switch interval
    /// behind every producer; the backlog, and the delay of the loop's timers and fds
    /// under a flood, stay bounded.
    #[inline(always)]
    pub(crate) fn push_threadsafe(&self, py: Python<'_>, callback: PyCallback) {
        if self.on_loop_thread() {
            self.push(callback);
        } else {
            self.push_from_elsewhere(py, callback);
        }
    }

    /// `push_threadsafe` off the loop's thread, or while no loop runs.
    fn push_from_elsewhere(&self, py: Python<'_>, callback: PyCallback) {
        if !self.is_running() {
            // No loop to take the inbox (a script scheduling before start()): the
            // ready queue, under the reactor's lock, orders it with every other
            // thread's. A loop that started meanwhile may have planned to block
            // before this arrived, and its poll is woken (the GIL, held from the
            // check to here and by a loop until it polls, rules that out today;
            // the lock alone would not).
            self.push(callback);
            if self.is_running() {
                self.inbox.wake();
            }
            return;
        }
        match self.to_inbox(callback) {
            Ok(waiting) if waiting > BACKLOG_LIMIT => py.detach(std::thread::yield_now),
            Ok(_) => {}
            Err(refused) => drop(refused),
        }
    }
}

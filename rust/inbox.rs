//! The thread-safe inbox: work handed to the loop from other threads.
//!
//! # Notes
//! No lost wake-ups: a producer pushes, then wakes the poll unless a wake-up is
//! already pending. The loop clears the pending flag *before* it drains, so an item
//! pushed after the drain always finds the flag clear and wakes the poll, and an
//! item pushed before it is drained. Wake-ups are coalesced: a burst of pushes costs
//! one write to the waker per loop iteration.
//!
//! Bounded intake: a drain takes at most [`DRAIN_LIMIT`] items, and leaves the flag
//! set while more wait, so the loop polls without blocking and comes back for them.
//! Threads that push faster than the loop runs callbacks then cost the loop's timers
//! and fds one iteration of at most that many items, not the whole backlog.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use mio::{Registry, Waker};

use crate::token::TOKEN_WAKER;

/// The most items one drain takes from the inbox.
pub const DRAIN_LIMIT: usize = 4096;

/// A queue that any thread may push to, waking the poll it belongs to.
///
/// # Examples
/// ```
/// use mioloop::Inbox;
/// let mut poll = mio::Poll::new().unwrap();
/// let inbox = std::sync::Arc::new(Inbox::new(poll.registry()).unwrap());
/// let remote = inbox.clone();
/// std::thread::spawn(move || remote.push(7).unwrap()).join().unwrap();
/// let mut events = mio::Events::with_capacity(4);
/// poll.poll(&mut events, None).unwrap(); // returns: the push woke it
/// let mut got = Vec::new();
/// inbox.drain_into(&mut got);
/// assert_eq!(got, [7]);
/// ```
#[derive(Debug)]
pub struct Inbox<T> {
    /// `None` once closed: pushes are refused.
    queue: Mutex<Option<VecDeque<T>>>,
    wake_pending: AtomicBool,
    /// `None` once closed: its fd goes with the inbox's loop, not with the last
    /// thread holding the inbox. Locked only to wake, once per iteration at most.
    waker: Mutex<Option<Waker>>,
}

impl<T> Inbox<T> {
    /// An inbox whose pushes wake the poll of `registry`, on [`TOKEN_WAKER`].
    pub fn new(registry: &Registry) -> io::Result<Self> {
        Ok(Inbox {
            queue: Mutex::new(Some(VecDeque::new())),
            wake_pending: AtomicBool::new(false),
            waker: Mutex::new(Some(Waker::new(registry, TOKEN_WAKER)?)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<VecDeque<T>>> {
        // Nothing panics while the lock is held; if something did, the queue is intact.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` and wakes the poll; returns how many items wait now. A closed
    /// inbox gives the item back.
    pub fn push(&self, item: T) -> Result<usize, T> {
        let waiting = match self.lock().as_mut() {
            Some(queue) => {
                queue.push_back(item);
                queue.len()
            }
            None => return Err(item),
        };
        self.wake();
        Ok(waiting)
    }

    /// Wakes the poll, unless a wake-up is already on its way.
    ///
    /// The load first spares a burst of pushes a locked instruction each (a
    /// sequentially consistent load is a plain read on x86). Seeing the flag set
    /// means the same as the swap returning it set: a write to the waker happened
    /// after the loop last cleared the flag, so the loop drains (it clears the flag
    /// before each drain, and drains after each poll) or its next poll returns.
    pub fn wake(&self) {
        if self.wake_pending.load(Ordering::SeqCst) {
            return;
        }
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(waker) = waker.as_ref() {
                // A failed wake (the eventfd counter is full) still leaves it readable.
                let _ = waker.wake();
            }
        }
    }

    /// Moves the queued items into `out`, in push order, at most [`DRAIN_LIMIT`] of
    /// them. Returns whether items are left (the flag then stays set).
    #[inline]
    pub fn drain_into(&self, out: &mut impl Extend<T>) -> bool {
        // Every push sets the flag after queueing, so a clear flag means nothing was
        // queued since the last drain: skip the lock (and, inlined, the call).
        if !self.wake_pending.load(Ordering::SeqCst) {
            return false;
        }
        self.drain_pending(out)
    }

    fn drain_pending(&self, out: &mut impl Extend<T>) -> bool {
        self.wake_pending.store(false, Ordering::SeqCst);
        let (taken, left) = {
            let mut guard = self.lock();
            let Some(queue) = guard.as_mut().filter(|q| !q.is_empty()) else {
                return false;
            };
            if queue.len() <= DRAIN_LIMIT {
                (std::mem::take(queue), false)
            } else {
                // The front of a deque goes in O(DRAIN_LIMIT), however long the rest.
                let taken: VecDeque<T> = queue.drain(..DRAIN_LIMIT).collect();
                // Set again under the lock: the next drain comes back for the rest.
                self.wake_pending.store(true, Ordering::SeqCst);
                (taken, true)
            }
        };
        out.extend(taken);
        left
    }

    /// Moves every queued item into `out`, whatever the flag says (on close).
    pub fn drain_all(&self, out: &mut impl Extend<T>) {
        if let Some(queue) = self.lock().as_mut() {
            out.extend(std::mem::take(queue));
        }
    }

    /// Refuses further pushes, closes the waker's fd and returns what was queued.
    pub fn close(&self) -> Vec<T> {
        let queued = self.lock().take().map(Vec::from).unwrap_or_default();
        drop(
            self.waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        queued
    }

    /// Visits the queued items (for a garbage collector's traversal). Skips the visit
    /// if another thread holds the lock at this instant.
    pub fn try_for_each(&self, mut f: impl FnMut(&T)) {
        if let Ok(guard) = self.queue.try_lock() {
            guard.iter().flatten().for_each(&mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_inbox_refuses_pushes_and_wakes_nothing() {
        let poll = mio::Poll::new().unwrap();
        let inbox = Inbox::new(poll.registry()).unwrap();
        inbox.push(1).unwrap();
        assert_eq!(inbox.close(), [1]);
        assert!(inbox.waker.lock().unwrap().is_none());
        assert_eq!(inbox.push(2), Err(2));
        inbox.wake_pending.store(false, Ordering::SeqCst);
        inbox.wake(); // no waker left: nothing to write to, no panic
    }
}

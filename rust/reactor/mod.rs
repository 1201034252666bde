//! The engine's state: the ready queue, the timers and the fds of one loop.
//!
//! What one iteration does with it is in [`iteration`], a child module, so the
//! state's fields stay private to the two; this module holds the state and the
//! operations a loop's API calls between iterations (schedule, register, cancel,
//! drain on close).

pub(crate) mod iteration;

use std::collections::VecDeque;
use std::os::fd::RawFd;

use mio::{Registry, Token};

use crate::clock::Nanos;
use crate::events::IoEvents;
use crate::fd_table::{FdError, FdTable, Trigger};
use crate::timer_heap::{TimerHeap, TimerKey};
use iteration::PollPacer;

/// Room the ready queue keeps when empty; a burst's extra is given back.
const READY_KEPT: usize = 1024;

/// One unit of queued work.
#[derive(Debug)]
pub enum Ready<C> {
    /// A callback.
    Call(C),
    /// A timer that came due; its callback is still in the timer heap, so that a
    /// cancellation before it runs is honoured.
    Timer(TimerKey),
    /// An fd event, looked up by token when it runs.
    Io {
        /// The registration's token.
        token: Token,
        /// What the poll reported (masked with the interest when it runs).
        events: IoEvents,
    },
}

/// The ready queue, the timers and the fds of one loop.
#[derive(Debug)]
pub struct Reactor<C, H> {
    /// `None` once closed ([`Reactor::close`]): its fd (a duplicate of the poll's)
    /// goes with the loop.
    registry: Option<Registry>,
    polls: u64,
    pacer: PollPacer,
    /// The clock at its last reading.
    now: Nanos,
    /// Items popped since the clock was last read.
    popped_since_clock: u32,
    ready: VecDeque<Ready<C>>,
    /// Timers.
    pub timers: TimerHeap<C>,
    /// Registered fds.
    pub fds: FdTable<H>,
}

impl<C, H> Reactor<C, H> {
    /// A reactor registering fds with `registry` (a clone of the poll's).
    pub fn new(registry: Registry) -> Self {
        Reactor {
            registry: Some(registry),
            polls: 0,
            pacer: PollPacer::default(),
            now: 0,
            popped_since_clock: 0,
            ready: VecDeque::new(),
            timers: TimerHeap::new(),
            fds: FdTable::new(),
        }
    }

    /// How many polls the loop made.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// Registers `handler` for `events` on `fd` (see [`FdTable::add`]).
    pub fn add_fd(
        &mut self,
        fd: RawFd,
        events: IoEvents,
        trigger: Trigger,
        handler: H,
    ) -> Result<Option<H>, FdError> {
        let registry = self.registry.as_ref().ok_or_else(closed)?;
        self.fds.add(registry, fd, events, trigger, handler)
    }

    /// Changes the events `fd` is watched for.
    pub fn update_fd(&mut self, fd: RawFd, events: IoEvents) -> Result<(), FdError> {
        let registry = self.registry.as_ref().ok_or_else(closed)?;
        self.fds.update(registry, fd, events)
    }

    /// Stops watching `fd`, returning its handler.
    pub fn remove_fd(&mut self, fd: RawFd) -> Option<H> {
        match &self.registry {
            Some(registry) => self.fds.remove(registry, fd),
            None => None,
        }
    }

    /// Queues a callback for the next iteration.
    pub fn push(&mut self, callback: C) {
        self.ready.push_back(Ready::Call(callback));
    }

    /// How many items are queued.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The next queued item. The queue gives back what a burst made it grow to
    /// once it is empty again.
    pub fn pop(&mut self) -> Option<Ready<C>> {
        self.popped_since_clock = self.popped_since_clock.saturating_add(1);
        let item = self.ready.pop_front();
        self.shrink_if_empty();
        item
    }

    /// The callback at the front of the queue, if the front is a callback (not a
    /// timer or an fd event).
    pub fn pop_call(&mut self) -> Option<C> {
        if !matches!(self.ready.front(), Some(Ready::Call(_))) {
            return None;
        }
        match self.pop() {
            Some(Ready::Call(callback)) => Some(callback),
            _ => None,
        }
    }

    /// Moves the callbacks at the front of the queue into `out`, up to `max` of
    /// them, stopping at the first timer or fd event (those are resolved when they
    /// run). Returns how many it moved.
    pub fn pop_calls(&mut self, out: &mut Vec<C>, max: usize) -> usize {
        out.reserve(max);
        let mut moved = 0;
        while moved < max {
            match self.ready.pop_front() {
                Some(Ready::Call(callback)) => out.push(callback),
                Some(other) => {
                    self.ready.push_front(other);
                    break;
                }
                None => break,
            }
            moved += 1;
        }
        self.popped_since_clock = self.popped_since_clock.saturating_add(moved as u32);
        self.shrink_if_empty();
        moved
    }

    fn shrink_if_empty(&mut self) {
        if self.ready.is_empty() && self.ready.capacity() > READY_KEPT {
            self.ready.shrink_to(READY_KEPT);
        }
    }

    /// Puts an item back at the front of the queue (it was popped, then the
    /// iteration was interrupted before it ran).
    pub fn push_front(&mut self, item: Ready<C>) {
        self.ready.push_front(item);
    }

    /// Empties the reactor: every queued callback, timer and handler, for the host
    /// to drop.
    pub fn drain(&mut self) -> (Vec<C>, Vec<(RawFd, H)>) {
        let callbacks = self.drain_callbacks();
        let handlers = match &self.registry {
            Some(registry) => self.fds.drain(registry),
            None => self.fds.forget(),
        };
        (callbacks, handlers)
    }

    /// Like [`drain`](Self::drain), but leaves the poll alone (after `fork()`).
    pub fn forget(&mut self) -> (Vec<C>, Vec<(RawFd, H)>) {
        let callbacks = self.drain_callbacks();
        (callbacks, self.fds.forget())
    }

    /// Empties the reactor ([`drain`](Self::drain), or [`forget`](Self::forget)
    /// with `deregister` false) and closes its registry's fd: no fd can be added
    /// after (an `FdError::Os`).
    pub fn close(&mut self, deregister: bool) -> (Vec<C>, Vec<(RawFd, H)>) {
        let taken = if deregister {
            self.drain()
        } else {
            self.forget()
        };
        self.registry = None;
        taken
    }

    fn drain_callbacks(&mut self) -> Vec<C> {
        let mut callbacks: Vec<C> = self
            .ready
            .drain(..)
            .filter_map(|r| match r {
                Ready::Call(c) => Some(c),
                _ => None,
            })
            .collect();
        callbacks.extend(self.timers.drain());
        callbacks
    }

    /// Visits every queued callback and timer callback (for a garbage collector's
    /// traversal; the handlers are in [`FdTable::for_each_handler`]).
    pub fn for_each_callback(&self, mut f: impl FnMut(&C)) {
        for item in &self.ready {
            if let Ready::Call(c) = item {
                f(c);
            }
        }
        self.timers.for_each_value(f);
    }
}

fn closed() -> FdError {
    FdError::Os(std::io::Error::other("the loop is closed"))
}

/// Queues callbacks for the next iteration.
impl<C, H> Extend<C> for Reactor<C, H> {
    fn extend<I: IntoIterator<Item = C>>(&mut self, callbacks: I) {
        self.ready.extend(callbacks.into_iter().map(Ready::Call));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_reactor_gives_back_everything_and_registers_nothing() {
        use std::os::fd::AsRawFd;
        let poll = mio::Poll::new().unwrap();
        let mut reactor: Reactor<u32, &str> = Reactor::new(poll.registry().try_clone().unwrap());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        reactor
            .add_fd(a.as_raw_fd(), IoEvents::READ, Trigger::Level, "reader")
            .unwrap();
        reactor.push(7);
        let (callbacks, handlers) = reactor.close(true);
        assert_eq!(callbacks, [7]);
        assert_eq!(handlers, [(a.as_raw_fd(), "reader")]);
        assert!(reactor.registry.is_none());
        assert!(matches!(
            reactor.add_fd(a.as_raw_fd(), IoEvents::READ, Trigger::Level, "again"),
            Err(FdError::Os(_))
        ));
        assert_eq!(reactor.remove_fd(a.as_raw_fd()), None);
    }

    #[test]
    fn the_ready_queue_gives_back_a_bursts_room_once_empty() {
        let poll = mio::Poll::new().unwrap();
        let mut reactor: Reactor<u32, ()> = Reactor::new(poll.registry().try_clone().unwrap());
        for i in 0..100_000 {
            reactor.push(i);
        }
        assert!(reactor.ready.capacity() >= 100_000);
        let mut popped = 0;
        while reactor.pop().is_some() {
            popped += 1;
        }
        assert_eq!(popped, 100_000);
        assert!(reactor.ready.capacity() <= READY_KEPT);
    }
}

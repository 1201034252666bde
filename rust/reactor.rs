//! The engine's state and the steps of one loop iteration.
//!
//! A host runs an iteration as:
//! 1. [`Reactor::poll_timeout`] — 0 if work is ready, else until the next timer;
//! 2. poll (`mio::Poll::poll`), without holding the reactor;
//! 3. [`Reactor::collect`] — queue the ready fds, then the due timers, after the
//!    callbacks already queued, and say how many items this iteration runs;
//! 4. for each of those: [`Reactor::pop`], run it without holding the reactor
//!    ([`Reactor::take_timer`], [`Reactor::io_target`] at that moment, so work
//!    cancelled by an earlier item of the batch does not run), then
//!    [`Reactor::dispatched`] after an fd handler.
//!
//! Before polling, [`Reactor::prepare_poll`] says how: level-triggered handlers on
//! an edge-triggered poll need re-arming, which costs a syscall, so it is deferred
//! until it is needed (see [`PollPlan`]).
//!
//! Items queued while the batch runs wait for the next iteration.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::Duration;

use mio::{Events, Registry, Token};

use crate::clock::{Nanos, NEVER};
use crate::events::IoEvents;
use crate::fd_table::{FdError, FdTable};
use crate::timer_heap::{TimerHeap, TimerKey};
use crate::token::{TOKEN_SIGNAL, TOKEN_WAKER};

/// The longest a poll blocks when no timer is due sooner (Tornado's cap).
pub const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// While callbacks are ready, the zero-timeout poll that checks for I/O is made at
/// most this often: I/O still runs within this long during a storm of callbacks,
/// and a chain of callbacks does not pay a syscall per link.
pub const BUSY_POLL_INTERVAL: Nanos = 20_000;

/// Decides whether an iteration polls.
#[derive(Debug, Default)]
pub struct PollPacer {
    last_poll: Nanos,
}

impl PollPacer {
    /// Whether to poll with `timeout` at `now`: always when the poll may block, and
    /// at most every [`BUSY_POLL_INTERVAL`] when it would not.
    pub fn should_poll(&mut self, timeout: Duration, now: Nanos) -> bool {
        if !timeout.is_zero() || now.saturating_sub(self.last_poll) >= BUSY_POLL_INTERVAL {
            self.last_poll = now;
            return true;
        }
        false
    }
}

/// How the host polls this iteration (from [`Reactor::prepare_poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPlan {
    /// Skip the poll: busy with callbacks, and polled moments ago.
    Skip,
    /// Poll with this timeout (zero: do not block).
    Poll(Duration),
    /// Poll without blocking first; if that finds nothing, call
    /// [`Reactor::rearm_all`] and poll again with this timeout. Handlers ran whose
    /// fds may still be ready without a new event: a blocking poll must not wait
    /// for them, but a poll that finds work does not need to re-arm them yet.
    TryThenBlock(Duration),
}

/// While callbacks keep the loop busy and no timer is pending, the clock is read
/// once per this many items run: only the poll pacing needs it then.
const ITEMS_PER_CLOCK_READ: u32 = 16;

/// A handler whose fd is still ready is called again within this many polls even
/// while other fds keep the loop busy.
const REARM_AFTER_POLLS: u64 = 2;

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

/// What [`Reactor::collect`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// How many queued items this iteration runs.
    pub run: usize,
    /// The signal wake-up fd became readable.
    pub signalled: bool,
}

/// The ready queue, the timers and the fds of one loop.
#[derive(Debug)]
pub struct Reactor<C, H> {
    registry: Registry,
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
            registry,
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
        handler: H,
    ) -> Result<Option<H>, FdError> {
        self.fds.add(&self.registry, fd, events, handler)
    }

    /// Changes the events `fd` is watched for.
    pub fn update_fd(&mut self, fd: RawFd, events: IoEvents) -> Result<(), FdError> {
        self.fds.update(&self.registry, fd, events)
    }

    /// Stops watching `fd`, returning its handler.
    pub fn remove_fd(&mut self, fd: RawFd) -> Option<H> {
        self.fds.remove(&self.registry, fd)
    }

    /// Queues a callback for the next iteration.
    pub fn push(&mut self, callback: C) {
        self.ready.push_back(Ready::Call(callback));
    }

    /// How many items are queued.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// How long the next poll may block: zero if work is queued, else until the
    /// next timer (rounded up by the poll, so a timer never fires early), capped at
    /// [`MAX_POLL_TIMEOUT`].
    pub fn poll_timeout(&mut self, now: Nanos) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        match self.timers.next_deadline() {
            Some(NEVER) | None => MAX_POLL_TIMEOUT,
            Some(deadline) => {
                Duration::from_nanos(deadline.saturating_sub(now)).min(MAX_POLL_TIMEOUT)
            }
        }
    }

    /// Decides how to poll this iteration, re-arming the registrations whose debt
    /// is old enough that waiting longer could starve them. Handlers of fds closed
    /// meanwhile are pushed on `dropped`. `clock` is read unless the loop is busy with
    /// callbacks, no timer is pending and few items ran since the last reading
    /// (see [`Reactor::now`]).
    pub fn prepare_poll(
        &mut self,
        clock: impl FnOnce() -> Nanos,
        dropped: &mut Vec<H>,
    ) -> PollPlan {
        if !self.ready.is_empty()
            && self.timers.is_empty()
            && self.popped_since_clock < ITEMS_PER_CLOCK_READ
        {
            return PollPlan::Skip;
        }
        let now = self.read_clock(clock);
        let timeout = self.poll_timeout(now);
        if !self.pacer.should_poll(timeout, now) {
            return PollPlan::Skip;
        }
        self.polls += 1;
        let before = self.polls.saturating_sub(REARM_AFTER_POLLS);
        self.fds.rearm_owed(&self.registry, before, dropped);
        if timeout.is_zero() || !self.fds.owes_rearm() {
            PollPlan::Poll(timeout)
        } else {
            PollPlan::TryThenBlock(timeout)
        }
    }

    /// Reads the clock and remembers the reading.
    pub fn read_clock(&mut self, clock: impl FnOnce() -> Nanos) -> Nanos {
        self.now = clock();
        self.popped_since_clock = 0;
        self.now
    }

    /// The clock at its last reading: never later than the real time, so timers
    /// collected at this time never fire early.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Re-arms every registration that owes it (before a blocking poll).
    pub fn rearm_all(&mut self, dropped: &mut Vec<H>) {
        self.fds.rearm_owed(&self.registry, u64::MAX, dropped);
    }

    /// Queues the timers due at `now` behind what is already queued, for an
    /// iteration that did not poll; returns how many items it runs.
    pub fn collect_timers(&mut self, now: Nanos) -> usize {
        while let Some(key) = self.timers.pop_due(now) {
            self.ready.push_back(Ready::Timer(key));
        }
        self.ready.len()
    }

    /// Queues the fd events of `events` and the timers due at `now`, behind what is
    /// already queued; returns how many items this iteration runs.
    pub fn collect(&mut self, events: &Events, now: Nanos) -> Collected {
        let mut found = Collected::default();
        for event in events {
            match event.token() {
                // The waker only ends the poll; the inbox is drained by the host.
                TOKEN_WAKER => {}
                TOKEN_SIGNAL => found.signalled = true,
                token => {
                    self.fds.reported(token);
                    self.ready.push_back(Ready::Io {
                        token,
                        events: IoEvents::from_event(event),
                    });
                }
            }
        }
        found.run = self.collect_timers(now);
        found
    }

    /// The next queued item.
    pub fn pop(&mut self) -> Option<Ready<C>> {
        self.popped_since_clock = self.popped_since_clock.saturating_add(1);
        self.ready.pop_front()
    }

    /// Puts an item back at the front of the queue (it was popped, then the
    /// iteration was interrupted before it ran).
    pub fn push_front(&mut self, item: Ready<C>) {
        self.ready.push_front(item);
    }

    /// Takes the callback of a due timer; `None` if it was cancelled.
    pub fn take_timer(&mut self, key: TimerKey) -> Option<C> {
        self.timers.take(key)
    }

    /// The fd, handler and events to deliver for an fd event; `None` if the
    /// registration is gone or wants none of the events.
    pub fn io_target(&self, token: Token, events: IoEvents) -> Option<(RawFd, &H, IoEvents)> {
        let (fd, entry) = self.fds.by_token(token)?;
        let deliver = events & (entry.interest | IoEvents::ERROR);
        (!deliver.is_empty()).then_some((fd, &entry.handler, deliver))
    }

    /// Notes that an fd's handler ran (see [`FdTable::dispatched`]).
    pub fn dispatched(&mut self, token: Token) {
        self.fds.dispatched(token, self.polls);
    }

    /// Empties the reactor: every queued callback, timer and handler, for the host
    /// to drop.
    pub fn drain(&mut self) -> (Vec<C>, Vec<(RawFd, H)>) {
        let callbacks = self.drain_callbacks();
        let handlers = self.fds.drain(&self.registry);
        (callbacks, handlers)
    }

    /// Like [`drain`](Self::drain), but leaves the poll alone (after `fork()`).
    pub fn forget(&mut self) -> (Vec<C>, Vec<(RawFd, H)>) {
        let callbacks = self.drain_callbacks();
        (callbacks, self.fds.forget())
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

/// Queues callbacks for the next iteration (the inbox drains into a reactor).
impl<C, H> Extend<C> for Reactor<C, H> {
    fn extend<I: IntoIterator<Item = C>>(&mut self, callbacks: I) {
        self.ready.extend(callbacks.into_iter().map(Ready::Call));
    }
}

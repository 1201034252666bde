//! The steps of one loop iteration: one definition, shared by every host.
//!
//! A host — the Python bindings, or the pure-Rust [`NativeLoop`](crate::NativeLoop) —
//! runs an iteration as:
//! 1. [`Reactor::begin`]: take what other threads sent (the inbox) and decide how
//!    to poll ([`PollPlan`]);
//! 2. [`Poller::poll`](crate::Poller::poll) with that plan, without holding the
//!    reactor (the Python host releases the GIL if the poll may block);
//! 3. [`Reactor::end`]: take the inbox again, read the clock, queue the ready fds
//!    and then the due timers behind the callbacks already queued, and say how many
//!    items this iteration runs;
//! 4. for each of those: [`Reactor::pop`], [`Reactor::resolve`] it into [`Work`]
//!    (a cancelled timer or a stale fd event resolves to nothing) and run it
//!    without holding the reactor, so that it may schedule more.
//!
//! Items queued while the batch runs wait for the next iteration. The host keeps
//! only what is its own: its locking, the GIL, signals, and how it calls a callback.

use std::os::fd::RawFd;
use std::time::Duration;

use mio::{Events, Token};

use super::{Reactor, Ready};
use crate::clock::{Nanos, NEVER};
use crate::events::IoEvents;
use crate::inbox::Inbox;
use crate::token::{TOKEN_SIGNAL, TOKEN_WAKER};

/// The longest a poll blocks when no timer is due sooner (Tornado's cap).
pub const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// While callbacks are ready and no fd is registered — the poll would only hear
/// the waker (whose inbox is taken every iteration anyway) and the signal fd —
/// the zero-timeout poll is made at most this often, so a chain of callbacks does
/// not pay a syscall per link. With an fd registered, every iteration polls, as
/// asyncio's does: a socket that became ready is served on the next iteration
/// however long the callbacks take (a peer written to, then two
/// `await asyncio.sleep(0)`, has its data).
pub const BUSY_POLL_INTERVAL: Nanos = 20_000;

/// While callbacks keep a loop with no fd busy and no timer is pending, the clock
/// is read once per this many items run: only the poll pacing needs it then.
const ITEMS_PER_CLOCK_READ: u32 = 16;

/// A handler whose fd is still ready is called again within this many polls even
/// while other fds keep the loop busy.
const REARM_AFTER_POLLS: u64 = 2;

/// Decides whether an iteration polls.
#[derive(Debug, Default)]
pub struct PollPacer {
    last_poll: Nanos,
}

impl PollPacer {
    /// Whether to poll with `timeout` at `now`: always when the poll may block or
    /// an fd is registered, and at most every [`BUSY_POLL_INTERVAL`] otherwise.
    pub fn should_poll(&mut self, timeout: Duration, now: Nanos, fds_registered: bool) -> bool {
        if fds_registered
            || !timeout.is_zero()
            || now.saturating_sub(self.last_poll) >= BUSY_POLL_INTERVAL
        {
            self.last_poll = now;
            return true;
        }
        false
    }
}

/// How the host polls this iteration (from [`Reactor::begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPlan {
    /// Skip the poll: busy with callbacks, and polled moments ago.
    Skip,
    /// Poll with this timeout (zero: do not block).
    Poll(Duration),
    /// Poll without blocking first; if that finds nothing, re-arm every
    /// registration that owes it ([`Reactor::rearm_all`]) and poll again with this
    /// timeout. Handlers ran whose fds may still be ready without a new event: a
    /// blocking poll must not wait for them, but a poll that finds work does not
    /// need to re-arm them yet.
    TryThenBlock(Duration),
}

/// What [`Reactor::end`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// How many queued items this iteration runs.
    pub run: usize,
    /// The signal wake-up fd became readable.
    pub signalled: bool,
}

/// A ready item resolved into what the host runs.
#[derive(Debug)]
pub enum Work<'a, C, H> {
    /// A callback (queued, or a due timer's).
    Call(C),
    /// An fd's handler, with the events to deliver (masked with its interest).
    Io {
        /// The registration's token (to ask for a re-arm after an edge handler).
        token: Token,
        /// The fd.
        fd: RawFd,
        /// Its handler, borrowed from the fd table: the host clones what it needs.
        handler: &'a H,
        /// The events to deliver.
        events: IoEvents,
    },
}

/// Moves the inbox's items into the ready queue, converted to the queue's type.
struct Converting<'a, C, H, F>(&'a mut Reactor<C, H>, F);

impl<T, C, H, F: FnMut(T) -> C> Extend<T> for Converting<'_, C, H, F> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        let Converting(reactor, into) = self;
        reactor.extend(items.into_iter().map(into));
    }
}

impl<C, H> Reactor<C, H> {
    /// Step 1: takes the inbox and decides how to poll (every iteration once an fd
    /// is registered; see [`BUSY_POLL_INTERVAL`]), re-arming the registrations
    /// whose debt is old enough that waiting longer could starve them. Handlers of
    /// fds closed meanwhile are pushed on `dropped`. `clock` is read unless the loop
    /// is busy with callbacks, has no fd and no timer, and few items ran since the
    /// last reading.
    pub fn begin<T>(
        &mut self,
        inbox: &Inbox<T>,
        into: impl FnMut(T) -> C,
        clock: impl FnOnce() -> Nanos,
        dropped: &mut Vec<H>,
    ) -> PollPlan {
        inbox.drain_into(&mut Converting(self, into));
        let fds_registered = !self.fds.is_empty();
        if !self.ready.is_empty()
            && !fds_registered
            && self.timers.is_empty()
            && self.popped_since_clock < ITEMS_PER_CLOCK_READ
        {
            return PollPlan::Skip;
        }
        let now = self.read_clock(clock);
        let timeout = self.poll_timeout(now);
        if !self.pacer.should_poll(timeout, now, fds_registered) {
            return PollPlan::Skip;
        }
        self.polls += 1;
        let before = self.polls.saturating_sub(REARM_AFTER_POLLS);
        if let Some(registry) = &self.registry {
            self.fds.rearm_owed(registry, before, dropped);
        }
        if timeout.is_zero() || !self.fds.owes_rearm() {
            PollPlan::Poll(timeout)
        } else {
            PollPlan::TryThenBlock(timeout)
        }
    }

    /// Step 3: after the poll, takes the inbox, reads the clock and queues the fd
    /// events of `polled` and the timers due, behind what is already queued.
    /// `polled` is `None` when the plan was [`PollPlan::Skip`].
    pub fn end<T>(
        &mut self,
        polled: Option<&Events>,
        inbox: &Inbox<T>,
        into: impl FnMut(T) -> C,
        clock: impl FnOnce() -> Nanos,
    ) -> Collected {
        let mut found = Collected::default();
        let Some(events) = polled else {
            // Polled moments ago: only the timers are due for a look, at the last
            // clock reading (never later than the real time: no timer fires early).
            found.run = self.collect_timers(self.now);
            return found;
        };
        inbox.drain_into(&mut Converting(self, into));
        let now = self.read_clock(clock);
        for event in events {
            match event.token() {
                // The waker only ends the poll; the inbox was drained above.
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

    /// Step 4: what a popped item runs; `None` for a timer cancelled meanwhile, or
    /// an fd event whose registration is gone or wants none of the events. A
    /// level-triggered registration owes a re-arm from now on (no poll happens
    /// while its handler runs, so it is never left deaf while still ready).
    pub fn resolve(&mut self, item: Ready<C>) -> Option<Work<'_, C, H>> {
        match item {
            Ready::Call(callback) => Some(Work::Call(callback)),
            Ready::Timer(key) => self.timers.take(key).map(Work::Call),
            Ready::Io { token, events } => {
                let (fd, entry, events) = self.fds.deliver(token, events, self.polls)?;
                Some(Work::Io {
                    token,
                    fd,
                    handler: &entry.handler,
                    events,
                })
            }
        }
    }

    /// Asks for a re-arm of an edge-triggered registration whose handler stopped
    /// before `WouldBlock` (see [`FdTable::dispatched`](crate::FdTable::dispatched)).
    pub fn still_ready(&mut self, token: Token) {
        self.fds.dispatched(token, self.polls);
    }

    /// Re-arms every registration that owes it (before a blocking poll).
    pub fn rearm_all(&mut self, dropped: &mut Vec<H>) {
        if let Some(registry) = &self.registry {
            self.fds.rearm_owed(registry, u64::MAX, dropped);
        }
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

    /// The clock at its last reading.
    pub fn now(&self) -> Nanos {
        self.now
    }

    fn read_clock(&mut self, clock: impl FnOnce() -> Nanos) -> Nanos {
        self.now = clock();
        self.popped_since_clock = 0;
        self.now
    }

    /// Queues the timers due at `now`; returns how many items are queued. Inlined,
    /// so that a loop with no timer (a chain of callbacks) pays one length check.
    #[inline]
    fn collect_timers(&mut self, now: Nanos) -> usize {
        if self.timers.heap_len() != 0 {
            self.collect_due(now);
        }
        self.ready.len()
    }

    fn collect_due(&mut self, now: Nanos) {
        while let Some(key) = self.timers.pop_due(now) {
            self.ready.push_back(Ready::Timer(key));
        }
    }
}

//! A pure-Rust event loop on the engine: callbacks and handlers are Rust closures.
//!
//! It runs the same iteration as the Python bindings, with no Python in the way:
//! the engine's tests drive it, and the benchmarks use it as the ceiling that shows
//! what the Python layer costs.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll};

use crate::clock::{monotonic_now, Nanos};
use crate::events::IoEvents;
use crate::fd_table::FdError;
use crate::inbox::Inbox;
use crate::reactor::{PollPlan, Reactor, Ready};
use crate::timer_heap::TimerKey;

type Callback = Box<dyn FnOnce(&mut EventLoop)>;
type RemoteCallback = Box<dyn FnOnce(&mut EventLoop) + Send>;
type Handler = Rc<dyn Fn(&mut EventLoop, RawFd, IoEvents)>;

/// A single-threaded event loop driven by Rust closures.
///
/// # Examples
/// ```
/// use mioloop::EventLoop;
/// use std::time::Duration;
/// let mut ev = EventLoop::new().unwrap();
/// let remote = ev.handle();
/// std::thread::spawn(move || remote.call_soon_threadsafe(|ev| ev.stop()));
/// ev.call_later(Duration::from_secs(60), |_| panic!("stopped long before"));
/// ev.run().unwrap();
/// ```
pub struct EventLoop {
    poll: Poll,
    events: Events,
    reactor: Reactor<Callback, Handler>,
    inbox: Arc<Inbox<RemoteCallback>>,
    stopping: bool,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("ready", &self.reactor.ready_len())
            .field("timers", &self.reactor.timers.len())
            .field("fds", &self.reactor.fds.len())
            .finish()
    }
}

/// Schedules work on an [`EventLoop`] from any thread.
#[derive(Clone)]
pub struct LoopHandle {
    inbox: Arc<Inbox<RemoteCallback>>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").finish_non_exhaustive()
    }
}

impl LoopHandle {
    /// Runs `f` on the loop's thread, waking the loop. Returns `false` if the loop
    /// is gone.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        self.inbox.push(Box::new(f)).is_ok()
    }
}

impl EventLoop {
    /// A new loop with its own poll.
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let reactor = Reactor::new(poll.registry().try_clone()?);
        let inbox = Arc::new(Inbox::new(poll.registry())?);
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(1024),
            reactor,
            inbox,
            stopping: false,
        })
    }

    /// The loop's clock.
    pub fn time(&self) -> Nanos {
        monotonic_now()
    }

    /// A handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            inbox: self.inbox.clone(),
        }
    }

    /// Runs `f` on the next iteration.
    pub fn call_soon(&mut self, f: impl FnOnce(&mut EventLoop) + 'static) {
        self.reactor.push(Box::new(f));
    }

    /// Runs `f` once the clock reaches `deadline`.
    pub fn call_at(
        &mut self,
        deadline: Nanos,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerKey {
        self.reactor.timers.insert(deadline, Box::new(f))
    }

    /// Runs `f` after `delay`.
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerKey {
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.call_at(monotonic_now().saturating_add(delay), f)
    }

    /// Cancels a timer; `false` if it already ran or was cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> bool {
        self.reactor.timers.cancel(key).is_some()
    }

    /// Calls `handler` while `fd` is ready for `events` (level-triggered).
    pub fn add_handler(
        &mut self,
        fd: RawFd,
        events: IoEvents,
        handler: impl Fn(&mut EventLoop, RawFd, IoEvents) + 'static,
    ) -> Result<(), FdError> {
        self.reactor.add_fd(fd, events, Rc::new(handler)).map(drop)
    }

    /// Changes the events `fd` is watched for.
    pub fn update_handler(&mut self, fd: RawFd, events: IoEvents) -> Result<(), FdError> {
        self.reactor.update_fd(fd, events)
    }

    /// Stops watching `fd`; `false` if it was not watched.
    pub fn remove_handler(&mut self, fd: RawFd) -> bool {
        self.reactor.remove_fd(fd).is_some()
    }

    /// Makes [`run`](Self::run) return after the current iteration.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Runs iterations until [`stop`](Self::stop).
    pub fn run(&mut self) -> io::Result<()> {
        while !std::mem::take(&mut self.stopping) {
            self.run_once()?;
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            other => other,
        }
    }

    /// Runs one iteration: poll, then the queued callbacks, fd handlers and due timers.
    pub fn run_once(&mut self) -> io::Result<()> {
        self.inbox.drain_into(&mut RemoteSink(&mut self.reactor));
        let mut dropped = Vec::new();
        let plan = self.reactor.prepare_poll(monotonic_now, &mut dropped);
        match plan {
            PollPlan::Skip => self.events.clear(),
            PollPlan::Poll(timeout) => self.poll(timeout)?,
            PollPlan::TryThenBlock(timeout) => {
                self.poll(Duration::ZERO)?;
                if self.events.is_empty() {
                    self.reactor.rearm_all(&mut dropped);
                    self.poll(timeout)?;
                }
            }
        }
        self.inbox.drain_into(&mut RemoteSink(&mut self.reactor));
        let now = match plan {
            PollPlan::Skip => self.reactor.now(),
            _ => self.reactor.read_clock(monotonic_now),
        };
        let collected = self.reactor.collect(&self.events, now);
        for _ in 0..collected.run {
            let Some(item) = self.reactor.pop() else {
                break;
            };
            match item {
                Ready::Call(f) => f(self),
                Ready::Timer(key) => {
                    if let Some(f) = self.reactor.take_timer(key) {
                        f(self);
                    }
                }
                Ready::Io { token, events } => {
                    let target = self
                        .reactor
                        .io_target(token, events)
                        .map(|(fd, h, ev)| (fd, Rc::clone(h), ev));
                    if let Some((fd, handler, ev)) = target {
                        // No poll happens while the handler runs: the debt can be
                        // recorded first, as the Python host does.
                        self.reactor.dispatched(token);
                        handler(self, fd, ev);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Adapts the reactor's ready queue to receive the inbox's `Send` closures.
struct RemoteSink<'a>(&'a mut Reactor<Callback, Handler>);

impl Extend<RemoteCallback> for RemoteSink<'_> {
    fn extend<I: IntoIterator<Item = RemoteCallback>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(|f| f as Callback));
    }
}

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

use crate::clock::{monotonic_now, Nanos};
use crate::events::IoEvents;
use crate::fd_table::{FdError, Trigger};
use crate::inbox::Inbox;
use crate::poller::{InPlace, Poller};
use crate::reactor::iteration::{PollPlan, Work};
use crate::reactor::Reactor;
use crate::timer_heap::TimerKey;

type Callback = Box<dyn FnOnce(&mut NativeLoop)>;
type RemoteCallback = Box<dyn FnOnce(&mut NativeLoop) + Send>;
type Handler = Rc<dyn Fn(&mut NativeLoop, RawFd, IoEvents)>;

/// A single-threaded event loop driven by Rust closures.
///
/// # Examples
/// ```
/// use mioloop::NativeLoop;
/// use std::time::Duration;
/// let mut ev = NativeLoop::new().unwrap();
/// let remote = ev.handle();
/// std::thread::spawn(move || remote.call_soon_threadsafe(|ev| ev.stop()));
/// ev.call_later(Duration::from_secs(60), |_| panic!("stopped long before"));
/// ev.run().unwrap();
/// ```
pub struct NativeLoop {
    poller: Poller,
    reactor: Reactor<Callback, Handler>,
    inbox: Arc<Inbox<RemoteCallback>>,
    stopping: bool,
}

impl fmt::Debug for NativeLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeLoop")
            .field("ready", &self.reactor.ready_len())
            .field("timers", &self.reactor.timers.len())
            .field("fds", &self.reactor.fds.len())
            .finish()
    }
}

/// Schedules work on an [`NativeLoop`] from any thread.
#[derive(Clone)]
pub struct NativeLoopHandle {
    inbox: Arc<Inbox<RemoteCallback>>,
}

impl fmt::Debug for NativeLoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeLoopHandle").finish_non_exhaustive()
    }
}

impl NativeLoopHandle {
    /// Runs `f` on the loop's thread, waking the loop. Returns `false` if the loop
    /// is gone.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce(&mut NativeLoop) + Send + 'static) -> bool {
        self.inbox.push(Box::new(f)).is_ok()
    }
}

impl NativeLoop {
    /// A new loop with its own poll.
    pub fn new() -> io::Result<Self> {
        let poller = Poller::new(1024)?;
        let reactor = Reactor::new(poller.registry().try_clone()?);
        let inbox = Arc::new(Inbox::new(poller.registry())?);
        Ok(NativeLoop {
            poller,
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
    pub fn handle(&self) -> NativeLoopHandle {
        NativeLoopHandle {
            inbox: self.inbox.clone(),
        }
    }

    /// Runs `f` on the next iteration.
    pub fn call_soon(&mut self, f: impl FnOnce(&mut NativeLoop) + 'static) {
        self.reactor.push(Box::new(f));
    }

    /// Runs `f` once the clock reaches `deadline`.
    pub fn call_at(
        &mut self,
        deadline: Nanos,
        f: impl FnOnce(&mut NativeLoop) + 'static,
    ) -> TimerKey {
        self.reactor.timers.insert(deadline, Box::new(f))
    }

    /// Runs `f` after `delay`.
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut NativeLoop) + 'static,
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
        handler: impl Fn(&mut NativeLoop, RawFd, IoEvents) + 'static,
    ) -> Result<(), FdError> {
        self.reactor
            .add_fd(fd, events, Trigger::Level, Rc::new(handler))
            .map(drop)
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

    /// Runs one iteration: poll, then the queued callbacks, fd handlers and due timers.
    pub fn run_once(&mut self) -> io::Result<()> {
        let mut dropped = Vec::new();
        let plan = self
            .reactor
            .begin(&self.inbox, local, monotonic_now, &mut dropped);
        let reactor = &mut self.reactor;
        self.poller
            .poll(plan, &mut InPlace, || reactor.rearm_all(&mut dropped))?;
        let polled = (plan != PollPlan::Skip).then(|| self.poller.events());
        let collected = self.reactor.end(polled, &self.inbox, local, monotonic_now);
        for _ in 0..collected.run {
            let Some(item) = self.reactor.pop() else {
                break;
            };
            match self.reactor.resolve(item) {
                None => {}
                Some(Work::Call(f)) => f(self),
                Some(Work::Io {
                    fd,
                    handler,
                    events,
                    ..
                }) => {
                    let handler = Rc::clone(handler);
                    handler(self, fd, events);
                }
            }
        }
        Ok(())
    }
}

/// An inbox item as a callback of the ready queue.
fn local(f: RemoteCallback) -> Callback {
    f
}

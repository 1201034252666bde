//! The poll itself: mio's `Poll` and its events, polled as a [`PollPlan`] says.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Registry};

use crate::reactor::iteration::PollPlan;

/// How a host waits in a poll that may block. The Python bindings release the
/// GIL for it; a pure-Rust host just calls `f`.
pub trait Blocking {
    /// Runs `f`, a poll that may block.
    fn block<T: Send>(&mut self, f: impl FnOnce() -> T + Send) -> T;
}

/// A host with nothing to release while blocked.
#[derive(Debug, Default, Clone, Copy)]
pub struct InPlace;

impl Blocking for InPlace {
    fn block<T: Send>(&mut self, f: impl FnOnce() -> T + Send) -> T {
        f()
    }
}

/// A `mio::Poll` and the buffer its events land in.
#[derive(Debug)]
pub struct Poller {
    poll: Poll,
    events: Events,
}

impl Poller {
    /// A new poll, collecting up to `capacity` events per poll.
    pub fn new(capacity: usize) -> io::Result<Self> {
        Ok(Poller {
            poll: Poll::new()?,
            events: Events::with_capacity(capacity),
        })
    }

    /// The poll's registry.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// The events of the last poll.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Polls as `plan` says. For [`PollPlan::TryThenBlock`], `rearm` runs between a
    /// poll that found nothing and the blocking one. Returns whether a signal
    /// interrupted the poll (`EINTR`; the events are then empty).
    ///
    /// # Notes
    /// An interrupted poll is not retried: the host runs the signal handlers first.
    pub fn poll(
        &mut self,
        plan: PollPlan,
        blocking: &mut impl Blocking,
        rearm: impl FnOnce(),
    ) -> io::Result<bool> {
        match plan {
            PollPlan::Skip => {
                self.events.clear();
                Ok(false)
            }
            PollPlan::Poll(timeout) => self.poll_once(timeout, blocking),
            PollPlan::TryThenBlock(timeout) => {
                let interrupted = self.poll_once(Duration::ZERO, blocking)?;
                if interrupted || !self.events.is_empty() {
                    return Ok(interrupted);
                }
                rearm();
                self.poll_once(timeout, blocking)
            }
        }
    }

    fn poll_once(&mut self, timeout: Duration, blocking: &mut impl Blocking) -> io::Result<bool> {
        let Poller { poll, events } = self;
        let polled = if timeout.is_zero() {
            poll.poll(events, Some(timeout))
        } else {
            blocking.block(|| poll.poll(events, Some(timeout)))
        };
        match polled {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

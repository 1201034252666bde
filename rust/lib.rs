//! mioloop's engine: a poll loop on [`mio`], a timer heap, a cross-thread inbox and
//! an fd table, free of any Python dependency.
//!
//! The engine is driven in steps (see [`Reactor`]) so that a host — the Python
//! bindings in `python/`, or the pure-Rust [`EventLoop`] — can run each callback
//! without holding a borrow of the engine, which lets callbacks schedule more work.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod clock;
mod events;
mod fd_table;
mod inbox;
mod reactor;
mod runner;
mod timer_heap;
mod token;

pub use clock::{
    deadline_after, deadline_at, monotonic_now, nanos_to_secs, InvalidTime, Nanos, NEVER,
};
pub use events::IoEvents;
pub use fd_table::{FdEntry, FdError, FdTable};
pub use inbox::Inbox;
pub use reactor::{
    Collected, PollPacer, PollPlan, Reactor, Ready, BUSY_POLL_INTERVAL, MAX_POLL_TIMEOUT,
};
pub use runner::{EventLoop, LoopHandle};
pub use timer_heap::{TimerHeap, TimerKey};
pub use token::{TOKEN_SIGNAL, TOKEN_WAKER};

#[cfg(feature = "python")]
mod python;

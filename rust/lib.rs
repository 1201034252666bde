//! mioloop's engine: a poll loop on [`mio`], a timer heap, a cross-thread inbox and
//! an fd table, free of any Python dependency.
//!
//! The engine owns the steps of an iteration ([`Reactor::begin`], [`Poller::poll`],
//! [`Reactor::end`], [`Reactor::resolve`]), so that a host — the Python bindings in
//! `python/`, or the pure-Rust [`NativeLoop`] — keeps only its locking, GIL and
//! signals, and runs each callback without holding a borrow of the engine, which
//! lets callbacks schedule more work. [`WriteQueue`] and [`io`] are what the
//! bindings' transports do on a socket.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod clock;
pub mod connection;
mod events;
mod fd_entry;
mod fd_io;
mod fd_slots;
mod fd_table;
mod inbox;
mod native_loop;
mod platform;
mod poller;
mod reactor;
mod sock_addr;
mod timer_heap;
mod token;
mod write_queue;

pub use clock::{
    deadline_after, deadline_at, monotonic_now, nanos_to_secs, InvalidTime, Nanos, NEVER,
};
pub use events::IoEvents;
pub use fd_table::{FdEntry, FdError, FdTable, Trigger};
pub use inbox::{Inbox, DRAIN_LIMIT};
pub use native_loop::{NativeLoop, NativeLoopHandle};
pub use poller::{Blocking, InPlace, Poller};
pub use reactor::iteration::{Collected, PollPlan, Work, BUSY_POLL_INTERVAL, MAX_POLL_TIMEOUT};
pub use reactor::{Reactor, Ready};
pub use sock_addr::{Address, SockAddr};
pub use timer_heap::{TimerHeap, TimerKey};
pub use token::{TOKEN_SIGNAL, TOKEN_WAKER};
pub use write_queue::WriteQueue;

/// Non-blocking socket I/O on raw fds (what transports call).
pub mod io {
    pub use crate::fd_io::{
        read, recv_from, send, send_to, send_vectored, shutdown_write, write, write_vectored,
    };
    pub use crate::platform::no_sigpipe;
}

#[cfg(feature = "python")]
mod python;

//! A connection's lifecycle, once for every transport: a stream socket, a pipe's
//! end, a datagram endpoint; on the Python bindings or on the [`NativeLoop`].
//!
//! - `outcomes.rs`: the kinds of fd and what the state machine's decisions return;
//! - `state.rs`: [`Connection`], the pure state machine (what it waits for, what a
//!   write, close, abort, EOF do), with the write queue ([`Outbox`]) and the water
//!   marks ([`Flow`]);
//! - `driver.rs`: the steps that run it — readiness (the read loop, the flush,
//!   EOF), the methods (write, close, abort, write_eof, pause and resume), how it
//!   ends (flush then lost, or lost at once) — against a [`Host`];
//! - `host.rs`: what a connection needs of its owner: the state behind the owner's
//!   lock, the poll, the fd, the protocol;
//! - `native.rs`: the host of Rust [`Protocol`]s on the [`NativeLoop`].
//!
//! The driver never calls a protocol, nor drops what the state gives back, while
//! the host's lock is held: each step reads or changes the state inside
//! [`Host::with`] and does everything else outside it.
//!
//! [`NativeLoop`]: crate::NativeLoop

pub mod driver;
mod flow;
mod host;
mod native;
mod outbox;
mod outcomes;
mod state;

pub use flow::{BadLimits, Flow, DEFAULT_HIGH_WATER};
pub use host::{Flush, Host, Read};
pub use native::{NativeConnection, Protocol, Transport};
pub use outbox::{Datagram, DatagramQueue, Outbox, DATAGRAM_OVERHEAD};
pub use outcomes::{Closing, Drained, Eof, Gate, Kind, Readable, Refused};
pub use state::Connection;

//! What a connection needs of whoever owns it: its state behind the owner's lock,
//! the fd's poll registration, the fd's reads and sends, and the protocol. The
//! Python bindings are one host (a transport pyclass and a Python protocol); a
//! Rust host drives a Rust protocol on the [`NativeLoop`](crate::NativeLoop).

use crate::connection::{Connection, Outbox};
use crate::IoEvents;

/// How one read went, once the host handed what it read to its protocol.
#[derive(Debug)]
pub enum Read<E> {
    /// Delivered, and the read filled the buffer: more may wait.
    More,
    /// Delivered, a short read: nothing more until the next event (unless the
    /// peer's EOF is pending).
    Drained,
    /// Nothing to read now (`WouldBlock`).
    Blocked,
    /// The end of the stream.
    Eof,
    /// An error the protocol was told of (a datagram socket's, to
    /// `error_received`), or a protocol's error reported: the connection goes on.
    Reported,
    /// The read failed or the protocol raised: the connection ends with this error.
    Fatal(E, &'static str),
}

/// How sending the queue went.
#[derive(Debug)]
pub enum Flush<E> {
    /// The fd took part of it; the rest waits for writability.
    Pending,
    /// The queue is empty.
    Empty,
    /// An error the protocol was told of (`error_received`): sending stops until
    /// the next event.
    Reported,
    /// The send failed: the connection ends with this error.
    Fatal(E, &'static str),
}

/// The owner of a connection: its state, its fd, its protocol.
///
/// The driver (`driver.rs`) never calls a protocol method, nor drops what the
/// state gives back, inside [`Host::with`]: a host that keeps the state behind a
/// lock releases it before its protocol runs, whatever the protocol then calls.
pub trait Host {
    /// The connection's queue.
    type Outbox: Outbox;
    /// The host's error (an exception, an `io::Error`).
    type Error;

    /// Reads a readiness event allows before other work gets its turn.
    const READS_PER_EVENT: usize;

    /// Runs `f` on the connection's state, holding the host's lock only meanwhile.
    fn with<R>(&self, f: impl FnOnce(&mut Connection<Self::Outbox>) -> R) -> R;

    /// Makes the poll watch the fd for `events`.
    fn watch(&self, events: IoEvents) -> Result<(), Self::Error>;

    /// Takes the fd out of the poll's table, if it is still this connection's
    /// (called once, by [`driver::leave_poll`](crate::connection::driver::leave_poll)).
    fn unwatch(&self);

    /// Reads once from the fd and hands what came to the protocol.
    fn read(&self) -> Read<Self::Error>;

    /// Sends what is queued, as far as the fd takes it.
    fn flush(&self) -> Flush<Self::Error>;

    /// Shuts the fd's write side (the peer reads EOF).
    fn shutdown_write(&self) -> Result<(), Self::Error>;

    /// The peer's EOF, told to the protocol: whether it keeps the connection open
    /// for writing (`Err`: a fatal error).
    fn eof_received(&self) -> Result<bool, Self::Error>;

    /// Tells the protocol to pause writing (`pause`) or to resume; an error it
    /// raises is the host's to report. `Err` only for what must propagate.
    fn flow(&self, pause: bool) -> Result<(), Self::Error>;

    /// The connection is lost: the protocol's `connection_lost(exc)`, now (from
    /// an I/O event) or on the next iteration (`soon`: from a method call), then
    /// the fd is closed.
    fn lost(&self, exc: Option<Self::Error>, soon: bool) -> Result<(), Self::Error>;

    /// A fatal error, reported as the host reports them (an OS error is the
    /// peer's doing); `Ok`: what `connection_lost` receives, `Err`: what must
    /// propagate instead (an exit). By default nothing is reported and the
    /// error goes to `connection_lost`.
    fn fatal(&self, err: Self::Error, _message: &'static str) -> Result<Self::Error, Self::Error> {
        Ok(err)
    }

    /// An OS error as the host's error.
    fn os_error(&self, err: std::io::Error) -> Self::Error;

    /// The fd may still be ready: come back to it on a later iteration. By
    /// default nothing: a host whose poll reports the fd again needs no reminder.
    fn still_ready(&self) {}

    /// Whoever waited for writability may go on (`true`), or the connection is
    /// gone (`false`). By default no one waits.
    fn writable(&self, _ok: bool) -> Result<(), Self::Error> {
        Ok(())
    }
}

//! Connections of Rust [`Protocol`]s on the [`NativeLoop`]: the same lifecycle the
//! Python transports run (`driver.rs`), with a Rust host.
//!
//! The loop owns the connection through its fd's handler; a [`Transport`] is the
//! connection and the loop together, for the time of one call: what a protocol's
//! callback is given, and what [`NativeConnection::transport`] lends.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::connection::{driver, Connection, Flush, Gate, Host, Kind, Read, Refused};
use crate::{FdError, IoEvents, NativeLoop, WriteQueue};

/// A read's size.
const READ_SIZE: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// What a Rust protocol hears of its connection (asyncio's `Protocol`).
pub trait Protocol: 'static {
    /// The connection is ready: it reads from now on.
    fn connection_made(&self, _transport: &Transport<'_, Self>)
    where
        Self: Sized,
    {
    }

    /// Bytes arrived.
    fn data_received(&self, transport: &Transport<'_, Self>, data: &[u8])
    where
        Self: Sized;

    /// The peer shut its write side: `true` keeps the connection open for
    /// writing (half-close), `false` closes it.
    fn eof_received(&self, _transport: &Transport<'_, Self>) -> bool
    where
        Self: Sized,
    {
        false
    }

    /// The write queue passed the high mark.
    fn pause_writing(&self, _transport: &Transport<'_, Self>)
    where
        Self: Sized,
    {
    }

    /// The write queue drained to the low mark.
    fn resume_writing(&self, _transport: &Transport<'_, Self>)
    where
        Self: Sized,
    {
    }

    /// The connection is gone (`None`: closed; else the error that ended it);
    /// called once, after which its fd is closed.
    fn connection_lost(&self, _err: Option<io::Error>) {}
}

/// A connection's share of the loop: its fd, state and protocol.
struct Inner<P> {
    fd: RawFd,
    /// Closed once the connection is lost and its protocol told.
    owned: Cell<Option<OwnedFd>>,
    state: RefCell<Connection<WriteQueue>>,
    protocol: P,
}

/// A connection on a [`NativeLoop`]: a handle that lends a [`Transport`].
pub struct NativeConnection<P>(Rc<Inner<P>>);

impl<P> Clone for NativeConnection<P> {
    fn clone(&self) -> Self {
        NativeConnection(Rc::clone(&self.0))
    }
}

impl<P> fmt::Debug for NativeConnection<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeConnection")
            .field("fd", &self.0.fd)
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

/// A connection with the loop it runs on, for one call: its methods are asyncio's
/// transport methods.
pub struct Transport<'a, P> {
    conn: &'a Rc<Inner<P>>,
    ev: RefCell<&'a mut NativeLoop>,
}

impl<P> fmt::Debug for Transport<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("fd", &self.conn.fd)
            .finish_non_exhaustive()
    }
}

impl<P: Protocol> NativeConnection<P> {
    /// Makes a connection of `kind` on `fd` (non-blocking), for `protocol`: the fd
    /// is registered at once, `connection_made` runs on the next iteration, and
    /// reading starts after it.
    pub fn open(
        ev: &mut NativeLoop,
        fd: OwnedFd,
        kind: Kind,
        protocol: P,
    ) -> Result<Self, FdError> {
        if kind == Kind::Datagram {
            return Err(FdError::Os(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a native connection is a stream or a pipe's end",
            )));
        }
        if kind == Kind::Stream {
            crate::io::no_sigpipe(fd.as_raw_fd()).map_err(FdError::Os)?;
        }
        let inner = Rc::new(Inner {
            fd: fd.as_raw_fd(),
            owned: Cell::new(Some(fd)),
            state: RefCell::new(Connection::new(kind)),
            protocol,
        });
        let on_ready = Rc::clone(&inner);
        ev.add_handler(inner.fd, IoEvents::NONE, move |ev, _, events| {
            let _ = driver::ready(&Transport::new(&on_ready, ev), events);
        })?;
        let made = Rc::clone(&inner);
        ev.call_soon(move |ev| {
            let t = Transport::new(&made, ev);
            made.protocol.connection_made(&t);
            let _ = driver::start(&t);
        });
        Ok(NativeConnection(inner))
    }

    /// The connection's transport, on `ev` (the loop it was opened on).
    pub fn transport<'a>(&'a self, ev: &'a mut NativeLoop) -> Transport<'a, P> {
        Transport::new(&self.0, ev)
    }

    /// Bytes queued, waiting for the fd.
    pub fn queued(&self) -> usize {
        self.0.state.borrow().outbox.len()
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        &self.0.protocol
    }
}

impl<'a, P: Protocol> Transport<'a, P> {
    fn new(conn: &'a Rc<Inner<P>>, ev: &'a mut NativeLoop) -> Self {
        Transport {
            conn,
            ev: RefCell::new(ev),
        }
    }

    /// Writes `data` without blocking: what the fd does not take at once is queued
    /// and sent when it is writable. Dropped (`Ok(false)`) once the connection is
    /// lost.
    pub fn write(&self, data: &[u8]) -> Result<bool, Refused> {
        let fd = self.conn.fd;
        let written = driver::write(self, data.len(), false, |c| {
            let kind = c.kind();
            driver::send_or_queue(&mut c.outbox, kind, fd, data)
        });
        Ok(matches!(written.unwrap_or(Ok(Gate::Open))?, Gate::Open))
    }

    /// Sends what is queued, then the connection is lost.
    pub fn close(&self) {
        let _ = driver::close(self);
    }

    /// Drops what is queued; the connection is lost at once.
    pub fn abort(&self) {
        let _ = driver::force_close(self, None);
    }

    /// Shuts the write side once the queue is sent (a pipe's end closes).
    pub fn write_eof(&self) -> Result<(), Refused> {
        driver::write_eof(self).unwrap_or(Ok(()))
    }

    /// Stops reading until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&self) {
        let _ = driver::set_reading_paused(self, true);
    }

    /// Reads again.
    pub fn resume_reading(&self) {
        let _ = driver::set_reading_paused(self, false);
    }

    /// Whether it is closing or lost.
    pub fn is_closing(&self) -> bool {
        self.with(|c| c.is_closing())
    }

    /// Bytes queued.
    pub fn write_buffer_size(&self) -> usize {
        self.with(|c| c.outbox.len())
    }

    /// Sets the water marks (see [`Flow::set_limits`](crate::connection::Flow::set_limits)).
    pub fn set_write_buffer_limits(
        &self,
        high: Option<isize>,
        low: Option<isize>,
    ) -> Result<(), crate::connection::BadLimits> {
        self.with(|c| c.flow.set_limits(high, low))?;
        let _ = driver::flow(self, true);
        Ok(())
    }
}

impl<P: Protocol> Host for Transport<'_, P> {
    type Outbox = WriteQueue;
    type Error = io::Error;

    /// The loop's handlers are level-triggered: a fd with more to read is
    /// reported again on the next poll.
    const READS_PER_EVENT: usize = 4;

    fn with<R>(&self, f: impl FnOnce(&mut Connection<WriteQueue>) -> R) -> R {
        f(&mut self.conn.state.borrow_mut())
    }

    fn watch(&self, events: IoEvents) -> io::Result<()> {
        let updated = self.ev.borrow_mut().update_handler(self.conn.fd, events);
        updated.map_err(|e| match e {
            FdError::Os(e) => e,
            other => io::Error::other(other.to_string()),
        })
    }

    fn unwatch(&self) {
        self.ev.borrow_mut().remove_handler(self.conn.fd);
    }

    fn read(&self) -> Read<io::Error> {
        // One buffer per thread, taken out while in use (a protocol may read
        // another connection meanwhile: it then gets a buffer of its own).
        let mut buf = READ_BUFFER.take();
        buf.resize(READ_SIZE, 0);
        let deliver = |data: &[u8]| {
            self.conn.protocol.data_received(self, data);
            Ok(())
        };
        let read = driver::read_stream(self, self.conn.fd, &mut buf, deliver, "data_received");
        READ_BUFFER.set(buf);
        read
    }

    fn flush(&self) -> Flush<io::Error> {
        driver::flush_stream(self, self.conn.fd)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        crate::io::shutdown_write(self.conn.fd)
    }

    fn eof_received(&self) -> io::Result<bool> {
        Ok(self.conn.protocol.eof_received(self))
    }

    fn flow(&self, pause: bool) -> io::Result<()> {
        if pause {
            self.conn.protocol.pause_writing(self);
        } else {
            self.conn.protocol.resume_writing(self);
        }
        Ok(())
    }

    fn lost(&self, exc: Option<io::Error>, soon: bool) -> io::Result<()> {
        let conn = Rc::clone(self.conn);
        let finish = move || {
            conn.protocol.connection_lost(exc);
            drop(conn.owned.take());
        };
        if soon {
            self.ev.borrow_mut().call_soon(move |_| finish());
        } else {
            finish();
        }
        Ok(())
    }

    fn os_error(&self, err: io::Error) -> io::Error {
        err
    }
}

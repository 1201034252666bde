//! A connection's state and the rules of its lifecycle: what it waits for, what a
//! write, a close, an abort, an EOF do to it. Pure decisions: no I/O happens here
//! and no protocol is called (the driver, `driver.rs`, does both, with the state
//! unlocked), so every method is a plain function of the state.

use crate::connection::{Closing, Drained, Eof, Flow, Gate, Kind, Outbox, Readable, Refused};
use crate::IoEvents;

/// A connection's lifecycle state, its queue and its water marks.
#[derive(Debug)]
pub struct Connection<O> {
    kind: Kind,
    /// `connection_made` ran: reading may begin.
    started: bool,
    reading_paused: bool,
    /// The peer's EOF arrived and the protocol kept the connection open.
    eof_received: bool,
    closing: bool,
    /// `write_eof()` was called.
    eof_requested: bool,
    /// Non-zero once lost; counts the writes made since.
    lost: u32,
    /// The fd is in the poll's table.
    registered: bool,
    /// What the poll watches the fd for now.
    interest: IoEvents,
    /// Someone waits for the queue to drain and the fd to be writable (sendfile).
    awaiting_writable: bool,
    /// A sendfile is sending: writes are refused.
    sendfile_active: bool,
    /// Unsent data.
    pub outbox: O,
    /// The water marks.
    pub flow: Flow,
}

/// Writes after the connection is lost beyond which each one warns (asyncio's).
const WARN_AFTER_LOST_WRITES: u32 = 5;

impl<O: Outbox> Connection<O> {
    /// A new connection on a registered fd, watched for nothing until it starts.
    pub fn new(kind: Kind) -> Self {
        Connection {
            kind,
            started: false,
            reading_paused: false,
            eof_received: false,
            closing: false,
            eof_requested: false,
            lost: 0,
            registered: true,
            interest: IoEvents::NONE,
            awaiting_writable: false,
            sendfile_active: false,
            outbox: O::default(),
            flow: Flow::default(),
        }
    }

    /// What the fd is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `is_closing()`.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the connection is lost (no more I/O; `connection_lost` was or is
    /// about to be called).
    pub fn is_lost(&self) -> bool {
        self.lost > 0
    }

    /// `is_reading()`.
    pub fn is_reading(&self) -> bool {
        !self.reading_paused && !self.closing
    }

    /// Whether a read now would be delivered to the protocol.
    pub fn reads(&self) -> bool {
        !matches!(self.kind, Kind::WritePipe { .. }) && self.wanted().contains(IoEvents::READ)
    }

    /// What a readiness event for reading means now (one look at the state a
    /// read).
    pub fn readable(&self) -> Readable {
        match self.kind {
            Kind::WritePipe { .. } => Readable::ReaderGone,
            _ if self.reads() => Readable::Read,
            _ => Readable::Stop,
        }
    }

    /// The events the connection waits for now.
    pub fn wanted(&self) -> IoEvents {
        let mut events = IoEvents::NONE;
        if self.lost > 0 {
            return events;
        }
        let reads = match self.kind {
            Kind::Stream | Kind::ReadPipe => !self.reading_paused && !self.eof_received,
            Kind::Datagram => true,
            Kind::WritePipe { watch_close } => watch_close,
        };
        if self.started && reads && !self.closing {
            events |= IoEvents::READ;
        }
        if !self.outbox.is_empty() || self.awaiting_writable {
            events |= IoEvents::WRITE;
        }
        events
    }

    /// The interest the poll should take on, if the fd is registered and it differs
    /// from the current one; [`Connection::set_interest`] once it has.
    pub fn interest_change(&self) -> Option<IoEvents> {
        let want = self.wanted();
        (self.registered && want != self.interest).then_some(want)
    }

    /// The poll now watches for `events`.
    pub fn set_interest(&mut self, events: IoEvents) {
        self.interest = events;
    }

    /// `connection_made` ran: reading may begin.
    pub fn start(&mut self) {
        self.started = true;
    }

    /// `pause_reading()` / `resume_reading()`; whether anything changed.
    pub fn set_reading_paused(&mut self, paused: bool) -> bool {
        if self.closing || self.reading_paused == paused {
            return false;
        }
        self.reading_paused = paused;
        true
    }

    /// Whether `write()` may be called (`Err`: why not).
    pub fn check_writable(&self) -> Result<(), Refused> {
        if self.kind == Kind::ReadPipe {
            return Err(Refused::ReadPipe);
        }
        if self.eof_requested {
            return Err(Refused::AfterEof);
        }
        if self.sendfile_active {
            return Err(Refused::Sendfile);
        }
        Ok(())
    }

    /// What a write of `len` bytes may do (a datagram of 0 bytes is still one:
    /// `empty_counts`).
    pub fn gate(&mut self, len: usize, empty_counts: bool) -> Gate {
        if len == 0 && !empty_counts {
            return Gate::Nothing;
        }
        if self.lost > 0 {
            self.lost = self.lost.saturating_add(1);
            return Gate::Dropped {
                warn: self.lost > WARN_AFTER_LOST_WRITES,
            };
        }
        Gate::Open
    }

    /// `close()`.
    pub fn close(&mut self) -> Closing {
        if self.closing {
            return Closing::Already;
        }
        self.closing = true;
        if self.outbox.is_empty() {
            self.lose();
            Closing::LostNow
        } else {
            Closing::Flushing
        }
    }

    /// `abort()` or a fatal error: the connection is lost now, its queue dropped
    /// (returned, for the caller to drop once it holds no lock). `None` if it was
    /// lost already.
    pub fn force_close(&mut self) -> Option<O> {
        if self.lost > 0 {
            return None;
        }
        self.closing = true;
        self.lose();
        Some(std::mem::take(&mut self.outbox))
    }

    /// `write_eof()` (`Err`: refused).
    pub fn write_eof(&mut self) -> Result<Eof, Refused> {
        if self.kind == Kind::ReadPipe {
            return Err(Refused::ReadPipe);
        }
        if self.closing || self.eof_requested {
            return Ok(Eof::Nothing);
        }
        if self.sendfile_active {
            return Err(Refused::Sendfile);
        }
        if let Kind::WritePipe { .. } = self.kind {
            return Ok(Eof::Close);
        }
        self.eof_requested = true;
        Ok(if self.outbox.is_empty() {
            Eof::ShutdownNow
        } else {
            Eof::AfterFlush
        })
    }

    /// Whether the connection may stay open after the peer's EOF, the protocol
    /// having asked to (`keep_open`); if so it reads no more.
    pub fn eof_received(&mut self, keep_open: bool) -> bool {
        // A read pipe, or a protocol that did not ask, closes.
        if keep_open && self.kind != Kind::ReadPipe {
            self.eof_received = true;
            return true;
        }
        false
    }

    /// The queue was flushed empty: what follows.
    pub fn drained(&mut self) -> Drained {
        if self.closing {
            self.lose();
            Drained::Lost
        } else if self.eof_requested && self.kind == Kind::Stream {
            Drained::ShutdownWrite
        } else {
            Drained::Nothing
        }
    }

    /// Marks the fd out of the poll's table; whether it was in it (the caller then
    /// takes it out).
    pub fn unregister(&mut self) -> bool {
        std::mem::take(&mut self.registered)
    }

    /// A sendfile starts (`true`) or ends; it waits for writability meanwhile.
    pub fn set_sendfile(&mut self, active: bool) -> bool {
        if active && self.closing {
            return false;
        }
        self.sendfile_active = active;
        true
    }

    /// Someone waits for the queue to drain and the fd to be writable (a
    /// sendfile about to start); `false` if the connection is lost already.
    pub fn await_writable(&mut self) -> bool {
        if self.lost > 0 {
            return false;
        }
        self.awaiting_writable = true;
        true
    }

    /// Whether someone waits for writability.
    pub fn awaits_writable(&self) -> bool {
        self.awaiting_writable
    }

    /// Whoever waited for writability is told now: whether someone did.
    pub fn take_awaiting_writable(&mut self) -> bool {
        std::mem::take(&mut self.awaiting_writable)
    }

    fn lose(&mut self) {
        self.lost = self.lost.max(1);
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

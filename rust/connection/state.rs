//! A connection's state and the rules of its lifecycle: what it waits for, what a
//! write, a close, an abort, an EOF do to it. Pure decisions: no I/O happens here
//! and no protocol is called (the driver, `driver.rs`, does both, with the state
//! unlocked), so every method is a plain function of the state.

use crate::connection::{Flow, Outbox};
use crate::IoEvents;

/// What the connection's fd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A connected stream socket: reads, writes, half-close.
    Stream,
    /// The read end of a pipe (a FIFO, a pty): EOF closes it.
    ReadPipe,
    /// The write end of a pipe; with `watch_close`, the fd is watched for its
    /// reader going away (it then reports an error or EOF), which closes it.
    WritePipe {
        /// The fd reports its reader's departure.
        watch_close: bool,
    },
    /// A datagram socket: whole datagrams each way, no EOF.
    Datagram,
}

/// Why a write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A read pipe only reads.
    ReadPipe,
    /// `write_eof()` was called.
    AfterEof,
    /// A sendfile is sending meanwhile.
    Sendfile,
}

/// What a write may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to write.
    Nothing,
    /// The connection is lost: the data is dropped (asyncio ignores it), and past a
    /// few such writes it warns.
    Dropped {
        /// This write is past the threshold.
        warn: bool,
    },
    /// Send it, or queue it.
    Open,
}

/// What `close()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// It was closing already.
    Already,
    /// Nothing to flush: the connection is lost now.
    LostNow,
    /// The queue is flushed first, then the connection is lost.
    Flushing,
}

/// What `write_eof()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Nothing (again, or closing).
    Nothing,
    /// A write pipe has no half-close: it closes.
    Close,
    /// Shut the write side now (nothing is queued).
    ShutdownNow,
    /// Shut it once the queue is flushed.
    AfterFlush,
}

/// What follows a queue flushed empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more.
    Nothing,
    /// It was closing: the connection is lost now.
    Lost,
    /// `write_eof()` waited for it: shut the write side.
    ShutdownWrite,
}

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
mod tests {
    use super::*;
    use crate::WriteQueue;

    fn started(kind: Kind) -> Connection<WriteQueue> {
        let mut c = Connection::new(kind);
        c.start();
        c
    }

    #[test]
    fn nothing_is_read_before_connection_made_ran() {
        let mut c = Connection::<WriteQueue>::new(Kind::Stream);
        assert_eq!(c.wanted(), IoEvents::NONE);
        assert!(!c.reads());
        c.start();
        assert_eq!(c.wanted(), IoEvents::READ);
        assert_eq!(c.interest_change(), Some(IoEvents::READ));
        c.set_interest(IoEvents::READ);
        assert_eq!(c.interest_change(), None, "in line: nothing to change");
    }

    #[test]
    fn queued_bytes_make_it_wait_for_writability_until_closed() {
        let mut c = started(Kind::Stream);
        c.outbox.push(b"abc");
        assert_eq!(c.wanted(), IoEvents::READ | IoEvents::WRITE);
        assert_eq!(c.close(), Closing::Flushing);
        assert_eq!(c.wanted(), IoEvents::WRITE, "closing: reads no more");
        assert_eq!(c.close(), Closing::Already);
        assert!(!c.is_lost());
        c.outbox.clear();
        assert_eq!(c.drained(), Drained::Lost);
        assert!(c.is_lost());
        assert_eq!(c.wanted(), IoEvents::NONE);
    }

    #[test]
    fn close_with_nothing_queued_is_lost_at_once() {
        let mut c = started(Kind::Datagram);
        assert_eq!(c.close(), Closing::LostNow);
        assert!(c.is_lost() && c.is_closing());
        assert!(c.force_close().is_none(), "lost once");
    }

    #[test]
    fn force_close_hands_back_the_queue_once() {
        let mut c = started(Kind::Stream);
        c.outbox.push(&[0; 100]);
        let dropped = c.force_close().unwrap();
        assert_eq!(dropped.len(), 100);
        assert!(c.outbox.is_empty());
        assert!(c.force_close().is_none());
    }

    #[test]
    fn writes_after_the_loss_are_dropped_and_warn_past_a_few() {
        let mut c = started(Kind::Stream);
        assert_eq!(c.gate(0, false), Gate::Nothing);
        assert_eq!(c.gate(0, true), Gate::Open, "an empty datagram is one");
        c.force_close();
        let warned: Vec<bool> = (0..6)
            .map(|_| match c.gate(1, false) {
                Gate::Dropped { warn } => warn,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(warned, [false, false, false, false, true, true]);
    }

    #[test]
    fn write_eof_waits_for_the_queue_and_refuses_what_cannot_be() {
        let mut c = started(Kind::Stream);
        c.outbox.push(b"x");
        assert_eq!(c.write_eof(), Ok(Eof::AfterFlush));
        assert_eq!(c.write_eof(), Ok(Eof::Nothing));
        assert_eq!(c.check_writable(), Err(Refused::AfterEof));
        c.outbox.clear();
        assert_eq!(c.drained(), Drained::ShutdownWrite);
        let mut pipe = started(Kind::WritePipe { watch_close: false });
        assert_eq!(pipe.write_eof(), Ok(Eof::Close), "a pipe has no half-close");
        let mut read = started(Kind::ReadPipe);
        assert_eq!(read.write_eof(), Err(Refused::ReadPipe));
        assert_eq!(read.check_writable(), Err(Refused::ReadPipe));
        let mut sending = started(Kind::Stream);
        assert!(sending.set_sendfile(true));
        assert_eq!(sending.check_writable(), Err(Refused::Sendfile));
        assert_eq!(sending.write_eof(), Err(Refused::Sendfile));
    }

    #[test]
    fn eof_keeps_a_stream_open_only_if_asked_and_a_read_pipe_never() {
        let mut c = started(Kind::Stream);
        assert!(c.eof_received(true));
        assert!(!c.reads(), "half-closed: no more reads");
        assert!(!started(Kind::Stream).eof_received(false));
        assert!(!started(Kind::ReadPipe).eof_received(true));
    }

    #[test]
    fn paused_reading_stops_reads_and_closing_freezes_it() {
        let mut c = started(Kind::Stream);
        assert!(c.set_reading_paused(true));
        assert!(!c.set_reading_paused(true), "no change");
        assert!(!c.is_reading());
        assert_eq!(c.wanted(), IoEvents::NONE);
        assert!(c.set_reading_paused(false));
        c.close();
        assert!(!c.set_reading_paused(true));
        assert!(!c.is_reading());
    }

    #[test]
    fn a_write_pipe_watches_for_its_reader_leaving_only_if_told() {
        assert_eq!(
            started(Kind::WritePipe { watch_close: true }).wanted(),
            IoEvents::READ
        );
        assert_eq!(
            started(Kind::WritePipe { watch_close: false }).wanted(),
            IoEvents::NONE
        );
        assert!(!started(Kind::WritePipe { watch_close: true }).reads());
    }

    #[test]
    fn a_sendfile_waits_for_writability_until_the_connection_is_lost() {
        let mut c = started(Kind::Stream);
        assert!(c.await_writable());
        assert!(c.wanted().contains(IoEvents::WRITE));
        assert!(c.take_awaiting_writable());
        assert!(!c.take_awaiting_writable());
        c.force_close();
        assert!(!c.await_writable());
        assert!(
            !c.set_sendfile(true),
            "a closing connection takes no sendfile"
        );
    }

    #[test]
    fn an_unregistered_fd_asks_for_no_interest_change() {
        let mut c = started(Kind::Stream);
        assert!(c.unregister());
        assert!(!c.unregister());
        assert_eq!(c.interest_change(), None);
    }
}

//! The connection core's fuzz harness: bytes become a sequence of what a
//! connection lives through — its methods (write, close, abort, write_eof, pause
//! and resume reading, water marks), its peer (sending, EOF, taking bytes,
//! resetting) and readiness events — on an in-memory host, each step checked
//! against what must hold. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/connection_ops.rs`) and the corpus replay of `cargo test`
//! (`tests/connection_fuzz_replay.rs`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;

use mioloop::connection::{driver, Connection, Flush, Host, Kind, Outbox, Read};
use mioloop::{IoEvents, WriteQueue};

/// The bytes a read takes at most (small, so reads come in several pieces).
const READ_CHUNK: usize = 7;

/// An fd, its peer, the poll and a protocol, in memory.
pub struct Fake {
    conn: RefCell<Connection<WriteQueue>>,
    // The fd and its peer.
    incoming: RefCell<VecDeque<u8>>,
    peer_eof: Cell<bool>,
    peer_reset: Cell<bool>,
    /// Bytes the fd takes before it would block.
    room: Cell<usize>,
    /// What the peer got, in order.
    pub delivered: RefCell<Vec<u8>>,
    shut_down: Cell<bool>,
    pub fail_shutdown: Cell<bool>,
    // The poll.
    registered: Cell<bool>,
    interest: Cell<IoEvents>,
    // The protocol.
    keep_open_at_eof: Cell<bool>,
    received: RefCell<Vec<u8>>,
    paused: Cell<bool>,
    pub lost: RefCell<Vec<Option<io::ErrorKind>>>,
}

impl Fake {
    /// A connection of `kind`, registered, not started.
    pub fn new(kind: Kind) -> Self {
        Fake {
            conn: RefCell::new(Connection::new(kind)),
            incoming: RefCell::default(),
            peer_eof: Cell::new(false),
            peer_reset: Cell::new(false),
            room: Cell::new(0),
            delivered: RefCell::default(),
            shut_down: Cell::new(false),
            fail_shutdown: Cell::new(false),
            registered: Cell::new(true),
            interest: Cell::new(IoEvents::NONE),
            keep_open_at_eof: Cell::new(false),
            received: RefCell::default(),
            paused: Cell::new(false),
            lost: RefCell::default(),
        }
    }

    /// Sends on the fake fd, as `send(2)` would.
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        if self.peer_reset.get() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        assert!(
            !self.shut_down.get(),
            "a send after the write side was shut"
        );
        let n = data.len().min(self.room.get());
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.room.set(self.room.get() - n);
        self.delivered.borrow_mut().extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// `write(data)` as a transport does it: sent at once if nothing waits.
    pub fn write(&self, data: &[u8]) -> Result<(), io::Error> {
        let written = driver::write(self, data.len(), false, |c| {
            if !c.outbox.is_empty() {
                c.outbox.push(data);
                return Ok(());
            }
            match self.send(data) {
                Ok(n) => c.outbox.push(&data[n..]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.outbox.push(data),
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        let _ = written;
        Ok(())
    }

    /// Readiness, as the poll would report it (only what is watched, or an error).
    pub fn ready(&self, events: IoEvents) -> Result<(), io::Error> {
        if !self.registered.get() {
            return Ok(());
        }
        let allowed = self.interest.get() | IoEvents::ERROR | IoEvents::READ_CLOSED;
        let events = IoEvents::from_bits_truncate(events.bits() & allowed.bits());
        if events.is_empty() {
            return Ok(());
        }
        driver::ready(self, events)
    }
}

impl Host for Fake {
    type Outbox = WriteQueue;
    type Error = io::Error;

    const READS_PER_EVENT: usize = 3;

    fn with<R>(&self, f: impl FnOnce(&mut Connection<WriteQueue>) -> R) -> R {
        f(&mut self.conn.borrow_mut())
    }

    fn watch(&self, events: IoEvents) -> io::Result<()> {
        assert!(self.registered.get(), "watched after it left the poll");
        self.interest.set(events);
        Ok(())
    }

    fn unwatch(&self) {
        self.registered.set(false);
    }

    fn read(&self) -> Read<io::Error> {
        assert!(self.lost.borrow().is_empty(), "a read after the loss");
        if self.peer_reset.get() {
            return Read::Fatal(io::ErrorKind::ConnectionReset.into(), "read");
        }
        let mut incoming = self.incoming.borrow_mut();
        if incoming.is_empty() {
            return if self.peer_eof.get() {
                Read::Eof
            } else {
                Read::Blocked
            };
        }
        let n = incoming.len().min(READ_CHUNK);
        self.received.borrow_mut().extend(incoming.drain(..n));
        if n == READ_CHUNK {
            Read::More
        } else {
            Read::Drained
        }
    }

    fn flush(&self) -> Flush<io::Error> {
        let flushed = self.with(|c| {
            c.outbox.flush(|bufs| {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]);
                self.send(first)
            })
        });
        match flushed {
            Ok(true) => Flush::Empty,
            Ok(false) => Flush::Pending,
            Err(e) => Flush::Fatal(e, "flush"),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        assert!(
            self.with(|c| c.outbox.is_empty()),
            "shut before the queue was sent"
        );
        if self.fail_shutdown.get() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        self.shut_down.set(true);
        Ok(())
    }

    fn eof_received(&self) -> io::Result<bool> {
        Ok(self.keep_open_at_eof.get())
    }

    fn flow(&self, pause: bool) -> io::Result<()> {
        assert_ne!(self.paused.get(), pause, "pause and resume alternate");
        self.paused.set(pause);
        Ok(())
    }

    fn lost(&self, exc: Option<io::Error>, _soon: bool) -> io::Result<()> {
        self.lost.borrow_mut().push(exc.map(|e| e.kind()));
        Ok(())
    }

    fn os_error(&self, err: io::Error) -> io::Error {
        err
    }
}

/// Lets the fake fd take `bytes` more.
pub fn give_room(h: &Fake, bytes: usize) {
    h.room.set(h.room.get() + bytes);
}

/// The input, read a byte at a time; an exhausted input ends the run.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }
}

/// Runs the sequence `data` spells, panicking at the first broken rule.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let kind = match input.byte().unwrap_or(0) % 3 {
        0 => Kind::Stream,
        1 => Kind::ReadPipe,
        _ => Kind::WritePipe { watch_close: true },
    };
    let h = Fake::new(kind);
    let mut written: Vec<u8> = Vec::new();
    let mut peer_sent: Vec<u8> = Vec::new();
    let mut started = false;
    let mut aborted = false;
    while let Some(op) = input.byte() {
        let arg = usize::from(input.byte().unwrap_or(0));
        let outcome = match op % 14 {
            0 if !started => {
                started = true;
                driver::start(&h)
            }
            1 => {
                let data: Vec<u8> = (0..arg * 37).map(|i| (written.len() + i) as u8).collect();
                let accepted =
                    !h.conn.borrow().is_lost() && h.conn.borrow().check_writable().is_ok();
                let result = h.write(&data);
                if accepted && !data.is_empty() {
                    written.extend_from_slice(&data);
                }
                result
            }
            2 => driver::close(&h),
            3 => {
                aborted |= !h.conn.borrow().is_lost();
                driver::force_close(&h, None)
            }
            4 => driver::write_eof(&h).map(drop),
            5 => driver::set_reading_paused(&h, arg % 2 == 0),
            6 => {
                let data: Vec<u8> = (0..arg).map(|i| (peer_sent.len() + i) as u8).collect();
                if !h.peer_eof.get() {
                    h.incoming.borrow_mut().extend(&data);
                    peer_sent.extend_from_slice(&data);
                }
                Ok(())
            }
            7 => {
                h.peer_eof.set(true);
                Ok(())
            }
            8 => {
                give_room(&h, arg * 53);
                Ok(())
            }
            9 if arg == 255 => {
                h.peer_reset.set(true);
                Ok(())
            }
            10 => {
                let mut events = IoEvents::NONE;
                for (bit, event) in [
                    IoEvents::READ,
                    IoEvents::WRITE,
                    IoEvents::ERROR,
                    IoEvents::READ_CLOSED,
                ]
                .into_iter()
                .enumerate()
                {
                    if arg & (1 << bit) != 0 {
                        events |= event;
                    }
                }
                h.ready(events)
            }
            11 => {
                let high = (arg * 97) as isize;
                let set = h
                    .conn
                    .borrow_mut()
                    .flow
                    .set_limits(Some(high), Some(high / 3));
                set.expect("high >= low >= 0");
                driver::flow(&h, true)
            }
            12 => {
                h.fail_shutdown.set(arg % 2 == 1);
                Ok(())
            }
            13 => {
                h.keep_open_at_eof.set(arg % 2 == 1);
                Ok(())
            }
            _ => Ok(()),
        };
        // Only a failing shutdown comes back to the host: everything else is the
        // connection's own to handle.
        if let Err(e) = outcome {
            assert_eq!(e.kind(), io::ErrorKind::NotConnected, "{e}");
        }
        check(&h, &written, &peer_sent, aborted);
    }
}

/// What must hold between any two steps.
fn check(h: &Fake, written: &[u8], peer_sent: &[u8], aborted: bool) {
    let conn = h.conn.borrow();
    let lost = h.lost.borrow();
    assert!(lost.len() <= 1, "connection_lost more than once: {lost:?}");
    assert_eq!(conn.is_lost(), !lost.is_empty(), "lost, and told so");
    let delivered = h.delivered.borrow();
    assert_eq!(
        &written[..delivered.len()],
        &delivered[..],
        "the peer gets the bytes in order"
    );
    let received = h.received.borrow();
    assert_eq!(
        &peer_sent[..received.len()],
        &received[..],
        "the protocol gets the bytes in order"
    );
    if conn.is_lost() {
        assert_eq!(conn.wanted(), IoEvents::NONE);
        assert!(!h.registered.get(), "a lost connection leaves the poll");
        if lost[0].is_none() && !aborted {
            assert_eq!(
                delivered.len(),
                written.len(),
                "a close sends everything first"
            );
        }
    } else {
        assert_eq!(
            delivered.len() + conn.outbox.size(),
            written.len(),
            "every byte written is sent or queued"
        );
        if h.registered.get() {
            assert_eq!(
                h.interest.get(),
                conn.wanted(),
                "the poll watches what it waits for"
            );
        }
    }
}

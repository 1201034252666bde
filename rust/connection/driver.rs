//! The lifecycle of a connection, once: what readiness runs (the read loop, the
//! flush, EOF), what each method does (write, close, abort, write_eof, pause and
//! resume), how it ends (flush then lost, or lost at once), for every kind of
//! connection and every host.
//!
//! Each step reads or changes the state inside [`Host::with`] and calls the
//! protocol, the poll and the fd outside it. An `Err` is what the host's protocol
//! or poll raised that the connection could not take as a fatal error of its own
//! (an exit, a failing `connection_lost`): the host's to route.

use std::io;

use crate::connection::{
    Closing, Connection, Drained, Eof, Flush, Gate, Host, Kind, Outbox, Read, Readable, Refused,
};
use crate::{IoEvents, WriteQueue};

/// Runs readiness `events` of the connection's fd.
pub fn ready<H: Host>(h: &H, events: IoEvents) -> Result<(), H::Error> {
    if events.intersects(IoEvents::READ | IoEvents::ERROR) {
        read_ready(h, events.contains(IoEvents::READ_CLOSED))?;
    }
    if events.intersects(IoEvents::WRITE | IoEvents::ERROR) {
        write_ready(h)?;
    }
    Ok(())
}

/// Reads until the fd is drained, or [`Host::READS_PER_EVENT`] reads: then the fd
/// is marked still ready. A short read means drained, unless the peer's EOF came
/// with the event (`eof_pending`): the next read returns it. On a write pipe the
/// event means its reader went away.
fn read_ready<H: Host>(h: &H, eof_pending: bool) -> Result<(), H::Error> {
    for _ in 0..H::READS_PER_EVENT {
        match h.with(|c| c.readable()) {
            Readable::Read => {}
            Readable::Stop => return Ok(()),
            Readable::ReaderGone => return reader_gone(h),
        }
        match h.read() {
            Read::Blocked => return Ok(()),
            Read::Drained if !eof_pending => return Ok(()),
            Read::Drained | Read::More | Read::Reported => {}
            Read::Eof => return eof(h),
            Read::Fatal(err, message) => return fatal(h, err, message),
        }
    }
    h.still_ready();
    Ok(())
}

/// The peer's EOF: the protocol decides whether the connection stays open for
/// writing (it then reads no more) or closes.
fn eof<H: Host>(h: &H) -> Result<(), H::Error> {
    let keep_open = match h.eof_received() {
        Ok(keep_open) => keep_open,
        Err(err) => return fatal(h, err, "Fatal error: protocol.eof_received() call failed."),
    };
    if h.with(|c| c.eof_received(keep_open)) {
        return sync(h);
    }
    close(h)
}

/// Sends what is queued; the protocol may resume once the queue is at the low
/// mark, and once it is all sent a closing connection is lost, a half-closing one
/// shuts its write side.
fn write_ready<H: Host>(h: &H) -> Result<(), H::Error> {
    let (skip, was_empty) = h.with(|c| {
        let empty = c.outbox.is_empty();
        (c.is_lost() || (empty && !c.awaits_writable()), empty)
    });
    if skip {
        return Ok(());
    }
    match h.flush() {
        // The fd was not drained: come back to what is left.
        Flush::Reported => {
            h.still_ready();
            return Ok(());
        }
        Flush::Fatal(err, message) => return fatal(h, err, message),
        Flush::Pending => return flow(h, false),
        Flush::Empty => {}
    }
    let waited = h.with(|c| c.take_awaiting_writable());
    sync(h)?;
    if waited {
        h.writable(true)?;
    }
    if was_empty {
        return Ok(()); // only a sendfile waited for this event
    }
    flow(h, false)?;
    match h.with(Connection::drained) {
        Drained::Nothing => Ok(()),
        Drained::ShutdownWrite => h.shutdown_write(),
        Drained::Lost => lost(h, None, false),
    }
}

/// The reader of a write pipe went away: the connection ends, with a broken pipe
/// if data was still waiting.
fn reader_gone<H: Host>(h: &H) -> Result<(), H::Error> {
    let Some(pending) = h.with(|c| (!c.is_lost()).then(|| !c.outbox.is_empty())) else {
        return Ok(());
    };
    let exc = pending.then(|| h.os_error(io::ErrorKind::BrokenPipe.into()));
    force_close(h, exc)
}

/// Brings the poll's interest in the fd in line with what the connection waits
/// for.
pub fn sync<H: Host>(h: &H) -> Result<(), H::Error> {
    let want = h.with(|c| c.interest_change());
    sync_to(h, want)
}

/// [`sync`] with the change already read from the state.
fn sync_to<H: Host>(h: &H, want: Option<IoEvents>) -> Result<(), H::Error> {
    let Some(want) = want else {
        return Ok(());
    };
    h.watch(want)?;
    h.with(|c| c.set_interest(want));
    Ok(())
}

/// Tells the protocol to pause (`pause`) or resume writing if the queue crossed
/// a water mark.
pub fn flow<H: Host>(h: &H, pause: bool) -> Result<(), H::Error> {
    if h.with(|c| flow_due(c, pause)) {
        h.flow(pause)?;
    }
    Ok(())
}

/// Whether the queue crossed the mark `pause` watches for.
fn flow_due<Q: Outbox>(c: &mut Connection<Q>, pause: bool) -> bool {
    !c.is_lost() && c.flow.due(pause, c.outbox.size())
}

/// `connection_made` ran: reading begins.
pub fn start<H: Host>(h: &H) -> Result<(), H::Error> {
    h.with(Connection::start);
    sync(h)
}

/// `pause_reading()` (`paused`) or `resume_reading()`.
pub fn set_reading_paused<H: Host>(h: &H, paused: bool) -> Result<(), H::Error> {
    if h.with(|c| c.set_reading_paused(paused)) {
        sync(h)?;
    }
    Ok(())
}

/// `close()`: the queue is sent first, then the connection is lost and
/// `connection_lost(None)` runs on the next iteration.
pub fn close<H: Host>(h: &H) -> Result<(), H::Error> {
    match h.with(Connection::close) {
        Closing::Already => Ok(()),
        Closing::Flushing => sync(h),
        Closing::LostNow => lost(h, None, true),
    }
}

/// `abort()`, or the end of a fatal error (`exc`): the queue is dropped, the
/// connection lost at once; `connection_lost(exc)` runs on the next iteration.
pub fn force_close<H: Host>(h: &H, exc: Option<H::Error>) -> Result<(), H::Error> {
    let Some(dropped) = h.with(Connection::force_close) else {
        return Ok(());
    };
    drop(dropped); // outside the host's lock: a datagram's address may be the host's object
    lost(h, exc, true)
}

/// The connection is lost: the fd leaves the poll, whoever waited for
/// writability hears it never comes, and the protocol's `connection_lost(exc)`
/// runs (on the next iteration with `soon`).
fn lost<H: Host>(h: &H, exc: Option<H::Error>, soon: bool) -> Result<(), H::Error> {
    leave_poll(h);
    if h.with(|c| c.take_awaiting_writable()) {
        h.writable(false)?;
    }
    h.lost(exc, soon)
}

/// The fd leaves the poll's table, once.
pub fn leave_poll<H: Host>(h: &H) {
    if h.with(Connection::unregister) {
        h.unwatch();
    }
}

/// A fatal error: reported as the host does, then the connection is closed at once
/// with it.
pub fn fatal<H: Host>(h: &H, err: H::Error, message: &'static str) -> Result<(), H::Error> {
    let exc = h.fatal(err, message)?;
    force_close(h, Some(exc))
}

/// `write_eof()`.
pub fn write_eof<H: Host>(h: &H) -> Result<Result<(), Refused>, H::Error> {
    match h.with(Connection::write_eof) {
        Err(refused) => Ok(Err(refused)),
        Ok(Eof::Nothing | Eof::AfterFlush) => Ok(Ok(())),
        Ok(Eof::Close) => close(h).map(Ok),
        Ok(Eof::ShutdownNow) => h.shutdown_write().map(Ok),
    }
}

/// A write of `len` bytes (or of one datagram: `whole`), once the state allows
/// it: `queue` sends or queues it with the state in hand (`Err`: the send failed).
/// The fd is then watched for writability if anything waits, and the protocol
/// paused past the high mark. What it returns: whether the write happened, or
/// why not.
pub fn write<H: Host>(
    h: &H,
    len: usize,
    whole: bool,
    queue: impl FnOnce(&mut Connection<H::Outbox>) -> io::Result<()>,
) -> Result<Result<Gate, Refused>, H::Error> {
    // One lock for the common case: the write, and what comes after it read
    // from the same state (the poll's interest, the high mark).
    let done = h.with(|c| {
        c.check_writable()?;
        let gate = c.gate(len, whole);
        let sent = (gate == Gate::Open)
            .then(|| queue(c).map(|()| (c.interest_change(), flow_due(c, true))));
        Ok((gate, sent))
    });
    let (gate, sent) = match done {
        Err(refused) => return Ok(Err(refused)),
        Ok(done) => done,
    };
    let Some(sent) = sent else {
        return Ok(Ok(gate));
    };
    match sent.map_err(|e| h.os_error(e)).and_then(|(want, pause)| {
        sync_to(h, want)?;
        Ok(pause)
    }) {
        Ok(true) => h.flow(true)?,
        Ok(false) => {}
        Err(err) => fatal(h, err, WRITE_FAILED)?,
    }
    Ok(Ok(gate))
}

/// How a failed send or flush is reported.
const WRITE_FAILED: &str = "Fatal write error on socket transport";

/// Sends `data` on a stream's fd now if nothing is queued, and queues what the fd
/// did not take; `Err`: the send failed.
pub fn send_or_queue(queue: &mut WriteQueue, kind: Kind, fd: i32, data: &[u8]) -> io::Result<()> {
    if !queue.is_empty() {
        queue.push(data);
        return Ok(());
    }
    match send(kind, fd, data) {
        Ok(n) => queue.push(&data[n..]),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => queue.push(data),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sends what a stream's queue holds on `fd`, as far as it takes it.
pub fn flush_stream<H: Host<Outbox = WriteQueue>>(h: &H, fd: i32) -> Flush<H::Error> {
    let flushed = h.with(|c| {
        let kind = c.kind();
        c.outbox.flush(|bufs| send_vectored(kind, fd, bufs))
    });
    match flushed {
        Ok(true) => Flush::Empty,
        Ok(false) => Flush::Pending,
        Err(e) => Flush::Fatal(h.os_error(e), WRITE_FAILED),
    }
}

/// One read from a stream's `fd` into `buf`, handed to `deliver` if bytes came;
/// `failed` names the protocol's method if `deliver` fails.
pub fn read_stream<H: Host>(
    h: &H,
    fd: i32,
    buf: &mut [u8],
    deliver: impl FnOnce(&[u8]) -> Result<(), H::Error>,
    failed: &'static str,
) -> Read<H::Error> {
    match crate::io::read(fd, buf) {
        Ok(0) => Read::Eof,
        Ok(n) => match deliver(&buf[..n]) {
            Ok(()) if n < buf.len() => Read::Drained,
            Ok(()) => Read::More,
            Err(e) => Read::Fatal(e, failed),
        },
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Blocked,
        Err(e) => Read::Fatal(h.os_error(e), "Fatal read error on socket transport"),
    }
}

/// `send` on a socket (no `SIGPIPE`), `write` on a pipe.
fn send(kind: Kind, fd: i32, data: &[u8]) -> io::Result<usize> {
    match kind {
        Kind::Stream | Kind::Datagram => crate::io::send(fd, data),
        Kind::ReadPipe | Kind::WritePipe { .. } => crate::io::write(fd, data),
    }
}

/// Several buffers in one call.
pub fn send_vectored(kind: Kind, fd: i32, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    match kind {
        Kind::Stream | Kind::Datagram => crate::io::send_vectored(fd, bufs),
        Kind::ReadPipe | Kind::WritePipe { .. } => crate::io::write_vectored(fd, bufs),
    }
}

//! What readiness runs on a stream transport: reads into the protocol, flushing
//! the write buffer, EOF, and the fatal-error path that ends a connection.

use std::io;

use mio::Token;
use pyo3::exceptions::{PyBrokenPipeError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::bytes_like::with_writable;
use super::common;
use super::stream::{Kind, StreamTransport};
use crate::python::errors;
use crate::IoEvents;

/// The size of a read (and of each loop's shared read buffer).
const READ_SIZE: usize = 256 * 1024;

/// Full reads per readiness event before the transport lets other work run; the
/// fd is then re-armed so the rest is read on a later iteration.
const READS_PER_EVENT: usize = 4;

/// How one read went.
enum Read {
    /// A short read: nothing more to read until the next event (unless the
    /// peer's EOF is pending).
    Drained,
    /// `WouldBlock`: nothing more to read until the next event.
    Blocked,
    /// The read filled the buffer: more may be waiting.
    More,
    /// End of stream.
    Eof,
    /// The read failed, or the protocol raised: a fatal error with this message.
    Failed(PyErr, &'static str),
}

impl StreamTransport {
    /// Runs readiness `events` of the transport's fd (`token`).
    pub(crate) fn on_ready(slf: &Bound<'_, Self>, token: Token, events: IoEvents) -> PyResult<()> {
        if let Kind::WritePipe { .. } = slf.get().kind {
            if events.intersects(IoEvents::READ | IoEvents::ERROR) {
                return Self::reader_gone(slf);
            }
        } else if events.intersects(IoEvents::READ | IoEvents::ERROR) {
            Self::read_ready(slf, token, events.contains(IoEvents::READ_CLOSED))?;
        }
        if events.intersects(IoEvents::WRITE | IoEvents::ERROR) {
            Self::write_ready(slf)?;
        }
        Ok(())
    }

    /// Reads until the socket is drained. A short read means it is, unless the
    /// peer's EOF came with the event: then the next read returns it.
    fn read_ready(slf: &Bound<'_, Self>, token: Token, eof_pending: bool) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        for _ in 0..READS_PER_EVENT {
            let (protocol, buffered) = {
                let st = this.lock();
                match &st.protocol {
                    Some(p) if st.wanted(this.kind).contains(IoEvents::READ) => {
                        (p.clone_ref(py), st.buffered)
                    }
                    _ => return Ok(()),
                }
            };
            let protocol = protocol.bind(py);
            let read = if buffered {
                this.read_into_buffer(protocol)
            } else {
                this.read_to_bytes(protocol)
            };
            match read {
                Read::Blocked => return Ok(()),
                Read::Drained if !eof_pending => return Ok(()),
                Read::Drained | Read::More => {}
                Read::Eof => return Self::on_eof(slf, protocol),
                Read::Failed(err, message) => return Self::fatal_error(slf, err, message),
            }
        }
        this.shared.lock().still_ready(token);
        Ok(())
    }

    /// `Protocol`: a read into the loop's buffer, passed on as `bytes`.
    fn read_to_bytes(&self, protocol: &Bound<'_, PyAny>) -> Read {
        let py = protocol.py();
        // The buffer is taken out while in use: no Python code runs meanwhile, and a
        // re-entrant read (none is expected) would get a buffer of its own.
        let mut buf = std::mem::take(&mut *self.shared.read_buffer());
        if buf.len() < READ_SIZE {
            buf.resize(READ_SIZE, 0);
        }
        let got = crate::io::read(self.fd, &mut buf).map(|n| (n, PyBytes::new(py, &buf[..n])));
        *self.shared.read_buffer() = buf;
        deliver(
            got,
            READ_SIZE,
            |data| protocol.call_method1(intern!(py, "data_received"), (data,)),
            "Fatal error: protocol.data_received() call failed.",
        )
    }

    /// `BufferedProtocol`: a read straight into the protocol's own buffer.
    fn read_into_buffer(&self, protocol: &Bound<'_, PyAny>) -> Read {
        let py = protocol.py();
        let failed = "Fatal error: protocol.get_buffer() call failed.";
        let buf = match protocol.call_method1(intern!(py, "get_buffer"), (-1,)) {
            Ok(buf) => buf,
            Err(e) => return Read::Failed(e, failed),
        };
        let got = with_writable(&buf, |mem| {
            if mem.is_empty() {
                return Err(PyRuntimeError::new_err(
                    "get_buffer() returned an empty buffer",
                ));
            }
            Ok((crate::io::read(self.fd, mem), mem.len()))
        });
        drop(buf);
        let (read, size) = match got.and_then(|r| r) {
            Ok(done) => done,
            Err(e) => return Read::Failed(e, failed),
        };
        deliver(
            read.map(|n| (n, n)),
            size,
            |n| protocol.call_method1(intern!(py, "buffer_updated"), (n,)),
            "Fatal error: protocol.buffer_updated() call failed.",
        )
    }

    /// The reader of a write pipe went away: the transport closes, with
    /// `BrokenPipeError` if data was still waiting to be written.
    fn reader_gone(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let pending = {
            let st = slf.get().lock();
            if st.conn_lost > 0 {
                return Ok(());
            }
            !st.queue.is_empty()
        };
        let exc = pending
            .then(|| PyBrokenPipeError::new_err("the pipe's reader went away").into_value(py))
            .map(|e| e.into_bound(py).into_any());
        Self::force_close(slf, exc)
    }

    /// The peer closed its end: the protocol's `eof_received()` decides whether the
    /// transport stays open for writing (it returned true) or closes.
    fn on_eof(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let keep_open = match protocol.call_method0(intern!(py, "eof_received")) {
            Ok(result) => result.is_truthy()?,
            Err(e) => {
                return Self::fatal_error(
                    slf,
                    e,
                    "Fatal error: protocol.eof_received() call failed.",
                )
            }
        };
        // A read pipe closes at EOF whatever eof_received() says.
        if keep_open && this.kind != Kind::ReadPipe {
            let mut st = this.lock();
            st.eof_received = true;
            return this.sync_interest(&mut st);
        }
        slf.call_method0(intern!(py, "close")).map(drop)
    }

    fn write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let (flushed, closing, eof, drained_before) = {
            let mut st = this.lock();
            if st.conn_lost > 0 || (st.queue.is_empty() && st.writable_waiter.is_none()) {
                return Ok(());
            }
            let drained_before = st.queue.is_empty();
            let flushed = st.queue.flush(|bufs| this.send_vectored(bufs));
            if flushed.is_err() {
                st.queue.clear();
            }
            (flushed, st.closing, st.eof_requested, drained_before)
        };
        match flushed {
            Err(e) => Self::fatal_error(
                slf,
                errors::os_error(e),
                "Fatal write error on socket transport",
            ),
            Ok(false) => Ok(()),
            Ok(true) => {
                let waiter = {
                    let mut st = this.lock();
                    let waiter = st.writable_waiter.take();
                    this.sync_interest(&mut st)?;
                    waiter
                };
                if let Some(waiter) = waiter {
                    super::stream_sendfile::resolve_waiter(waiter.bind(slf.py()))?;
                }
                if drained_before {
                    // Only a sendfile waited for this event: nothing was queued.
                    return Ok(());
                }
                Self::maybe_resume_protocol(slf)?;
                if closing {
                    let owner = this.mark_lost(&mut this.lock());
                    drop(owner);
                    let py = slf.py();
                    slf.call_method1(intern!(py, "_call_connection_lost"), (py.None(),))?;
                } else if eof {
                    crate::io::shutdown_write(this.fd).map_err(errors::os_error)?;
                }
                Ok(())
            }
        }
    }

    /// Ends the connection after an error: reported to the loop's exception
    /// handler (an `OSError` is the peer's doing and is not), then
    /// `connection_lost(exc)`. `KeyboardInterrupt` and `SystemExit` propagate.
    pub(super) fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let protocol = || this.lock().protocol.as_ref().map(|p| p.clone_ref(py));
        let event_loop = this.event_loop.bind(py);
        let exc = common::fatal_exception(event_loop, slf.as_any(), protocol, err, message)?;
        Self::force_close(slf, Some(exc))
    }

    /// Calls the protocol's `pause_writing()` once the buffer passes the high-water
    /// mark.
    pub(super) fn maybe_pause_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::flow_control(slf, true)
    }

    /// Calls the protocol's `resume_writing()` once the buffer drains to the
    /// low-water mark.
    fn maybe_resume_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::flow_control(slf, false)
    }

    fn flow_control(slf: &Bound<'_, Self>, pause: bool) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let protocol = {
            let mut st = this.lock();
            let buffered = st.queue.len();
            let due = st.flow.due(pause, buffered);
            let Some(protocol) = st
                .protocol
                .as_ref()
                .filter(|_| due)
                .map(|p| p.clone_ref(py))
            else {
                return Ok(());
            };
            protocol
        };
        common::tell_flow(this.event_loop.bind(py), slf.as_any(), &protocol, pause)
    }
}

/// How a read of up to `size` bytes went, once `hand_over` gave what it read
/// (`(bytes read, what to hand over)`) to the protocol.
fn deliver<'py, T>(
    read: io::Result<(usize, T)>,
    size: usize,
    hand_over: impl FnOnce(T) -> PyResult<Bound<'py, PyAny>>,
    failed: &'static str,
) -> Read {
    match read {
        Ok((0, _)) => Read::Eof,
        Ok((n, data)) => match hand_over(data) {
            Ok(_) if n < size => Read::Drained,
            Ok(_) => Read::More,
            Err(e) => Read::Failed(e, failed),
        },
        Err(e) => os_failure(e),
    }
}

fn os_failure(err: io::Error) -> Read {
    if err.kind() == io::ErrorKind::WouldBlock {
        return Read::Blocked;
    }
    Read::Failed(
        errors::os_error(err),
        "Fatal read error on socket transport",
    )
}

//! `StreamTransport`: asyncio's transport for a connected TCP or Unix stream
//! socket, with the reads and the write buffer in Rust.
//!
//! The transport owns its fd's entry in the loop's fd table, edge-triggered:
//! reads go on until the socket is drained (a short read or `WouldBlock`), and a
//! write that the socket does not take at once is queued here, not in Python.
//! This module is its Python API; `stream_io.rs` is what readiness runs.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::bytes_like::with_bytes;
use crate::python::callback::PyCallback;
use crate::python::core::LoopCore;
use crate::python::errors;
use crate::python::fd_owner::FdOwner;
use crate::python::shared::Shared;
use crate::{IoEvents, Trigger, WriteQueue};

/// asyncio's default high-water mark of the write buffer.
const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// After this many writes to a lost connection, each further one logs a warning
/// (asyncio's threshold).
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

/// A stream transport's state, behind its mutex (never held while Python runs).
pub(super) struct State {
    /// `None` once `connection_lost` ran.
    pub(super) protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`: reads go into its buffer.
    pub(super) buffered: bool,
    pub(super) server: Option<Py<PyAny>>,
    pub(super) queue: WriteQueue,
    pub(super) high_water: usize,
    pub(super) low_water: usize,
    pub(super) protocol_paused: bool,
    pub(super) reading_paused: bool,
    /// `connection_made` ran: reading may begin.
    pub(super) started: bool,
    /// The peer's EOF arrived and the protocol kept the transport open.
    pub(super) eof_received: bool,
    pub(super) closing: bool,
    /// `write_eof()` was called.
    pub(super) eof_requested: bool,
    /// Non-zero once the connection is lost (counts writes made after that).
    pub(super) conn_lost: u32,
    /// The fd is in the loop's fd table.
    pub(super) registered: bool,
    /// The events the fd table watches for now.
    pub(super) interest: IoEvents,
}

impl State {
    /// The events the transport needs now.
    pub(super) fn wanted(&self) -> IoEvents {
        let mut events = IoEvents::NONE;
        if self.conn_lost > 0 {
            return events;
        }
        if self.started && !self.reading_paused && !self.closing && !self.eof_received {
            events |= IoEvents::READ;
        }
        if !self.queue.is_empty() {
            events |= IoEvents::WRITE;
        }
        events
    }
}

/// asyncio's stream transport on mioloop's engine.
#[pyclass(frozen, weakref, module = "mioloop._mioloop")]
pub(crate) struct StreamTransport {
    pub(super) event_loop: Py<PyAny>,
    pub(super) shared: Arc<Shared>,
    pub(super) fd: RawFd,
    pub(super) sock: Py<PyAny>,
    extra: Py<PyDict>,
    state: Mutex<State>,
}

fn is_buffered(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = protocol.py();
    let buffered = py
        .import(intern!(py, "asyncio"))?
        .getattr(intern!(py, "BufferedProtocol"))?;
    protocol.is_instance(&buffered)
}

impl StreamTransport {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings the fd table's interest in line with what the state wants.
    pub(super) fn sync_interest(&self, st: &mut State) -> PyResult<()> {
        let want = st.wanted();
        if !st.registered || want == st.interest {
            return Ok(());
        }
        self.shared
            .lock()
            .update_fd(self.fd, want)
            .map_err(errors::fd_error)?;
        st.interest = want;
        Ok(())
    }

    /// Takes the fd out of the loop's table, if it is still this transport's; the
    /// entry is returned for the caller to drop outside every lock.
    pub(super) fn unregister(&self, st: &mut State) -> Option<FdOwner> {
        if !std::mem::take(&mut st.registered) {
            return None;
        }
        let mut reactor = self.shared.lock();
        let ours = matches!(
            reactor.fds.get(self.fd).map(|e| &e.handler),
            Some(FdOwner::Transport(t)) if std::ptr::eq(t.get(), self)
        );
        ours.then(|| reactor.remove_fd(self.fd)).flatten()
    }

    /// Schedules `func(*args)` on the loop's next iteration.
    pub(super) fn call_soon(
        &self,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        if self.shared.is_closed() {
            return Ok(());
        }
        let callback = PyCallback::asyncio(func, args, None, "call_soon")?;
        self.shared.push(callback);
        Ok(())
    }

    /// Drops the buffer and the fd at once; `connection_lost(exc)` follows on the
    /// next iteration.
    pub(super) fn force_close(
        slf: &Bound<'_, Self>,
        exc: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let this = slf.get();
        let owner = {
            let mut st = this.lock();
            if st.conn_lost > 0 {
                return Ok(());
            }
            st.queue.clear();
            st.closing = true;
            st.conn_lost += 1;
            this.unregister(&mut st)
        };
        drop(owner);
        this.schedule_connection_lost(slf, exc)
    }

    fn schedule_connection_lost(
        &self,
        slf: &Bound<'_, Self>,
        exc: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let func = slf.getattr(intern!(py, "_call_connection_lost"))?;
        let exc = exc.unwrap_or_else(|| py.None().into_bound(py));
        self.call_soon(&func, &PyTuple::new(py, [exc])?)
    }

    /// Writes `data` now if nothing is queued, else queues it; returns the error
    /// of a failed send.
    fn send_or_queue(&self, st: &mut State, data: &[u8]) -> Result<(), std::io::Error> {
        if !st.queue.is_empty() {
            st.queue.push(data);
            return Ok(());
        }
        match crate::io::send(self.fd, data) {
            Ok(n) => st.queue.push(&data[n..]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => st.queue.push(data),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// After a write: watch for writability if bytes are queued, and pause the
    /// protocol past the high-water mark; a failed send is a fatal error.
    fn after_write(slf: &Bound<'_, Self>, sent: Result<(), std::io::Error>) -> PyResult<()> {
        let this = slf.get();
        if let Err(e) = sent {
            return Self::fatal_error(slf, PyErr::from(e), "Fatal write error on socket transport");
        }
        let interest = {
            let mut st = this.lock();
            this.sync_interest(&mut st)
        };
        if let Err(e) = interest {
            return Self::fatal_error(slf, e, "Fatal write error on socket transport");
        }
        Self::maybe_pause_protocol(slf)
    }

    fn write_limits(high: Option<usize>, low: Option<usize>) -> PyResult<(usize, usize)> {
        let (high, low) = match (high, low) {
            (None, None) => (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER / 4),
            (Some(high), None) => (high, high / 4),
            (None, Some(low)) => (low.saturating_mul(4), low),
            (Some(high), Some(low)) => (high, low),
        };
        if high < low {
            return Err(PyValueError::new_err(format!(
                "high ({high}) must be >= low ({low}) must be >= 0"
            )));
        }
        Ok((high, low))
    }
}

#[pymethods]
impl LoopCore {
    /// Makes the stream transport of a connected, non-blocking socket: the fd is
    /// registered at once, `protocol.connection_made(transport)` runs on the next
    /// iteration, and reading starts after it.
    #[pyo3(signature = (sock, protocol, extra, server = None))]
    fn _make_stream_transport(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        extra: &Bound<'_, PyDict>,
        server: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        let py = slf.py();
        let this = slf.get();
        this.check_process()?;
        let fd = super::super::args::fileno(sock)?;
        let (high_water, low_water) = StreamTransport::write_limits(None, None)?;
        let transport = Py::new(
            py,
            StreamTransport {
                event_loop: slf.clone().into_any().unbind(),
                shared: this.shared.clone(),
                fd,
                sock: sock.clone().unbind(),
                extra: extra.clone().unbind(),
                state: Mutex::new(State {
                    protocol: Some(protocol.clone().unbind()),
                    buffered: is_buffered(protocol)?,
                    server: server.filter(|s| !s.is_none()).map(|s| s.clone().unbind()),
                    queue: WriteQueue::new(),
                    high_water,
                    low_water,
                    protocol_paused: false,
                    reading_paused: false,
                    started: false,
                    eof_received: false,
                    closing: false,
                    eof_requested: false,
                    conn_lost: 0,
                    registered: true,
                    interest: IoEvents::NONE,
                }),
            },
        )?;
        let owner = FdOwner::Transport(transport.clone_ref(py));
        let added = this.lock().add_fd(fd, IoEvents::NONE, Trigger::Edge, owner);
        drop(added.map_err(errors::fd_error)?);
        let bound = transport.bind(py);
        let t = bound.get();
        t.call_soon(
            &protocol.getattr(intern!(py, "connection_made"))?,
            &PyTuple::new(py, [bound])?,
        )?;
        t.call_soon(
            &bound.getattr(intern!(py, "_start_reading"))?,
            &PyTuple::empty(py),
        )?;
        if let Some(server) = server.filter(|s| !s.is_none()) {
            server.call_method1(intern!(py, "_attach"), (bound,))?;
        }
        Ok(transport)
    }
}

#[pymethods]
impl StreamTransport {
    /// Writes `data` (bytes-like) without blocking: what the socket does not take
    /// at once is buffered and sent when it is writable.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = slf.get();
        let sent = with_bytes(data, |bytes| {
            let mut st = this.lock();
            if st.eof_requested {
                return Err(PyRuntimeError::new_err(
                    "Cannot call write() after write_eof()",
                ));
            }
            if bytes.is_empty() {
                return Ok(None);
            }
            if st.conn_lost > 0 {
                st.conn_lost += 1;
                return Ok(Some(Ok(st.conn_lost > LOG_THRESHOLD_FOR_CONNLOST_WRITES)));
            }
            Ok(Some(this.send_or_queue(&mut st, bytes).map(|()| false)))
        })??;
        match sent {
            None => Ok(()),
            Some(Ok(true)) => {
                let py = slf.py();
                let logger = py
                    .import(intern!(py, "logging"))?
                    .call_method1(intern!(py, "getLogger"), ("asyncio",))?;
                logger
                    .call_method1(intern!(py, "warning"), ("socket.send() raised exception.",))?;
                Ok(())
            }
            Some(Ok(false)) => Self::after_write(slf, Ok(())),
            Some(Err(e)) => Self::after_write(slf, Err(e)),
        }
    }

    /// Writes every bytes-like object of `list_of_data`, in order.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        let chunks: Vec<Bound<'_, PyAny>> = list_of_data.try_iter()?.collect::<PyResult<_>>()?;
        // All or nothing: a bad item is refused before any byte is queued.
        for chunk in &chunks {
            with_bytes(chunk, |_| ())?;
        }
        let this = slf.get();
        {
            let st = this.lock();
            if st.eof_requested {
                return Err(PyRuntimeError::new_err(
                    "Cannot call writelines() after write_eof()",
                ));
            }
            if st.conn_lost > 0 || !st.queue.is_empty() {
                drop(st);
                for chunk in &chunks {
                    Self::write(slf, chunk)?;
                }
                return Ok(());
            }
        }
        // Nothing queued: gather everything, then one vectored send.
        let mut st = this.lock();
        for chunk in &chunks {
            with_bytes(chunk, |bytes| st.queue.push(bytes))?;
        }
        let flushed = st
            .queue
            .flush(|bufs| crate::io::send_vectored(this.fd, bufs));
        drop(st);
        Self::after_write(slf, flushed.map(drop))
    }

    /// Closes the write end after the buffered data is sent; the peer sees EOF.
    fn write_eof(&self) -> PyResult<()> {
        let mut st = self.lock();
        if st.closing || st.eof_requested {
            return Ok(());
        }
        st.eof_requested = true;
        if st.queue.is_empty() {
            crate::io::shutdown_write(self.fd)?;
        }
        Ok(())
    }

    /// Whether `write_eof()` is supported: always, for a stream socket.
    fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the transport: buffered data is still sent, then the protocol's
    /// `connection_lost(None)` is called and the socket closed. No more data is
    /// received.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let (owner, lost) = {
            let mut st = this.lock();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
            if st.queue.is_empty() {
                st.conn_lost += 1;
                (this.unregister(&mut st), true)
            } else {
                this.sync_interest(&mut st)?;
                (None, false)
            }
        };
        drop(owner);
        if lost {
            this.schedule_connection_lost(slf, None)?;
        }
        Ok(())
    }

    /// Closes the transport at once, dropping buffered data; the protocol's
    /// `connection_lost(None)` is called on the next iteration.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::force_close(slf, None)
    }

    /// Whether the transport is closing or closed.
    fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Stops calling the protocol's `data_received` until `resume_reading()`.
    fn pause_reading(&self) -> PyResult<()> {
        let mut st = self.lock();
        if st.closing || st.reading_paused {
            return Ok(());
        }
        st.reading_paused = true;
        self.sync_interest(&mut st)
    }

    /// Resumes receiving after `pause_reading()`; data that arrived meanwhile is
    /// delivered.
    fn resume_reading(&self) -> PyResult<()> {
        let mut st = self.lock();
        if st.closing || !st.reading_paused {
            return Ok(());
        }
        st.reading_paused = false;
        self.sync_interest(&mut st)
    }

    /// Whether the transport is receiving.
    fn is_reading(&self) -> bool {
        let st = self.lock();
        !st.reading_paused && !st.closing
    }

    /// How many bytes are buffered, waiting for the socket.
    fn get_write_buffer_size(&self) -> usize {
        self.lock().queue.len()
    }

    /// The `(low, high)` water marks of the write buffer.
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        let st = self.lock();
        (st.low_water, st.high_water)
    }

    /// Sets the water marks: past `high` buffered bytes the protocol's
    /// `pause_writing()` is called, and `resume_writing()` once they drain to `low`.
    #[pyo3(signature = (high = None, low = None))]
    fn set_write_buffer_limits(
        slf: &Bound<'_, Self>,
        high: Option<isize>,
        low: Option<isize>,
    ) -> PyResult<()> {
        let to_size = |v: Option<isize>| -> PyResult<Option<usize>> {
            v.map(|v| {
                usize::try_from(v).map_err(|_| {
                    PyValueError::new_err(format!(
                        "high ({}) must be >= low ({}) must be >= 0",
                        high.map_or("None".into(), |h| h.to_string()),
                        low.map_or("None".into(), |l| l.to_string())
                    ))
                })
            })
            .transpose()
        };
        let (high, low) = Self::write_limits(to_size(high)?, to_size(low)?)?;
        {
            let mut st = slf.get().lock();
            st.high_water = high;
            st.low_water = low;
        }
        Self::maybe_pause_protocol(slf)
    }

    /// Information about the connection: ``socket``, ``sockname``, ``peername``.
    #[pyo3(signature = (name, default = None))]
    fn get_extra_info<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.extra.bind(py).get_item(name)? {
            Some(value) => value,
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    /// The protocol.
    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.lock().protocol.as_ref().map(|p| p.clone_ref(py))
    }

    /// Replaces the protocol.
    fn set_protocol(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let buffered = is_buffered(protocol)?;
        let old = {
            let mut st = self.lock();
            st.buffered = buffered;
            st.protocol.replace(protocol.clone().unbind())
        };
        drop(old);
        Ok(())
    }

    /// Begins reading (scheduled after ``connection_made``).
    fn _start_reading(&self) -> PyResult<()> {
        let mut st = self.lock();
        st.started = true;
        self.sync_interest(&mut st)
    }

    /// Calls the protocol's ``connection_lost(exc)`` and closes the socket.
    fn _call_connection_lost(slf: &Bound<'_, Self>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (protocol, server, owner) = {
            let mut st = this.lock();
            (
                st.protocol.take(),
                st.server.take(),
                this.unregister(&mut st),
            )
        };
        drop(owner);
        let lost = match &protocol {
            Some(protocol) => protocol
                .call_method1(py, intern!(py, "connection_lost"), (exc,))
                .map(drop),
            None => Ok(()),
        };
        let closed = this.sock.call_method0(py, intern!(py, "close")).map(drop);
        let detached = match &server {
            Some(server) => server
                .call_method1(py, intern!(py, "_detach"), (slf,))
                .map(drop),
            None => Ok(()),
        };
        lost.and(closed).and(detached)
    }

    fn __repr__(&self) -> String {
        let st = self.lock();
        let state = if st.conn_lost > 0 {
            "closed"
        } else if st.closing {
            "closing"
        } else {
            "open"
        };
        format!(
            "<StreamTransport fd={} {state} buffered={}>",
            self.fd,
            st.queue.len()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.sock)?;
        visit.call(&self.extra)?;
        if let Ok(st) = self.state.try_lock() {
            visit.call(&st.protocol)?;
            visit.call(&st.server)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = {
            let mut st = self.lock();
            (st.protocol.take(), st.server.take())
        };
        drop(taken);
    }
}

//! `StreamTransport`: asyncio's transport for a connected TCP or Unix stream
//! socket, with the reads and the write buffer in Rust.
//!
//! The transport owns its fd's entry in the loop's fd table, edge-triggered:
//! reads go on until the socket is drained (a short read or `WouldBlock`), and a
//! write that the socket does not take at once is queued here, not in Python.
//! This module is its state and how it is made; `stream_api.rs` is its Python API
//! and `stream_io.rs` what readiness runs.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::common;
use crate::python::core::LoopCore;
use crate::python::errors;
use crate::python::fd_owner::FdOwner;
use crate::python::shared::Shared;
use crate::{IoEvents, Trigger, WriteQueue};

/// What the transport's fd is: a connected stream socket, or one end of a pipe
/// (a FIFO, a pty, or a socket used as a pipe by `connect_read_pipe` /
/// `connect_write_pipe`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Socket,
    /// Read only: EOF closes the transport.
    ReadPipe,
    /// Write only; with `watch_close`, the fd is watched for the reader going
    /// away (a pipe or socket: it reports an error or EOF then), which closes the
    /// transport.
    WritePipe {
        watch_close: bool,
    },
}

/// A stream transport's state, behind its mutex (never held while Python runs).
pub(super) struct State {
    /// `None` once `connection_lost` ran.
    pub(super) protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`: reads go into its buffer.
    pub(super) buffered: bool,
    pub(super) server: Option<Py<PyAny>>,
    pub(super) queue: WriteQueue,
    pub(super) flow: common::Flow,
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
    /// `loop.sendfile` is sending from a file: `write()` is refused meanwhile.
    pub(super) sendfile_active: bool,
    /// A future resolved once the buffer is empty and the socket writable
    /// (`_wait_writable`, for `loop.sendfile`).
    pub(super) writable_waiter: Option<Py<PyAny>>,
}

impl State {
    /// Refuses `method` (`write`, `writelines`) after `write_eof()` or while a
    /// sendfile is in progress.
    pub(super) fn check_writable(&self, kind: Kind, method: &str) -> PyResult<()> {
        if kind == Kind::ReadPipe {
            return Err(PyRuntimeError::new_err(format!(
                "{method}() on a read pipe transport: it only reads"
            )));
        }
        if self.eof_requested {
            return Err(PyRuntimeError::new_err(format!(
                "Cannot call {method}() after write_eof()"
            )));
        }
        if self.sendfile_active {
            return Err(PyRuntimeError::new_err(
                "unable to write; sendfile is in progress",
            ));
        }
        Ok(())
    }

    /// The events a transport of `kind` needs now.
    pub(super) fn wanted(&self, kind: Kind) -> IoEvents {
        let mut events = IoEvents::NONE;
        if self.conn_lost > 0 {
            return events;
        }
        let reads = match kind {
            Kind::Socket | Kind::ReadPipe => !self.reading_paused && !self.eof_received,
            Kind::WritePipe { watch_close } => watch_close,
        };
        if self.started && reads && !self.closing {
            events |= IoEvents::READ;
        }
        if !self.queue.is_empty() || self.writable_waiter.is_some() {
            events |= IoEvents::WRITE;
        }
        events
    }
}

/// asyncio's stream transport on mioloop's engine.
#[pyclass(frozen, weakref, dict, module = "mioloop._mioloop")]
pub(crate) struct StreamTransport {
    pub(super) event_loop: Py<PyAny>,
    pub(super) shared: Arc<Shared>,
    pub(super) fd: RawFd,
    /// A socket, or which end of a pipe (fixed when the transport is made).
    pub(super) kind: Kind,
    pub(super) sock: Py<PyAny>,
    pub(super) extra: Py<PyDict>,
    /// A copy of the context current when the transport was made: the protocol's
    /// callbacks that I/O triggers run in it (asyncio's reader and writer handles
    /// hold such a copy).
    pub(super) context: Py<PyAny>,
    pub(super) state: Mutex<State>,
}

pub(super) fn is_buffered(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
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

    /// Refuses `method` (`pause_reading`...) on a write pipe, which only writes:
    /// `NotImplementedError`, as asyncio's `ReadTransport` methods raise.
    pub(super) fn check_reads(&self, method: &str) -> PyResult<()> {
        if let Kind::WritePipe { .. } = self.kind {
            return Err(pyo3::exceptions::PyNotImplementedError::new_err(format!(
                "{method}() on a write pipe transport: it only writes"
            )));
        }
        Ok(())
    }

    /// Brings the fd table's interest in line with what the state wants.
    pub(super) fn sync_interest(&self, st: &mut State) -> PyResult<()> {
        let want = st.wanted(self.kind);
        common::sync_interest(&self.shared, self.fd, st.registered, &mut st.interest, want)
    }

    /// Takes the fd out of the loop's table, if it is still this transport's; the
    /// entry is returned for the caller to drop outside every lock.
    pub(super) fn unregister(&self, st: &mut State) -> Option<FdOwner> {
        if !std::mem::take(&mut st.registered) {
            return None;
        }
        common::take_fd_if_ours(&self.shared, self.fd, (self as *const Self).cast())
    }

    /// The connection is lost from now on: nothing more is read or written, and
    /// the fd leaves the loop's table (its entry is returned, to drop outside every
    /// lock). `connection_lost` is the caller's to call or schedule.
    pub(super) fn mark_lost(&self, st: &mut State) -> Option<FdOwner> {
        st.conn_lost += 1;
        self.unregister(st)
    }

    /// Schedules `func(*args)` on the loop's next iteration.
    pub(super) fn call_soon(
        &self,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        common::call_soon(&self.shared, func, args)
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
            this.mark_lost(&mut st)
        };
        drop(owner);
        this.schedule_connection_lost(slf, exc)
    }

    pub(super) fn schedule_connection_lost(
        &self,
        slf: &Bound<'_, Self>,
        exc: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let func = slf.getattr(intern!(py, "_call_connection_lost"))?;
        let exc = exc.unwrap_or_else(|| py.None().into_bound(py));
        self.call_soon(&func, &PyTuple::new(py, [exc])?)
    }

    /// Sends `data` on the fd: `send` on a socket (no `SIGPIPE`), `write` on a pipe.
    pub(super) fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self.kind {
            Kind::Socket => crate::io::send(self.fd, data),
            Kind::ReadPipe | Kind::WritePipe { .. } => crate::io::write(self.fd, data),
        }
    }

    /// Sends several buffers in one call.
    pub(super) fn send_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        match self.kind {
            Kind::Socket => crate::io::send_vectored(self.fd, bufs),
            Kind::ReadPipe | Kind::WritePipe { .. } => crate::io::write_vectored(self.fd, bufs),
        }
    }

    /// Writes `data` now if nothing is queued, else queues it; returns the error
    /// of a failed send.
    pub(super) fn send_or_queue(&self, st: &mut State, data: &[u8]) -> Result<(), std::io::Error> {
        if !st.queue.is_empty() {
            st.queue.push(data);
            return Ok(());
        }
        match self.send(data) {
            Ok(n) => st.queue.push(&data[n..]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => st.queue.push(data),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// After a write: watch for writability if bytes are queued, and pause the
    /// protocol past the high-water mark; a failed send is a fatal error.
    pub(super) fn after_write(
        slf: &Bound<'_, Self>,
        sent: Result<(), std::io::Error>,
    ) -> PyResult<()> {
        let this = slf.get();
        if let Err(e) = sent {
            return Self::fatal_error(
                slf,
                errors::os_error(e),
                "Fatal write error on socket transport",
            );
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
}

impl StreamTransport {
    /// Makes a transport of `kind` on the non-blocking fd of `sock`: the fd is
    /// registered at once, `protocol.connection_made(transport)` runs on the next
    /// iteration, and reading starts after it.
    pub(super) fn open(
        slf: &Bound<'_, LoopCore>,
        kind: Kind,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        extra: &Bound<'_, PyDict>,
        server: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        let py = slf.py();
        let this = slf.get();
        this.check_process()?;
        let fd = super::super::args::fileno(sock)?;
        if matches!(kind, Kind::Socket) {
            crate::io::no_sigpipe(fd).map_err(errors::os_error)?;
        }
        let transport = Py::new(
            py,
            StreamTransport {
                event_loop: slf.clone().into_any().unbind(),
                shared: this.shared.clone(),
                fd,
                sock: sock.clone().unbind(),
                extra: extra.clone().unbind(),
                kind,
                context: crate::python::context::capture(py)?,
                state: Mutex::new(State {
                    protocol: Some(protocol.clone().unbind()),
                    buffered: is_buffered(protocol)?,
                    server: server.filter(|s| !s.is_none()).map(|s| s.clone().unbind()),
                    queue: WriteQueue::new(),
                    flow: common::Flow::new()?,
                    reading_paused: false,
                    started: false,
                    eof_received: false,
                    closing: false,
                    eof_requested: false,
                    conn_lost: 0,
                    registered: true,
                    interest: IoEvents::NONE,
                    sendfile_active: false,
                    writable_waiter: None,
                }),
            },
        )?;
        let owner = FdOwner::Transport(super::TransportRef::Stream(transport.clone_ref(py)));
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

impl Drop for StreamTransport {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if common::mark_dropped_open(&mut st.closing, st.conn_lost) {
            common::warn_unclosed(format!("<StreamTransport fd={}>", self.fd), &self.sock);
        }
    }
}

impl super::finalize::Finalize for StreamTransport {
    fn finalize(slf: &Bound<'_, Self>) {
        let this = slf.get();
        let open = {
            let st = &mut *this.lock();
            common::mark_dropped_open(&mut st.closing, st.conn_lost)
        };
        if open {
            common::warn_unclosed(format!("<StreamTransport fd={}>", this.fd), &this.sock);
        }
    }
}

#[pymethods]
impl LoopCore {
    /// Makes the stream transport of a connected, non-blocking socket.
    #[pyo3(signature = (sock, protocol, extra, server = None))]
    fn _make_stream_transport(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        extra: &Bound<'_, PyDict>,
        server: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        StreamTransport::open(slf, Kind::Socket, sock, protocol, extra, server)
    }
}

//! The Python API of `StreamTransport`: asyncio's `Transport` methods.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::{PyTraverseError, PyVisit};

use super::bytes_like::with_bytes;
use super::common::{self, LOG_THRESHOLD_FOR_CONNLOST_WRITES};
use super::stream::{is_buffered, Kind, StreamTransport};

/// What a `write` did.
enum Written {
    /// No bytes: nothing to do.
    Nothing,
    /// The connection is lost: the bytes were dropped.
    AfterLoss { warn: bool },
    /// Sent or queued, or the send failed.
    Sent(std::io::Result<()>),
}

#[pymethods]
impl StreamTransport {
    /// Writes `data` (bytes-like) without blocking: what the socket does not take
    /// at once is buffered and sent when it is writable.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = slf.get();
        let written = with_bytes(data, |bytes| {
            let mut st = this.lock();
            st.check_writable(this.kind, "write")?;
            Ok::<_, PyErr>(if bytes.is_empty() {
                Written::Nothing
            } else if st.conn_lost > 0 {
                // Ignored, as asyncio ignores it; it warns past a few such writes.
                st.conn_lost += 1;
                Written::AfterLoss {
                    warn: st.conn_lost > LOG_THRESHOLD_FOR_CONNLOST_WRITES,
                }
            } else {
                Written::Sent(this.send_or_queue(&mut st, bytes))
            })
        })??;
        match written {
            Written::Nothing | Written::AfterLoss { warn: false } => Ok(()),
            Written::AfterLoss { warn: true } => common::warn_write_after_loss(slf.py()),
            Written::Sent(sent) => Self::after_write(slf, sent),
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
        let mut st = this.lock();
        st.check_writable(this.kind, "writelines")?;
        if st.conn_lost > 0 {
            drop(st);
            // Each is dropped (and counted) as `write` drops it.
            for chunk in &chunks {
                Self::write(slf, chunk)?;
            }
            return Ok(());
        }
        // Queue everything, then one vectored send.
        for chunk in &chunks {
            with_bytes(chunk, |bytes| st.queue.push(bytes))?;
        }
        let flushed = st.queue.flush(|bufs| this.send_vectored(bufs));
        drop(st);
        Self::after_write(slf, flushed.map(drop))
    }

    /// Closes the write end after the buffered data is sent; the peer sees EOF.
    /// A write pipe closes (a pipe has no half-close).
    fn write_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let mut st = this.lock();
        // Once more, or on a closing transport, it does nothing (as asyncio's).
        if this.kind != Kind::ReadPipe && (st.closing || st.eof_requested) {
            return Ok(());
        }
        st.check_writable(this.kind, "write_eof")?;
        if let Kind::WritePipe { .. } = this.kind {
            drop(st);
            return Self::close(slf);
        }
        st.eof_requested = true;
        if st.queue.is_empty() {
            crate::io::shutdown_write(this.fd).map_err(crate::python::errors::os_error)?;
        }
        Ok(())
    }

    /// What `isinstance` sees: a subclass of asyncio's `Transport` (of
    /// `ReadTransport` or `WriteTransport` for a pipe's end).
    #[getter(__class__)]
    fn class_for_isinstance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        static STREAM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static READ_PIPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static WRITE_PIPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        match self.kind {
            Kind::Socket => common::class_for_isinstance(py, &STREAM, "StreamTransport"),
            Kind::ReadPipe => common::class_for_isinstance(py, &READ_PIPE, "ReadPipeTransport"),
            Kind::WritePipe { .. } => {
                common::class_for_isinstance(py, &WRITE_PIPE, "WritePipeTransport")
            }
        }
    }

    /// `loop.start_tls` may upgrade this transport to TLS.
    #[classattr]
    fn _start_tls_compatible() -> bool {
        true
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
                (this.mark_lost(&mut st), true)
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
        self.check_reads("pause_reading")?;
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
        self.check_reads("resume_reading")?;
        let mut st = self.lock();
        if st.closing || !st.reading_paused {
            return Ok(());
        }
        st.reading_paused = false;
        self.sync_interest(&mut st)
    }

    /// Whether the transport is receiving.
    fn is_reading(&self) -> PyResult<bool> {
        self.check_reads("is_reading")?;
        let st = self.lock();
        Ok(!st.reading_paused && !st.closing)
    }

    /// How many bytes are buffered, waiting for the socket.
    fn get_write_buffer_size(&self) -> usize {
        self.lock().queue.len()
    }

    /// The `(low, high)` water marks of the write buffer.
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.lock().flow.limits()
    }

    /// Sets the water marks: past `high` buffered bytes the protocol's
    /// `pause_writing()` is called, and `resume_writing()` once they drain to `low`.
    #[pyo3(signature = (high = None, low = None))]
    fn set_write_buffer_limits(
        slf: &Bound<'_, Self>,
        high: Option<isize>,
        low: Option<isize>,
    ) -> PyResult<()> {
        slf.get().lock().flow.set_limits(high, low)?;
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
        common::extra_info(py, &self.extra, name, default)
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
        let (protocol, server, owner, waiter) = {
            let mut st = this.lock();
            let waiter = st.writable_waiter.take();
            (
                st.protocol.take(),
                st.server.take(),
                this.unregister(&mut st),
                waiter,
            )
        };
        drop(owner);
        if let Some(waiter) = waiter {
            super::stream_sendfile::fail_waiter(waiter.bind(py))?;
        }
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
        visit.call(&self.context)?;
        if let Ok(st) = self.state.try_lock() {
            visit.call(&st.protocol)?;
            visit.call(&st.server)?;
            visit.call(&st.writable_waiter)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = {
            let mut st = self.lock();
            (
                st.protocol.take(),
                st.server.take(),
                st.writable_waiter.take(),
            )
        };
        drop(taken);
    }
}

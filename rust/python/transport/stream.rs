//! `StreamTransport`: asyncio's transport of a connected stream socket (TCP,
//! Unix) or of a pipe's end (`connect_read_pipe`, `connect_write_pipe`), on the
//! connection core. Reads go to `data_received` (or straight into a
//! `BufferedProtocol`'s buffer); writes the socket does not take at once wait in
//! the core's queue.

use pyo3::exceptions::{PyNotImplementedError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::bytes_like::{with_bytes, with_writable, BytesLike};
use super::endpoint::{asyncio_class, Endpoint, Flavor, Opening, Scheduled, State};
use super::host::PyHost;
use super::methods::transport_methods;
use crate::connection::{driver, Flush, Gate, Kind, Read, Refused};
use crate::python::errors;
use crate::{IoEvents, WriteQueue};

/// The size of a read (and of each loop's shared read buffer).
const READ_SIZE: usize = 256 * 1024;

/// The stream flavor of a transport.
pub(super) struct Stream;

impl Flavor for Stream {
    type Outbox = WriteQueue;
    type More = ();
    const NAME: &'static str = "StreamTransport";
    const READS_PER_EVENT: usize = 4;

    fn read(h: &PyHost<'_, '_, Self>) -> Read<PyErr> {
        let Some((protocol, buffered)) = h.ep.reader(h.py()) else {
            return Read::Blocked;
        };
        if buffered {
            read_into_buffer(h, protocol.bind(h.py()))
        } else {
            read_to_bytes(h, protocol.bind(h.py()))
        }
    }

    fn flush(h: &PyHost<'_, '_, Self>) -> Flush<PyErr> {
        driver::flush_stream(h, h.ep.fd)
    }

    fn traverse(_: &State<Self>, _: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        Ok(())
    }

    fn scheduled() -> &'static Scheduled {
        static SCHEDULED: Scheduled = Scheduled::new();
        &SCHEDULED
    }

    fn class_for_isinstance(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
        static STREAM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static READ_PIPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static WRITE_PIPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        match kind {
            Kind::ReadPipe => asyncio_class(py, &READ_PIPE, "ReadPipeTransport"),
            Kind::WritePipe { .. } => asyncio_class(py, &WRITE_PIPE, "WritePipeTransport"),
            Kind::Stream | Kind::Datagram => asyncio_class(py, &STREAM, "StreamTransport"),
        }
    }
}

/// `Protocol`: a read into the loop's buffer, passed on as `bytes`.
fn read_to_bytes(h: &PyHost<'_, '_, Stream>, protocol: &Bound<'_, PyAny>) -> Read<PyErr> {
    let py = h.py();
    // The buffer is taken out while in use: a re-entrant read (none is expected)
    // would get a buffer of its own.
    let mut buf = std::mem::take(&mut *h.ep.shared.read_buffer());
    buf.resize(READ_SIZE, 0);
    let deliver = |data: &[u8]| {
        let data = PyBytes::new(py, data);
        protocol
            .call_method1(intern!(py, "data_received"), (data,))
            .map(drop)
    };
    let failed = "Fatal error: protocol.data_received() call failed.";
    let read = driver::read_stream(h, h.ep.fd, &mut buf, deliver, failed);
    *h.ep.shared.read_buffer() = buf;
    read
}

/// `BufferedProtocol`: a read straight into the protocol's own buffer.
fn read_into_buffer(h: &PyHost<'_, '_, Stream>, protocol: &Bound<'_, PyAny>) -> Read<PyErr> {
    let py = h.py();
    let failed = "Fatal error: protocol.get_buffer() call failed.";
    let buf = match protocol.call_method1(intern!(py, "get_buffer"), (-1,)) {
        Ok(buf) => buf,
        Err(e) => return Read::Fatal(e, failed),
    };
    let got = with_writable(&buf, |mem| {
        if mem.is_empty() {
            return Err(PyRuntimeError::new_err(
                "get_buffer() returned an empty buffer",
            ));
        }
        Ok((crate::io::read(h.ep.fd, mem), mem.len()))
    });
    drop(buf);
    let (read, size) = match got.and_then(|r| r) {
        Ok(done) => done,
        Err(e) => return Read::Fatal(e, failed),
    };
    match read {
        Ok(0) => Read::Eof,
        Ok(n) => match protocol.call_method1(intern!(py, "buffer_updated"), (n,)) {
            Ok(_) if n < size => Read::Drained,
            Ok(_) => Read::More,
            Err(e) => Read::Fatal(e, "Fatal error: protocol.buffer_updated() call failed."),
        },
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read::Blocked,
        Err(e) => Read::Fatal(errors::os_error(e), "Fatal read error on socket transport"),
    }
}

/// asyncio's stream transport on mioloop's engine.
#[pyclass(frozen, weakref, dict, module = "mioloop._mioloop")]
pub(crate) struct StreamTransport(Endpoint<Stream>);

transport_methods!(StreamTransport, Stream);

impl StreamTransport {
    /// Makes the transport of a connected, non-blocking socket or pipe end
    /// (`how.kind`): its fd is registered at once, the protocol's
    /// `connection_made` runs on the next iteration, and reading starts after it.
    pub(crate) fn open(how: &Opening<'_, '_>) -> PyResult<Py<StreamTransport>> {
        let py = how.sock.py();
        let transport = Py::new(py, StreamTransport(Endpoint::new(how, Stream)?))?;
        let bound = transport.bind(py);
        Endpoint::open(bound.as_any(), &bound.get().0, how.protocol, on_ready)?;
        Ok(transport)
    }

    fn host<'a, 'py>(slf: &'a Bound<'py, Self>) -> PyHost<'a, 'py, Stream> {
        slf.get().0.host(slf.as_any(), None)
    }

    /// Refuses `method` (`pause_reading`...) on a write pipe, which only writes:
    /// `NotImplementedError`, as asyncio's `ReadTransport` methods raise.
    fn check_reads(&self, method: &str) -> PyResult<()> {
        if let Kind::WritePipe { .. } = self.0.with_conn(|c| c.kind()) {
            return Err(PyNotImplementedError::new_err(format!(
                "{method}() on a write pipe transport: it only writes"
            )));
        }
        Ok(())
    }
}

/// Runs readiness of a stream transport's fd, in the context it was made in.
fn on_ready(obj: &Bound<'_, PyAny>, token: mio::Token, events: IoEvents) -> PyResult<()> {
    let transport = obj.cast::<StreamTransport>()?;
    let ep = &transport.get().0;
    crate::python::context::run_in(obj.py(), &ep.context, || {
        driver::ready(&ep.host(obj, Some(token)), events)
    })
}

/// `RuntimeError` for a write the state refuses.
pub(super) fn refused(method: &str, why: Refused) -> PyErr {
    PyRuntimeError::new_err(match why {
        Refused::ReadPipe => format!("{method}() on a read pipe transport: it only reads"),
        Refused::AfterEof => format!("Cannot call {method}() after write_eof()"),
        Refused::Sendfile => "unable to write; sendfile is in progress".to_owned(),
    })
}

/// Logs asyncio's warning for writes to a lost connection.
pub(super) fn warn_write_after_loss(py: Python<'_>) -> PyResult<()> {
    py.import(intern!(py, "logging"))?
        .call_method1(intern!(py, "getLogger"), ("asyncio",))?
        .call_method1(intern!(py, "warning"), ("socket.send() raised exception.",))?;
    Ok(())
}

/// What a write's gate means to the caller: the warning past a few writes to a
/// lost connection.
pub(super) fn after_gate(py: Python<'_>, gate: Gate) -> PyResult<()> {
    match gate {
        Gate::Dropped { warn: true } => warn_write_after_loss(py),
        _ => Ok(()),
    }
}

#[pymethods]
impl StreamTransport {
    /// Writes `data` (bytes-like) without blocking: what the socket does not take
    /// at once is queued and sent when it is writable.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let h = Self::host(slf);
        let fd = h.ep.fd;
        let written = with_bytes(data, |bytes| {
            driver::write(&h, bytes.len(), false, |c| {
                let kind = c.kind();
                driver::send_or_queue(&mut c.outbox, kind, fd, bytes)
            })
        })??;
        after_gate(slf.py(), written.map_err(|why| refused("write", why))?)
    }

    /// Writes every bytes-like object of `list_of_data`, in order, in one
    /// vectored send if the socket takes them.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        // All or nothing: a bad item is refused before any byte is queued.
        let chunks: Vec<BytesLike<'_>> = list_of_data
            .try_iter()?
            .map(|chunk| BytesLike::new(&chunk?))
            .collect::<PyResult<_>>()?;
        let total = chunks.iter().map(|c| c.as_slice().len()).sum();
        let h = Self::host(slf);
        let fd = h.ep.fd;
        let written = driver::write(&h, total, false, |c| {
            for chunk in &chunks {
                c.outbox.push(chunk.as_slice());
            }
            let kind = c.kind();
            c.outbox
                .flush(|bufs| driver::send_vectored(kind, fd, bufs))
                .map(drop)
        })?;
        after_gate(slf.py(), written.map_err(|why| refused("writelines", why))?)
    }

    /// Closes the write end once the queued data is sent: the peer sees EOF. A
    /// write pipe closes (a pipe has no half-close).
    fn write_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        driver::write_eof(&Self::host(slf))?.map_err(|why| refused("write_eof", why))
    }

    /// Whether `write_eof()` is supported: always, for a stream socket.
    fn can_write_eof(&self) -> bool {
        true
    }

    /// `loop.start_tls` may upgrade this transport to TLS.
    #[classattr]
    fn _start_tls_compatible() -> bool {
        true
    }

    /// Stops calling the protocol's `data_received` until `resume_reading()`.
    fn pause_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().check_reads("pause_reading")?;
        driver::set_reading_paused(&Self::host(slf), true)
    }

    /// Resumes receiving after `pause_reading()`; data that arrived meanwhile is
    /// delivered.
    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().check_reads("resume_reading")?;
        driver::set_reading_paused(&Self::host(slf), false)
    }

    /// Whether the transport is receiving.
    fn is_reading(&self) -> PyResult<bool> {
        self.check_reads("is_reading")?;
        Ok(self.0.with_conn(|c| c.is_reading()))
    }

    /// How `loop.sendfile` may use this transport: natively, with `sendfile(2)`.
    #[classattr]
    fn _sendfile_compatible(py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import(intern!(py, "asyncio.constants"))?
            .getattr(intern!(py, "_SendfileMode"))?
            .getattr(intern!(py, "TRY_NATIVE"))?
            .unbind())
    }

    /// Starts a native sendfile: `write()` raises until `_sendfile_end()`. Returns
    /// the fd to send on.
    fn _sendfile_begin(&self) -> PyResult<i32> {
        if !self.0.with_conn(|c| c.set_sendfile(true)) {
            return Err(PyRuntimeError::new_err("Transport is closing"));
        }
        Ok(self.0.fd)
    }

    /// Ends a native sendfile.
    fn _sendfile_end(&self) {
        self.0.with_conn(|c| c.set_sendfile(false));
    }

    /// A future resolved once the queued data is sent and the socket is
    /// writable; it fails with `ConnectionError` if the connection is lost first.
    fn _wait_writable(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let h = Self::host(slf);
        let waiter =
            h.ep.event_loop
                .call_method0(py, intern!(py, "create_future"))?;
        let waiting = h.ep.with(|st, release| {
            let waiting = st.conn.await_writable();
            if waiting {
                release.later(st.waiter.replace(waiter.clone_ref(py)));
            }
            waiting
        });
        if waiting {
            driver::sync(&h)?;
        } else {
            let exc = super::host::closed_by_peer();
            waiter.call_method1(py, intern!(py, "set_exception"), (exc.value(py),))?;
        }
        Ok(waiter)
    }

    /// Ends the connection after a failed sendfile: `connection_lost(exc)` follows.
    fn _force_close(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>) -> PyResult<()> {
        driver::force_close(&Self::host(slf), Some(PyErr::from_value(exc)))
    }
}

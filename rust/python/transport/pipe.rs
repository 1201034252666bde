//! Pipe transports (`connect_read_pipe`, `connect_write_pipe`): the stream
//! transport on one end of a pipe, a FIFO, a pty or a socket, reading with
//! `read` and writing with `write`.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::stream::{Kind, StreamTransport};
use crate::python::core::LoopCore;

#[pymethods]
impl LoopCore {
    /// Makes the transport of one end of a pipe (non-blocking, checked to be a
    /// pipe, socket or character device by the caller): `readable` for
    /// `connect_read_pipe`, else a write pipe that closes when its reader goes
    /// away if `watch_close` (a pipe or socket; a pty reports no such thing).
    #[pyo3(signature = (pipe, protocol, extra, readable, watch_close))]
    fn _make_pipe_transport(
        slf: &Bound<'_, Self>,
        pipe: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        extra: &Bound<'_, PyDict>,
        readable: bool,
        watch_close: bool,
    ) -> PyResult<Py<StreamTransport>> {
        let kind = if readable {
            Kind::ReadPipe
        } else {
            Kind::WritePipe { watch_close }
        };
        StreamTransport::open(slf, kind, pipe, protocol, extra, None)
    }
}

//! asyncio transports whose I/O is done in Rust. Each is a pyclass holding the
//! loop's shared state and owning its fd's entry in the fd table.

mod address;
mod bytes_like;
mod common;
mod datagram;
mod datagram_api;
mod datagram_io;
mod finalize;
mod pipe;
mod stream;
mod stream_api;
mod stream_io;
mod stream_sendfile;

use mio::Token;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

pub(crate) use datagram::DatagramTransport;
pub(crate) use stream::StreamTransport;

/// Adds the transport classes to the module, each with its finalizer.
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<StreamTransport>()?;
    module.add_class::<DatagramTransport>()?;
    finalize::install::<StreamTransport>(module.py());
    finalize::install::<DatagramTransport>(module.py());
    Ok(())
}

use crate::python::context::run_in;
use crate::IoEvents;

/// The transport that owns an fd.
pub(crate) enum TransportRef {
    Stream(Py<StreamTransport>),
    Datagram(Py<DatagramTransport>),
}

impl TransportRef {
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        match self {
            Self::Stream(t) => Self::Stream(t.clone_ref(py)),
            Self::Datagram(t) => Self::Datagram(t.clone_ref(py)),
        }
    }

    /// Runs readiness `events` of the transport's fd (`token`), in the context the
    /// transport was made in: what the protocol's callbacks see, and what the
    /// callbacks they schedule (`connection_lost`...) copy, as in asyncio.
    pub(crate) fn on_ready(&self, py: Python<'_>, token: Token, events: IoEvents) -> PyResult<()> {
        match self {
            Self::Stream(t) => run_in(py, &t.get().context, || {
                StreamTransport::on_ready(t.bind(py), token, events)
            }),
            Self::Datagram(t) => run_in(py, &t.get().context, || {
                DatagramTransport::on_ready(t.bind(py), token, events)
            }),
        }
    }

    /// The transport as a Python object.
    pub(crate) fn object(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            Self::Stream(t) => t.clone_ref(py).into_any(),
            Self::Datagram(t) => t.clone_ref(py).into_any(),
        }
    }

    /// Whether this is the transport at `ptr`.
    pub(crate) fn is(&self, ptr: *const ()) -> bool {
        match self {
            Self::Stream(t) => std::ptr::eq(t.get(), ptr.cast()),
            Self::Datagram(t) => std::ptr::eq(t.get(), ptr.cast()),
        }
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Self::Stream(t) => visit.call(t),
            Self::Datagram(t) => visit.call(t),
        }
    }
}

//! Who owns a registered fd, and what an event on it runs.
//!
//! One fd table serves both faces: an entry holds a Tornado handler, or an
//! asyncio reader/writer pair (both level-triggered), or a transport
//! (edge-triggered: it works until the socket is drained).

use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use super::callback::PyCallback;
use crate::IoEvents;

/// What runs a transport's readiness: the transport's own function, given the
/// transport, its fd's token and the events.
pub(crate) type OnReady = fn(&Bound<'_, PyAny>, mio::Token, IoEvents) -> PyResult<()>;

/// A transport that owns an fd: the object, and what its events run.
pub(crate) struct TransportRef {
    pub(crate) object: Py<PyAny>,
    pub(crate) on_ready: OnReady,
}

impl TransportRef {
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        TransportRef {
            object: self.object.clone_ref(py),
            on_ready: self.on_ready,
        }
    }

    /// Whether this is the transport at `ptr`.
    pub(crate) fn is(&self, ptr: *const ffi::PyObject) -> bool {
        std::ptr::eq(self.object.as_ptr(), ptr)
    }
}

/// Tornado's `add_handler(fd, handler, events)`: `handler(fileobj, events)`.
pub(crate) struct TornadoHandler {
    pub(crate) func: Py<PyAny>,
    /// The int or the object with `fileno()` it was registered with.
    pub(crate) fileobj: Py<PyAny>,
    /// The context current at registration.
    pub(crate) context: Py<PyAny>,
}

/// asyncio's `add_reader` and `add_writer` of one fd.
#[derive(Default)]
pub(crate) struct Watchers {
    pub(crate) reader: Option<Arc<PyCallback>>,
    pub(crate) writer: Option<Arc<PyCallback>>,
    /// The object with `fileno()` the fd was first watched through, if not an int:
    /// once it is closed (`fileno()` is -1), `remove_reader(obj)` finds the entry
    /// by it, as asyncio's selector does.
    pub(crate) fileobj: Option<Py<PyAny>>,
}

impl Watchers {
    /// The events the pair waits for.
    pub(crate) fn interest(&self) -> IoEvents {
        let mut events = IoEvents::NONE;
        if self.reader.is_some() {
            events |= IoEvents::READ;
        }
        if self.writer.is_some() {
            events |= IoEvents::WRITE;
        }
        events
    }
}

/// The owner of a registered fd.
pub(crate) enum FdOwner {
    Handler(TornadoHandler),
    Watchers(Watchers),
    Transport(TransportRef),
}

/// What an fd event runs, taken out of the table (the reactor lock is not held
/// while it runs).
pub(crate) enum FdJob {
    Handler {
        func: Py<PyAny>,
        fileobj: Py<PyAny>,
        context: Py<PyAny>,
    },
    Watchers {
        reader: Option<Arc<PyCallback>>,
        writer: Option<Arc<PyCallback>>,
    },
    Transport(TransportRef),
}

impl FdOwner {
    /// What `events` on this fd runs. An error condition wakes both the reader and
    /// the writer, as asyncio's selector loop reports it.
    pub(crate) fn job(&self, py: Python<'_>, events: IoEvents) -> FdJob {
        match self {
            FdOwner::Handler(h) => FdJob::Handler {
                func: h.func.clone_ref(py),
                fileobj: h.fileobj.clone_ref(py),
                context: h.context.clone_ref(py),
            },
            FdOwner::Watchers(w) => {
                let wants = |mask: IoEvents| events.intersects(mask | IoEvents::ERROR);
                FdJob::Watchers {
                    reader: w.reader.clone().filter(|_| wants(IoEvents::READ)),
                    writer: w.writer.clone().filter(|_| wants(IoEvents::WRITE)),
                }
            }
            FdOwner::Transport(t) => FdJob::Transport(t.clone_ref(py)),
        }
    }

    /// The object a Tornado handler was registered with.
    pub(crate) fn fileobj(&self) -> Option<&Py<PyAny>> {
        match self {
            FdOwner::Handler(h) => Some(&h.fileobj),
            _ => None,
        }
    }

    /// Whether `writer` is still this fd's writer (a reader that ran first may have
    /// removed or replaced it).
    pub(crate) fn has_writer(&self, writer: &Arc<PyCallback>) -> bool {
        matches!(self, FdOwner::Watchers(Watchers { writer: Some(w), .. }) if Arc::ptr_eq(w, writer))
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            FdOwner::Handler(h) => {
                visit.call(&h.func)?;
                visit.call(&h.fileobj)?;
                visit.call(&h.context)
            }
            FdOwner::Watchers(w) => {
                for cb in w.reader.iter().chain(w.writer.iter()) {
                    cb.traverse(visit)?;
                }
                visit.call(&w.fileobj)
            }
            FdOwner::Transport(t) => visit.call(&t.object),
        }
    }
}

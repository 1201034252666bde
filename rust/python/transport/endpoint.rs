//! What every transport is — its fd, socket, extra info, context, and behind one
//! lock the core's [`Connection`] with the protocol — and how one is made.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::host::PyHost;
use crate::connection::{Connection, Flush, Kind, Outbox, Read};
use crate::python::callback::PyCallback;
use crate::python::errors;
use crate::python::fd_owner::{FdOwner, OnReady, TransportRef};
use crate::python::release::{locked, Release};
use crate::python::shared::Shared;
use crate::{IoEvents, Trigger};

/// What differs between stream and datagram transports.
pub(super) trait Flavor: Sized + Send + Sync + 'static {
    /// Unsent data.
    type Outbox: Outbox + Send + 'static;
    /// What the state keeps besides the core's.
    type More: Default + Send + 'static;
    /// The class, in reprs and warnings.
    const NAME: &'static str;
    /// Reads per readiness event before other work gets its turn.
    const READS_PER_EVENT: usize;

    /// One read, handed to the protocol.
    fn read(h: &PyHost<'_, '_, Self>) -> Read<PyErr>;

    /// Sends what is queued, as far as the fd takes it.
    fn flush(h: &PyHost<'_, '_, Self>) -> Flush<PyErr>;

    /// The objects the state holds besides the protocol's.
    fn traverse(state: &State<Self>, visit: &PyVisit<'_>) -> Result<(), PyTraverseError>;

    /// The asyncio class `isinstance` sees for a transport of `kind`.
    fn class_for_isinstance(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>>;

    /// The class's own methods the transport schedules, looked up once.
    fn scheduled() -> &'static Scheduled;
}

/// The methods a transport schedules on itself: `_start_reading` after
/// `connection_made`, `_call_connection_lost(exc)` after a close.
pub(super) struct Scheduled {
    start_reading: PyOnceLock<Py<PyAny>>,
    connection_lost: PyOnceLock<Py<PyAny>>,
}

impl Scheduled {
    pub(super) const fn new() -> Self {
        Scheduled {
            start_reading: PyOnceLock::new(),
            connection_lost: PyOnceLock::new(),
        }
    }

    /// `slf._start_reading`, bound.
    pub(super) fn start_reading<'py>(
        &'static self,
        slf: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        bind(slf, &self.start_reading, "_start_reading")
    }

    /// `slf._call_connection_lost`, bound.
    pub(super) fn connection_lost<'py>(
        &'static self,
        slf: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        bind(slf, &self.connection_lost, "_call_connection_lost")
    }
}

/// A transport's state, behind its lock (never held while Python runs).
pub(super) struct State<F: Flavor> {
    pub(super) conn: Connection<F::Outbox>,
    /// `None` once `connection_lost` ran.
    pub(super) protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`: reads go into its buffer.
    pub(super) buffered: bool,
    /// Called with the transport once `connection_lost` ran (a server's
    /// bookkeeping of its connections).
    pub(super) on_lost: Option<Py<PyAny>>,
    /// The future of `_wait_writable` (a sendfile waits for the queue to drain).
    pub(super) waiter: Option<Py<PyAny>>,
    /// `connection_lost` ran and the socket is closed.
    pub(super) finished: bool,
    pub(super) more: F::More,
}

/// A transport: what the classes of `stream.rs` and `datagram.rs` wrap.
pub(super) struct Endpoint<F: Flavor> {
    pub(super) event_loop: Py<PyAny>,
    pub(super) shared: Arc<Shared>,
    pub(super) fd: RawFd,
    pub(super) sock: Py<PyAny>,
    pub(super) extra: Py<PyDict>,
    /// A copy of the context current when the transport was made: the protocol's
    /// callbacks that I/O triggers run in it (asyncio's reader and writer handles
    /// hold such a copy).
    pub(super) context: Py<PyAny>,
    pub(super) flavor: F,
    state: Mutex<State<F>>,
}

/// How a transport is made: the loop's state and object, the socket (or pipe),
/// its fd and kind, the protocol, `get_extra_info`'s dict, and who hears of its
/// loss.
pub(crate) struct Opening<'a, 'py> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) event_loop: &'a Bound<'py, PyAny>,
    pub(crate) sock: &'a Bound<'py, PyAny>,
    pub(crate) fd: RawFd,
    pub(crate) kind: Kind,
    pub(crate) protocol: &'a Bound<'py, PyAny>,
    pub(crate) extra: &'a Bound<'py, PyDict>,
    pub(crate) on_lost: Option<&'a Bound<'py, PyAny>>,
}

impl<F: Flavor> Endpoint<F> {
    /// A transport of `how.kind`, not yet registered.
    pub(super) fn new(how: &Opening<'_, '_>, flavor: F) -> PyResult<Self> {
        let py = how.sock.py();
        if how.kind != Kind::ReadPipe && !matches!(how.kind, Kind::WritePipe { .. }) {
            crate::io::no_sigpipe(how.fd).map_err(errors::os_error)?;
        }
        Ok(Endpoint {
            event_loop: how.event_loop.clone().unbind(),
            shared: how.shared.clone(),
            fd: how.fd,
            sock: how.sock.clone().unbind(),
            extra: how.extra.clone().unbind(),
            context: crate::python::context::capture(py)?,
            flavor,
            state: Mutex::new(State {
                conn: Connection::new(how.kind),
                protocol: Some(how.protocol.clone().unbind()),
                buffered: is_buffered(how.protocol)?,
                on_lost: how
                    .on_lost
                    .filter(|f| !f.is_none())
                    .map(|f| f.clone().unbind()),
                waiter: None,
                finished: false,
                more: F::More::default(),
            }),
        })
    }

    /// Registers the fd of the new transport `slf` (edge-triggered, watched for
    /// nothing yet), and schedules `protocol.connection_made(transport)` and then
    /// the start of reading, on the next iteration.
    pub(super) fn open(
        slf: &Bound<'_, PyAny>,
        this: &Self,
        protocol: &Bound<'_, PyAny>,
        on_ready: OnReady,
    ) -> PyResult<()> {
        let py = slf.py();
        let owner = FdOwner::Transport(TransportRef {
            object: slf.clone().unbind(),
            on_ready,
        });
        locked(this.shared.reactor(), |reactor, release| {
            let added = reactor.add_fd(this.fd, IoEvents::NONE, Trigger::Edge, owner);
            added
                .map(|old| release.later(old))
                .map_err(errors::fd_error)
        })?;
        let made = protocol.getattr(intern!(py, "connection_made"))?;
        this.call_soon(&made, &PyTuple::new(py, [slf])?)?;
        this.call_soon(&F::scheduled().start_reading(slf)?, &PyTuple::empty(py))
    }

    /// Runs `f` on the state; what it puts in the [`Release`] is dropped after.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut State<F>, &mut Release) -> R) -> R {
        locked(&self.state, f)
    }

    /// Runs `f` on the core's state alone. It holds no Python object (bytes,
    /// addresses, flags), so nothing can be let go of under the lock: the hot
    /// path needs no [`Release`].
    pub(super) fn with_conn<R>(&self, f: impl FnOnce(&mut Connection<F::Outbox>) -> R) -> R {
        f(&mut self.plain_lock().conn)
    }

    /// The state's lock, for a caller that lets go of no Python object under it.
    fn plain_lock(&self) -> MutexGuard<'_, State<F>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The protocol, if `connection_lost` has not run.
    pub(super) fn protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.with(|st, _| st.protocol.as_ref().map(|p| p.clone_ref(py)))
    }

    /// The protocol, if `connection_lost` has not run, and whether it is a
    /// `BufferedProtocol`: one plain lock a read (a new reference is taken under
    /// it, none let go of).
    pub(super) fn reader(&self, py: Python<'_>) -> Option<(Py<PyAny>, bool)> {
        let st = self.plain_lock();
        Some((st.protocol.as_ref()?.clone_ref(py), st.buffered))
    }

    /// Schedules `func(*args)` on the loop's next iteration (nothing once it is
    /// closed).
    pub(super) fn call_soon(
        &self,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        if !self.shared.is_closed() {
            self.shared
                .push(PyCallback::asyncio(func, args, None, "call_soon")?);
        }
        Ok(())
    }

    /// The host of this transport (`slf`) for the connection core; `token`: the
    /// fd's, when readiness runs it.
    pub(super) fn host<'a, 'py>(
        &'a self,
        slf: &'a Bound<'py, PyAny>,
        token: Option<mio::Token>,
    ) -> PyHost<'a, 'py, F> {
        PyHost {
            slf,
            ep: self,
            token,
        }
    }

    pub(super) fn repr(&self) -> String {
        let (state, buffered) = self.with(|st, _| {
            let state = match (st.conn.is_lost(), st.conn.is_closing()) {
                (true, _) => "closed",
                (false, true) => "closing",
                (false, false) => "open",
            };
            (state, st.conn.outbox.size())
        });
        format!("<{} fd={} {state} buffered={buffered}>", F::NAME, self.fd)
    }

    pub(super) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.sock)?;
        visit.call(&self.extra)?;
        visit.call(&self.context)?;
        // A collection never waits: a state in use is skipped this time.
        if let Ok(st) = self.state.try_lock() {
            visit.call(&st.protocol)?;
            visit.call(&st.on_lost)?;
            visit.call(&st.waiter)?;
            F::traverse(&st, visit)?;
        }
        Ok(())
    }

    pub(super) fn clear(&self) {
        self.with(|st, release| {
            release.later(st.protocol.take());
            release.later(st.on_lost.take());
            release.later(st.waiter.take());
            release.later(std::mem::take(&mut st.more));
            release.later(std::mem::take(&mut st.conn.outbox));
        });
    }

    /// Whether the transport is being let go of while open (neither closing nor
    /// lost): it then counts as closing, so it is warned about once.
    pub(super) fn dropped_open(st: &mut State<F>) -> bool {
        let open = !st.conn.is_closing();
        if open {
            st.conn.close();
        }
        open
    }

    /// A transport let go of while open (asyncio's `__del__`): warns with
    /// `ResourceWarning` and closes its socket (which would warn again
    /// otherwise). Nothing may propagate: errors go to `sys.unraisablehook`.
    pub(super) fn warn_unclosed(&self, py: Python<'_>) {
        let message = format!("unclosed transport <{} fd={}>", F::NAME, self.fd);
        let message = std::ffi::CString::new(message).unwrap_or_default();
        let category = py.get_type::<pyo3::exceptions::PyResourceWarning>();
        if let Err(err) = PyErr::warn(py, &category, &message, 1) {
            err.write_unraisable(py, None);
        }
        if let Err(err) = self.sock.call_method0(py, intern!(py, "close")) {
            err.write_unraisable(py, None);
        }
    }
}

/// `slf`'s method `name`, bound; the function is looked up on the class once.
fn bind<'py>(
    slf: &Bound<'py, PyAny>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    static METHOD_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let function = cell.get_or_try_init(py, || slf.get_type().getattr(name).map(Bound::unbind))?;
    METHOD_TYPE
        .import(py, "types", "MethodType")?
        .call1((function, slf))
}

/// Whether `protocol` is an `asyncio.BufferedProtocol`.
pub(super) fn is_buffered(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = protocol.py();
    static BUFFERED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    protocol.is_instance(BUFFERED.import(py, "asyncio", "BufferedProtocol")?)
}

/// The class of `mioloop._transport_classes` named `name`: what a transport's
/// `__class__` says, so that `isinstance(transport, asyncio.Transport)` holds.
pub(super) fn asyncio_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<Bound<'py, PyType>> {
    cell.import(py, "mioloop._transport_classes", name).cloned()
}

//! `LoopCore`: the engine as a Python class. `mioloop.EventLoop` (asyncio) and
//! `mioloop.IOLoop` (Tornado) subclass it. Its methods are spread over this folder
//! by concern: the iteration (`run.rs`), scheduling, fd handlers and watchers.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::callback::PyCallback;
use super::errors;
use super::fd_owner::FdOwner;
use super::hooks::Hooks;
use super::shared::{PyReactor, Shared};
use super::signals::SignalWakeup;
use super::transport::{DatagramTransport, Opening, StreamTransport};
use crate::connection::Kind;
use crate::{monotonic_now, nanos_to_secs, Poller};

/// The engine behind mioloop's event loops.
#[pyclass(subclass, frozen, module = "mioloop._mioloop")]
pub(crate) struct LoopCore {
    pub(crate) shared: Arc<Shared>,
    /// `None` once closed: the poll's fd goes at `close()`.
    poller: Mutex<Option<Poller>>,
    pub(crate) signals: SignalWakeup,
    /// The process that created the loop (the poll is shared after `fork()`).
    pid: u32,
    pub(crate) debug: AtomicBool,
    /// The face's methods the engine calls.
    pub(crate) hooks: Hooks,
}

/// What `close` takes out of the loop, dropped by the caller outside the lock.
type Taken = (Vec<PyCallback>, Vec<(RawFd, FdOwner)>, Vec<PyCallback>);

impl LoopCore {
    fn new(hooks: Hooks) -> io::Result<Self> {
        let poller = Poller::new(1024)?;
        Ok(LoopCore {
            shared: Arc::new(Shared::new(poller.registry())?),
            signals: SignalWakeup::new(poller.registry())?,
            poller: Mutex::new(Some(poller)),
            pid: std::process::id(),
            debug: AtomicBool::new(false),
            hooks,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PyReactor> {
        self.shared.lock()
    }

    /// The poll, or `None` once the loop is closed.
    pub(crate) fn lock_poller(&self) -> MutexGuard<'_, Option<Poller>> {
        self.poller.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn check_open(&self) -> PyResult<()> {
        if self.shared.is_closed() {
            return Err(errors::closed());
        }
        Ok(())
    }

    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    /// The poll is shared with the parent after `fork()`: touching it from the child
    /// would change the parent's interest set.
    pub(crate) fn check_process(&self) -> PyResult<()> {
        self.check_open()?;
        if self.forked() {
            return Err(errors::forked(self.pid));
        }
        Ok(())
    }

    /// How a transport of `kind` on `sock` is made on this loop (`slf`).
    fn opening<'a, 'py>(
        &'a self,
        slf: &'a Bound<'py, Self>,
        sock: &'a Bound<'py, PyAny>,
        kind: Kind,
        protocol: &'a Bound<'py, PyAny>,
        extra: &'a Bound<'py, PyDict>,
        on_lost: Option<&'a Bound<'py, PyAny>>,
    ) -> PyResult<Opening<'a, 'py>> {
        self.check_process()?;
        Ok(Opening {
            shared: &self.shared,
            event_loop: slf.as_any(),
            fd: super::args::fileno(sock)?,
            sock,
            kind,
            protocol,
            extra,
            on_lost,
        })
    }

    /// Empties the reactor and the inbox, for the caller to drop outside the lock.
    fn take_all(&self, deregister: bool) -> Taken {
        let (callbacks, owners) = {
            let mut reactor = self.lock();
            if deregister {
                reactor.drain()
            } else {
                reactor.forget()
            }
        };
        let mut queued = Vec::new();
        self.shared.inbox.drain_all(&mut queued);
        (callbacks, owners, queued)
    }

    /// Empties the loop and closes every fd of its own (the poll, its registry's
    /// duplicate, the waker, the signal socket pair): a closed loop holds none,
    /// however long the object lives.
    fn close_all(&self) -> Taken {
        let (callbacks, owners) = self.lock().close(!self.forked());
        let queued = self.shared.inbox.close();
        drop(self.lock_poller().take());
        self.signals.close();
        (callbacks, owners, queued)
    }
}

#[pymethods]
impl LoopCore {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Ok(LoopCore::new(Hooks::of(cls)?)?)
    }

    /// Returns the current time on the loop's clock (`time.monotonic()`).
    fn time(&self) -> f64 {
        nanos_to_secs(monotonic_now())
    }

    /// Stops the loop after the current iteration. Called before the loop starts,
    /// the next start returns at once.
    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if !self.shared.on_loop_thread() {
            self.shared.inbox.wake();
        }
    }

    /// Whether the loop is running.
    fn is_running(&self) -> bool {
        self.shared.is_running()
    }

    /// Whether the loop was closed.
    fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Releases everything the loop holds and returns the objects that were
    /// registered with `add_handler` (for `close(all_fds=True)`). Refuses while
    /// running; a second call returns an empty list.
    fn _close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if self.is_running() {
            return Err(PyRuntimeError::new_err("Cannot close a running event loop"));
        }
        if !self.shared.mark_closed() {
            return Ok(PyList::empty(py));
        }
        let (callbacks, owners, queued) = self.close_all();
        let fileobjs = PyList::new(py, owners.iter().filter_map(|(_, o)| o.fileobj()))?;
        drop((callbacks, owners, queued));
        Ok(fileobjs)
    }

    fn get_debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// Turns debug mode on or off (any truthy value turns it on, as asyncio's does).
    fn set_debug(&self, enabled: &Bound<'_, PyAny>) -> PyResult<()> {
        self.debug.store(enabled.is_truthy()?, Ordering::Relaxed);
        Ok(())
    }

    /// Sizes of the engine's queues, for tests and diagnostics: `ready`, `timers`
    /// (live), `timer_heap` (entries, cancelled included), `handlers` (fds
    /// registered, by any owner) and `polls`.
    fn _stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = PyDict::new(py);
        let counts = {
            let reactor = self.lock();
            [
                ("ready", reactor.ready_len()),
                ("timers", reactor.timers.len()),
                ("timer_heap", reactor.timers.heap_len()),
                ("handlers", reactor.fds.len()),
                ("polls", reactor.polls() as usize),
            ]
        };
        for (k, v) in counts {
            stats.set_item(k, v)?;
        }
        Ok(stats)
    }

    /// Makes the stream transport of a connected, non-blocking socket;
    /// `on_lost(transport)` is called once its `connection_lost` ran.
    #[pyo3(signature = (sock, protocol, extra, on_lost = None))]
    fn _make_stream_transport(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        extra: &Bound<'_, PyDict>,
        on_lost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        let how = slf
            .get()
            .opening(slf, sock, Kind::Stream, protocol, extra, on_lost)?;
        StreamTransport::open(&how)
    }

    /// Makes the transport of one end of a pipe (non-blocking, checked to be a
    /// pipe, socket or character device by the caller): `readable` for
    /// `connect_read_pipe`, else a write pipe that closes when its reader goes
    /// away if `watch_close` (a pipe or socket; a pty reports no such thing).
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
        let how = slf.get().opening(slf, pipe, kind, protocol, extra, None)?;
        StreamTransport::open(&how)
    }

    /// Makes the datagram transport of a non-blocking datagram socket; `address`
    /// is the `remote_addr` the endpoint was made with, if any.
    #[pyo3(signature = (sock, protocol, address, extra))]
    fn _make_datagram_transport(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        address: Option<&Bound<'_, PyAny>>,
        extra: &Bound<'_, PyDict>,
    ) -> PyResult<Py<DatagramTransport>> {
        let how = slf
            .get()
            .opening(slf, sock, Kind::Datagram, protocol, extra, None)?;
        DatagramTransport::open(&how, address)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // A running loop is referenced from the running call's frame, so it is not
        // garbage, nor is anything it holds: reporting no edge only makes the
        // collector treat what the loop holds as referenced from outside, which it
        // is. This spares every collection a walk over a million queued callbacks
        // during a burst. A stopped loop reports every edge, so cycles through it
        // are collected.
        if self.shared.is_running() {
            return Ok(());
        }
        // The GC may run while this thread holds the lock (it never does while
        // allocating, but be safe): then skip, which only delays collection.
        let Some(reactor) = self.shared.try_lock() else {
            return Ok(());
        };
        let mut result = Ok(());
        let mut visit_callback = |c: &PyCallback| {
            if result.is_ok() {
                result = c.traverse(&visit);
            }
        };
        reactor.for_each_callback(&mut visit_callback);
        self.shared.inbox.try_for_each(&mut visit_callback);
        reactor.fds.for_each_handler(|owner| {
            if result.is_ok() {
                result = owner.traverse(&visit);
            }
        });
        result
    }

    fn __clear__(&self) {
        let taken = self.take_all(!self.forked());
        drop(taken);
    }
}

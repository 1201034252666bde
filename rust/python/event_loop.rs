//! `Loop`: the engine as a Python class. `mioloop.EventLoop` (asyncio) and
//! `mioloop.IOLoop` (Tornado) subclass it; the iteration itself runs here.
//!
//! # Locking
//! The reactor sits behind a mutex that is never held while Python code runs —
//! not even a `Drop` of a Python object, which may run `__del__` — nor while the
//! poll blocks. So a callback may call any method, and another thread's
//! `add_callback` never waits for the poll.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use io::Read;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use super::callback::{check_callable, classify, Failure, PyCallback};
use super::errors;
use super::handles::{Handle, TimerHandle};
use super::thread_id::{self, NO_THREAD};
use crate::{
    deadline_after, deadline_at, monotonic_now, nanos_to_secs, Collected, Inbox, IoEvents,
    PollPlan, Reactor, Ready, TOKEN_SIGNAL,
};

/// A registered fd's handler and the object it was registered with.
pub(crate) struct PyHandler {
    func: Py<PyAny>,
    fileobj: Py<PyAny>,
}

type PyReactor = Reactor<PyCallback, PyHandler>;

/// The state shared with handles and other threads.
pub(crate) struct Shared {
    reactor: Mutex<PyReactor>,
    inbox: Inbox<PyCallback>,
    /// The id of the thread running the loop, or `NO_THREAD`.
    loop_thread: AtomicU64,
    stopping: AtomicBool,
    closed: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, PyReactor> {
        // No code panics while holding it; a poisoned reactor is still consistent.
        self.reactor.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Poller {
    poll: Poll,
    events: Events,
}

/// The engine behind mioloop's event loops.
#[pyclass(subclass, frozen, module = "mioloop._mioloop")]
pub(crate) struct Loop {
    shared: Arc<Shared>,
    poller: Mutex<Poller>,
    /// Python's signal handler writes to `signal_tx` (`signal.set_wakeup_fd`); the
    /// poll watches `signal_rx`.
    signal_rx: UnixStream,
    signal_tx: UnixStream,
    /// The process that created the loop (the poll is shared after `fork()`).
    pid: u32,
    debug: AtomicBool,
}

fn new_loop() -> io::Result<Loop> {
    let poll = Poll::new()?;
    let reactor = Reactor::new(poll.registry().try_clone()?);
    let inbox = Inbox::new(poll.registry())?;
    let (signal_rx, signal_tx) = UnixStream::pair()?;
    signal_rx.set_nonblocking(true)?;
    signal_tx.set_nonblocking(true)?;
    poll.registry().register(
        &mut SourceFd(&signal_rx.as_raw_fd()),
        TOKEN_SIGNAL,
        Interest::READABLE,
    )?;
    Ok(Loop {
        shared: Arc::new(Shared {
            reactor: Mutex::new(reactor),
            inbox,
            loop_thread: AtomicU64::new(NO_THREAD),
            stopping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }),
        poller: Mutex::new(Poller {
            poll,
            events: Events::with_capacity(1024),
        }),
        signal_rx,
        signal_tx,
        pid: std::process::id(),
        debug: AtomicBool::new(false),
    })
}

/// Splits Tornado's `fd` argument: an int, or an object with `fileno()`.
fn split_fd<'py>(fd: &Bound<'py, PyAny>) -> PyResult<(RawFd, Bound<'py, PyAny>)> {
    if fd.is_instance_of::<PyInt>() {
        return Ok((fd.extract()?, fd.clone()));
    }
    let py = fd.py();
    match fd.getattr_opt(intern!(py, "fileno"))? {
        Some(fileno) => Ok((fileno.call0()?.extract()?, fd.clone())),
        None => Err(PyTypeError::new_err(format!(
            "expected an int file descriptor or an object with fileno(), got {}",
            fd.get_type().name()?
        ))),
    }
}

impl Loop {
    fn lock(&self) -> MutexGuard<'_, PyReactor> {
        self.shared.lock()
    }

    fn check_open(&self) -> PyResult<()> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(errors::closed());
        }
        Ok(())
    }

    /// The poll is shared with the parent after `fork()`: touching it from the child
    /// would change the parent's interest set.
    fn check_process(&self) -> PyResult<()> {
        self.check_open()?;
        if std::process::id() != self.pid {
            return Err(errors::forked(self.pid));
        }
        Ok(())
    }

    fn on_loop_thread(&self) -> bool {
        self.shared.loop_thread.load(Ordering::Relaxed) == thread_id::current()
    }

    /// Queues a callback from any thread: straight onto the ready queue on the loop's
    /// thread, through the inbox (waking the poll) from any other.
    fn push_threadsafe(&self, callback: PyCallback) {
        if self.on_loop_thread() {
            self.lock().push(callback);
        } else if let Err(refused) = self.shared.inbox.push(callback) {
            // The loop was closed meanwhile: drop it silently, as Tornado does.
            drop(refused);
        }
    }

    /// An asyncio callback and the `Handle` that cancels it.
    fn cancellable(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
        method: &str,
    ) -> PyResult<(PyCallback, Py<Handle>)> {
        self.check_open()?;
        let mut cb = PyCallback::asyncio(callback, args, context, method)?;
        let handle = Py::new(py, Handle::new())?;
        cb.handle = Some(handle.clone_ref(py));
        Ok((cb, handle))
    }

    fn schedule_timer(&self, deadline: u64, callback: PyCallback) -> PyResult<TimerHandle> {
        let key = self.lock().timers.insert(deadline, callback);
        Ok(TimerHandle::new(
            key,
            nanos_to_secs(deadline),
            Arc::downgrade(&self.shared),
        ))
    }

    /// Schedules a Tornado-style timer, or an asyncio one if the only keyword is an
    /// asyncio ``context``.
    fn schedule_tornado(
        &self,
        deadline: u64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        method: &str,
    ) -> PyResult<TimerHandle> {
        let py = callback.py();
        if let Some(kwargs) = kwargs.filter(|k| k.len() == 1) {
            if let Some(context) = kwargs.get_item(intern!(py, "context"))? {
                let context_type = py
                    .import(intern!(py, "contextvars"))?
                    .getattr(intern!(py, "Context"))?;
                if context.is_instance(&context_type)? {
                    let cb = PyCallback::asyncio(callback, args, Some(&context), method)?;
                    return self.schedule_timer(deadline, cb);
                }
            }
        }
        let cb = PyCallback::tornado(callback, args, kwargs, method)?;
        self.schedule_timer(deadline, cb)
    }

    fn install_signal_wakeup(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let signal = py.import(intern!(py, "signal"))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "warn_on_full_buffer"), false)?;
        match signal
            .getattr(intern!(py, "set_wakeup_fd"))?
            .call((self.signal_tx.as_raw_fd(),), Some(&kwargs))
        {
            Ok(previous) => Ok(Some(previous.unbind())),
            // Not the main thread: signal handlers never run here anyway.
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn drain_signal_socket(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.signal_rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Polls for up to `timeout`, releasing the GIL if it may block. Returns
    /// whether a signal interrupted it.
    fn poll(py: Python<'_>, poller: &mut Poller, timeout: Duration) -> PyResult<bool> {
        let Poller { poll, events } = poller;
        let polled = if timeout.is_zero() {
            poll.poll(events, Some(timeout))
        } else {
            py.detach(|| poll.poll(events, Some(timeout)))
        };
        match polled {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One iteration: poll, then run what was ready.
    fn run_once(&self, slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut dropped = Vec::new();
        let mut reactor = self.lock();
        self.shared.inbox.drain_into(&mut *reactor);
        let plan = reactor.prepare_poll(monotonic_now, &mut dropped);
        let mut signalled = false;
        let (collected, mut first) = if plan == PollPlan::Skip {
            // Busy with callbacks and polled moments ago: only the timers are due
            // for a look, at the last clock reading.
            let now = reactor.now();
            let run = reactor.collect_timers(now);
            let first = reactor.pop();
            drop(reactor);
            (
                Collected {
                    run,
                    ..Collected::default()
                },
                first,
            )
        } else {
            drop(reactor);
            // Handlers of fds closed meanwhile may run Python code when dropped.
            drop(std::mem::take(&mut dropped));
            let mut poller = self.poller.lock().unwrap_or_else(PoisonError::into_inner);
            match plan {
                PollPlan::Poll(timeout) => signalled = Self::poll(py, &mut poller, timeout)?,
                PollPlan::TryThenBlock(timeout) => {
                    signalled = Self::poll(py, &mut poller, Duration::ZERO)?;
                    if poller.events.is_empty() && !signalled {
                        self.lock().rearm_all(&mut dropped);
                        drop(std::mem::take(&mut dropped));
                        signalled = Self::poll(py, &mut poller, timeout)?;
                    }
                }
                PollPlan::Skip => {} // handled above
            }
            let mut reactor = self.lock();
            self.shared.inbox.drain_into(&mut *reactor);
            let now = reactor.read_clock(monotonic_now);
            let collected = reactor.collect(&poller.events, now);
            (collected, reactor.pop())
        };
        if collected.signalled || signalled {
            self.drain_signal_socket();
            // Runs Python's signal handlers; a KeyboardInterrupt leaves start(), and
            // the collected work stays queued for the next start().
            if let Err(err) = py.check_signals() {
                if let Some(item) = first {
                    self.lock().push_front(item);
                }
                return Err(err);
            }
        }
        // Items are popped one at a time: if one raises KeyboardInterrupt, the rest
        // are still queued and run exactly once, on the next start().
        for _ in 0..collected.run {
            let Some(item) = first.take().or_else(|| self.lock().pop()) else {
                break;
            };
            self.run_item(slf, item)?;
        }
        Ok(())
    }

    fn run_item(&self, slf: &Bound<'_, Self>, item: Ready<PyCallback>) -> PyResult<()> {
        let py = slf.py();
        match item {
            Ready::Call(callback) => self.run_callback(slf, &callback),
            Ready::Timer(key) => {
                let callback = self.lock().take_timer(key);
                match callback {
                    Some(callback) => self.run_callback(slf, &callback),
                    None => Ok(()),
                }
            }
            Ready::Io { token, events } => {
                let target = {
                    let mut reactor = self.lock();
                    let target = reactor
                        .io_target(token, events)
                        .map(|(_, h, ev)| (h.func.clone_ref(py), h.fileobj.clone_ref(py), ev));
                    // Whatever the handler does, the fd owes a re-arm, so it is never
                    // left deaf while still ready (no poll happens while it runs).
                    if target.is_some() {
                        reactor.dispatched(token);
                    }
                    target
                };
                let Some((func, fileobj, delivered)) = target else {
                    return Ok(());
                };
                let outcome = func.bind(py).call1((fileobj.bind(py), delivered.bits()));
                match outcome {
                    Ok(result) => self.after_tornado_call(slf, &result),
                    Err(err) => self.fail(slf, err, func.bind(py)),
                }
            }
        }
    }

    fn run_callback(&self, slf: &Bound<'_, Self>, callback: &PyCallback) -> PyResult<()> {
        let py = slf.py();
        if callback.is_cancelled(py) {
            return Ok(());
        }
        match callback.call(py) {
            Ok(result) if callback.tornado => self.after_tornado_call(slf, &result),
            Ok(_) => Ok(()),
            Err(err) => self.fail(slf, err, callback.func.bind(py)),
        }
    }

    /// Tornado awaits a coroutine or future returned by a callback, to log its error.
    fn after_tornado_call(&self, slf: &Bound<'_, Self>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        if result.is_none() {
            return Ok(());
        }
        let py = slf.py();
        match slf.call_method1(intern!(py, "_callback_returned"), (result,)) {
            Ok(_) => Ok(()),
            Err(err) => self.fail(slf, err, result),
        }
    }

    fn fail(&self, slf: &Bound<'_, Self>, err: PyErr, culprit: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        match classify(py, err) {
            Failure::Exit(err) => Err(err),
            Failure::Report(err) => {
                let context = PyDict::new(py);
                let message = format!("Exception in callback {}", culprit.repr()?);
                context.set_item(intern!(py, "message"), message)?;
                context.set_item(intern!(py, "exception"), err.value(py))?;
                context.set_item(intern!(py, "callback"), culprit)?;
                if let Err(handler_err) =
                    slf.call_method1(intern!(py, "call_exception_handler"), (context,))
                {
                    match classify(py, handler_err) {
                        Failure::Exit(exit) => return Err(exit),
                        Failure::Report(e) => e.write_unraisable(py, Some(slf.as_any())),
                    }
                }
                Ok(())
            }
        }
    }

    /// Empties the reactor and the inbox, for the caller to drop outside the lock.
    fn take_all(
        &self,
        deregister: bool,
    ) -> (Vec<PyCallback>, Vec<(RawFd, PyHandler)>, Vec<PyCallback>) {
        let (callbacks, handlers) = {
            let mut reactor = self.lock();
            if deregister {
                reactor.drain()
            } else {
                reactor.forget()
            }
        };
        let mut queued = Vec::new();
        self.shared.inbox.drain_all(&mut queued);
        (callbacks, handlers, queued)
    }
}

#[pymethods]
impl Loop {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(new_loop()?)
    }

    /// Returns the current time on the loop's clock (`time.monotonic()`).
    fn time(&self) -> f64 {
        nanos_to_secs(monotonic_now())
    }

    /// asyncio: arranges for `callback(*args)` to be called on the next iteration.
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let (cb, handle) = self.cancellable(py, callback, args, context, "call_soon")?;
        self.lock().push(cb);
        Ok(handle)
    }

    /// asyncio: like `call_soon`, from any thread; wakes the loop.
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon_threadsafe(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let (cb, handle) = self.cancellable(py, callback, args, context, "call_soon_threadsafe")?;
        self.push_threadsafe(cb);
        Ok(handle)
    }

    /// asyncio: arranges for `callback(*args)` to be called after `delay` seconds.
    #[pyo3(signature = (delay, callback, *args, context = None))]
    fn call_later(
        &self,
        delay: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TimerHandle> {
        self.check_open()?;
        let deadline = deadline_after(monotonic_now(), delay).map_err(errors::time_error)?;
        let cb = PyCallback::asyncio(callback, args, context, "call_later")?;
        self.schedule_timer(deadline, cb)
    }

    /// asyncio: arranges for `callback(*args)` to be called at loop time `when`.
    #[pyo3(signature = (when, callback, *args, context = None))]
    fn call_at(
        &self,
        when: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TimerHandle> {
        self.check_open()?;
        let deadline = deadline_at(when).map_err(errors::time_error)?;
        let cb = PyCallback::asyncio(callback, args, context, "call_at")?;
        self.schedule_timer(deadline, cb)
    }

    /// Calls the given callback on the next I/O loop iteration.
    ///
    /// It is safe to call this method from any thread at any time, except from a
    /// signal handler (use `add_callback_from_signal`, which is the same here).
    /// A callback added after `close()` is dropped silently.
    #[pyo3(signature = (callback, *args, **kwargs))]
    fn add_callback(
        &self,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let cb = PyCallback::tornado(callback, args, kwargs, "add_callback")?;
        if self.shared.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.push_threadsafe(cb);
        Ok(())
    }

    /// Runs `callback` at the time `deadline` from the I/O loop.
    ///
    /// `deadline` is a number on the loop's clock (`time()`) or a
    /// `datetime.timedelta` relative to now. Returns a handle for `remove_timeout`.
    #[pyo3(signature = (deadline, callback, *args, **kwargs))]
    fn add_timeout(
        &self,
        py: Python<'_>,
        deadline: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<TimerHandle> {
        self.check_open()?;
        let deadline =
            if deadline.is_instance_of::<PyFloat>() || deadline.is_instance_of::<PyInt>() {
                deadline_at(deadline.extract()?)
            } else if deadline.is_instance(
                &py.import(intern!(py, "datetime"))?
                    .getattr(intern!(py, "timedelta"))?,
            )? {
                let delay: f64 = deadline
                    .call_method0(intern!(py, "total_seconds"))?
                    .extract()?;
                deadline_after(monotonic_now(), delay)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "Unsupported deadline {}: expected a number or a datetime.timedelta",
                    deadline.repr()?
                )));
            }
            .map_err(errors::time_error)?;
        let cb = PyCallback::tornado(callback, args, kwargs, "add_timeout")?;
        self.schedule_timer(deadline, cb)
    }

    /// Runs ``callback(*args, **kwargs)`` after ``delay`` seconds (Tornado's
    /// ``IOLoop.call_later``); returns a handle for ``remove_timeout``.
    ///
    /// A lone ``context=`` keyword holding a ``contextvars.Context`` is asyncio's,
    /// honoured so that asyncio code can use this loop too.
    #[pyo3(signature = (delay, callback, *args, **kwargs))]
    fn _tornado_call_later(
        &self,
        delay: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<TimerHandle> {
        self.check_open()?;
        let deadline = deadline_after(monotonic_now(), delay).map_err(errors::time_error)?;
        self.schedule_tornado(deadline, callback, args, kwargs, "call_later")
    }

    /// Runs ``callback(*args, **kwargs)`` at the loop time ``when`` (Tornado's
    /// ``IOLoop.call_at``); returns a handle for ``remove_timeout``.
    #[pyo3(signature = (when, callback, *args, **kwargs))]
    fn _tornado_call_at(
        &self,
        when: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<TimerHandle> {
        self.check_open()?;
        let deadline = deadline_at(when).map_err(errors::time_error)?;
        self.schedule_tornado(deadline, callback, args, kwargs, "call_at")
    }

    /// Cancels a pending timeout. Removing one that already ran does nothing.
    fn remove_timeout(&self, timeout: &Bound<'_, PyAny>) -> PyResult<()> {
        let handle =
            timeout.cast::<TimerHandle>().map_err(|_| {
                PyTypeError::new_err(format!(
                "remove_timeout() expects a handle returned by add_timeout or call_later, got {}",
                timeout.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
            })?;
        handle.call_method0("cancel")?;
        Ok(())
    }

    /// Registers `handler` to receive events for `fd`.
    ///
    /// `fd` is an int or an object with a `fileno()` method; the handler is called
    /// as `handler(fd, events)` with the same object. `events` is a combination of
    /// `READ`, `WRITE` and `ERROR`; errors are always reported.
    fn add_handler(
        &self,
        fd: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        events: u32,
    ) -> PyResult<()> {
        self.check_process()?;
        check_callable(handler, "add_handler")?;
        let (raw, fileobj) = split_fd(fd)?;
        let entry = PyHandler {
            func: handler.clone().unbind(),
            fileobj: fileobj.unbind(),
        };
        let replaced = self
            .lock()
            .add_fd(raw, IoEvents::from_bits_truncate(events), entry);
        // A handler of a closed fd whose number was reused, dropped outside the lock.
        drop(replaced.map_err(errors::fd_error)?);
        Ok(())
    }

    /// Changes the events we listen for on `fd`.
    fn update_handler(&self, fd: &Bound<'_, PyAny>, events: u32) -> PyResult<()> {
        self.check_process()?;
        let (raw, _) = split_fd(fd)?;
        self.lock()
            .update_fd(raw, IoEvents::from_bits_truncate(events))
            .map_err(errors::fd_error)
    }

    /// Stops listening for events on `fd`. Unknown fds are ignored.
    fn remove_handler(&self, fd: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check_process()?;
        let raw = match split_fd(fd) {
            Ok((raw, _)) if raw >= 0 => Some(raw),
            // A closed file object (fileno() raises or returns -1): find it by identity.
            _ => None,
        };
        let removed = {
            let mut reactor = self.lock();
            let raw = raw.or_else(|| reactor.fds.find(|h| h.fileobj.is(fd)));
            raw.and_then(|raw| reactor.remove_fd(raw))
        };
        drop(removed);
        Ok(())
    }

    /// Runs iterations until `stop()`; the faces wrap it as `start()` and
    /// `run_forever()`.
    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let py = slf.py();
        this.check_process()?;
        let me = thread_id::current();
        if this
            .shared
            .loop_thread
            .compare_exchange(NO_THREAD, me, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(PyRuntimeError::new_err(
                "This event loop is already running",
            ));
        }
        let previous_wakeup = match this.install_signal_wakeup(py) {
            Ok(previous) => previous,
            Err(e) => {
                this.shared.loop_thread.store(NO_THREAD, Ordering::SeqCst);
                return Err(e);
            }
        };
        let mut result = Ok(());
        // A plain load first: the swap is a locked instruction, paid only on stop.
        while !(this.shared.stopping.load(Ordering::Relaxed)
            && this.shared.stopping.swap(false, Ordering::SeqCst))
        {
            if let Err(e) = this.run_once(slf) {
                result = Err(e);
                break;
            }
        }
        this.shared.loop_thread.store(NO_THREAD, Ordering::SeqCst);
        if let Some(previous) = previous_wakeup {
            let signal = py.import(intern!(py, "signal"))?;
            signal
                .getattr(intern!(py, "set_wakeup_fd"))?
                .call1((previous,))?;
        }
        result
    }

    /// Stops the loop after the current iteration. Called before the loop starts,
    /// the next start returns at once.
    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if !self.on_loop_thread() {
            self.shared.inbox.wake();
        }
    }

    /// Whether the loop is running.
    fn is_running(&self) -> bool {
        self.shared.loop_thread.load(Ordering::Relaxed) != NO_THREAD
    }

    /// Whether the loop was closed.
    fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Releases everything the loop holds and returns the objects that were
    /// registered with `add_handler` (for `close(all_fds=True)`). Refuses while
    /// running; a second call returns an empty list.
    fn _close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if self.is_running() {
            return Err(PyRuntimeError::new_err("Cannot close a running event loop"));
        }
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(PyList::empty(py));
        }
        let forked = std::process::id() != self.pid;
        let (callbacks, handlers, mut queued) = self.take_all(!forked);
        queued.extend(self.shared.inbox.close());
        let fileobjs = PyList::new(py, handlers.iter().map(|(_, h)| h.fileobj.bind(py)))?;
        drop((callbacks, handlers, queued));
        Ok(fileobjs)
    }

    fn get_debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    fn set_debug(&self, enabled: bool) {
        self.debug.store(enabled, Ordering::Relaxed);
    }

    /// Sizes of the engine's queues, for tests and diagnostics: `ready`, `timers`
    /// (live), `timer_heap` (entries, cancelled included), `handlers` and `polls`.
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

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The GC may run while this thread holds the lock (it never does while
        // allocating, but be safe): then skip, which only delays collection.
        let mut result = Ok(());
        let mut visit_callback = |c: &PyCallback| {
            if result.is_ok() {
                result = c.traverse(&visit);
            }
        };
        if let Ok(reactor) = self.shared.reactor.try_lock() {
            reactor.for_each_callback(&mut visit_callback);
            self.shared.inbox.try_for_each(&mut visit_callback);
            reactor.fds.for_each_handler(|h| {
                if result.is_ok() {
                    result = visit.call(&h.func).and_then(|()| visit.call(&h.fileobj));
                }
            });
        }
        result
    }

    fn __clear__(&self) {
        let taken = self.take_all(std::process::id() == self.pid);
        drop(taken);
    }
}

//! The Python host of the engine's iteration (see `crate::reactor::iteration`): it adds
//! the GIL (released while the poll may block), signals, and how Python callbacks
//! and fd owners are called.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::callback::PyCallback;
use super::context;
use super::core::LoopCore;
use super::fd_owner::FdJob;
use super::report;
use super::thread_id::{self, NO_THREAD};
use crate::{monotonic_now, Blocking, IoEvents, PollPlan, Work};

/// The most callbacks taken from the ready queue under one lock.
const CALL_BATCH: usize = 64;

/// Releases the GIL while the poll blocks, so other Python threads run.
struct ReleaseGil<'py>(Python<'py>);

impl Blocking for ReleaseGil<'_> {
    fn block<T: Send>(&mut self, f: impl FnOnce() -> T + Send) -> T {
        self.0.detach(f)
    }
}

/// A ready item taken out of the reactor, to run without holding it.
enum Job {
    Call(PyCallback),
    Fd(mio::Token, FdJob, IoEvents),
}

impl Job {
    /// What to name if the job runs too long (debug mode): the function, its
    /// arguments and its handle (for a transport, the transport alone).
    fn culprit(&self, py: Python<'_>) -> Culprit {
        let of = |cb: &PyCallback| Culprit {
            func: cb.func.clone_ref(py),
            args: cb.args().map(|a| a.clone_ref(py).into_any()),
            handle: cb.handle().map(|h| h.object().clone_ref(py)),
        };
        match self {
            Job::Call(callback) => of(callback),
            Job::Fd(_, FdJob::Handler { func, .. }, _) => Culprit::alone(func.clone_ref(py)),
            Job::Fd(_, FdJob::Watchers { reader, writer }, _) => reader
                .as_ref()
                .or(writer.as_ref())
                .map_or_else(|| Culprit::alone(py.None()), |cb| of(cb)),
            Job::Fd(_, FdJob::Transport(transport), _) => {
                Culprit::alone(transport.object.clone_ref(py))
            }
        }
    }
}

/// What a slow job is named by (see `mioloop._handles.culprit`).
pub(crate) struct Culprit {
    pub(crate) func: Py<PyAny>,
    pub(crate) args: Option<Py<PyAny>>,
    pub(crate) handle: Option<Py<PyAny>>,
}

impl Culprit {
    fn alone(func: Py<PyAny>) -> Self {
        Culprit {
            func,
            args: None,
            handle: None,
        }
    }
}

fn same(callback: PyCallback) -> PyCallback {
    callback
}

/// Hands the signal numbers that arrived to the face's `_dispatch_signals` hook, which
/// schedules the handlers of `add_signal_handler`.
fn dispatch_signals(slf: &Bound<'_, LoopCore>, signums: &[u8]) -> PyResult<()> {
    if signums.is_empty() {
        return Ok(());
    }
    let py = slf.py();
    let dispatch = slf.get().hooks.dispatch_signals.bind(py);
    dispatch.call1((slf, PyBytes::new(py, signums))).map(drop)
}

impl LoopCore {
    /// One iteration: poll, then run what was ready.
    fn run_once(&self, slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let shared = &*self.shared;
        // Debug mode times each item, so it takes them one at a time. Read before
        // the lock: it may run Python.
        let slow_limit = Self::slow_callback_limit(slf)?;
        let mut dropped = Vec::new();
        let mut reactor = self.lock();
        let plan = reactor.begin(&shared.inbox, same, monotonic_now, &mut dropped);
        let mut interrupted = false;
        // A callback at the front taken under the first lock (a chain of callbacks
        // runs one an iteration).
        let mut first = None;
        let collected = if plan == PollPlan::Skip {
            // Busy with callbacks and polled moments ago: one lock for all of it. No
            // poll, so no signal can be waiting to run before the first item.
            let collected = reactor.end(None, &shared.inbox, same, monotonic_now);
            let popped = if collected.run > 0 && slow_limit.is_none() {
                reactor.pop_call()
            } else {
                None
            };
            drop(reactor);
            if let Some(callback) = popped {
                if collected.run == 1 {
                    // The iteration is this callback alone (a chain's link): run it
                    // where it was popped, without a move into the loop's jobs.
                    let ran = self.run_callback(slf, &callback);
                    callback.release(py);
                    ran?;
                    return Ok(());
                }
                first = Some(Job::Call(callback));
            }
            collected
        } else {
            drop(reactor);
            // Owners of fds closed meanwhile may run Python code when dropped.
            drop(std::mem::take(&mut dropped));
            let mut guard = self.lock_poller();
            let poller = guard.as_mut().ok_or_else(super::errors::closed)?;
            interrupted = poller.poll(plan, &mut ReleaseGil(py), || {
                shared.lock().rearm_all(&mut dropped);
            })?;
            drop(std::mem::take(&mut dropped));
            self.lock()
                .end(Some(poller.events()), &shared.inbox, same, monotonic_now)
        };
        if collected.signalled || interrupted {
            let signums = self.signals.drain();
            // Runs Python's signal handlers; a KeyboardInterrupt leaves start(), and
            // the collected work stays queued for the next start(). Then the
            // handlers of add_signal_handler are scheduled.
            py.check_signals()?;
            dispatch_signals(slf, &signums)?;
        }
        // Callbacks at the front of the queue are taken a batch at a time under one
        // lock; a timer or an fd event is taken alone and resolved when it runs (a
        // callback before it may cancel or remove it). If an item raises
        // KeyboardInterrupt, the rest of its batch goes back to the front: what was
        // collected runs exactly once, on the next start().
        let mut left = collected.run;
        let mut calls = Vec::new();
        while left > 0 {
            let job = if let Some(job) = first.take() {
                left -= 1;
                Some(job)
            } else {
                let mut reactor = self.lock();
                // A lone item goes the plain way: a batch of one would cost the
                // buffer's allocation for nothing.
                if left > 1
                    && slow_limit.is_none()
                    && reactor.pop_calls(&mut calls, left.min(CALL_BATCH)) > 0
                {
                    None
                } else {
                    let Some(item) = reactor.pop() else {
                        break;
                    };
                    left -= 1;
                    match reactor.resolve(item) {
                        None => continue,
                        Some(Work::Call(callback)) => Some(Job::Call(callback)),
                        Some(Work::Io {
                            token,
                            handler,
                            events,
                            ..
                        }) => Some(Job::Fd(token, handler.job(py, events), events)),
                    }
                }
            };
            let timed = slow_limit.and_then(|limit| {
                let culprit = job.as_ref()?.culprit(py);
                Some((limit, culprit, Instant::now()))
            });
            match job {
                None => {
                    left -= calls.len();
                    self.run_calls(slf, &mut calls)?;
                }
                Some(Job::Call(callback)) => {
                    let ran = self.run_callback(slf, &callback);
                    callback.release(py);
                    ran?;
                }
                Some(Job::Fd(token, job, events)) => self.run_fd_job(slf, token, job, events)?,
            }
            if let Some((limit, culprit, started)) = timed {
                Self::report_if_slow(slf, culprit, started.elapsed(), limit)?;
            }
        }
        Ok(())
    }

    /// Runs a batch of callbacks in order, leaving `calls` empty; on an exit, puts
    /// the ones that did not run back at the front of the queue.
    fn run_calls(&self, slf: &Bound<'_, Self>, calls: &mut Vec<PyCallback>) -> PyResult<()> {
        let mut batch = calls.drain(..);
        while let Some(callback) = batch.next() {
            let ran = self.run_callback(slf, &callback);
            callback.release(slf.py());
            if let Err(exit) = ran {
                let rest: Vec<PyCallback> = batch.collect();
                let mut reactor = self.lock();
                for callback in rest.into_iter().rev() {
                    reactor.push_front(crate::Ready::Call(callback));
                }
                return Err(exit);
            }
        }
        Ok(())
    }

    #[inline]
    fn run_callback(&self, slf: &Bound<'_, Self>, callback: &PyCallback) -> PyResult<()> {
        let py = slf.py();
        if callback.is_cancelled() {
            return Ok(());
        }
        match callback.call(py) {
            Ok(result) if callback.is_tornado() => {
                report::after_tornado_call(slf.as_any(), &self.hooks, &result)
            }
            Ok(_) => Ok(()),
            // Tornado ignores a callback's CancelledError (asyncio reports it).
            Err(err) if callback.is_tornado() && report::is_cancelled_error(py, &err) => Ok(()),
            Err(err) if callback.is_tornado() => {
                report::fail_tornado(slf.as_any(), &self.hooks, err, callback.func.bind(py))
            }
            Err(err) => report::fail_callback(slf.as_any(), err, callback),
        }
    }

    fn run_fd_job(
        &self,
        slf: &Bound<'_, Self>,
        token: mio::Token,
        job: FdJob,
        events: IoEvents,
    ) -> PyResult<()> {
        let py = slf.py();
        match job {
            FdJob::Handler {
                func,
                fileobj,
                context,
            } => {
                let func = func.bind(py);
                let outcome = context::run_in(py, &context, || {
                    func.call1((fileobj.bind(py), events.bits()))
                });
                match outcome {
                    Ok(result) => report::after_tornado_call(slf.as_any(), &self.hooks, &result),
                    Err(err) => report::fail(slf.as_any(), err, func),
                }
            }
            FdJob::Watchers { reader, writer } => {
                if let Some(reader) = reader {
                    self.run_callback(slf, &reader)?;
                }
                let Some(writer) = writer else {
                    return Ok(());
                };
                let current = self
                    .lock()
                    .fds
                    .by_token(token)
                    .is_some_and(|(_, owner)| owner.handler.has_writer(&writer));
                if current {
                    self.run_callback(slf, &writer)?;
                }
                // The reference is released here, outside the lock.
                drop::<Arc<PyCallback>>(writer);
                Ok(())
            }
            FdJob::Transport(transport) => {
                let object = transport.object.bind(py);
                match (transport.on_ready)(object, token, events) {
                    Ok(()) => Ok(()),
                    Err(err) => report::fail_transport(slf.as_any(), err, object),
                }
            }
        }
    }
}

#[pymethods]
impl LoopCore {
    /// Takes a share of Python's signal wake-up fd for this loop (for
    /// `add_signal_handler`); `False` off the main thread.
    fn _wakeup_acquire(&self, py: Python<'_>) -> PyResult<bool> {
        self.signals.acquire(py)
    }

    /// Gives back a share taken with `_wakeup_acquire`.
    fn _wakeup_release(&self, py: Python<'_>) -> PyResult<()> {
        self.signals.release(py)
    }

    /// Runs iterations until `stop()`; the faces wrap it as `start()` and
    /// `run_forever()`. A `stop()` made before it returns at once (Tornado's rule),
    /// or with `iterate_first`, after one iteration (asyncio's).
    #[pyo3(signature = (iterate_first = false))]
    fn _run(slf: &Bound<'_, Self>, iterate_first: bool) -> PyResult<()> {
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
        let wakeup_share = match this.signals.acquire(py) {
            Ok(taken) => taken,
            Err(e) => {
                this.shared.loop_thread.store(NO_THREAD, Ordering::SeqCst);
                return Err(e);
            }
        };
        let result = (|| {
            if iterate_first {
                this.run_once(slf)?;
            }
            // A plain load first: the swap is a locked instruction, paid only on stop.
            while !(this.shared.stopping.load(Ordering::Relaxed)
                && this.shared.stopping.swap(false, Ordering::SeqCst))
            {
                this.run_once(slf)?;
            }
            Ok(())
        })();
        this.shared.loop_thread.store(NO_THREAD, Ordering::SeqCst);
        if wakeup_share {
            this.signals.release(py)?;
        }
        result
    }
}

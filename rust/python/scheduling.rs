//! Scheduling methods of both faces: asyncio's `call_soon`, `call_later`,
//! `call_at`, `call_soon_threadsafe`, and Tornado's `add_callback`,
//! `add_timeout`, `call_later`, `call_at`, `remove_timeout`.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyTuple};

use super::args;
use super::callback::PyCallback;
use super::context;
use super::core::LoopCore;
use super::errors;
use super::handle::{self, Handle};
use crate::{deadline_after, deadline_at, monotonic_now, nanos_to_secs, Nanos};

/// When a timer is due: after a delay (`call_later`), or at a loop time
/// (`call_at`).
pub(crate) enum When {
    After(f64),
    /// The time, and whether it was given as an int (`when()` gives it back so).
    At(f64, bool),
}

/// What a `TimerHandle`'s `when()` says: the time `call_at` was given (an int stays
/// one, as asyncio keeps it), else the deadline on the loop's clock.
#[derive(Clone, Copy)]
pub(crate) struct Shown {
    pub(crate) time: f64,
    pub(crate) int: bool,
}

impl When {
    /// `call_later`'s `delay`.
    pub(crate) fn delay(delay: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(When::After(args::number(delay, "call_later", "delay")?))
    }

    /// `call_at`'s `when` (an int stays one).
    pub(crate) fn at(when: &Bound<'_, PyAny>) -> PyResult<Self> {
        let time = args::number(when, "call_at", "when")?;
        Ok(When::At(time, when.is_instance_of::<PyInt>()))
    }
}

impl Shown {
    fn of(when: &When, deadline: Nanos) -> Self {
        match *when {
            When::At(time, int) => Shown { time, int },
            When::After(_) => Shown {
                time: nanos_to_secs(deadline),
                int: false,
            },
        }
    }
}

impl LoopCore {
    /// asyncio's `call_soon` (its Python entry point and docstring are in
    /// `fastcall.rs`, as for every method up to `tornado_timer`).
    pub(crate) fn call_soon(
        &self,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.check_thread()?;
        let (cb, handle) = self.cancellable(callback, args, context, "call_soon")?;
        self.shared.push(cb);
        Ok(handle.into_object())
    }

    /// asyncio's `call_soon_threadsafe`.
    pub(crate) fn call_soon_threadsafe(
        &self,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (cb, handle) = self.cancellable(callback, args, context, "call_soon_threadsafe")?;
        self.shared.push_threadsafe(callback.py(), cb);
        Ok(handle.into_object())
    }

    /// asyncio's `call_later` and `call_at`.
    pub(crate) fn asyncio_timer(
        &self,
        when: When,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (deadline, method, shown) = self.timer_deadline(when)?;
        let cb = PyCallback::asyncio(callback, args, context, method)?;
        self.schedule_timer(callback.py(), deadline, shown, cb)
    }

    /// Tornado's `add_callback`.
    pub(crate) fn add_callback(
        &self,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let cb = PyCallback::tornado(callback, args, kwargs, "add_callback")?;
        if self.shared.is_closed() {
            return Ok(());
        }
        self.shared.push_threadsafe(callback.py(), cb);
        Ok(())
    }

    /// Tornado's `add_timeout`.
    pub(crate) fn add_timeout(
        &self,
        deadline: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        self.check_open()?;
        let deadline = args::tornado_deadline(deadline)?;
        let cb = PyCallback::tornado(callback, args, kwargs, "add_timeout")?;
        let shown = Shown::of(&When::After(0.0), deadline);
        self.schedule_timer(callback.py(), deadline, shown, cb)
    }

    /// Tornado's `call_later` and `call_at` (a lone asyncio `context=` keyword is
    /// honoured).
    pub(crate) fn tornado_timer(
        &self,
        when: When,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let (deadline, method, shown) = self.timer_deadline(when)?;
        self.schedule_tornado(deadline, shown, callback, args, kwargs, method)
    }

    /// What both faces' `call_later` and `call_at` check first (an open loop, its
    /// own thread), then the deadline, the name of the method that takes `when`, and
    /// what the handle's `when()` says.
    fn timer_deadline(&self, when: When) -> PyResult<(Nanos, &'static str, Shown)> {
        self.check_open()?;
        self.check_thread()?;
        let (deadline, method) = match when {
            When::After(delay) => (deadline_after(monotonic_now(), delay), "call_later"),
            When::At(time, _) => (deadline_at(time), "call_at"),
        };
        let deadline = deadline.map_err(errors::time_error)?;
        Ok((deadline, method, Shown::of(&when, deadline)))
    }

    /// An asyncio callback and the `Handle` that cancels it (a closed loop refuses).
    fn cancellable(
        &self,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
        method: &str,
    ) -> PyResult<(PyCallback, Handle)> {
        self.check_open()?;
        let debug = self.debug.load(std::sync::atomic::Ordering::Relaxed);
        PyCallback::asyncio(callback, args, context, method)?.with_handle(callback.py(), debug)
    }

    fn schedule_timer(
        &self,
        py: Python<'_>,
        deadline: Nanos,
        shown: Shown,
        mut callback: PyCallback,
    ) -> PyResult<Py<PyAny>> {
        let source = if self.debug.load(std::sync::atomic::Ordering::Relaxed) {
            Some(handle::source_traceback(py)?)
        } else {
            None
        };
        // Timers may be many, and wait long: their contexts are set aside.
        callback.set_aside();
        let key = self.lock().timers.insert(deadline, callback);
        handle::timer_handle(py, key, shown, Arc::downgrade(&self.shared), source)
    }

    /// Schedules a Tornado-style timer, or an asyncio one if the only keyword is an
    /// asyncio ``context``.
    fn schedule_tornado(
        &self,
        deadline: Nanos,
        shown: Shown,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        method: &str,
    ) -> PyResult<Py<PyAny>> {
        let py = callback.py();
        if let Some(kwargs) = kwargs.filter(|k| k.len() == 1) {
            if let Some(context) = kwargs.get_item(intern!(py, "context"))? {
                if context::is_context(&context) {
                    let cb = PyCallback::asyncio(callback, args, Some(&context), method)?;
                    return self.schedule_timer(py, deadline, shown, cb);
                }
            }
        }
        let cb = PyCallback::tornado(callback, args, kwargs, method)?;
        self.schedule_timer(py, deadline, shown, cb)
    }
}

#[pymethods]
impl LoopCore {
    /// Cancels a pending timeout. Removing one that already ran does nothing.
    fn remove_timeout(&self, timeout: &Bound<'_, PyAny>) -> PyResult<()> {
        handle::cancel_timer(timeout)?;
        Ok(())
    }
}

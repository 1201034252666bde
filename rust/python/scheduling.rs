//! Scheduling methods of both faces: asyncio's `call_soon`, `call_later`,
//! `call_at`, `call_soon_threadsafe`, and Tornado's `add_callback`,
//! `add_timeout`, `call_later`, `call_at`, `remove_timeout`.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::args;
use super::callback::PyCallback;
use super::context;
use super::core::LoopCore;
use super::errors;
use super::handle::Handle;
use super::timer_handle;
use crate::{deadline_after, deadline_at, monotonic_now, nanos_to_secs, Nanos};

/// When a Tornado timer is due: after a delay, or at a loop time.
pub(crate) enum When {
    After(f64),
    At(f64),
}

impl LoopCore {
    /// Tornado's `add_callback` (its Python entry point and docstring are in
    /// `fastcall.rs`, as for the two below).
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
        self.schedule_timer(callback.py(), deadline, cb)
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
        self.check_open()?;
        self.check_thread()?;
        let (deadline, method) = match when {
            When::After(delay) => (deadline_after(monotonic_now(), delay), "call_later"),
            When::At(time) => (deadline_at(time), "call_at"),
        };
        let deadline = deadline.map_err(errors::time_error)?;
        self.schedule_tornado(deadline, callback, args, kwargs, method)
    }

    /// An asyncio callback and the `Handle` that cancels it (a closed loop refuses).
    fn cancellable(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
        method: &str,
    ) -> PyResult<(PyCallback, Handle)> {
        self.check_open()?;
        PyCallback::asyncio(callback, args, context, method)?.with_handle(py)
    }

    fn schedule_timer(
        &self,
        py: Python<'_>,
        deadline: Nanos,
        callback: PyCallback,
    ) -> PyResult<Py<PyAny>> {
        let key = self.lock().timers.insert(deadline, callback);
        timer_handle::new_handle(
            py,
            key,
            nanos_to_secs(deadline),
            Arc::downgrade(&self.shared),
        )
    }

    /// Schedules a Tornado-style timer, or an asyncio one if the only keyword is an
    /// asyncio ``context``.
    fn schedule_tornado(
        &self,
        deadline: Nanos,
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
                    return self.schedule_timer(py, deadline, cb);
                }
            }
        }
        let cb = PyCallback::tornado(callback, args, kwargs, method)?;
        self.schedule_timer(py, deadline, cb)
    }
}

#[pymethods]
impl LoopCore {
    /// asyncio: arranges for `callback(*args)` to be called on the next iteration,
    /// in `context` (default: the current context).
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.check_thread()?;
        let (cb, handle) = self.cancellable(py, callback, args, context, "call_soon")?;
        self.shared.push(cb);
        Ok(handle.into_object())
    }

    /// asyncio: like `call_soon`, from any thread; wakes the loop.
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon_threadsafe(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (cb, handle) = self.cancellable(py, callback, args, context, "call_soon_threadsafe")?;
        self.shared.push_threadsafe(py, cb);
        Ok(handle.into_object())
    }

    /// asyncio: arranges for `callback(*args)` to be called after `delay` seconds.
    #[pyo3(signature = (delay, callback, *args, context = None))]
    fn call_later(
        &self,
        delay: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.check_open()?;
        self.check_thread()?;
        let deadline = deadline_after(monotonic_now(), delay).map_err(errors::time_error)?;
        let cb = PyCallback::asyncio(callback, args, context, "call_later")?;
        self.schedule_timer(callback.py(), deadline, cb)
    }

    /// asyncio: arranges for `callback(*args)` to be called at loop time `when`.
    #[pyo3(signature = (when, callback, *args, context = None))]
    fn call_at(
        &self,
        when: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.check_open()?;
        self.check_thread()?;
        let deadline = deadline_at(when).map_err(errors::time_error)?;
        let cb = PyCallback::asyncio(callback, args, context, "call_at")?;
        self.schedule_timer(callback.py(), deadline, cb)
    }

    /// Cancels a pending timeout. Removing one that already ran does nothing.
    fn remove_timeout(&self, timeout: &Bound<'_, PyAny>) -> PyResult<()> {
        timer_handle::cancel_handle(timeout)?;
        Ok(())
    }
}

//! A queued Python callback, and how it is called.

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use super::handles::Handle;

/// A callback with its arguments, as the ready queue and the timer heap hold it.
pub(crate) struct PyCallback {
    pub(crate) func: Py<PyAny>,
    /// `None` when there are no arguments: the call then allocates nothing.
    pub(crate) args: Option<Py<PyTuple>>,
    /// An asyncio `contextvars.Context` to run in.
    pub(crate) context: Option<Py<PyAny>>,
    /// The asyncio `Handle` that can cancel it.
    pub(crate) handle: Option<Py<Handle>>,
    /// Tornado semantics: a returned awaitable is awaited and its error logged.
    pub(crate) tornado: bool,
}

/// What a callback's failure means for the loop.
pub(crate) enum Failure {
    /// `KeyboardInterrupt` or `SystemExit`: leave `start()`.
    Exit(PyErr),
    /// Any other exception: report it and go on.
    Report(PyErr),
}

pub(crate) fn check_callable(func: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
    if func.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{method}() expects a callable, got {}",
            func.get_type().name()?
        )))
    }
}

impl PyCallback {
    /// A callback with asyncio's calling convention (`*args`, optional `context`).
    pub(crate) fn asyncio(
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<&Bound<'_, PyAny>>,
        method: &str,
    ) -> PyResult<Self> {
        check_callable(func, method)?;
        Ok(PyCallback {
            func: func.clone().unbind(),
            args: (!args.is_empty()).then(|| args.clone().unbind()),
            context: context.filter(|c| !c.is_none()).map(|c| c.clone().unbind()),
            handle: None,
            tornado: false,
        })
    }

    /// A callback with Tornado's calling convention (`*args, **kwargs`).
    pub(crate) fn tornado(
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        method: &str,
    ) -> PyResult<Self> {
        check_callable(func, method)?;
        let py = func.py();
        let (func, args) = match kwargs.filter(|k| !k.is_empty()) {
            None => (
                func.clone().unbind(),
                (!args.is_empty()).then(|| args.clone().unbind()),
            ),
            Some(kwargs) => {
                let partial = py
                    .import(intern!(py, "functools"))?
                    .getattr(intern!(py, "partial"))?;
                let mut all = vec![func.clone()];
                all.extend(args.iter());
                (
                    partial.call(PyTuple::new(py, all)?, Some(kwargs))?.unbind(),
                    None,
                )
            }
        };
        Ok(PyCallback {
            func,
            args,
            context: None,
            handle: None,
            tornado: true,
        })
    }

    pub(crate) fn is_cancelled(&self, py: Python<'_>) -> bool {
        self.handle
            .as_ref()
            .is_some_and(|h| h.bind(py).get().is_cancelled())
    }

    /// Calls it; the result is returned only when Tornado semantics may need it.
    pub(crate) fn call<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let func = self.func.bind(py);
        match (&self.context, &self.args) {
            (None, None) => func.call0(),
            (None, Some(args)) => func.call1(args.bind(py)),
            (Some(context), args) => {
                let mut all = vec![func.clone()];
                if let Some(args) = args {
                    all.extend(args.bind(py).iter());
                }
                context
                    .bind(py)
                    .call_method1(intern!(py, "run"), PyTuple::new(py, all)?)
            }
        }
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.func)?;
        visit.call(&self.args)?;
        visit.call(&self.context)?;
        visit.call(&self.handle)
    }
}

/// Sorts a callback's error: exits propagate, the rest are reported.
pub(crate) fn classify(py: Python<'_>, err: PyErr) -> Failure {
    if err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py) {
        Failure::Exit(err)
    } else {
        Failure::Report(err)
    }
}

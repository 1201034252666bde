//! A queued Python callback, how it is called, and the `Handle` that cancels it.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use super::context::CallbackContext;
use super::handle::Handle;

/// A callback with its arguments and its context, as the ready queue, the timer
/// heap and an fd's watchers hold it.
pub(crate) struct PyCallback {
    /// The asyncio `Handle` that can cancel it. First: fields are dropped in
    /// order, and the handle must stop pointing at the others before they go.
    handle: HandleLink,
    pub(crate) func: Py<PyAny>,
    /// `None` when there are no arguments: the call then allocates nothing.
    args: Option<Py<PyTuple>>,
    /// The `contextvars.Context` it runs in.
    context: CallbackContext,
    /// Tornado semantics: a returned awaitable is awaited and its error logged.
    tornado: bool,
    /// The context is a copy made for this callback alone.
    own_context: bool,
    /// That copy is off the garbage collector's lists ([`PyCallback::set_aside`]).
    /// (Booleans, not one byte of flags: their spare values are where the ready
    /// queue's item keeps which kind it is, so that it needs no word of its own.)
    set_aside: bool,
}

/// `TypeError` unless `func` is callable. Inline, as `callable()` decides: its
/// type has a call slot.
#[inline]
pub(crate) fn check_callable(func: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
    // SAFETY: a live object's type is a live type object (the GIL is held).
    if unsafe { (*pyo3::ffi::Py_TYPE(func.as_ptr())).tp_call.is_some() } {
        Ok(())
    } else {
        Err(not_callable(func, method))
    }
}

/// `functools.partial(func, *args, **kwargs)`: Tornado's callbacks take keywords.
#[cold]
fn with_keywords(
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<Py<PyAny>> {
    let py = func.py();
    let partial = py
        .import(intern!(py, "functools"))?
        .getattr(intern!(py, "partial"))?;
    let mut all = vec![func.clone()];
    all.extend(args.iter());
    Ok(partial.call(PyTuple::new(py, all)?, Some(kwargs))?.unbind())
}

#[cold]
fn not_callable(func: &Bound<'_, PyAny>, method: &str) -> PyErr {
    match func.get_type().name() {
        Ok(name) => PyTypeError::new_err(format!("{method}() expects a callable, got {name}")),
        Err(err) => err,
    }
}

impl PyCallback {
    /// A callback with asyncio's calling convention (`*args`, optional `context`).
    #[inline(always)]
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
            context: CallbackContext::given_or_current(context, func.py())?,
            handle: HandleLink(None),
            tornado: false,
            own_context: context.map_or(true, |c| c.is_none()),
            set_aside: false,
        })
    }

    /// A callback with Tornado's calling convention (`*args, **kwargs`), in the
    /// current context.
    #[inline(always)]
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
            Some(kwargs) => (with_keywords(func, args, kwargs)?, None),
        };
        Ok(PyCallback {
            func,
            args,
            context: CallbackContext::copy_current(py)?,
            handle: HandleLink(None),
            tornado: true,
            own_context: true,
            set_aside: false,
        })
    }

    /// Attaches a new `Handle` that cancels this callback, and returns it; in
    /// debug mode, the handle keeps where it was made.
    #[inline(always)]
    pub(crate) fn with_handle(mut self, py: Python<'_>, debug: bool) -> PyResult<(Self, Handle)> {
        let source = if debug {
            Some(super::handle::source_traceback(py)?)
        } else {
            None
        };
        let handle = Handle::new(
            py,
            &self.func,
            self.args.as_ref(),
            self.context.object(),
            source,
        )?;
        self.handle = HandleLink(Some(handle.clone_ref(py)));
        Ok((self, handle))
    }

    /// Takes its context off the garbage collector's lists while it waits, if the
    /// context is a copy made for it (see `context.rs`): the loop's choice for a
    /// callback that may wait among many. Called with the GIL held.
    pub(crate) fn set_aside(&mut self) {
        if self.own_context && !self.set_aside {
            // SAFETY: a copy made for this callback alone, tracked until now (it is
            // set aside once); every caller holds the GIL, and `release` is told.
            unsafe { self.context.set_aside() };
            self.set_aside = true;
        }
    }

    /// The `contextvars.Context` it runs in.
    pub(crate) fn context(&self) -> &Py<PyAny> {
        self.context.object()
    }

    /// Runs `f` in its context, or outside it if it cannot be entered (see
    /// [`run_in_if_free`](super::context::run_in_if_free)).
    pub(crate) fn in_context_if_free<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce() -> PyResult<T>,
    ) -> PyResult<T> {
        super::context::run_in_if_free(py, self.context.object(), f)
    }

    /// Whether it has Tornado's semantics: a returned awaitable is awaited and
    /// its error logged.
    pub(crate) fn is_tornado(&self) -> bool {
        self.tornado
    }

    /// The `Handle` that cancels it, if it has one.
    pub(crate) fn handle(&self) -> Option<&Handle> {
        self.handle.0.as_ref()
    }

    /// Its arguments (`None`: none).
    pub(crate) fn args(&self) -> Option<&Py<PyTuple>> {
        self.args.as_ref()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.handle.0.as_ref().is_some_and(Handle::is_cancelled)
    }

    /// Calls it in its context; the result is returned for Tornado semantics.
    pub(crate) fn call<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let func = self.func.bind(py);
        self.context.run(py, || match &self.args {
            None => func.call0(),
            Some(args) => func.call1(args.bind(py)),
        })
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.func)?;
        visit.call(&self.args)?;
        // The handle holds no reference to them (and is not a GC object).
        self.context.traverse(visit)
    }

    /// Lets go of it where the thread is known to hold the GIL (the iteration, after
    /// running it): plain decrements, without the check a `Drop` makes of the
    /// thread's state for each reference.
    #[inline(always)]
    pub(crate) fn release(self, py: Python<'_>) {
        let PyCallback {
            mut handle,
            func,
            args,
            context,
            tornado: _,
            own_context: _,
            set_aside,
        } = self;
        handle.release(py);
        func.drop_ref(py);
        if let Some(args) = args {
            args.drop_ref(py);
        }
        context.release(py, set_aside);
    }
}

/// A callback's `Handle`, which points at the callback's function, arguments and
/// context without owning them: it is told to forget them before they go.
struct HandleLink(Option<Handle>);

impl HandleLink {
    fn release(&mut self, py: Python<'_>) {
        if let Some(handle) = self.0.take() {
            handle.forget_callback();
            handle.release(py);
        }
    }
}

impl Drop for HandleLink {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.forget_callback();
        }
    }
}

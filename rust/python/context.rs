//! asyncio's `contextvars` rule: a callback runs in the context that was current
//! when it was scheduled, or in the one given with `context=`.
//!
//! The C API is used directly (`PyContext_CopyCurrent`, `PyContext_Enter`/`Exit`):
//! `Context.run(func, *args)` would build a tuple per call.

use pyo3::exceptions::PyTypeError;
use std::mem::ManuallyDrop;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

/// A copy of the current context (`contextvars.copy_context()`).
pub(crate) fn capture(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: the GIL is held (we have `py`); the function returns a new reference
    // or NULL with an exception set, which `from_owned_ptr_or_err` turns into Err.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// Whether `obj` is a `contextvars.Context`.
pub(crate) fn is_context(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `obj` is a live object and the GIL is held.
    unsafe { ffi::PyContext_CheckExact(obj.as_ptr()) != 0 }
}

/// The context a queued callback runs in: one given by its caller, or a copy of
/// the context current when it was scheduled, made for it alone.
///
/// # Garbage collection
/// A copy made for one callback may be taken off the garbage collector's lists
/// while the callback waits ([`CallbackContext::set_aside`]): the loop does so for
/// a callback queued behind many others, a timer, or one sent from another
/// thread. Nothing else can reach the copy (Python code only ever gets copies of a
/// context, never the one it runs in), so no collection could free it, yet a
/// burst of queued callbacks made every collection traverse each copy: a third of
/// the time of a burst. A callback queued behind few others (a chain's link)
/// keeps its copy tracked: taking it off and putting it back would cost more than
/// a collection spends on it. A copy set aside goes back on the lists before it is
/// released: a `Context`'s deallocator unlinks it from them without checking. The
/// price: a reference cycle that runs through a set-aside context's variables
/// stays uncollected until the callback runs or is dropped.
///
/// Every `Context` is tracked from its creation, so an untracked one is such a
/// copy (the callback that holds it knows it set it aside; `Drop` checks).
pub(crate) struct CallbackContext(ManuallyDrop<Py<PyAny>>);

impl CallbackContext {
    /// A copy of the current context, for one callback.
    pub(crate) fn copy_current(py: Python<'_>) -> PyResult<Self> {
        Ok(CallbackContext(ManuallyDrop::new(capture(py)?)))
    }

    /// Takes a copy made by [`copy_current`](Self::copy_current) off the garbage
    /// collector's lists while its callback waits (see the type's notes).
    ///
    /// # Safety
    /// The context is such a copy, still tracked, that no one else holds; the
    /// thread holds the GIL. [`release`](Self::release) is then told so.
    pub(crate) unsafe fn set_aside(&self) {
        // SAFETY: as the caller promises.
        unsafe { ffi::PyObject_GC_UnTrack(self.0.as_ptr().cast()) };
    }

    /// `context` if given and not `None` (it must be a `contextvars.Context`), else
    /// a copy of the current one.
    pub(crate) fn given_or_current(
        context: Option<&Bound<'_, PyAny>>,
        py: Python<'_>,
    ) -> PyResult<Self> {
        match context.filter(|c| !c.is_none()) {
            None => Self::copy_current(py),
            Some(context) => {
                if !is_context(context) {
                    return Err(PyTypeError::new_err(format!(
                        "context must be a contextvars.Context, got {}",
                        context.get_type().name()?
                    )));
                }
                Ok(CallbackContext(ManuallyDrop::new(context.clone().unbind())))
            }
        }
    }

    /// The `contextvars.Context` object.
    pub(crate) fn object(&self) -> &Py<PyAny> {
        &self.0
    }

    /// Runs `f` in this context (see [`run_in`]).
    pub(crate) fn run<T>(&self, py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
        run_in(py, &self.0, f)
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.0)
    }

    /// What `Drop` does, on a thread known to hold the GIL, for a context that
    /// was `set_aside` or not (no check of the collector's lists needed).
    pub(crate) fn release(self, py: Python<'_>, set_aside: bool) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the GIL is held (we have `py`); the context is alive until the
        // reference is dropped here, and `this` is never dropped. A context set
        // aside is untracked (the caller's word), so tracking it once is allowed.
        let context = unsafe {
            if set_aside {
                ffi::PyObject_GC_Track(this.0.as_ptr().cast());
            }
            ManuallyDrop::take(&mut this.0)
        };
        context.drop_ref(py);
    }
}

/// Puts a context copied for one callback back on the garbage collector's lists,
/// before its last reference goes (its deallocator unlinks it unchecked).
///
/// # Safety
/// `ptr` is a live `Context` and the thread holds the GIL.
unsafe fn track_again(ptr: *mut ffi::PyObject) {
    // SAFETY: the caller's contract; tracking twice is refused by CPython, hence
    // the check.
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 0 {
            ffi::PyObject_GC_Track(ptr.cast());
        }
    }
}

impl Drop for CallbackContext {
    fn drop(&mut self) {
        // Attaching is a thread-local check when the thread already is, as it is
        // wherever a callback runs or is cancelled. `None` when the interpreter is
        // going away: the context is then kept rather than maybe freed untracked.
        let _ = Python::try_attach(|_| {
            let ptr = self.0.as_ptr();
            // SAFETY: `ptr` is alive (we still hold our reference) and this thread
            // is attached. The field is dropped once, here, and not used afterwards.
            unsafe {
                track_again(ptr);
                ManuallyDrop::drop(&mut self.0);
            }
        });
    }
}

/// Runs `f` in `context` if it can be entered, else outside it (it is entered on
/// this thread already, by whoever runs now): for reporting an error where what
/// failed ran, which must not fail for want of its context.
pub(crate) fn run_in_if_free<T>(
    py: Python<'_>,
    context: &Py<PyAny>,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    if enter(py, context).is_err() {
        return f();
    }
    let result = f();
    leave(context);
    result
}

/// Runs `f` with `context` entered, as `context.run` does: changes it makes to
/// context variables stay in `context`.
pub(crate) fn run_in<T>(
    py: Python<'_>,
    context: &Py<PyAny>,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    enter(py, context)?;
    let result = f();
    leave(context);
    result
}

/// Makes `context` the thread's current one; `RuntimeError` if it is entered
/// already.
#[inline(always)]
fn enter(py: Python<'_>, context: &Py<PyAny>) -> PyResult<()> {
    // SAFETY: `context` is a `contextvars.Context` (checked by `given_or_current`
    // or made by `capture`), kept alive by the caller's reference; the GIL is held.
    // Entering fails (RuntimeError set) if the context is already entered.
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Leaves `context`, which this thread entered last.
#[inline(always)]
fn leave(context: &Py<PyAny>) {
    // SAFETY: as in `enter`; the context is the one this thread entered last, so
    // leaving it cannot fail.
    unsafe { ffi::PyContext_Exit(context.as_ptr()) };
}

//! asyncio's `contextvars` rule: a callback runs in the context that was current
//! when it was scheduled, or in the one given with `context=`.
//!
//! The C API is used directly (`PyContext_CopyCurrent`, `PyContext_Enter`/`Exit`):
//! `Context.run(func, *args)` would build a tuple per call.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

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

/// `context` if given and not `None` (it must be a `contextvars.Context`), else a
/// copy of the current one.
pub(crate) fn given_or_current(
    context: Option<&Bound<'_, PyAny>>,
    py: Python<'_>,
) -> PyResult<Py<PyAny>> {
    match context.filter(|c| !c.is_none()) {
        None => capture(py),
        Some(context) => {
            if !is_context(context) {
                return Err(PyTypeError::new_err(format!(
                    "context must be a contextvars.Context, got {}",
                    context.get_type().name()?
                )));
            }
            Ok(context.clone().unbind())
        }
    }
}

/// Runs `f` with `context` entered, as `context.run` does: changes it makes to
/// context variables stay in `context`.
pub(crate) fn run_in<T>(
    py: Python<'_>,
    context: &Py<PyAny>,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    let ctx = context.as_ptr();
    // SAFETY: `context` is a `contextvars.Context` (checked by `given_or_current`
    // or made by `capture`), kept alive by the caller's reference; the GIL is held.
    // Entering fails (RuntimeError set) if the context is already entered.
    if unsafe { ffi::PyContext_Enter(ctx) } != 0 {
        return Err(PyErr::fetch(py));
    }
    let result = f();
    // SAFETY: as above; the context is the one this thread entered just now, so
    // leaving it cannot fail.
    unsafe { ffi::PyContext_Exit(ctx) };
    result
}

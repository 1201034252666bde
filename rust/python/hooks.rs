//! The face's methods the engine calls back into, in one typed table: looked up
//! on the loop's class once, when the loop is made (a class without one of them
//! cannot make a loop), instead of by name on every call.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The face's methods, unbound (called with the loop first). The class holds
/// them too, and they hold no loop: no cycle runs through them, so the garbage
/// collector need not see them.
pub(crate) struct Hooks {
    /// `_dispatch_signals(signums: bytes)`: schedules the handlers of
    /// `add_signal_handler` for the signals that arrived.
    pub(crate) dispatch_signals: Py<PyAny>,
    /// `_tornado_callback_failed(description, callback, exception)`: a callback
    /// with Tornado's semantics raised.
    pub(crate) tornado_callback_failed: Py<PyAny>,
    /// `_callback_returned(result)`: a Tornado callback returned a coroutine or
    /// future, to be awaited for its error.
    pub(crate) callback_returned: Py<PyAny>,
    /// `_slow_callback(func, args, handle, seconds)`: debug mode's report of a
    /// callback that ran too long.
    pub(crate) slow_callback: Py<PyAny>,
}

impl Hooks {
    /// The hooks of `cls`; `TypeError` naming the first one it lacks.
    pub(crate) fn of(cls: &Bound<'_, PyType>) -> PyResult<Self> {
        let hook = |name: &str| -> PyResult<Py<PyAny>> {
            match cls.getattr_opt(name)? {
                Some(f) if f.is_callable() => Ok(f.unbind()),
                _ => Err(PyTypeError::new_err(format!(
                    "{} cannot make a loop: it has no method {name} \
                     (subclass mioloop.EventLoop, not LoopCore)",
                    cls.qualname()?
                ))),
            }
        };
        Ok(Hooks {
            dispatch_signals: hook("_dispatch_signals")?,
            tornado_callback_failed: hook("_tornado_callback_failed")?,
            callback_returned: hook("_callback_returned")?,
            slow_callback: hook("_slow_callback")?,
        })
    }
}

//! A transport dropped open warns (`ResourceWarning`) and closes its socket, as
//! asyncio's transports do in `__del__` — at the right moment.
//!
//! PyO3 gives a pyclass no `__del__`, and `Drop` runs at deallocation. For a
//! transport in a reference cycle (with its protocol, say) that is too late: the
//! collector first runs every finalizer of the garbage — the socket's own warns
//! "unclosed socket" and closes it — then clears the objects, the socket's slots
//! among them, and only then deallocates the transport, whose `socket.close()`
//! fails on the cleared `_io_refs`. So each transport type gets a `tp_finalize`,
//! which the collector calls in its first phase, beside the socket's, as it calls
//! asyncio's `__del__`. A transport freed by its reference count (no cycle) is
//! not finalized this way (PyO3's deallocator does not call `tp_finalize`): its
//! `Drop` warns, with everything still intact.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::PyClass;

/// A pyclass whose objects may need finalizing when the collector frees them.
pub(super) trait Finalize: PyClass {
    /// Warns and closes if the transport was left open; marks it so `Drop` does
    /// not again.
    fn finalize(slf: &Bound<'_, Self>);
}

/// Gives `T`'s type a `tp_finalize` that calls [`Finalize::finalize`].
pub(super) fn install<T: Finalize>(py: Python<'_>) {
    let ty = py.get_type::<T>();
    // SAFETY: `ty` is `T`'s live type object, a heap type that is not a base of
    // any other (the transports are not subclassable), ready and owned by this
    // module; the slot is read by the collector only while the GIL is held, which
    // this thread holds now. `PyType_Modified` drops any cached lookups.
    unsafe {
        (*ty.as_type_ptr()).tp_finalize = Some(finalize::<T>);
        ffi::PyType_Modified(ty.as_type_ptr());
    }
}

unsafe extern "C" fn finalize<T: Finalize>(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls `tp_finalize` with the GIL held, on a live object of
    // the type it was set on (or a subclass: there is none).
    let py = unsafe { Python::assume_attached() };
    // A finalizer must leave the exception being raised, if any, as it found it.
    let raised = PyErr::take(py);
    // SAFETY: `obj` is live for the call; we only borrow it.
    let object = unsafe { Bound::from_borrowed_ptr(py, obj) };
    if let Ok(transport) = object.cast::<T>() {
        T::finalize(transport);
    }
    if let Some(raised) = raised {
        raised.restore(py);
    }
}

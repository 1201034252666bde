//! `Handle`, what `call_soon` returns to cancel its callback: a C-API type (see
//! `raw_type.rs` for why not a pyclass).
//!
//! # Safety
//! An object of the type is a `HandleObject`, because only `Handle::new` makes one
//! (see `raw_type.rs`), and the GIL is held wherever one is touched.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::raw_type;

#[repr(C)]
struct HandleObject {
    ob_base: ffi::PyObject,
    cancelled: AtomicBool,
}

static HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// An owned reference to a `Handle` object.
pub(crate) struct Handle(Py<PyAny>);

impl Handle {
    /// A new handle, not cancelled.
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        let tp = handle_type(py)?;
        // SAFETY: the handle type's objects are `HandleObject`s, for which all
        // zeroes is valid (`cancelled` is false).
        let object = unsafe { raw_type::alloc(py, tp, std::mem::size_of::<HandleObject>()) }?;
        Ok(Handle(object))
    }

    fn object(&self) -> &HandleObject {
        // SAFETY: see the module's notes; the reference keeps the object alive.
        unsafe { &*self.0.as_ptr().cast::<HandleObject>() }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.object().cancelled.load(Ordering::Relaxed)
    }

    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        Handle(self.0.clone_ref(py))
    }

    /// The Python object, as returned to the caller.
    pub(crate) fn into_object(self) -> Py<PyAny> {
        self.0
    }
}

/// Adds the type to the module as `Handle`.
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("Handle", handle_type(module.py())?)
}

fn handle_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    HANDLE_TYPE
        .get_or_try_init(py, || create_type(py))
        .map(|tp| tp.bind(py))
}

fn create_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    raw_type::create_type(
        py,
        &raw_type::Spec {
            name: c"mioloop._mioloop.Handle",
            doc: c"A callback scheduled with ``call_soon``; ``cancel()`` stops it from running.",
            size: std::mem::size_of::<HandleObject>(),
            methods: &[
                (
                    c"cancel",
                    cancel,
                    c"Cancels the callback; does nothing if it already ran.",
                ),
                (c"cancelled", cancelled, c"Whether ``cancel()`` was called."),
            ],
            repr,
            dealloc,
        },
    )
}

/// # Safety
/// `slf` is a live `HandleObject` (see the module's notes).
unsafe fn flag<'a>(slf: *mut ffi::PyObject) -> &'a AtomicBool {
    // SAFETY: as the caller promises.
    unsafe { &(*slf.cast::<HandleObject>()).cancelled }
}

unsafe extern "C" fn cancel(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with a live instance of its type, GIL held.
    unsafe { flag(slf) }.store(true, Ordering::Relaxed);
    raw_type::none()
}

unsafe extern "C" fn cancelled(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { ffi::PyBool_FromLong(flag(slf).load(Ordering::Relaxed).into()) }
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe {
        let text: &'static [u8] = if flag(slf).load(Ordering::Relaxed) {
            b"<Handle cancelled>\0"
        } else {
            b"<Handle>\0"
        };
        ffi::PyUnicode_FromString(text.as_ptr().cast::<c_char>())
    }
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates a live instance with the GIL held; a
    // `HandleObject` has nothing to drop.
    unsafe { raw_type::free(slf) }
}

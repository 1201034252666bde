//! `Handle`, what `call_soon` returns to cancel its callback, written against the
//! C API rather than as a `#[pyclass]`.
//!
//! # Why not a pyclass
//! PyO3 makes every pyclass a garbage-collected type. Allocating a GC object counts
//! towards the collector's next run even when the object is untracked at once, so a
//! pyclass handle per `call_soon` made a burst of callbacks run the collector twice
//! as often (and spend a third of its time there). A handle holds no Python
//! reference, so it can never be part of a cycle: it needs no GC support at all.
//!
//! # Why the raw allocator
//! A handle's memory comes from the C allocator, not from pymalloc's arenas, where
//! the `contextvars.Context` copied for each callback lives. Interleaved with the
//! handles, those contexts spread over more pages, and a full collection (which
//! walks every one of them) took 2.5 times as long with a million callbacks queued.
//!
//! # Safety
//! Every `unsafe` block here relies on the same facts: the GIL is held (CPython
//! calls the slots with it; the Rust helpers take a `Python` token), and an object
//! of the type is a `HandleObject` because only `Handle::new` makes one
//! (instantiation from Python is disallowed, and the type cannot be subclassed).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

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
        let tp = handle_type(py)?.as_ptr().cast::<ffi::PyTypeObject>();
        // SAFETY: the GIL is held and `tp` is the live handle type. The memory is
        // zeroed (`cancelled` is false) and the size of a `HandleObject`;
        // `PyObject_Init` sets its type (taking a reference to the heap type) and a
        // reference count of one, which `from_owned_ptr` takes over.
        unsafe {
            let memory = ffi::PyMem_RawCalloc(1, std::mem::size_of::<HandleObject>());
            if memory.is_null() {
                return Err(PyMemoryError::new_err("out of memory for a Handle"));
            }
            let object = ffi::PyObject_Init(memory.cast(), tp);
            Ok(Handle(Bound::from_owned_ptr(py, object).unbind()))
        }
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
    // CPython keeps pointers to the method table for the type's lifetime: leak it
    // (once per process, a few bytes).
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        method(
            c"cancel",
            cancel,
            c"Cancels the callback; does nothing if it already ran.",
        ),
        method(c"cancelled", cancelled, c"Whether ``cancel()`` was called."),
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = [
        slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
        slot(ffi::Py_tp_repr, repr as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(
            ffi::Py_tp_doc,
            c"A callback scheduled with ``call_soon``; ``cancel()`` stops it from running.".as_ptr()
                as *mut c_void,
        ),
        ffi::PyType_Slot::default(),
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"mioloop._mioloop.Handle".as_ptr(),
        basicsize: std::mem::size_of::<HandleObject>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_IMMUTABLETYPE
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the GIL is held; the spec and slots outlive the call (CPython copies
    // what it keeps, except the method table, which is 'static). Returns a new
    // reference to a type, or NULL with an exception set.
    let tp = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec)) }?;
    Ok(tp.cast_into::<PyType>()?.unbind())
}

fn method(
    name: &'static std::ffi::CStr,
    meth: unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject,
    doc: &'static std::ffi::CStr,
) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: meth },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: doc.as_ptr(),
    }
}

fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// # Safety
/// `slf` is a live `HandleObject` (see the module's notes).
unsafe fn flag<'a>(slf: *mut ffi::PyObject) -> &'a AtomicBool {
    // SAFETY: as the caller promises.
    unsafe { &(*slf.cast::<HandleObject>()).cancelled }
}

unsafe extern "C" fn cancel(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with a live instance of its type, GIL held.
    unsafe {
        flag(slf).store(true, Ordering::Relaxed);
        let none = ffi::Py_None();
        ffi::Py_IncRef(none);
        none
    }
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
    // SAFETY: CPython deallocates a live instance of the type with the GIL held;
    // `Handle::new` allocated it with `PyMem_RawCalloc`. An instance holds a
    // reference to its (heap) type, released once the memory is freed.
    unsafe {
        let tp = ffi::Py_TYPE(slf);
        ffi::PyMem_RawFree(slf.cast());
        ffi::Py_DecRef(tp.cast());
    }
}

//! `Handle`, what `call_soon` returns to cancel its callback: a C-API type (see
//! `raw_type.rs` for why not a pyclass).
//!
//! Its repr names the callback, as asyncio's does (`<Handle func(1) at f.py:3>`):
//! while the callback waits, the handle points at its function and arguments,
//! which the queued `PyCallback` owns; the callback clears the pointers before it
//! lets go of them (see `callback.rs`), so the handle needs no reference of its
//! own, and no part in the garbage collector. In debug mode it also keeps where
//! it was made (`_source_traceback`, owned: a list of frame summaries).
//!
//! # Safety
//! An object of the type is a `HandleObject`, because only `Handle::new` makes one
//! (see `raw_type.rs`), and the GIL is held wherever one is touched.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::raw_type;

#[repr(C)]
struct HandleObject {
    ob_base: ffi::PyObject,
    cancelled: AtomicBool,
    /// The waiting callback's function and arguments tuple (null: none), borrowed
    /// from the `PyCallback` that owns them.
    func: AtomicPtr<ffi::PyObject>,
    args: AtomicPtr<ffi::PyObject>,
    /// The `contextvars.Context` it runs in, borrowed likewise.
    context: AtomicPtr<ffi::PyObject>,
    debug: raw_type::DebugInfo,
    weakrefs: *mut ffi::PyObject,
}

static HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
/// The blocks of freed objects of the type, for the next ones.
static FREED: raw_type::FreeList = raw_type::FreeList::new();

/// An owned reference to a `Handle` object.
pub(crate) struct Handle(Py<PyAny>);

impl Handle {
    /// A new handle, not cancelled, of the callback `func(*args)` run in `context`
    /// (which must outlive the handle's view of them: [`Handle::forget_callback`]),
    /// made where `source_traceback` says (debug mode).
    pub(crate) fn new(
        py: Python<'_>,
        func: &Py<PyAny>,
        args: Option<&Py<pyo3::types::PyTuple>>,
        context: &Py<PyAny>,
        source_traceback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let tp = handle_type(py)?;
        // SAFETY: the handle type's objects are `HandleObject`s, for which all
        // zeroes is valid (not cancelled, null pointers).
        let object = unsafe { raw_type::alloc::<HandleObject>(py, tp, &FREED) }?;
        let handle = Handle(object);
        let this = handle.fields();
        this.func.store(func.as_ptr(), Ordering::Relaxed);
        this.args.store(
            args.map_or(std::ptr::null_mut(), |a| a.as_ptr()),
            Ordering::Relaxed,
        );
        this.context.store(context.as_ptr(), Ordering::Relaxed);
        this.debug.set_source(source_traceback);
        Ok(handle)
    }

    fn fields(&self) -> &HandleObject {
        // SAFETY: see the module's notes; the reference keeps the object alive.
        unsafe { &*self.0.as_ptr().cast::<HandleObject>() }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.fields().cancelled.load(Ordering::Relaxed)
    }

    /// The callback is about to let go of its function and arguments: the
    /// handle stops pointing at them.
    pub(crate) fn forget_callback(&self) {
        let this = self.fields();
        this.func.store(std::ptr::null_mut(), Ordering::Relaxed);
        this.args.store(std::ptr::null_mut(), Ordering::Relaxed);
        this.context.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Lets go of the reference on a thread that holds the GIL.
    pub(crate) fn release(self, py: Python<'_>) {
        self.0.drop_ref(py);
    }

    /// The Python object.
    pub(crate) fn object(&self) -> &Py<PyAny> {
        &self.0
    }

    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        Handle(self.0.clone_ref(py))
    }

    /// The Python object, as returned to the caller.
    pub(crate) fn into_object(self) -> Py<PyAny> {
        self.0
    }
}

/// Where a handle made now was made from, in debug mode: asyncio's
/// `extract_stack()` of the calling Python frame.
pub(crate) fn source_traceback(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let frame = py
        .import(intern!(py, "sys"))?
        .call_method0(intern!(py, "_getframe"))?;
    Ok(py
        .import(intern!(py, "asyncio.format_helpers"))?
        .call_method1(intern!(py, "extract_stack"), (frame,))?
        .unbind())
}

/// `repr()` of a handle: what `mioloop._handles.handle_repr` makes of its state.
pub(crate) fn describe(
    py: Python<'_>,
    name: &str,
    cancelled: bool,
    when: Option<Py<PyAny>>,
    callback: Option<(Py<PyAny>, Option<Py<PyAny>>)>,
    source_traceback: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (func, args) = callback.map_or((None, None), |(f, a)| (Some(f), a));
    Ok(py
        .import(intern!(py, "mioloop._handles"))?
        .call_method1(
            intern!(py, "handle_repr"),
            (name, cancelled, when, func, args, source_traceback),
        )?
        .unbind())
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
                (
                    c"get_context",
                    get_context,
                    c"The ``contextvars.Context`` the callback runs in (None once it ran).",
                ),
            ],
            getters: &[(
                c"_source_traceback",
                get_source_traceback,
                c"Debug mode: where the handle was made (asyncio's extract_stack()); else None.",
            )],
            weaklist_offset: std::mem::offset_of!(HandleObject, weakrefs),
            repr,
            dealloc,
        },
    )
}

/// # Safety
/// `slf` is a live `HandleObject` (see the module's notes).
unsafe fn handle<'a>(slf: *mut ffi::PyObject) -> &'a HandleObject {
    // SAFETY: as the caller promises.
    unsafe { &*slf.cast::<HandleObject>() }
}

unsafe extern "C" fn cancel(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with a live instance of its type, GIL held.
    let this = unsafe { handle(slf) };
    if !this.cancelled.swap(true, Ordering::Relaxed) {
        // SAFETY: as above.
        unsafe { this.debug.keep_repr(slf) };
    }
    raw_type::none()
}

unsafe extern "C" fn cancelled(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { ffi::PyBool_FromLong(handle(slf).cancelled.load(Ordering::Relaxed).into()) }
}

unsafe extern "C" fn get_context(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`; the pointer is live while non-null (see the notes).
    unsafe { raw_type::new_ref_or_none(handle(slf).context.load(Ordering::Relaxed)) }
}

unsafe extern "C" fn get_source_traceback(
    slf: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { handle(slf) }.debug.source_object()
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    let (py, this) = unsafe { (Python::assume_attached(), handle(slf)) };
    // SAFETY: the pointers are live while non-null (the callback owns them, and
    // clears them first); each becomes a new reference here, under the GIL.
    let borrowed = |field: &AtomicPtr<ffi::PyObject>| {
        let ptr = field.load(Ordering::Relaxed);
        (!ptr.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, ptr) }.unbind())
    };
    this.debug.repr(py, |source| {
        let callback = borrowed(&this.func).map(|func| (func, borrowed(&this.args)));
        let cancelled = this.cancelled.load(Ordering::Relaxed);
        describe(py, "Handle", cancelled, None, callback, source)
    })
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates a live instance with the GIL held; weak
    // references go first, then what the handle owns, then the memory.
    unsafe {
        let this = handle(slf);
        raw_type::clear_weakrefs(slf, this.weakrefs);
        this.debug.release();
        raw_type::free(slf, &FREED);
    }
}

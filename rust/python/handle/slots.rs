//! The slots of `Handle` and `TimerHandle`: their types, methods, repr and
//! deallocation, as CPython calls them (see the parent module for the struct).

use std::ffi::{c_void, CStr};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::{HandleObject, FREED};
use crate::python::raw_type;
use crate::python::release::locked;

static HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMER_HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const CANCELLED: (&CStr, raw_type::NoArgs, &CStr) =
    (c"cancelled", cancelled, c"Whether ``cancel()`` was called.");
const GET_CONTEXT: (&CStr, raw_type::NoArgs, &CStr) = (
    c"get_context",
    get_context,
    c"The ``contextvars.Context`` the callback runs in (None once it ran).",
);
const SOURCE_TRACEBACK: (&CStr, raw_type::Getter, &CStr) = (
    c"_source_traceback",
    get_source_traceback,
    c"Debug mode: where the handle was made (asyncio's extract_stack()); else None.",
);

pub(super) fn handle_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    raw_type::type_once(
        py,
        &HANDLE_TYPE,
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
                CANCELLED,
                GET_CONTEXT,
            ],
            getters: &[SOURCE_TRACEBACK],
            weaklist_offset: std::mem::offset_of!(HandleObject, weakrefs),
            repr,
            dealloc,
        },
    )
}

pub(super) fn timer_handle_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    raw_type::type_once(
        py,
        &TIMER_HANDLE_TYPE,
        &raw_type::Spec {
            name: c"mioloop._mioloop.TimerHandle",
            doc: c"A timer. Cancelling it releases its callback and arguments at once.",
            size: std::mem::size_of::<HandleObject>(),
            methods: &[
                (
                    c"cancel",
                    cancel,
                    c"Cancels the timer; does nothing if it already ran or was cancelled.",
                ),
                CANCELLED,
                GET_CONTEXT,
                (c"when", when, c"The timer's deadline, in the loop's time."),
            ],
            getters: &[
                SOURCE_TRACEBACK,
                (
                    c"_when",
                    get_when,
                    c"The timer's deadline, as asyncio's TimerHandle keeps it (when()).",
                ),
            ],
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

/// Cancels the handle `slf`: its callback will not run, and a timer's leaves the
/// heap at once (its callback and arguments are released).
///
/// # Safety
/// `slf` is a live `HandleObject`; the GIL is held.
pub(super) unsafe fn cancel_handle(slf: *mut ffi::PyObject) {
    // SAFETY: as the caller promises.
    let this = unsafe { handle(slf) };
    if this.cancelled.swap(true, Ordering::Relaxed) {
        return;
    }
    // Before a timer leaves the heap, while the repr can still name its callback.
    // SAFETY: as the caller promises.
    unsafe { this.debug.keep_repr(slf) };
    let Some(timer) = this.timer() else {
        return;
    };
    if let Some(shared) = timer.shared.upgrade() {
        locked(shared.reactor(), |reactor, release| {
            release.later(reactor.timers.cancel(timer.key));
        });
    }
}

unsafe extern "C" fn cancel(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with a live instance of its type, GIL held.
    unsafe { cancel_handle(slf) };
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
    // SAFETY: as for `cancel`.
    let (py, this) = unsafe { (Python::assume_attached(), handle(slf)) };
    match this.waiting() {
        // SAFETY: the pointer is live while non-null (see the notes).
        Some(waiting) => unsafe {
            raw_type::new_ref_or_none(waiting.context.load(Ordering::Relaxed))
        },
        None => pending(py, this).map_or_else(raw_type::none, |(_, _, context)| context.into_ptr()),
    }
}

unsafe extern "C" fn get_source_traceback(
    slf: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { handle(slf) }.debug.source_object()
}

/// A timer's deadline as a Python number (an int if `call_at` was given one); a
/// new reference, or NULL with an error set.
fn when_object(this: &HandleObject) -> *mut ffi::PyObject {
    let Some(timer) = this.timer() else {
        return raw_type::none();
    };
    // SAFETY: the GIL is held (every caller is a slot CPython calls with it).
    unsafe {
        if timer.when.int {
            ffi::PyLong_FromDouble(timer.when.time)
        } else {
            ffi::PyFloat_FromDouble(timer.when.time)
        }
    }
}

unsafe extern "C" fn when(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    when_object(unsafe { handle(slf) })
}

unsafe extern "C" fn get_when(slf: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    when_object(unsafe { handle(slf) })
}

/// A pending timer's function, arguments (if any) and context.
type Pending = (Py<PyAny>, Option<Py<PyAny>>, Py<PyAny>);

/// A pending timer's callback, looked up in its loop's heap.
fn pending(py: Python<'_>, this: &HandleObject) -> Option<Pending> {
    let timer = this.timer()?;
    let shared = timer.shared.upgrade()?;
    let reactor = shared.lock();
    let callback = reactor.timers.get(timer.key)?;
    // New references, released after the lock is.
    Some((
        callback.func.clone_ref(py),
        callback.args().map(|a| a.clone_ref(py).into_any()),
        callback.context().clone_ref(py),
    ))
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    let (py, this) = unsafe { (Python::assume_attached(), handle(slf)) };
    this.debug.repr(py, |source| {
        let (name, when, func, args) = match this.waiting() {
            Some(waiting) => {
                // SAFETY: the pointers are live while non-null (the callback owns
                // them, and clears them first); each becomes a new reference here,
                // under the GIL.
                let borrowed = |field: &AtomicPtr<ffi::PyObject>| {
                    let ptr = field.load(Ordering::Relaxed);
                    (!ptr.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, ptr) }.unbind())
                };
                (
                    "Handle",
                    None,
                    borrowed(&waiting.func),
                    borrowed(&waiting.args),
                )
            }
            None => {
                // SAFETY: a new reference, or NULL with an error set (taken as the
                // error).
                let when = unsafe { Bound::from_owned_ptr_or_err(py, when_object(this)) }?;
                let (func, args) = pending(py, this).map_or((None, None), |(f, a, _)| (Some(f), a));
                ("TimerHandle", Some(when.unbind()), func, args)
            }
        };
        let cancelled = this.cancelled.load(Ordering::Relaxed);
        Ok(py
            .import(intern!(py, "mioloop._handles"))?
            .call_method1(
                intern!(py, "handle_repr"),
                (name, cancelled, when, func, args, source),
            )?
            .unbind())
    })
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates a live instance with the GIL held: weak
    // references go first, then what the handle owns and its timer's `Weak`, then
    // the memory.
    unsafe {
        let raw = slf.cast::<HandleObject>();
        raw_type::clear_weakrefs(slf, (*raw).weakrefs);
        (*raw).debug.release();
        if (*raw).is_timer {
            ManuallyDrop::drop(&mut (*raw).of.timer);
        }
        raw_type::free(slf, &FREED);
    }
}

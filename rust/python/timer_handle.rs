//! `TimerHandle`: what `add_timeout`, `call_later` and `call_at` return, a C-API
//! type like `Handle` (see `raw_type.rs` for why not a pyclass).
//!
//! # Safety
//! An object of the type is a `TimerObject`, because only `TimerHandle::new`
//! makes one (see `raw_type.rs`), fully written before it is returned; the GIL is
//! held wherever one is touched.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::raw_type;
use super::shared::Shared;
use crate::TimerKey;

#[repr(C)]
struct TimerObject {
    ob_base: ffi::PyObject,
    cancelled: AtomicBool,
    key: TimerKey,
    when: f64,
    shared: Weak<Shared>,
}

static TIMER_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A new handle of the timer `key`, due at loop time `when`. Cancelling it
/// releases the timer's callback and arguments at once.
pub(crate) fn new_handle(
    py: Python<'_>,
    key: TimerKey,
    when: f64,
    shared: Weak<Shared>,
) -> PyResult<Py<PyAny>> {
    let tp = timer_type(py)?;
    // SAFETY: the type's objects are `TimerObject`s. The memory is zeroed:
    // `cancelled` is then valid, and the other fields are written here, before
    // anything reads them (a zeroed `Weak` is not valid, so it is written, not
    // assigned over).
    unsafe {
        let object = raw_type::alloc(py, tp, std::mem::size_of::<TimerObject>())?;
        let timer = object.as_ptr().cast::<TimerObject>();
        std::ptr::addr_of_mut!((*timer).key).write(key);
        std::ptr::addr_of_mut!((*timer).when).write(when);
        std::ptr::addr_of_mut!((*timer).shared).write(shared);
        Ok(object)
    }
}

/// Cancels the timer of `handle` (`remove_timeout`); `TypeError` if it is not a
/// `TimerHandle`.
pub(crate) fn cancel_handle(handle: &Bound<'_, PyAny>) -> PyResult<()> {
    let tp = timer_type(handle.py())?;
    if !handle.get_type().is(tp) {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "remove_timeout() expects a handle returned by add_timeout or call_later, got {}",
            handle
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    // SAFETY: `handle` is a live object of the type, so a `TimerObject`.
    unsafe { cancel_timer(&*handle.as_ptr().cast::<TimerObject>()) };
    Ok(())
}

/// Adds the type to the module as `TimerHandle`.
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("TimerHandle", timer_type(module.py())?)
}

fn timer_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TIMER_TYPE
        .get_or_try_init(py, || {
            raw_type::create_type(
                py,
                &raw_type::Spec {
                    name: c"mioloop._mioloop.TimerHandle",
                    doc: c"A timer. Cancelling it releases its callback and arguments at once.",
                    size: std::mem::size_of::<TimerObject>(),
                    methods: &[
                        (
                            c"cancel",
                            cancel,
                            c"Cancels the timer; does nothing if it already ran or was cancelled.",
                        ),
                        (c"cancelled", cancelled, c"Whether ``cancel()`` was called."),
                        (c"when", when, c"The timer's deadline, in the loop's time."),
                    ],
                    repr,
                    dealloc,
                },
            )
        })
        .map(|tp| tp.bind(py))
}

fn cancel_timer(timer: &TimerObject) {
    if timer.cancelled.swap(true, Ordering::Relaxed) {
        return;
    }
    if let Some(shared) = timer.shared.upgrade() {
        // Dropped after the lock is released: dropping may run Python code.
        let callback = shared.lock().timers.cancel(timer.key);
        drop(callback);
    }
}

/// # Safety
/// `slf` is a live `TimerObject` (see the module's notes).
unsafe fn timer<'a>(slf: *mut ffi::PyObject) -> &'a TimerObject {
    // SAFETY: as the caller promises.
    unsafe { &*slf.cast::<TimerObject>() }
}

unsafe extern "C" fn cancel(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with a live instance of its type, GIL held.
    cancel_timer(unsafe { timer(slf) });
    raw_type::none()
}

unsafe extern "C" fn cancelled(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { ffi::PyBool_FromLong(timer(slf).cancelled.load(Ordering::Relaxed).into()) }
}

unsafe extern "C" fn when(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { ffi::PyFloat_FromDouble(timer(slf).when) }
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    let timer = unsafe { timer(slf) };
    let state = if timer.cancelled.load(Ordering::Relaxed) {
        " cancelled"
    } else {
        ""
    };
    let text =
        CString::new(format!("<TimerHandle when={}{state}>", timer.when)).unwrap_or_default();
    // SAFETY: a NUL-terminated UTF-8 string; a new reference or NULL with an error.
    unsafe { ffi::PyUnicode_FromString(text.as_ptr()) }
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates a live instance with the GIL held; its `Weak` is
    // dropped (the only field with a destructor) before the memory is freed.
    unsafe {
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*slf.cast::<TimerObject>()).shared));
        raw_type::free(slf);
    }
}

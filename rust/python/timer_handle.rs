//! `TimerHandle`: what `add_timeout`, `call_later` and `call_at` return, a C-API
//! type like `Handle` (see `raw_type.rs` for why not a pyclass).
//!
//! Its repr names the callback while it is pending, as asyncio's does, looked up
//! in the timer heap by the timer's key; in debug mode it keeps where it was made.
//!
//! # Safety
//! An object of the type is a `TimerObject`, because only `TimerHandle::new`
//! makes one (see `raw_type.rs`), fully written before it is returned; the GIL is
//! held wherever one is touched.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::raw_type;
use super::release::locked;
use super::scheduling::Shown;
use super::shared::Shared;
use crate::TimerKey;

#[repr(C)]
struct TimerObject {
    ob_base: ffi::PyObject,
    cancelled: AtomicBool,
    /// `when` was given as an int: `when()` gives an int back.
    when_int: bool,
    key: TimerKey,
    when: f64,
    shared: Weak<Shared>,
    debug: raw_type::DebugInfo,
    weakrefs: *mut ffi::PyObject,
}

static TIMER_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
/// The blocks of freed objects of the type, for the next ones.
static FREED: raw_type::FreeList = raw_type::FreeList::new();

/// A new handle of the timer `key`, due at loop time `when`, made where
/// `source_traceback` says (debug mode). Cancelling it releases the timer's
/// callback and arguments at once.
pub(crate) fn new_handle(
    py: Python<'_>,
    key: TimerKey,
    when: Shown,
    shared: Weak<Shared>,
    source_traceback: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let tp = timer_type(py)?;
    // SAFETY: the type's objects are `TimerObject`s. The memory is zeroed:
    // `cancelled` is then valid, and the other fields are written here, before
    // anything reads them (a zeroed `Weak` is not valid, so it is written, not
    // assigned over).
    unsafe {
        let object = raw_type::alloc::<TimerObject>(py, tp, &FREED)?;
        let timer = object.as_ptr().cast::<TimerObject>();
        std::ptr::addr_of_mut!((*timer).key).write(key);
        std::ptr::addr_of_mut!((*timer).when).write(when.time);
        std::ptr::addr_of_mut!((*timer).when_int).write(when.int);
        std::ptr::addr_of_mut!((*timer).shared).write(shared);
        (*timer).debug.set_source(source_traceback);
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
    unsafe { cancel_timer(handle.as_ptr()) };
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
                    getters: &[
                        (
                            c"_source_traceback",
                            get_source_traceback,
                            c"Debug mode: where the handle was made (asyncio's extract_stack()); else None.",
                        ),
                        (
                            c"_when",
                            get_when,
                            c"The timer's deadline, as asyncio's TimerHandle keeps it (when()).",
                        ),
                    ],
                    weaklist_offset: std::mem::offset_of!(TimerObject, weakrefs),
                    repr,
                    dealloc,
                },
            )
        })
        .map(|tp| tp.bind(py))
}

/// # Safety
/// `slf` is a live `TimerObject`; the GIL is held.
unsafe fn cancel_timer(slf: *mut ffi::PyObject) {
    // SAFETY: as the caller promises.
    let timer = unsafe { timer(slf) };
    if timer.cancelled.swap(true, Ordering::Relaxed) {
        return;
    }
    // Before the timer leaves the heap, while the repr can still name its callback.
    // SAFETY: as the caller promises.
    unsafe { timer.debug.keep_repr(slf) };
    if let Some(shared) = timer.shared.upgrade() {
        locked(shared.reactor(), |reactor, release| {
            release.later(reactor.timers.cancel(timer.key));
        });
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
    unsafe { cancel_timer(slf) };
    raw_type::none()
}

unsafe extern "C" fn cancelled(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { ffi::PyBool_FromLong(timer(slf).cancelled.load(Ordering::Relaxed).into()) }
}

/// The timer's deadline as a Python number (an int if `call_at` was given one).
fn when_object(timer: &TimerObject) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held (every caller is a slot CPython calls with it); each
    // returns a new reference or NULL with an error set.
    unsafe {
        if timer.when_int {
            ffi::PyLong_FromDouble(timer.when)
        } else {
            ffi::PyFloat_FromDouble(timer.when)
        }
    }
}

unsafe extern "C" fn when(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    when_object(unsafe { timer(slf) })
}

unsafe extern "C" fn get_source_traceback(
    slf: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    unsafe { timer(slf) }.debug.source_object()
}

unsafe extern "C" fn get_when(slf: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    when_object(unsafe { timer(slf) })
}

/// The pending timer's function and arguments, looked up in its loop's heap.
fn pending_callback(py: Python<'_>, timer: &TimerObject) -> Option<(Py<PyAny>, Option<Py<PyAny>>)> {
    let shared = timer.shared.upgrade()?;
    let reactor = shared.lock();
    let callback = reactor.timers.get(timer.key)?;
    // New references, released after the lock is.
    Some((
        callback.func.clone_ref(py),
        callback.args().map(|a| a.clone_ref(py).into_any()),
    ))
}

unsafe extern "C" fn repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as for `cancel`.
    let (py, timer) = unsafe { (Python::assume_attached(), timer(slf)) };
    timer.debug.repr(py, |source| {
        // SAFETY: a new reference, or NULL with an error set (taken as the error).
        let when = unsafe { Bound::from_owned_ptr_or_err(py, when_object(timer)) }?;
        let cancelled = timer.cancelled.load(Ordering::Relaxed);
        let callback = pending_callback(py, timer);
        super::handle::describe(
            py,
            "TimerHandle",
            cancelled,
            Some(when.unbind()),
            callback,
            source,
        )
    })
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: CPython deallocates a live instance with the GIL held: weak
    // references go first, then what the handle owns and the `Weak` (the fields
    // with something to release), then the memory.
    unsafe {
        let timer = slf.cast::<TimerObject>();
        raw_type::clear_weakrefs(slf, (*timer).weakrefs);
        (*timer).debug.release();
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*timer).shared));
        raw_type::free(slf, &FREED);
    }
}

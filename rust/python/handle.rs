//! `Handle` and `TimerHandle`: what `call_soon` returns, and what `call_later`,
//! `call_at` and `add_timeout` return, to cancel the callback. C-API types (see
//! `raw_type.rs` for why not pyclasses) of one struct: a timer's handle is a
//! handle with a deadline and the key of its timer.
//!
//! Its repr names the callback, as asyncio's does (`<Handle func(1) at f.py:3>`),
//! and `get_context()` gives its context: while the callback waits (and runs),
//! the handle points at its function, arguments and context, which the queued
//! `PyCallback` owns; the callback clears the pointers before it lets go of them
//! (see `callback.rs`), so the handle needs no reference of its own, and no part
//! in the garbage collector. In debug mode it also keeps where it was made
//! (`_source_traceback`, owned: a list of frame summaries).
//!
//! # Safety
//! An object of either type is a `HandleObject`, because only [`Handle::new`]
//! makes one (see `raw_type.rs`), and the GIL is held wherever one is touched.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Weak;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::raw_type;
use super::release::locked;
use super::scheduling::Shown;
use super::shared::Shared;
use crate::TimerKey;

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
    /// A `TimerHandle`'s: its timer. `None` for a `Handle`.
    timer: Option<Timer>,
    debug: raw_type::DebugInfo,
    weakrefs: *mut ffi::PyObject,
}

/// What a `TimerHandle` knows of its timer.
pub(crate) struct Timer {
    /// Where the timer waits in its loop's heap (set once it is in it).
    key: Cell<Option<TimerKey>>,
    /// What `when()` says.
    when: Shown,
    shared: Weak<Shared>,
}

impl Timer {
    /// A timer of the loop `shared` whose `when()` says `when`.
    pub(crate) fn new(when: Shown, shared: Weak<Shared>) -> Self {
        Timer {
            key: Cell::new(None),
            when,
            shared,
        }
    }
}

static HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMER_HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
/// The blocks of freed handles of both types (one struct), for the next ones.
static FREED: raw_type::FreeList = raw_type::FreeList::new();

/// An owned reference to a `Handle` or `TimerHandle` object.
pub(crate) struct Handle(Py<PyAny>);

impl Handle {
    /// A new handle, not cancelled, of the callback `func(*args)` run in `context`
    /// (which must outlive the handle's view of them: [`Handle::forget_callback`]),
    /// made where `source_traceback` says (debug mode): a `TimerHandle` if it is
    /// a `timer`'s.
    #[inline(always)]
    pub(crate) fn new(
        py: Python<'_>,
        func: &Py<PyAny>,
        args: Option<&Py<pyo3::types::PyTuple>>,
        context: &Py<PyAny>,
        timer: Option<Timer>,
        source_traceback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let tp = match timer {
            None => handle_type(py)?,
            Some(_) => timer_handle_type(py)?,
        };
        // SAFETY: the types' objects are `HandleObject`s, zeroed: all zeroes is a
        // valid `cancelled` and null pointers. `timer` is written, not assigned
        // over (zeroes are no valid `Weak`), before anything reads it.
        let object = unsafe {
            let object = raw_type::alloc::<HandleObject>(py, tp, &FREED)?;
            let raw = object.as_ptr().cast::<HandleObject>();
            std::ptr::addr_of_mut!((*raw).timer).write(timer);
            object
        };
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

    /// Tells a timer's handle where its timer is, once it is in the heap.
    pub(crate) fn set_timer_key(&self, key: TimerKey) {
        if let Some(timer) = &self.fields().timer {
            timer.key.set(Some(key));
        }
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

/// Cancels the timer of `handle` (`remove_timeout`); `TypeError` if it is not a
/// `TimerHandle`.
pub(crate) fn cancel_timer(handle: &Bound<'_, PyAny>) -> PyResult<()> {
    if !handle.get_type().is(timer_handle_type(handle.py())?) {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "remove_timeout() expects a handle returned by add_timeout or call_later, got {}",
            handle
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    // SAFETY: `handle` is a live object of the type, so a `HandleObject`.
    unsafe { cancel_handle(handle.as_ptr()) };
    Ok(())
}

/// Adds the types to the module as `Handle` and `TimerHandle`.
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("Handle", handle_type(module.py())?)?;
    module.add("TimerHandle", timer_handle_type(module.py())?)
}

const CANCELLED: (&std::ffi::CStr, raw_type::NoArgs, &std::ffi::CStr) =
    (c"cancelled", cancelled, c"Whether ``cancel()`` was called.");
const GET_CONTEXT: (&std::ffi::CStr, raw_type::NoArgs, &std::ffi::CStr) = (
    c"get_context",
    get_context,
    c"The ``contextvars.Context`` the callback runs in (None once it ran).",
);
const SOURCE_TRACEBACK: (&std::ffi::CStr, raw_type::Getter, &std::ffi::CStr) = (
    c"_source_traceback",
    get_source_traceback,
    c"Debug mode: where the handle was made (asyncio's extract_stack()); else None.",
);

fn handle_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
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

fn timer_handle_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
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
unsafe fn cancel_handle(slf: *mut ffi::PyObject) {
    // SAFETY: as the caller promises.
    let this = unsafe { handle(slf) };
    if this.cancelled.swap(true, Ordering::Relaxed) {
        return;
    }
    // Before a timer leaves the heap, while the repr can still name its callback.
    // SAFETY: as the caller promises.
    unsafe { this.debug.keep_repr(slf) };
    let Some(timer) = &this.timer else {
        return;
    };
    if let (Some(shared), Some(key)) = (timer.shared.upgrade(), timer.key.get()) {
        locked(shared.reactor(), |reactor, release| {
            release.later(reactor.timers.cancel(key));
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

/// A timer's deadline as a Python number (an int if `call_at` was given one); a
/// new reference, or NULL with an error set.
fn when_object(this: &HandleObject) -> *mut ffi::PyObject {
    let Some(timer) = &this.timer else {
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
        let (name, when) = match this.timer {
            None => ("Handle", None),
            // SAFETY: a new reference, or NULL with an error set (taken as the error).
            Some(_) => (
                "TimerHandle",
                Some(unsafe { Bound::from_owned_ptr_or_err(py, when_object(this)) }?.unbind()),
            ),
        };
        let func = borrowed(&this.func);
        let args = borrowed(&this.args);
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
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*raw).timer));
        raw_type::free(slf, &FREED);
    }
}

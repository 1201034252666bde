//! `Handle` and `TimerHandle`: what `call_soon` returns, and what `call_later`,
//! `call_at` and `add_timeout` return, to cancel the callback. C-API types (see
//! `raw_type.rs` for why not pyclasses) of one struct, 72 bytes: what differs is
//! a union, told apart by a flag set at creation.
//!
//! A `Handle`'s repr names the callback, as asyncio's does
//! (`<Handle func(1) at f.py:3>`), and `get_context()` gives its context: while the
//! callback waits (and runs), the handle points at its function, arguments and
//! context, which the queued `PyCallback` owns; the callback clears the pointers
//! before it lets go of them (see `callback.rs`), so the handle needs no reference
//! of its own, and no part in the garbage collector. A `TimerHandle` keeps only
//! its timer's key: its repr and `get_context()` look the pending timer up in the
//! heap, and the heap does not keep the handle alive (a timer whose handle was
//! dropped costs no object). In debug mode both keep where they were made
//! (`_source_traceback`, owned: a list of frame summaries).
//!
//! `slots.rs` holds the two types and what CPython calls on them.
//!
//! # Safety
//! An object of either type is a `HandleObject`, because only this module makes
//! one (see `raw_type.rs`), and the GIL is held wherever one is touched.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Weak;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;

use self::slots::{cancel_handle, handle_type, timer_handle_type};
use super::raw_type;
use super::scheduling::Shown;
use super::shared::Shared;
use crate::TimerKey;

mod slots;

#[repr(C)]
struct HandleObject {
    ob_base: ffi::PyObject,
    cancelled: AtomicBool,
    /// A `TimerHandle`: `of` is its timer (set once, at creation).
    is_timer: bool,
    of: Of,
    debug: raw_type::DebugInfo,
    weakrefs: *mut ffi::PyObject,
}

/// What a `Handle` or a `TimerHandle` points at.
#[repr(C)]
union Of {
    callback: ManuallyDrop<Waiting>,
    timer: ManuallyDrop<Timer>,
}

/// A `Handle`'s waiting callback: its function and arguments tuple (null: none)
/// and the `contextvars.Context` it runs in, borrowed from the `PyCallback` that
/// owns them.
#[repr(C)]
struct Waiting {
    func: AtomicPtr<ffi::PyObject>,
    args: AtomicPtr<ffi::PyObject>,
    context: AtomicPtr<ffi::PyObject>,
}

/// A `TimerHandle`'s timer.
#[repr(C)]
struct Timer {
    /// Where it waits in its loop's heap.
    key: TimerKey,
    /// What `when()` says.
    when: Shown,
    shared: Weak<Shared>,
}

impl HandleObject {
    fn waiting(&self) -> Option<&Waiting> {
        // SAFETY: `of` holds the variant `is_timer` says (see `new` and
        // `timer_handle`).
        (!self.is_timer).then(|| unsafe { &*self.of.callback })
    }

    fn timer(&self) -> Option<&Timer> {
        // SAFETY: as for `waiting`.
        self.is_timer.then(|| unsafe { &*self.of.timer })
    }
}

/// The blocks of freed handles of both types (one struct), for the next ones.
static FREED: raw_type::FreeList = raw_type::FreeList::new();

/// An owned reference to a `Handle` object.
pub(crate) struct Handle(Py<PyAny>);

impl Handle {
    /// A new handle, not cancelled, of the callback `func(*args)` run in `context`
    /// (which must outlive the handle's view of them: [`Handle::forget_callback`]),
    /// made where `source_traceback` says (debug mode).
    #[inline(always)]
    pub(crate) fn new(
        py: Python<'_>,
        func: &Py<PyAny>,
        args: Option<&Py<pyo3::types::PyTuple>>,
        context: &Py<PyAny>,
        source_traceback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        // SAFETY: the type's objects are `HandleObject`s, zeroed: all zeroes is a
        // valid `cancelled`, `is_timer` (false) and `Waiting` (null pointers).
        let object = unsafe { raw_type::alloc::<HandleObject>(py, handle_type(py)?, &FREED) }?;
        let handle = Handle(object);
        let this = handle.waiting();
        this.func.store(func.as_ptr(), Ordering::Relaxed);
        this.args.store(
            args.map_or(std::ptr::null_mut(), |a| a.as_ptr()),
            Ordering::Relaxed,
        );
        this.context.store(context.as_ptr(), Ordering::Relaxed);
        handle.fields().debug.set_source(source_traceback);
        Ok(handle)
    }

    fn fields(&self) -> &HandleObject {
        // SAFETY: see the module's notes; the reference keeps the object alive.
        unsafe { &*self.0.as_ptr().cast::<HandleObject>() }
    }

    fn waiting(&self) -> &Waiting {
        // SAFETY: a `Handle` is never a timer's (only `new` makes one).
        unsafe { &self.fields().of.callback }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.fields().cancelled.load(Ordering::Relaxed)
    }

    /// The callback is about to let go of its function and arguments: the
    /// handle stops pointing at them.
    pub(crate) fn forget_callback(&self) {
        let this = self.waiting();
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

/// A new `TimerHandle` of the timer `key` of the loop `shared`, due at `when`,
/// made where `source_traceback` says (debug mode). Cancelling it releases the
/// timer's callback and arguments at once.
pub(crate) fn timer_handle(
    py: Python<'_>,
    key: TimerKey,
    when: Shown,
    shared: Weak<Shared>,
    source_traceback: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    // SAFETY: the type's objects are `HandleObject`s, zeroed, then made a timer's:
    // the flag and the union's variant are written together, before anything
    // reads them (zeroes are no valid `Weak`: written, not assigned over).
    unsafe {
        let object = raw_type::alloc::<HandleObject>(py, timer_handle_type(py)?, &FREED)?;
        let raw = object.as_ptr().cast::<HandleObject>();
        std::ptr::addr_of_mut!((*raw).of).write(Of {
            timer: ManuallyDrop::new(Timer { key, when, shared }),
        });
        (*raw).is_timer = true;
        (*raw).debug.set_source(source_traceback);
        Ok(object)
    }
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

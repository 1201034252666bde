//! Small Python types written against the C API instead of as `#[pyclass]`es:
//! `Handle` and `TimerHandle`, one made per `call_soon` or `call_later`.
//!
//! # Why not a pyclass
//! PyO3 makes every pyclass a garbage-collected type. Allocating a GC object counts
//! towards the collector's next run even when the object is untracked at once, so a
//! pyclass handle per call made a burst of callbacks run the collector twice as
//! often (and spend a third of its time there). These handles hold no Python
//! reference, so they can never be part of a cycle: they need no GC support.
//!
//! # Memory
//! Their memory comes from pymalloc (`PyObject_Malloc`), as a Python object's
//! does: a handle per `call_soon` then costs a small-block allocation, not a trip
//! through the C allocator (a third of a thread-safe call's instructions when it
//! did). A type keeps the blocks of its last few freed objects for the next ones
//! (a [`FreeList`], as CPython keeps freed floats and tuples): a chain of
//! callbacks then reuses one block instead of allocating one per call. The
//! contexts queued with callbacks share pymalloc's arenas; a collection does not
//! walk them while they wait (see `context.rs`).
//!
//! # Safety
//! The types are immutable, cannot be instantiated from Python nor subclassed, so
//! an object of one is always what its module's constructor made. Every function
//! here is called with the GIL held (CPython calls the slots with it; the Rust
//! callers hold a `Python` token).

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// A `METH_NOARGS` method.
pub(crate) type NoArgs =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject;

/// A read-only attribute's getter.
pub(crate) type Getter = ffi::getter;

/// What a type is made of.
pub(crate) struct Spec {
    pub(crate) name: &'static CStr,
    pub(crate) doc: &'static CStr,
    /// The size of the object's C struct.
    pub(crate) size: usize,
    pub(crate) methods: &'static [(&'static CStr, NoArgs, &'static CStr)],
    /// Read-only attributes.
    pub(crate) getters: &'static [(&'static CStr, Getter, &'static CStr)],
    /// Where in the struct the list of weak references is (a `*mut PyObject`,
    /// null until the first weak reference): the objects can be weakly referenced,
    /// and `dealloc` must call [`clear_weakrefs`].
    pub(crate) weaklist_offset: usize,
    pub(crate) repr: unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject,
    pub(crate) dealloc: unsafe extern "C" fn(*mut ffi::PyObject),
}

/// Makes the type.
pub(crate) fn create_type(py: Python<'_>, spec: &Spec) -> PyResult<Py<PyType>> {
    // CPython keeps pointers to the method table for the type's lifetime: leak it
    // (once per type per process, a few bytes).
    let mut table: Vec<ffi::PyMethodDef> = spec
        .methods
        .iter()
        .map(|&(name, meth, doc)| ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: meth },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: doc.as_ptr(),
        })
        .collect();
    table.push(ffi::PyMethodDef::zeroed());
    let table: &'static mut [ffi::PyMethodDef] = Box::leak(table.into_boxed_slice());
    let mut getset: Vec<ffi::PyGetSetDef> = spec
        .getters
        .iter()
        .map(|&(name, get, doc)| ffi::PyGetSetDef {
            name: name.as_ptr(),
            get: Some(get),
            set: None,
            doc: doc.as_ptr(),
            closure: std::ptr::null_mut(),
        })
        .collect();
    getset.push(ffi::PyGetSetDef::default());
    let getset: &'static mut [ffi::PyGetSetDef] = Box::leak(getset.into_boxed_slice());
    // How a type made from a spec says where its weak reference list is (CPython
    // copies the member table into the type).
    let mut members = [
        ffi::PyMemberDef {
            name: c"__weaklistoffset__".as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            offset: ffi::Py_ssize_t::try_from(spec.weaklist_offset).expect("a small offset"),
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        },
        ffi::PyMemberDef::default(),
    ];
    let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let mut slots = [
        slot(ffi::Py_tp_dealloc, spec.dealloc as *mut c_void),
        slot(ffi::Py_tp_repr, spec.repr as *mut c_void),
        slot(ffi::Py_tp_methods, table.as_mut_ptr().cast()),
        slot(ffi::Py_tp_getset, getset.as_mut_ptr().cast()),
        slot(ffi::Py_tp_members, members.as_mut_ptr().cast()),
        slot(ffi::Py_tp_doc, spec.doc.as_ptr() as *mut c_void),
        ffi::PyType_Slot::default(),
    ];
    let mut type_spec = ffi::PyType_Spec {
        name: spec.name.as_ptr(),
        basicsize: c_int::try_from(spec.size).expect("a handle's struct is a few words"),
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_IMMUTABLETYPE
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the GIL is held; the spec and slots outlive the call (CPython copies
    // what it keeps, except the method table, which is 'static). Returns a new
    // reference to a type, or NULL with an exception set.
    let tp = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut type_spec)) }?;
    Ok(tp.cast_into::<PyType>()?.unbind())
}

/// How many freed blocks a type keeps.
const FREE_KEPT: usize = 64;

/// The memory of a type's last freed objects, kept for its next ones.
pub(crate) struct FreeList(UnsafeCell<([*mut c_void; FREE_KEPT], usize)>);

// SAFETY: only touched with the GIL held (by `alloc` and `free`, whose callers
// hold it), and the module declares that it uses the GIL, so one thread at a time.
unsafe impl Sync for FreeList {}

impl FreeList {
    pub(crate) const fn new() -> Self {
        FreeList(UnsafeCell::new(([std::ptr::null_mut(); FREE_KEPT], 0)))
    }

    /// The last block kept, if any.
    ///
    /// # Safety
    /// The GIL is held (the list is then this thread's alone).
    #[inline]
    unsafe fn take(&self) -> Option<*mut c_void> {
        // SAFETY: as the caller promises.
        let (blocks, len) = unsafe { &mut *self.0.get() };
        *len = len.checked_sub(1)?;
        Some(blocks[*len])
    }

    /// Keeps `block`, unless the list is full: then gives it back.
    ///
    /// # Safety
    /// As for [`take`](Self::take).
    #[inline]
    unsafe fn keep(&self, block: *mut c_void) -> Result<(), *mut c_void> {
        // SAFETY: as the caller promises.
        let (blocks, len) = unsafe { &mut *self.0.get() };
        let slot = blocks.get_mut(*len).ok_or(block)?;
        *slot = block;
        *len += 1;
        Ok(())
    }
}

/// The type `spec` describes, made on first use and kept in `cell`.
pub(crate) fn type_once<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    spec: &Spec,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.get_or_try_init(py, || create_type(py, spec))
        .map(|tp| tp.bind(py))
}

/// A new, zeroed object of type `tp`, whose struct is `T`, in a block from `kept`
/// or else from pymalloc; the caller writes the fields that zero is not a valid
/// value for. Generic, so that the zeroing is a few stores of a known size rather
/// than `calloc`'s call to `memset`.
///
/// # Safety
/// `tp` is a type made by `create_type` for the struct `T`, and `kept` its list.
#[inline]
pub(crate) unsafe fn alloc<T>(
    py: Python<'_>,
    tp: &Bound<'_, PyType>,
    kept: &FreeList,
) -> PyResult<Py<PyAny>> {
    let size = std::mem::size_of::<T>();
    // SAFETY: the GIL is held, so the list is ours alone; its blocks are
    // `size`-byte blocks of pymalloc's. The memory is zeroed here;
    // `PyObject_Init` sets its type (taking a reference to the heap type) and a
    // reference count of one, which `from_owned_ptr` takes over.
    unsafe {
        let memory = kept.take().unwrap_or_else(|| ffi::PyObject_Malloc(size));
        if memory.is_null() {
            return Err(PyMemoryError::new_err("out of memory for a handle"));
        }
        std::ptr::write_bytes(memory.cast::<u8>(), 0, size);
        let object = ffi::PyObject_Init(memory.cast(), tp.as_ptr().cast());
        Ok(Bound::from_owned_ptr(py, object).unbind())
    }
}

/// Clears the weak references to an object being deallocated (their callbacks
/// run), if it has any.
///
/// # Safety
/// Called from the type's `tp_dealloc`, with the GIL held, before the fields are
/// dropped; `weaklist` is the object's weak reference list field.
pub(crate) unsafe fn clear_weakrefs(slf: *mut ffi::PyObject, weaklist: *mut ffi::PyObject) {
    if !weaklist.is_null() {
        // SAFETY: as the caller promises.
        unsafe { ffi::PyObject_ClearWeakRefs(slf) };
    }
}

/// What a handle keeps in debug mode, both null otherwise (zeroed memory is
/// valid): where it was made (`_source_traceback`, owned) and, once cancelled,
/// the repr it had then (owned): asyncio's cancelled handles keep naming their
/// callback in debug mode after they let go of it.
#[repr(C)]
pub(crate) struct DebugInfo {
    source_traceback: AtomicPtr<ffi::PyObject>,
    repr_cache: AtomicPtr<ffi::PyObject>,
}

impl DebugInfo {
    /// Keeps `source`, where the handle was made.
    pub(crate) fn set_source(&self, source: Option<Py<PyAny>>) {
        if let Some(source) = source {
            self.source_traceback
                .store(source.into_ptr(), Ordering::Relaxed);
        }
    }

    /// A new reference to `_source_traceback`, or to `None`.
    pub(crate) fn source_object(&self) -> *mut ffi::PyObject {
        // SAFETY: the field is null or an object the handle owns; every caller is
        // a slot CPython calls with the GIL held.
        unsafe { new_ref_or_none(self.source_traceback.load(Ordering::Relaxed)) }
    }

    /// Keeps the repr of the handle `slf`, cancelled now, if it is in debug mode
    /// (it has a `source_traceback`). An error making the repr is dropped:
    /// cancelling must not fail.
    ///
    /// # Safety
    /// `slf` is the live handle these fields are part of; the GIL is held.
    pub(crate) unsafe fn keep_repr(&self, slf: *mut ffi::PyObject) {
        if self.source_traceback.load(Ordering::Relaxed).is_null()
            || !self.repr_cache.load(Ordering::Relaxed).is_null()
        {
            return;
        }
        // SAFETY: as the caller promises; a new reference or NULL with an error set.
        let text = unsafe { ffi::PyObject_Repr(slf) };
        if text.is_null() {
            // SAFETY: the GIL is held and an error is set.
            unsafe { ffi::PyErr_Clear() };
            return;
        }
        self.repr_cache.store(text, Ordering::Relaxed);
    }

    /// A handle's `tp_repr`: the kept repr, else what `describe` makes of where
    /// the handle was made; NULL with the error set if that fails.
    pub(crate) fn repr(
        &self,
        py: Python<'_>,
        describe: impl FnOnce(Option<Py<PyAny>>) -> PyResult<Py<PyAny>>,
    ) -> *mut ffi::PyObject {
        let cached = self.repr_cache.load(Ordering::Relaxed);
        if !cached.is_null() {
            // SAFETY: an object the handle owns; a new reference, under the GIL.
            return unsafe { new_ref_or_none(cached) };
        }
        let source = self.source_traceback.load(Ordering::Relaxed);
        let source = (!source.is_null())
            // SAFETY: the handle owns it; a new reference, under the GIL.
            .then(|| unsafe { Bound::from_borrowed_ptr(py, source) }.unbind());
        match describe(source) {
            Ok(text) => text.into_ptr(),
            Err(err) => {
                err.restore(py);
                std::ptr::null_mut()
            }
        }
    }

    /// Lets go of what it owns.
    ///
    /// # Safety
    /// Called once, from the handle's `tp_dealloc`, with the GIL held.
    pub(crate) unsafe fn release(&self) {
        for owned in [&self.source_traceback, &self.repr_cache] {
            let ptr = owned.swap(std::ptr::null_mut(), Ordering::Relaxed);
            if !ptr.is_null() {
                // SAFETY: as the caller promises; a reference the handle owned.
                unsafe { ffi::Py_DecRef(ptr) };
            }
        }
    }
}

/// A new reference to the object at `ptr`, or to `None` if it is null.
///
/// # Safety
/// `ptr` is null or a live object; the GIL is held.
pub(crate) unsafe fn new_ref_or_none(ptr: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let ptr = if ptr.is_null() { ffi::Py_None() } else { ptr };
    // SAFETY: as the caller promises (None is always live).
    unsafe { ffi::Py_IncRef(ptr) };
    ptr
}

/// Frees an object made by `alloc`, once its fields are dropped: its block goes
/// back to `kept`, or to pymalloc if the list is full.
///
/// # Safety
/// Called from the type's `tp_dealloc`, with a live object `alloc` made with
/// `kept`, and the GIL held.
pub(crate) unsafe fn free(slf: *mut ffi::PyObject, kept: &FreeList) {
    // SAFETY: as the caller promises; the list is ours alone under the GIL. An
    // instance holds a reference to its (heap) type, released once the memory is
    // kept or freed.
    unsafe {
        let tp = ffi::Py_TYPE(slf);
        if let Err(block) = kept.keep(slf.cast()) {
            ffi::PyObject_Free(block);
        }
        ffi::Py_DecRef(tp.cast());
    }
}

/// A new reference to `None`, for a method's result.
pub(crate) fn none() -> *mut ffi::PyObject {
    // SAFETY: None is immortal or reference counted; either way a new reference.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_IncRef(none);
        none
    }
}

//! The scheduling methods of both faces through CPython's fastcall convention.
//!
//! PyO3 gives a method that takes `**kwargs` the tuple-and-dict convention: every
//! `add_callback(cb)` then built a tuple of its arguments for PyO3 to take apart
//! again; and its general parser of `(callback, *args, context=None)` was a tenth
//! of a `call_soon`. These entry points take the caller's argument array as it is:
//! a call with no extra arguments allocates nothing on the way in. They are
//! installed on `LoopCore` as methods, with the signatures Python code would give.
//!
//! Each method here is one parse (`split`) and one call into the method's body in
//! `scheduling.rs`.

mod split;

use std::ffi::{c_char, CStr};
use std::panic::{self, AssertUnwindSafe};

use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use self::split::{empty_tuple, split, KeywordOnly, Keywords, Split};
use super::core::LoopCore;
use super::scheduling::When;

/// Runs a method body with the GIL marker, turning an error into a raised
/// exception (NULL) and a panic into PyO3's `PanicException` (as PyO3's own
/// methods do: the fuzz tests look for it), never unwinding into C.
///
/// # Safety
/// Called by CPython with the GIL held and `slf` a live object.
unsafe fn enter(
    slf: *mut ffi::PyObject,
    body: impl FnOnce(Python<'_>, &LoopCore) -> PyResult<Py<PyAny>>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls methods with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slf` is the live object the method was called on, and an
        // instance of `LoopCore`: a method descriptor checks that before calling
        // (checking again walked the subclass's MRO on every call).
        let core = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<LoopCore>() };
        body(py, core.get())
    }));
    let result = outcome.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(PanicException::new_err(what))
    });
    match result {
        Ok(value) => value.into_ptr(),
        Err(err) => {
            err.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// One entry point: `split` under the method's name, parameters and keyword
/// policy, then `$body` with the pieces.
macro_rules! fastcall_method {
    ($fn_name:ident, $method:literal, [$($param:literal),+], $keywords:expr,
     |$py:ident, $core:ident, $fixed:pat, $rest:ident, $kwargs:pat, $keyword:pat_param| $body:expr) => {
        unsafe extern "C" fn $fn_name(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: CPython's METH_FASTCALL | METH_KEYWORDS contract (see `split`
            // and `enter`).
            unsafe {
                enter(slf, |$py, $core| {
                    let Split { fixed, rest, kwargs, keyword } =
                        split($py, $method, [$($param),+], $keywords, args, nargs, kwnames)?;
                    let $rest = rest.as_ref().unwrap_or_else(|| empty_tuple($py));
                    let $fixed = fixed;
                    let $kwargs = kwargs;
                    let $keyword = keyword;
                    $body
                })
            }
        }
    };
}

/// asyncio's keyword-only parameter of the scheduling methods.
static CONTEXT: KeywordOnly = KeywordOnly::new("context");

fastcall_method!(
    call_soon,
    "call_soon",
    ["callback"],
    Keywords::Only(&CONTEXT),
    |_py, core, [callback], args, _, context| core.call_soon(&callback, args, context.as_deref())
);

fastcall_method!(
    call_soon_threadsafe,
    "call_soon_threadsafe",
    ["callback"],
    Keywords::Only(&CONTEXT),
    |_py, core, [callback], args, _, context| {
        core.call_soon_threadsafe(&callback, args, context.as_deref())
    }
);

fastcall_method!(
    call_later,
    "call_later",
    ["delay", "callback"],
    Keywords::Only(&CONTEXT),
    |_py, core, [delay, callback], args, _, context| {
        let when = When::delay(&delay)?;
        core.asyncio_timer(when, &callback, args, context.as_deref())
    }
);

fastcall_method!(
    call_at,
    "call_at",
    ["when", "callback"],
    Keywords::Only(&CONTEXT),
    |_py, core, [when, callback], args, _, context| {
        let when = When::at(&when)?;
        core.asyncio_timer(when, &callback, args, context.as_deref())
    }
);

fastcall_method!(
    add_callback,
    "add_callback",
    ["callback"],
    Keywords::Collect,
    |py, core, [callback], args, kwargs, _| {
        core.add_callback(&callback, args, kwargs.as_ref())?;
        Ok(py.None())
    }
);

fastcall_method!(
    add_timeout,
    "add_timeout",
    ["deadline", "callback"],
    Keywords::Collect,
    |_py, core, [deadline, callback], args, kwargs, _| {
        core.add_timeout(&deadline, &callback, args, kwargs.as_ref())
    }
);

fastcall_method!(
    tornado_call_later,
    "call_later",
    ["delay", "callback"],
    Keywords::Collect,
    |_py, core, [delay, callback], args, kwargs, _| {
        let when = When::delay(&delay)?;
        core.tornado_timer(when, &callback, args, kwargs.as_ref())
    }
);

fastcall_method!(
    tornado_call_at,
    "call_at",
    ["when", "callback"],
    Keywords::Collect,
    |_py, core, [when, callback], args, kwargs, _| {
        let when = When::at(&when)?;
        core.tornado_timer(when, &callback, args, kwargs.as_ref())
    }
);

type Entry = (
    &'static CStr,
    ffi::PyCFunctionFastWithKeywords,
    &'static CStr,
);

/// The methods, with their docstrings (whose first line is the signature that
/// `inspect.signature` reads).
const METHODS: [Entry; 8] = [
    (
        c"call_soon",
        call_soon,
        c"call_soon($self, callback, *args, context=None)\n--\n\n\
asyncio: arranges for `callback(*args)` to be called on the next iteration,\n\
in `context` (default: a copy of the current context). Returns a `Handle`.",
    ),
    (
        c"call_soon_threadsafe",
        call_soon_threadsafe,
        c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\n\
asyncio: like `call_soon`, from any thread; wakes the loop.",
    ),
    (
        c"call_later",
        call_later,
        c"call_later($self, delay, callback, *args, context=None)\n--\n\n\
asyncio: arranges for `callback(*args)` to be called after `delay` seconds.\n\
Returns a `TimerHandle`.",
    ),
    (
        c"call_at",
        call_at,
        c"call_at($self, when, callback, *args, context=None)\n--\n\n\
asyncio: arranges for `callback(*args)` to be called at loop time `when`.\n\
Returns a `TimerHandle`.",
    ),
    (
        c"add_callback",
        add_callback,
        c"add_callback($self, callback, *args, **kwargs)\n--\n\n\
Calls the given callback on the next I/O loop iteration, in the context\n\
current now.\n\n\
It is safe to call this method from any thread at any time, including a\n\
signal handler. A callback added after `close()` is dropped silently.",
    ),
    (
        c"add_timeout",
        add_timeout,
        c"add_timeout($self, deadline, callback, *args, **kwargs)\n--\n\n\
Runs `callback` at the time `deadline` from the I/O loop.\n\n\
`deadline` is a number on the loop's clock (`time()`) or a\n\
`datetime.timedelta` relative to now. Returns a handle for `remove_timeout`.",
    ),
    (
        c"_tornado_call_later",
        tornado_call_later,
        c"_tornado_call_later($self, delay, callback, *args, **kwargs)\n--\n\n\
Runs ``callback(*args, **kwargs)`` after ``delay`` seconds (Tornado's\n\
``IOLoop.call_later``); returns a handle for ``remove_timeout``.\n\n\
A lone ``context=`` keyword holding a ``contextvars.Context`` is asyncio's,\n\
honoured so that asyncio code can use this loop too.",
    ),
    (
        c"_tornado_call_at",
        tornado_call_at,
        c"_tornado_call_at($self, when, callback, *args, **kwargs)\n--\n\n\
Runs ``callback(*args, **kwargs)`` at the loop time ``when`` (Tornado's\n\
``IOLoop.call_at``); returns a handle for ``remove_timeout``.",
    ),
];

/// Installs the methods on `LoopCore`'s type.
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    for (name, meth, doc) in METHODS {
        // A method definition must outlive every descriptor made from it: one
        // per method and process, leaked on purpose.
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords: meth,
            },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr().cast::<c_char>(),
        }));
        // SAFETY: `ty` is a live type object and `def` lives forever; the result
        // is a new reference or NULL with an exception set.
        let descr = unsafe {
            Bound::from_owned_ptr_or_err(ty.py(), ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))
        }?;
        ty.setattr(
            PyString::new(ty.py(), name.to_str().unwrap_or_default()),
            descr,
        )?;
    }
    Ok(())
}

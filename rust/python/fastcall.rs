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

use std::ffi::{c_char, CStr};
use std::panic::{self, AssertUnwindSafe};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple, PyType};

use super::core::LoopCore;
use super::scheduling::When;

/// What a method does with keywords other than its fixed parameters.
#[derive(Clone, Copy)]
enum Keywords {
    /// Tornado's `**kwargs`: they go to the callback.
    Collect,
    /// asyncio's: one keyword-only parameter (`context`), nothing else.
    Only(&'static str),
}

/// A call's arguments, split as `(fixed..., *args, **kwargs)` or
/// `(fixed..., *args, <keyword>=None)`.
struct Split<'py, const N: usize> {
    fixed: [Borrowed<'py, 'py, PyAny>; N],
    rest: Bound<'py, PyTuple>,
    /// The collected keywords (`Keywords::Collect`), `None` when there are none.
    kwargs: Option<Bound<'py, PyDict>>,
    /// The keyword-only parameter's value (`Keywords::Only`).
    keyword: Option<Borrowed<'py, 'py, PyAny>>,
}

/// Splits a fastcall argument array (`args[..nargs]` positional, then one value
/// per name of `kwnames`) as Python splits it for `def f(a, b, *args, **kwargs)`
/// or `def f(a, b, *args, context=None)`: a fixed parameter may also come by
/// keyword.
///
/// # Safety
/// `args` points to `nargs` positional values followed by one value per name in
/// `kwnames` (a tuple of str, or NULL), all alive for `'py`, as CPython passes them
/// to a `METH_FASTCALL | METH_KEYWORDS` function.
// Inlined into each entry point, where its keyword policy is a constant and the
// branches for the other one fold away (called, it was a third of `add_callback`).
#[inline(always)]
unsafe fn split<'py, const N: usize>(
    py: Python<'py>,
    method: &str,
    names: [&str; N],
    keywords: Keywords,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Split<'py, N>> {
    let nargs = usize::try_from(nargs).unwrap_or(0);
    let kwnames = (!kwnames.is_null()).then(|| {
        // SAFETY: CPython passes a tuple of names here.
        unsafe { Borrowed::from_ptr(py, kwnames).cast_unchecked::<PyTuple>() }
    });
    // Nearly every call is all positional (`add_callback(f)`, `call_soon(f, x)`) or,
    // from asyncio's Tasks and Futures, positional plus the keyword-only parameter
    // (`call_soon(step, context=ctx)`): nothing to match by name.
    let plain = match (&kwnames, keywords) {
        (None, _) => Some(None),
        (Some(names), Keywords::Only(only)) if names.len() == 1 => {
            let name = names.get_borrowed_item(0)?;
            (name.cast::<PyString>()?.to_str()? == only).then_some(Some(nargs))
        }
        _ => None,
    };
    if let (Some(keyword_at), true) = (plain, nargs >= N) {
        // SAFETY: the caller's contract: `nargs` positional values, then one per
        // name, live for the call.
        let value = |i: usize| unsafe { Borrowed::from_ptr(py, *args.add(i)) };
        let rest = if nargs > N {
            PyTuple::new(py, (N..nargs).map(value))?
        } else {
            PyTuple::empty(py)
        };
        return Ok(Split {
            fixed: std::array::from_fn(value),
            rest,
            kwargs: None,
            keyword: keyword_at.map(value),
        });
    }
    let nkw = kwnames.as_ref().map_or(0, |k| k.len());
    let values = if nargs + nkw == 0 {
        &[][..]
    } else {
        // SAFETY: the caller's contract: `nargs + nkw` valid pointers.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    // SAFETY: each pointer is a live object for the call's duration: borrowed,
    // the arguments cost no reference counting.
    let value = |i: usize| unsafe { Borrowed::from_ptr(py, values[i]) };
    // Each keyword fills a fixed parameter, the keyword-only one, or the collected
    // keywords; CPython passes no name twice.
    let mut by_keyword: [Option<Borrowed<'py, 'py, PyAny>>; N] = std::array::from_fn(|_| None);
    let mut kwargs = None;
    let mut keyword = None;
    for (i, name) in kwnames.iter().flat_map(|k| k.iter_borrowed()).enumerate() {
        let given = value(nargs + i);
        let name = name.cast::<PyString>()?;
        let text = name.to_str()?;
        if let Some(slot) = names.iter().position(|n| *n == text) {
            by_keyword[slot] = Some(given);
            continue;
        }
        match keywords {
            Keywords::Only(only) if only == text => keyword = Some(given),
            Keywords::Only(_) => {
                return Err(PyTypeError::new_err(format!(
                    "{method}() got an unexpected keyword argument '{text}'"
                )))
            }
            Keywords::Collect => kwargs
                .get_or_insert_with(|| PyDict::new(py))
                .set_item(name, given)?,
        }
    }
    for (i, (name, keyword)) in names.iter().zip(&by_keyword).enumerate() {
        match (i < nargs, keyword.is_some()) {
            (true, true) => {
                return Err(PyTypeError::new_err(format!(
                    "{method}() got multiple values for argument '{name}'"
                )))
            }
            (false, false) => {
                return Err(PyTypeError::new_err(format!(
                    "{method}() missing required argument '{name}' (pos {})",
                    i + 1
                )))
            }
            _ => {}
        }
    }
    // Each fixed parameter came one way exactly (checked above).
    let fixed = std::array::from_fn(|i| by_keyword[i].take().unwrap_or_else(|| value(i)));
    let rest = if nargs > N {
        PyTuple::new(py, (N..nargs).map(value))?
    } else {
        PyTuple::empty(py)
    };
    Ok(Split {
        fixed,
        rest,
        kwargs,
        keyword,
    })
}

/// A number argument, refused with its name.
fn number(value: &Bound<'_, PyAny>, method: &str, name: &str) -> PyResult<f64> {
    value.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{method}() argument '{name}' must be a real number, not {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

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
                    let Split { fixed, rest: $rest, kwargs, keyword } =
                        split($py, $method, [$($param),+], $keywords, args, nargs, kwnames)?;
                    let $fixed = fixed;
                    let $kwargs = kwargs;
                    let $keyword = keyword;
                    $body
                })
            }
        }
    };
}

const CONTEXT: Keywords = Keywords::Only("context");

fastcall_method!(
    call_soon,
    "call_soon",
    ["callback"],
    CONTEXT,
    |_py, core, [callback], args, _, context| core.call_soon(&callback, &args, context.as_deref())
);

fastcall_method!(
    call_soon_threadsafe,
    "call_soon_threadsafe",
    ["callback"],
    CONTEXT,
    |_py, core, [callback], args, _, context| {
        core.call_soon_threadsafe(&callback, &args, context.as_deref())
    }
);

fastcall_method!(
    call_later,
    "call_later",
    ["delay", "callback"],
    CONTEXT,
    |_py, core, [delay, callback], args, _, context| {
        let when = When::After(number(&delay, "call_later", "delay")?);
        core.asyncio_timer(when, &callback, &args, context.as_deref())
    }
);

fastcall_method!(
    call_at,
    "call_at",
    ["when", "callback"],
    CONTEXT,
    |_py, core, [when, callback], args, _, context| {
        let when = When::At(
            number(&when, "call_at", "when")?,
            when.is_instance_of::<PyInt>(),
        );
        core.asyncio_timer(when, &callback, &args, context.as_deref())
    }
);

fastcall_method!(
    add_callback,
    "add_callback",
    ["callback"],
    Keywords::Collect,
    |py, core, [callback], args, kwargs, _| {
        core.add_callback(&callback, &args, kwargs.as_ref())?;
        Ok(py.None())
    }
);

fastcall_method!(
    add_timeout,
    "add_timeout",
    ["deadline", "callback"],
    Keywords::Collect,
    |_py, core, [deadline, callback], args, kwargs, _| {
        core.add_timeout(&deadline, &callback, &args, kwargs.as_ref())
    }
);

fastcall_method!(
    tornado_call_later,
    "call_later",
    ["delay", "callback"],
    Keywords::Collect,
    |_py, core, [delay, callback], args, kwargs, _| {
        let when = When::After(number(&delay, "call_later", "delay")?);
        core.tornado_timer(when, &callback, &args, kwargs.as_ref())
    }
);

fastcall_method!(
    tornado_call_at,
    "call_at",
    ["when", "callback"],
    Keywords::Collect,
    |_py, core, [when, callback], args, kwargs, _| {
        let when = When::At(
            number(&when, "call_at", "when")?,
            when.is_instance_of::<PyInt>(),
        );
        core.tornado_timer(when, &callback, &args, kwargs.as_ref())
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

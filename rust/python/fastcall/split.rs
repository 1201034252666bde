//! The parse every fastcall entry point starts with: CPython's argument array
//! split as Python splits it for `def f(a, b, *args, **kwargs)` or
//! `def f(a, b, *args, context=None)`.

use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

/// What a method does with keywords other than its fixed parameters.
#[derive(Clone, Copy)]
pub(super) enum Keywords {
    /// Tornado's `**kwargs`: they go to the callback.
    Collect,
    /// asyncio's: one keyword-only parameter (`context`), nothing else.
    Only(&'static KeywordOnly),
}

/// A keyword-only parameter, and the last tuple of keyword names found to hold
/// it alone: asyncio's Tasks and Futures pass the same tuple on every
/// `call_soon(step, context=ctx)`, which then matches by identity instead of by
/// reading its text.
pub(super) struct KeywordOnly {
    name: &'static str,
    /// A reference the parameter owns (the tuple cannot be freed, and its address
    /// reused, while kept here), or null.
    seen: AtomicPtr<ffi::PyObject>,
}

impl KeywordOnly {
    pub(super) const fn new(name: &'static str) -> Self {
        KeywordOnly {
            name,
            seen: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Whether `names`, a tuple of one name, names this parameter.
    fn alone_in(&self, names: &Borrowed<'_, '_, PyTuple>) -> PyResult<bool> {
        if self.seen.load(Ordering::Relaxed) == names.as_ptr() {
            return Ok(true);
        }
        let name = names.get_borrowed_item(0)?;
        if name.cast::<PyString>()?.to_str()? != self.name {
            return Ok(false);
        }
        let kept = names.as_ptr();
        // SAFETY: the GIL is held (`names` is borrowed under it): a new reference
        // to keep, and the one kept before let go of.
        unsafe {
            ffi::Py_IncRef(kept);
            let old = self.seen.swap(kept, Ordering::Relaxed);
            if !old.is_null() {
                ffi::Py_DecRef(old);
            }
        }
        Ok(true)
    }
}

/// A call's arguments, split as `(fixed..., *args, **kwargs)` or
/// `(fixed..., *args, <keyword>=None)`.
pub(super) struct Split<'py, const N: usize> {
    pub(super) fixed: [Borrowed<'py, 'py, PyAny>; N],
    /// The extra positional arguments; `None` when there are none.
    pub(super) rest: Option<Bound<'py, PyTuple>>,
    /// The collected keywords (`Keywords::Collect`), `None` when there are none.
    pub(super) kwargs: Option<Bound<'py, PyDict>>,
    /// The keyword-only parameter's value (`Keywords::Only`).
    pub(super) keyword: Option<Borrowed<'py, 'py, PyAny>>,
}

/// The empty tuple, borrowed: a call with no extra arguments then costs no
/// reference counting for its `*args`.
pub(super) fn empty_tuple(py: Python<'_>) -> &Bound<'_, PyTuple> {
    static EMPTY: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    EMPTY
        .get_or_init(py, || PyTuple::empty(py).unbind())
        .bind(py)
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
pub(super) unsafe fn split<'py, const N: usize>(
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
            only.alone_in(names)?.then_some(Some(nargs))
        }
        _ => None,
    };
    if let (Some(keyword_at), true) = (plain, nargs >= N) {
        // SAFETY: the caller's contract: `nargs` positional values, then one per
        // name, live for the call.
        let value = |i: usize| unsafe { Borrowed::from_ptr(py, *args.add(i)) };
        let rest = if nargs > N {
            Some(PyTuple::new(py, (N..nargs).map(value))?)
        } else {
            None
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
            Keywords::Only(only) if only.name == text => keyword = Some(given),
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
        Some(PyTuple::new(py, (N..nargs).map(value))?)
    } else {
        None
    };
    Ok(Split {
        fixed,
        rest,
        kwargs,
        keyword,
    })
}

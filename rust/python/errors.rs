//! Engine errors as Python exceptions.

use std::io;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

use crate::{FdError, InvalidTime};

/// An OS error as Python raises it: `OSError(errno, strerror)`, which Python
/// turns into the subclass for that errno (`BrokenPipeError`...), with `errno`
/// set (a plain conversion would give neither).
pub(crate) fn os_error(err: io::Error) -> PyErr {
    let Some(code) = err.raw_os_error() else {
        return PyErr::from(err);
    };
    let text = err.to_string();
    let strerror = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text)
        .to_owned();
    PyOSError::new_err((code, strerror))
}

pub(crate) fn fd_error(err: FdError) -> PyErr {
    match err {
        FdError::Os(e) => os_error(e),
        other => PyValueError::new_err(other.to_string()),
    }
}

pub(crate) fn time_error(err: InvalidTime) -> PyErr {
    PyValueError::new_err(err.to_string())
}

pub(crate) fn closed() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

pub(crate) fn forked(owner: u32) -> PyErr {
    PyRuntimeError::new_err(format!(
        "this event loop belongs to process {owner}, and fork() copied it into process {}; \
         its poll is shared with the parent, so create a new event loop in the child",
        std::process::id()
    ))
}

//! Engine errors as Python exceptions.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;

use crate::{FdError, InvalidTime};

pub(crate) fn fd_error(err: FdError) -> PyErr {
    match err {
        FdError::Os(e) => e.into(),
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

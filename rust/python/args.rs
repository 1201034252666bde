//! Arguments as Tornado and asyncio spell them: file descriptors and deadlines.

use std::os::fd::RawFd;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

use super::errors;
use crate::{deadline_after, deadline_at, monotonic_now, Nanos};

/// Splits Tornado's `fd` argument: an int, or an object with `fileno()`.
pub(crate) fn split_fd<'py>(fd: &Bound<'py, PyAny>) -> PyResult<(RawFd, Bound<'py, PyAny>)> {
    if fd.is_instance_of::<PyInt>() {
        return Ok((fd.extract()?, fd.clone()));
    }
    let py = fd.py();
    match fd.getattr_opt(intern!(py, "fileno"))? {
        Some(fileno) => Ok((fileno.call0()?.extract()?, fd.clone())),
        None => Err(PyTypeError::new_err(format!(
            "expected an int file descriptor or an object with fileno(), got {}",
            fd.get_type().name()?
        ))),
    }
}

/// asyncio's file descriptor argument: an int or an object with `fileno()`,
/// which must give a non-negative int (`ValueError` otherwise).
pub(crate) fn fileno(fd: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let raw = if fd.is_instance_of::<PyInt>() {
        fd.extract::<RawFd>().ok()
    } else {
        fd.call_method0(intern!(fd.py(), "fileno"))
            .ok()
            .and_then(|n| n.extract::<RawFd>().ok())
    };
    match raw {
        Some(raw) if raw >= 0 => Ok(raw),
        Some(raw) => Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {raw}"
        ))),
        None => Err(PyValueError::new_err(format!(
            "Invalid file object: {}",
            fd.repr()?
        ))),
    }
}

/// Whether `fd` is an object whose `fileno()` says it was closed (-1, as a closed
/// socket's does).
pub(crate) fn is_closed_fileobj(fd: &Bound<'_, PyAny>) -> bool {
    !fd.is_instance_of::<PyInt>()
        && fd
            .call_method0(intern!(fd.py(), "fileno"))
            .and_then(|n| n.extract::<i64>())
            .is_ok_and(|n| n == -1)
}

/// Tornado's `add_timeout` deadline: a number on the loop's clock, or a
/// `datetime.timedelta` from now.
pub(crate) fn tornado_deadline(deadline: &Bound<'_, PyAny>) -> PyResult<Nanos> {
    let py = deadline.py();
    if deadline.is_instance_of::<PyFloat>() || deadline.is_instance_of::<PyInt>() {
        deadline_at(deadline.extract()?)
    } else if deadline.is_instance(
        &py.import(intern!(py, "datetime"))?
            .getattr(intern!(py, "timedelta"))?,
    )? {
        let delay: f64 = deadline
            .call_method0(intern!(py, "total_seconds"))?
            .extract()?;
        deadline_after(monotonic_now(), delay)
    } else if deadline.is_instance(
        &py.import(intern!(py, "numbers"))?
            .getattr(intern!(py, "Real"))?,
    )? {
        // Any real number, as Tornado takes (a Fraction, a Decimal...).
        deadline_at(deadline.extract()?)
    } else {
        return Err(PyTypeError::new_err(format!(
            "Unsupported deadline {}: expected a number or a datetime.timedelta",
            deadline.repr()?
        )));
    }
    .map_err(errors::time_error)
}

/// A number argument, refused with its name.
pub(crate) fn number(value: &Bound<'_, PyAny>, method: &str, name: &str) -> PyResult<f64> {
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

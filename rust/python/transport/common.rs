//! What every transport does alike: its write buffer's water marks, scheduling
//! on the loop, telling the protocol to pause or resume writing, and reporting
//! an error to the loop's exception handler.

use std::sync::Arc;

use pyo3::exceptions::{PyResourceWarning, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::python::callback::PyCallback;
use crate::python::fd_owner::FdOwner;
use crate::python::report::{self, Failure};
use crate::python::shared::Shared;

/// asyncio's default high-water mark of a write buffer.
const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// After this many writes to a lost connection, each further one logs a warning
/// (asyncio's threshold).
pub(super) const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

/// A write buffer's water marks and whether the protocol was told to pause.
pub(super) struct Flow {
    pub(super) high_water: usize,
    pub(super) low_water: usize,
    pub(super) protocol_paused: bool,
}

impl Flow {
    /// asyncio's default marks, not paused.
    pub(super) fn new() -> PyResult<Self> {
        let (high_water, low_water) = write_limits(None, None)?;
        Ok(Self {
            high_water,
            low_water,
            protocol_paused: false,
        })
    }

    /// Whether the protocol is now due a `pause_writing()` (`pause`) or a
    /// `resume_writing()` with `buffered` bytes waiting; if so, it counts as told.
    pub(super) fn due(&mut self, pause: bool, buffered: usize) -> bool {
        let due = if pause {
            !self.protocol_paused && buffered > self.high_water
        } else {
            self.protocol_paused && buffered <= self.low_water
        };
        if due {
            self.protocol_paused = pause;
        }
        due
    }

    /// `get_write_buffer_limits()`: `(low, high)`.
    pub(super) fn limits(&self) -> (usize, usize) {
        (self.low_water, self.high_water)
    }

    /// `set_write_buffer_limits(high, low)`.
    pub(super) fn set_limits(&mut self, high: Option<isize>, low: Option<isize>) -> PyResult<()> {
        (self.high_water, self.low_water) = write_limits(high, low)?;
        Ok(())
    }
}

/// The `(high, low)` water marks from what `set_write_buffer_limits` was given,
/// with asyncio's defaults (64 KiB, and a quarter of the high mark).
pub(super) fn write_limits(high: Option<isize>, low: Option<isize>) -> PyResult<(usize, usize)> {
    let refused = || {
        let show = |v: Option<isize>| v.map_or("None".into(), |v| v.to_string());
        PyValueError::new_err(format!(
            "high ({}) must be >= low ({}) must be >= 0",
            show(high),
            show(low)
        ))
    };
    let size = |v: Option<isize>| {
        v.map(|v| usize::try_from(v).map_err(|_| refused()))
            .transpose()
    };
    let (high_size, low_size) = (size(high)?, size(low)?);
    let (high_size, low_size) = match (high_size, low_size) {
        (None, None) => (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER / 4),
        (Some(h), None) => (h, h / 4),
        (None, Some(l)) => (l.saturating_mul(4), l),
        (Some(h), Some(l)) => (h, l),
    };
    if high_size < low_size {
        return Err(refused());
    }
    Ok((high_size, low_size))
}

/// Schedules `func(*args)` on the loop's next iteration (nothing once it is
/// closed).
pub(super) fn call_soon(
    shared: &Arc<Shared>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<()> {
    if shared.is_closed() {
        return Ok(());
    }
    shared.push(PyCallback::asyncio(func, args, None, "call_soon")?);
    Ok(())
}

/// Passes an error of `transport` to the loop's exception handler, with
/// asyncio's context keys.
pub(super) fn report_error(
    event_loop: &Bound<'_, PyAny>,
    message: &str,
    exc: &Bound<'_, PyAny>,
    transport: &Bound<'_, PyAny>,
    protocol: Option<&Py<PyAny>>,
) -> PyResult<()> {
    let py = event_loop.py();
    let context = PyDict::new(py);
    context.set_item(intern!(py, "message"), message)?;
    context.set_item(intern!(py, "exception"), exc)?;
    context.set_item(intern!(py, "transport"), transport)?;
    context.set_item(intern!(py, "protocol"), protocol)?;
    report::call_exception_handler(event_loop, context)
}

/// What a transport's fatal error reports: an exit (`KeyboardInterrupt`,
/// `SystemExit`) is returned as the error; anything but an `OSError` (the peer's
/// or the system's doing) goes to the loop's exception handler with `message`.
/// Returns the exception, for `connection_lost`.
pub(super) fn fatal_exception<'py>(
    event_loop: &Bound<'py, PyAny>,
    transport: &Bound<'py, PyAny>,
    protocol: impl FnOnce() -> Option<Py<PyAny>>,
    err: PyErr,
    message: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = event_loop.py();
    let err = match report::classify(py, err) {
        Failure::Exit(exit) => return Err(exit),
        Failure::Report(err) => err,
    };
    let exc = err.value(py).clone().into_any();
    if !err.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
        report_error(event_loop, message, &exc, transport, protocol().as_ref())?;
    }
    Ok(exc)
}

/// Calls the protocol's `pause_writing()` (or `resume_writing()`); an error it
/// raises is reported, an exit propagates.
pub(super) fn tell_flow(
    event_loop: &Bound<'_, PyAny>,
    transport: &Bound<'_, PyAny>,
    protocol: &Py<PyAny>,
    pause: bool,
) -> PyResult<()> {
    let py = event_loop.py();
    let (method, message) = if pause {
        (
            intern!(py, "pause_writing"),
            "protocol.pause_writing() failed",
        )
    } else {
        (
            intern!(py, "resume_writing"),
            "protocol.resume_writing() failed",
        )
    };
    match protocol.call_method0(py, method) {
        Ok(_) => Ok(()),
        Err(err) => match report::classify(py, err) {
            Failure::Exit(exit) => Err(exit),
            Failure::Report(err) => report_error(
                event_loop,
                message,
                err.value(py),
                transport,
                Some(protocol),
            ),
        },
    }
}

/// Logs asyncio's warning for writes to a lost connection.
pub(super) fn warn_write_after_loss(py: Python<'_>) -> PyResult<()> {
    py.import(intern!(py, "logging"))?
        .call_method1(intern!(py, "getLogger"), ("asyncio",))?
        .call_method1(intern!(py, "warning"), ("socket.send() raised exception.",))?;
    Ok(())
}

/// Takes `fd` out of the loop's table if the transport at `transport` still owns
/// it (the number may have been closed and reused); the entry is returned for
/// the caller to drop outside every lock.
pub(super) fn take_fd_if_ours(
    shared: &Shared,
    fd: std::os::fd::RawFd,
    transport: *const (),
) -> Option<FdOwner> {
    let mut reactor = shared.lock();
    let ours = matches!(
        reactor.fds.get(fd).map(|e| &e.handler),
        Some(FdOwner::Transport(t)) if t.is(transport)
    );
    ours.then(|| reactor.remove_fd(fd)).flatten()
}

/// Whether a transport being dropped or finalized was left open (neither closing
/// nor lost); it counts as closing from now on, so it is warned about once.
pub(super) fn mark_dropped_open(closing: &mut bool, conn_lost: u32) -> bool {
    let open = conn_lost == 0 && !*closing;
    *closing = true;
    open
}

/// A transport dropped without being closed (asyncio's `__del__`): warns with
/// `ResourceWarning` and closes its socket (which would warn again otherwise).
/// Runs in `Drop`, so nothing may propagate: errors go to `sys.unraisablehook`.
pub(super) fn warn_unclosed(description: String, sock: &Py<PyAny>) {
    Python::attach(|py| {
        let message =
            std::ffi::CString::new(format!("unclosed transport {description}")).unwrap_or_default();
        let category = py.get_type::<PyResourceWarning>();
        if let Err(err) = PyErr::warn(py, &category, &message, 1) {
            err.write_unraisable(py, None);
        }
        if let Err(err) = sock.call_method0(py, intern!(py, "close")) {
            err.write_unraisable(py, None);
        }
    });
}

/// The class of `mioloop._transport_classes` named `name`: what a transport's
/// `__class__` says, so that `isinstance(transport, asyncio.Transport)` holds.
pub(super) fn class_for_isinstance<'py>(
    py: Python<'py>,
    cell: &'static pyo3::sync::PyOnceLock<Py<pyo3::types::PyType>>,
    name: &str,
) -> PyResult<Bound<'py, pyo3::types::PyType>> {
    cell.import(py, "mioloop._transport_classes", name).cloned()
}

/// `get_extra_info(name, default)` over a transport's `extra` dict.
pub(super) fn extra_info<'py>(
    py: Python<'py>,
    extra: &Py<PyDict>,
    name: &Bound<'py, PyAny>,
    default: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match extra.bind(py).get_item(name)? {
        Some(value) => value,
        None => default.unwrap_or_else(|| py.None().into_bound(py)),
    })
}

/// Brings the fd table's interest in `fd` to `want`, if it is registered and
/// differs from `interest` (updated on success).
pub(super) fn sync_interest(
    shared: &Shared,
    fd: std::os::fd::RawFd,
    registered: bool,
    interest: &mut crate::IoEvents,
    want: crate::IoEvents,
) -> PyResult<()> {
    if !registered || want == *interest {
        return Ok(());
    }
    shared.lock().update_fd(fd, want).map_err(|e| match e {
        // The transport's fd was closed behind its back: an OS error, as the
        // kernel would give.
        crate::FdError::NotRegistered(_) => {
            crate::python::errors::os_error(std::io::Error::from_raw_os_error(libc::EBADF))
        }
        other => crate::python::errors::fd_error(other),
    })?;
    *interest = want;
    Ok(())
}

//! The signal wake-up socket: Python's C-level signal handler writes the signal
//! number to it (`signal.set_wakeup_fd`), which ends a blocking poll so that the
//! Python-level handlers run at once.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use mio::unix::SourceFd;
use mio::{Interest, Registry};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::TOKEN_SIGNAL;

/// The socket pair; the poll watches `rx` on [`TOKEN_SIGNAL`].
pub(crate) struct SignalWakeup {
    rx: UnixStream,
    tx: UnixStream,
}

impl SignalWakeup {
    pub(crate) fn new(registry: &Registry) -> io::Result<Self> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        registry.register(
            &mut SourceFd(&rx.as_raw_fd()),
            TOKEN_SIGNAL,
            Interest::READABLE,
        )?;
        Ok(SignalWakeup { rx, tx })
    }

    /// Points Python's wake-up fd at this socket; returns the previous fd to
    /// restore, or `None` off the main thread (where no signal handler runs).
    pub(crate) fn install(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "warn_on_full_buffer"), false)?;
        match set_wakeup_fd(py)?.call((self.tx.as_raw_fd(),), Some(&kwargs)) {
            Ok(previous) => Ok(Some(previous.unbind())),
            Err(e) if e.is_instance_of::<PyValueError>(py) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives Python back the wake-up fd that `install` replaced.
    pub(crate) fn restore(py: Python<'_>, previous: Py<PyAny>) -> PyResult<()> {
        set_wakeup_fd(py)?.call1((previous,))?;
        Ok(())
    }

    /// Empties the socket (the bytes only woke the poll).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

fn set_wakeup_fd(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import(intern!(py, "signal"))?
        .getattr(intern!(py, "set_wakeup_fd"))
}

//! The signal wake-up socket: Python's C-level signal handler writes the signal
//! number to it (`signal.set_wakeup_fd`), which ends a blocking poll so that the
//! Python-level handlers run at once, and tells the loop which signals arrived
//! (for `add_signal_handler`).
//!
//! Python has one wake-up fd per process. The loop points it at its socket while
//! it runs and while it has signal handlers: each is a share
//! ([`SignalWakeup::acquire`]); the fd found before the first share is given back
//! when the last one is released.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, PoisonError};

use mio::unix::SourceFd;
use mio::{Interest, Registry};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::TOKEN_SIGNAL;

/// The socket pair; the poll watches `rx` on [`TOKEN_SIGNAL`].
pub(crate) struct SignalWakeup {
    shares: Mutex<Shares>,
}

/// The sockets, and who holds Python's wake-up fd pointed at this loop.
struct Shares {
    /// `(rx, tx)`; `None` once the loop is closed.
    pair: Option<(UnixStream, UnixStream)>,
    count: u32,
    /// The wake-up fd before the first share, to give back after the last.
    previous: Option<Py<PyAny>>,
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
        Ok(SignalWakeup {
            shares: Mutex::new(Shares {
                pair: Some((rx, tx)),
                count: 0,
                previous: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shares> {
        self.shares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the sockets, unless Python's wake-up fd still points at them (a
    /// share is still held: the loop is running, or has signal handlers).
    pub(crate) fn close(&self) {
        let pair = {
            let mut shares = self.lock();
            if shares.count > 0 {
                return;
            }
            shares.pair.take()
        };
        drop(pair);
    }

    /// Takes a share of Python's wake-up fd, pointing it at this socket on the
    /// first. Returns `false` off the main thread, where Python refuses (and no
    /// signal handler runs): no share is taken then.
    pub(crate) fn acquire(&self, py: Python<'_>) -> PyResult<bool> {
        let mut shares = self.lock();
        if shares.count == 0 {
            let Some((_, tx)) = &shares.pair else {
                return Err(super::errors::closed());
            };
            let tx = tx.as_raw_fd();
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "warn_on_full_buffer"), false)?;
            match set_wakeup_fd(py)?.call((tx,), Some(&kwargs)) {
                Ok(previous) => shares.previous = Some(previous.unbind()),
                Err(e) if e.is_instance_of::<PyValueError>(py) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        shares.count += 1;
        Ok(true)
    }

    /// Gives a share back; after the last one, Python's wake-up fd is what it was
    /// before the first.
    pub(crate) fn release(&self, py: Python<'_>) -> PyResult<()> {
        let previous = {
            let mut shares = self.lock();
            shares.count = shares.count.saturating_sub(1);
            if shares.count > 0 {
                return Ok(());
            }
            shares.previous.take()
        };
        if let Some(previous) = previous {
            if set_wakeup_fd(py)?.call1((previous,)).is_err() {
                // The previous fd was closed meanwhile: nothing to give it back to.
                // Python must not keep writing to this loop's socket (which may be
                // freed and its number reused), so it gets no wake-up fd.
                set_wakeup_fd(py)?.call1((-1,))?;
            }
        }
        Ok(())
    }

    /// Empties the socket; returns the signal numbers it carried, in order.
    pub(crate) fn drain(&self) -> Vec<u8> {
        let mut signums = Vec::new();
        let mut buf = [0u8; 64];
        let shares = self.lock();
        let Some((rx, _)) = &shares.pair else {
            return signums;
        };
        while let Ok(n @ 1..) = (&*rx).read(&mut buf) {
            signums.extend_from_slice(&buf[..n]);
        }
        signums
    }
}

fn set_wakeup_fd(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import(intern!(py, "signal"))?
        .getattr(intern!(py, "set_wakeup_fd"))
}

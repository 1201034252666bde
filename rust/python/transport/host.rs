//! The connection core's host for a Python protocol: the state behind the
//! transport's lock, the fd in the loop's table, and the protocol's methods —
//! and where the errors go.
//!
//! # The route of an error
//! - A protocol method that asyncio calls inside its own `try` (`pause_writing`,
//!   `resume_writing`, a datagram protocol's `datagram_received` and
//!   `error_received`) raising: reported to the loop's exception handler with the
//!   transport and protocol, and the transport goes on.
//! - A fatal error (a read or send failing, `data_received`, `eof_received`,
//!   `get_buffer` or `buffer_updated` raising): reported unless it is an
//!   `OSError` (the peer's or the system's doing), then the connection is lost
//!   with it.
//! - Anything else out of readiness (a `connection_lost` that raises after the
//!   queue was flushed, a failing `shutdown` after `write_eof`): back to the
//!   iteration, which reports it as asyncio's `Handle._run` does (`run.rs`).
//! - `KeyboardInterrupt` and `SystemExit` always propagate, out of `run_forever`.

use std::io;

use mio::Token;
use pyo3::exceptions::{PyConnectionError, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::endpoint::{Endpoint, Flavor};
use crate::connection::{driver, Connection, Flush, Host, Read};
use crate::python::errors;
use crate::python::fd_owner::FdOwner;
use crate::python::release::locked;
use crate::python::report;
use crate::IoEvents;

/// What a writability waiter (a sendfile) gets when the connection is gone.
pub(super) fn closed_by_peer() -> PyErr {
    PyConnectionError::new_err("Connection is closed by peer")
}

/// A transport as the connection core sees it, for one call.
pub(super) struct PyHost<'a, 'py, F: Flavor> {
    /// The transport object.
    pub(super) slf: &'a Bound<'py, PyAny>,
    pub(super) ep: &'a Endpoint<F>,
    /// The fd's token, when readiness runs.
    pub(super) token: Option<Token>,
}

impl<'py, F: Flavor> PyHost<'_, 'py, F> {
    pub(super) fn py(&self) -> Python<'py> {
        self.slf.py()
    }

    /// Calls the protocol's `method(*args)`; `None` once `connection_lost` ran.
    pub(super) fn tell(
        &self,
        method: &Bound<'py, PyString>,
        args: impl pyo3::call::PyCallArgs<'py>,
    ) -> Option<PyResult<Bound<'py, PyAny>>> {
        let protocol = self.ep.protocol(self.py())?;
        Some(protocol.bind(self.py()).call_method1(method, args))
    }

    /// Reports `err` to the loop's exception handler with `message`, the transport
    /// and the protocol; an exit is returned instead.
    pub(super) fn report(&self, message: &str, err: PyErr) -> PyResult<()> {
        let py = self.py();
        let protocol = self.ep.protocol(py).into_pyobject(py)?;
        let event_loop = self.ep.event_loop.bind(py);
        report::report_transport(event_loop, message, err, self.slf, &protocol)
    }

    /// The protocol's `connection_lost(exc)`, then the socket is closed and
    /// whoever asked to hear of the loss (a server) is told.
    pub(super) fn call_connection_lost(&self, exc: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py();
        driver::leave_poll(self);
        let (protocol, on_lost) = self.ep.with(|st, release| {
            release.later(st.conn.force_close());
            release.later(st.waiter.take());
            st.finished = true;
            (st.protocol.take(), st.on_lost.take())
        });
        let lost = match &protocol {
            Some(protocol) => protocol
                .call_method1(py, intern!(py, "connection_lost"), (exc,))
                .map(drop),
            None => Ok(()),
        };
        let closed = self
            .ep
            .sock
            .call_method0(py, intern!(py, "close"))
            .map(drop);
        let told = match &on_lost {
            Some(on_lost) => on_lost.call1(py, (self.slf,)).map(drop),
            None => Ok(()),
        };
        lost.and(closed).and(told)
    }
}

impl<F: Flavor> Host for PyHost<'_, '_, F> {
    type Outbox = F::Outbox;
    type Error = PyErr;

    const READS_PER_EVENT: usize = F::READS_PER_EVENT;

    fn with<R>(&self, f: impl FnOnce(&mut Connection<F::Outbox>) -> R) -> R {
        self.ep.with_conn(f)
    }

    fn watch(&self, events: IoEvents) -> PyResult<()> {
        // Nothing is let go of: a plain lock.
        let updated = self.ep.shared.lock().update_fd(self.ep.fd, events);
        updated.map_err(|e| match e {
            // The transport's fd was closed behind its back: an OS error, as the
            // kernel would give.
            crate::FdError::NotRegistered(_) => {
                errors::os_error(io::Error::from_raw_os_error(libc::EBADF))
            }
            other => errors::fd_error(other),
        })
    }

    fn unwatch(&self) {
        // The fd's number may have been closed and reused: only this transport's
        // entry goes.
        locked(self.ep.shared.reactor(), |reactor, release| {
            let ours = matches!(
                reactor.fds.get(self.ep.fd).map(|e| &e.handler),
                Some(FdOwner::Transport(t)) if t.is(self.slf.as_ptr())
            );
            if ours {
                release.later(reactor.remove_fd(self.ep.fd));
            }
        });
    }

    fn read(&self) -> Read<PyErr> {
        F::read(self)
    }

    fn flush(&self) -> Flush<PyErr> {
        F::flush(self)
    }

    fn shutdown_write(&self) -> PyResult<()> {
        crate::io::shutdown_write(self.ep.fd).map_err(errors::os_error)
    }

    fn eof_received(&self) -> PyResult<bool> {
        match self.tell(intern!(self.py(), "eof_received"), ()) {
            Some(keep_open) => keep_open?.is_truthy(),
            None => Ok(false),
        }
    }

    fn flow(&self, pause: bool) -> PyResult<()> {
        let py = self.py();
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
        match self.tell(method, ()) {
            Some(Err(err)) => self.report(message, err),
            _ => Ok(()),
        }
    }

    fn lost(&self, exc: Option<PyErr>, soon: bool) -> PyResult<()> {
        let py = self.py();
        let exc = exc.map_or_else(
            || py.None().into_bound(py),
            |e| e.into_value(py).into_bound(py).into_any(),
        );
        if !soon {
            return self.call_connection_lost(&exc);
        }
        let call = F::scheduled().connection_lost(self.slf)?;
        self.ep
            .call_soon(&call, &pyo3::types::PyTuple::new(py, [exc])?)
    }

    fn fatal(&self, err: PyErr, message: &'static str) -> PyResult<PyErr> {
        let py = self.py();
        if err.is_instance_of::<PyOSError>(py) {
            return Ok(err);
        }
        let exc = err.clone_ref(py);
        self.report(message, err)?;
        Ok(exc)
    }

    fn os_error(&self, err: io::Error) -> PyErr {
        errors::os_error(err)
    }

    fn still_ready(&self) {
        if let Some(token) = self.token {
            self.ep.shared.lock().still_ready(token);
        }
    }

    fn writable(&self, ok: bool) -> PyResult<()> {
        let py = self.py();
        let Some(waiter) = self.ep.with(|st, _| st.waiter.take()) else {
            return Ok(());
        };
        let waiter = waiter.bind(py);
        if waiter.call_method0(intern!(py, "done"))?.is_truthy()? {
            return Ok(());
        }
        if ok {
            waiter.call_method1(intern!(py, "set_result"), (py.None(),))?;
        } else {
            let exc = closed_by_peer();
            waiter.call_method1(intern!(py, "set_exception"), (exc.value(py),))?;
        }
        Ok(())
    }
}

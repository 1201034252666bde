//! What `loop.sendfile` needs of a stream transport: the file goes from the page
//! cache to the socket in the kernel (`sendfile(2)`, through Python's `os.sendfile`,
//! which speaks Linux's and the BSDs' dialects), after the buffered data, with
//! `write()` refused meanwhile so the two cannot interleave.

use pyo3::exceptions::{PyConnectionError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;

use super::stream::StreamTransport;

/// Resolves a `_wait_writable` future (unless it was cancelled).
pub(super) fn resolve_waiter(waiter: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = waiter.py();
    if !waiter.call_method0(intern!(py, "done"))?.is_truthy()? {
        waiter.call_method1(intern!(py, "set_result"), (py.None(),))?;
    }
    Ok(())
}

/// Fails a `_wait_writable` future: the connection is gone.
pub(super) fn fail_waiter(waiter: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = waiter.py();
    if !waiter.call_method0(intern!(py, "done"))?.is_truthy()? {
        let exc = PyConnectionError::new_err("Connection is closed by peer");
        waiter.call_method1(intern!(py, "set_exception"), (exc.value(py),))?;
    }
    Ok(())
}

#[pymethods]
impl StreamTransport {
    /// How `loop.sendfile` may use this transport: natively, with `sendfile(2)`.
    #[classattr]
    fn _sendfile_compatible(py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import(intern!(py, "asyncio.constants"))?
            .getattr(intern!(py, "_SendfileMode"))?
            .getattr(intern!(py, "TRY_NATIVE"))?
            .unbind())
    }

    /// Starts a native sendfile: `write()` raises until `_sendfile_end()`. Returns
    /// the fd to send on.
    fn _sendfile_begin(&self) -> PyResult<i32> {
        let mut st = self.lock();
        if st.closing {
            return Err(PyRuntimeError::new_err("Transport is closing"));
        }
        st.sendfile_active = true;
        Ok(self.fd)
    }

    /// Ends a native sendfile.
    fn _sendfile_end(&self) {
        self.lock().sendfile_active = false;
    }

    /// A future resolved once the buffered data is sent and the socket is
    /// writable; it fails with `ConnectionError` if the connection is lost first.
    fn _wait_writable(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let waiter = this
            .event_loop
            .call_method0(py, intern!(py, "create_future"))?;
        let old = {
            let mut st = this.lock();
            if st.conn_lost > 0 {
                drop(st);
                fail_waiter(waiter.bind(py))?;
                return Ok(waiter);
            }
            let old = st.writable_waiter.replace(waiter.clone_ref(py));
            this.sync_interest(&mut st)?;
            old
        };
        drop(old);
        Ok(waiter)
    }

    /// Ends the connection after a failed sendfile: `connection_lost(exc)` follows.
    fn _force_close(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>) -> PyResult<()> {
        Self::force_close(slf, Some(exc))
    }
}

//! The Python methods stream and datagram transports share, written once:
//! `transport_methods!` puts them on a class wrapping an [`Endpoint`](super::endpoint::Endpoint).

/// The methods stream and datagram transports share, on the class `$class` (a
/// tuple struct around an [`Endpoint`] of `$flavor`).
macro_rules! transport_methods {
    ($class:ident, $flavor:ty) => {
        #[pymethods]
        impl $class {
            /// Closes the transport: data still queued is sent first, then the
            /// protocol's ``connection_lost(None)`` is called and the socket closed.
            /// Nothing more is received.
            fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
                $crate::connection::driver::close(&slf.get().0.host(slf.as_any(), None))
            }

            /// Closes the transport at once, dropping what is queued; the protocol's
            /// ``connection_lost(None)`` is called on the next iteration.
            fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
                $crate::connection::driver::force_close(&slf.get().0.host(slf.as_any(), None), None)
            }

            /// Whether the transport is closing or closed.
            fn is_closing(&self) -> bool {
                self.0.with_conn(|c| c.is_closing())
            }

            /// How many bytes are queued, waiting for the socket (a datagram counts
            /// a few bytes of header besides, as asyncio counts it).
            fn get_write_buffer_size(&self) -> usize {
                use $crate::connection::Outbox;
                self.0.with_conn(|c| c.outbox.size())
            }

            /// The ``(low, high)`` water marks of the queue.
            fn get_write_buffer_limits(&self) -> (usize, usize) {
                self.0.with_conn(|c| c.flow.limits())
            }

            /// Sets the water marks: past ``high`` queued bytes the protocol's
            /// ``pause_writing()`` is called, and ``resume_writing()`` once they
            /// drain to ``low``.
            #[pyo3(signature = (high = None, low = None))]
            fn set_write_buffer_limits(
                slf: &Bound<'_, Self>,
                high: Option<isize>,
                low: Option<isize>,
            ) -> PyResult<()> {
                let set = slf.get().0.with_conn(|c| c.flow.set_limits(high, low));
                set.map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
                $crate::connection::driver::flow(&slf.get().0.host(slf.as_any(), None), true)
            }

            /// Information about the connection: ``socket``, ``sockname``,
            /// ``peername``...
            #[pyo3(signature = (name, default = None))]
            fn get_extra_info<'py>(
                &self,
                py: Python<'py>,
                name: &Bound<'py, PyAny>,
                default: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                Ok(match self.0.extra.bind(py).get_item(name)? {
                    Some(value) => value,
                    None => default.unwrap_or_else(|| py.None().into_bound(py)),
                })
            }

            /// The protocol.
            fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                self.0.protocol(py)
            }

            /// Replaces the protocol.
            fn set_protocol(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
                let buffered = $crate::python::transport::endpoint::is_buffered(protocol)?;
                self.0.with(|st, release| {
                    st.buffered = buffered;
                    release.later(st.protocol.replace(protocol.clone().unbind()));
                });
                Ok(())
            }

            /// Begins reading (scheduled after ``connection_made``).
            fn _start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
                $crate::connection::driver::start(&slf.get().0.host(slf.as_any(), None))
            }

            /// Calls the protocol's ``connection_lost(exc)`` and closes the socket.
            fn _call_connection_lost(
                slf: &Bound<'_, Self>,
                exc: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                slf.get()
                    .0
                    .host(slf.as_any(), None)
                    .call_connection_lost(exc)
            }

            /// What ``isinstance`` sees: a subclass of asyncio's transport class.
            #[getter(__class__)]
            fn class_for_isinstance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
                let kind = self.0.with_conn(|c| c.kind());
                <$flavor as $crate::python::transport::endpoint::Flavor>::class_for_isinstance(
                    py, kind,
                )
            }

            fn __repr__(&self) -> String {
                self.0.repr()
            }

            fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
                self.0.traverse(&visit)
            }

            fn __clear__(&self) {
                self.0.clear();
            }
        }

        impl Drop for $class {
            fn drop(&mut self) {
                let open = self
                    .0
                    .with(|st, _| $crate::python::transport::endpoint::Endpoint::dropped_open(st));
                if open {
                    // Not once the interpreter is going away: nothing to warn then.
                    let _ = Python::try_attach(|py| self.0.warn_unclosed(py));
                }
            }
        }

        impl super::finalize::Finalize for $class {
            fn finalize(slf: &Bound<'_, Self>) {
                let open = slf
                    .get()
                    .0
                    .with(|st, _| $crate::python::transport::endpoint::Endpoint::dropped_open(st));
                if open {
                    slf.get().0.warn_unclosed(slf.py());
                }
            }
        }
    };
}

pub(super) use transport_methods;

//! The Python API of `DatagramTransport`: asyncio's `DatagramTransport` methods.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::address;
use super::bytes_like::with_bytes;
use super::common::{self, LOG_THRESHOLD_FOR_CONNLOST_WRITES};
use super::datagram::{DatagramTransport, State, Target};
use super::datagram_io::Sent;

impl DatagramTransport {
    /// Where a datagram for `addr` goes.
    fn target(&self, st: &State, py: Python<'_>, addr: Option<&Bound<'_, PyAny>>) -> Target {
        if self.connected {
            return Target::Peer;
        }
        match addr {
            Some(addr) => match st
                .known_peer(addr)
                .or_else(|| address::from_numeric(addr, self.family))
            {
                Some(native) => Target::Native(native),
                None => Target::Python(addr.clone().unbind()),
            },
            None => Target::Python(py.None()),
        }
    }
}

/// What a `sendto` did.
enum Sendto {
    /// An empty datagram, dropped (before 3.13).
    Nothing,
    /// The transport is closed: the datagram was dropped.
    AfterLoss { warn: bool },
    /// Sent, queued, or failed.
    Sent(Sent),
}

#[pymethods]
impl DatagramTransport {
    /// Sends `data` (bytes, bytearray or memoryview) to `addr`, or to the
    /// connected peer or `remote_addr` when `addr` is `None`. A send the socket
    /// cannot take at once is queued; an `OSError` goes to the protocol's
    /// `error_received`.
    #[pyo3(signature = (data, addr = None))]
    fn sendto(
        slf: &Bound<'_, Self>,
        data: &Bound<'_, PyAny>,
        addr: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if !(data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>())
        {
            return Err(PyTypeError::new_err(format!(
                "data argument must be a bytes-like object, not '{}'",
                data.get_type().name()?
            )));
        }
        let mut addr = addr.filter(|a| !a.is_none());
        if let Some(fixed) = &this.address {
            let fixed = fixed.bind(py);
            if let Some(given) = &addr {
                if !given.eq(fixed)? {
                    return Err(PyValueError::new_err(format!(
                        "Invalid address: must be None or {}",
                        fixed.str()?
                    )));
                }
            }
            addr = Some(fixed.clone());
        }
        // Before 3.13 asyncio drops an empty datagram; from 3.13 it sends it.
        let send_empty = py.version_info() >= (3, 13);
        let outcome = with_bytes(data, |bytes| {
            if bytes.is_empty() && !send_empty {
                return Ok(Sendto::Nothing);
            }
            let mut st = this.lock();
            if st.conn_lost > 0 {
                st.conn_lost += 1;
                return Ok(Sendto::AfterLoss {
                    warn: st.conn_lost > LOG_THRESHOLD_FOR_CONNLOST_WRITES,
                });
            }
            let target = this.target(&st, py, addr.as_ref());
            if !st.queue.is_empty() {
                st.enqueue(bytes, target);
                return Ok(Sendto::Sent(Sent::Blocked));
            }
            drop(st);
            let sent = this.send_now(py, bytes, &target);
            if let Sent::Blocked = sent {
                let mut st = this.lock();
                st.enqueue(bytes, target);
                this.sync_interest(&mut st)?;
            }
            Ok::<_, PyErr>(Sendto::Sent(sent))
        })??;
        match outcome {
            Sendto::Nothing | Sendto::Sent(Sent::Done) | Sendto::AfterLoss { warn: false } => {
                Ok(())
            }
            Sendto::AfterLoss { warn: true } => common::warn_write_after_loss(py),
            Sendto::Sent(Sent::Blocked) => Self::flow_control(slf, true),
            Sendto::Sent(Sent::Failed(err)) => Self::send_failed(slf, err),
        }
    }

    /// What `isinstance` sees: a subclass of asyncio's `DatagramTransport`.
    #[getter(__class__)]
    fn class_for_isinstance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        static DATAGRAM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        common::class_for_isinstance(py, &DATAGRAM, "DatagramTransport")
    }

    /// Closes the transport: queued datagrams are still sent, then the
    /// protocol's `connection_lost(None)` is called and the socket closed. No
    /// more datagrams are received.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (owner, lost) = {
            let mut st = this.lock();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
            if st.queue.is_empty() {
                (this.mark_lost(&mut st), true)
            } else {
                this.sync_interest(&mut st)?;
                (None, false)
            }
        };
        drop(owner);
        if lost {
            this.schedule_connection_lost(slf, py.None().into_bound(py))?;
        }
        Ok(())
    }

    /// Closes the transport at once, dropping queued datagrams; the protocol's
    /// `connection_lost(None)` is called on the next iteration.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::force_close(slf, None)
    }

    /// Whether the transport is closing or closed.
    fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// How many bytes are queued (with a few bytes of header each, as asyncio
    /// counts them).
    fn get_write_buffer_size(&self) -> usize {
        self.lock().queued
    }

    /// The `(low, high)` water marks of the queue.
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.lock().flow.limits()
    }

    /// Sets the water marks: past `high` queued bytes the protocol's
    /// `pause_writing()` is called, and `resume_writing()` once they drain to `low`.
    #[pyo3(signature = (high = None, low = None))]
    fn set_write_buffer_limits(
        slf: &Bound<'_, Self>,
        high: Option<isize>,
        low: Option<isize>,
    ) -> PyResult<()> {
        slf.get().lock().flow.set_limits(high, low)?;
        Self::flow_control(slf, true)
    }

    /// Information about the endpoint: ``socket``, ``sockname``, ``peername``.
    #[pyo3(signature = (name, default = None))]
    fn get_extra_info<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        common::extra_info(py, &self.extra, name, default)
    }

    /// The protocol.
    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.lock().protocol.as_ref().map(|p| p.clone_ref(py))
    }

    /// Replaces the protocol.
    fn set_protocol(&self, protocol: &Bound<'_, PyAny>) {
        let old = self.lock().protocol.replace(protocol.clone().unbind());
        drop(old);
    }

    /// Begins reading (scheduled after ``connection_made``).
    fn _start_reading(&self) -> PyResult<()> {
        let mut st = self.lock();
        st.started = true;
        self.sync_interest(&mut st)
    }

    /// Calls the protocol's ``connection_lost(exc)`` and closes the socket.
    fn _call_connection_lost(slf: &Bound<'_, Self>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (protocol, owner) = {
            let mut st = this.lock();
            let owner = if st.conn_lost == 0 {
                this.mark_lost(&mut st)
            } else {
                None
            };
            (st.protocol.take(), owner)
        };
        drop(owner);
        let lost = match &protocol {
            Some(protocol) => protocol
                .call_method1(py, intern!(py, "connection_lost"), (exc,))
                .map(drop),
            None => Ok(()),
        };
        let closed = this.sock.call_method0(py, intern!(py, "close")).map(drop);
        lost.and(closed)
    }

    fn __repr__(&self) -> String {
        let st = self.lock();
        let state = if st.conn_lost > 0 {
            "closed"
        } else if st.closing {
            "closing"
        } else {
            "open"
        };
        format!(
            "<DatagramTransport fd={} {state} queued={}>",
            self.fd, st.queued
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.sock)?;
        visit.call(&self.extra)?;
        visit.call(&self.context)?;
        visit.call(&self.address)?;
        if let Ok(st) = self.state.try_lock() {
            visit.call(&st.protocol)?;
            if let Some((_, object)) = &st.last_peer {
                visit.call(object)?;
            }
            for datagram in &st.queue {
                if let Target::Python(addr) = &datagram.to {
                    visit.call(addr)?;
                }
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = {
            let mut st = self.lock();
            st.queued = 0;
            (
                st.protocol.take(),
                std::mem::take(&mut st.queue),
                st.last_peer.take(),
            )
        };
        drop(taken);
    }
}

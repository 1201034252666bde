//! What a datagram transport does on its socket: reads into the protocol's
//! `datagram_received`, sends (at once, or queued until the socket is writable),
//! and the fatal-error path that ends it.

use std::io;

use mio::Token;
use pyo3::exceptions::{PyBlockingIOError, PyInterruptedError, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::common;
use super::datagram::{DatagramTransport, Target};
use crate::python::errors;
use crate::python::report;
use crate::IoEvents;

/// Datagrams read per readiness event before the transport lets other work run;
/// the fd is then re-armed so the rest is read on a later iteration.
const DATAGRAMS_PER_EVENT: usize = 16;

/// The largest datagram read (asyncio's `max_size`; a UDP datagram is < 64 KiB).
const MAX_DATAGRAM: usize = 256 * 1024;

/// How a send went.
pub(super) enum Sent {
    Done,
    /// The socket's buffer is full: queue it.
    Blocked,
    /// The send failed: an `OSError` goes to `error_received`, anything else is
    /// fatal.
    Failed(PyErr),
}

impl DatagramTransport {
    /// Runs readiness `events` of the transport's fd (`token`).
    pub(crate) fn on_ready(slf: &Bound<'_, Self>, token: Token, events: IoEvents) -> PyResult<()> {
        if events.intersects(IoEvents::READ | IoEvents::ERROR) {
            Self::read_ready(slf, token)?;
        }
        if events.intersects(IoEvents::WRITE | IoEvents::ERROR) {
            Self::write_ready(slf)?;
        }
        Ok(())
    }

    /// Reads datagrams until the socket has none left. An error the socket
    /// reports (an ICMP "port unreachable" on a connected socket...) goes to the
    /// protocol's `error_received`; an exception from the protocol is reported and
    /// the transport goes on, as asyncio's.
    fn read_ready(slf: &Bound<'_, Self>, token: Token) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        for _ in 0..DATAGRAMS_PER_EVENT {
            let protocol = {
                let st = this.lock();
                match &st.protocol {
                    Some(p) if st.wanted().contains(IoEvents::READ) => p.clone_ref(py),
                    _ => return Ok(()),
                }
            };
            // The buffer is taken out while in use (no Python code runs meanwhile).
            let mut buf = std::mem::take(&mut *this.shared.read_buffer());
            if buf.len() < MAX_DATAGRAM {
                buf.resize(MAX_DATAGRAM, 0);
            }
            let got = crate::io::recv_from(this.fd, &mut buf)
                .map(|(n, from)| (PyBytes::new(py, &buf[..n]), from));
            *this.shared.read_buffer() = buf;
            let (method, outcome) = match got {
                Ok((data, from)) => {
                    let addr = this.lock().peer_object(py, from)?;
                    let method = intern!(py, "datagram_received");
                    (method, protocol.call_method1(py, method, (data, addr)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => {
                    let method = intern!(py, "error_received");
                    (
                        method,
                        protocol.call_method1(py, method, (errors::os_error(e).value(py),)),
                    )
                }
            };
            if let Err(err) = outcome {
                let culprit = protocol.bind(py).getattr(method)?;
                report::fail(this.event_loop.bind(py), err, &culprit)?;
            }
        }
        this.shared.lock().still_ready(token);
        Ok(())
    }

    /// Sends one datagram now.
    pub(super) fn send_now(&self, py: Python<'_>, data: &[u8], to: &Target) -> Sent {
        let sent = match to {
            Target::Peer => crate::io::send_to(self.fd, data, None),
            Target::Native(addr) => crate::io::send_to(self.fd, data, Some(addr)),
            Target::Python(addr) => {
                let sendto = intern!(py, "sendto");
                return match self
                    .sock
                    .call_method1(py, sendto, (PyBytes::new(py, data), addr))
                {
                    Ok(_) => Sent::Done,
                    Err(e)
                        if e.is_instance_of::<PyBlockingIOError>(py)
                            || e.is_instance_of::<PyInterruptedError>(py) =>
                    {
                        Sent::Blocked
                    }
                    Err(e) => Sent::Failed(e),
                };
            }
        };
        match sent {
            Ok(_) => Sent::Done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Blocked,
            Err(e) => Sent::Failed(errors::os_error(e)),
        }
    }

    /// A send failed: an `OSError` is the protocol's `error_received`, anything
    /// else (a bad address...) ends the transport.
    pub(super) fn send_failed(slf: &Bound<'_, Self>, err: PyErr) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if !err.is_instance_of::<PyOSError>(py) {
            return Self::fatal_error(slf, err, "Fatal write error on datagram transport");
        }
        let Some(protocol) = this.lock().protocol.as_ref().map(|p| p.clone_ref(py)) else {
            return Ok(());
        };
        let method = intern!(py, "error_received");
        match protocol.call_method1(py, method, (err.value(py),)) {
            Ok(_) => Ok(()),
            Err(e) => report::fail(
                this.event_loop.bind(py),
                e,
                &protocol.bind(py).getattr(method)?,
            ),
        }
    }

    /// Sends the queued datagrams while the socket takes them; once the queue is
    /// empty, a closing transport is closed.
    fn write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        loop {
            let next = {
                let mut st = this.lock();
                if st.conn_lost > 0 {
                    return Ok(());
                }
                st.dequeue()
            };
            let Some(datagram) = next else { break };
            match this.send_now(py, &datagram.data, &datagram.to) {
                Sent::Done => {}
                Sent::Blocked => {
                    this.lock().requeue(datagram);
                    break;
                }
                Sent::Failed(err) => return Self::send_failed(slf, err),
            }
        }
        Self::flow_control(slf, false)?;
        let (owner, closed) = {
            let mut st = this.lock();
            if !st.queue.is_empty() || st.conn_lost > 0 {
                return Ok(());
            }
            if st.closing {
                (this.mark_lost(&mut st), true)
            } else {
                this.sync_interest(&mut st)?;
                (None, false)
            }
        };
        drop(owner);
        if closed {
            slf.call_method1(intern!(py, "_call_connection_lost"), (py.None(),))?;
        }
        Ok(())
    }

    /// Ends the transport after an error: reported to the loop's exception handler
    /// (an `OSError` is not), then `connection_lost(exc)`. `KeyboardInterrupt`
    /// and `SystemExit` propagate.
    pub(super) fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let protocol = || this.lock().protocol.as_ref().map(|p| p.clone_ref(py));
        let event_loop = this.event_loop.bind(py);
        let exc = common::fatal_exception(event_loop, slf.as_any(), protocol, err, message)?;
        Self::force_close(slf, Some(exc))
    }

    /// Calls the protocol's `pause_writing()` once the queue passes the high-water
    /// mark (`pause`), or `resume_writing()` once it drains to the low-water mark.
    pub(super) fn flow_control(slf: &Bound<'_, Self>, pause: bool) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let protocol = {
            let mut st = this.lock();
            let buffered = st.queued;
            let due = st.flow.due(pause, buffered);
            let Some(protocol) = st
                .protocol
                .as_ref()
                .filter(|_| due)
                .map(|p| p.clone_ref(py))
            else {
                return Ok(());
            };
            protocol
        };
        common::tell_flow(this.event_loop.bind(py), slf.as_any(), &protocol, pause)
    }
}

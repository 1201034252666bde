//! `DatagramTransport`: asyncio's transport for a UDP or Unix datagram socket,
//! with the reads, the sends and the queue of datagrams waiting for the socket
//! in Rust.
//!
//! Like the stream transport, it owns its fd's entry in the loop's fd table,
//! edge-triggered: a readiness event reads datagrams until the socket has none
//! left (a bounded number per event). This module is its state and how it is
//! made; `datagram_api.rs` is its Python API and `datagram_io.rs` what
//! readiness and `sendto` do on the socket.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::common;
use crate::python::core::LoopCore;
use crate::python::errors;
use crate::python::fd_owner::FdOwner;
use crate::python::shared::Shared;
use crate::{Address, IoEvents, SockAddr, Trigger};

/// Where a datagram goes.
pub(super) enum Target {
    /// The connected peer (`send`).
    Peer,
    /// A numeric address the kernel takes as is (`sendto`).
    Native(SockAddr),
    /// Any other address (a host name, a Unix path...): the socket object's own
    /// `sendto` resolves it.
    Python(Py<PyAny>),
}

/// A datagram waiting for the socket to be writable.
pub(super) struct Datagram {
    pub(super) data: Box<[u8]>,
    pub(super) to: Target,
}

/// Bytes a queued datagram counts for besides its payload (asyncio's figure for
/// the header).
pub(super) const HEADER_SIZE: usize = 8;

/// A datagram transport's state, behind its mutex (never held while Python runs).
pub(super) struct State {
    /// `None` once `connection_lost` ran.
    pub(super) protocol: Option<Py<PyAny>>,
    pub(super) queue: VecDeque<Datagram>,
    /// The queued payloads plus `HEADER_SIZE` each: `get_write_buffer_size()`.
    pub(super) queued: usize,
    pub(super) flow: common::Flow,
    /// `connection_made` ran: reading may begin.
    pub(super) started: bool,
    pub(super) closing: bool,
    /// Non-zero once the transport is closed (counts sends made after that).
    pub(super) conn_lost: u32,
    /// The fd is in the loop's fd table.
    pub(super) registered: bool,
    /// The events the fd table watches for now.
    pub(super) interest: IoEvents,
    /// The last sender's address and the Python object made for it: the next
    /// datagram from it reuses the object, and a `sendto` to that object (an
    /// echo's reply) reuses the address.
    pub(super) last_peer: Option<(SockAddr, Py<PyAny>)>,
}

impl State {
    /// The Python address of `from`, made once per sender in a row.
    pub(super) fn peer_object(&mut self, py: Python<'_>, from: SockAddr) -> PyResult<Py<PyAny>> {
        if let Some((addr, object)) = &self.last_peer {
            if *addr == from {
                return Ok(object.clone_ref(py));
            }
        }
        let object = super::address::to_python(py, &from)?.unbind();
        if matches!(
            from.address(),
            Address::V4(_) | Address::V6(_) | Address::Unix(_)
        ) {
            self.last_peer = Some((from, object.clone_ref(py)));
        }
        Ok(object)
    }

    /// The kernel address of `addr` if it is the last sender's object.
    pub(super) fn known_peer(&self, addr: &Bound<'_, PyAny>) -> Option<SockAddr> {
        match &self.last_peer {
            Some((sockaddr, object)) if addr.is(object) => Some(sockaddr.clone()),
            _ => None,
        }
    }

    /// The events the transport needs now.
    pub(super) fn wanted(&self) -> IoEvents {
        let mut events = IoEvents::NONE;
        if self.conn_lost > 0 {
            return events;
        }
        if self.started && !self.closing {
            events |= IoEvents::READ;
        }
        if !self.queue.is_empty() {
            events |= IoEvents::WRITE;
        }
        events
    }

    /// Queues `data` for `to`.
    pub(super) fn enqueue(&mut self, data: &[u8], to: Target) {
        self.queued += data.len() + HEADER_SIZE;
        self.queue.push_back(Datagram {
            data: data.into(),
            to,
        });
    }

    /// Takes the next queued datagram.
    pub(super) fn dequeue(&mut self) -> Option<Datagram> {
        let datagram = self.queue.pop_front()?;
        self.queued -= datagram.data.len() + HEADER_SIZE;
        Some(datagram)
    }

    /// Puts a datagram the socket did not take back at the front.
    pub(super) fn requeue(&mut self, datagram: Datagram) {
        self.queued += datagram.data.len() + HEADER_SIZE;
        self.queue.push_front(datagram);
    }
}

/// asyncio's datagram transport on mioloop's engine.
#[pyclass(frozen, weakref, dict, module = "mioloop._mioloop")]
pub(crate) struct DatagramTransport {
    pub(super) event_loop: Py<PyAny>,
    pub(super) shared: Arc<Shared>,
    pub(super) fd: RawFd,
    /// The socket's family (`AF_INET`...), for numeric addresses.
    pub(super) family: i32,
    pub(super) sock: Py<PyAny>,
    pub(super) extra: Py<PyDict>,
    /// The socket is connected: datagrams go to its peer.
    pub(super) connected: bool,
    /// The `remote_addr` it was made with: `sendto` refuses any other.
    pub(super) address: Option<Py<PyAny>>,
    /// A copy of the context current when the transport was made: the protocol's
    /// callbacks that I/O triggers run in it.
    pub(super) context: Py<PyAny>,
    pub(super) state: Mutex<State>,
}

impl DatagramTransport {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings the fd table's interest in line with what the state wants.
    pub(super) fn sync_interest(&self, st: &mut State) -> PyResult<()> {
        let want = st.wanted();
        common::sync_interest(&self.shared, self.fd, st.registered, &mut st.interest, want)
    }

    /// Nothing more is read or sent from now on; the fd leaves the loop's table
    /// (its entry is returned, to drop outside every lock).
    pub(super) fn mark_lost(&self, st: &mut State) -> Option<FdOwner> {
        st.conn_lost += 1;
        if !std::mem::take(&mut st.registered) {
            return None;
        }
        common::take_fd_if_ours(&self.shared, self.fd, (self as *const Self).cast())
    }

    /// Drops the queue and the fd at once; `connection_lost(exc)` follows on the
    /// next iteration.
    pub(super) fn force_close(
        slf: &Bound<'_, Self>,
        exc: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let owner = {
            let mut st = this.lock();
            if st.conn_lost > 0 {
                return Ok(());
            }
            st.queue.clear();
            st.queued = 0;
            st.closing = true;
            this.mark_lost(&mut st)
        };
        drop(owner);
        this.schedule_connection_lost(slf, exc.unwrap_or_else(|| py.None().into_bound(py)))
    }

    pub(super) fn schedule_connection_lost(
        &self,
        slf: &Bound<'_, Self>,
        exc: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let func = slf.getattr(intern!(py, "_call_connection_lost"))?;
        common::call_soon(&self.shared, &func, &PyTuple::new(py, [exc])?)
    }
}

impl Drop for DatagramTransport {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if common::mark_dropped_open(&mut st.closing, st.conn_lost) {
            common::warn_unclosed(format!("<DatagramTransport fd={}>", self.fd), &self.sock);
        }
    }
}

impl super::finalize::Finalize for DatagramTransport {
    fn finalize(slf: &Bound<'_, Self>) {
        let this = slf.get();
        let open = {
            let st = &mut *this.lock();
            common::mark_dropped_open(&mut st.closing, st.conn_lost)
        };
        if open {
            common::warn_unclosed(format!("<DatagramTransport fd={}>", this.fd), &this.sock);
        }
    }
}

#[pymethods]
impl LoopCore {
    /// Makes the datagram transport of a non-blocking datagram socket: the fd is
    /// registered at once, `protocol.connection_made(transport)` runs on the next
    /// iteration, and reading starts after it. `address` is the `remote_addr` the
    /// endpoint was made with, if any.
    #[pyo3(signature = (sock, protocol, address, extra))]
    fn _make_datagram_transport(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        address: Option<&Bound<'_, PyAny>>,
        extra: &Bound<'_, PyDict>,
    ) -> PyResult<Py<DatagramTransport>> {
        let py = slf.py();
        let this = slf.get();
        this.check_process()?;
        let fd = super::super::args::fileno(sock)?;
        crate::io::no_sigpipe(fd).map_err(errors::os_error)?;
        let family: i32 = sock.getattr(intern!(py, "family"))?.extract()?;
        let connected = match extra.get_item(intern!(py, "peername"))? {
            Some(peer) => peer.is_truthy()?,
            None => false,
        };
        let transport = Py::new(
            py,
            DatagramTransport {
                event_loop: slf.clone().into_any().unbind(),
                shared: this.shared.clone(),
                fd,
                family,
                sock: sock.clone().unbind(),
                extra: extra.clone().unbind(),
                connected,
                address: address.filter(|a| !a.is_none()).map(|a| a.clone().unbind()),
                context: crate::python::context::capture(py)?,
                state: Mutex::new(State {
                    protocol: Some(protocol.clone().unbind()),
                    queue: VecDeque::new(),
                    queued: 0,
                    flow: common::Flow::new()?,
                    started: false,
                    closing: false,
                    conn_lost: 0,
                    registered: true,
                    interest: IoEvents::NONE,
                    last_peer: None,
                }),
            },
        )?;
        let owner = FdOwner::Transport(super::TransportRef::Datagram(transport.clone_ref(py)));
        let added = this.lock().add_fd(fd, IoEvents::NONE, Trigger::Edge, owner);
        drop(added.map_err(errors::fd_error)?);
        let bound = transport.bind(py);
        let made = protocol.getattr(intern!(py, "connection_made"))?;
        common::call_soon(&this.shared, &made, &PyTuple::new(py, [bound])?)?;
        let start = bound.getattr(intern!(py, "_start_reading"))?;
        common::call_soon(&this.shared, &start, &PyTuple::empty(py))?;
        Ok(transport)
    }
}

//! `DatagramTransport`: asyncio's transport of a UDP or Unix datagram socket, on
//! the connection core. Each readiness event reads datagrams until the socket
//! has none left (a bounded number); a datagram the socket does not take at once
//! waits whole, with its address, in the core's queue.

use std::io;

use pyo3::exceptions::{
    PyBlockingIOError, PyInterruptedError, PyOSError, PyTypeError, PyValueError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::address;
use super::bytes_like::BytesLike;
use super::endpoint::{asyncio_class, Endpoint, Flavor, Opening, Scheduled, State};
use super::host::PyHost;
use super::methods::transport_methods;
use super::stream::after_gate;
use crate::connection::{driver, DatagramQueue, Flush, Gate, Kind, Outbox, Read};
use crate::python::errors;
use crate::{Address, IoEvents, SockAddr};

/// The largest datagram read (asyncio's `max_size`; a UDP datagram is < 64 KiB).
const MAX_DATAGRAM: usize = 256 * 1024;

/// Where a datagram goes.
pub(super) enum Target {
    /// The connected peer.
    Peer,
    /// A numeric address the kernel takes as is.
    Native(SockAddr),
    /// Any other address (a host name, a Unix path...): the socket object's own
    /// `sendto` resolves it.
    Python(Py<PyAny>),
}

/// The datagram flavor of a transport: what its socket is.
pub(super) struct Datagram {
    /// The socket's family (`AF_INET`...), for numeric addresses.
    family: i32,
    /// The socket is connected: datagrams go to its peer.
    connected: bool,
    /// The `remote_addr` it was made with: `sendto` refuses any other.
    address: Option<Py<PyAny>>,
}

/// The last sender's address and the Python object made for it: the next
/// datagram from it reuses the object, and a `sendto` to that object (an echo's
/// reply) reuses the address.
#[derive(Default)]
pub(super) struct LastPeer(Option<(SockAddr, Py<PyAny>)>);

impl Flavor for Datagram {
    type Outbox = DatagramQueue<Target>;
    type More = LastPeer;
    const NAME: &'static str = "DatagramTransport";
    const READS_PER_EVENT: usize = 16;

    fn read(h: &PyHost<'_, '_, Self>) -> Read<PyErr> {
        let py = h.py();
        let Some(protocol) = h.ep.protocol(py) else {
            return Read::Blocked;
        };
        // The buffer is taken out while in use.
        let mut buf = std::mem::take(&mut *h.ep.shared.read_buffer());
        buf.resize(MAX_DATAGRAM, 0);
        let got = crate::io::recv_from(h.ep.fd, &mut buf)
            .map(|(n, from)| (PyBytes::new(py, &buf[..n]), from));
        *h.ep.shared.read_buffer() = buf;
        let (method, outcome) = match got {
            Ok((data, from)) => {
                let addr = match peer_object(h, from) {
                    Ok(addr) => addr,
                    Err(e) => return Read::Fatal(e, "Fatal read error on datagram transport"),
                };
                let method = intern!(py, "datagram_received");
                (method, protocol.call_method1(py, method, (data, addr)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Blocked,
            Err(e) => {
                let method = intern!(py, "error_received");
                let exc = errors::os_error(e);
                (method, protocol.call_method1(py, method, (exc.value(py),)))
            }
        };
        match outcome {
            Ok(_) => Read::More,
            Err(err) => match report_protocol_error(h, &protocol, method, err) {
                Ok(()) => Read::Reported,
                Err(exit) => Read::Fatal(exit, "Fatal read error on datagram transport"),
            },
        }
    }

    fn flush(h: &PyHost<'_, '_, Self>) -> Flush<PyErr> {
        let py = h.py();
        while let Some(datagram) = h.ep.with_conn(|c| c.outbox.pop()) {
            match send_now(h, &datagram.data, &datagram.to) {
                Ok(true) => {}
                Ok(false) => {
                    h.ep.with_conn(|c| c.outbox.push_front(datagram));
                    return Flush::Pending;
                }
                // As asyncio's: the protocol hears of it, the datagram is dropped.
                Err(err) if err.is_instance_of::<PyOSError>(py) => {
                    return match error_received(h, err) {
                        Ok(()) => Flush::Reported,
                        Err(exit) => Flush::Fatal(exit, "Fatal write error on datagram transport"),
                    };
                }
                Err(err) => return Flush::Fatal(err, "Fatal write error on datagram transport"),
            }
        }
        Flush::Empty
    }

    fn traverse(st: &State<Self>, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some((_, object)) = &st.more.0 {
            visit.call(object)?;
        }
        let mut result = Ok(());
        st.conn.outbox.for_each_target(|to| {
            if let (Target::Python(addr), Ok(())) = (to, &result) {
                result = visit.call(addr);
            }
        });
        result
    }

    fn scheduled() -> &'static Scheduled {
        static SCHEDULED: Scheduled = Scheduled::new();
        &SCHEDULED
    }

    fn class_for_isinstance(py: Python<'_>, _: Kind) -> PyResult<Bound<'_, PyType>> {
        static DATAGRAM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        asyncio_class(py, &DATAGRAM, "DatagramTransport")
    }
}

/// The Python address of `from`, made once per sender in a row.
fn peer_object(h: &PyHost<'_, '_, Datagram>, from: SockAddr) -> PyResult<Py<PyAny>> {
    let py = h.py();
    let known = h.ep.with(|st, _| match &st.more.0 {
        Some((addr, object)) if *addr == from => Some(object.clone_ref(py)),
        _ => None,
    });
    if let Some(object) = known {
        return Ok(object);
    }
    let object = address::to_python(py, &from)?.unbind();
    if matches!(
        from.address(),
        Address::V4(_) | Address::V6(_) | Address::Unix(_)
    ) {
        let kept = (from, object.clone_ref(py));
        h.ep.with(|st, release| release.later(st.more.0.replace(kept)));
    }
    Ok(object)
}

/// Sends one datagram now: `Ok(false)` if the socket's buffer is full.
fn send_now(h: &PyHost<'_, '_, Datagram>, data: &[u8], to: &Target) -> PyResult<bool> {
    let py = h.py();
    let sent = match to {
        Target::Peer => crate::io::send_to(h.ep.fd, data, None),
        Target::Native(addr) => crate::io::send_to(h.ep.fd, data, Some(addr)),
        Target::Python(addr) => {
            let sendto = intern!(py, "sendto");
            return match h
                .ep
                .sock
                .call_method1(py, sendto, (PyBytes::new(py, data), addr))
            {
                Ok(_) => Ok(true),
                Err(e)
                    if e.is_instance_of::<PyBlockingIOError>(py)
                        || e.is_instance_of::<PyInterruptedError>(py) =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        }
    };
    match sent {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(errors::os_error(e)),
    }
}

/// Tells the protocol's `error_received` of `err`; what it raises is reported.
fn error_received(h: &PyHost<'_, '_, Datagram>, err: PyErr) -> PyResult<()> {
    let py = h.py();
    let Some(protocol) = h.ep.protocol(py) else {
        return Ok(());
    };
    let method = intern!(py, "error_received");
    match protocol.call_method1(py, method, (err.value(py),)) {
        Ok(_) => Ok(()),
        Err(e) => report_protocol_error(h, &protocol, method, e),
    }
}

/// Reports what a datagram protocol's `method` raised, naming it as asyncio's
/// handles name a callback.
fn report_protocol_error(
    h: &PyHost<'_, '_, Datagram>,
    protocol: &Py<PyAny>,
    method: &Bound<'_, pyo3::types::PyString>,
    err: PyErr,
) -> PyResult<()> {
    let culprit = protocol.bind(h.py()).getattr(method)?;
    let name = culprit
        .repr()
        .map_or_else(|_| method.to_string(), |r| r.to_string());
    h.report(&format!("Exception in callback {name}"), err)
}

/// asyncio's datagram transport on mioloop's engine.
#[pyclass(frozen, weakref, dict, module = "mioloop._mioloop")]
pub(crate) struct DatagramTransport(Endpoint<Datagram>);

transport_methods!(DatagramTransport, Datagram);

impl DatagramTransport {
    /// Makes the transport of a non-blocking datagram socket: its fd is
    /// registered at once, the protocol's `connection_made` runs on the next
    /// iteration, and reading starts after it. `address` is the `remote_addr` the
    /// endpoint was made with, if any.
    pub(crate) fn open(
        how: &Opening<'_, '_>,
        address: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<Self>> {
        let py = how.sock.py();
        let family: i32 = how.sock.getattr(intern!(py, "family"))?.extract()?;
        let connected = match how.extra.get_item(intern!(py, "peername"))? {
            Some(peer) => peer.is_truthy()?,
            None => false,
        };
        let flavor = Datagram {
            family,
            connected,
            address: address.filter(|a| !a.is_none()).map(|a| a.clone().unbind()),
        };
        let transport = Py::new(py, DatagramTransport(Endpoint::new(how, flavor)?))?;
        let bound = transport.bind(py);
        Endpoint::open(bound.as_any(), &bound.get().0, how.protocol, on_ready)?;
        Ok(transport)
    }

    /// Where a datagram for `addr` goes. Python runs here (an address's
    /// `__index__`), outside every lock.
    fn target(&self, py: Python<'_>, addr: Option<&Bound<'_, PyAny>>) -> Target {
        let ours = &self.0.flavor;
        if ours.connected {
            return Target::Peer;
        }
        let Some(addr) = addr else {
            return Target::Python(py.None());
        };
        let known = self.0.with(|st, _| match &st.more.0 {
            Some((sockaddr, object)) if addr.is(object) => Some(sockaddr.clone()),
            _ => None,
        });
        match known.or_else(|| address::from_numeric(addr, ours.family)) {
            Some(native) => Target::Native(native),
            None => Target::Python(addr.clone().unbind()),
        }
    }
}

/// Runs readiness of a datagram transport's fd, in the context it was made in.
fn on_ready(obj: &Bound<'_, PyAny>, token: mio::Token, events: IoEvents) -> PyResult<()> {
    let transport = obj.cast::<DatagramTransport>()?;
    let ep = &transport.get().0;
    crate::python::context::run_in(obj.py(), &ep.context, || {
        driver::ready(&ep.host(obj, Some(token)), events)
    })
}

/// What `sendto` does with a datagram, decided under the lock.
enum Sendto {
    /// Nothing (an empty datagram before 3.13, or a dropped one).
    Gated(Gate),
    /// Datagrams wait: it was queued behind them.
    Queued,
    /// Send it now (queued if the socket is full).
    Now,
    /// asyncio sends it anyway on a closed transport made without
    /// `remote_addr` (until its socket is closed), and drops it if it would
    /// block.
    Regardless,
}

#[pymethods]
impl DatagramTransport {
    /// Sends `data` (bytes, bytearray or memoryview) to `addr`, or to the
    /// connected peer or `remote_addr` when `addr` is `None`. A datagram the
    /// socket cannot take at once is queued; an `OSError` goes to the protocol's
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
        if let Some(fixed) = &this.0.flavor.address {
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
        let bytes = BytesLike::new(data)?;
        let bytes = bytes.as_slice();
        // Before 3.13 asyncio drops an empty datagram; from 3.13 it sends it.
        if bytes.is_empty() && py.version_info() < (3, 13) {
            return Ok(());
        }
        let target = this.target(py, addr.as_ref());
        let h = this.0.host(slf.as_any(), None);
        let fixed = this.0.flavor.address.is_some();
        let step = h.ep.with(|st, _| {
            if st.conn.is_lost() && !fixed && !st.finished {
                return Sendto::Regardless;
            }
            match st.conn.gate(bytes.len(), true) {
                Gate::Open if !st.conn.outbox.is_empty() => Sendto::Queued,
                Gate::Open => Sendto::Now,
                gate => Sendto::Gated(gate),
            }
        });
        match step {
            Sendto::Gated(gate) => return after_gate(py, gate),
            Sendto::Queued => h.ep.with_conn(|c| c.outbox.push(bytes, target)),
            Sendto::Now | Sendto::Regardless => match send_now(&h, bytes, &target) {
                Ok(true) => return Ok(()),
                Ok(false) if matches!(step, Sendto::Regardless) => return Ok(()),
                Ok(false) => {
                    h.ep.with_conn(|c| c.outbox.push(bytes, target));
                    driver::sync(&h)?;
                }
                Err(err) if err.is_instance_of::<PyOSError>(py) => {
                    let Some(protocol) = h.ep.protocol(py) else {
                        return Ok(());
                    };
                    return protocol
                        .call_method1(py, intern!(py, "error_received"), (err.value(py),))
                        .map(drop);
                }
                Err(err) => {
                    return driver::fatal(&h, err, "Fatal write error on datagram transport")
                }
            },
        }
        driver::flow(&h, true)
    }
}

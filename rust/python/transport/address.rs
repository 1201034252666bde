//! Socket addresses between Python and the kernel, for datagram transports: the
//! tuples `socket.recvfrom` gives (`(host, port)`, `(host, port, flowinfo,
//! scope_id)`, a Unix path), and the numeric IP tuples `sendto` can send to
//! without asking Python to resolve them.

use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::{Address, SockAddr};

/// The address as `socket.recvfrom` gives it.
pub(super) fn to_python<'py>(py: Python<'py>, addr: &SockAddr) -> PyResult<Bound<'py, PyAny>> {
    Ok(match addr.address() {
        Address::Nothing => py.None().into_bound(py),
        Address::V4(v4) => (v4.ip().to_string(), v4.port())
            .into_pyobject(py)?
            .into_any(),
        Address::V6(v6) => (v6.ip().to_string(), v6.port(), v6.flowinfo(), v6.scope_id())
            .into_pyobject(py)?
            .into_any(),
        // A Linux abstract name is bytes; a path is decoded as the file system's.
        Address::Unix(path) if path.first() == Some(&0) => PyBytes::new(py, path).into_any(),
        Address::Unix(path) => OsStr::from_bytes(path).into_pyobject(py)?.into_any(),
        Address::Other(family) => (family, PyBytes::new(py, b""))
            .into_pyobject(py)?
            .into_any(),
    })
}

/// `addr` as a kernel address when it is a numeric IP tuple of the socket's
/// `family`; `None` for anything else (a host name, a Unix path...), which the
/// socket object's own `sendto` resolves.
pub(super) fn from_numeric(addr: &Bound<'_, PyAny>, family: i32) -> Option<SockAddr> {
    let tuple = addr.cast::<PyTuple>().ok()?;
    let host = tuple.get_item(0).ok()?;
    let host = host.cast::<PyString>().ok()?.to_str().ok()?;
    let port: u16 = tuple.get_item(1).ok()?.extract().ok()?;
    match (host.parse::<IpAddr>().ok()?, family, tuple.len()) {
        (IpAddr::V4(ip), libc::AF_INET, 2) => Some(SockAddr::from_ip(SocketAddr::from((ip, port)))),
        (IpAddr::V6(ip), libc::AF_INET6, len @ 2..=4) => {
            let flowinfo: u32 = if len > 2 {
                tuple.get_item(2).ok()?.extract().ok()?
            } else {
                0
            };
            let scope_id: u32 = if len > 3 {
                tuple.get_item(3).ok()?.extract().ok()?
            } else {
                0
            };
            Some(SockAddr::from_ip(SocketAddr::V6(SocketAddrV6::new(
                ip, port, flowinfo, scope_id,
            ))))
        }
        _ => None,
    }
}

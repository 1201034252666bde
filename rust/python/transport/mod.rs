//! asyncio's transports on the engine's connection core (`crate::connection`):
//! the core runs the lifecycle (reads, the write queue, the water marks, close,
//! abort, EOF, lost); this folder is its Python side — a host that hands what
//! happens to a Python protocol, and the transport classes' methods.
//!
//! - `endpoint.rs`: what every transport is (its fd, socket, state, protocol);
//! - `methods.rs`: the Python methods every transport has, written once;
//! - `host.rs`: the core's [`Host`](crate::connection::Host) for a Python
//!   protocol, and the one route its errors take;
//! - `stream.rs`: `StreamTransport` (a stream socket, a pipe's end);
//! - `datagram.rs`: `DatagramTransport`;
//! - `address.rs`, `bytes_like.rs`, `finalize.rs`: addresses, Python buffers,
//!   the warning of a transport dropped open.

mod address;
mod bytes_like;
mod datagram;
pub(crate) mod endpoint;
mod finalize;
mod host;
mod methods;
mod stream;

use pyo3::prelude::*;

pub(crate) use datagram::DatagramTransport;
pub(crate) use endpoint::Opening;
pub(crate) use stream::StreamTransport;

/// Adds the transport classes to the module, each with its finalizer.
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<StreamTransport>()?;
    module.add_class::<DatagramTransport>()?;
    finalize::install::<StreamTransport>(module.py());
    finalize::install::<DatagramTransport>(module.py());
    Ok(())
}

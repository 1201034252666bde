//! asyncio transports whose I/O is done in Rust. Each is a pyclass holding the
//! loop's shared state and owning its fd's entry in the fd table.

mod bytes_like;
mod stream;
mod stream_api;
mod stream_io;
mod stream_sendfile;

pub(crate) use stream::StreamTransport;

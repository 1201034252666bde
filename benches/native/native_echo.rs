//! A TCP echo server on mioloop's engine with a Rust protocol: the ceiling that
//! shows what the Python layer costs. Its connections run on the same connection
//! core as the Python transports (`mioloop::connection`: the read loop, the write
//! queue, the water marks, close), so the row measures the code they run, minus
//! Python. Same behaviour as `benches/servers/`' `asyncio.Protocol` server: each
//! read is written back at once; past the high water mark, reading pauses until
//! the queue drains.
//!
//! ```text
//! native-echo PORT      # prints "ready" once listening
//! ```

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};

use mioloop::connection::{Kind, NativeConnection, Protocol, Transport};
use mioloop::{IoEvents, NativeLoop};

/// Echoes what it reads.
struct Echo;

impl Protocol for Echo {
    fn data_received(&self, transport: &Transport<'_, Self>, data: &[u8]) {
        if transport.write(data).is_err() {
            transport.abort();
        }
    }

    fn pause_writing(&self, transport: &Transport<'_, Self>) {
        transport.pause_reading();
    }

    fn resume_writing(&self, transport: &Transport<'_, Self>) {
        transport.resume_reading();
    }
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(25000);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let mut ev = NativeLoop::new()?;
    let lfd = listener.as_raw_fd();
    ev.add_handler(lfd, IoEvents::READ, move |ev, _, _| {
        while let Ok((stream, _)) = listener.accept() {
            if stream
                .set_nonblocking(true)
                .and_then(|()| stream.set_nodelay(true))
                .is_err()
            {
                continue;
            }
            // The loop keeps the connection until it is lost.
            let _ = NativeConnection::open(ev, OwnedFd::from(stream), Kind::Stream, Echo);
        }
    })
    .map_err(|e| io::Error::other(e.to_string()))?;
    println!("ready");
    ev.run()
}

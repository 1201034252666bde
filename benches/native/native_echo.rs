//! A TCP echo server on mioloop's engine driven by Rust closures: the ceiling that
//! shows what the Python layer costs. Same behaviour as the Python servers in
//! `benches/servers/`: echo each read back at once.
//!
//! ```text
//! native-echo PORT      # prints "ready" once listening
//! ```

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use mioloop::{IoEvents, NativeLoop};

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn on_conn(
    ev: &mut NativeLoop,
    fd: RawFd,
    events: IoEvents,
    conn: &RefCell<Conn>,
    buf: &RefCell<Vec<u8>>,
) {
    let mut c = conn.borrow_mut();
    let mut closed = false;
    if events.contains(IoEvents::READ) && c.pending.is_empty() {
        let mut buf = buf.borrow_mut();
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    let data = &buf[..n];
                    match c.stream.write(data) {
                        Ok(w) if w == n => {}
                        Ok(w) => c.pending.extend_from_slice(&data[w..]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            c.pending.extend_from_slice(data)
                        }
                        Err(_) => closed = true,
                    }
                    if !c.pending.is_empty() || closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
    } else if events.contains(IoEvents::WRITE) || !c.pending.is_empty() {
        let pending = std::mem::take(&mut c.pending);
        match c.stream.write(&pending) {
            Ok(w) => c.pending.extend_from_slice(&pending[w..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.pending = pending,
            Err(_) => closed = true,
        }
    }
    if closed || events.contains(IoEvents::ERROR) {
        drop(c);
        ev.remove_handler(fd);
        return;
    }
    // Wait for the socket to drain before reading more, as the Python servers do.
    let want = if c.pending.is_empty() {
        IoEvents::READ
    } else {
        IoEvents::WRITE
    };
    let _ = ev.update_handler(fd, want);
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(25000);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let mut ev = NativeLoop::new()?;
    let buf = Rc::new(RefCell::new(vec![0u8; 256 * 1024]));
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
            let fd = stream.as_raw_fd();
            let conn = RefCell::new(Conn {
                stream,
                pending: Vec::new(),
            });
            let buf = buf.clone();
            let _ = ev.add_handler(fd, IoEvents::READ, move |ev, fd, events| {
                on_conn(ev, fd, events, &conn, &buf)
            });
        }
    })
    .map_err(|e| io::Error::other(e.to_string()))?;
    println!("ready");
    ev.run()
}

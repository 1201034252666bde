//! The connection core (`mioloop::connection`) on real socket pairs and pipes,
//! driven by the pure-Rust `NativeLoop`: the lifecycle every transport runs.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use mioloop::connection::{Kind, NativeConnection, Protocol, Refused, Transport};
use mioloop::NativeLoop;

/// What a protocol heard, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Made,
    Data(usize),
    Eof,
    Pause,
    Resume,
    Lost(Option<io::ErrorKind>),
}

/// Records what it hears; keeps the connection open at EOF if told to, echoes if
/// told to.
#[derive(Default)]
struct Recorder {
    heard: Rc<RefCell<Vec<Heard>>>,
    bytes: Rc<RefCell<Vec<u8>>>,
    keep_open_at_eof: bool,
    echo: bool,
}

impl Protocol for Recorder {
    fn connection_made(&self, _: &Transport<'_, Self>) {
        self.heard.borrow_mut().push(Heard::Made);
    }
    fn data_received(&self, t: &Transport<'_, Self>, data: &[u8]) {
        self.heard.borrow_mut().push(Heard::Data(data.len()));
        self.bytes.borrow_mut().extend_from_slice(data);
        if self.echo {
            t.write(data).unwrap();
        }
    }
    fn eof_received(&self, _: &Transport<'_, Self>) -> bool {
        self.heard.borrow_mut().push(Heard::Eof);
        self.keep_open_at_eof
    }
    fn pause_writing(&self, _: &Transport<'_, Self>) {
        self.heard.borrow_mut().push(Heard::Pause);
    }
    fn resume_writing(&self, _: &Transport<'_, Self>) {
        self.heard.borrow_mut().push(Heard::Resume);
    }
    fn connection_lost(&self, err: Option<io::Error>) {
        self.heard
            .borrow_mut()
            .push(Heard::Lost(err.map(|e| e.kind())));
    }
}

impl Recorder {
    fn count(&self, what: &Heard) -> usize {
        self.heard.borrow().iter().filter(|h| *h == what).count()
    }
    fn lost(&self) -> Vec<Heard> {
        let heard = self.heard.borrow();
        heard
            .iter()
            .filter(|h| matches!(h, Heard::Lost(_)))
            .cloned()
            .collect()
    }
}

/// A connection on one end of a socket pair; the other end, blocking, for the
/// test.
fn connected(ev: &mut NativeLoop, protocol: Recorder) -> (NativeConnection<Recorder>, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let conn = NativeConnection::open(ev, OwnedFd::from(ours), Kind::Stream, protocol).unwrap();
    (conn, peer)
}

/// Runs iterations until `done`, or fails after 10 s.
#[track_caller]
fn run_until(ev: &mut NativeLoop, done: impl Fn() -> bool) {
    let stop_at = ev.time() + 10_000_000_000;
    let guard = ev.call_later(Duration::from_secs(10), |_| {});
    while !done() {
        assert!(ev.time() < stop_at, "condition not reached in 10 s");
        ev.run_once().unwrap();
    }
    ev.cancel(guard);
}

/// A few more iterations, for anything that should not happen to show.
fn settle(ev: &mut NativeLoop) {
    for _ in 0..5 {
        ev.call_soon(|_| {});
        ev.run_once().unwrap();
    }
}

/// Reads everything until EOF on another thread.
fn drain(mut peer: UnixStream) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).unwrap();
        all
    })
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn bytes_reach_the_protocol_in_order_after_connection_made() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, mut peer) = connected(&mut ev, Recorder::default());
    let sent = pattern(1 << 20);
    let writer = {
        let sent = sent.clone();
        thread::spawn(move || peer.write_all(&sent).map(|()| peer))
    };
    run_until(&mut ev, || {
        conn.protocol().bytes.borrow().len() == sent.len()
    });
    assert_eq!(*conn.protocol().bytes.borrow(), sent);
    assert_eq!(conn.protocol().heard.borrow()[0], Heard::Made);
    drop(writer.join().unwrap());
}

#[test]
fn close_sends_what_is_queued_then_reports_lost_once() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    let data = pattern(4 << 20);
    {
        let t = conn.transport(&mut ev);
        assert!(t.write(&data).unwrap());
        assert!(
            t.write_buffer_size() > 0,
            "a socket pair takes less than 4 MiB at once"
        );
        t.close();
        t.close();
        assert!(t.is_closing());
    }
    let reader = drain(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert_eq!(reader.join().unwrap(), data, "every byte, then EOF");
    settle(&mut ev);
    assert_eq!(conn.protocol().lost(), [Heard::Lost(None)]);
}

#[test]
fn abort_drops_the_queue_and_reports_lost_on_the_next_iteration() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    let data = pattern(4 << 20);
    {
        let t = conn.transport(&mut ev);
        t.write(&data).unwrap();
        t.abort();
    }
    assert!(conn.protocol().lost().is_empty(), "not within abort()");
    assert_eq!(conn.queued(), 0);
    let reader = drain(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert!(reader.join().unwrap().len() < data.len());
    // Writes after the loss are dropped, not queued.
    assert!(!conn.transport(&mut ev).write(b"late").unwrap());
    settle(&mut ev);
    assert_eq!(conn.protocol().lost(), [Heard::Lost(None)]);
}

#[test]
fn the_protocol_pauses_past_the_high_mark_and_resumes_at_the_low_one() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, mut peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    {
        let t = conn.transport(&mut ev);
        t.set_write_buffer_limits(Some(64 * 1024), Some(1024))
            .unwrap();
        for _ in 0..64 {
            t.write(&pattern(64 * 1024)).unwrap();
        }
    }
    assert_eq!(conn.protocol().count(&Heard::Pause), 1, "told once");
    assert_eq!(conn.protocol().count(&Heard::Resume), 0);
    let total = 64 * 64 * 1024;
    let reader = thread::spawn(move || {
        let mut got = vec![0; total];
        peer.read_exact(&mut got).map(|()| peer)
    });
    run_until(&mut ev, || conn.protocol().count(&Heard::Resume) == 1);
    assert_eq!(conn.queued(), 0);
    drop(reader.join().unwrap());
    assert_eq!(conn.protocol().count(&Heard::Pause), 1);
}

#[test]
fn a_peer_eof_closes_unless_the_protocol_keeps_it_open() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, peer) = connected(&mut ev, Recorder::default());
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert_eq!(conn.protocol().count(&Heard::Eof), 1);
    assert_eq!(conn.protocol().lost(), [Heard::Lost(None)]);
}

#[test]
fn a_protocol_that_keeps_the_connection_open_at_eof_can_still_write() {
    let mut ev = NativeLoop::new().unwrap();
    let protocol = Recorder {
        keep_open_at_eof: true,
        ..Recorder::default()
    };
    let (conn, mut peer) = connected(&mut ev, protocol);
    peer.write_all(b"question").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    run_until(&mut ev, || conn.protocol().count(&Heard::Eof) == 1);
    settle(&mut ev);
    assert!(conn.protocol().lost().is_empty(), "half-closed, not closed");
    {
        let t = conn.transport(&mut ev);
        assert!(!t.is_closing());
        t.write(b"answer").unwrap();
        t.close();
    }
    let reader = drain(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert_eq!(reader.join().unwrap(), b"answer");
    assert_eq!(*conn.protocol().bytes.borrow(), b"question");
}

#[test]
fn write_eof_sends_the_queue_then_eof_and_refuses_later_writes() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    let data = pattern(2 << 20);
    {
        let t = conn.transport(&mut ev);
        t.write(&data).unwrap();
        t.write_eof().unwrap();
        t.write_eof().unwrap();
        assert_eq!(t.write(b"more"), Err(Refused::AfterEof));
    }
    let reader = drain(peer.try_clone().unwrap());
    run_until(&mut ev, || conn.queued() == 0);
    assert_eq!(reader.join().unwrap(), data, "every byte, then EOF");
    settle(&mut ev);
    assert!(
        conn.protocol().lost().is_empty(),
        "half-closed: it still reads"
    );
    drop(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
}

#[test]
fn a_peer_reset_mid_write_ends_the_connection_with_its_error() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    conn.transport(&mut ev).write(&pattern(4 << 20)).unwrap();
    drop(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    settle(&mut ev);
    let lost = conn.protocol().lost();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        matches!(
            lost[0],
            Heard::Lost(Some(
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ))
        ),
        "{lost:?}"
    );
}

#[test]
fn paused_reading_delivers_nothing_until_resumed() {
    let mut ev = NativeLoop::new().unwrap();
    let (conn, mut peer) = connected(&mut ev, Recorder::default());
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    conn.transport(&mut ev).pause_reading();
    peer.write_all(b"held").unwrap();
    settle(&mut ev);
    assert!(conn.protocol().bytes.borrow().is_empty());
    conn.transport(&mut ev).resume_reading();
    run_until(&mut ev, || conn.protocol().bytes.borrow().len() == 4);
}

#[test]
fn an_echo_returns_every_byte() {
    let mut ev = NativeLoop::new().unwrap();
    let protocol = Recorder {
        echo: true,
        ..Recorder::default()
    };
    let (conn, peer) = connected(&mut ev, protocol);
    let data = pattern(3 << 20);
    let mut writer = peer.try_clone().unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let reader = drain(peer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), data);
}

#[test]
fn a_read_pipe_closes_at_eof_even_if_the_protocol_would_keep_it_open() {
    let mut ev = NativeLoop::new().unwrap();
    let (read_end, write_end) = pipe();
    let protocol = Recorder {
        keep_open_at_eof: true,
        ..Recorder::default()
    };
    let conn = NativeConnection::open(&mut ev, read_end, Kind::ReadPipe, protocol).unwrap();
    let mut writer = std::fs::File::from(write_end);
    writer.write_all(b"last words").unwrap();
    drop(writer);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert_eq!(*conn.protocol().bytes.borrow(), b"last words");
    assert_eq!(conn.protocol().count(&Heard::Eof), 1);
    assert_eq!(
        conn.transport(&mut ev).write(b"x"),
        Err(Refused::ReadPipe),
        "a read pipe only reads"
    );
}

#[test]
fn a_write_pipe_whose_reader_leaves_with_data_queued_reports_a_broken_pipe() {
    let mut ev = NativeLoop::new().unwrap();
    let (read_end, write_end) = pipe();
    set_nonblocking(&write_end);
    let kind = Kind::WritePipe { watch_close: true };
    let conn = NativeConnection::open(&mut ev, write_end, kind, Recorder::default()).unwrap();
    run_until(&mut ev, || conn.protocol().count(&Heard::Made) == 1);
    conn.transport(&mut ev).write(&pattern(1 << 20)).unwrap();
    drop(read_end);
    run_until(&mut ev, || !conn.protocol().lost().is_empty());
    assert_eq!(
        conn.protocol().lost(),
        [Heard::Lost(Some(io::ErrorKind::BrokenPipe))]
    );
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just opened and are owned by nothing else.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    set_nonblocking(&r);
    (r, w)
}

fn set_nonblocking(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0);
    }
}

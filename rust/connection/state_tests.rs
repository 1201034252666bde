//! Unit tests of the connection's state machine (a child module: they see its
//! private state).
use super::*;
use crate::WriteQueue;

fn started(kind: Kind) -> Connection<WriteQueue> {
    let mut c = Connection::new(kind);
    c.start();
    c
}

#[test]
fn nothing_is_read_before_connection_made_ran() {
    let mut c = Connection::<WriteQueue>::new(Kind::Stream);
    assert_eq!(c.wanted(), IoEvents::NONE);
    assert!(!c.reads());
    c.start();
    assert_eq!(c.wanted(), IoEvents::READ);
    assert_eq!(c.interest_change(), Some(IoEvents::READ));
    c.set_interest(IoEvents::READ);
    assert_eq!(c.interest_change(), None, "in line: nothing to change");
}

#[test]
fn queued_bytes_make_it_wait_for_writability_until_closed() {
    let mut c = started(Kind::Stream);
    c.outbox.push(b"abc");
    assert_eq!(c.wanted(), IoEvents::READ | IoEvents::WRITE);
    assert_eq!(c.close(), Closing::Flushing);
    assert_eq!(c.wanted(), IoEvents::WRITE, "closing: reads no more");
    assert_eq!(c.close(), Closing::Already);
    assert!(!c.is_lost());
    c.outbox.clear();
    assert_eq!(c.drained(), Drained::Lost);
    assert!(c.is_lost());
    assert_eq!(c.wanted(), IoEvents::NONE);
}

#[test]
fn close_with_nothing_queued_is_lost_at_once() {
    let mut c = started(Kind::Datagram);
    assert_eq!(c.close(), Closing::LostNow);
    assert!(c.is_lost() && c.is_closing());
    assert!(c.force_close().is_none(), "lost once");
}

#[test]
fn force_close_hands_back_the_queue_once() {
    let mut c = started(Kind::Stream);
    c.outbox.push(&[0; 100]);
    let dropped = c.force_close().unwrap();
    assert_eq!(dropped.len(), 100);
    assert!(c.outbox.is_empty());
    assert!(c.force_close().is_none());
}

#[test]
fn writes_after_the_loss_are_dropped_and_warn_past_a_few() {
    let mut c = started(Kind::Stream);
    assert_eq!(c.gate(0, false), Gate::Nothing);
    assert_eq!(c.gate(0, true), Gate::Open, "an empty datagram is one");
    c.force_close();
    let warned: Vec<bool> = (0..6)
        .map(|_| match c.gate(1, false) {
            Gate::Dropped { warn } => warn,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(warned, [false, false, false, false, true, true]);
}

#[test]
fn write_eof_waits_for_the_queue_and_refuses_what_cannot_be() {
    let mut c = started(Kind::Stream);
    c.outbox.push(b"x");
    assert_eq!(c.write_eof(), Ok(Eof::AfterFlush));
    assert_eq!(c.write_eof(), Ok(Eof::Nothing));
    assert_eq!(c.check_writable(), Err(Refused::AfterEof));
    c.outbox.clear();
    assert_eq!(c.drained(), Drained::ShutdownWrite);
    let mut pipe = started(Kind::WritePipe { watch_close: false });
    assert_eq!(pipe.write_eof(), Ok(Eof::Close), "a pipe has no half-close");
    let mut read = started(Kind::ReadPipe);
    assert_eq!(read.write_eof(), Err(Refused::ReadPipe));
    assert_eq!(read.check_writable(), Err(Refused::ReadPipe));
    let mut sending = started(Kind::Stream);
    assert!(sending.set_sendfile(true));
    assert_eq!(sending.check_writable(), Err(Refused::Sendfile));
    assert_eq!(sending.write_eof(), Err(Refused::Sendfile));
}

#[test]
fn eof_keeps_a_stream_open_only_if_asked_and_a_read_pipe_never() {
    let mut c = started(Kind::Stream);
    assert!(c.eof_received(true));
    assert!(!c.reads(), "half-closed: no more reads");
    assert!(!started(Kind::Stream).eof_received(false));
    assert!(!started(Kind::ReadPipe).eof_received(true));
}

#[test]
fn paused_reading_stops_reads_and_closing_freezes_it() {
    let mut c = started(Kind::Stream);
    assert!(c.set_reading_paused(true));
    assert!(!c.set_reading_paused(true), "no change");
    assert!(!c.is_reading());
    assert_eq!(c.wanted(), IoEvents::NONE);
    assert!(c.set_reading_paused(false));
    c.close();
    assert!(!c.set_reading_paused(true));
    assert!(!c.is_reading());
}

#[test]
fn a_write_pipe_watches_for_its_reader_leaving_only_if_told() {
    assert_eq!(
        started(Kind::WritePipe { watch_close: true }).wanted(),
        IoEvents::READ
    );
    assert_eq!(
        started(Kind::WritePipe { watch_close: false }).wanted(),
        IoEvents::NONE
    );
    assert!(!started(Kind::WritePipe { watch_close: true }).reads());
}

#[test]
fn a_sendfile_waits_for_writability_until_the_connection_is_lost() {
    let mut c = started(Kind::Stream);
    assert!(c.await_writable());
    assert!(c.wanted().contains(IoEvents::WRITE));
    assert!(c.take_awaiting_writable());
    assert!(!c.take_awaiting_writable());
    c.force_close();
    assert!(!c.await_writable());
    assert!(
        !c.set_sendfile(true),
        "a closing connection takes no sendfile"
    );
}

#[test]
fn an_unregistered_fd_asks_for_no_interest_change() {
    let mut c = started(Kind::Stream);
    assert!(c.unregister());
    assert!(!c.unregister());
    assert_eq!(c.interest_change(), None);
}

//! Replays the connection core's fuzz corpus (`tests/fuzz/connection_corpus/`)
//! through its harness, so what the fuzzer once found keeps being checked by
//! `cargo test`; and pins, on the harness's in-memory host, what a fuzzer would
//! take long to reach. Grow the corpus with
//! `cargo +nightly fuzz run connection_ops ../tests/fuzz/connection_corpus` (see
//! fuzz/README).

#[path = "fuzz/connection_ops.rs"]
mod connection_ops;
#[path = "fuzz/replay.rs"]
mod replay;

use std::io;

use connection_ops::Fake;
use mioloop::connection::{driver, Kind};
use mioloop::IoEvents;

#[test]
fn every_corpus_input_keeps_the_connections_rules() {
    replay::replay("connection_corpus", connection_ops::run, "breaks a rule");
}

#[test]
fn a_shutdown_that_fails_after_write_eof_goes_back_to_the_host() {
    let h = Fake::new(Kind::Stream);
    driver::start(&h).unwrap();
    h.write(&[1; 100]).unwrap(); // the fd takes nothing yet: all queued
    driver::write_eof(&h).unwrap().unwrap();
    h.fail_shutdown.set(true);
    crate::connection_ops::give_room(&h, 1000);
    let err = h.ready(IoEvents::WRITE).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    assert_eq!(h.delivered.borrow().len(), 100, "the queue went first");
    assert!(h.lost.borrow().is_empty(), "the host decides what follows");
}

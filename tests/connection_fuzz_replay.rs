//! Replays the connection core's fuzz corpus (`tests/fuzz/connection_corpus/`)
//! through its harness, so what the fuzzer once found keeps being checked by
//! `cargo test`; and pins, on the harness's in-memory host, what a fuzzer would
//! take long to reach. Grow the corpus with
//! `cargo +nightly fuzz run connection_ops ../tests/fuzz/connection_corpus` (see
//! fuzz/README).

#[path = "fuzz/connection_ops.rs"]
mod connection_ops;

use std::io;

use connection_ops::Fake;
use mioloop::connection::{driver, Kind};
use mioloop::IoEvents;

#[test]
fn every_corpus_input_keeps_the_connections_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/connection_corpus");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the corpus has {} inputs", inputs.len());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| connection_ops::run(&data));
        assert!(outcome.is_ok(), "{} breaks a rule", path.display());
    }
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

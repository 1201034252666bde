//! Sequences of what a connection lives through (its methods, its peer, readiness)
//! on the connection core, each step checked against the rules that must hold (the
//! harness is shared with the corpus replay in `cargo test`).
#![no_main]

#[path = "../../tests/fuzz/connection_ops.rs"]
mod connection_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| connection_ops::run(data));

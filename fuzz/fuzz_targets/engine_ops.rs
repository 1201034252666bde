//! Operation sequences on the engine's timer heap and fd table, checked against a
//! model (the harness is shared with the corpus replay in `cargo test`).
#![no_main]

#[path = "../../tests/fuzz/engine_ops.rs"]
mod engine_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine_ops::run(data));

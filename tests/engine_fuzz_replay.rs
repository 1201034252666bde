//! Replays the fuzz corpus (`tests/fuzz/corpus/`) through the engine's fuzz harness,
//! so what the fuzzer once found keeps being checked by `cargo test`. Grow the corpus
//! with `cargo +nightly fuzz run engine_ops tests/fuzz/corpus` (see fuzz/README).

#[path = "fuzz/engine_ops.rs"]
mod engine_ops;
#[path = "fuzz/replay.rs"]
mod replay;

#[test]
fn every_corpus_input_matches_the_model() {
    replay::replay("corpus", engine_ops::run, "differs from the model");
}

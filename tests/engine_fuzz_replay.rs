//! Replays the fuzz corpus (`tests/fuzz/corpus/`) through the engine's fuzz harness,
//! so what the fuzzer once found keeps being checked by `cargo test`. Grow the corpus
//! with `cargo +nightly fuzz run engine_ops tests/fuzz/corpus` (see fuzz/README).

#[path = "fuzz/engine_ops.rs"]
mod engine_ops;

#[test]
fn every_corpus_input_matches_the_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the corpus has {} inputs", inputs.len());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| engine_ops::run(&data));
        assert!(outcome.is_ok(), "{} differs from the model", path.display());
    }
}

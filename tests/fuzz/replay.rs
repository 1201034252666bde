//! Replays a fuzz corpus through its harness, for the corpus tests of `cargo
//! test` (`tests/*_fuzz_replay.rs`).

/// Runs every input of `tests/fuzz/<corpus>/` through `run`, which panics when
/// the input breaks a rule; fails naming the first that does (`what`: how the
/// failure reads), or if the corpus has fewer than ten inputs.
pub fn replay(corpus: &str, run: fn(&[u8]), what: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(corpus);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the corpus has {} inputs", inputs.len());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} {what}", path.display());
    }
}

//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the
//! fuzz target bodies in `plugin_proto::fuzzing`, `plugin_server::fuzzing`
//! and `plugin_registry::fuzzing`, on stable and without libFuzzer, so every seed
//! and every crash ever found stays a regression test.

use std::collections::BTreeSet;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// A target: its name and body.
type Target = (&'static str, fn(&[u8]));

/// Every target of every crate, with the crate whose `fuzzing` module holds it.
fn targets() -> impl Iterator<Item = (&'static str, &'static Target)> {
    let proto = plugin_proto::fuzzing::TARGETS
        .iter()
        .map(|t| ("plugin_proto", t));
    let server = plugin_server::fuzzing::TARGETS
        .iter()
        .map(|t| ("plugin_server", t));
    let registry = plugin_registry::fuzzing::TARGETS
        .iter()
        .map(|t| ("plugin_registry", t));
    proto.chain(server).chain(registry)
}

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// The files of one target's corpus, sorted so failures are reproducible.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_non_empty_corpus() {
    for (_, (name, _)) in targets() {
        assert!(
            !corpus_files(name).is_empty(),
            "fuzz/corpus/{name}/ is missing or empty: add seeds for the target"
        );
    }
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    let targets: BTreeSet<&str> = targets().map(|(_, (n, _))| *n).collect();
    let root = corpus_root();
    for entry in fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let path = entry.expect("corpus entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            path.is_dir() && targets.contains(name.as_str()),
            "fuzz/corpus/{name} is not the corpus of a target in the TARGETS of \
             plugin_proto::fuzzing, plugin_server::fuzzing or plugin_registry::fuzzing \
             (it would never be replayed)"
        );
    }
}

#[test]
fn every_fuzz_target_has_a_libfuzzer_entry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for (krate, (name, _)) in targets() {
        let file = dir.join(format!("{name}.rs"));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("{krate}::fuzzing::{name}(")),
            "{} does not call {krate}::fuzzing::{name}",
            file.display()
        );
    }
}

#[test]
fn corpus_replays_without_panics() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (_, (name, target)) in targets() {
        for file in corpus_files(name) {
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            // Each panic is reported (with its message on stderr) and the
            // replay goes on, so one run lists every failing file.
            if panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} corpus files panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

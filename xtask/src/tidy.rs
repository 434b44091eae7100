//! `cargo xtask tidy`: project rules that neither rustc nor clippy checks.
//!
//! - banned crates (`rustls-pemfile`, `backoff`, `hyperlocal`) appear
//!   nowhere in the dependency graph;
//! - `plugin-proto` stays sans-IO: no tokio, hyper, rustls or mio among its
//!   normal dependencies;
//! - no `dbg!` in crates/, tests/ or xtask/;
//! - every crate root (`lib.rs`, `main.rs`) has `//!` docs;
//! - every item 1–38 of the behaviour spec's §11 checklist is cited by a
//!   test (`checklist 12`, `checklist 15, 16`, `checklist 17–20`) or listed
//!   in `docs/divergences.md`.
//!
//! Every check runs and reports; the task fails if any failed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{Result, cmd, root};

/// Crates that must not be in the dependency graph, and why.
const BANNED: &[(&str, &str)] = &[
    (
        "rustls-pemfile",
        "unmaintained; use rustls-pki-types' PEM parsing",
    ),
    (
        "backoff",
        "unmaintained; the retry schedule is plugin_proto::retry",
    ),
    (
        "hyperlocal",
        "plugin-client has its own unix socket connector",
    ),
];

/// Crates that would make plugin-proto do IO or need a runtime.
const NOT_IN_PROTO: &[&str] = &["tokio", "hyper", "rustls", "mio"];

/// The number of items in the behaviour spec's §11 checklist.
const CHECKLIST_ITEMS: u32 = 38;

pub(crate) fn run() -> Result {
    let root = root();
    type Check = fn(&Path) -> Result;
    let checks: [(&str, Check); 5] = [
        ("banned crates", banned_crates),
        ("plugin-proto is sans-IO", proto_dependencies),
        ("no dbg!", no_dbg),
        ("crate docs", crate_docs),
        ("checklist citations", checklist),
    ];
    let mut failed = Vec::new();
    for (name, check) in checks {
        match check(&root) {
            Ok(()) => eprintln!("tidy: {name}: ok"),
            Err(e) => {
                eprintln!("tidy: {name}: FAILED\n{e}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("tidy checks failed: {}", failed.join(", ")))
    }
}

fn banned_crates(_root: &Path) -> Result {
    let mut found = Vec::new();
    for (name, why) in BANNED {
        let out = cmd::output(cmd::cargo(
            &["tree", "--workspace", "--locked", "-i", name],
            &[],
        ))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() && !out.stdout.is_empty() {
            found.push(format!(
                "  {name} ({why}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        } else if !out.status.success() && !stderr.contains("did not match any packages") {
            return Err(format!("cargo tree -i {name} failed:\n{stderr}"));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(found.join("\n"))
    }
}

fn proto_dependencies(_root: &Path) -> Result {
    let out = cmd::output(cmd::cargo(
        &[
            "tree",
            "-p",
            "plugin-proto",
            "-e",
            "normal",
            "--locked",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ],
        &[],
    ))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree -p plugin-proto failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let bad = forbidden_packages(&tree, NOT_IN_PROTO);
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "  plugin-proto depends on {} (it must do no IO)",
            bad.join(", ")
        ))
    }
}

/// The forbidden package names among `cargo tree --prefix none --format {p}`
/// lines (`name vX.Y.Z (…)`), matched exactly: `hyper-util` is not `hyper`.
pub(crate) fn forbidden_packages(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let found: BTreeSet<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| forbidden.contains(name))
        .map(str::to_owned)
        .collect();
    found.into_iter().collect()
}

/// `.rs` files under `dirs` (relative to `root`), skipping build output.
fn rust_files(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut out);
    }
    out.sort();
    out
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn no_dbg(root: &Path) -> Result {
    // Spelled in two parts so this file does not match itself.
    let needle = concat!("dbg", "!(");
    let mut hits = Vec::new();
    for file in rust_files(root, &["crates", "tests", "xtask"]) {
        for (n, line) in read(&file)?.lines().enumerate() {
            if line.contains(needle) {
                hits.push(format!(
                    "  {}:{}: {}",
                    relative(root, &file),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    if hits.is_empty() {
        Ok(())
    } else {
        Err(hits.join("\n"))
    }
}

/// Whether a crate root starts with inner docs (`//!`), allowing blank lines
/// and comments before them.
pub(crate) fn has_crate_docs(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && (!l.starts_with("//") || l.starts_with("//!")))
        .is_some_and(|l| l.starts_with("//!"))
}

fn crate_docs(root: &Path) -> Result {
    let mut missing = Vec::new();
    for file in rust_files(root, &["crates", "tests", "xtask", "fuzz"]) {
        let is_root = file
            .file_name()
            .is_some_and(|n| n == "lib.rs" || n == "main.rs")
            || file
                .parent()
                .is_some_and(|p| p.ends_with("fuzz/fuzz_targets"));
        if is_root && !has_crate_docs(&read(&file)?) {
            missing.push(format!("  {}: no //! docs", relative(root, &file)));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("\n"))
    }
}

/// The checklist items cited in `text`: `checklist N`, with lists and
/// ranges after it (`checklist 15, 16`, `checklist 17-20`, `checklist 17–20`,
/// `checklist 5 and 7`), case-insensitive. Numbers outside 1–38 are ignored.
pub(crate) fn checklist_citations(text: &str) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    let lower = text.to_lowercase();
    for (i, _) in lower.match_indices("checklist") {
        let mut rest = lower[i + "checklist".len()..].trim_start_matches([' ', '#', '§']);
        let mut last: Option<u32> = None;
        let mut range = false;
        loop {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            rest = &rest[digits.len()..];
            let Ok(n) = digits.parse::<u32>() else { break };
            match (range, last) {
                (true, Some(start)) if start <= n && n - start <= CHECKLIST_ITEMS => {
                    found.extend(start..=n);
                }
                _ => {
                    found.insert(n);
                }
            }
            last = Some(n);
            // What may join two numbers of one citation.
            let joined = [", ", ",", " and ", " & ", "-", "–", " - ", " – "]
                .iter()
                .find(|sep| rest.starts_with(**sep));
            match joined {
                Some(sep) => {
                    range = sep.contains(['-', '–']);
                    rest = &rest[sep.len()..];
                }
                None => break,
            }
        }
    }
    found.retain(|n| (1..=CHECKLIST_ITEMS).contains(n));
    found
}

/// Items listed in the divergence table: `checklist N` citations anywhere in
/// the file, plus table cells holding only item numbers (`| 12 |`,
/// `| 15, 16 |`).
pub(crate) fn divergence_items(text: &str) -> BTreeSet<u32> {
    let mut found = checklist_citations(text);
    for line in text.lines().filter(|l| l.trim_start().starts_with('|')) {
        for cell in line.split('|').map(str::trim) {
            let numbers: Vec<&str> = cell.split([',', ' ']).filter(|s| !s.is_empty()).collect();
            if !numbers.is_empty() && numbers.iter().all(|n| n.parse::<u32>().is_ok()) {
                found.extend(numbers.iter().filter_map(|n| n.parse::<u32>().ok()));
            }
        }
    }
    found.retain(|n| (1..=CHECKLIST_ITEMS).contains(n));
    found
}

/// The part of a source file that is test code: all of it under `tests/`
/// or a crate's `tests/`, otherwise what follows the first `#[cfg(test)]`
/// (the tests module sits at the end of each file by convention).
fn test_code<'a>(root: &Path, file: &Path, text: &'a str) -> &'a str {
    let rel = relative(root, file);
    if rel.starts_with("tests/") || rel.contains("/tests/") {
        return text;
    }
    text.find("#[cfg(test)]").map_or("", |i| &text[i..])
}

fn checklist(root: &Path) -> Result {
    let mut cited = BTreeSet::new();
    for file in rust_files(root, &["crates", "tests"]) {
        let text = read(&file)?;
        cited.extend(checklist_citations(test_code(root, &file, &text)));
    }
    let divergences = root.join("docs/divergences.md");
    if divergences.exists() {
        cited.extend(divergence_items(&read(&divergences)?));
    } else {
        eprintln!("tidy: docs/divergences.md does not exist yet: counting tests only");
    }
    let uncited: Vec<String> = (1..=CHECKLIST_ITEMS)
        .filter(|n| !cited.contains(n))
        .map(|n| n.to_string())
        .collect();
    if uncited.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "  checklist items cited by no test and not in docs/divergences.md: {}\n  \
             (cite them in a test as `// checklist N`)",
            uncited.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[u32]) -> BTreeSet<u32> {
        items.iter().copied().collect()
    }

    #[test]
    fn checklist_citations_read_lists_and_ranges() {
        assert_eq!(checklist_citations("// checklist 12"), set(&[12]));
        assert_eq!(
            checklist_citations("// checklist 15, 16, 17"),
            set(&[15, 16, 17])
        );
        assert_eq!(
            checklist_citations("(checklist 17–20)"),
            set(&[17, 18, 19, 20])
        );
        assert_eq!(
            checklist_citations("checklist 5-7 and 9"),
            set(&[5, 6, 7, 9])
        );
        assert_eq!(
            checklist_citations("// Checklist 19 (divergence: Docker dials \"var\")"),
            set(&[19])
        );
        assert_eq!(
            checklist_citations("checklist 18: path ignored; checklist #3"),
            set(&[3, 18])
        );
        assert_eq!(checklist_citations("checklist 39, 0, 12"), set(&[12]));
        assert_eq!(checklist_citations("the checklist. 12 items"), set(&[]));
        assert_eq!(checklist_citations("checklist 1,2,3"), set(&[1, 2, 3]));
    }

    #[test]
    fn divergence_table_cells_count() {
        let md = "| # | Docker | here |\n|---|---|---|\n| 12 | accepts | rejects |\n| 15, 16 | a | b |\n\
                  | version 2 | x | y |\nSee checklist 19.";
        assert_eq!(divergence_items(md), set(&[12, 15, 16, 19]));
    }

    #[test]
    fn crate_docs_must_come_first() {
        assert!(has_crate_docs("//! Docs.\nfn main() {}"));
        assert!(has_crate_docs("// SPDX\n\n//! Docs.\n"));
        assert!(!has_crate_docs("fn main() {}\n//! late"));
        assert!(!has_crate_docs("/// item docs\nfn main() {}"));
        assert!(!has_crate_docs(""));
    }

    #[test]
    fn forbidden_packages_match_exact_names() {
        let tree = "plugin-proto v0.1.0 (/w/crates/plugin-proto)\nhyper-util v0.1.21\nbytes v1.12.0\n\
                    tokio v1.54.0\ntokio v1.54.0\n";
        assert_eq!(
            forbidden_packages(tree, NOT_IN_PROTO),
            vec!["tokio".to_owned()]
        );
    }

    #[test]
    fn test_code_is_the_tests_module_or_a_test_file() {
        let root = Path::new("/w");
        let src = "// checklist 1\nfn f() {}\n#[cfg(test)]\nmod tests { // checklist 2\n}";
        assert_eq!(
            checklist_citations(test_code(root, Path::new("/w/crates/a/src/x.rs"), src)),
            set(&[2])
        );
        assert_eq!(
            checklist_citations(test_code(root, Path::new("/w/tests/it/x.rs"), src)),
            set(&[1, 2])
        );
    }
}

//! `cargo xtask tidy`: project rules that neither rustc nor clippy checks.
//!
//! - banned crates (`rustls-pemfile`, `backoff`, `hyperlocal`) appear
//!   nowhere in the dependency graph;
//! - the dependency rules ARCHITECTURE.md states ([`RULES`]), against the
//!   graph `cargo metadata` resolves for every platform, and the source
//!   rules behind them ([`SOURCE_RULES`]: `plugin-proto` reads no clock and
//!   touches no file, socket, environment, thread or process;
//!   `plugin-discovery` opens no connection; `plugin-registry` names no
//!   socket type);
//! - every crate root forbids `unsafe` code, or, in a crate that needs it,
//!   denies `clippy::undocumented_unsafe_blocks`;
//! - every publishable crate has the metadata crates.io shows and depends
//!   only on publishable crates with a version;
//! - no `dbg!` in crates/, tests/ or xtask/;
//! - every crate root (`lib.rs`, `main.rs`) has `//!` docs;
//! - `docs/checklist.md` numbers every item 1–38 of the conformance
//!   checklist (`N. ` at a line start), and every item is cited by a test
//!   (`checklist 12`, `checklist 15, 16`, `checklist 17–20`) or listed in
//!   `docs/divergences.md`.
//!
//! Every check runs and reports; the task fails if any failed. The same
//! checks run as a test of this crate, so `cargo test` enforces them too.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::{PUBLISH_FIELDS, Package, Workspace};
use crate::{Result, root};

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

/// The crates through which a process reaches plugins over HTTP and TLS
/// (body helpers such as `http-body-util` are not among them: the
/// registry's optional tower layer reads an engine's own request bodies).
const HTTP_TLS: &[&str] = &[
    "hyper",
    "hyper-util",
    "rustls",
    "tokio-rustls",
    "rustls-native-certs",
    "rustls-pki-types",
];

/// The engine side's crates above the protocol core.
const ENGINE_SIDE: &[&str] = &["plugin-discovery", "plugin-client", "plugin-registry"];

/// Which packages a rule is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject {
    /// One workspace member.
    Crate(&'static str),
    /// Every member under `examples/` that depends directly on `on`.
    ExamplesOn(&'static str),
}

/// A dependency rule from ARCHITECTURE.md.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub(crate) subject: Subject,
    /// Packages it must not reach through normal edges, at any depth.
    pub(crate) never_reaches: &'static [&'static str],
    /// Packages it must not depend on directly (it may reach them through
    /// another crate).
    pub(crate) never_depends_on: &'static [&'static str],
    pub(crate) why: &'static str,
}

/// The dependency rules ARCHITECTURE.md states, as checked.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        subject: Subject::Crate("plugin-proto"),
        never_reaches: &[
            "tokio",
            "hyper",
            "rustls",
            "mio",
            "plugin-discovery",
            "plugin-client",
            "plugin-registry",
            "plugin-server",
        ],
        never_depends_on: &[],
        why: "the protocol core does no IO and depends on no other crate of the workspace",
    },
    Rule {
        subject: Subject::Crate("plugin-discovery"),
        never_reaches: &[
            "tokio",
            "hyper",
            "rustls",
            "mio",
            "plugin-client",
            "plugin-registry",
            "plugin-server",
        ],
        never_depends_on: &[],
        why: "discovery reads directories with std::fs only and never connects",
    },
    Rule {
        subject: Subject::Crate("plugin-registry"),
        never_reaches: &["plugin-server"],
        never_depends_on: HTTP_TLS,
        why: "on the engine side only plugin-client speaks HTTP and TLS; the registry reaches \
              them through it",
    },
    Rule {
        subject: Subject::Crate("plugin-server"),
        never_reaches: ENGINE_SIDE,
        never_depends_on: &[],
        why: "an author's plugin does not carry the engine side",
    },
    Rule {
        subject: Subject::ExamplesOn("plugin-server"),
        never_reaches: ENGINE_SIDE,
        never_depends_on: &[],
        why: "example plugins are built on the plugin-server kit alone",
    },
    Rule {
        subject: Subject::ExamplesOn("plugin-registry"),
        never_reaches: &[],
        never_depends_on: &["plugin-discovery", "plugin-client"],
        why: "example engines use the plugin-registry facade, which re-exports the crates below it",
    },
];

/// A source rule: none of `needles` in the non-test code of a crate.
pub(crate) struct SourceRule {
    pub(crate) dir: &'static str,
    pub(crate) needles: &'static [&'static str],
    pub(crate) why: &'static str,
}

/// The rules ARCHITECTURE.md states about what code may do, where a
/// dependency rule cannot say it.
pub(crate) const SOURCE_RULES: &[SourceRule] = &[
    SourceRule {
        dir: "crates/plugin-proto/src",
        needles: &[
            "std::fs",
            "std::net",
            "std::env",
            "std::thread",
            "std::process",
            "Instant::now",
            "SystemTime",
        ],
        why: "plugin-proto does no IO, reads no clock and spawns nothing: time is an input",
    },
    SourceRule {
        dir: "crates/plugin-discovery/src",
        needles: &["std::net", "UnixStream", "TcpStream", "tokio"],
        why: "plugin-discovery never opens a connection",
    },
    SourceRule {
        dir: "crates/plugin-registry/src",
        needles: &["UnixStream", "TcpStream", "UdpSocket"],
        why: "on the engine side only plugin-client opens connections (a log FIFO is no connection)",
    },
];

/// The attribute a crate root needs when the crate has no `unsafe`.
const FORBID_UNSAFE: &str = "#![forbid(unsafe_code)]";
/// The attribute a crate root needs when the crate has `unsafe`.
const DOCUMENT_UNSAFE: &str = "#![deny(clippy::undocumented_unsafe_blocks)]";

/// The number of items in the conformance checklist (`docs/checklist.md`,
/// restated from the behaviour spec's §11).
const CHECKLIST_ITEMS: u32 = 38;

/// Where the repository keeps the conformance checklist.
const CHECKLIST_FILE: &str = "docs/checklist.md";

pub(crate) fn run() -> Result {
    let root = root();
    type Check = fn(&Path, &Workspace) -> Result;
    let workspace = Workspace::load()?;
    let checks: [(&str, Check); 8] = [
        ("banned crates", banned_crates),
        ("dependency rules", dependency_rules),
        ("source rules", source_rules),
        ("unsafe code", unsafe_code),
        ("publishable crates", publishable),
        ("no dbg!", no_dbg),
        ("crate docs", crate_docs),
        ("checklist", checklist),
    ];
    let mut failed = Vec::new();
    for (name, check) in checks {
        match check(&root, &workspace) {
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

fn banned_crates(_root: &Path, ws: &Workspace) -> Result {
    let names = ws.all_names();
    let found: Vec<String> = BANNED
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(name, why)| format!("  {name} is in the dependency graph ({why})"))
        .collect();
    report(found)
}

/// A check's findings, one per line: none is a pass.
fn report(findings: Vec<String>) -> Result {
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings.join("\n"))
    }
}

/// Every way the workspace breaks `rules`, one line each.
pub(crate) fn rule_violations(ws: &Workspace, rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    for rule in rules {
        let subjects: Vec<&Package> = match rule.subject {
            Subject::Crate(name) => match ws.member(name) {
                Some(p) => vec![p],
                None => {
                    out.push(format!(
                        "  {name}: no such workspace member (the rule is stale)"
                    ));
                    continue;
                }
            },
            Subject::ExamplesOn(on) => ws
                .members()
                .into_iter()
                .filter(|p| p.dir.parent().is_some_and(|d| d.ends_with("examples")))
                .filter(|p| ws.direct(p).contains(on))
                .collect(),
        };
        for package in subjects {
            let reached = ws.reached(package);
            let direct = ws.direct(package);
            for bad in rule.never_reaches.iter().filter(|n| reached.contains(*n)) {
                out.push(format!("  {} depends on {bad}: {}", package.name, rule.why));
            }
            for bad in rule.never_depends_on.iter().filter(|n| direct.contains(*n)) {
                out.push(format!(
                    "  {} depends directly on {bad}: {}",
                    package.name, rule.why
                ));
            }
        }
    }
    // Every example is a plugin or an engine, on one side only.
    for package in ws.members() {
        if package
            .dir
            .parent()
            .is_some_and(|d| d.ends_with("examples"))
        {
            let direct = ws.direct(package);
            let sides = ["plugin-server", "plugin-registry"]
                .iter()
                .filter(|s| direct.contains(*s))
                .count();
            if sides != 1 {
                out.push(format!(
                    "  {}: an example depends directly on plugin-server (a plugin) or \
                     plugin-registry (an engine), exactly one of them",
                    package.name
                ));
            }
        }
    }
    out
}

fn dependency_rules(_root: &Path, ws: &Workspace) -> Result {
    report(rule_violations(ws, RULES))
}

fn source_rules(root: &Path, _ws: &Workspace) -> Result {
    let mut hits = Vec::new();
    for rule in SOURCE_RULES {
        for file in rust_files(root, &[rule.dir]) {
            let text = read(&file)?;
            let code = non_test_code(&text);
            for (n, line) in code.lines().enumerate() {
                let code_part = line.split("//").next().unwrap_or_default();
                for needle in rule.needles.iter().filter(|n| code_part.contains(**n)) {
                    hits.push(format!(
                        "  {}:{}: `{needle}`: {}",
                        relative(root, &file),
                        n + 1,
                        rule.why
                    ));
                }
            }
        }
    }
    report(hits)
}

/// A source file without its tests module (by convention the last item,
/// after the first `#[cfg(test)]`).
fn non_test_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Whether `text` uses `unsafe` outside comments and attributes.
pub(crate) fn uses_unsafe(text: &str) -> bool {
    text.lines().any(|l| {
        let code = l.split("//").next().unwrap_or_default();
        !code.trim_start().starts_with("#")
            && (code.contains("unsafe {")
                || code.contains("unsafe fn")
                || code.contains("unsafe impl"))
    })
}

fn unsafe_code(root: &Path, ws: &Workspace) -> Result {
    let mut problems = Vec::new();
    for package in ws.members() {
        let mut uses = false;
        for file in rust_files(&package.dir, &["."]) {
            uses |= uses_unsafe(&read(&file)?);
        }
        for crate_root in &package.roots {
            let text = read(crate_root)?;
            let (forbids, documents) =
                (text.contains(FORBID_UNSAFE), text.contains(DOCUMENT_UNSAFE));
            let problem = match (forbids, documents, uses) {
                (true, false, _) | (false, true, true) => continue,
                (false, true, false) => "the crate has no `unsafe`: forbid it instead",
                _ => "needs one of the two",
            };
            problems.push(format!(
                "  {}: {FORBID_UNSAFE} or, where unsafe is needed, {DOCUMENT_UNSAFE}: {problem}",
                relative(root, crate_root)
            ));
        }
    }
    report(problems)
}

/// Every way a publishable member is not ready for crates.io.
pub(crate) fn publish_problems(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for package in ws.members().into_iter().filter(|p| p.publishable) {
        for field in PUBLISH_FIELDS {
            if package
                .fields
                .get(field)
                .is_none_or(|v| v.trim().is_empty())
            {
                out.push(format!("  {}: no `{field}`", package.name));
            }
        }
        if package.keywords.is_empty() {
            out.push(format!("  {}: no `keywords`", package.name));
        }
        if package.categories.is_empty() {
            out.push(format!("  {}: no `categories`", package.name));
        }
        // Dev-dependencies are dropped from the published manifest.
        for dep in package
            .declared
            .iter()
            .filter(|d| d.path.is_some() && d.kind.as_deref() != Some("dev"))
        {
            if dep.req == "*" {
                out.push(format!(
                    "  {}: path dependency {} has no version",
                    package.name, dep.name
                ));
            }
            if ws.member(&dep.name).is_some_and(|d| !d.publishable) {
                out.push(format!(
                    "  {}: depends on {}, which is not published",
                    package.name, dep.name
                ));
            }
        }
    }
    out
}

fn publishable(_root: &Path, ws: &Workspace) -> Result {
    report(publish_problems(ws))
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

fn no_dbg(root: &Path, _ws: &Workspace) -> Result {
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
    report(hits)
}

/// Whether a crate root starts with inner docs (`//!`), allowing blank lines
/// and comments before them.
pub(crate) fn has_crate_docs(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && (!l.starts_with("//") || l.starts_with("//!")))
        .is_some_and(|l| l.starts_with("//!"))
}

fn crate_docs(root: &Path, _ws: &Workspace) -> Result {
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
    report(missing)
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

/// The items `text` defines as numbered list entries: a line starting with
/// `N. `. Numbers outside 1–38 are ignored.
pub(crate) fn checklist_definitions(text: &str) -> BTreeSet<u32> {
    let mut found: BTreeSet<u32> = text
        .lines()
        .filter_map(|line| {
            let (number, _) = line.split_once(". ")?;
            let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| number.parse().ok()).flatten()
        })
        .collect();
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

fn checklist(root: &Path, _ws: &Workspace) -> Result {
    let mut findings = Vec::new();
    let file = root.join(CHECKLIST_FILE);
    if file.exists() {
        let undefined = items_missing_from(&checklist_definitions(&read(&file)?));
        if !undefined.is_empty() {
            findings.push(format!(
                "  checklist items {CHECKLIST_FILE} does not define (as `N. ` at a line start): \
                 {undefined}"
            ));
        }
    } else {
        findings.push(format!(
            "  {CHECKLIST_FILE} is missing: the repository must state the checklist its tests cite"
        ));
    }
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
    let uncited = items_missing_from(&cited);
    if !uncited.is_empty() {
        findings.push(format!(
            "  checklist items cited by no test and not in docs/divergences.md: {uncited}\n  \
             (cite them in a test as `// checklist N`)"
        ));
    }
    report(findings)
}

/// The checklist items not in `found`, as `3, 17`; empty when none is.
fn items_missing_from(found: &BTreeSet<u32>) -> String {
    let missing: Vec<String> = (1..=CHECKLIST_ITEMS)
        .filter(|n| !found.contains(n))
        .map(|n| n.to_string())
        .collect();
    missing.join(", ")
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
    fn checklist_items_are_numbered_list_entries_at_a_line_start() {
        let md = "# Checklist\n\n**Discovery**\n\n1. First.\n   More of it; see item 7. Or 8.\n\
                  2. Second.\n35. Listing:\n    - 3. not an item\n  4. indented\n\
                  5.no space\n6) other marker\nx9. prefixed\n39. beyond\n0. zero\n";
        assert_eq!(checklist_definitions(md), set(&[1, 2, 35]));
        let full: String = (1..=CHECKLIST_ITEMS)
            .map(|n| format!("{n}. Item.\n"))
            .collect();
        assert_eq!(
            checklist_definitions(&full),
            (1..=CHECKLIST_ITEMS).collect::<BTreeSet<u32>>()
        );
    }

    #[test]
    fn crate_docs_must_come_first() {
        assert!(has_crate_docs("//! Docs.\nfn main() {}"));
        assert!(has_crate_docs("// SPDX\n\n//! Docs.\n"));
        assert!(!has_crate_docs("fn main() {}\n//! late"));
        assert!(!has_crate_docs("/// item docs\nfn main() {}"));
        assert!(!has_crate_docs(""));
    }

    /// A workspace from `(name, dir, publishable, [(dependency, kind)])`,
    /// where kind is `""` for a normal edge, `"dev"` or `"build"`.
    type Spec<'a> = (&'a str, &'a str, bool, &'a [(&'a str, &'a str)]);

    fn graph(packages: &[Spec<'_>]) -> Workspace {
        let mut ws = Workspace::default();
        for (name, dir, publishable, deps) in packages {
            let id = format!("id:{name}");
            ws.members.push(id.clone());
            ws.packages.insert(
                id.clone(),
                Package {
                    id: id.clone(),
                    name: (*name).to_owned(),
                    dir: PathBuf::from(dir),
                    publishable: *publishable,
                    declared: deps
                        .iter()
                        .map(|(d, kind)| crate::workspace::Declared {
                            name: (*d).to_owned(),
                            kind: (!kind.is_empty()).then(|| (*kind).to_owned()),
                            path: Some(PathBuf::from(format!("/w/{d}"))),
                            req: "*".to_owned(),
                        })
                        .collect(),
                    ..Package::default()
                },
            );
            let edges = deps
                .iter()
                .map(|(d, kind)| (format!("id:{d}"), kind.is_empty()))
                .collect();
            ws.edges.insert(id, edges);
        }
        ws
    }

    #[test]
    fn dependency_rules_see_transitive_normal_edges_only() {
        let ws = graph(&[
            (
                "plugin-proto",
                "/w/crates/plugin-proto",
                true,
                &[("bytes", "")],
            ),
            ("bytes", "/r/bytes", true, &[]),
            ("tokio", "/r/tokio", true, &[]),
            ("hyper", "/r/hyper", true, &[("tokio", "")]),
            (
                "plugin-discovery",
                "/w/crates/plugin-discovery",
                true,
                &[("plugin-proto", ""), ("tokio", "dev")],
            ),
            (
                "plugin-server",
                "/w/crates/plugin-server",
                true,
                &[("plugin-proto", ""), ("hyper", "")],
            ),
            (
                "plugin-client",
                "/w/crates/plugin-client",
                true,
                &[("hyper", "")],
            ),
            (
                "plugin-registry",
                "/w/crates/plugin-registry",
                true,
                &[("plugin-client", ""), ("plugin-server", "dev")],
            ),
            (
                "memvol",
                "/w/examples/memvol",
                false,
                &[("plugin-server", "")],
            ),
        ]);
        assert_eq!(rule_violations(&ws, RULES), Vec::<String>::new());

        // A dependency two levels down counts; a dev-dependency does not.
        let mut bad = ws.clone();
        bad.edges
            .get_mut("id:bytes")
            .unwrap()
            .push(("id:hyper".into(), true));
        bad.edges
            .get_mut("id:plugin-registry")
            .unwrap()
            .push(("id:hyper".into(), true));
        bad.edges
            .get_mut("id:memvol")
            .unwrap()
            .push(("id:plugin-registry".into(), true));
        let found = rule_violations(&bad, RULES).join("\n");
        for want in [
            "plugin-proto depends on tokio",
            "plugin-proto depends on hyper",
            "plugin-discovery depends on tokio",
            "plugin-registry depends directly on hyper",
            "memvol depends on plugin-registry",
            "memvol depends on plugin-client",
            "memvol: an example depends directly on plugin-server",
        ] {
            assert!(found.contains(want), "{want:?} missing from\n{found}");
        }
        assert!(!found.contains("plugin-server depends on"), "{found}");
    }

    #[test]
    fn publishable_crates_need_metadata_and_published_path_dependencies() {
        let mut ws = graph(&[
            (
                "plugctl",
                "/w/crates/plugctl",
                true,
                &[("memvol", ""), ("tests", "dev")],
            ),
            ("memvol", "/w/examples/memvol", false, &[]),
            ("tests", "/w/tests", false, &[]),
        ]);
        let found = publish_problems(&ws).join("\n");
        for want in [
            "plugctl: no `description`",
            "plugctl: no `keywords`",
            "plugctl: path dependency memvol has no version",
            "plugctl: depends on memvol, which is not published",
        ] {
            assert!(found.contains(want), "{want:?} missing from\n{found}");
        }
        assert!(
            !found.contains("tests"),
            "dev-dependencies are not published: {found}"
        );
        let plugctl = ws.packages.get_mut("id:plugctl").unwrap();
        for field in PUBLISH_FIELDS {
            plugctl.fields.insert(field, "x".into());
        }
        plugctl.keywords = vec!["docker".into()];
        plugctl.categories = vec!["command-line-utilities".into()];
        plugctl.declared.retain(|d| d.name != "memvol");
        assert_eq!(publish_problems(&ws), Vec::<String>::new());
    }

    #[test]
    fn unsafe_is_found_in_code_not_in_comments_or_lints() {
        assert!(uses_unsafe("fn f() {\n    let x = unsafe { g() };\n}"));
        assert!(uses_unsafe("pub unsafe fn f() {}"));
        assert!(!uses_unsafe(
            "// an unsafe { block } in a comment\n#![forbid(unsafe_code)]"
        ));
        assert!(!uses_unsafe("#![deny(clippy::undocumented_unsafe_blocks)]"));
    }

    /// `cargo test` enforces every rule of `cargo xtask tidy`.
    #[test]
    fn the_workspace_keeps_every_tidy_rule() {
        if let Err(e) = run() {
            panic!("{e} (details above; run `cargo xtask tidy`)");
        }
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

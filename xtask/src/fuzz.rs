//! `cargo xtask fuzz TARGET SECONDS` and `cargo xtask fuzz-all SECONDS`:
//! libFuzzer runs through cargo-fuzz on the stable toolchain
//! (`--sanitizer none`), with debug assertions on so overflows are found.
//!
//! The committed corpus `fuzz/corpus/<target>/` is read as seeds but never
//! written: new inputs go to `fuzz/target/corpus/<target>/` (ignored by
//! git), crashes to `fuzz/artifacts/<target>/`. Commit a crash by copying
//! it into the committed corpus, where `cargo test` replays it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use crate::{Result, cmd, root};

/// What one libFuzzer run reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Inputs executed.
    pub(crate) runs: Option<u64>,
    /// Executions per second.
    pub(crate) exec_per_sec: Option<u64>,
    /// Coverage counters hit (libFuzzer's `cov`).
    pub(crate) cov: Option<u64>,
    /// Features (libFuzzer's `ft`).
    pub(crate) ft: Option<u64>,
    /// Inputs in the corpus at the end.
    pub(crate) corpus: Option<u64>,
    /// Where a crashing input was written, if one was.
    pub(crate) artifact: Option<String>,
}

/// Runs one target for `seconds`.
pub(crate) fn run(target: &str, seconds: u64) -> Result {
    let (stats, outcome) = run_target(target, seconds);
    print_table(&[(target.to_owned(), stats, outcome.clone())]);
    outcome
}

/// Runs every target for `seconds` each, one after the other, and prints a
/// summary table (for FUZZING.md). A failing target does not stop the others.
pub(crate) fn run_all(seconds: u64) -> Result {
    let targets = targets()?;
    let mut rows = Vec::new();
    for target in &targets {
        eprintln!("\n==> fuzz {target} for {seconds} s");
        let (stats, outcome) = run_target(target, seconds);
        rows.push((target.clone(), stats, outcome));
    }
    print_table(&rows);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, _, r)| r.is_err())
        .map(|(t, _, _)| t.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

/// The fuzz targets: `fuzz/fuzz_targets/*.rs`, sorted.
fn targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result {
    let installed = cmd::cargo(&["fuzz", "--version"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(());
    }
    eprintln!("cargo-fuzz is missing: installing it (1-2 minutes)");
    cmd::run(cmd::cargo(&["install", "cargo-fuzz", "--locked"], &[]))
}

/// Runs a target; the statistics come back even when it fails.
fn run_target(target: &str, seconds: u64) -> (Stats, Result) {
    match try_run_target(target, seconds) {
        Ok(stats) => (stats, Ok(())),
        Err((stats, e)) => (*stats, Err(e)),
    }
}

fn try_run_target(target: &str, seconds: u64) -> std::result::Result<Stats, (Box<Stats>, String)> {
    let fail = |e: String| (Box::default(), e);
    if !targets().map_err(fail)?.iter().any(|t| t == target) {
        return Err(fail(format!(
            "no fuzz target {target:?} (see fuzz/fuzz_targets/)"
        )));
    }
    ensure_cargo_fuzz().map_err(fail)?;
    let root = root();
    let seeds = root.join("fuzz/corpus").join(target);
    let scratch: PathBuf = root.join("fuzz/target/corpus").join(target);
    std::fs::create_dir_all(&scratch).map_err(|e| fail(format!("{}: {e}", scratch.display())))?;
    let max_time = format!("-max_total_time={seconds}");
    let scratch_arg = scratch.to_string_lossy().into_owned();
    let seeds_arg = seeds.to_string_lossy().into_owned();
    let mut command = cmd::cargo(
        &[
            "fuzz",
            "run",
            "--fuzz-dir",
            "fuzz",
            "--sanitizer",
            "none",
            "--debug-assertions",
            target,
            // libFuzzer writes new inputs to the first directory only.
            &scratch_arg,
            &seeds_arg,
            "--",
            &max_time,
            "-print_final_stats=1",
        ],
        &[],
    );
    let shown = cmd::show(&command);
    eprintln!("$ {shown}");
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {shown}: {e}")))?;
    let mut lines = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // libFuzzer logs every new input; show the rest and the pulses.
            if !line.starts_with('#') || line.contains("pulse") || line.contains("DONE") {
                eprintln!("{line}");
            }
            lines.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for {shown}: {e}")))?;
    let stats = parse_stats(lines.iter().map(String::as_str));
    if status.success() {
        Ok(stats)
    } else {
        let what = match &stats.artifact {
            Some(a) => format!("fuzz target {target} failed; input saved at {a}"),
            None => format!("{shown} failed ({status})"),
        };
        Err((Box::new(stats), what))
    }
}

/// Reads libFuzzer's final report: the `#N DONE cov: X ft: Y corp: A/B …
/// exec/s: E` line and the `stat::` lines of `-print_final_stats=1`; the
/// last value seen wins.
pub(crate) fn parse_stats<'a>(lines: impl IntoIterator<Item = &'a str>) -> Stats {
    let mut stats = Stats::default();
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('#')
            && line.contains("DONE")
        {
            stats.runs = number(rest.split_whitespace().next());
            stats.cov = field(line, "cov:");
            stats.ft = field(line, "ft:");
            stats.corpus = field(line, "corp:");
            stats.exec_per_sec = field(line, "exec/s:");
        } else if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            stats.runs = number(Some(v));
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            stats.exec_per_sec = number(Some(v));
        } else if let Some(i) = line.find("Test unit written to ") {
            stats.artifact = Some(line[i + "Test unit written to ".len()..].to_owned());
        }
    }
    stats
}

/// The number after `key` in a libFuzzer status line (`corp: 12/345b` gives 12).
fn field(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    number(words.next())
}

fn number(word: Option<&str>) -> Option<u64> {
    let word = word?.trim();
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn print_table(rows: &[(String, Stats, Result)]) {
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    println!("\n| target | executions | exec/s | cov | ft | corpus | result |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (target, s, outcome) in rows {
        let result = match (outcome, &s.artifact) {
            (Ok(()), _) => "ok".to_owned(),
            (Err(_), Some(a)) => format!("crash: {a}"),
            (Err(e), None) => format!("failed: {e}"),
        };
        println!(
            "| {target} | {} | {} | {} | {} | {} | {result} |",
            show(s.runs),
            show(s.exec_per_sec),
            show(s.cov),
            show(s.ft),
            show(s.corpus),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzers_final_report() {
        let log = "\
INFO: Seed: 1234
#2\tINITED cov: 100 ft: 120 corp: 10/300b exec/s: 0 rss: 40Mb
#262144\tpulse  cov: 400 ft: 900 corp: 50/2Kb lim: 100 exec/s: 87381 rss: 60Mb
#5400000\tDONE   cov: 512 ft: 1400 corp: 77/3210b lim: 4096 exec/s: 29834 rss: 81Mb
Done 5400000 runs in 181 second(s)
stat::number_of_executed_units: 5400123
stat::average_exec_per_sec:     29835
stat::new_units_added:          67
";
        let s = parse_stats(log.lines());
        assert_eq!(
            s,
            Stats {
                runs: Some(5_400_123),
                exec_per_sec: Some(29_835),
                cov: Some(512),
                ft: Some(1400),
                corpus: Some(77),
                artifact: None,
            }
        );
    }

    #[test]
    fn finds_the_crash_artifact() {
        let log = "thread '<unnamed>' panicked at src/fuzzing.rs:1:1:\n\
==1== ERROR: libFuzzer: deadly signal\n\
artifact_prefix='/w/fuzz/artifacts/addr_parse/'; Test unit written to /w/fuzz/artifacts/addr_parse/crash-abc\n";
        assert_eq!(
            parse_stats(log.lines()).artifact.as_deref(),
            Some("/w/fuzz/artifacts/addr_parse/crash-abc")
        );
    }
}

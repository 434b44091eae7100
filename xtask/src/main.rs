//! `cargo xtask`: the project's developer tasks, in plain Rust so they run
//! the same on every machine with nothing but the Rust toolchain.
//!
//! ```text
//! cargo xtask ci                      # exactly what .ci/run checks, in order
//! cargo xtask fuzz TARGET SECONDS     # one fuzz target (installs cargo-fuzz)
//! cargo xtask fuzz-all SECONDS        # every target in turn, then a summary
//! cargo xtask tidy                    # dependency, unsafe, packaging and source rules, docs, checklist
//! cargo xtask stress                  # fault/hostile suites, load test at full size
//! cargo xtask bench [options]         # benchmarks vs Docker's Go client (BENCHMARKS.md)
//! ```
//!
//! Each task is a module with a `run` function; `main` only dispatches.
//! Arguments are parsed by hand: there are few, and the crate stays free of
//! dependencies so it builds before anything else.

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

mod bench;
mod ci;
mod cmd;
mod fuzz;
mod json;
mod stress;
mod tidy;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A task's failure, printed as `xtask: <message>`.
type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                    run the CI checks of .ci/run, stopping at the first failure
  fuzz TARGET SECONDS   run one fuzz target (cargo-fuzz, stable, --sanitizer none)
  fuzz-all SECONDS      run every fuzz target in turn and print a summary table
  tidy                  dependency, unsafe, packaging and source rules, dbg!, crate docs, checklist
  stress                the fault and hostile-input suites, load test at full size
  bench [--quick] [--secs S] [--rounds N] [--only P1,P3] [--no-docker-wait]
                        benchmarks side by side with Docker's Go client (BENCHMARKS.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci"] => ci::run(),
        ["fuzz", target, seconds] => seconds_arg(seconds).and_then(|s| fuzz::run(target, s)),
        ["fuzz-all", seconds] => seconds_arg(seconds).and_then(fuzz::run_all),
        ["tidy"] => tidy::run(),
        ["stress"] => stress::run(),
        ["bench", rest @ ..] => bench::run(rest),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or incomplete command\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seconds_arg(text: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| format!("SECONDS must be a whole number, not {text:?}"))
}

/// The workspace root: tasks run from there whatever the current directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

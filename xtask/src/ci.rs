//! `cargo xtask ci`: the checks of `.ci/run`, in the same order, stopping at
//! the first failure. Keep the two lists identical.

use crate::{Result, cmd, tidy};

/// One CI step: its name and its cargo arguments and environment.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        name: "rustfmt",
        args: &["fmt", "--all", "--check"],
        env: &[],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        name: "tests",
        args: &["test", "--workspace", "--locked"],
        env: &[],
    },
    Step {
        name: "docs",
        args: &["doc", "--workspace", "--no-deps", "--locked"],
        env: &[("RUSTDOCFLAGS", "-Dwarnings")],
    },
    Step {
        name: "fuzz targets compile",
        args: &["check", "--manifest-path", "fuzz/Cargo.toml", "--locked"],
        env: &[],
    },
];

/// Runs every step, then `tidy` (in process: it is this binary's own task).
pub(crate) fn run() -> Result {
    for step in STEPS {
        eprintln!("\n==> {}", step.name);
        cmd::run(cmd::cargo(step.args, step.env))
            .map_err(|e| format!("ci step `{}` failed: {e}", step.name))?;
    }
    eprintln!("\n==> tidy");
    tidy::run().map_err(|e| format!("ci step `tidy` failed: {e}"))?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

//! `cargo xtask ci`: the checks of `.ci/run`, in the same order, stopping at
//! the first failure. Keep the two lists identical. The one difference:
//! `.ci/run` installs the interop peers (dockerd, rclone, podman) when
//! root; this task only reports them missing.

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
    // Without verification: building every package again from its packaged
    // sources takes longer than CI can spare (run it before a release).
    Step {
        name: "packaging",
        args: &[
            "package",
            "--workspace",
            "--locked",
            "--no-verify",
            "--allow-dirty",
        ],
        env: &[],
    },
];

/// The programs the interop tests drive (`tests/it/interop`).
const INTEROP_PEERS: &[&str] = &["dockerd", "docker", "rclone", "podman"];

/// `.ci/run` installs the interop peers with apt when it runs as root; a
/// developer's machine is left alone, so only say what is missing.
fn check_interop_peers() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = INTEROP_PEERS
        .iter()
        .copied()
        .filter(|p| !std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "{} missing: interop tests will skip (fail under CI=true); .ci/run installs them \
             with `apt-get install docker.io rclone` and `apt-get install --no-install-recommends \
             podman`",
            missing.join(", ")
        );
    }
}

/// Runs every step, then `tidy` (in process: it is this binary's own task).
pub(crate) fn run() -> Result {
    for step in STEPS {
        if step.name == "tests" {
            eprintln!("\n==> interop peers");
            check_interop_peers();
        }
        eprintln!("\n==> {}", step.name);
        cmd::run(cmd::cargo(step.args, step.env))
            .map_err(|e| format!("ci step `{}` failed: {e}", step.name))?;
    }
    eprintln!("\n==> tidy");
    tidy::run().map_err(|e| format!("ci step `tidy` failed: {e}"))?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

//! `cargo xtask soak [--minutes N | --seconds N] [--seed S] [--json]`:
//! the soak with chaos (`tests/soak`, an example of the tests package),
//! built in the dev profile with the whole workspace's features (`cargo
//! build --workspace --examples`), which is exactly what `cargo test
//! --workspace` already built: `cargo run -p plugin-tests` would resolve
//! features for that package alone and rebuild much of the tree.
//!
//! It runs mixed engine traffic (registry lookups and listings, every
//! subsystem's proxy, the log FIFO writer and `ReadLogs` streams, the
//! authorization chain) against plugins that are killed, restarted, moved
//! between unix sockets and tcp, made mute and hostile at random from a
//! printed seed, checks its invariants as it goes and prints a report;
//! the exit status is the soak's (0 when every invariant held). Ten
//! minutes by default; CI runs sixty seconds. `RELIABILITY.md` records the
//! last full run.

use std::path::PathBuf;
use std::process::Command;

use crate::{Result, cmd, root};

pub(crate) fn run(args: &[&str]) -> Result {
    cmd::run(cmd::cargo(
        &["build", "--workspace", "--examples", "--locked", "--quiet"],
        &[],
    ))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let soak = target.join("debug").join("examples").join("soak");
    eprintln!("$ {}", soak.display());
    let status = Command::new(&soak)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", soak.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the soak failed ({status})"))
    }
}

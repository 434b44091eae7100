//! `cargo xtask soak [--minutes N | --seconds N] [--seed S] [--json]`:
//! the soak with chaos (`tests/soak`, an example of the tests package),
//! built in the dev profile so that it reuses what `cargo test` built.
//!
//! It runs mixed engine traffic (registry lookups and listings, every
//! subsystem's proxy, the log FIFO writer and `ReadLogs` streams, the
//! authorization chain) against plugins that are killed, restarted, moved
//! between unix sockets and tcp, made mute and hostile at random from a
//! printed seed, checks its invariants as it goes and prints a report;
//! the exit status is the soak's (0 when every invariant held). Ten
//! minutes by default; CI runs sixty seconds. `RELIABILITY.md` records the
//! last full run.

use crate::{Result, cmd};

pub(crate) fn run(args: &[&str]) -> Result {
    let mut cargo_args = vec![
        "run",
        "-p",
        "plugin-tests",
        "--example",
        "soak",
        "--locked",
        "--quiet",
        "--",
    ];
    cargo_args.extend_from_slice(args);
    cmd::run(cmd::cargo(&cargo_args, &[]))
}

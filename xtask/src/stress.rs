//! `cargo xtask stress`: the reliability suite (`tests/it/faults.rs` and
//! `tests/it/hostile.rs`) with the load test at full size.
//!
//! Under `cargo test` the load test runs a tenth of its size (100 plugins,
//! 1,000 concurrent calls). With `PLUGIN_STRESS=full`, which this task
//! sets, it runs 1,000 plugins in one tree and 10,000 concurrent calls
//! across them, three rounds, checking every reply, the process's open
//! descriptors after each round and its memory. The test runs its client
//! and its plugins as two child processes of the test binary and raises
//! their soft limit on open files to the hard limit (the full size needs
//! about 11,000 descriptors in each).

use crate::{Result, cmd};

pub(crate) fn run() -> Result {
    let args = [
        "test",
        "-p",
        "plugin-tests",
        "--test",
        "it",
        "--",
        "faults::",
        "hostile::",
        "--nocapture",
    ];
    cmd::run(cmd::cargo(&args, &[("PLUGIN_STRESS", "full")]))
}

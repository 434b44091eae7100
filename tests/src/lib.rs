//! The fake-plugin kit shared by every integration test (and usable by
//! benchmarks): plugin servers on unix sockets, loopback tcp and TLS that
//! record each request's raw bytes and reply from a per-test script, test
//! certificates, and temporary plugin directory trees.
//!
//! It must never touch the host's plugin directories.
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod certs;
pub mod logs;
pub mod server;
pub mod tree;

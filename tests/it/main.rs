//! The one integration-test binary: everything that needs sockets, files,
//! TLS or time. Each module covers one area; the fake-plugin kit they share
//! is the `plugin_tests` library (`tests/src`).

#![deny(clippy::undocumented_unsafe_blocks)]
// Test code: a failed unwrap is a failed test, in helpers as in tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authz;
mod cli;
mod client;
mod discovery;
mod engine;
mod faults;
mod hostile;
mod hostile_engines;
mod interop;
mod kit;
mod listen;
mod pool;
mod proto_corpus;
mod registry;
mod server;
mod telemetry;

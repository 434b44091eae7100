//! Interoperability with real peers (issues 10 and 15): Docker Engine
//! 20.10 (`dockerd` and the `docker` CLI), podman 4 (a second engine) and
//! rclone's volume plugin (`rclone serve docker`).
//!
//! - [`wire`]: the exact bytes dockerd sends to a v1 volume plugin, kept as
//!   test vectors and replayed to our example plugin;
//! - [`rclone`]: our registry and client (engine side) against rclone's
//!   plugin;
//! - [`dockerd_memvol`]: dockerd (engine side) against our example plugin
//!   `memvol`, on a unix socket, on tcp with a `.spec` and with a `.json`;
//! - [`stale`]: a dead socket in the plugin directory, `docker volume ls`
//!   against our `get_all` over the same directory;
//! - [`podman`]: the exact bytes podman sends (test vectors, replayed to
//!   memvol), and podman against memvol, errors included;
//! - [`dockerd_authz`]: dockerd with our authorization plugin `rule-authz`,
//!   and the bodies it sends kept as test vectors;
//! - [`dockerd_network`]: dockerd as network and IPAM host for our plugins
//!   `memnet` and `simple-ipam`, including default pools overlapping
//!   dockerd's routes (libnetwork#1386).
//!
//! Each test starts its own peers on private paths, and its guards stop
//! them and remove what they made, even when the test fails (podman runs
//! entirely in a private directory, with no daemon; its guard also checks
//! it left no process behind). No test reads or writes the host's plugin
//! directories: every dockerd runs isolated ([`harness::Isolation`]: a
//! mount namespace of its own where `/run/docker/plugins` and
//! `/etc/docker/plugins` are the test's temporary directories,
//! `/usr/lib/docker/plugins` is hidden, and with a network namespace too
//! for the network tests), so dockerd tests run in parallel with each
//! other and with other test runs, and each asserts on stopping its
//! daemon that the host's plugin directories hold nothing of this process
//! ([`harness::assert_host_plugin_dirs_untouched`]). Our own plugins are
//! served in-process ([`memvol`], [`served`]); an engine-side check such as
//! [`stale`]'s `get_all` reads the test's directories directly. A missing
//! peer skips a test with a note, except under CI (`CI=true`), where it
//! fails it.

// Test code: panicking on unexpected errors is the point.
#![allow(clippy::unwrap_used)]

mod dockerd_authz;
mod dockerd_memvol;
mod dockerd_network;
mod harness;
mod memvol;
mod podman;
mod rclone;
mod served;
mod stale;
mod wire;

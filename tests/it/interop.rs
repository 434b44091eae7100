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
//! - [`stale`]: a dead socket in `/run/docker/plugins`, `docker volume ls`
//!   against our `get_all`;
//! - [`podman`]: the exact bytes podman sends (test vectors, replayed to
//!   memvol), and podman against memvol, errors included;
//! - [`dockerd_authz`]: dockerd with our authorization plugin `rule-authz`,
//!   and the bodies it sends kept as test vectors;
//! - [`dockerd_network`]: dockerd as network and IPAM host for our plugins
//!   `memnet` and `simple-ipam`, including default pools overlapping
//!   dockerd's routes (libnetwork#1386).
//!
//! Each test starts its own peers on private paths and its guards stop them
//! and remove what they put in the host's plugin directories, even when the
//! test fails (podman runs entirely in a private directory, with no
//! daemon; its guard also checks it left no process behind). dockerd
//! always reads `/run/docker/plugins` and
//! `/etc/docker/plugins`, so every test that starts one holds
//! [`harness::HOST_DIRS`]; the authz and network tests start it isolated
//! (`harness::Isolation`: its own mount and network namespaces, our
//! plugins served in-process through [`served`]). A missing peer skips a
//! test with a note, except under CI (`CI=true`), where it fails it.

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

//! The facade engines embed: Docker's v1 plugin registry, with Docker's
//! semantics and without its hangs.
//!
//! A [`Registry`] resolves a plugin name through [`discovery`], activates
//! the plugin once with `POST /Plugin.Activate` through [`client`], caches
//! it, runs extension-point [`Handler`]s and lists plugins by kind. Every
//! [`Plugin`] it hands out carries its client, ready to call
//! ([`Plugin::client`]); [`Plugin::connect`] gives the same for a plugin at
//! a known address, without discovery. Typed proxies speak each subsystem
//! as Docker's adapter does: [`VolumeDriver`], [`NetworkDriver`],
//! [`IpamDriver`], [`LogDriver`] (with the engine's FIFO writer) and
//! [`MetricsCollector`]. [`Registry::subscribe`] reports what happens to
//! plugins as [`Event`]s: activations, and evictions of plugins that died
//! or moved (the registry learns of those from the client's
//! `on_connect_failure` and `on_timeout` hooks) or that [`Registry::evict`]
//! removed.
//!
//! The three lower crates are re-exported as modules ([`client`],
//! [`discovery`], [`proto`]), so an engine depends on this one crate only.
//! Each type has one path: this crate's own types at its root, the others
//! in their crate's module (`plugin_registry::proto::Address`, never
//! `plugin_registry::client::Address`).
//!
//! Behaviour is Docker's (`pkg/plugins` on moby master) wherever a user can
//! observe it, except for the documented divergences (`docs/divergences.md`):
//! a missing name fails fast instead of retrying for 15 s, listings never
//! wait on stale sockets and return each name once, dead plugins are
//! evicted, and handlers run exactly once per plugin. [`Policy::docker`]
//! restores Docker's schedules for engines that depend on them.
//!
//! [`authz`] is Docker's `pkg/authorization`: an ordered [`AuthzChain`] of
//! authorization plugins that fails closed, with a `tower` layer behind the
//! `tower` feature.
//!
//! Activations (a `plugin_activate` span each), evictions and listings are
//! reported through the `metrics` facade beside the client's per-call
//! metrics: see [`telemetry`] and `docs/observability.md`.
//!
//! **What it must never do:** touch sockets or TLS itself (that is
//! `plugin-client`'s job), hold a lock across an await, or let one plugin's
//! failure block a call about another.
//!
//! ```no_run
//! use plugin_registry::{Policy, Registry, discovery::LocalRegistry, proto::kinds};
//!
//! # async fn demo() -> Result<(), plugin_registry::Error> {
//! let registry = Registry::new(LocalRegistry::new(), Policy::default());
//! let plugin = registry.get("memvol", kinds::VOLUME_DRIVER).await?;
//! let volumes = plugin_registry::VolumeDriver::new(&plugin)?.list().await?;
//! # let _ = volumes;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod authz;
mod error;
mod event;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod getter;
mod handler;
mod ipam;
mod listing;
mod log;
mod metrics;
mod network;
mod plugin;
mod policy;
mod proxy;
mod registry;
pub mod telemetry;
mod volume;
mod watch;

use std::sync::{Arc, OnceLock};

pub use authz::AuthzChain;
pub use error::{Error, ErrorKind};
pub use event::{Event, Eviction};
pub use getter::{CompatPlugin, Getter, GetterError, Managed, ManagedStore};
pub use handler::{Handler, HandlerFuture};
pub use ipam::IpamDriver;
pub use listing::{ListState, Listing};
#[cfg(target_os = "linux")]
pub use log::LogWriter;
pub use log::{LogDriver, LogStream};
pub use metrics::MetricsCollector;
pub use network::NetworkDriver;
pub use plugin::Plugin;
pub use policy::{LookupWait, Policy};
pub use registry::Registry;
pub use volume::VolumeDriver;

/// `plugin-client`: HTTP to plugins.
pub use plugin_client as client;
/// `plugin-discovery`: name resolution and scanning.
pub use plugin_discovery as discovery;
/// `plugin-proto`: the sans-IO protocol core and typed messages.
pub use plugin_proto as proto;

/// The process-wide registry, for engines that want Docker's global model:
/// the host's directories (read from the environment on first use) and the
/// default [`Policy`].
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(|| Registry::new(discovery::LocalRegistry::new(), Policy::default()))
}

/// Docker's package-level `Get`, on the [`global`] registry.
pub async fn get(name: &str, kind: &str) -> Result<Arc<Plugin>, Error> {
    global().get(name, kind).await
}

/// Docker's package-level `Handle`, on the [`global`] registry.
pub async fn handle(kind: &str, handler: impl Handler) {
    global().handle(kind, handler).await
}

/// Docker's `NewLocalRegistry().GetAll(kind)`, on the [`global`] registry.
pub async fn get_all(kind: &str) -> Result<Vec<Arc<Plugin>>, Error> {
    global().get_all(kind).await
}

// The README's examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

// This crate's own README (the one crates.io shows), compiled the same way.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct CrateReadmeDoctests;

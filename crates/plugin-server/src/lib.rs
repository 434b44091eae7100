//! The plugin-author kit: serve Docker v1 plugin subsystems the way
//! Docker's engine expects, and leave nothing stale behind.
//!
//! Implement a trait per subsystem ([`VolumeDriver`], [`NetworkDriver`],
//! [`IpamDriver`], [`AuthzPlugin`], [`LogDriver`], [`MetricsCollector`]),
//! register the implementations on a [`PluginBuilder`], and serve the
//! [`Plugin`] with a [`Server`] on a [`Listener`]:
//!
//! - `POST /Plugin.Activate` answers `{"Implements":[…]}` with the kinds
//!   registered, in registration order;
//! - `POST /<Subsystem>.<Method>` decodes the body leniently (an empty
//!   body is the default request, Go's JSON rules otherwise), calls the
//!   method and answers JSON with go-plugins-helpers' media type
//!   ([`CONTENT_TYPE`]); a [`PluginError`] is `500 {"Err":"…"}`, which
//!   Docker shows as `<Method>: …` (HTTP details below);
//! - listeners: a unix socket (stale sockets replaced, live ones refused),
//!   systemd socket activation ([`Listener::systemd`]), or tcp with a
//!   [`SpecFile`] (`.spec`, or `.json` with `TLSConfig`) and optional
//!   rustls TLS ([`TlsConfig`]); [`ListenConfig`] is all of that as one
//!   configuration, with a `clap` derive behind the `clap` feature so a
//!   plugin binary takes it from its command line;
//! - shutdown on SIGINT/SIGTERM (or a future of yours): stop accepting,
//!   finish in-flight calls within a deadline, then remove the socket and
//!   spec files this process created, and only those (compared by inode),
//!   so a restarted plugin's files survive the old one's exit.
//!
//! A raw escape hatch ([`PluginBuilder::raw`], [`PluginBuilder::implements`])
//! serves any other `Subsystem.Method` from bytes to bytes.
//!
//! ```no_run
//! use plugin_server::volume::*;
//! use plugin_server::{Listener, Plugin, PluginError, Server};
//!
//! struct Nop;
//! impl VolumeDriver for Nop {
//!     async fn create(&self, _: CreateRequest) -> Result<(), PluginError> { Ok(()) }
//!     async fn remove(&self, _: RemoveRequest) -> Result<(), PluginError> { Ok(()) }
//!     async fn path(&self, _: PathRequest) -> Result<PathResponse, PluginError> {
//!         Ok(PathResponse::default())
//!     }
//!     async fn mount(&self, _: MountRequest) -> Result<MountResponse, PluginError> {
//!         Err(PluginError::new("cannot mount"))
//!     }
//!     async fn unmount(&self, _: UnmountRequest) -> Result<(), PluginError> { Ok(()) }
//!     async fn get(&self, r: GetRequest) -> Result<GetResponse, PluginError> {
//!         Err(PluginError::new(format!("no such volume: {}", r.name)))
//!     }
//!     async fn list(&self) -> Result<ListResponse, PluginError> { Ok(ListResponse::default()) }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::builder().volume(Nop).build()?;
//! Server::new(plugin).serve(Listener::plugin_socket("nop")?).await?;
//! # Ok(()) }
//! ```
//!
//! HTTP details: only `POST` (otherwise `405`); `Host` and `Accept` are
//! never checked (Docker 20.10 sends an empty `Host`); a body that does
//! not decode is `400 {"Err":"bad request body: …"}`, one over the limit
//! `413`; an unknown method is Go's `404 page not found\n` in text/plain,
//! exactly what go-plugins-helpers' mux answers; HTTP/1.1 with keep-alive
//! and no idle timeout (Docker pools connections indefinitely).
//!
//! Limits against callers that are slow, broken or hostile (anything that
//! can reach the socket), each set on [`Server`] with a documented default:
//! a request head must arrive within [`Server::header_read_timeout`] of its
//! first byte (`408`), its body within [`Server::body_read_timeout`] of the
//! head (`408`); heads over [`Server::max_header_bytes`] are `431`, bodies
//! over [`Server::max_request_body`] `413` (refused before they are read);
//! bytes that are not HTTP are `400`; connections beyond
//! [`Server::max_connections`] are answered `503 {"Err":"plugin is busy:
//! …"}`. Each of these closes the connection; no other connection notices.
//!
//! **What it must never do:** depend on the engine side
//! (`plugin-discovery`, `plugin-client`, `plugin-registry`) — a plugin does
//! not carry the engine; remove a file it did not create; let a handler
//! panic take a connection down (it becomes a 500); or let one caller's
//! bytes (or lack of them) hold memory beyond the caps or keep others
//! from being served.

#![deny(clippy::undocumented_unsafe_blocks)]

mod config;
mod conn;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http;
mod listen;
mod plugin;
mod reply;
mod serve;
mod spec;
mod systemd;
mod tls;

pub mod authz;
pub mod ipam;
pub mod log;
pub mod metrics;
pub mod network;
pub mod volume;

pub use authz::AuthzPlugin;
pub use config::{Bound, ListenConfig};
pub use error::{BuildError, PluginError, ServeError};
pub use ipam::IpamDriver;
pub use listen::{ListenAddr, Listener};
pub use log::LogDriver;
pub use metrics::MetricsCollector;
pub use network::NetworkDriver;
pub use plugin::{Plugin, PluginBuilder, decode_request};
pub use reply::{CONTENT_TYPE, Reply};
pub use serve::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_REQUEST_BODY, DEFAULT_SHUTDOWN_TIMEOUT, Server,
};
pub use spec::SpecFile;
pub use systemd::SystemdError;
pub use tls::{TlsConfig, TlsError};
pub use volume::VolumeDriver;

/// The protocol core this kit builds on (typed messages, `Manifest`,
/// `TlsOptions` for `.json` specs).
pub use plugin_proto;
/// Where Docker looks for plugin sockets and spec files (defined once, in
/// `plugin-proto`, for the engine side and this kit alike).
pub use plugin_proto::{DEFAULT_SOCKET_DIR, DEFAULT_SPEC_DIR};

//! The engine side's HTTP client for Docker v1 plugins: Docker's
//! `pkg/plugins` `Client`, byte-compatible on the wire.
//!
//! **Engines should depend on `plugin-registry`**, which finds and
//! activates plugins and re-exports this crate as
//! `plugin_registry::client`. Use this crate alone to call a plugin whose
//! address you already have.
//!
//! A [`Client`] talks to one plugin over a unix socket, TCP, TLS (only for
//! `https://` addresses) or, on Windows, a named pipe, and pools its
//! connections as Docker's `http.Transport` does (kept alive, at most 6
//! idle for 30 s by default; a call never waits for another's connection).
//! The connections are hyper's HTTP/1.1 connections, each polled by the
//! call that holds it: no task per connection. Calls are
//! `POST /<Subsystem.Method>` with the bytes Docker sends (checklist
//! 15–21); replies are read by Docker's rules (22–23); transport failures
//! are retried on Docker's schedule with Docker's warning (24–26).
//!
//! Every call goes through one door, [`Client::call`] (or
//! [`Client::stream`] for a reply read as a stream): a method name or a
//! typed request from `plugin-proto`, then per-call settings, then `.await`.
//!
//! ```no_run
//! # async fn f() -> Result<(), plugin_client::Error> {
//! use std::time::Duration;
//! use plugin_client::Client;
//! use plugin_proto::{Manifest, volume::ListRequest};
//!
//! let client = Client::new("unix:///run/docker/plugins/memvol.sock", None)?;
//! let manifest: Manifest = client.call("Plugin.Activate").json().await?;
//! let volumes = client.call(&ListRequest {}).timeout(Duration::from_secs(5)).await?;
//! # let _ = (manifest, volumes);
//! # Ok(()) }
//! ```
//!
//! When a call gives up because the plugin cannot be reached, the client
//! runs the builder's [`on_connect_failure`](ClientBuilder::on_connect_failure)
//! hook, and when it gives up on a timeout, its
//! [`on_timeout`](ClientBuilder::on_timeout) hook; that is how
//! `plugin-registry` evicts dead and moved plugins (and announces it as an
//! event). A call that must end in bounded time sets a
//! [`deadline`](CallRequest::deadline), which ends its retries itself, so
//! the hooks still run; a call dropped from outside runs none. The retry
//! loop, [`retry::run`], is the one the registry also waits for plugins
//! with.
//!
//! Every call is a `plugin_call` span and is counted through the `metrics`
//! facade (calls, errors by class, retries, latency): see [`telemetry`].
//!
//! Types from `plugin-proto` in this crate's signatures (`Address`,
//! `TlsOptions`, `RetryPolicy`, the typed requests) are not re-exported:
//! they have one path, `plugin_proto::…` (`plugin_registry::proto::…`
//! for engines using the facade).
//!
//! Where it departs from Docker (each a listed divergence, each tested):
//! a retried call resends its whole body (Docker resends a consumed
//! reader, so nothing) and a streamed body is never retried once bytes
//! left; any status but 200 is an error, 3xx included (Go follows
//! redirects); no `Accept-Encoding` is sent; buffered replies are capped;
//! a TLS handshake is bounded by the dial timeout.
//!
//! **What it must never do:** read spec files, scan directories or
//! resolve plugin names (that is `plugin-discovery`), or encode and decode
//! the protocol by rules of its own (that is `plugin-proto`). It is the
//! only crate of the engine side that knows sockets, TLS and hyper (the
//! plugin side's `plugin-server` has its own).

#![forbid(unsafe_code)]

mod body;
mod builder;
mod classify;
mod client;
mod connect;
mod error;
mod pool;
mod request;
pub mod retry;
pub mod telemetry;
mod tls;

pub use body::{ReplyBody, SendBody};
pub use builder::{
    ClientBuilder, DEFAULT_DIAL_TIMEOUT, DEFAULT_MAX_REPLY_SIZE, DEFAULT_POOL_IDLE_TIMEOUT,
    DEFAULT_POOL_MAX_IDLE, FailureHook, IntoAddress,
};
pub use client::Client;
pub use connect::{DialFuture, PluginIo, Transport};
pub use error::Error;
pub use request::{CallRequest, CallTarget, StreamTarget};

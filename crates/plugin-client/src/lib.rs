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
//! connections as Docker's `http.Transport` does. Calls are
//! `POST /<Subsystem.Method>` with the bytes Docker sends (checklist
//! 15–21); replies are read by Docker's rules (22–23); transport failures
//! are retried on Docker's schedule with Docker's warning (24–26).
//!
//! ```no_run
//! # async fn f() -> Result<(), plugin_client::Error> {
//! use plugin_client::{Client, NO_ARGS};
//! use plugin_proto::Manifest;
//!
//! let client = Client::new("unix:///run/docker/plugins/memvol.sock", None)?;
//! let manifest: Manifest = client.call("Plugin.Activate", NO_ARGS).await?;
//! # Ok(()) }
//! ```
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
//! only crate of the workspace that knows sockets, TLS and tokio.

#![forbid(unsafe_code)]

mod body;
mod client;
mod connect;
mod error;
mod tls;

pub use body::{ReplyBody, SendBody};
pub use client::{
    CallOptions, Client, ClientBuilder, ConnectFailureHook, DEFAULT_DIAL_TIMEOUT,
    DEFAULT_MAX_REPLY_SIZE, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE, IntoAddress, NO_ARGS,
};
pub use connect::{DialFuture, PluginIo, Transport};
pub use error::Error;
pub use plugin_proto::{Address, RetryPolicy, TlsOptions};

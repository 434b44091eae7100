//! The sans-IO core of Docker's v1 plugin protocol.
//!
//! Docker's engine finds a plugin by name, sends it `POST /Plugin.Activate`,
//! reads back a [`Manifest`] of the subsystems it implements, and then calls
//! it with JSON over HTTP. This crate holds every rule of that exchange that
//! can be stated without doing IO:
//!
//! - [`Address`]: what a plugin address dials, its HTTP scheme and its
//!   `Host` header, read with Go's `url.Parse` rules ([`GoUrl`], which the
//!   engine's authorization chain also reads request URIs with);
//! - [`SpecContent`]: `.spec` and `.json` spec files, read with Go's
//!   `encoding/json` rules rather than serde's ([`parse_spec`],
//!   [`parse_json_spec`]) and written as Docker reads them
//!   ([`encode_spec`], [`encode_json_spec`]), and the default directories
//!   ([`DEFAULT_SOCKET_DIR`], [`DEFAULT_SPEC_DIRS`]);
//! - [`Manifest`]: the activation reply;
//! - [`encode_call`], [`encode_args`]: the request bytes Docker sends;
//! - [`decode_reply`], [`decode_json`], [`StatusError`]: how replies and
//!   plugin errors are read;
//! - [`retry`]: Docker's backoff schedule as pure functions of time;
//! - typed messages of each subsystem ([`volume`], [`network`], [`ipam`],
//!   [`authz`], [`log`], [`metrics`]) for engines and plugin authors alike,
//!   tied together by [`Call`] (method, reply type, how Docker sends it),
//!   [`ErrReply`] (the 200-with-`Err` convention) and [`decode_message`]
//!   (Go's decoding rules for typed bodies).
//!
//! Plugin authors can use it with any HTTP stack; the engine side of this
//! workspace (`plugin-client`, `plugin-registry`) builds on it. **Engines
//! should depend on `plugin-registry`** (it re-exports this crate as
//! `plugin_registry::proto`), and plugin authors usually want the
//! `plugin-server` kit (which re-exports it as `plugin_server::plugin_proto`).
//!
//! **What it must never do:** open a file or socket, read a clock, spawn a
//! task or depend on an async runtime. Time is an input; bytes come in and
//! go out. Every parser here is fuzzed and must never panic.
//!
//! ```
//! use plugin_proto::{Address, Manifest, encode_args, encode_call};
//!
//! let addr = Address::parse("unix:///run/docker/plugins/memvol.sock")?;
//! let req = encode_call(&addr, "Plugin.Activate", encode_args::<()>(None)?)?;
//! assert_eq!(req.uri().path(), "/Plugin.Activate");
//! assert_eq!(req.headers()["host"], "plugin.moby.localhost");
//!
//! let manifest = Manifest::decode(br#"{"Implements":["VolumeDriver"]}"#)?;
//! assert!(manifest.implements("VolumeDriver"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod address;
mod call;
mod dirs;
mod godecode;
mod gojson;
mod goquote;
mod gotime;
mod gourl;
mod gowrite;
mod manifest;
mod message;
mod reply;
pub mod retry;
mod spec;

pub mod authz;
pub mod ipam;
pub mod log;
pub mod metrics;
pub mod network;
pub mod volume;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use address::{Address, AddressError, Endpoint, MAX_UNIX_PATH_LEN};
pub use call::{
    EncodeError, USER_AGENT_VALUE, call_url, encode_args, encode_call, encode_call_head,
    encode_stream_args, validate_method,
};
pub use dirs::{DEFAULT_SOCKET_DIR, DEFAULT_SPEC_DIR, DEFAULT_SPEC_DIRS};
pub use godecode::{decode_message, null_as_default};
pub use gojson::DecodeError;
pub use gotime::{GoTime, GoTimeError};
pub use gourl::{GoUrl, GoUrlError};
pub use manifest::Manifest;
pub use message::{
    Call, Empty, ErrReply, ErrResponse, StreamCall, decode_request, encode_request,
    encode_stream_request,
};
pub use reply::{StatusError, decode_json, decode_reply};
pub use retry::RetryPolicy;
pub use spec::{
    SpecContent, SpecError, TlsOptions, encode_json_spec, encode_spec, parse_json_spec, parse_spec,
};

/// The media type Docker puts in `Accept` (checklist 16).
pub const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The `Host` header for plugins on unix sockets and named pipes
/// (checklist 17).
pub const VIRTUAL_HOST: &str = "plugin.moby.localhost";

/// What `Plugin.Protocol()` reports for v1 plugins (checklist 36).
pub const PROTOCOL_SCHEME: &str = "moby.plugins.http/v1";

/// The activation handshake's method.
pub const ACTIVATE_METHOD: &str = "Plugin.Activate";

/// Go's `%q` quoting, for error texts that must match Docker's.
pub fn go_quote(s: &str) -> String {
    goquote::quote(s)
}

/// The subsystem names the engine asks for in `Implements` (exact,
/// case-sensitive).
pub mod kinds {
    /// Volume plugins.
    pub const VOLUME_DRIVER: &str = "VolumeDriver";
    /// Network plugins (libnetwork's remote driver).
    pub const NETWORK_DRIVER: &str = "NetworkDriver";
    /// IP address management plugins.
    pub const IPAM_DRIVER: &str = "IpamDriver";
    /// Authorization plugins (lowercase, as Docker spells it).
    pub const AUTHZ: &str = "authz";
    /// Logging plugins.
    pub const LOG_DRIVER: &str = "LogDriver";
    /// Metrics collectors.
    pub const METRICS_COLLECTOR: &str = "MetricsCollector";
}

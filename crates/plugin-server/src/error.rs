//! The kit's error types: what a plugin method returns ([`PluginError`]),
//! what registration can refuse ([`BuildError`]) and what serving can fail
//! with ([`ServeError`]).

use std::io;
use std::path::PathBuf;

use http::StatusCode;

/// An error returned by a plugin method, answered in the plugin convention:
/// `500` with `{"Err":"<message>"}` and the plugin media type.
///
/// Docker's client turns it into `<Method>: <message>` (for example
/// `VolumeDriver.Create: volume exists`), which is what a `docker` user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    message: String,
    status: StatusCode,
}

impl PluginError {
    /// An error with `message`, answered with status 500.
    pub fn new(message: impl Into<String>) -> PluginError {
        PluginError {
            message: message.into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An error answered with another status, still with an `Err` body.
    ///
    /// A status below 400 would read as success or a redirect to some
    /// clients, so anything below 400 is answered as 500.
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> PluginError {
        let status = if status.as_u16() < 400 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            status
        };
        PluginError {
            message: message.into(),
            status,
        }
    }

    /// A `404` saying `method` is not implemented. libnetwork treats a 404
    /// from an optional method (`ProgramExternalConnectivity`, …) as
    /// "nothing to do", and IPAM's `GetCapabilities` as "defaults".
    pub fn not_implemented(method: &str) -> PluginError {
        PluginError::with_status(
            StatusCode::NOT_FOUND,
            format!("{method} is not implemented"),
        )
    }

    /// The message sent in `Err`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> PluginError {
        PluginError::new(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> PluginError {
        PluginError::new(message)
    }
}

impl From<io::Error> for PluginError {
    fn from(e: io::Error) -> PluginError {
        PluginError::new(e.to_string())
    }
}

/// Why a [`PluginBuilder`](crate::PluginBuilder) could not build a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A raw handler's method is not `Subsystem.Method` (the message says
    /// why).
    #[error("{0}")]
    InvalidMethod(String),
    /// Two handlers were registered for one method (for example the same
    /// subsystem twice, or a raw handler over a typed one).
    #[error("a handler for {0} is already registered")]
    DuplicateMethod(String),
    /// `Plugin.Activate` is answered by the kit from what was registered.
    #[error("Plugin.Activate is answered by the kit; use `implements` to add kinds")]
    ReservedMethod,
    /// The manifest could not be encoded.
    #[error("encoding the manifest: {0}")]
    Manifest(String),
}

/// Why serving failed or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// An IO operation on `path` (or on the listener, when `path` is
    /// `None`) failed.
    #[error("{what}{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Io {
        /// What was being done, such as `bind unix socket`.
        what: &'static str,
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A live process answers on the socket path: another instance of the
    /// plugin is running.
    #[error("socket {0} is in use by a running process")]
    SocketInUse(PathBuf),
    /// Something other than a socket sits at the socket path; it is never
    /// removed.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// A file descriptor handed over is not a listening stream socket of a
    /// supported family (unix, IPv4, IPv6).
    #[error("file descriptor {fd} is not usable as a listener: {reason}")]
    BadFd {
        /// The descriptor number.
        fd: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// Socket activation was asked for but the environment does not carry
    /// usable `LISTEN_PID` / `LISTEN_FDS`.
    #[error(transparent)]
    Systemd(#[from] crate::systemd::SystemdError),
    /// The TLS certificate, key or client CA could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// TLS was configured for a unix socket; Docker never speaks TLS there.
    #[error("TLS is only served on tcp listeners, not on {0}")]
    TlsOnUnix(String),
    /// A spec file was asked for a listener whose address cannot be
    /// written in one.
    #[error("cannot write a spec file for {0}")]
    SpecAddress(String),
    /// A plugin name that cannot be a file name in the plugin directory
    /// (empty, `.`, `..`, or containing `/`, `\\` or NUL).
    #[error("invalid plugin name {0:?}")]
    InvalidName(String),
    /// No listener was given.
    #[error("no listener to serve on")]
    NoListener,
    /// A [`ListenConfig`](crate::ListenConfig) whose settings contradict
    /// each other (the message names the flags).
    #[error("listen configuration: {0}")]
    ListenConfig(&'static str),
    /// The socket group names no group of this system.
    #[error("socket group {0:?}: no such group")]
    UnknownGroup(String),
}

impl ServeError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<Option<PathBuf>>,
        source: io::Error,
    ) -> Self {
        ServeError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

//! The registry's error: cheap to clone, because every caller waiting on
//! one activation receives the same outcome.

use std::sync::Arc;
use std::time::Duration;

use plugin_proto::{StatusError, go_quote, retry::go_duration};

/// Why a plugin could not be found, activated or called.
///
/// The text is Docker's wherever Docker defines one: `Unable to find plugin
/// without name`, `could not find plugin <name> in v1 plugin registry:
/// plugin not found`, `Plugin.Activate: <Err>`, `Plugin does not implement
/// the requested driver: plugin="<name>", requested implementation="<kind>"`.
#[derive(Clone)]
pub struct Error(Arc<ErrorKind>);

/// What went wrong, for callers that need more than the predicates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `get("")` (checklist 14).
    #[error("Unable to find plugin without name")]
    EmptyName,
    /// The name did not resolve, or its spec file is unusable.
    #[error(transparent)]
    Discovery(#[from] plugin_discovery::DiscoveryError),
    /// The client could not be created, or a call or the handshake failed.
    #[error(transparent)]
    Client(#[from] plugin_client::Error),
    /// The plugin is active but does not implement the kind (checklist 33).
    #[error(
        "Plugin does not implement the requested driver: plugin={}, requested implementation={}",
        go_quote(.name), go_quote(.kind)
    )]
    NotImplemented {
        /// The plugin's name.
        name: String,
        /// The kind asked for.
        kind: String,
    },
    /// A listing gave up on one plugin after the policy's bound.
    #[error("plugin {} did not finish activating within {}", go_quote(.name), go_duration(*.after))]
    ListTimeout {
        /// The plugin's name.
        name: String,
        /// The bound that expired.
        after: Duration,
    },
    /// A plugin answered 200 with a non-empty `Err` (the typed proxies'
    /// convention, spec §4): the text is the plugin's message alone.
    #[error("{message}")]
    Plugin {
        /// The method called.
        method: String,
        /// The plugin's `Err`.
        message: String,
    },
    /// A network or IPAM plugin answered 200 with a non-empty `Err` (or
    /// IPAM's `Error`): libnetwork's text, `remote: <message>`.
    #[error("remote: {message}")]
    Remote {
        /// The method called.
        method: String,
        /// The plugin's error.
        message: String,
    },
    /// A network driver's capabilities name a scope other than `local` or
    /// `global` (libnetwork's text).
    #[error("invalid capability: expecting 'local' or 'global', got {0}")]
    InvalidScope(String),
    /// An IPAM plugin answered `RequestAddress` without an address
    /// (libnetwork's `ErrNoIPReturned`).
    #[error("no address returned")]
    NoAddressReturned,
    /// The engine's end of a log plugin's FIFO could not be created,
    /// opened or written. Creation failures read as Docker's `error
    /// creating i/o pipe for log plugin: <name>: <cause>`.
    #[error("{text}")]
    LogFifo {
        /// What failed, naming the FIFO.
        text: String,
        /// The OS error underneath (`TimedOut` when the plugin never
        /// opened its end).
        #[source]
        source: std::io::Error,
    },
    /// A log entry stream could not be read or written (Go's
    /// `unexpected EOF` for a stream cut inside a frame).
    #[error(transparent)]
    LogStream(#[from] plugin_proto::log::LogError),
    /// An error with Docker's context before it, e.g. `error creating
    /// logger: <err>` or `error decoding log message: <err>`.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: &'static str,
        /// Why it failed; the predicates look through to it.
        #[source]
        source: Error,
    },
    /// The activation handshake's reply is not a manifest (Go's decode
    /// error text, e.g. `EOF` for an empty body).
    #[error(transparent)]
    Manifest(#[from] plugin_proto::DecodeError),
    /// The task activating a plugin ended without a result (it panicked or
    /// its runtime shut down).
    #[error("activation of plugin {} was abandoned", go_quote(.0))]
    Abandoned(String),
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// `err` with Docker's `context: ` in front of its text.
    pub(crate) fn context(context: &'static str, source: Error) -> Error {
        ErrorKind::Context { context, source }.into()
    }

    /// The error under any [`ErrorKind::Context`] layers.
    fn root(&self) -> &ErrorKind {
        match &*self.0 {
            ErrorKind::Context { source, .. } => source.root(),
            kind => kind,
        }
    }

    /// The plugin's own error message, when it answered 200 with an error
    /// field (the text is the message alone for volume and log plugins,
    /// `remote: <message>` for network and IPAM plugins).
    pub fn plugin_message(&self) -> Option<&str> {
        match self.root() {
            ErrorKind::Plugin { message, .. } | ErrorKind::Remote { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The name was not found (Docker's `ErrNotFound`).
    pub fn is_not_found(&self) -> bool {
        matches!(&*self.0, ErrorKind::Discovery(e) if e.is_not_found())
    }

    /// The name was rejected before any lookup (divergence D2).
    pub fn is_invalid_name(&self) -> bool {
        match &*self.0 {
            ErrorKind::EmptyName => true,
            ErrorKind::Discovery(e) => e.is_invalid_name(),
            _ => false,
        }
    }

    /// The plugin does not implement the kind (Docker's `ErrNotImplements`).
    pub fn is_not_implemented(&self) -> bool {
        matches!(&*self.0, ErrorKind::NotImplemented { .. })
    }

    /// The plugin answered with a status other than 200.
    pub fn status_error(&self) -> Option<&StatusError> {
        match self.root() {
            ErrorKind::Client(e) => e.status_error(),
            _ => None,
        }
    }

    /// Docker's `IsNotFound`: the plugin answered 404. Unlike Docker's,
    /// it looks through the context a proxy adds (`error getting log
    /// reader: …`).
    pub fn is_status_not_found(&self) -> bool {
        self.status_error().is_some_and(StatusError::is_not_found)
    }

    /// A timeout: a per-call or client timeout, a listing bound, or a log
    /// plugin that did not open its FIFO in time.
    pub fn is_timeout(&self) -> bool {
        match self.root() {
            ErrorKind::Client(e) => e.is_timeout(),
            ErrorKind::ListTimeout { .. } => true,
            ErrorKind::LogFifo { source, .. } => source.kind() == std::io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// The plugin could not be reached.
    pub fn is_connect(&self) -> bool {
        matches!(self.root(), ErrorKind::Client(e) if e.is_connect())
    }

    /// The client error underneath, if any.
    pub fn client_error(&self) -> Option<&plugin_client::Error> {
        match self.root() {
            ErrorKind::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: Into<ErrorKind>> From<E> for Error {
    fn from(e: E) -> Self {
        Error(Arc::new(e.into()))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

//! Per-plugin outcomes of a listing, for operators (`plugctl ls --probe`).

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Plugin};

/// What happened to one discovered name during a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ListState {
    /// Activated (now or earlier).
    Ok,
    /// Not contacted: its `.json` spec declares `Implements` without the
    /// kind asked for.
    Skipped,
    /// Its socket or port refused the connection (a stale socket).
    Refused,
    /// Its socket file is gone.
    Missing,
    /// It did not answer in time.
    Timeout,
    /// Anything else: a broken spec, a status error, bad TLS, …
    Error,
}

impl ListState {
    pub(crate) fn of(error: &Error) -> ListState {
        match error.client_error() {
            Some(e) if e.is_connection_refused() => ListState::Refused,
            Some(e) if e.is_socket_missing() => ListState::Missing,
            _ if error.is_timeout() => ListState::Timeout,
            _ => ListState::Error,
        }
    }

    /// The lowercase word used in tables and JSON (`ok`, `refused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Ok => "ok",
            ListState::Skipped => "skipped",
            ListState::Refused => "refused",
            ListState::Missing => "missing",
            ListState::Timeout => "timeout",
            ListState::Error => "error",
        }
    }
}

/// One row of a listing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Listing {
    /// The discovered name.
    pub name: String,
    /// What happened.
    pub state: ListState,
    /// How long this name took (zero when served from the failure cache).
    pub latency: Duration,
    /// The plugin, when it activated.
    pub plugin: Option<Arc<Plugin>>,
    /// The failure, when it did not.
    pub error: Option<Error>,
    /// The failure was remembered from a recent listing, not retried.
    pub cached: bool,
}

impl Listing {
    pub(crate) fn ok(name: String, plugin: Arc<Plugin>, latency: Duration) -> Listing {
        Listing {
            name,
            state: ListState::Ok,
            latency,
            plugin: Some(plugin),
            error: None,
            cached: false,
        }
    }

    pub(crate) fn skipped(name: String, latency: Duration) -> Listing {
        Listing {
            name,
            state: ListState::Skipped,
            latency,
            plugin: None,
            error: None,
            cached: false,
        }
    }

    pub(crate) fn failed(
        name: String,
        state: ListState,
        error: Error,
        latency: Duration,
        cached: bool,
    ) -> Listing {
        Listing {
            name,
            state,
            latency,
            plugin: None,
            error: Some(error),
            cached,
        }
    }
}

//! What every call reports: a `tracing` span, and metrics through the
//! [`metrics`] facade, so any exporter (Prometheus, OpenTelemetry, statsd)
//! can collect them. Without a recorder installed the facade's no-op
//! recorder discards every update: nothing is kept and nothing is sent.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | [`CALLS`] | counter | `plugin`, `method` | calls made (one per call, whatever its attempts) |
//! | [`CALL_ERRORS`] | counter | `plugin`, `method`, `class` | failed calls by [`class`](ErrorClass) |
//! | [`CALL_RETRIES`] | counter | `plugin`, `method` | attempts after a call's first |
//! | [`CALL_DURATION`] | histogram | `plugin`, `method` | seconds from the first attempt to the reply (read, for buffered calls; its head, for streams) |
//!
//! `plugin` is the client's [label](crate::ClientBuilder::label) (the
//! registry sets the plugin's name), else its address.
//!
//! The span, `plugin_call` at info level, has the fields `plugin`,
//! `method`, `address` and `attempt` (recorded as each attempt starts), so
//! Docker's retry warnings logged inside it carry them.
//!
//! Without a recorder a call costs the facade a thread-local read and a
//! call into the no-op recorder: each client keeps the keys of its
//! per-call metrics (name, `plugin`, `method`) once built, so a call builds
//! no labels and allocates nothing for them (BENCHMARKS.md, round 3).
//!
//! **What it must never do:** keep metric values of its own, or block a
//! call.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, SharedString};

use crate::error::Error;

/// Counter: calls made.
pub const CALLS: &str = "docker_plugin_calls_total";
/// Counter: failed calls, by `class`.
pub const CALL_ERRORS: &str = "docker_plugin_call_errors_total";
/// Counter: retried attempts.
pub const CALL_RETRIES: &str = "docker_plugin_call_retries_total";
/// Histogram: call latency in seconds.
pub const CALL_DURATION: &str = "docker_plugin_call_duration_seconds";

/// Why a call failed, as the `class` label spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// `connect`: no connection (refused, missing socket, dial timeout, TLS
    /// handshake).
    Connect,
    /// `timeout`: a per-call or whole-exchange deadline expired after
    /// connecting.
    Timeout,
    /// `transport`: the exchange broke after connecting (EOF, reset,
    /// malformed reply, a body that could not be read).
    Transport,
    /// `status`: a status other than 200 whose body is not the plugin
    /// convention's `{"Err":…}` (a 404 page, an HTML error page).
    Status,
    /// `plugin_error`: the plugin reported an error in its protocol's
    /// convention (`{"Err":…}` with a status, or with 200 where a typed
    /// proxy reads it).
    PluginError,
    /// `decode`: a 200 reply that did not decode, or exceeded the cap.
    Decode,
    /// `request`: the call could not be made (its arguments did not
    /// encode, the client could not be created).
    Request,
}

impl ErrorClass {
    /// The class of `error`.
    pub fn of(error: &Error) -> ErrorClass {
        if error.is_connect() {
            ErrorClass::Connect
        } else if error.is_plugin_error() {
            ErrorClass::PluginError
        } else if error.is_status() {
            ErrorClass::Status
        } else if error.is_timeout() {
            ErrorClass::Timeout
        } else if error.is_decode() || error.is_too_large() {
            ErrorClass::Decode
        } else if error.is_config() || error.is_encode() {
            ErrorClass::Request
        } else {
            ErrorClass::Transport
        }
    }

    /// The label value: `connect`, `timeout`, `transport`, `status`,
    /// `plugin_error`, `decode`, `request`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Transport => "transport",
            ErrorClass::Status => "status",
            ErrorClass::PluginError => "plugin_error",
            ErrorClass::Decode => "decode",
            ErrorClass::Request => "request",
        }
    }
}

/// What the `metrics` macros of this module pass to a recorder.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// How many methods a client keeps keys for; calls to further method
/// names build theirs each time.
const KEPT_METHODS: usize = 64;

/// The per-call metric keys of one method.
struct CallKeys {
    method: Box<str>,
    calls: Key,
    duration: Key,
}

/// A client's per-call metric keys, built at a method's first call. The
/// keys, not the recorder's handles, are kept: each call still registers
/// with whichever recorder is current (global, or a thread's local one),
/// as the macros would.
pub(crate) struct CallMetrics {
    plugin: Arc<str>,
    kept: Mutex<Vec<Arc<CallKeys>>>,
}

impl CallMetrics {
    pub(crate) fn new(plugin: Arc<str>) -> CallMetrics {
        CallMetrics {
            plugin,
            kept: Mutex::new(Vec::new()),
        }
    }

    fn keys(&self, method: &str) -> Arc<CallKeys> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = kept.iter().find(|k| &*k.method == method) {
            return keys.clone();
        }
        let labels = vec![
            Label::new("plugin", SharedString::from(self.plugin.clone())),
            Label::new("method", method.to_owned()),
        ];
        let keys = Arc::new(CallKeys {
            method: method.into(),
            calls: Key::from_parts(CALLS, labels.clone()),
            duration: Key::from_parts(CALL_DURATION, labels),
        });
        if kept.len() < KEPT_METHODS {
            kept.push(keys.clone());
        }
        keys
    }

    /// Records one finished call.
    pub(crate) fn record_call(&self, method: &str, elapsed: Duration, error: Option<&Error>) {
        let keys = self.keys(method);
        metrics::with_recorder(|recorder| {
            recorder
                .register_counter(&keys.calls, &METADATA)
                .increment(1);
            recorder
                .register_histogram(&keys.duration, &METADATA)
                .record(elapsed.as_secs_f64());
        });
        if let Some(error) = error {
            record_error(&self.plugin, method, ErrorClass::of(error));
        }
    }
}

/// Records the attempts of a call after its first.
pub(crate) fn record_retries(plugin: &str, method: &str, retries: u32) {
    if retries > 0 {
        metrics::counter!(
            CALL_RETRIES,
            "plugin" => plugin.to_owned(),
            "method" => method.to_owned()
        )
        .increment(u64::from(retries));
    }
}

/// Counts one failed call of class `class` (the registry's typed proxies
/// count a `200 {"Err":…}` this way).
pub fn record_error(plugin: &str, method: &str, class: ErrorClass) {
    metrics::counter!(
        CALL_ERRORS,
        "plugin" => plugin.to_owned(),
        "method" => method.to_owned(),
        "class" => class.as_str()
    )
    .increment(1);
}

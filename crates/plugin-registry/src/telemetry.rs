//! What the registry reports beyond each call's span and metrics (those
//! are `plugin-client`'s, [`plugin_client::telemetry`]): activations,
//! evictions and listings, through the `metrics` facade (a
//! no-op without a recorder) and a `tracing` span per activation.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | [`ACTIVATIONS`] | counter | `plugin`, `result` (`ok`, `error`) | `Plugin.Activate` handshakes |
//! | [`ACTIVATION_DURATION`] | histogram | `plugin` | seconds per handshake, retries included |
//! | [`EVICTIONS`] | counter | `plugin`, `reason` (`unreachable`, `moved`, `requested`) | activated plugins forgotten |
//! | [`LISTING_DURATION`] | histogram | `kind` | seconds per `get_all` / `list` |
//!
//! The span `plugin_activate` (info) has the fields `plugin`, `method`
//! (`Plugin.Activate`) and `address`; the handshake's `plugin_call` span,
//! with its `attempt`, is inside it.
//!
//! **What it must never do:** keep state of its own, or block.

use std::time::Duration;

use crate::event::Eviction;

/// Counter: activation handshakes, by `result`.
pub const ACTIVATIONS: &str = "docker_plugin_activations_total";
/// Histogram: activation handshake latency in seconds.
pub const ACTIVATION_DURATION: &str = "docker_plugin_activation_duration_seconds";
/// Counter: evictions, by `reason`.
pub const EVICTIONS: &str = "docker_plugin_evictions_total";
/// Histogram: listing latency in seconds.
pub const LISTING_DURATION: &str = "docker_plugin_listing_duration_seconds";

pub(crate) fn record_activation(plugin: &str, elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    ::metrics::counter!(ACTIVATIONS, "plugin" => plugin.to_owned(), "result" => result)
        .increment(1);
    ::metrics::histogram!(ACTIVATION_DURATION, "plugin" => plugin.to_owned())
        .record(elapsed.as_secs_f64());
}

pub(crate) fn record_eviction(plugin: &str, reason: &Eviction) {
    let reason = match reason {
        Eviction::Unreachable { .. } => "unreachable",
        Eviction::Moved { .. } => "moved",
        Eviction::Requested => "requested",
    };
    ::metrics::counter!(EVICTIONS, "plugin" => plugin.to_owned(), "reason" => reason).increment(1);
}

pub(crate) fn record_listing(kind: &str, elapsed: Duration) {
    ::metrics::histogram!(LISTING_DURATION, "kind" => kind.to_owned())
        .record(elapsed.as_secs_f64());
}

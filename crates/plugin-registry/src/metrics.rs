//! The engine-side `MetricsCollector` proxy: Docker's metrics plugin
//! adapter (`daemon/internal/metrics/plugin_unix.go`, formerly
//! `daemon/metrics_unix.go`).
//!
//! **What it must never do:** read a reply: Docker's daemon reads neither
//! `StartMetrics`' nor `StopMetrics`' body, so a plugin answering 200
//! with anything (an `Err` included) has succeeded.

use std::sync::Arc;

use plugin_proto::kinds;
use plugin_proto::metrics::{StartMetricsRequest, StopMetricsRequest};

use crate::Plugin;
use crate::error::Error;
use crate::proxy::Target;

/// Tells one activated metrics collector when the engine's metrics
/// endpoint comes and goes.
///
/// Both calls go out with an empty body; a transport error or a non-200
/// reply (`MetricsCollector.StartMetrics: <message>`) is the error, with
/// no context added, as Docker's adapter returns it. Docker logs it
/// (`Error starting metrics collector plugin`, `Error stopping plugin
/// metrics collection`) and carries on; so should the engine.
///
/// ```no_run
/// use plugin_registry::{MetricsCollector, proto::kinds};
///
/// # async fn demo(registry: &plugin_registry::Registry) -> Result<(), plugin_registry::Error> {
/// for plugin in registry.get_all(kinds::METRICS_COLLECTOR).await? {
///     if let Err(e) = MetricsCollector::new(&plugin)?.start_metrics().await {
///         tracing::error!(plugin = plugin.name(), error = %e, "Error starting metrics collector plugin");
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MetricsCollector(Target);

impl MetricsCollector {
    /// The proxy for an activated plugin that implements
    /// `MetricsCollector` (Docker's store hands the adapter only those).
    pub fn new(plugin: &Arc<Plugin>) -> Result<MetricsCollector, Error> {
        Target::new(plugin, kinds::METRICS_COLLECTOR).map(MetricsCollector)
    }

    /// The plugin behind this proxy.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.0.plugin
    }

    /// `MetricsCollector.StartMetrics`: the metrics endpoint is up. The
    /// reply body is not read.
    pub async fn start_metrics(&self) -> Result<(), Error> {
        self.0.call(&StartMetricsRequest {}).await.map(drop)
    }

    /// `MetricsCollector.StopMetrics`: the metrics endpoint is going
    /// away. The reply body is not read.
    pub async fn stop_metrics(&self) -> Result<(), Error> {
        self.0.call(&StopMetricsRequest {}).await.map(drop)
    }
}

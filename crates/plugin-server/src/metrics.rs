//! Metrics collectors (`MetricsCollector`): implement [`MetricsCollector`]
//! and register it with [`PluginBuilder::metrics`]. The request types are
//! re-exported from [`plugin_proto::metrics`].

use std::future::Future;

pub use plugin_proto::metrics::*;

use crate::plugin::{done, routes};
use crate::{PluginBuilder, PluginError};

/// A metrics collector: told when the daemon's metrics socket appears and
/// goes away.
pub trait MetricsCollector: Send + Sync + 'static {
    /// The daemon's metrics endpoint is up.
    fn start_metrics(&self) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// The daemon's metrics endpoint is going away (the reply is ignored).
    fn stop_metrics(&self) -> impl Future<Output = Result<(), PluginError>> + Send;
}

impl PluginBuilder {
    /// Registers a metrics collector: `MetricsCollector` joins the manifest
    /// and its two methods are served.
    pub fn metrics(self, collector: impl MetricsCollector) -> PluginBuilder {
        routes!(self.implements(plugin_proto::kinds::METRICS_COLLECTOR), collector;
            StartMetricsRequest => |c, _r| c.start_metrics().await.map(done);
            StopMetricsRequest => |c, _r| c.stop_metrics().await.map(|()| plugin_proto::Empty {});
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: MetricsCollector> MetricsCollector for std::sync::Arc<T> {
    fn start_metrics(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::start_metrics(self)
    }

    fn stop_metrics(&self) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::stop_metrics(self)
    }
}

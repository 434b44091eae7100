//! Logging plugins (`LogDriver`): implement [`LogDriver`] and register it
//! with [`PluginBuilder::log`]. The request and reply types, and the log
//! entry stream codec, are re-exported from [`plugin_proto::log`].

use std::future::Future;
use std::sync::Arc;

pub use plugin_proto::log::*;

use crate::plugin::{decode_request, done, routes};
use crate::{PluginBuilder, PluginError, Reply};

/// A logging driver.
///
/// `start_logging` must return promptly and keep reading the FIFO it names
/// on a task of its own: the container blocks when nobody drains it.
pub trait LogDriver: Send + Sync + 'static {
    /// Starts consuming the FIFO at `req.file` for container `req.info`.
    fn start_logging(
        &self,
        req: StartLoggingRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Stops consuming the FIFO at `req.file`; drain it first.
    fn stop_logging(
        &self,
        req: StopLoggingRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// The driver's capabilities. Default: none (`ReadLogs` false).
    fn capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        async { Ok(CapabilitiesResponse::default()) }
    }

    /// Streams stored entries back for `docker logs`: build the reply with
    /// [`Reply::stream`] over frames made by [`encode_frame`]. Default:
    /// 404 (not implemented); say `ReadLogs` in the capabilities when
    /// overriding it.
    fn read_logs(
        &self,
        req: ReadLogsRequest,
    ) -> impl Future<Output = Result<Reply, PluginError>> + Send {
        let _ = req;
        async { Err(PluginError::not_implemented(READ_LOGS)) }
    }
}

impl PluginBuilder {
    /// Registers a logging driver: `LogDriver` joins the manifest and its
    /// four methods are served.
    pub fn log(self, driver: impl LogDriver) -> PluginBuilder {
        let driver = Arc::new(driver);
        let reader = driver.clone();
        // ReadLogs answers a byte stream, not JSON: registered raw.
        let builder = self.raw(READ_LOGS, move |body| {
            let d = reader.clone();
            async move { d.read_logs(decode_request::<ReadLogsRequest>(&body)?).await }
        });
        routes!(builder.implements(plugin_proto::kinds::LOG_DRIVER), driver;
            StartLoggingRequest => |d, r| d.start_logging(r).await.map(done);
            StopLoggingRequest => |d, r| d.stop_logging(r).await.map(done);
            CapabilitiesRequest => |d, _r| d.capabilities().await;
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: LogDriver> LogDriver for std::sync::Arc<T> {
    fn start_logging(
        &self,
        req: StartLoggingRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::start_logging(self, req)
    }

    fn stop_logging(
        &self,
        req: StopLoggingRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::stop_logging(self, req)
    }

    fn capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        T::capabilities(self)
    }

    fn read_logs(
        &self,
        req: ReadLogsRequest,
    ) -> impl Future<Output = Result<Reply, PluginError>> + Send {
        T::read_logs(self, req)
    }
}

//! Extension-point handlers: code an engine runs once for every plugin of a
//! kind (checklist 34 and divergence D12).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Plugin;

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Code to run once for each plugin that implements a kind, e.g. libnetwork
/// asking a new network driver for its capabilities.
///
/// Handlers may do async IO through the plugin's client and may call back
/// into the registry (`get`, `get_all`, `handle`) without deadlocking.
/// Any `Fn(Arc<Plugin>) -> impl Future<Output = ()>` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Runs for one activated plugin.
    fn run(&self, plugin: Arc<Plugin>) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Arc<Plugin>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&self, plugin: Arc<Plugin>) -> HandlerFuture {
        Box::pin(self(plugin))
    }
}

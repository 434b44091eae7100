//! Managed (v2) plugins first, v1 as the fallback, with Docker's error
//! mapping (spec §6.2; checklist 38).
//!
//! v2 plugins live in `/run/docker/plugins/<id>/<sock>`, the directory the
//! v1 scan reads; `scan` never lists them and the registry never resolves
//! `<id>/<sock>` names (divergence D2). An engine that runs managed plugins
//! reaches them through its own store, plugged in here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Error, Plugin, Registry};

/// What a managed-plugin store answers for a name.
#[derive(Debug)]
#[non_exhaustive]
pub enum Managed<P> {
    /// The store has an enabled plugin with the capability.
    Found(P),
    /// The store has no plugin of that name: fall back to v1.
    NotFound,
    /// The store has it but cannot hand it out (disabled, lacks the
    /// capability); the message is the store's, and there is no fallback.
    Refused(String),
}

/// An engine's store of managed (v2) plugins.
pub trait ManagedStore: Send + Sync {
    /// The store's plugin handle.
    type Plugin: Send;
    /// Looks `name` up with `capability`.
    fn get<'a>(
        &'a self,
        name: &'a str,
        capability: &'a str,
    ) -> Pin<Box<dyn Future<Output = Managed<Self::Plugin>> + Send + 'a>>;
}

/// A plugin from either world.
#[derive(Debug)]
#[non_exhaustive]
pub enum CompatPlugin<P> {
    /// A managed plugin from the store.
    Managed(P),
    /// A v1 plugin from the registry.
    Legacy(Arc<Plugin>),
}

/// Why [`Getter::get`] failed, with the daemon's texts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetterError {
    /// Neither world has the name: `plugin "<name>" not found`.
    #[error("plugin {} not found", plugin_proto::go_quote(.0))]
    NotFound(String),
    /// The managed store refused.
    #[error("{0}")]
    Managed(String),
    /// The v1 lookup failed otherwise: `legacy plugin: <err>`.
    #[error("legacy plugin: {0}")]
    Legacy(#[source] Error),
}

impl GetterError {
    /// Whether the name exists nowhere.
    pub fn is_not_found(&self) -> bool {
        matches!(self, GetterError::NotFound(_))
    }
}

/// The daemon's plugin getter: managed plugins first, then v1.
pub struct Getter<S> {
    store: S,
    registry: Registry,
}

impl<S: ManagedStore> Getter<S> {
    /// Combines an engine's managed store with a v1 registry.
    pub fn new(store: S, registry: Registry) -> Self {
        Getter { store, registry }
    }

    /// Looks `name` up in the store, then in the v1 registry.
    pub async fn get(
        &self,
        name: &str,
        capability: &str,
    ) -> Result<CompatPlugin<S::Plugin>, GetterError> {
        match self.store.get(name, capability).await {
            Managed::Found(p) => return Ok(CompatPlugin::Managed(p)),
            Managed::Refused(msg) => return Err(GetterError::Managed(msg)),
            Managed::NotFound => {}
        }
        match self.registry.get(name, capability).await {
            Ok(p) => Ok(CompatPlugin::Legacy(p)),
            Err(e) if e.is_not_found() => Err(GetterError::NotFound(name.to_owned())),
            Err(e) => Err(GetterError::Legacy(e)),
        }
    }
}

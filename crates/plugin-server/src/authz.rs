//! Authorization plugins (`authz`): implement [`AuthzPlugin`] and register
//! it with [`PluginBuilder::authz`]. The request and reply types are
//! re-exported from [`plugin_proto::authz`].

use std::future::Future;

pub use plugin_proto::authz::*;

use crate::plugin::routes;
use crate::{PluginBuilder, PluginError};

/// An authorization plugin: the daemon asks it before handling each API
/// request and again before answering it.
///
/// A denial is `Ok(Response { allow: false, msg, .. })`; a
/// [`PluginError`] means the plugin itself failed, and the daemon refuses
/// the request with that error.
pub trait AuthzPlugin: Send + Sync + 'static {
    /// May the daemon handle this request (`AuthZPlugin.AuthZReq`)?
    fn authz_req(&self, req: Request)
    -> impl Future<Output = Result<Response, PluginError>> + Send;

    /// May the daemon send this response (`AuthZPlugin.AuthZRes`)? The
    /// request carries the response fields too.
    fn authz_res(&self, req: Request)
    -> impl Future<Output = Result<Response, PluginError>> + Send;
}

impl PluginBuilder {
    /// Registers an authorization plugin: `authz` joins the manifest and
    /// its two methods are served.
    pub fn authz(self, plugin: impl AuthzPlugin) -> PluginBuilder {
        routes!(self.implements(plugin_proto::kinds::AUTHZ), plugin;
            AuthZReq => |p, r| p.authz_req(r.0).await;
            AuthZRes => |p, r| p.authz_res(r.0).await;
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: AuthzPlugin> AuthzPlugin for std::sync::Arc<T> {
    fn authz_req(
        &self,
        req: Request,
    ) -> impl Future<Output = Result<Response, PluginError>> + Send {
        T::authz_req(self, req)
    }

    fn authz_res(
        &self,
        req: Request,
    ) -> impl Future<Output = Result<Response, PluginError>> + Send {
        T::authz_res(self, req)
    }
}

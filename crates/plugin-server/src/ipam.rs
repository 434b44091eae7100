//! IP address management plugins (`IpamDriver`): implement [`IpamDriver`]
//! and register it with [`PluginBuilder::ipam`]. The request and reply
//! types are re-exported from [`plugin_proto::ipam`].
//!
//! IPAM replies name their 200-with-error field `Error`, not `Err`; a
//! [`PluginError`] is still answered `500 {"Err": …}`, which libnetwork
//! reads like any plugin error.

use std::future::Future;

pub use plugin_proto::ipam::*;

use crate::plugin::routes;
use crate::{PluginBuilder, PluginError};

/// An IPAM driver.
pub trait IpamDriver: Send + Sync + 'static {
    /// What the driver needs. Optional; the default needs nothing.
    fn get_capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        async { Ok(CapabilitiesResponse::default()) }
    }

    /// The names of the local and global default address spaces.
    fn get_default_address_spaces(
        &self,
    ) -> impl Future<Output = Result<AddressSpacesResponse, PluginError>> + Send;

    /// Registers a pool (identical requests must give the same pool id).
    fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> impl Future<Output = Result<RequestPoolResponse, PluginError>> + Send;

    /// Releases a pool.
    fn release_pool(
        &self,
        req: ReleasePoolRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Reserves an address in a pool.
    fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> impl Future<Output = Result<RequestAddressResponse, PluginError>> + Send;

    /// Releases an address.
    fn release_address(
        &self,
        req: ReleaseAddressRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
}

impl PluginBuilder {
    /// Registers an IPAM driver: `IpamDriver` joins the manifest and its six
    /// methods are served.
    pub fn ipam(self, driver: impl IpamDriver) -> PluginBuilder {
        fn done(_: ()) -> ErrorResponse {
            ErrorResponse::default()
        }
        routes!(self.implements(plugin_proto::kinds::IPAM_DRIVER), driver;
            GetCapabilitiesRequest => |d, _r| d.get_capabilities().await;
            GetDefaultAddressSpacesRequest => |d, _r| d.get_default_address_spaces().await;
            RequestPoolRequest => |d, r| d.request_pool(r).await;
            ReleasePoolRequest => |d, r| d.release_pool(r).await.map(done);
            RequestAddressRequest => |d, r| d.request_address(r).await;
            ReleaseAddressRequest => |d, r| d.release_address(r).await.map(done);
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: IpamDriver> IpamDriver for std::sync::Arc<T> {
    fn get_capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        T::get_capabilities(self)
    }

    fn get_default_address_spaces(
        &self,
    ) -> impl Future<Output = Result<AddressSpacesResponse, PluginError>> + Send {
        T::get_default_address_spaces(self)
    }

    fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> impl Future<Output = Result<RequestPoolResponse, PluginError>> + Send {
        T::request_pool(self, req)
    }

    fn release_pool(
        &self,
        req: ReleasePoolRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::release_pool(self, req)
    }

    fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> impl Future<Output = Result<RequestAddressResponse, PluginError>> + Send {
        T::request_address(self, req)
    }

    fn release_address(
        &self,
        req: ReleaseAddressRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::release_address(self, req)
    }
}

//! The engine-side `IpamDriver` proxy: libnetwork's remote IPAM driver
//! (`libnetwork/ipams/remote/remote.go`), one method per call.
//!
//! libnetwork's pool search around `RequestPool` (asking for the default
//! address spaces first, holding pools that overlap networks in use and
//! asking again) is engine logic built on these calls, not part of the
//! proxy.
//!
//! **What it must never do:** retry, or treat a failure as success where
//! libnetwork does not (only a missing `GetCapabilities` is).

use std::sync::Arc;

use plugin_proto::ipam::{
    AddressSpacesResponse, CapabilitiesResponse, GetCapabilitiesRequest,
    GetDefaultAddressSpacesRequest, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use plugin_proto::{Call, ErrReply, kinds};

use crate::Plugin;
use crate::error::{Error, ErrorKind};
use crate::proxy::{ErrStyle, Target};

/// Typed `IpamDriver.*` calls to one activated plugin, as libnetwork's
/// remote IPAM driver makes them.
///
/// A non-200 reply is the client's status error, `IpamDriver.<Method>:
/// <message>`; a 200 reply with a non-empty `Error` (IPAM's key, not
/// `Err`) is libnetwork's `remote: <Error>`.
///
/// ```no_run
/// use plugin_registry::{IpamDriver, proto::kinds, proto::ipam::RequestPoolRequest};
///
/// # async fn demo(registry: &plugin_registry::Registry) -> Result<(), plugin_registry::Error> {
/// let plugin = registry.get("simple-ipam", kinds::IPAM_DRIVER).await?;
/// let ipam = IpamDriver::new(&plugin)?;
/// let spaces = ipam.get_default_address_spaces().await?;
/// let pool = ipam
///     .request_pool(&RequestPoolRequest {
///         address_space: spaces.local_default_address_space,
///         ..Default::default()
///     })
///     .await?;
/// println!("{} is {}", pool.pool_id, pool.pool);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct IpamDriver(Target);

impl IpamDriver {
    /// The proxy for an activated plugin that implements `IpamDriver`
    /// (libnetwork registers remote IPAM drivers for that kind only).
    pub fn new(plugin: &Arc<Plugin>) -> Result<IpamDriver, Error> {
        Target::new(plugin, kinds::IPAM_DRIVER).map(IpamDriver)
    }

    /// The plugin behind this proxy.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.0.plugin
    }

    async fn call<C: Call>(&self, request: &C) -> Result<C::Reply, Error>
    where
        C::Reply: ErrReply,
    {
        self.0.call_checked(request, ErrStyle::Remote).await
    }

    /// `IpamDriver.GetCapabilities`, sent with an empty body.
    /// **Optional**: a plugin answering 404 has no capabilities
    /// (`RequiresMACAddress` and `RequiresRequestReplay` false), and
    /// libnetwork's messages are logged: `remote ipam driver <name> does
    /// not support capabilities` at info level, the error at debug level.
    ///
    /// libnetwork registers the driver without capabilities whatever the
    /// failure; an engine doing the same uses `unwrap_or_default()` on
    /// the other errors this returns.
    pub async fn get_capabilities(&self) -> Result<CapabilitiesResponse, Error> {
        match self.call(&GetCapabilitiesRequest {}).await {
            Err(e) if crate::proxy::is_unimplemented(&e) => {
                tracing::info!(
                    "remote ipam driver {} does not support capabilities",
                    self.0.plugin.name()
                );
                tracing::debug!("{e}");
                Ok(CapabilitiesResponse::default())
            }
            result => result,
        }
    }

    /// `IpamDriver.GetDefaultAddressSpaces`, sent with an empty body: the
    /// local and global default address spaces.
    pub async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, Error> {
        self.call(&GetDefaultAddressSpacesRequest {}).await
    }

    /// `IpamDriver.RequestPool`: the pool's id, its CIDR and the driver's
    /// data, as the plugin sent them.
    pub async fn request_pool(
        &self,
        request: &RequestPoolRequest,
    ) -> Result<RequestPoolResponse, Error> {
        self.call(request).await
    }

    /// `IpamDriver.ReleasePool`.
    pub async fn release_pool(&self, pool_id: &str) -> Result<(), Error> {
        self.call(&ReleasePoolRequest {
            pool_id: pool_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `IpamDriver.RequestAddress`: the address (CIDR form, as the
    /// plugin sent it; libnetwork parses it next) and the driver's data. A
    /// reply without an address is libnetwork's error `no address
    /// returned`.
    pub async fn request_address(
        &self,
        request: &RequestAddressRequest,
    ) -> Result<RequestAddressResponse, Error> {
        let reply = self.call(request).await?;
        if reply.address.is_empty() {
            return Err(ErrorKind::NoAddressReturned.into());
        }
        Ok(reply)
    }

    /// `IpamDriver.ReleaseAddress`.
    pub async fn release_address(&self, pool_id: &str, address: &str) -> Result<(), Error> {
        self.call(&ReleaseAddressRequest {
            pool_id: pool_id.to_owned(),
            address: address.to_owned(),
        })
        .await
        .map(drop)
    }
}

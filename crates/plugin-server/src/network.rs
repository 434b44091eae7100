//! Network plugins (`NetworkDriver`, libnetwork's remote driver): implement
//! [`NetworkDriver`] and register it with [`PluginBuilder::network`]. The
//! request and reply types are re-exported from [`plugin_proto::network`].

use std::future::Future;

pub use plugin_proto::network::*;

use crate::plugin::{done, routes};
use crate::{PluginBuilder, PluginError};

/// A network driver.
///
/// The optional methods have defaults that answer as a typical
/// go-plugins-helpers driver does: capabilities of local scope; empty
/// success for `EndpointOperInfo`, the discovery notifications and the
/// external-connectivity calls; and `404` (not implemented) for the swarm
/// calls `AllocateNetwork`, `FreeNetwork` and `GwAllocCheck`, which
/// go-plugins-helpers does not serve at all.
pub trait NetworkDriver: Send + Sync + 'static {
    /// The driver's scope. Default: `{"Scope":"local"}`.
    fn get_capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        async {
            Ok(CapabilitiesResponse {
                scope: LOCAL_SCOPE.to_owned(),
                ..CapabilitiesResponse::default()
            })
        }
    }

    /// Creates a network.
    fn create_network(
        &self,
        req: CreateNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Deletes a network.
    fn delete_network(
        &self,
        req: DeleteNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Swarm managers allocate network resources. Default: 404.
    fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> impl Future<Output = Result<AllocateNetworkResponse, PluginError>> + Send {
        let _ = req;
        async { Err(PluginError::not_implemented(ALLOCATE_NETWORK)) }
    }

    /// Swarm managers free network resources. Default: 404.
    fn free_network(
        &self,
        req: FreeNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = req;
        async { Err(PluginError::not_implemented(FREE_NETWORK)) }
    }

    /// Asked only when the capabilities say `GwAllocChecker`. Default: 404.
    fn gw_alloc_check(
        &self,
        req: GwAllocCheckRequest,
    ) -> impl Future<Output = Result<GwAllocCheckResponse, PluginError>> + Send {
        let _ = req;
        async { Err(PluginError::not_implemented(GW_ALLOC_CHECK)) }
    }

    /// Creates an endpoint.
    fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> impl Future<Output = Result<CreateEndpointResponse, PluginError>> + Send;

    /// Operational data about an endpoint. Default: an empty `Value`.
    fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> impl Future<Output = Result<EndpointOperInfoResponse, PluginError>> + Send {
        let _ = req;
        async { Ok(EndpointOperInfoResponse::default()) }
    }

    /// Deletes an endpoint.
    fn delete_endpoint(
        &self,
        req: DeleteEndpointRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Puts an endpoint into a sandbox.
    fn join(
        &self,
        req: JoinRequest,
    ) -> impl Future<Output = Result<JoinResponse, PluginError>> + Send;

    /// Takes an endpoint out of its sandbox.
    fn leave(&self, req: LeaveRequest) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// A node joined. Default: success.
    fn discover_new(
        &self,
        notification: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = notification;
        async { Ok(()) }
    }

    /// A node left. Default: success.
    fn discover_delete(
        &self,
        notification: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = notification;
        async { Ok(()) }
    }

    /// Programs port mappings and the like. Default: success.
    fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = req;
        async { Ok(()) }
    }

    /// Undoes [`program_external_connectivity`](NetworkDriver::program_external_connectivity).
    /// Default: success.
    fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = req;
        async { Ok(()) }
    }
}

impl PluginBuilder {
    /// Registers a network driver: `NetworkDriver` joins the manifest and
    /// its fifteen methods are served.
    pub fn network(self, driver: impl NetworkDriver) -> PluginBuilder {
        routes!(self.implements(plugin_proto::kinds::NETWORK_DRIVER), driver;
            GetCapabilitiesRequest => |d, _r| d.get_capabilities().await;
            CreateNetworkRequest => |d, r| d.create_network(r).await.map(done);
            DeleteNetworkRequest => |d, r| d.delete_network(r).await.map(done);
            AllocateNetworkRequest => |d, r| d.allocate_network(r).await;
            FreeNetworkRequest => |d, r| d.free_network(r).await.map(done);
            GwAllocCheckRequest => |d, r| d.gw_alloc_check(r).await;
            CreateEndpointRequest => |d, r| d.create_endpoint(r).await;
            EndpointOperInfoRequest => |d, r| d.endpoint_oper_info(r).await;
            DeleteEndpointRequest => |d, r| d.delete_endpoint(r).await.map(done);
            JoinRequest => |d, r| d.join(r).await;
            LeaveRequest => |d, r| d.leave(r).await.map(done);
            ProgramExternalConnectivityRequest => |d, r| d.program_external_connectivity(r).await.map(done);
            RevokeExternalConnectivityRequest => |d, r| d.revoke_external_connectivity(r).await.map(done);
            DiscoverNewRequest => |d, r| d.discover_new(r.0).await.map(done);
            DiscoverDeleteRequest => |d, r| d.discover_delete(r.0).await.map(done);
        )
    }
}

/// A shared driver (`Arc<T>`) serves like the driver itself, so the
/// caller can keep a handle on its state.
impl<T: NetworkDriver> NetworkDriver for std::sync::Arc<T> {
    fn get_capabilities(
        &self,
    ) -> impl Future<Output = Result<CapabilitiesResponse, PluginError>> + Send {
        T::get_capabilities(self)
    }

    fn create_network(
        &self,
        req: CreateNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::create_network(self, req)
    }

    fn delete_network(
        &self,
        req: DeleteNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::delete_network(self, req)
    }

    fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> impl Future<Output = Result<AllocateNetworkResponse, PluginError>> + Send {
        T::allocate_network(self, req)
    }

    fn free_network(
        &self,
        req: FreeNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::free_network(self, req)
    }

    fn gw_alloc_check(
        &self,
        req: GwAllocCheckRequest,
    ) -> impl Future<Output = Result<GwAllocCheckResponse, PluginError>> + Send {
        T::gw_alloc_check(self, req)
    }

    fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> impl Future<Output = Result<CreateEndpointResponse, PluginError>> + Send {
        T::create_endpoint(self, req)
    }

    fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> impl Future<Output = Result<EndpointOperInfoResponse, PluginError>> + Send {
        T::endpoint_oper_info(self, req)
    }

    fn delete_endpoint(
        &self,
        req: DeleteEndpointRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::delete_endpoint(self, req)
    }

    fn join(
        &self,
        req: JoinRequest,
    ) -> impl Future<Output = Result<JoinResponse, PluginError>> + Send {
        T::join(self, req)
    }

    fn leave(&self, req: LeaveRequest) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::leave(self, req)
    }

    fn discover_new(
        &self,
        req: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::discover_new(self, req)
    }

    fn discover_delete(
        &self,
        req: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::discover_delete(self, req)
    }

    fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::program_external_connectivity(self, req)
    }

    fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        T::revoke_external_connectivity(self, req)
    }
}

//! The engine-side `NetworkDriver` proxy: libnetwork's remote driver
//! (`libnetwork/drivers/remote/driver.go`), one method per call of the
//! remote network driver API, with libnetwork's reading of the replies.
//!
//! It keeps no state: libnetwork's bookkeeping around the calls (which
//! endpoint is a container's gateway, rolling back an endpoint whose reply
//! does not parse) belongs to the engine.
//!
//! **What it must never do:** retry, or call a plugin in a way libnetwork
//! would not (an optional method's 404 is success; a discovery event other
//! than node discovery is not sent).

use std::collections::BTreeMap;
use std::sync::Arc;

use plugin_proto::network::{
    AllocateNetworkRequest, CapabilitiesResponse, CreateEndpointRequest, CreateNetworkRequest,
    DeleteEndpointRequest, DeleteNetworkRequest, DiscoverDeleteRequest, DiscoverNewRequest,
    DiscoveryNotification, EndpointInterface, EndpointOperInfoRequest, FreeNetworkRequest,
    GLOBAL_SCOPE, GetCapabilitiesRequest, GwAllocCheckRequest, GwAllocCheckResponse, JoinRequest,
    JoinResponse, LOCAL_SCOPE, LeaveRequest, NODE_DISCOVERY, ProgramExternalConnectivityRequest,
    RevokeExternalConnectivityRequest,
};
use plugin_proto::{Call, ErrReply, kinds};
use serde_json::Value;

use crate::Plugin;
use crate::error::{Error, ErrorKind};
use crate::proxy::{ErrStyle, Target};

/// Typed `NetworkDriver.*` calls to one activated plugin, as libnetwork's
/// remote driver makes them.
///
/// A non-200 reply is the client's status error, `NetworkDriver.<Method>:
/// <message>`; a 200 reply with a non-empty `Err` is libnetwork's
/// `remote: <Err>`. No call has a per-call timeout, as in libnetwork.
///
/// ```no_run
/// use plugin_registry::{NetworkDriver, proto::kinds, proto::network::CreateNetworkRequest};
///
/// # async fn demo(registry: &plugin_registry::Registry) -> Result<(), plugin_registry::Error> {
/// let plugin = registry.get("weave", kinds::NETWORK_DRIVER).await?;
/// let net = NetworkDriver::new(&plugin)?;
/// let caps = net.get_capabilities().await?; // scope checked and defaulted
/// net.create_network(&CreateNetworkRequest {
///     network_id: "n1".into(),
///     ..Default::default()
/// })
/// .await?;
/// # let _ = caps;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct NetworkDriver(Target);

impl NetworkDriver {
    /// The proxy for an activated plugin that implements `NetworkDriver`
    /// (libnetwork registers remote drivers for that kind only).
    pub fn new(plugin: &Arc<Plugin>) -> Result<NetworkDriver, Error> {
        Target::new(plugin, kinds::NETWORK_DRIVER).map(NetworkDriver)
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

    /// `NetworkDriver.GetCapabilities`, sent with an empty body, checked
    /// and completed as libnetwork registers a driver: `Scope` must be
    /// `local` or `global`; an empty `ConnectivityScope` takes the value of
    /// `Scope`, any other value but those two is an error (`invalid
    /// capability: expecting 'local' or 'global', got <value>`).
    ///
    /// The method is mandatory: libnetwork does not register a driver
    /// whose `GetCapabilities` fails, a 404 included.
    pub async fn get_capabilities(&self) -> Result<CapabilitiesResponse, Error> {
        let mut caps = self.call(&GetCapabilitiesRequest {}).await?;
        if !is_scope(&caps.scope) {
            return Err(ErrorKind::InvalidScope(caps.scope).into());
        }
        if caps.connectivity_scope.is_empty() {
            caps.connectivity_scope.clone_from(&caps.scope);
        } else if !is_scope(&caps.connectivity_scope) {
            return Err(ErrorKind::InvalidScope(caps.connectivity_scope).into());
        }
        Ok(caps)
    }

    /// `NetworkDriver.CreateNetwork`.
    pub async fn create_network(&self, request: &CreateNetworkRequest) -> Result<(), Error> {
        self.call(request).await.map(drop)
    }

    /// `NetworkDriver.AllocateNetwork` (swarm managers, for global-scope
    /// drivers): the driver's options for the network.
    pub async fn allocate_network(
        &self,
        request: &AllocateNetworkRequest,
    ) -> Result<BTreeMap<String, String>, Error> {
        Ok(self.call(request).await?.options)
    }

    /// `NetworkDriver.DeleteNetwork`.
    pub async fn delete_network(&self, network_id: &str) -> Result<(), Error> {
        self.call(&DeleteNetworkRequest {
            network_id: network_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `NetworkDriver.FreeNetwork` (swarm managers).
    pub async fn free_network(&self, network_id: &str) -> Result<(), Error> {
        self.call(&FreeNetworkRequest {
            network_id: network_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `NetworkDriver.GwAllocCheck`: whether to skip reserving gateway
    /// addresses. libnetwork asks only drivers whose capabilities say
    /// `GwAllocChecker` and skips nothing for the others; that choice is
    /// the caller's.
    pub async fn gw_alloc_check(
        &self,
        request: &GwAllocCheckRequest,
    ) -> Result<GwAllocCheckResponse, Error> {
        self.call(request).await
    }

    /// `NetworkDriver.CreateEndpoint`: the addresses the driver assigned,
    /// `None` when it set none. libnetwork always sends an `Interface`
    /// object (empty strings for addresses it has not assigned); do the
    /// same with `Some(EndpointInterface::default())`.
    pub async fn create_endpoint(
        &self,
        request: &CreateEndpointRequest,
    ) -> Result<Option<EndpointInterface>, Error> {
        Ok(self.call(request).await?.interface)
    }

    /// `NetworkDriver.EndpointOperInfo`: the driver's operational data.
    pub async fn endpoint_oper_info(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<BTreeMap<String, Value>, Error> {
        Ok(self
            .call(&EndpointOperInfoRequest {
                network_id: network_id.to_owned(),
                endpoint_id: endpoint_id.to_owned(),
            })
            .await?
            .value)
    }

    /// `NetworkDriver.DeleteEndpoint`.
    pub async fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<(), Error> {
        self.call(&DeleteEndpointRequest {
            network_id: network_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `NetworkDriver.Join`: the interface, gateways and routes for the
    /// sandbox, as the plugin sent them (libnetwork parses the addresses
    /// and calls `Leave` when one does not parse).
    pub async fn join(&self, request: &JoinRequest) -> Result<JoinResponse, Error> {
        self.call(request).await
    }

    /// `NetworkDriver.Leave`.
    pub async fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<(), Error> {
        self.call(&LeaveRequest {
            network_id: network_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `NetworkDriver.ProgramExternalConnectivity`. **Optional**: a plugin
    /// answering 404 does not implement it, which is success, as in
    /// libnetwork; any other failure is an error.
    pub async fn program_external_connectivity(
        &self,
        request: &ProgramExternalConnectivityRequest,
    ) -> Result<(), Error> {
        crate::proxy::optional(self.call(request).await).map(drop)
    }

    /// `NetworkDriver.RevokeExternalConnectivity`. **Optional**: a 404 is
    /// success, as in libnetwork.
    pub async fn revoke_external_connectivity(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<(), Error> {
        let request = RevokeExternalConnectivityRequest {
            network_id: network_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
        };
        crate::proxy::optional(self.call(&request).await).map(drop)
    }

    /// `NetworkDriver.DiscoverNew`: a node joined. libnetwork forwards node
    /// discovery only: any other [`discovery_type`] returns `Ok` without a
    /// call. Not optional: a 404 is an error, as in libnetwork.
    ///
    /// [`discovery_type`]: DiscoveryNotification::discovery_type
    pub async fn discover_new(&self, notification: &DiscoveryNotification) -> Result<(), Error> {
        if notification.discovery_type != NODE_DISCOVERY {
            return Ok(());
        }
        self.call(&DiscoverNewRequest(notification.clone()))
            .await
            .map(drop)
    }

    /// `NetworkDriver.DiscoverDelete`: a node left. As
    /// [`discover_new`](Self::discover_new): node discovery only, and a
    /// 404 is an error.
    pub async fn discover_delete(&self, notification: &DiscoveryNotification) -> Result<(), Error> {
        if notification.discovery_type != NODE_DISCOVERY {
            return Ok(());
        }
        self.call(&DiscoverDeleteRequest(notification.clone()))
            .await
            .map(drop)
    }
}

fn is_scope(scope: &str) -> bool {
    scope == LOCAL_SCOPE || scope == GLOBAL_SCOPE
}

//! Typed messages of the `NetworkDriver` subsystem: libnetwork's remote
//! driver (`libnetwork/docs/remote.md`; `drivers/remote/api/api.go`).
//!
//! libnetwork calls these right after activation (`GetCapabilities`, with
//! an empty body) and then for each network and endpoint operation. Replies
//! carry an `Err` string; libnetwork reports a non-empty one as
//! `remote: <Err>`. A 404 to `ProgramExternalConnectivity` or
//! `RevokeExternalConnectivity` counts as success (the methods are
//! optional). `GwAllocCheck` is only called when the driver reported
//! `GwAllocChecker` in its capabilities.
//!
//! Requests keep Docker's encoding: option maps and address lists that can
//! be nil in Go are `Option` (`null` when `None`), and [`IpamData`]
//! serialises as libnetwork's custom `MarshalJSON` writes it (sorted keys,
//! absent pool, gateway and auxiliary addresses left out).
//!
//! **What it must never do:** IO, or reject a reply Docker would accept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::impl_err_reply;
use crate::{Call, ErrResponse, null_as_default};

/// `NetworkDriver.GetCapabilities`.
pub const GET_CAPABILITIES: &str = "NetworkDriver.GetCapabilities";
/// `NetworkDriver.CreateNetwork`.
pub const CREATE_NETWORK: &str = "NetworkDriver.CreateNetwork";
/// `NetworkDriver.DeleteNetwork`.
pub const DELETE_NETWORK: &str = "NetworkDriver.DeleteNetwork";
/// `NetworkDriver.AllocateNetwork` (swarm managers).
pub const ALLOCATE_NETWORK: &str = "NetworkDriver.AllocateNetwork";
/// `NetworkDriver.FreeNetwork` (swarm managers).
pub const FREE_NETWORK: &str = "NetworkDriver.FreeNetwork";
/// `NetworkDriver.GwAllocCheck`.
pub const GW_ALLOC_CHECK: &str = "NetworkDriver.GwAllocCheck";
/// `NetworkDriver.CreateEndpoint`.
pub const CREATE_ENDPOINT: &str = "NetworkDriver.CreateEndpoint";
/// `NetworkDriver.EndpointOperInfo`.
pub const ENDPOINT_OPER_INFO: &str = "NetworkDriver.EndpointOperInfo";
/// `NetworkDriver.DeleteEndpoint`.
pub const DELETE_ENDPOINT: &str = "NetworkDriver.DeleteEndpoint";
/// `NetworkDriver.Join`.
pub const JOIN: &str = "NetworkDriver.Join";
/// `NetworkDriver.Leave`.
pub const LEAVE: &str = "NetworkDriver.Leave";
/// `NetworkDriver.ProgramExternalConnectivity`.
pub const PROGRAM_EXTERNAL_CONNECTIVITY: &str = "NetworkDriver.ProgramExternalConnectivity";
/// `NetworkDriver.RevokeExternalConnectivity`.
pub const REVOKE_EXTERNAL_CONNECTIVITY: &str = "NetworkDriver.RevokeExternalConnectivity";
/// `NetworkDriver.DiscoverNew`.
pub const DISCOVER_NEW: &str = "NetworkDriver.DiscoverNew";
/// `NetworkDriver.DiscoverDelete`.
pub const DISCOVER_DELETE: &str = "NetworkDriver.DiscoverDelete";

/// A capability scope: data or connectivity limited to one host.
pub const LOCAL_SCOPE: &str = "local";
/// A capability scope: data or connectivity across the cluster.
pub const GLOBAL_SCOPE: &str = "global";

/// [`StaticRoute::route_type`] of a route through [`StaticRoute::next_hop`].
pub const ROUTE_TYPE_NEXT_HOP: i64 = 0;
/// [`StaticRoute::route_type`] of a connected route (no next hop).
pub const ROUTE_TYPE_CONNECTED: i64 = 1;

/// [`DiscoveryNotification::discovery_type`] of node discovery, the only
/// kind libnetwork forwards to remote drivers; its data is a
/// [`NodeDiscoveryData`].
pub const NODE_DISCOVERY: i64 = 1;

/// `NetworkDriver.GetCapabilities`, sent with an empty body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCapabilitiesRequest {}

/// The reply to [`GetCapabilitiesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilitiesResponse {
    /// Data scope, [`LOCAL_SCOPE`] or [`GLOBAL_SCOPE`]; anything else fails
    /// the driver's registration.
    #[serde(rename = "Scope", deserialize_with = "null_as_default")]
    pub scope: String,
    /// Connectivity scope; empty means the same as `scope`.
    #[serde(
        rename = "ConnectivityScope",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub connectivity_scope: String,
    /// Whether the driver answers `GwAllocCheck`.
    #[serde(
        rename = "GwAllocChecker",
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub gw_alloc_checker: bool,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// Address data of one IPv4 or IPv6 pool given to the network driver.
///
/// Serialises as libnetwork's `IPAMData.MarshalJSON`: keys in sorted
/// order, `AddressSpace` always, the others only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamData {
    /// The IPAM address space.
    #[serde(rename = "AddressSpace", deserialize_with = "null_as_default")]
    pub address_space: String,
    /// Pre-allocated addresses by name, each in CIDR form.
    #[serde(rename = "AuxAddresses", skip_serializing_if = "Option::is_none")]
    pub aux_addresses: Option<BTreeMap<String, String>>,
    /// The gateway, in CIDR form (`172.18.0.1/16`).
    #[serde(rename = "Gateway", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The pool, in CIDR form.
    #[serde(rename = "Pool", skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// `NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateNetworkRequest {
    /// The network id chosen by libnetwork.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// Free-form options (labels under `com.docker.network.generic`, …).
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
    /// IPv4 pools from the IPAM driver.
    #[serde(rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    /// IPv6 pools from the IPAM driver.
    #[serde(rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

/// `NetworkDriver.AllocateNetwork`, sent on swarm managers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocateNetworkRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// Options (strings only, unlike `CreateNetwork`).
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    /// IPv4 pools.
    #[serde(rename = "IPv4Data")]
    pub ipv4_data: Option<Vec<IpamData>>,
    /// IPv6 pools.
    #[serde(rename = "IPv6Data")]
    pub ipv6_data: Option<Vec<IpamData>>,
}

/// The reply to [`AllocateNetworkRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocateNetworkResponse {
    /// Options passed on to `CreateNetwork` on every node.
    #[serde(rename = "Options", deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// `NetworkDriver.FreeNetwork`, sent on swarm managers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FreeNetworkRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
}

/// `NetworkDriver.GwAllocCheck`: whether Docker should reserve gateway
/// addresses for a network about to be created with these options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GwAllocCheckRequest {
    /// The options `CreateNetwork` will get.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
}

/// The reply to [`GwAllocCheckRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GwAllocCheckResponse {
    /// Do not reserve an IPv4 gateway address.
    #[serde(rename = "SkipIPv4", deserialize_with = "null_as_default")]
    pub skip_ipv4: bool,
    /// Do not reserve an IPv6 gateway address.
    #[serde(rename = "SkipIPv6", deserialize_with = "null_as_default")]
    pub skip_ipv6: bool,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// `NetworkDriver.DeleteNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteNetworkRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
}

/// An endpoint's interface addresses. Any field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointInterface {
    /// IPv4 address in CIDR form (`192.168.34.12/16`).
    #[serde(rename = "Address", deserialize_with = "null_as_default")]
    pub address: String,
    /// IPv6 address in CIDR form.
    #[serde(rename = "AddressIPv6", deserialize_with = "null_as_default")]
    pub address_ipv6: String,
    /// MAC address (`6e:75:32:60:44:c9`).
    #[serde(rename = "MacAddress", deserialize_with = "null_as_default")]
    pub mac_address: String,
}

/// `NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateEndpointRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id chosen by libnetwork.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
    /// Addresses already assigned; a driver given a non-empty interface
    /// must not return one.
    #[serde(rename = "Interface")]
    pub interface: Option<EndpointInterface>,
    /// Free-form options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
}

/// The reply to [`CreateEndpointRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateEndpointResponse {
    /// Addresses the driver assigned, only when none were given.
    #[serde(rename = "Interface", skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// `NetworkDriver.EndpointOperInfo`: operational data about an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointOperInfoRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
}

/// The reply to [`EndpointOperInfoRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointOperInfoResponse {
    /// Arbitrary data (possibly empty).
    #[serde(rename = "Value", deserialize_with = "null_as_default")]
    pub value: BTreeMap<String, Value>,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// `NetworkDriver.DeleteEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteEndpointRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
}

/// `NetworkDriver.Join`: put an endpoint into a sandbox (container).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
    /// The sandbox (network namespace path).
    #[serde(rename = "SandboxKey", deserialize_with = "null_as_default")]
    pub sandbox_key: String,
    /// Free-form options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
}

/// The OS interface the driver created and how to name it in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceName {
    /// The interface the driver created on the host.
    #[serde(rename = "SrcName", deserialize_with = "null_as_default")]
    pub src_name: String,
    /// A full name inside the sandbox (libnetwork ignores it in favour of
    /// the prefix).
    #[serde(
        rename = "DstName",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub dst_name: String,
    /// The name prefix inside the sandbox; libnetwork appends an index.
    #[serde(rename = "DstPrefix", deserialize_with = "null_as_default")]
    pub dst_prefix: String,
}

/// A route to add in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaticRoute {
    /// The destination, in CIDR form.
    #[serde(rename = "Destination", deserialize_with = "null_as_default")]
    pub destination: String,
    /// [`ROUTE_TYPE_NEXT_HOP`] or [`ROUTE_TYPE_CONNECTED`].
    #[serde(rename = "RouteType", deserialize_with = "null_as_default")]
    pub route_type: i64,
    /// The next hop address, for [`ROUTE_TYPE_NEXT_HOP`].
    #[serde(rename = "NextHop", deserialize_with = "null_as_default")]
    pub next_hop: String,
}

/// The reply to [`JoinRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinResponse {
    /// The interface to move into the sandbox.
    #[serde(rename = "InterfaceName", skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<InterfaceName>,
    /// The IPv4 gateway (a plain address), if any.
    #[serde(rename = "Gateway", deserialize_with = "null_as_default")]
    pub gateway: String,
    /// The IPv6 gateway, if any.
    #[serde(rename = "GatewayIPv6", deserialize_with = "null_as_default")]
    pub gateway_ipv6: String,
    /// Routes to add.
    #[serde(
        rename = "StaticRoutes",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub static_routes: Vec<StaticRoute>,
    /// Do not connect the sandbox to `docker_gwbridge`.
    #[serde(
        rename = "DisableGatewayService",
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub disable_gateway_service: bool,
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// `NetworkDriver.Leave`: take an endpoint out of its sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaveRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
}

/// `NetworkDriver.ProgramExternalConnectivity` (optional: a 404 is
/// success).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramExternalConnectivityRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
    /// The sandbox options given to `Join` (port mappings, …).
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, Value>>,
}

/// `NetworkDriver.RevokeExternalConnectivity` (optional: a 404 is
/// success).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RevokeExternalConnectivityRequest {
    /// The network id.
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// The endpoint id.
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
}

/// A discovery event, the body of `DiscoverNew` and `DiscoverDelete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryNotification {
    /// The kind of event ([`NODE_DISCOVERY`]).
    #[serde(rename = "DiscoveryType", deserialize_with = "null_as_default")]
    pub discovery_type: i64,
    /// The event's data; a [`NodeDiscoveryData`] for node discovery.
    #[serde(rename = "DiscoveryData")]
    pub discovery_data: Value,
}

/// The data of a [`NODE_DISCOVERY`] event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeDiscoveryData {
    /// The node's address.
    #[serde(rename = "Address", deserialize_with = "null_as_default")]
    pub address: String,
    /// The address the node binds to.
    #[serde(rename = "BindAddress", deserialize_with = "null_as_default")]
    pub bind_address: String,
    /// Whether the event is about this node.
    #[serde(rename = "Self", deserialize_with = "null_as_default")]
    pub self_: bool,
}

/// `NetworkDriver.DiscoverNew`: a node joined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DiscoverNewRequest(pub DiscoveryNotification);

/// `NetworkDriver.DiscoverDelete`: a node left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DiscoverDeleteRequest(pub DiscoveryNotification);

impl_err_reply!(
    err: CapabilitiesResponse,
    AllocateNetworkResponse,
    GwAllocCheckResponse,
    CreateEndpointResponse,
    EndpointOperInfoResponse,
    JoinResponse,
);

impl Call for GetCapabilitiesRequest {
    const METHOD: &'static str = GET_CAPABILITIES;
    type Reply = CapabilitiesResponse;
    const SENDS_BODY: bool = false;
}

impl Call for CreateNetworkRequest {
    const METHOD: &'static str = CREATE_NETWORK;
    type Reply = ErrResponse;
}

impl Call for AllocateNetworkRequest {
    const METHOD: &'static str = ALLOCATE_NETWORK;
    type Reply = AllocateNetworkResponse;
}

impl Call for FreeNetworkRequest {
    const METHOD: &'static str = FREE_NETWORK;
    type Reply = ErrResponse;
}

impl Call for GwAllocCheckRequest {
    const METHOD: &'static str = GW_ALLOC_CHECK;
    type Reply = GwAllocCheckResponse;
}

impl Call for DeleteNetworkRequest {
    const METHOD: &'static str = DELETE_NETWORK;
    type Reply = ErrResponse;
}

impl Call for CreateEndpointRequest {
    const METHOD: &'static str = CREATE_ENDPOINT;
    type Reply = CreateEndpointResponse;
}

impl Call for EndpointOperInfoRequest {
    const METHOD: &'static str = ENDPOINT_OPER_INFO;
    type Reply = EndpointOperInfoResponse;
}

impl Call for DeleteEndpointRequest {
    const METHOD: &'static str = DELETE_ENDPOINT;
    type Reply = ErrResponse;
}

impl Call for JoinRequest {
    const METHOD: &'static str = JOIN;
    type Reply = JoinResponse;
}

impl Call for LeaveRequest {
    const METHOD: &'static str = LEAVE;
    type Reply = ErrResponse;
}

impl Call for ProgramExternalConnectivityRequest {
    const METHOD: &'static str = PROGRAM_EXTERNAL_CONNECTIVITY;
    type Reply = ErrResponse;
}

impl Call for RevokeExternalConnectivityRequest {
    const METHOD: &'static str = REVOKE_EXTERNAL_CONNECTIVITY;
    type Reply = ErrResponse;
}

impl Call for DiscoverNewRequest {
    const METHOD: &'static str = DISCOVER_NEW;
    type Reply = ErrResponse;
}

impl Call for DiscoverDeleteRequest {
    const METHOD: &'static str = DISCOVER_DELETE;
    type Reply = ErrResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::decode_call_reply;
    use crate::{ErrReply, encode_args};
    use crate::{decode_message, decode_request, encode_request};
    use serde::de::DeserializeOwned;
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let wire = encode_args(Some(v)).unwrap();
        assert_eq!(&serde_json::from_slice::<T>(&wire).unwrap(), v);
        assert_eq!(
            &serde_json::from_value::<T>(serde_json::to_value(v).unwrap()).unwrap(),
            v
        );
    }

    fn opts() -> Option<BTreeMap<String, Value>> {
        Some(BTreeMap::from([(
            "com.docker.network.generic".to_owned(),
            json!({"mtu": "1450"}),
        )]))
    }

    fn pool() -> IpamData {
        IpamData {
            address_space: "LocalDefault".into(),
            aux_addresses: Some(BTreeMap::from([("r".to_owned(), "10.0.0.9/24".to_owned())])),
            gateway: Some("10.0.0.1/24".into()),
            pool: Some("10.0.0.0/24".into()),
        }
    }

    #[test]
    fn get_capabilities_has_no_body() {
        // libnetwork calls d.call("GetCapabilities", nil, …): empty body (checklist 21)
        assert!(
            encode_request(&GetCapabilitiesRequest {})
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decode_request::<GetCapabilitiesRequest>(b"").unwrap(),
            GetCapabilitiesRequest {}
        );
        assert_eq!(
            decode_request::<CreateNetworkRequest>(b"")
                .unwrap_err()
                .to_string(),
            "EOF"
        );
    }

    #[test]
    fn ipam_data_is_marshalled_like_libnetwork() {
        // IPAMData.MarshalJSON: a map, so keys come out sorted; nil fields left out
        assert_eq!(
            serde_json::to_string(&pool()).unwrap(),
            r#"{"AddressSpace":"LocalDefault","AuxAddresses":{"r":"10.0.0.9/24"},"Gateway":"10.0.0.1/24","Pool":"10.0.0.0/24"}"#
        );
        assert_eq!(
            serde_json::to_string(&IpamData::default()).unwrap(),
            r#"{"AddressSpace":""}"#
        );
    }

    #[test]
    fn create_network_bytes() {
        // checklist 21: Go encoding (nil slice as null, trailing newline)
        let req = CreateNetworkRequest {
            network_id: "n1".into(),
            options: opts(),
            ipv4_data: Some(vec![pool()]),
            ipv6_data: None,
        };
        assert_eq!(
            &encode_request(&req).unwrap()[..],
            br#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mtu":"1450"}},"IPv4Data":[{"AddressSpace":"LocalDefault","AuxAddresses":{"r":"10.0.0.9/24"},"Gateway":"10.0.0.1/24","Pool":"10.0.0.0/24"}],"IPv6Data":null}
"#
        );
    }

    #[test]
    fn endpoint_and_join_bytes() {
        // checklist 21: Go encoding of the remote driver requests
        let req = CreateEndpointRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            interface: Some(EndpointInterface {
                address: "10.0.0.2/24".into(),
                ..EndpointInterface::default()
            }),
            options: None,
        };
        assert_eq!(
            &encode_request(&req).unwrap()[..],
            br#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.0.0.2/24","AddressIPv6":"","MacAddress":""},"Options":null}
"#
        );
        let req = JoinRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            sandbox_key: "/var/run/docker/netns/x".into(),
            options: Some(BTreeMap::new()),
        };
        assert_eq!(
            &encode_request(&req).unwrap()[..],
            br#"{"NetworkID":"n","EndpointID":"e","SandboxKey":"/var/run/docker/netns/x","Options":{}}
"#
        );
    }

    #[test]
    fn documented_examples_decode() {
        // Bodies from libnetwork docs/remote.md (placeholders filled in).
        let c: CreateNetworkRequest = decode_request(
            br#"{
                "NetworkID": "nid",
                "IPv4Data" : [{
                    "AddressSpace": "as",
                    "Pool": "10.0.0.0/16",
                    "Gateway" : "10.0.0.1/16",
                    "AuxAddresses": {"a": "10.0.0.5/16", "b": "10.0.0.6/16"}
                }],
                "IPv6Data" : [],
                "Options": {"k": {"x": 1}}
            }"#,
        )
        .unwrap();
        let v4 = c.ipv4_data.unwrap();
        assert_eq!(v4[0].pool.as_deref(), Some("10.0.0.0/16"));
        assert_eq!(v4[0].aux_addresses.as_ref().unwrap().len(), 2);
        assert_eq!(c.ipv6_data, Some(vec![]));

        let e: CreateEndpointRequest = decode_request(
            br#"{"NetworkID":"n","EndpointID":"e","Options":{},"Interface":{"Address":"192.168.34.12/16","AddressIPv6":"","MacAddress":"6e:75:32:60:44:c9"}}"#,
        )
        .unwrap();
        assert_eq!(e.interface.unwrap().mac_address, "6e:75:32:60:44:c9");

        let r = decode_call_reply::<CreateEndpointRequest>(
            br#"{"Interface":{"Address":"192.168.34.12/16","MacAddress":"6e:75:32:60:44:c9"}}"#,
        )
        .unwrap();
        assert_eq!(r.interface.unwrap().address, "192.168.34.12/16");

        let j = decode_call_reply::<JoinRequest>(
            br#"{
                "InterfaceName": {"SrcName": "veth0", "DstPrefix": "eth"},
                "Gateway": "192.168.0.1",
                "GatewayIPv6": "fe80::7809:baff:fec6:7744",
                "StaticRoutes": [{"Destination": "10.1.0.0/16", "RouteType": 0, "NextHop": "192.168.0.254"},
                                 {"Destination": "10.2.0.0/16", "RouteType": 1}]
            }"#,
        )
        .unwrap();
        assert_eq!(j.interface_name.as_ref().unwrap().dst_prefix, "eth");
        assert_eq!(j.static_routes[1].route_type, ROUTE_TYPE_CONNECTED);
        assert_eq!(j.static_routes[1].next_hop, "");
        assert_eq!(j.err(), None);

        let c = decode_call_reply::<GetCapabilitiesRequest>(br#"{"Scope": "local"}"#).unwrap();
        assert_eq!(c.scope, LOCAL_SCOPE);
        assert_eq!(c.connectivity_scope, "");

        let i = decode_call_reply::<EndpointOperInfoRequest>(br#"{"Value": {}}"#).unwrap();
        assert!(i.value.is_empty());

        let d: DiscoverNewRequest = decode_request(
            br#"{"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.0.3", "self": true}}"#,
        )
        .unwrap();
        assert_eq!(d.0.discovery_type, NODE_DISCOVERY);
        let node: NodeDiscoveryData =
            decode_message(d.0.discovery_data.to_string().as_bytes()).unwrap();
        assert_eq!(node.address, "10.0.0.3");
        assert!(node.self_, "Go matches `self` to `Self`");
    }

    #[test]
    fn replies_tolerate_nulls_unknowns_and_empty_bodies() {
        // checklist 22 and spec §4 (libnetwork reads Err on 200)
        let j = decode_call_reply::<JoinRequest>(
            br#"{"InterfaceName":null,"StaticRoutes":null,"Gateway":null,"HostsPath":"/x","Err":null}"#,
        )
        .unwrap();
        assert_eq!(j, JoinResponse::default());
        // libnetwork's success replies are often `{}`.
        for body in [&b"{}"[..], b"null", br#"{"Err":""}"#] {
            assert_eq!(decode_call_reply::<LeaveRequest>(body).unwrap().err(), None);
        }
        let r = decode_call_reply::<LeaveRequest>(br#"{"Err":"gone"}"#).unwrap();
        assert_eq!(r.err(), Some("gone"));
    }

    #[test]
    fn discovery_newtypes_are_transparent() {
        // checklist 21: the notification body is the Go struct, not a wrapper
        let n = DiscoverDeleteRequest(DiscoveryNotification {
            discovery_type: NODE_DISCOVERY,
            discovery_data: serde_json::to_value(NodeDiscoveryData {
                address: "a".into(),
                bind_address: "b".into(),
                self_: true,
            })
            .unwrap(),
        });
        assert_eq!(
            &encode_request(&n).unwrap()[..],
            br#"{"DiscoveryType":1,"DiscoveryData":{"Address":"a","BindAddress":"b","Self":true}}
"#
        );
    }

    #[test]
    fn round_trips() {
        // checklist 21/22: every remote-driver message survives encode and decode
        round_trip(&GetCapabilitiesRequest {});
        round_trip(&CapabilitiesResponse {
            scope: GLOBAL_SCOPE.into(),
            connectivity_scope: LOCAL_SCOPE.into(),
            gw_alloc_checker: true,
            err: "e".into(),
        });
        round_trip(&CreateNetworkRequest {
            network_id: "n".into(),
            options: opts(),
            ipv4_data: Some(vec![pool(), IpamData::default()]),
            ipv6_data: Some(vec![]),
        });
        round_trip(&CreateNetworkRequest::default());
        round_trip(&AllocateNetworkRequest {
            network_id: "n".into(),
            options: Some(BTreeMap::from([("a".to_owned(), "b".to_owned())])),
            ipv4_data: Some(vec![pool()]),
            ipv6_data: None,
        });
        round_trip(&AllocateNetworkResponse {
            options: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            err: String::new(),
        });
        round_trip(&FreeNetworkRequest {
            network_id: "n".into(),
        });
        round_trip(&GwAllocCheckRequest { options: opts() });
        round_trip(&GwAllocCheckResponse {
            skip_ipv4: true,
            skip_ipv6: false,
            err: String::new(),
        });
        round_trip(&DeleteNetworkRequest {
            network_id: "n".into(),
        });
        round_trip(&CreateEndpointRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            interface: Some(EndpointInterface {
                address: "a".into(),
                address_ipv6: "b".into(),
                mac_address: "c".into(),
            }),
            options: opts(),
        });
        round_trip(&CreateEndpointResponse {
            interface: Some(EndpointInterface::default()),
            err: String::new(),
        });
        round_trip(&EndpointOperInfoRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
        });
        round_trip(&EndpointOperInfoResponse {
            value: BTreeMap::from([("k".to_owned(), json!([1, "x"]))]),
            err: String::new(),
        });
        round_trip(&DeleteEndpointRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
        });
        round_trip(&JoinRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            sandbox_key: "s".into(),
            options: opts(),
        });
        round_trip(&JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: "veth".into(),
                dst_name: "eth9".into(),
                dst_prefix: "eth".into(),
            }),
            gateway: "10.0.0.1".into(),
            gateway_ipv6: "fe80::1".into(),
            static_routes: vec![StaticRoute {
                destination: "0.0.0.0/0".into(),
                route_type: ROUTE_TYPE_NEXT_HOP,
                next_hop: "10.0.0.1".into(),
            }],
            disable_gateway_service: true,
            err: String::new(),
        });
        round_trip(&LeaveRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
        });
        round_trip(&ProgramExternalConnectivityRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            options: opts(),
        });
        round_trip(&RevokeExternalConnectivityRequest {
            network_id: "n".into(),
            endpoint_id: "e".into(),
        });
        round_trip(&DiscoverNewRequest(DiscoveryNotification {
            discovery_type: NODE_DISCOVERY,
            discovery_data: json!({"Address": "x", "Self": false}),
        }));
        round_trip(&NodeDiscoveryData::default());
    }

    #[test]
    fn methods() {
        // checklist 15: every method is a valid `Subsystem.Method` path
        let all = [
            <GetCapabilitiesRequest as Call>::METHOD,
            <CreateNetworkRequest as Call>::METHOD,
            <AllocateNetworkRequest as Call>::METHOD,
            <FreeNetworkRequest as Call>::METHOD,
            <GwAllocCheckRequest as Call>::METHOD,
            <DeleteNetworkRequest as Call>::METHOD,
            <CreateEndpointRequest as Call>::METHOD,
            <EndpointOperInfoRequest as Call>::METHOD,
            <DeleteEndpointRequest as Call>::METHOD,
            <JoinRequest as Call>::METHOD,
            <LeaveRequest as Call>::METHOD,
            <ProgramExternalConnectivityRequest as Call>::METHOD,
            <RevokeExternalConnectivityRequest as Call>::METHOD,
            <DiscoverNewRequest as Call>::METHOD,
            <DiscoverDeleteRequest as Call>::METHOD,
        ];
        for m in all {
            assert!(m.starts_with("NetworkDriver."), "{m}");
            assert!(crate::validate_method(m).is_ok(), "{m}");
        }
        let unique: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert_eq!(<JoinRequest as Call>::TIMEOUT, None);
    }
}

//! memnet: an in-memory network driver, the example to copy when writing a
//! Docker network plugin (libnetwork's remote driver) with `plugin-server`.
//!
//! Networks and their endpoints live in a map: `docker network create -d
//! memnet …` stores the network with the pools the IPAM driver chose and
//! the driver options (`-o k=v`); endpoints are created, joined, left and
//! deleted in memory, with a MAC address derived from the endpoint id when
//! the engine gives none. Nothing is configured on the host, so memnet
//! runs anywhere; a container joined to a memnet network gets no working
//! interface (the engine looks for the interface memnet names and does not
//! find it).
//!
//! Errors follow the plugin convention (a [`PluginError`] becomes
//! `500 {"Err": …}`, which the docker CLI shows as `Error response from
//! daemon: NetworkDriver.CreateNetwork: …`): a network or endpoint created
//! twice, deleting or using one that does not exist, deleting a network
//! that still has endpoints, and a network created with the driver option
//! `memnet.fail=<message>` (a switch for tests of the error path).
//!
//! [`cli`] is the command line the `memnet` binary runs.
//!
//! **What it must never do:** create, move or configure a real interface,
//! or change anything on the host.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use plugin_server::network::*;
use plugin_server::{BuildError, Plugin, PluginError};
use serde_json::Value;

pub mod cli;

/// The driver option that makes `CreateNetwork` fail with its value.
pub const FAIL_OPTION: &str = "memnet.fail";

/// Where libnetwork puts the `-o k=v` driver options inside
/// `CreateNetwork`'s `Options`.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";

/// The in-memory network driver.
#[derive(Debug, Default)]
pub struct MemNet {
    networks: Mutex<BTreeMap<String, Network>>,
}

#[derive(Debug)]
struct Network {
    options: BTreeMap<String, Value>,
    ipv4_data: Vec<IpamData>,
    ipv6_data: Vec<IpamData>,
    endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Debug)]
struct Endpoint {
    interface: EndpointInterface,
    sandbox_key: Option<String>,
}

/// A network as memnet holds it ([`MemNet::networks`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInfo {
    /// The id libnetwork chose.
    pub id: String,
    /// `CreateNetwork`'s options as received.
    pub options: BTreeMap<String, Value>,
    /// The IPv4 pools the IPAM driver gave.
    pub ipv4_data: Vec<IpamData>,
    /// The IPv6 pools the IPAM driver gave.
    pub ipv6_data: Vec<IpamData>,
    /// The endpoints' ids.
    pub endpoints: Vec<String>,
}

impl MemNet {
    /// A driver with no networks.
    pub fn new() -> MemNet {
        MemNet::default()
    }

    /// The driver as a plugin, ready for a [`plugin_server::Server`].
    ///
    /// ```
    /// let plugin = memnet::MemNet::new().plugin()?;
    /// assert!(plugin.manifest().implements("NetworkDriver"));
    /// # Ok::<(), plugin_server::BuildError>(())
    /// ```
    pub fn plugin(self) -> Result<Plugin, BuildError> {
        Plugin::builder().network(self).build()
    }

    /// The networks memnet holds, by id.
    pub fn networks(&self) -> Vec<NetworkInfo> {
        self.lock()
            .iter()
            .map(|(id, n)| NetworkInfo {
                id: id.clone(),
                options: n.options.clone(),
                ipv4_data: n.ipv4_data.clone(),
                ipv6_data: n.ipv6_data.clone(),
                endpoints: n.endpoints.keys().cloned().collect(),
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Network>> {
        // A poisoned lock only means another call panicked; the map is fine.
        self.networks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn no_such_network(id: &str) -> PluginError {
    PluginError::new(format!("no such network: {id}"))
}

fn no_such_endpoint(id: &str) -> PluginError {
    PluginError::new(format!("no such endpoint: {id}"))
}

/// A locally administered unicast MAC address derived from the endpoint id
/// (hex, as libnetwork makes them), so the same endpoint always gets the
/// same address.
fn mac_for(endpoint_id: &str) -> String {
    let mut bytes = [0x02u8, 0, 0, 0, 0, 0];
    let hex: Vec<u8> = endpoint_id
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .take(5)
        .collect();
    bytes[1..=hex.len()].copy_from_slice(&hex);
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The gateway (without its prefix length) of a network's first IPv4 pool.
fn gateway_of(data: &[IpamData]) -> String {
    data.iter()
        .find_map(|d| d.gateway.as_deref())
        .map(|gw| gw.split('/').next().unwrap_or(gw).to_owned())
        .unwrap_or_default()
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

impl NetworkDriver for MemNet {
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        let options = req.options.unwrap_or_default();
        if let Some(msg) = options
            .get(GENERIC_OPTIONS)
            .and_then(|generic| generic.get(FAIL_OPTION))
            .and_then(Value::as_str)
        {
            return Err(PluginError::new(msg));
        }
        let mut networks = self.lock();
        if networks.contains_key(&req.network_id) {
            return Err(PluginError::new(format!(
                "network {} exists",
                req.network_id
            )));
        }
        let ipv4_data = req.ipv4_data.unwrap_or_default();
        tracing::info!(network = short(&req.network_id),
            pools = ?ipv4_data.iter().filter_map(|d| d.pool.as_deref()).collect::<Vec<_>>(),
            "network created");
        networks.insert(
            req.network_id,
            Network {
                options,
                ipv4_data,
                ipv6_data: req.ipv6_data.unwrap_or_default(),
                endpoints: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError> {
        let mut networks = self.lock();
        let network = networks
            .get(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?;
        if !network.endpoints.is_empty() {
            return Err(PluginError::new(format!(
                "network {} has active endpoints",
                req.network_id
            )));
        }
        networks.remove(&req.network_id);
        tracing::info!(network = short(&req.network_id), "network deleted");
        Ok(())
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        let mut networks = self.lock();
        let network = networks
            .get_mut(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?;
        if network.endpoints.contains_key(&req.endpoint_id) {
            return Err(PluginError::new(format!(
                "endpoint {} exists",
                req.endpoint_id
            )));
        }
        // libnetwork's rule: a driver answers an interface only when it
        // was given none, and then must not change what it was given.
        let (interface, reply) = match req.interface {
            Some(given) => (given, None),
            None => {
                let made = EndpointInterface {
                    mac_address: mac_for(&req.endpoint_id),
                    ..EndpointInterface::default()
                };
                (made.clone(), Some(made))
            }
        };
        tracing::info!(network = short(&req.network_id), endpoint = short(&req.endpoint_id),
            address = %interface.address, "endpoint created");
        network.endpoints.insert(
            req.endpoint_id,
            Endpoint {
                interface,
                sandbox_key: None,
            },
        );
        Ok(CreateEndpointResponse {
            interface: reply,
            ..CreateEndpointResponse::default()
        })
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        let networks = self.lock();
        let endpoint = networks
            .get(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?
            .endpoints
            .get(&req.endpoint_id)
            .ok_or_else(|| no_such_endpoint(&req.endpoint_id))?;
        let mut value = BTreeMap::new();
        value.insert(
            "memnet.address".to_owned(),
            Value::from(endpoint.interface.address.clone()),
        );
        value.insert(
            "memnet.mac".to_owned(),
            Value::from(endpoint.interface.mac_address.clone()),
        );
        value.insert(
            "memnet.sandbox".to_owned(),
            Value::from(endpoint.sandbox_key.clone().unwrap_or_default()),
        );
        Ok(EndpointOperInfoResponse {
            value,
            ..EndpointOperInfoResponse::default()
        })
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError> {
        let mut networks = self.lock();
        networks
            .get_mut(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?
            .endpoints
            .remove(&req.endpoint_id)
            .ok_or_else(|| no_such_endpoint(&req.endpoint_id))?;
        tracing::info!(
            network = short(&req.network_id),
            endpoint = short(&req.endpoint_id),
            "endpoint deleted"
        );
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        let mut networks = self.lock();
        let network = networks
            .get_mut(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?;
        let gateway = gateway_of(&network.ipv4_data);
        let endpoint = network
            .endpoints
            .get_mut(&req.endpoint_id)
            .ok_or_else(|| no_such_endpoint(&req.endpoint_id))?;
        endpoint.sandbox_key = Some(req.sandbox_key);
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: format!("mn{}", req.endpoint_id.get(..8).unwrap_or(&req.endpoint_id)),
                dst_prefix: "eth".to_owned(),
                ..InterfaceName::default()
            }),
            gateway,
            ..JoinResponse::default()
        })
    }

    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError> {
        let mut networks = self.lock();
        let endpoint = networks
            .get_mut(&req.network_id)
            .ok_or_else(|| no_such_network(&req.network_id))?
            .endpoints
            .get_mut(&req.endpoint_id)
            .ok_or_else(|| no_such_endpoint(&req.endpoint_id))?;
        endpoint.sandbox_key = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_come_from_the_endpoint_id() {
        assert_eq!(mac_for("9f3c2a1b0e77d6"), "02:9f:3c:2a:1b:0e");
        // Ids that are short or not hex still give a valid address.
        assert_eq!(mac_for("ab"), "02:ab:00:00:00:00");
        assert_eq!(mac_for("xyz"), "02:00:00:00:00:00");
    }

    #[test]
    fn gateways_lose_their_prefix() {
        let data = [
            IpamData::default(),
            IpamData {
                gateway: Some("10.9.0.1/24".into()),
                ..IpamData::default()
            },
        ];
        assert_eq!(gateway_of(&data), "10.9.0.1");
        assert_eq!(gateway_of(&[]), "");
    }

    #[tokio::test]
    async fn a_network_and_its_endpoints_live_in_memory() {
        let m = MemNet::new();
        let options = serde_json::json!({GENERIC_OPTIONS: {"mtu": "1400"}});
        m.create_network(CreateNetworkRequest {
            network_id: "n1".into(),
            options: serde_json::from_value(options).unwrap(),
            ipv4_data: Some(vec![IpamData {
                address_space: "local".into(),
                pool: Some("10.9.0.0/24".into()),
                gateway: Some("10.9.0.1/24".into()),
                ..IpamData::default()
            }]),
            ..CreateNetworkRequest::default()
        })
        .await
        .unwrap();
        let twice = m
            .create_network(CreateNetworkRequest {
                network_id: "n1".into(),
                ..CreateNetworkRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(twice.message(), "network n1 exists");

        // Given an interface, memnet answers none; given none, a MAC.
        let given = EndpointInterface {
            address: "10.9.0.2/24".into(),
            ..EndpointInterface::default()
        };
        let ep = |id: &str, interface| CreateEndpointRequest {
            network_id: "n1".into(),
            endpoint_id: id.into(),
            interface,
            ..CreateEndpointRequest::default()
        };
        let r = m.create_endpoint(ep("e1", Some(given))).await.unwrap();
        assert_eq!(r.interface, None);
        let r = m.create_endpoint(ep("abcdef0123", None)).await.unwrap();
        assert_eq!(r.interface.unwrap().mac_address, "02:ab:cd:ef:01:23");
        let e = m.create_endpoint(ep("e1", None)).await.unwrap_err();
        assert_eq!(e.message(), "endpoint e1 exists");

        let join = m
            .join(JoinRequest {
                network_id: "n1".into(),
                endpoint_id: "e1".into(),
                sandbox_key: "/var/run/docker/netns/x".into(),
                ..JoinRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(join.gateway, "10.9.0.1");
        let names = join.interface_name.unwrap();
        assert_eq!(
            (names.src_name.as_str(), names.dst_prefix.as_str()),
            ("mne1", "eth")
        );
        let ids = |e: &str| EndpointOperInfoRequest {
            network_id: "n1".into(),
            endpoint_id: e.into(),
        };
        let info = m.endpoint_oper_info(ids("e1")).await.unwrap();
        assert_eq!(info.value["memnet.address"], "10.9.0.2/24");
        assert_eq!(info.value["memnet.sandbox"], "/var/run/docker/netns/x");
        m.leave(LeaveRequest {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
        })
        .await
        .unwrap();
        let info = m.endpoint_oper_info(ids("e1")).await.unwrap();
        assert_eq!(info.value["memnet.sandbox"], "");

        let del_net = || DeleteNetworkRequest {
            network_id: "n1".into(),
        };
        let busy = m.delete_network(del_net()).await.unwrap_err();
        assert_eq!(busy.message(), "network n1 has active endpoints");
        for e in ["e1", "abcdef0123"] {
            m.delete_endpoint(DeleteEndpointRequest {
                network_id: "n1".into(),
                endpoint_id: e.into(),
            })
            .await
            .unwrap();
        }
        let gone = m.endpoint_oper_info(ids("e1")).await.unwrap_err();
        assert_eq!(gone.message(), "no such endpoint: e1");
        m.delete_network(del_net()).await.unwrap();
        assert!(m.networks().is_empty());
        let gone = m.delete_network(del_net()).await.unwrap_err();
        assert_eq!(gone.message(), "no such network: n1");
    }

    #[tokio::test]
    async fn the_fail_option_refuses_a_network() {
        let m = MemNet::new();
        let options = serde_json::json!({GENERIC_OPTIONS: {FAIL_OPTION: "boom"}});
        let e = m
            .create_network(CreateNetworkRequest {
                network_id: "n1".into(),
                options: serde_json::from_value(options).unwrap(),
                ..CreateNetworkRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.message(), "boom");
        assert!(m.networks().is_empty());
    }
}

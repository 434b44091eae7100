//! The engine-side typed proxies of `plugin-registry` (`NetworkDriver`,
//! `IpamDriver`, `LogDriver` with its FIFO writer, `MetricsCollector`):
//! every method against kit plugins over real sockets, the exact bytes
//! Docker's adapters send (checked on the recording fake plugins), each
//! subsystem's error texts, optional methods, and the log FIFO's life.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_proto::USER_AGENT_VALUE;
use plugin_proto::log::{FrameDecoder, LogEntry, PartialLogEntryMetadata, encode_frame};
use plugin_registry::proto::{GoTime, RetryPolicy};
use plugin_registry::{
    Event, Eviction, IpamDriver, LogDriver, MetricsCollector, NetworkDriver, Plugin, Policy,
    Registry, VolumeDriver,
};
use plugin_server::{Listener, PluginError, Reply as KitReply, Server};
use plugin_tests::logs;
use plugin_tests::server::{FakePlugin, Recorded, Reply, Script};
use plugin_tests::tree::PluginTree;
use serde_json::{Value, json};

const MS: fn(u64) -> Duration = Duration::from_millis;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn registry(tree: &PluginTree) -> Registry {
    Registry::new(
        tree.registry(),
        Policy::default().with_retry(RetryPolicy::with_budget(MS(300))),
    )
}

/// Serves a kit plugin at `run/<name>.sock` in `tree` and returns it
/// activated for `kind`. The server task ends with the test's runtime.
async fn kit(
    tree: &PluginTree,
    name: &str,
    kind: &str,
    plugin: plugin_server::Plugin,
) -> Arc<Plugin> {
    let listener = Listener::unix(tree.path(format!("run/{name}.sock"))).unwrap();
    tokio::spawn(Server::new(plugin).handle_signals(false).serve(listener));
    registry(tree).get(name, kind).await.unwrap()
}

/// A recording fake plugin at `run/<name>.sock`, and the plugin activated
/// for `kind` (the script must activate it).
async fn fake(
    tree: &PluginTree,
    name: &str,
    kind: &str,
    script: Script,
) -> (FakePlugin, Arc<Plugin>) {
    let fake = script.unix(tree.path(format!("run/{name}.sock"))).await;
    let plugin = registry(tree).get(name, kind).await.unwrap();
    (fake, plugin)
}

/// The requests after the handshake.
fn calls(fake: &FakePlugin) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.route() != "/Plugin.Activate")
        .collect()
}

/// Docker's request head for `method` with a body of `len` bytes on unix.
fn head(method: &str, len: usize) -> String {
    format!(
        "POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
         Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {len}\r\n\
         User-Agent: {USER_AGENT_VALUE}\r\n\r\n"
    )
}

/// Asserts that `r` is Docker's request for `method` with exactly `body`.
fn assert_request(r: &Recorded, method: &str, body: &str) {
    assert_eq!(
        String::from_utf8_lossy(&r.head),
        head(method, body.len()),
        "head of {method}"
    );
    assert_eq!(r.body_text(), body, "body of {method}");
}

/// A shared log of what a kit plugin was asked: `(method, request JSON)`.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, Value)>>);

impl Seen {
    fn push(&self, method: &str, req: impl serde::Serialize) {
        let v = serde_json::to_value(req).unwrap();
        self.0.lock().unwrap().push((method.to_owned(), v));
    }

    fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------
// NetworkDriver
// ---------------------------------------------------------------------------

mod net {
    pub(super) use plugin_server::network::*;
}

struct KitNetwork(Arc<Seen>);

impl net::NetworkDriver for KitNetwork {
    async fn get_capabilities(&self) -> Result<net::CapabilitiesResponse, PluginError> {
        Ok(net::CapabilitiesResponse {
            scope: net::GLOBAL_SCOPE.into(),
            gw_alloc_checker: true,
            ..Default::default()
        })
    }
    async fn create_network(&self, req: net::CreateNetworkRequest) -> Result<(), PluginError> {
        self.0.push("CreateNetwork", &req);
        match req.network_id.as_str() {
            "bad" => Err(PluginError::new("no such pool")),
            _ => Ok(()),
        }
    }
    async fn delete_network(&self, req: net::DeleteNetworkRequest) -> Result<(), PluginError> {
        self.0.push("DeleteNetwork", &req);
        Ok(())
    }
    async fn allocate_network(
        &self,
        req: net::AllocateNetworkRequest,
    ) -> Result<net::AllocateNetworkResponse, PluginError> {
        self.0.push("AllocateNetwork", &req);
        Ok(net::AllocateNetworkResponse {
            options: BTreeMap::from([("vni".to_owned(), format!("vni-{}", req.network_id))]),
            ..Default::default()
        })
    }
    async fn free_network(&self, req: net::FreeNetworkRequest) -> Result<(), PluginError> {
        self.0.push("FreeNetwork", &req);
        Ok(())
    }
    async fn gw_alloc_check(
        &self,
        req: net::GwAllocCheckRequest,
    ) -> Result<net::GwAllocCheckResponse, PluginError> {
        self.0.push("GwAllocCheck", &req);
        Ok(net::GwAllocCheckResponse {
            skip_ipv4: true,
            ..Default::default()
        })
    }
    async fn create_endpoint(
        &self,
        req: net::CreateEndpointRequest,
    ) -> Result<net::CreateEndpointResponse, PluginError> {
        self.0.push("CreateEndpoint", &req);
        Ok(net::CreateEndpointResponse {
            interface: Some(net::EndpointInterface {
                address: "10.0.0.7/24".into(),
                address_ipv6: String::new(),
                mac_address: "6e:75:32:60:44:c9".into(),
            }),
            ..Default::default()
        })
    }
    async fn endpoint_oper_info(
        &self,
        req: net::EndpointOperInfoRequest,
    ) -> Result<net::EndpointOperInfoResponse, PluginError> {
        self.0.push("EndpointOperInfo", &req);
        Ok(net::EndpointOperInfoResponse {
            value: BTreeMap::from([("endpoint".to_owned(), json!(req.endpoint_id))]),
            ..Default::default()
        })
    }
    async fn delete_endpoint(&self, req: net::DeleteEndpointRequest) -> Result<(), PluginError> {
        self.0.push("DeleteEndpoint", &req);
        Ok(())
    }
    async fn join(&self, req: net::JoinRequest) -> Result<net::JoinResponse, PluginError> {
        self.0.push("Join", &req);
        Ok(net::JoinResponse {
            interface_name: Some(net::InterfaceName {
                src_name: "veth0".into(),
                dst_name: String::new(),
                dst_prefix: "eth".into(),
            }),
            gateway: "10.0.0.1".into(),
            gateway_ipv6: "fd00::1".into(),
            static_routes: vec![net::StaticRoute {
                destination: "10.9.0.0/16".into(),
                route_type: net::ROUTE_TYPE_NEXT_HOP,
                next_hop: "10.0.0.254".into(),
            }],
            disable_gateway_service: true,
            ..Default::default()
        })
    }
    async fn leave(&self, req: net::LeaveRequest) -> Result<(), PluginError> {
        self.0.push("Leave", &req);
        Ok(())
    }
    async fn discover_new(&self, n: net::DiscoveryNotification) -> Result<(), PluginError> {
        self.0.push("DiscoverNew", &n);
        Ok(())
    }
    async fn discover_delete(&self, n: net::DiscoveryNotification) -> Result<(), PluginError> {
        self.0.push("DiscoverDelete", &n);
        Ok(())
    }
    async fn program_external_connectivity(
        &self,
        req: net::ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.0.push("ProgramExternalConnectivity", &req);
        Ok(())
    }
    async fn revoke_external_connectivity(
        &self,
        req: net::RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.0.push("RevokeExternalConnectivity", &req);
        Err(PluginError::new("iptables: no chain"))
    }
}

fn node(kind: i64) -> net::DiscoveryNotification {
    net::DiscoveryNotification {
        discovery_type: kind,
        discovery_data: json!({"Address": "192.0.2.4", "BindAddress": "0.0.0.0", "Self": false}),
    }
}

fn sandbox_options() -> Option<BTreeMap<String, Value>> {
    Some(BTreeMap::from([(
        "com.docker.network.portmap".to_owned(),
        json!([{"Proto": 6, "Port": 80}]),
    )]))
}

#[tokio::test]
async fn network_proxy_round_trips_every_method_with_a_kit_plugin() {
    let tree = PluginTree::new();
    let seen = Arc::new(Seen::default());
    let plugin = plugin_server::Plugin::builder()
        .network(KitNetwork(seen.clone()))
        .build()
        .unwrap();
    let p = kit(&tree, "overlay", "NetworkDriver", plugin).await;
    let net = NetworkDriver::new(&p).unwrap();
    assert!(Arc::ptr_eq(net.plugin(), &p));

    // Capabilities: scope kept, the empty connectivity scope defaulted to it.
    let caps = net.get_capabilities().await.unwrap();
    assert_eq!(
        (
            caps.scope.as_str(),
            caps.connectivity_scope.as_str(),
            caps.gw_alloc_checker
        ),
        ("global", "global", true)
    );

    let pool = net::IpamData {
        address_space: "GlobalDefault".into(),
        pool: Some("10.0.0.0/24".into()),
        gateway: Some("10.0.0.1/24".into()),
        aux_addresses: None,
    };
    net.create_network(&net::CreateNetworkRequest {
        network_id: "n1".into(),
        options: Some(BTreeMap::from([("mtu".to_owned(), json!("1450"))])),
        ipv4_data: Some(vec![pool.clone()]),
        ipv6_data: None,
    })
    .await
    .unwrap();
    let options = net
        .allocate_network(&net::AllocateNetworkRequest {
            network_id: "n1".into(),
            options: None,
            ipv4_data: Some(vec![pool]),
            ipv6_data: None,
        })
        .await
        .unwrap();
    assert_eq!(
        options,
        BTreeMap::from([("vni".to_owned(), "vni-n1".to_owned())])
    );
    let skip = net
        .gw_alloc_check(&net::GwAllocCheckRequest { options: None })
        .await
        .unwrap();
    assert_eq!((skip.skip_ipv4, skip.skip_ipv6), (true, false));
    let iface = net
        .create_endpoint(&net::CreateEndpointRequest {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            interface: Some(net::EndpointInterface::default()),
            options: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (iface.address.as_str(), iface.mac_address.as_str()),
        ("10.0.0.7/24", "6e:75:32:60:44:c9")
    );
    assert_eq!(
        net.endpoint_oper_info("n1", "e1").await.unwrap(),
        BTreeMap::from([("endpoint".to_owned(), json!("e1"))])
    );
    let joined = net
        .join(&net::JoinRequest {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            sandbox_key: "/var/run/docker/netns/abc".into(),
            options: sandbox_options(),
        })
        .await
        .unwrap();
    let name = joined.interface_name.as_ref().unwrap();
    assert_eq!(
        (name.src_name.as_str(), name.dst_prefix.as_str()),
        ("veth0", "eth")
    );
    assert_eq!(
        (joined.gateway.as_str(), joined.gateway_ipv6.as_str()),
        ("10.0.0.1", "fd00::1")
    );
    assert_eq!(joined.static_routes[0].next_hop, "10.0.0.254");
    assert!(joined.disable_gateway_service);
    net.program_external_connectivity(&net::ProgramExternalConnectivityRequest {
        network_id: "n1".into(),
        endpoint_id: "e1".into(),
        options: sandbox_options(),
    })
    .await
    .unwrap();
    // A failure of an optional method other than 404 is still an error.
    let e = net
        .revoke_external_connectivity("n1", "e1")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "NetworkDriver.RevokeExternalConnectivity: iptables: no chain"
    );
    net.leave("n1", "e1").await.unwrap();
    net.delete_endpoint("n1", "e1").await.unwrap();
    net.discover_new(&node(net::NODE_DISCOVERY)).await.unwrap();
    net.discover_delete(&node(net::NODE_DISCOVERY))
        .await
        .unwrap();
    // libnetwork forwards node discovery only: other kinds are not sent.
    net.discover_new(&node(2)).await.unwrap();
    net.discover_delete(&node(2)).await.unwrap();
    net.free_network("n1").await.unwrap();
    net.delete_network("n1").await.unwrap();
    // A kit error (500 {"Err"}) is the client's status error.
    let e = net
        .create_network(&net::CreateNetworkRequest {
            network_id: "bad".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "NetworkDriver.CreateNetwork: no such pool");
    assert_eq!(e.status_error().unwrap().status(), 500);
    assert_eq!(e.plugin_message(), None, "a status error is not a 200 Err");

    let methods: Vec<String> = seen.take().into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        methods,
        [
            "CreateNetwork",
            "AllocateNetwork",
            "GwAllocCheck",
            "CreateEndpoint",
            "EndpointOperInfo",
            "Join",
            "ProgramExternalConnectivity",
            "RevokeExternalConnectivity",
            "Leave",
            "DeleteEndpoint",
            "DiscoverNew",
            "DiscoverDelete",
            "FreeNetwork",
            "DeleteNetwork",
            "CreateNetwork",
        ]
    );
}

#[tokio::test]
async fn network_proxy_sends_libnetworks_exact_bytes() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on(
            "NetworkDriver.GetCapabilities",
            Reply::json(200, r#"{"Scope":"local","ConnectivityScope":"global"}"#),
        )
        .default_reply(Reply::json(200, "{}"));
    let (fake, p) = fake(&tree, "net", "NetworkDriver", script).await;
    let net = NetworkDriver::new(&p).unwrap();

    let caps = net.get_capabilities().await.unwrap();
    assert_eq!(
        (caps.scope.as_str(), caps.connectivity_scope.as_str()),
        ("local", "global")
    );
    net.create_network(&net::CreateNetworkRequest {
        network_id: "n<1>".into(),
        options: Some(BTreeMap::from([
            ("com.docker.network.enable_ipv6".to_owned(), json!(false)),
            ("com.docker.network.generic".to_owned(), json!({"a": "b&c"})),
        ])),
        ipv4_data: Some(vec![net::IpamData {
            address_space: "LocalDefault".into(),
            aux_addresses: Some(BTreeMap::from([("r".to_owned(), "10.0.0.9/24".to_owned())])),
            gateway: Some("10.0.0.1/24".into()),
            pool: Some("10.0.0.0/24".into()),
        }]),
        ipv6_data: None,
    })
    .await
    .unwrap();
    net.allocate_network(&net::AllocateNetworkRequest {
        network_id: "n1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    net.free_network("n1").await.unwrap();
    net.gw_alloc_check(&net::GwAllocCheckRequest { options: None })
        .await
        .unwrap();
    assert_eq!(
        net.create_endpoint(&net::CreateEndpointRequest {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            interface: Some(net::EndpointInterface {
                address: "10.0.0.2/24".into(),
                ..Default::default()
            }),
            options: None,
        })
        .await
        .unwrap(),
        None,
        "no Interface in the reply"
    );
    assert!(net.endpoint_oper_info("n1", "e1").await.unwrap().is_empty());
    net.join(&net::JoinRequest {
        network_id: "n1".into(),
        endpoint_id: "e1".into(),
        sandbox_key: "/var/run/docker/netns/abc".into(),
        options: None,
    })
    .await
    .unwrap();
    net.program_external_connectivity(&net::ProgramExternalConnectivityRequest {
        network_id: "n1".into(),
        endpoint_id: "e1".into(),
        options: sandbox_options(),
    })
    .await
    .unwrap();
    net.revoke_external_connectivity("n1", "e1").await.unwrap();
    net.leave("n1", "e1").await.unwrap();
    net.delete_endpoint("n1", "e1").await.unwrap();
    net.discover_new(&node(net::NODE_DISCOVERY)).await.unwrap();
    net.discover_delete(&node(net::NODE_DISCOVERY))
        .await
        .unwrap();
    net.delete_network("n1").await.unwrap();

    // Go's encoding of libnetwork's api structs: fields in declaration
    // order, nil maps and slices as null, IPAMData as its MarshalJSON map
    // (sorted keys), HTML escaping, a trailing newline; GetCapabilities
    // with nil arguments has no body at all.
    let ids = r#""NetworkID":"n1","EndpointID":"e1""#;
    let discovery = "{\"DiscoveryType\":1,\"DiscoveryData\":{\"Address\":\"192.0.2.4\",\"BindAddress\":\"0.0.0.0\",\"Self\":false}}\n";
    let want: Vec<(&str, String)> = vec![
        ("NetworkDriver.GetCapabilities", String::new()),
        (
            "NetworkDriver.CreateNetwork",
            "{\"NetworkID\":\"n\\u003c1\\u003e\",\"Options\":{\"com.docker.network.enable_ipv6\":false,\
             \"com.docker.network.generic\":{\"a\":\"b\\u0026c\"}},\"IPv4Data\":[{\"AddressSpace\":\
             \"LocalDefault\",\"AuxAddresses\":{\"r\":\"10.0.0.9/24\"},\"Gateway\":\"10.0.0.1/24\",\
             \"Pool\":\"10.0.0.0/24\"}],\"IPv6Data\":null}\n"
                .to_owned(),
        ),
        (
            "NetworkDriver.AllocateNetwork",
            "{\"NetworkID\":\"n1\",\"Options\":null,\"IPv4Data\":null,\"IPv6Data\":null}\n".to_owned(),
        ),
        ("NetworkDriver.FreeNetwork", "{\"NetworkID\":\"n1\"}\n".to_owned()),
        ("NetworkDriver.GwAllocCheck", "{\"Options\":null}\n".to_owned()),
        (
            "NetworkDriver.CreateEndpoint",
            format!(
                "{{{ids},\"Interface\":{{\"Address\":\"10.0.0.2/24\",\"AddressIPv6\":\"\",\
                 \"MacAddress\":\"\"}},\"Options\":null}}\n"
            ),
        ),
        ("NetworkDriver.EndpointOperInfo", format!("{{{ids}}}\n")),
        (
            "NetworkDriver.Join",
            format!("{{{ids},\"SandboxKey\":\"/var/run/docker/netns/abc\",\"Options\":null}}\n"),
        ),
        (
            "NetworkDriver.ProgramExternalConnectivity",
            format!(
                "{{{ids},\"Options\":{{\"com.docker.network.portmap\":[{{\"Port\":80,\"Proto\":6}}]}}}}\n"
            ),
        ),
        ("NetworkDriver.RevokeExternalConnectivity", format!("{{{ids}}}\n")),
        ("NetworkDriver.Leave", format!("{{{ids}}}\n")),
        ("NetworkDriver.DeleteEndpoint", format!("{{{ids}}}\n")),
        ("NetworkDriver.DiscoverNew", discovery.to_owned()),
        ("NetworkDriver.DiscoverDelete", discovery.to_owned()),
        ("NetworkDriver.DeleteNetwork", "{\"NetworkID\":\"n1\"}\n".to_owned()),
    ];
    let got = calls(&fake);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (r, (method, body)) in got.iter().zip(&want) {
        assert_request(r, method, body);
    }
}

#[tokio::test]
async fn network_errors_read_as_libnetworks() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on(
            "NetworkDriver.CreateNetwork",
            Reply::json(200, r#"{"Err":"subnet overlaps"}"#),
        )
        .on("NetworkDriver.Join", Reply::err("sandbox gone"))
        .on(
            "NetworkDriver.ProgramExternalConnectivity",
            Reply::json(200, r#"{"Err":"port 80 taken"}"#),
        )
        .on_seq(
            "NetworkDriver.GetCapabilities",
            [
                Reply::json(200, r#"{"Scope":"cluster"}"#),
                Reply::json(200, r#"{"Scope":"local","ConnectivityScope":"rack"}"#),
                Reply::json(200, "{}"),
                Reply::json(200, r#"{"Scope":"global","Err":"not ready"}"#),
            ],
        );
    let (_fake, p) = fake(&tree, "net", "NetworkDriver", script).await;
    let net = NetworkDriver::new(&p).unwrap();

    // 200 with Err: libnetwork's `remote: ` prefix.
    let e = net
        .create_network(&net::CreateNetworkRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "remote: subnet overlaps");
    assert_eq!(e.plugin_message(), Some("subnet overlaps"));
    assert!(e.status_error().is_none());
    // Non-200: the status error, bare.
    let e = net.join(&net::JoinRequest::default()).await.unwrap_err();
    assert_eq!(e.to_string(), "NetworkDriver.Join: sandbox gone");
    // An optional method's 200 Err is an error all the same.
    let e = net
        .program_external_connectivity(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "remote: port 80 taken");

    // Scopes: libnetwork's checks and texts (the connectivity scope's
    // own value is named: divergence, libnetwork names `Scope` there).
    for want in [
        "invalid capability: expecting 'local' or 'global', got cluster",
        "invalid capability: expecting 'local' or 'global', got rack",
        "invalid capability: expecting 'local' or 'global', got ",
        "remote: not ready",
    ] {
        assert_eq!(net.get_capabilities().await.unwrap_err().to_string(), want);
    }
}

#[tokio::test]
async fn network_optional_methods_accept_404_and_mandatory_ones_do_not() {
    let tree = PluginTree::new();
    // Nothing scripted but the handshake: every method answers Go's 404.
    let script = FakePlugin::builder().activate(&["NetworkDriver"]);
    let (fake, p) = fake(&tree, "net", "NetworkDriver", script).await;
    let net = NetworkDriver::new(&p).unwrap();

    net.program_external_connectivity(&Default::default())
        .await
        .unwrap();
    net.revoke_external_connectivity("n1", "e1").await.unwrap();
    let not_found = |m: &str| format!("NetworkDriver.{m}: 404 page not found\n");
    let e = net.get_capabilities().await.unwrap_err();
    assert_eq!(e.to_string(), not_found("GetCapabilities"));
    assert!(e.is_status_not_found());
    let e = net
        .discover_new(&node(net::NODE_DISCOVERY))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), not_found("DiscoverNew"));
    let e = net
        .discover_delete(&node(net::NODE_DISCOVERY))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), not_found("DiscoverDelete"));
    let e = net.leave("n1", "e1").await.unwrap_err();
    assert_eq!(e.to_string(), not_found("Leave"));
    assert_eq!(
        calls(&fake).len(),
        6,
        "one request each, status errors are not retried"
    );
}

// ---------------------------------------------------------------------------
// IpamDriver
// ---------------------------------------------------------------------------

mod ipam {
    pub(super) use plugin_server::ipam::*;
}

struct KitIpam(Arc<Seen>);

impl ipam::IpamDriver for KitIpam {
    async fn get_capabilities(&self) -> Result<ipam::CapabilitiesResponse, PluginError> {
        Ok(ipam::CapabilitiesResponse {
            requires_mac_address: true,
            requires_request_replay: true,
            ..Default::default()
        })
    }
    async fn get_default_address_spaces(&self) -> Result<ipam::AddressSpacesResponse, PluginError> {
        Ok(ipam::AddressSpacesResponse {
            local_default_address_space: "lan".into(),
            global_default_address_space: "wan".into(),
            ..Default::default()
        })
    }
    async fn request_pool(
        &self,
        req: ipam::RequestPoolRequest,
    ) -> Result<ipam::RequestPoolResponse, PluginError> {
        self.0.push("RequestPool", &req);
        if req.address_space != "lan" {
            return Err(PluginError::new(format!(
                "unknown address space {}",
                req.address_space
            )));
        }
        Ok(ipam::RequestPoolResponse {
            pool_id: format!("lan/{}", req.pool),
            pool: req.pool,
            data: BTreeMap::from([("v6".to_owned(), req.v6.to_string())]),
            ..Default::default()
        })
    }
    async fn release_pool(&self, req: ipam::ReleasePoolRequest) -> Result<(), PluginError> {
        self.0.push("ReleasePool", &req);
        Ok(())
    }
    async fn request_address(
        &self,
        req: ipam::RequestAddressRequest,
    ) -> Result<ipam::RequestAddressResponse, PluginError> {
        self.0.push("RequestAddress", &req);
        let mac = req
            .options
            .as_ref()
            .and_then(|o| o.get(ipam::MAC_ADDRESS_OPTION))
            .cloned()
            .unwrap_or_default();
        Ok(ipam::RequestAddressResponse {
            address: format!("{}/24", req.address),
            data: BTreeMap::from([("mac".to_owned(), mac)]),
            ..Default::default()
        })
    }
    async fn release_address(&self, req: ipam::ReleaseAddressRequest) -> Result<(), PluginError> {
        self.0.push("ReleaseAddress", &req);
        Ok(())
    }
}

#[tokio::test]
async fn ipam_proxy_round_trips_every_method_with_a_kit_plugin() {
    let tree = PluginTree::new();
    let seen = Arc::new(Seen::default());
    let plugin = plugin_server::Plugin::builder()
        .ipam(KitIpam(seen.clone()))
        .build()
        .unwrap();
    let p = kit(&tree, "ipam", "IpamDriver", plugin).await;
    let ipam = IpamDriver::new(&p).unwrap();

    let caps = ipam.get_capabilities().await.unwrap();
    assert!(caps.requires_mac_address && caps.requires_request_replay);
    let spaces = ipam.get_default_address_spaces().await.unwrap();
    assert_eq!(
        (
            spaces.local_default_address_space.as_str(),
            spaces.global_default_address_space.as_str()
        ),
        ("lan", "wan")
    );
    let pool = ipam
        .request_pool(&ipam::RequestPoolRequest {
            address_space: "lan".into(),
            pool: "10.1.0.0/16".into(),
            sub_pool: "10.1.2.0/24".into(),
            options: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
            v6: false,
        })
        .await
        .unwrap();
    assert_eq!(
        (
            pool.pool_id.as_str(),
            pool.pool.as_str(),
            pool.data["v6"].as_str()
        ),
        ("lan/10.1.0.0/16", "10.1.0.0/16", "false")
    );
    let addr = ipam
        .request_address(&ipam::RequestAddressRequest {
            pool_id: pool.pool_id.clone(),
            address: "10.1.2.3".into(),
            options: Some(BTreeMap::from([(
                ipam::MAC_ADDRESS_OPTION.to_owned(),
                "02:42:ac:11:00:02".to_owned(),
            )])),
        })
        .await
        .unwrap();
    assert_eq!(addr.address, "10.1.2.3/24");
    assert_eq!(addr.data["mac"], "02:42:ac:11:00:02");
    ipam.release_address(&pool.pool_id, "10.1.2.3")
        .await
        .unwrap();
    ipam.release_pool(&pool.pool_id).await.unwrap();
    let e = ipam
        .request_pool(&ipam::RequestPoolRequest {
            address_space: "dmz".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "IpamDriver.RequestPool: unknown address space dmz"
    );

    let seen = seen.take();
    let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        [
            "RequestPool",
            "RequestAddress",
            "ReleaseAddress",
            "ReleasePool",
            "RequestPool"
        ]
    );
    assert_eq!(seen[0].1["SubPool"], "10.1.2.0/24");
    assert_eq!(
        seen[2].1,
        json!({"PoolID": "lan/10.1.0.0/16", "Address": "10.1.2.3"})
    );
}

#[tokio::test]
async fn ipam_proxy_sends_libnetworks_exact_bytes_and_reads_error_not_err() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["IpamDriver"])
        .on(
            "IpamDriver.GetCapabilities",
            Reply::json(200, r#"{"RequiresMACAddress":true}"#),
        )
        .on(
            "IpamDriver.GetDefaultAddressSpaces",
            Reply::json(
                200,
                r#"{"LocalDefaultAddressSpace":"l","GlobalDefaultAddressSpace":"g"}"#,
            ),
        )
        .on(
            "IpamDriver.RequestPool",
            // IPAM's error key is `Error`: a 200 `Err` is not an error.
            Reply::json(
                200,
                r#"{"PoolID":"p1","Pool":"10.2.0.0/16","Err":"ignored"}"#,
            ),
        )
        .on_seq(
            "IpamDriver.RequestAddress",
            [
                Reply::json(200, r#"{"Address":"10.2.0.5/16"}"#),
                Reply::json(200, r#"{"Data":{"k":"v"}}"#),
                Reply::json(200, r#"{"Error":"pool p1 is full"}"#),
            ],
        )
        .on("IpamDriver.ReleasePool", Reply::json(200, "{}"))
        .on("IpamDriver.ReleaseAddress", Reply::err("not allocated"));
    let (fake, p) = fake(&tree, "ipam", "IpamDriver", script).await;
    let ipam = IpamDriver::new(&p).unwrap();

    assert!(ipam.get_capabilities().await.unwrap().requires_mac_address);
    assert_eq!(
        ipam.get_default_address_spaces()
            .await
            .unwrap()
            .global_default_address_space,
        "g"
    );
    let pool = ipam
        .request_pool(&ipam::RequestPoolRequest {
            address_space: "l".into(),
            v6: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.pool_id, "p1");
    let gateway = ipam::RequestAddressRequest {
        pool_id: "p1".into(),
        address: String::new(),
        options: Some(BTreeMap::from([(
            ipam::REQUEST_ADDRESS_TYPE_OPTION.to_owned(),
            ipam::GATEWAY_ADDRESS_TYPE.to_owned(),
        )])),
    };
    assert_eq!(
        ipam.request_address(&gateway).await.unwrap().address,
        "10.2.0.5/16"
    );
    // No address in the reply: libnetwork's ErrNoIPReturned.
    let e = ipam.request_address(&gateway).await.unwrap_err();
    assert_eq!(e.to_string(), "no address returned");
    // 200 with `Error`: libnetwork's `remote: ` prefix.
    let e = ipam.request_address(&gateway).await.unwrap_err();
    assert_eq!(e.to_string(), "remote: pool p1 is full");
    assert_eq!(e.plugin_message(), Some("pool p1 is full"));
    ipam.release_pool("p1").await.unwrap();
    let e = ipam.release_address("p1", "10.2.0.5").await.unwrap_err();
    assert_eq!(e.to_string(), "IpamDriver.ReleaseAddress: not allocated");

    let gw = "{\"PoolID\":\"p1\",\"Address\":\"\",\"Options\":{\"RequestAddressType\":\"com.docker.network.gateway\"}}\n";
    let want = [
        ("IpamDriver.GetCapabilities", ""),
        ("IpamDriver.GetDefaultAddressSpaces", ""),
        (
            "IpamDriver.RequestPool",
            "{\"AddressSpace\":\"l\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":null,\"V6\":true}\n",
        ),
        ("IpamDriver.RequestAddress", gw),
        ("IpamDriver.RequestAddress", gw),
        ("IpamDriver.RequestAddress", gw),
        ("IpamDriver.ReleasePool", "{\"PoolID\":\"p1\"}\n"),
        (
            "IpamDriver.ReleaseAddress",
            "{\"PoolID\":\"p1\",\"Address\":\"10.2.0.5\"}\n",
        ),
    ];
    let got = calls(&fake);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (r, (method, body)) in got.iter().zip(want) {
        assert_request(r, method, body);
    }
}

#[tokio::test]
async fn ipam_without_get_capabilities_has_none_and_says_so() {
    let capture = logs::capture();
    let tree = PluginTree::new();
    let script = FakePlugin::builder().activate(&["IpamDriver"]).on_seq(
        "IpamDriver.GetCapabilities",
        [Reply::not_found(), Reply::err("crashed")],
    );
    let (_fake, p) = fake(&tree, "ipam", "IpamDriver", script).await;
    let ipam = IpamDriver::new(&p).unwrap();

    // 404: the method is optional, libnetwork registers the driver
    // without capabilities and logs why.
    let caps = ipam.get_capabilities().await.unwrap();
    assert!(!caps.requires_mac_address && !caps.requires_request_replay);
    assert_eq!(
        capture.at(tracing::Level::INFO),
        ["remote ipam driver ipam does not support capabilities"],
        "{:?}",
        capture.lines()
    );
    assert_eq!(
        capture
            .find(
                tracing::Level::DEBUG,
                "IpamDriver.GetCapabilities: 404 page not found"
            )
            .len(),
        1
    );
    // Any other failure is returned.
    let e = ipam.get_capabilities().await.unwrap_err();
    assert_eq!(e.to_string(), "IpamDriver.GetCapabilities: crashed");
    // Mandatory methods: a 404 is an error.
    let e = ipam.get_default_address_spaces().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "IpamDriver.GetDefaultAddressSpaces: 404 page not found\n"
    );
}

// ---------------------------------------------------------------------------
// MetricsCollector
// ---------------------------------------------------------------------------

#[derive(Default)]
struct KitMetrics {
    started: AtomicUsize,
    stopped: AtomicUsize,
}

impl plugin_server::metrics::MetricsCollector for KitMetrics {
    async fn start_metrics(&self) -> Result<(), PluginError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn stop_metrics(&self) -> Result<(), PluginError> {
        self.stopped.fetch_add(1, Ordering::SeqCst);
        Err(PluginError::new("not running"))
    }
}

#[tokio::test]
async fn metrics_proxy_against_a_kit_plugin() {
    let tree = PluginTree::new();
    let counters = Arc::new(KitMetrics::default());
    let plugin = plugin_server::Plugin::builder()
        .metrics(counters.clone())
        .build()
        .unwrap();
    let p = kit(&tree, "prom", "MetricsCollector", plugin).await;
    let metrics = MetricsCollector::new(&p).unwrap();
    metrics.start_metrics().await.unwrap();
    let e = metrics.stop_metrics().await.unwrap_err();
    assert_eq!(e.to_string(), "MetricsCollector.StopMetrics: not running");
    assert_eq!(
        (
            counters.started.load(Ordering::SeqCst),
            counters.stopped.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn metrics_calls_have_empty_bodies_and_their_replies_are_never_read() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["MetricsCollector"])
        .on_seq(
            "MetricsCollector.StartMetrics",
            [
                // moby master (daemon/internal/metrics) reads neither body:
                // a 200 Err, a non-JSON or an empty body all succeed.
                Reply::json(200, r#"{"Err":"no socket"}"#),
                Reply::text(200, "not json"),
                Reply::text(200, ""),
                Reply::err("boom"),
            ],
        )
        .on("MetricsCollector.StopMetrics", Reply::text(200, "ok"));
    let (fake, p) = fake(&tree, "prom", "MetricsCollector", script).await;
    let metrics = MetricsCollector::new(&p).unwrap();
    for _ in 0..3 {
        metrics.start_metrics().await.unwrap();
    }
    let e = metrics.start_metrics().await.unwrap_err();
    assert_eq!(e.to_string(), "MetricsCollector.StartMetrics: boom");
    metrics.stop_metrics().await.unwrap();
    let got = calls(&fake);
    assert_eq!(got.len(), 5);
    for r in &got[..4] {
        assert_request(r, "MetricsCollector.StartMetrics", "");
    }
    assert_request(&got[4], "MetricsCollector.StopMetrics", "");
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn proxies_need_an_activated_plugin_of_their_kind() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder().activate(&["VolumeDriver"]);
    let (fake, p) = fake(&tree, "vol", "VolumeDriver", script).await;
    assert!(VolumeDriver::new(&p).is_ok());
    let errors = [
        NetworkDriver::new(&p).map(drop).unwrap_err(),
        IpamDriver::new(&p).map(drop).unwrap_err(),
        LogDriver::new(&p).map(drop).unwrap_err(),
        MetricsCollector::new(&p).map(drop).unwrap_err(),
    ];
    for (e, kind) in errors.iter().zip([
        "NetworkDriver",
        "IpamDriver",
        "LogDriver",
        "MetricsCollector",
    ]) {
        assert!(e.is_not_implemented(), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "Plugin does not implement the requested driver: plugin=\"vol\", \
                 requested implementation=\"{kind}\""
            )
        );
    }
    assert_eq!(calls(&fake).len(), 0, "nothing is called to build a proxy");
}

// ---------------------------------------------------------------------------
// LogDriver: calls and ReadLogs
// ---------------------------------------------------------------------------

mod logd {
    pub(super) use plugin_server::log::*;
}

fn entry(i: i64, line: &str) -> LogEntry {
    LogEntry {
        source: if i % 2 == 0 { "stdout" } else { "stderr" }.into(),
        time_nano: 1_700_000_000_000_000_000 + i,
        line: line.as_bytes().to_vec(),
        partial: i == 3,
        partial_log_metadata: (i == 3).then(|| PartialLogEntryMetadata {
            last: false,
            id: "p".into(),
            ordinal: 1,
        }),
    }
}

fn frames(entries: &[LogEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        encode_frame(e, &mut out).unwrap();
    }
    out
}

fn container() -> logd::Info {
    logd::Info {
        config: Some(BTreeMap::from([("tag".to_owned(), "web".to_owned())])),
        container_id: "c0ffee".into(),
        container_name: "/web".into(),
        container_entrypoint: "nginx".into(),
        container_args: Some(vec!["-g".into()]),
        container_image_id: "sha256:0f".into(),
        container_image_name: "nginx:latest".into(),
        container_created: GoTime::parse("2024-05-06T07:08:09.5Z").unwrap(),
        container_env: None,
        container_labels: None,
        log_path: String::new(),
        daemon_name: "docker".into(),
    }
}

/// A kit logging plugin that keeps its entries in memory and reads each
/// FIFO it is given on a task of its own.
#[derive(Clone, Default)]
struct KitLog(Arc<LogState>);

#[derive(Default)]
struct LogState {
    seen: Seen,
    entries: Mutex<Vec<LogEntry>>,
    /// Open the FIFO with a plain blocking open inside `StartLogging`, as
    /// Docker's example plugins do, instead of after answering.
    open_in_handler: bool,
}

impl LogState {
    async fn wait_for(&self, n: usize) -> Vec<LogEntry> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.entries.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(MS(5)).await;
        }
    }
}

async fn drain(this: Arc<LogState>, mut fifo: tokio::net::unix::pipe::Receiver) {
    use tokio::io::AsyncReadExt;
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0; 7]; // small reads: frames arrive in pieces
    while let Ok(n) = fifo.read(&mut buf).await {
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Ok(Some(e)) = decoder.next_entry() {
            this.entries.lock().unwrap().push(e);
        }
    }
}

impl logd::LogDriver for KitLog {
    async fn start_logging(&self, req: logd::StartLoggingRequest) -> Result<(), PluginError> {
        self.0.seen.push("StartLogging", &req);
        let path = PathBuf::from(&req.file);
        let fifo = if self.0.open_in_handler {
            // A detached thread, not `spawn_blocking`: if the engine never
            // opened its end, the test fails instead of the runtime hanging
            // at shutdown on a thread stuck in open(2).
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || tx.send(std::fs::File::open(path)));
            let file = rx
                .await
                .unwrap()
                .map_err(|e| PluginError::new(e.to_string()))?;
            tokio::net::unix::pipe::Receiver::from_file(file)
        } else {
            tokio::net::unix::pipe::OpenOptions::new().open_receiver(&path)
        }
        .map_err(|e| PluginError::new(e.to_string()))?;
        tokio::spawn(drain(self.0.clone(), fifo));
        Ok(())
    }
    async fn stop_logging(&self, req: logd::StopLoggingRequest) -> Result<(), PluginError> {
        self.0.seen.push("StopLogging", &req);
        Ok(())
    }
    async fn capabilities(&self) -> Result<logd::CapabilitiesResponse, PluginError> {
        Ok(logd::CapabilitiesResponse {
            cap: logd::Capability { read_logs: true },
            ..Default::default()
        })
    }
    async fn read_logs(&self, req: logd::ReadLogsRequest) -> Result<KitReply, PluginError> {
        self.0.seen.push("ReadLogs", &req);
        let stored = self.0.entries.lock().unwrap().clone();
        Ok(KitReply::stream(std::io::Cursor::new(frames(&stored))))
    }
}

async fn kit_log(tree: &PluginTree, open_in_handler: bool) -> (Arc<LogState>, LogDriver) {
    let driver = Arc::new(LogState {
        open_in_handler,
        ..LogState::default()
    });
    let plugin = plugin_server::Plugin::builder()
        .log(KitLog(driver.clone()))
        .build()
        .unwrap();
    let p = kit(tree, "logger", "LogDriver", plugin).await;
    (driver, LogDriver::new(&p).unwrap())
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[tokio::test]
async fn log_calls_and_read_logs_against_a_kit_plugin() {
    let tree = PluginTree::new();
    let (driver, log) = kit_log(&tree, false).await;
    assert!(log.capabilities().await.unwrap().read_logs);

    // Entries the plugin stored come back decoded, in order.
    let stored: Vec<LogEntry> = (0..5).map(|i| entry(i, &format!("line {i}"))).collect();
    driver.entries.lock().unwrap().extend(stored.clone());
    let mut stream = log
        .read_logs(&container(), &logd::ReadConfig::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(e) = stream.next_entry().await.unwrap() {
        got.push(e);
    }
    assert_eq!(got, stored);
    assert_eq!(stream.next_entry().await.unwrap(), None, "ended for good");

    // Since and Until are applied again, as Docker's adapter does.
    let config = logd::ReadConfig {
        since: GoTime::from_unix_nanos(stored[1].time_nano),
        until: GoTime::from_unix_nanos(stored[3].time_nano),
        tail: -1,
        follow: false,
    };
    let mut stream = log.read_logs(&container(), &config).await.unwrap();
    let mut got = Vec::new();
    while let Some(e) = stream.next_entry().await.unwrap() {
        got.push(e);
    }
    assert_eq!(got, stored[1..=3]);
    let seen = driver.seen.take();
    assert_eq!(seen[1].0, "ReadLogs");
    assert_eq!(seen[1].1["Info"]["ContainerID"], "c0ffee");
    assert_eq!(seen[1].1["Config"]["Tail"], -1);
}

#[tokio::test]
async fn log_calls_send_dockers_exact_bytes_and_keep_its_texts() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["LogDriver"])
        .on_seq(
            "LogDriver.StartLogging",
            [Reply::ok(), Reply::json(200, r#"{"Err":"disk full"}"#)],
        )
        .on("LogDriver.StopLogging", Reply::err("unknown file"))
        .on(
            "LogDriver.Capabilities",
            Reply::json(200, r#"{"Cap":{"ReadLogs":true}}"#),
        )
        .on(
            "LogDriver.ReadLogs",
            Reply::chunked(200, [frames(&[entry(0, "a")])]),
        );
    let (fake, p) = fake(&tree, "logger", "LogDriver", script).await;
    let log = LogDriver::new(&p).unwrap();

    log.start_logging("/run/docker/logging/abc", &container())
        .await
        .unwrap();
    // 200 with Err: the plugin's message alone (Docker's log proxy).
    let e = log
        .start_logging("/run/docker/logging/abc", &container())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "disk full");
    let e = log
        .stop_logging("/run/docker/logging/abc")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "LogDriver.StopLogging: unknown file");
    assert!(log.capabilities().await.unwrap().read_logs);
    let mut stream = log
        .read_logs(&container(), &logd::ReadConfig::default())
        .await
        .unwrap();
    assert_eq!(stream.next_entry().await.unwrap(), Some(entry(0, "a")));
    assert_eq!(stream.next_entry().await.unwrap(), None);

    // logger.Info in Go's field order, nil slices and maps as null, the
    // creation time in RFC 3339 with nanoseconds; ReadConfig's zero times
    // as Go's zero time; ReadLogs is a Stream call (always a body).
    let info = "{\"Config\":{\"tag\":\"web\"},\"ContainerID\":\"c0ffee\",\"ContainerName\":\"/web\",\
                \"ContainerEntrypoint\":\"nginx\",\"ContainerArgs\":[\"-g\"],\"ContainerImageID\":\
                \"sha256:0f\",\"ContainerImageName\":\"nginx:latest\",\"ContainerCreated\":\
                \"2024-05-06T07:08:09.5Z\",\"ContainerEnv\":null,\"ContainerLabels\":null,\
                \"LogPath\":\"\",\"DaemonName\":\"docker\"}";
    let start = format!("{{\"File\":\"/run/docker/logging/abc\",\"Info\":{info}}}\n");
    let read = format!(
        "{{\"Info\":{info},\"Config\":{{\"Since\":\"0001-01-01T00:00:00Z\",\
         \"Until\":\"0001-01-01T00:00:00Z\",\"Tail\":0,\"Follow\":false}}}}\n"
    );
    let want = [
        ("LogDriver.StartLogging", start.as_str()),
        ("LogDriver.StartLogging", start.as_str()),
        (
            "LogDriver.StopLogging",
            "{\"File\":\"/run/docker/logging/abc\"}\n",
        ),
        ("LogDriver.Capabilities", ""),
        ("LogDriver.ReadLogs", read.as_str()),
    ];
    let got = calls(&fake);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (r, (method, body)) in got.iter().zip(want) {
        assert_request(r, method, body);
    }
}

#[tokio::test]
async fn read_logs_decodes_split_frames_and_reports_cut_and_garbled_ones() {
    let tree = PluginTree::new();
    let stored: Vec<LogEntry> = (0..4)
        .map(|i| entry(i, &"x".repeat(40 + i as usize)))
        .collect();
    let bytes = frames(&stored);
    // Chunks cut inside a length prefix and inside a body.
    let split = vec![
        bytes[..2].to_vec(),
        bytes[2..30].to_vec(),
        bytes[30..31].to_vec(),
        bytes[31..].to_vec(),
    ];
    let mut cut = frames(&stored[..2]);
    cut.extend_from_slice(&frames(&stored[2..3])[..9]);
    let mut garbled = frames(&stored[..1]);
    garbled.extend_from_slice(&[0, 0, 0, 2, 0, 0]); // field number 0
    let script = FakePlugin::builder().activate(&["LogDriver"]).on_seq(
        "LogDriver.ReadLogs",
        [
            Reply::chunked(200, split),
            Reply::chunked(200, [cut]),
            Reply::chunked(200, [garbled]),
            Reply::chunked(200, [vec![0u8, 0]]),
            Reply::not_found(),
        ],
    );
    let (_fake, p) = fake(&tree, "logger", "LogDriver", script).await;
    let log = LogDriver::new(&p).unwrap();
    let config = logd::ReadConfig::default();

    let mut s = log.read_logs(&container(), &config).await.unwrap();
    let mut got = Vec::new();
    while let Some(e) = s.next_entry().await.unwrap() {
        got.push(e);
    }
    assert_eq!(got, stored, "frames split across reads come out whole");

    // A stream cut inside a frame: the entries before it, then Go's text.
    let mut s = log.read_logs(&container(), &config).await.unwrap();
    assert_eq!(s.next_entry().await.unwrap().as_ref(), Some(&stored[0]));
    assert_eq!(s.next_entry().await.unwrap().as_ref(), Some(&stored[1]));
    let e = s.next_entry().await.unwrap_err();
    assert_eq!(e.to_string(), "error decoding log message: unexpected EOF");
    assert_eq!(
        s.next_entry().await.unwrap(),
        None,
        "no entry after an error"
    );

    // A frame that is not a LogEntry.
    let mut s = log.read_logs(&container(), &config).await.unwrap();
    assert_eq!(s.next_entry().await.unwrap().as_ref(), Some(&stored[0]));
    let e = s.next_entry().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "error decoding log message: proto: LogEntry: illegal tag 0 (wire type 0)"
    );

    // Cut inside the length prefix.
    let mut s = log.read_logs(&container(), &config).await.unwrap();
    let e = s.next_entry().await.unwrap_err();
    assert_eq!(e.to_string(), "error decoding log message: unexpected EOF");

    // The call itself failing: Docker's adapter's text around the status error.
    let e = log.read_logs(&container(), &config).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "error getting log reader: LogDriver.ReadLogs: 404 page not found\n"
    );
    assert!(
        e.is_status_not_found(),
        "predicates see through the context"
    );
}

// ---------------------------------------------------------------------------
// LogDriver: the engine's FIFO writer
// ---------------------------------------------------------------------------

async fn write_and_check(tree: &PluginTree, open_in_handler: bool) {
    let (driver, log) = kit_log(tree, open_in_handler).await;
    let path = tree.path("logging/c0ffee");
    let open = log.open_writer(&path, container(), Duration::from_secs(5));
    let mut writer = tokio::time::timeout(Duration::from_secs(10), open)
        .await
        .expect("open_writer deadlocked with the plugin's open")
        .unwrap();
    assert!(is_fifo(&path), "the FIFO exists while logging");
    assert_eq!(writer.path(), path);
    assert!(writer.capabilities().read_logs);
    assert_eq!(writer.info().container_id, "c0ffee");
    let sent: Vec<LogEntry> = (0..20).map(|i| entry(i, &format!("message {i}"))).collect();
    for e in &sent {
        writer.write(e).await.unwrap();
    }
    assert_eq!(driver.wait_for(sent.len()).await, sent);

    writer.close().await.unwrap();
    assert!(!path.exists(), "close removes the FIFO");
    let seen = driver.seen.take();
    let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["StartLogging", "StopLogging"]);
    let file = path.to_str().unwrap();
    assert_eq!(seen[0].1["File"], file);
    assert_eq!(seen[0].1["Info"]["ContainerName"], "/web");
    assert_eq!(seen[1].1, json!({ "File": file }));
}

#[tokio::test]
async fn log_writer_frames_entries_into_a_fifo_the_plugin_reads() {
    let tree = PluginTree::new();
    write_and_check(&tree, false).await;
}

#[tokio::test]
async fn log_writer_works_with_a_plugin_that_opens_the_fifo_inside_start_logging() {
    // A blocking open of the read end waits for a writer: the engine must
    // open its end while StartLogging is in flight, not after.
    let tree = PluginTree::new();
    write_and_check(&tree, true).await;
}

// The paused clock: the writer's wait for a reader is a deadline, exact to
// the millisecond.
#[tokio::test(start_paused = true)]
async fn log_writer_gives_up_on_a_plugin_that_never_opens_the_fifo() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["LogDriver"])
        .on("LogDriver.StartLogging", Reply::ok())
        .on("LogDriver.StopLogging", Reply::ok());
    let (fake, p) = fake(&tree, "mute", "LogDriver", script).await;
    let path = tree.path("logging/c1");
    let started = tokio::time::Instant::now();
    let e = LogDriver::new(&p)
        .unwrap()
        .open_writer(&path, container(), MS(200))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), MS(200), "bounded, not a hang");
    assert_eq!(
        e.to_string(),
        format!(
            "error creating logger: log plugin mute did not open {} for reading within 200ms",
            path.display()
        )
    );
    assert!(e.is_timeout());
    assert!(!path.exists(), "the FIFO is removed");
    let routes: Vec<String> = calls(&fake).iter().map(Recorded::route).collect();
    assert_eq!(
        routes,
        [
            "/LogDriver.Capabilities",
            "/LogDriver.StartLogging",
            "/LogDriver.StopLogging"
        ],
        "capabilities first (their 404 means none), StopLogging to undo the start"
    );
}

#[tokio::test(start_paused = true)]
async fn log_writer_start_failures_and_stop_failures() {
    let tree = PluginTree::new();
    let script = FakePlugin::builder()
        .activate(&["LogDriver"])
        .on_seq(
            "LogDriver.StartLogging",
            [Reply::json(200, r#"{"Err":"no quota"}"#), Reply::ok()],
        )
        .on("LogDriver.StopLogging", Reply::err("already stopped"));
    let (_fake, p) = fake(&tree, "logger", "LogDriver", script).await;
    let log = LogDriver::new(&p).unwrap();
    let path = tree.path("logging/c2");

    // StartLogging fails: Docker's text, no wait for a reader, no FIFO left.
    let started = tokio::time::Instant::now();
    let e = log
        .open_writer(&path, container(), Duration::from_secs(20))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "error creating logger: no quota");
    assert_eq!(e.plugin_message(), Some("no quota"));
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait for a reader");
    assert!(!path.exists());

    // The FIFO cannot be made: Docker's text, the OS error inside it.
    std::fs::write(&path, b"in the way").unwrap();
    let e = log
        .open_writer(&path, container(), MS(200))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "error creating i/o pipe for log plugin: logger: mkfifo {}: File exists (os error 17)",
            path.display()
        )
    );
    std::fs::remove_file(&path).unwrap();

    // A plugin reading the FIFO (here the test), then failing StopLogging:
    // the error comes back, and the FIFO is removed all the same.
    let reader = {
        let path = path.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(r) = tokio::net::unix::pipe::OpenOptions::new().open_receiver(&path) {
                    return r;
                }
                tokio::time::sleep(MS(2)).await;
            }
        })
    };
    let mut writer = log
        .open_writer(&path, container(), Duration::from_secs(5))
        .await
        .unwrap();
    let mut reader = reader.await.unwrap();
    writer.write(&entry(0, "hello")).await.unwrap();
    let mut buf = [0u8; 64];
    let n = {
        use tokio::io::AsyncReadExt;
        reader.read(&mut buf).await.unwrap()
    };
    assert_eq!(&buf[..n], frames(&[entry(0, "hello")]));
    let e = writer.close().await.unwrap_err();
    assert_eq!(e.to_string(), "LogDriver.StopLogging: already stopped");
    assert!(!path.exists(), "removed even though StopLogging failed");
}

#[tokio::test]
async fn a_dropped_log_writer_removes_its_fifo() {
    let tree = PluginTree::new();
    let (_driver, log) = kit_log(&tree, false).await;
    let path = tree.path("logging/c3");
    let writer = log
        .open_writer(&path, container(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(is_fifo(&path));
    drop(writer);
    assert!(!path.exists());
}

#[tokio::test]
async fn proxies_call_through_the_plugins_own_client_so_dead_plugins_are_evicted() {
    // Divergence D11 applies to proxies too: their calls run on the
    // registry's client (its retry policy, its eviction hook), and a plugin
    // they cannot reach is forgotten.
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .activate(&["IpamDriver", "MetricsCollector"])
        .unix(tree.path("run/gone.sock"))
        .await;
    let reg = registry(&tree);
    let p = reg.get("gone", "IpamDriver").await.unwrap();
    let ipam = IpamDriver::new(&p).unwrap();
    let metrics = MetricsCollector::new(&p).unwrap();
    fake.shutdown().await;
    let e = ipam.release_pool("p1").await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(reg.plugins().is_empty(), "evicted");
    assert!(metrics.stop_metrics().await.unwrap_err().is_connect());
}

// ---------------------------------------------------------------------------
// Calls that time out against a plugin that moved (divergence D11)
// ---------------------------------------------------------------------------

/// The registry's policy for these tests: one attempt per call, bounded.
fn bounded_calls(tree: &PluginTree) -> Registry {
    let mut policy = Policy::default().with_retry(RetryPolicy::none());
    policy.call_timeout = Some(MS(200));
    Registry::new(tree.registry(), policy)
}

/// A plugin restarted on another port while its old instance is wedged
/// (still accepting, never answering): the proxy's call to the cached
/// address times out, and since the plugin's spec now names another
/// address, the registry forgets it, so the next lookup and call reach the
/// plugin where it now lives. Before, only a connection failure evicted,
/// and a wedged instance kept every call going to it.
#[tokio::test(start_paused = true)]
async fn a_volume_call_timing_out_where_the_plugin_no_longer_lives_is_followed_by_one_reaching_its_new_home()
 {
    let tree = PluginTree::new();
    let wedged = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on("/VolumeDriver.Get", Reply::hang())
        .tcp()
        .await;
    tree.write_spec(0, "mover", &wedged.address());
    let reg = bounded_calls(&tree);
    let plugin = reg.get("mover", "VolumeDriver").await.unwrap();
    let mut events = reg.subscribe();

    let moved = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "/VolumeDriver.Get",
            Reply::json(200, r#"{"Volume":{"Name":"v1"}}"#),
        )
        .tcp()
        .await;
    tree.write_spec(0, "mover", &moved.address());

    let volumes = VolumeDriver::new(&plugin).unwrap();
    let start = tokio::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), volumes.get("v1"))
        .await
        .expect("bounded by the call timeout")
        .unwrap_err();
    assert_eq!(start.elapsed(), MS(200), "the call timeout");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(wedged.count("/VolumeDriver.Get"), 1);
    assert!(reg.plugins().is_empty(), "the wedged plugin is forgotten");
    match events.try_recv().unwrap() {
        Event::Evicted {
            name,
            reason: Eviction::Moved { error },
        } => {
            assert_eq!(name, "mover");
            assert!(error.contains("context deadline exceeded"), "{error}");
        }
        other => panic!("unexpected event {other:?}"),
    }

    let found = reg.get("mover", "VolumeDriver").await.unwrap();
    assert_eq!(found.address().as_str(), moved.address());
    let volume = VolumeDriver::new(&found).unwrap().get("v1").await.unwrap();
    assert_eq!(volume.unwrap().name, "v1");
    assert_eq!(moved.count("/VolumeDriver.Get"), 1);
    assert_eq!(wedged.count("/VolumeDriver.Get"), 1, "not asked again");
}

/// D11 evicts only a plugin that died or moved: one that is merely slow at
/// the address its files still name is kept, activated once, and answers
/// the next call.
#[tokio::test(start_paused = true)]
async fn a_network_call_timing_out_against_a_slow_plugin_at_the_same_address_keeps_it() {
    let tree = PluginTree::new();
    let slow = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on(
            "/NetworkDriver.CreateNetwork",
            Reply::delay(Duration::from_secs(2), Reply::json(200, "{}")),
        )
        .unix(tree.path("run/slow.sock"))
        .await;
    let reg = bounded_calls(&tree);
    let plugin = reg.get("slow", "NetworkDriver").await.unwrap();
    let mut events = reg.subscribe();
    let request = plugin_registry::proto::network::CreateNetworkRequest {
        network_id: "n1".into(),
        ..Default::default()
    };
    let network = NetworkDriver::new(&plugin).unwrap();
    let start = tokio::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), network.create_network(&request))
        .await
        .expect("bounded by the call timeout")
        .unwrap_err();
    assert_eq!(start.elapsed(), MS(200), "the call timeout");
    assert!(err.is_timeout(), "{err}");

    assert!(events.try_recv().is_err(), "no eviction");
    let again = reg.get("slow", "NetworkDriver").await.unwrap();
    assert!(Arc::ptr_eq(&plugin, &again), "the same activated plugin");
    slow.on("/NetworkDriver.CreateNetwork", Reply::json(200, "{}"));
    NetworkDriver::new(&again)
        .unwrap()
        .create_network(&request)
        .await
        .unwrap();
    assert_eq!(slow.count("/Plugin.Activate"), 1);
    assert_eq!(slow.count("/NetworkDriver.CreateNetwork"), 2);
}

/// A direct `plugin.client().call(..)` with a deadline, against a plugin
/// whose socket vanished (it moved to tcp): the deadline ends the retries
/// the policy would run for 30 s, the call says it timed out and what it
/// tried, and the registry still evicts the dead plugin, so the next
/// lookup finds its new address.
#[tokio::test(start_paused = true)]
async fn a_deadline_cut_call_to_a_vanished_plugin_still_evicts_it() {
    let tree = PluginTree::new();
    let socket = tree.path("run/gone.sock");
    let first = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .unix(&socket)
        .await;
    // Docker's retry budget: without the deadline the call would retry
    // for 15 s.
    let policy = Policy::default().with_retry(RetryPolicy::docker());
    let reg = Registry::new(tree.registry(), policy);
    let plugin = reg.get("gone", "VolumeDriver").await.unwrap();
    let mut events = reg.subscribe();

    first.shutdown().await;
    std::fs::remove_file(&socket).ok();
    let moved = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on("/VolumeDriver.List", Reply::json(200, r#"{"Volumes":[]}"#))
        .tcp()
        .await;
    tree.write_spec(0, "gone", &moved.address());

    let start = tokio::time::Instant::now();
    let list = plugin_registry::proto::volume::ListRequest {};
    let err = plugin
        .client()
        .call(&list)
        .deadline(MS(300))
        .await
        .unwrap_err();
    // The first retry, 1 s away, would start past the deadline: the call
    // ends at once.
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(err.is_deadline() && err.is_connect(), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "VolumeDriver.List: no answer within 300ms: Post \"http://plugin.moby.localhost/VolumeDriver.List\": dial unix "
        ),
        "{err}"
    );
    assert!(matches!(
        events.try_recv().unwrap(),
        Event::Evicted {
            reason: Eviction::Unreachable { .. },
            ..
        }
    ));
    let found = reg.get("gone", "VolumeDriver").await.unwrap();
    assert_eq!(found.address().as_str(), moved.address());
    found.client().call(&list).await.unwrap();
    assert_eq!(moved.count("/VolumeDriver.List"), 1);
}

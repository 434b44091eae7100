//! dockerd (their engine) as network and IPAM host for our example plugins
//! `memnet` (a network driver) and `simple-ipam`: the calls `docker network
//! create / inspect / rm` make, and how dockerd's default-pool loop
//! (libnetwork#1386) meets a plugin that never feeds it.
//!
//! The calls and replies of the lifecycle are kept as test vectors
//! (`dockerd-20.10-network-requests.json`), replayed to fresh plugins and
//! through plugin-registry's `NetworkDriver` and `IpamDriver` proxies.
//!
//! Every dockerd here runs in mount and network namespaces of its own
//! (`unshare -m -n`): it finds only the plugins the test serves, and its
//! host routes are the ones the test adds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use memnet::MemNet;
use plugin_proto::{ipam, network};
use plugin_server::Plugin;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use simple_ipam::SimpleIpam;

use super::harness::{Dockerd, Isolation, require, unique_name};
use super::served::{Call, Calls, Served, socket_dir};
use super::wire::{assert_reencodes, bless_or_load};

/// The calls, one per line, for failure messages.
fn show(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| {
            format!(
                "{} {} {} -> {:?}\n",
                c.plugin,
                c.method,
                String::from_utf8_lossy(&c.body).trim_end(),
                c.reply
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            )
        })
        .collect()
}

/// The test vectors: every call dockerd made to memnet and simple-ipam in
/// [`dockerd_network_lifecycle_with_memnet_and_simple_ipam`], with the
/// plugin's reply, for replaying through our own engine side.
/// `INTEROP_BLESS=1` rewrites the file from a live run.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NetworkVectors {
    /// How to regenerate the file.
    pub(crate) comment: String,
    /// The daemon's version.
    pub(crate) dockerd: String,
    /// Every call, in order.
    pub(crate) calls: Vec<Exchange>,
}

/// One call and its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Exchange {
    /// `memnet` or `simple-ipam` (the test's plugin names vary).
    pub(crate) plugin: String,
    /// `Subsystem.Method`.
    pub(crate) method: String,
    /// The body dockerd sent.
    pub(crate) body: String,
    /// The reply body, or the plugin error's message.
    pub(crate) reply: Result<String, String>,
}

pub(crate) fn network_vectors_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("it/interop/dockerd-20.10-network-requests.json")
}

pub(crate) fn load_network_vectors() -> NetworkVectors {
    let text = std::fs::read_to_string(network_vectors_path()).expect("read the network vectors");
    serde_json::from_str(&text).expect("parse the network vectors")
}

/// A call's JSON with the run's network ids replaced by `<id>`.
fn without_ids(e: &Exchange) -> Value {
    let mut v = serde_json::to_value(e).unwrap();
    if let Some(body) = v["body"].as_str().filter(|b| !b.is_empty()) {
        let mut body: Value = serde_json::from_str(body).unwrap();
        if body.get("NetworkID").is_some() {
            body["NetworkID"] = json!("<id>");
        }
        v["body"] = body;
    }
    v
}

/// The methods called, in order.
fn methods(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.method.as_str()).collect()
}

/// Each body decodes into plugin-proto's request type and re-encodes to
/// dockerd's bytes exactly; `GetCapabilities` and `GetDefaultAddressSpaces`
/// come without a body.
fn assert_bodies_are_proto(calls: &[Call]) {
    for c in calls {
        match c.method.as_str() {
            network::GET_CAPABILITIES
            | ipam::GET_CAPABILITIES
            | ipam::GET_DEFAULT_ADDRESS_SPACES => {
                assert!(c.body.is_empty(), "{} has a body: {:?}", c.method, c.body);
            }
            network::CREATE_NETWORK => assert_reencodes::<network::CreateNetworkRequest>(&c.body),
            network::DELETE_NETWORK => assert_reencodes::<network::DeleteNetworkRequest>(&c.body),
            ipam::REQUEST_POOL => assert_reencodes::<ipam::RequestPoolRequest>(&c.body),
            ipam::RELEASE_POOL => assert_reencodes::<ipam::ReleasePoolRequest>(&c.body),
            ipam::REQUEST_ADDRESS => assert_reencodes::<ipam::RequestAddressRequest>(&c.body),
            ipam::RELEASE_ADDRESS => assert_reencodes::<ipam::ReleaseAddressRequest>(&c.body),
            other => panic!("unexpected call {other}"),
        }
    }
}

/// memnet as `net` and simple-ipam (pools from `range`, host routes read
/// from `routes`) as `ipam`, in `dir`, both recorded in `calls`.
fn serve_pair(
    dir: &Path,
    (net, ipam): (&str, &str),
    range: &str,
    routes: &Path,
    calls: &Calls,
) -> (Arc<MemNet>, Arc<SimpleIpam>, Served, Served) {
    let memnet = Arc::new(MemNet::new());
    let simple = Arc::new(SimpleIpam::new(range.parse().unwrap()).route_table(routes));
    let net_plugin = Plugin::builder().network(memnet.clone()).build().unwrap();
    let ipam_plugin = Plugin::builder().ipam(simple.clone()).build().unwrap();
    let a = Served::start(dir, net, net_plugin, calls);
    let b = Served::start(dir, ipam, ipam_plugin, calls);
    (memnet, simple, a, b)
}

/// A route table with no routes, for a simple-ipam that must not know
/// dockerd's.
fn no_routes(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("no-routes");
    std::fs::write(&path, "").unwrap();
    path
}

/// A failed docker command's stderr.
async fn docker_err<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    dockerd: &Dockerd,
    args: &[S],
) -> String {
    let out = dockerd.docker(args).await;
    assert!(!out.status.success(), "docker {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Issue 15: `docker network create` with every IPAM and driver setting,
/// `inspect`, two creates without a subnet, an exhausted range, a create
/// memnet refuses, an overlapping subnet and `rm`, against one dockerd:
/// the calls come in libnetwork's order with the right bodies (each
/// re-encoded byte for byte by plugin-proto), dockerd shows what the
/// plugins chose, and after `rm` both plugins hold nothing. Then dockerd's
/// own `bridge` driver with simple-ipam: the bridge gets simple-ipam's
/// gateway.
#[tokio::test]
async fn dockerd_network_lifecycle_with_memnet_and_simple_ipam() {
    let test = "dockerd_network_lifecycle_with_memnet_and_simple_ipam";
    let Some(bins) = require(test, &["dockerd", "docker", "unshare", "ip", "nsenter"]) else {
        return;
    };
    let dir = socket_dir();
    let calls = Calls::default();
    let (net, ipam) = (unique_name("net"), unique_name("ipam"));
    let routes = no_routes(dir.path());
    let (memnet, simple, p1, p2) =
        serve_pair(dir.path(), (&net, &ipam), "10.77.0.0/23", &routes, &calls);
    let dockerd = Dockerd::start_isolated(
        &bins[0],
        &Isolation {
            socket_dir: dir.path(),
            spec_dir: None,
            netns: true,
            routes: &[],
            authz: &[],
        },
    );

    let create = |name: &'static str| {
        vec![
            "network",
            "create",
            "-d",
            &net,
            "--ipam-driver",
            &ipam,
            name,
        ]
    };
    let mut full = create("n1");
    full.splice(
        6..6,
        [
            "--subnet",
            "10.9.0.0/24",
            "--gateway",
            "10.9.0.254",
            "--aux-address",
            "host1=10.9.0.10",
            "--ipam-opt",
            "color=blue",
            "-o",
            "mtu=1400",
            "-o",
            "memnet.k=<v>",
        ],
    );
    let id1 = dockerd.docker_ok(&full).await.trim().to_owned();
    let c = calls.take();
    assert_eq!(
        methods(&c),
        [
            "NetworkDriver.GetCapabilities",
            "IpamDriver.GetCapabilities",
            "IpamDriver.GetDefaultAddressSpaces",
            "IpamDriver.RequestPool",
            "IpamDriver.RequestAddress",
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateNetwork",
        ],
        "{}",
        show(&c)
    );
    assert_bodies_are_proto(&c);
    assert_eq!(
        c[3].json(),
        json!({"AddressSpace": "local", "Pool": "10.9.0.0/24", "SubPool": "",
               "Options": {"color": "blue"}, "V6": false})
    );
    assert_eq!(
        c[4].json(),
        json!({"PoolID": "local/10.9.0.0/24", "Address": "10.9.0.254",
               "Options": {"RequestAddressType": "com.docker.network.gateway"}})
    );
    assert_eq!(
        c[5].json(),
        json!({"PoolID": "local/10.9.0.0/24", "Address": "10.9.0.10", "Options": null})
    );
    assert_eq!(
        c[6].json(),
        json!({"NetworkID": id1,
               "Options": {"com.docker.network.enable_ipv6": false,
                           "com.docker.network.generic": {"memnet.k": "<v>", "mtu": "1400"}},
               "IPv4Data": [{"AddressSpace": "local", "AuxAddresses": {"host1": "10.9.0.10/24"},
                             "Gateway": "10.9.0.254/24", "Pool": "10.9.0.0/24"}],
               "IPv6Data": []})
    );
    // Go's HTML escaping reaches the plugin as is.
    assert!(
        String::from_utf8_lossy(&c[6].body).contains(r#""memnet.k":"\u003cv\u003e""#),
        "{}",
        show(&c)
    );

    let inspect: Value =
        serde_json::from_str(&dockerd.docker_ok(&["network", "inspect", "n1"]).await).unwrap();
    let n1 = &inspect[0];
    assert_eq!(n1["Id"], id1.as_str());
    assert_eq!(n1["Driver"], net.as_str());
    assert_eq!(n1["Scope"], "local");
    assert_eq!(n1["Options"], json!({"memnet.k": "<v>", "mtu": "1400"}));
    assert_eq!(n1["IPAM"]["Driver"], ipam.as_str());
    assert_eq!(n1["IPAM"]["Options"], json!({"color": "blue"}));
    assert_eq!(
        n1["IPAM"]["Config"],
        json!([{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254",
                "AuxiliaryAddresses": {"host1": "10.9.0.10"}}])
    );
    assert!(calls.take().is_empty(), "inspect asks no plugin");
    // What the plugins hold.
    let nets = memnet.networks();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].id, id1);
    assert_eq!(nets[0].ipv4_data[0].pool.as_deref(), Some("10.9.0.0/24"));
    let pools = simple.pools();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].id, "local/10.9.0.0/24");
    let addrs: Vec<String> = pools[0].addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["10.9.0.10", "10.9.0.254"]);

    // Without a subnet: a pool of its own each time, one RequestPool each,
    // then a clear error once the range is used up.
    for (name, pool, gateway) in [
        ("n2", "10.77.0.0/24", "10.77.0.1"),
        ("n3", "10.77.1.0/24", "10.77.1.1"),
    ] {
        dockerd.docker_ok(&create(name)).await;
        let c = calls.take();
        assert_eq!(
            methods(&c),
            [
                "IpamDriver.RequestPool",
                "IpamDriver.RequestAddress",
                "NetworkDriver.CreateNetwork"
            ],
            "{}",
            show(&c)
        );
        assert_bodies_are_proto(&c);
        assert_eq!(c[0].json()["Pool"], "");
        assert_eq!(c[0].reply_json()["Pool"], pool);
        let inspect: Value =
            serde_json::from_str(&dockerd.docker_ok(&["network", "inspect", name]).await).unwrap();
        assert_eq!(
            inspect[0]["IPAM"]["Config"],
            json!([{"Subnet": pool, "Gateway": gateway}]),
            "{name}"
        );
    }
    assert_eq!(
        docker_err(&dockerd, &create("n4")).await,
        "Error response from daemon: IpamDriver.RequestPool: no free /24 pool left in \
         10.77.0.0/23: 2 in use, 0 overlapping host routes; create the network with --subnet"
    );
    assert_eq!(methods(&calls.take()), ["IpamDriver.RequestPool"]);

    // A subnet overlapping one in use is refused by simple-ipam.
    let mut overlapping = create("n5");
    overlapping.splice(6..6, ["--subnet", "10.9.0.128/25"]);
    assert_eq!(
        docker_err(&dockerd, &overlapping).await,
        "Error response from daemon: IpamDriver.RequestPool: subnet 10.9.0.128/25 overlaps \
         pool local/10.9.0.0/24"
    );
    calls.take();

    // memnet refuses: the user reads its message, and dockerd gives back
    // what it took from simple-ipam.
    let mut refused = create("n6");
    refused.splice(6..6, ["--subnet", "10.8.0.0/24", "-o", "memnet.fail=boom"]);
    assert_eq!(
        docker_err(&dockerd, &refused).await,
        "Error response from daemon: NetworkDriver.CreateNetwork: boom"
    );
    let c = calls.take();
    assert_eq!(
        methods(&c),
        [
            "IpamDriver.RequestPool",
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateNetwork",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
        ],
        "{}",
        show(&c)
    );
    assert_bodies_are_proto(&c);
    assert_eq!(simple.pools().len(), 3);

    dockerd
        .docker_ok(&["network", "rm", "n1", "n2", "n3"])
        .await;
    let c = calls.take();
    assert_bodies_are_proto(&c);
    let n1_rm: Vec<&Call> = c.iter().take(4).collect();
    assert_eq!(
        n1_rm.iter().map(|c| c.method.as_str()).collect::<Vec<_>>(),
        [
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
            "NetworkDriver.DeleteNetwork"
        ],
        "{}",
        show(&c)
    );
    // Addresses are released without their prefix length.
    assert_eq!(
        n1_rm[0].json(),
        json!({"PoolID": "local/10.9.0.0/24", "Address": "10.9.0.254"})
    );
    assert_eq!(n1_rm[1].json()["Address"], "10.9.0.10");
    assert_eq!(n1_rm[3].json(), json!({"NetworkID": id1}));
    assert_eq!(c.len(), 10, "{}", show(&c));
    assert!(memnet.networks().is_empty(), "{:?}", memnet.networks());
    assert!(simple.pools().is_empty(), "{:?}", simple.pools());

    // dockerd's own bridge driver with simple-ipam: the bridge, with the
    // gateway simple-ipam chose, exists in dockerd's network namespace.
    let bridge = [
        "network",
        "create",
        "-d",
        "bridge",
        "--ipam-driver",
        &ipam,
        "br1",
    ];
    let id = dockerd.docker_ok(&bridge).await.trim().to_owned();
    let c = calls.take();
    assert_eq!(
        methods(&c),
        ["IpamDriver.RequestPool", "IpamDriver.RequestAddress"],
        "{}",
        show(&c)
    );
    let mut ip = std::process::Command::new("nsenter");
    let pid = dockerd.pid().to_string();
    ip.args(["-t", &pid, "-n", "ip", "-o", "-4", "addr", "show", "dev"])
        .arg(format!("br-{}", &id[..12]));
    let out = super::harness::run(ip).await;
    let addr = String::from_utf8_lossy(&out.stdout);
    assert!(addr.contains(" inet 10.77.0.1/24 "), "{addr:?} {out:?}");
    dockerd.docker_ok(&["network", "rm", "br1"]).await;
    let c = calls.take();
    assert_eq!(
        methods(&c),
        ["IpamDriver.ReleaseAddress", "IpamDriver.ReleasePool"],
        "{}",
        show(&c)
    );
    assert!(simple.pools().is_empty(), "{:?}", simple.pools());

    let version = dockerd.version().await;
    drop(dockerd);
    p1.stop().await;
    p2.stop().await;

    let live = NetworkVectors {
        comment: "Calls dockerd made to memnet and simple-ipam (range 10.77.0.0/23, no host \
                  routes), with their replies, recorded by interop::dockerd_network::\
                  dockerd_network_lifecycle_with_memnet_and_simple_ipam; regenerate with \
                  INTEROP_BLESS=1 cargo test -p plugin-tests --test it interop::dockerd_network"
            .to_owned(),
        dockerd: version,
        calls: calls
            .all()
            .iter()
            .map(|c| Exchange {
                plugin: if c.plugin == net {
                    "memnet"
                } else {
                    "simple-ipam"
                }
                .to_owned(),
                method: c.method.clone(),
                body: String::from_utf8(c.body.to_vec()).unwrap(),
                reply: c
                    .reply
                    .clone()
                    .map(|b| String::from_utf8(b.to_vec()).unwrap()),
            })
            .collect(),
    };
    let Some(vectors) = bless_or_load(&network_vectors_path(), &live) else {
        return;
    };
    if vectors.dockerd != live.dockerd {
        eprintln!(
            "note: network vectors are from {:?}, this is {:?}: not compared",
            vectors.dockerd, live.dockerd
        );
        return;
    }
    let plain = |v: &NetworkVectors| -> Vec<Value> { v.calls.iter().map(without_ids).collect() };
    assert_eq!(
        plain(&live),
        plain(&vectors),
        "dockerd's network calls differ from the vectors"
    );
}

/// Issue 15, libnetwork#1386: dockerd (in a network namespace whose only
/// routes are `192.0.2.0/24` and `10.0.0.0/16`, through `lo`) rejects a
/// default pool that overlaps one of its routes, keeps it and asks again.
/// simple-ipam answers every repeat with a pool it has not handed out, so
/// the loop ends after a handful of calls: in a distinct pool, in a clear
/// "no free pool" error, or (when every pool of a large range overlaps) in
/// its refusal after [`simple_ipam::MAX_UNUSED_DEFAULT_POOLS`] unused pools.
/// Reading dockerd's own route table, simple-ipam skips the overlapping
/// pool at once. Every rejected pool is released, and once dockerd is
/// stopped no call comes any more.
#[tokio::test]
async fn dockerd_default_pool_overlapping_a_route_never_loops() {
    let test = "dockerd_default_pool_overlapping_a_route_never_loops";
    let Some(bins) = require(test, &["dockerd", "docker", "unshare", "ip"]) else {
        return;
    };
    let dir = socket_dir();
    let calls = Calls::default();
    let blind = no_routes(dir.path());
    // Filled in once dockerd runs: a link to its route table.
    let dockerd_routes = dir.path().join("dockerd-routes");
    let net = unique_name("net");
    let memnet = Arc::new(MemNet::new());
    let _memnet = Served::start(
        dir.path(),
        &net,
        Plugin::builder().network(memnet.clone()).build().unwrap(),
        &calls,
    );
    // (name suffix, range, route table)
    let cases = [
        ("one", "192.0.2.0/24", &blind),
        ("two", "192.0.2.0/23", &blind),
        ("aware", "192.0.2.0/23", &dockerd_routes),
        ("wide", "10.0.0.0/16", &blind),
    ];
    let mut ipams = Vec::new();
    for (tag, range, routes) in cases {
        let name = unique_name(tag);
        let simple = Arc::new(SimpleIpam::new(range.parse().unwrap()).route_table(routes));
        let plugin = Plugin::builder().ipam(simple.clone()).build().unwrap();
        let served = Served::start(dir.path(), &name, plugin, &calls);
        ipams.push((name, simple, served));
    }
    let dockerd = Dockerd::start_isolated(
        &bins[0],
        &Isolation {
            socket_dir: dir.path(),
            spec_dir: None,
            netns: true,
            routes: &["192.0.2.0/24", "10.0.0.0/16"],
            authz: &[],
        },
    );
    std::os::unix::fs::symlink(
        format!("/proc/{}/net/route", dockerd.pid()),
        &dockerd_routes,
    )
    .unwrap();
    let create = |ipam: &str, name: &str| {
        let args = ["network", "create", "-d", &net, "--ipam-driver", ipam, name];
        args.map(str::to_owned)
    };
    // Only RequestPool and ReleasePool: the rest is setup and the create.
    let pool_calls = |c: &[Call]| -> Vec<(String, String)> {
        c.iter()
            .filter(|c| c.method.ends_with("Pool"))
            .map(|c| {
                let pool = match c.method.as_str() {
                    "IpamDriver.RequestPool" => match &c.reply {
                        Ok(_) => c.reply_json()["Pool"].as_str().unwrap().to_owned(),
                        Err(e) => format!("error: {e}"),
                    },
                    _ => c.json()["PoolID"].as_str().unwrap().to_owned(),
                };
                (c.method.trim_start_matches("IpamDriver.").to_owned(), pool)
            })
            .collect()
    };
    let p = |m: &str, pool: &str| (m.to_owned(), pool.to_owned());

    // One pool in the range, and dockerd routes it: a clear error.
    let err = docker_err(&dockerd, &create(&ipams[0].0, "one")).await;
    assert_eq!(
        err,
        "Error response from daemon: IpamDriver.RequestPool: no free /24 pool left in \
         192.0.2.0/24: 1 in use, 0 overlapping host routes; create the network with --subnet"
    );
    let c = calls.take();
    assert_eq!(
        pool_calls(&c),
        [
            p("RequestPool", "192.0.2.0/24"),
            p(
                "RequestPool",
                &format!(
                    "error: {}",
                    err.rsplit(": IpamDriver.RequestPool: ").next().unwrap()
                )
            ),
            p("ReleasePool", "local/192.0.2.0/24"),
        ],
        "{}",
        show(&c)
    );

    // Two pools: the second is dockerd's, the first is given back.
    dockerd.docker_ok(&create(&ipams[1].0, "two")).await;
    let c = calls.take();
    assert_eq!(
        pool_calls(&c),
        [
            p("RequestPool", "192.0.2.0/24"),
            p("RequestPool", "192.0.3.0/24"),
            p("ReleasePool", "local/192.0.2.0/24"),
        ],
        "{}",
        show(&c)
    );
    assert_eq!(ipams[1].1.pools().len(), 1);

    // Reading dockerd's routes, simple-ipam never offers the routed pool.
    dockerd.docker_ok(&create(&ipams[2].0, "aware")).await;
    let c = calls.take();
    assert_eq!(
        pool_calls(&c),
        [p("RequestPool", "192.0.3.0/24")],
        "{}",
        show(&c)
    );

    // Every pool of the range routed, and simple-ipam cannot tell: it stops
    // the loop itself.
    let err = docker_err(&dockerd, &create(&ipams[3].0, "wide")).await;
    assert!(
        err.starts_with(
            "Error response from daemon: IpamDriver.RequestPool: refusing to hand out another \
             default pool: the last 8 were neither used nor released"
        ),
        "{err}"
    );
    let c = calls.take();
    let pools = pool_calls(&c);
    let requests = pools.iter().filter(|(m, _)| m == "RequestPool").count();
    assert_eq!(
        requests,
        simple_ipam::MAX_UNUSED_DEFAULT_POOLS + 1,
        "{}",
        show(&c)
    );
    let offered: Vec<&str> = pools[..8].iter().map(|(_, pool)| pool.as_str()).collect();
    assert_eq!(offered[0], "10.0.0.0/24");
    assert_eq!(offered[7], "10.0.7.0/24");
    assert_eq!(
        pools.iter().filter(|(m, _)| m == "ReleasePool").count(),
        8,
        "{}",
        show(&c)
    );
    assert!(ipams[3].1.pools().is_empty(), "{:?}", ipams[3].1.pools());

    // Stopped, dockerd asks nothing more.
    drop(dockerd);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.count("IpamDriver.RequestPool"), 0);
    for (_, _, served) in ipams {
        served.stop().await;
    }
}

/// Fresh memnet and simple-ipam, configured as in the recorded run, given
/// the recorded calls.
fn example_pair() -> (Plugin, Plugin, tempfile::TempDir) {
    let dir = socket_dir();
    let routes = no_routes(dir.path());
    let memnet = MemNet::new().plugin().unwrap();
    let simple = SimpleIpam::new("10.77.0.0/23".parse().unwrap())
        .route_table(routes)
        .plugin()
        .unwrap();
    (memnet, simple, dir)
}

/// Issue 15, plugin side: dockerd's recorded network and IPAM calls,
/// dispatched in order to fresh memnet and simple-ipam plugins, get the
/// replies dockerd got (the examples are deterministic, so the vectors
/// are a script any engine side can be held to).
#[tokio::test]
async fn examples_answer_dockerds_network_calls_as_recorded() {
    let vectors = load_network_vectors();
    let (memnet, simple, _dir) = example_pair();
    for (i, e) in vectors.calls.iter().enumerate() {
        let plugin = if e.plugin == "memnet" {
            &memnet
        } else {
            &simple
        };
        let reply = plugin
            .call(&e.method, e.body.clone().into_bytes())
            .await
            .map(|r| String::from_utf8(r.as_bytes().unwrap().to_vec()).unwrap())
            .map_err(|err| err.message().to_owned());
        assert_eq!(reply, e.reply, "call {i}: {} {}", e.method, e.body);
    }
}

/// Issue 15, engine side: dockerd's recorded network and IPAM sequence,
/// replayed by our own engine side (the registry finding the plugins in a
/// socket directory, and plugin-registry's `NetworkDriver` and
/// `IpamDriver` proxies making each call) to fresh memnet and simple-ipam,
/// gets the replies dockerd got (errors as `<Method>: <message>`, the text
/// dockerd showed after `Error response from daemon: `), and the plugins
/// receive the bytes dockerd sent them.
#[tokio::test]
async fn our_proxies_replay_dockerds_network_calls_with_dockerds_results() {
    use plugin_registry::proto::kinds;
    use plugin_registry::{IpamDriver, NetworkDriver, Policy, Registry};

    let vectors = load_network_vectors();
    let (memnet, simple, dir) = example_pair();
    let calls = Calls::default();
    let _net = Served::start(dir.path(), "memnet", memnet, &calls);
    let _ipam = Served::start(dir.path(), "simple-ipam", simple, &calls);
    let registry = Registry::new(
        plugin_registry::discovery::LocalRegistry::with_dirs(dir.path(), Vec::<&Path>::new()),
        Policy::default(),
    );
    let net =
        NetworkDriver::new(&registry.get("memnet", kinds::NETWORK_DRIVER).await.unwrap()).unwrap();
    let ipam = IpamDriver::new(
        &registry
            .get("simple-ipam", kinds::IPAM_DRIVER)
            .await
            .unwrap(),
    )
    .unwrap();

    fn typed<T: plugin_proto::Call + serde::de::DeserializeOwned + Default>(body: &str) -> T {
        plugin_proto::decode_request(body.as_bytes()).unwrap()
    }
    fn json<T: serde::Serialize>(r: Result<T, plugin_registry::Error>) -> Result<Value, String> {
        r.map(|v| serde_json::to_value(v).unwrap())
            .map_err(|e| e.to_string())
    }
    for (i, e) in vectors.calls.iter().enumerate() {
        let b = e.body.as_str();
        let ours: Result<Value, String> = match e.method.as_str() {
            network::GET_CAPABILITIES => json(net.get_capabilities().await),
            network::CREATE_NETWORK => json(net.create_network(&typed(b)).await),
            network::DELETE_NETWORK => {
                let r: network::DeleteNetworkRequest = typed(b);
                json(net.delete_network(&r.network_id).await)
            }
            ipam::GET_CAPABILITIES => json(ipam.get_capabilities().await),
            ipam::GET_DEFAULT_ADDRESS_SPACES => json(ipam.get_default_address_spaces().await),
            ipam::REQUEST_POOL => json(ipam.request_pool(&typed(b)).await),
            ipam::RELEASE_POOL => {
                let r: ipam::ReleasePoolRequest = typed(b);
                json(ipam.release_pool(&r.pool_id).await)
            }
            ipam::REQUEST_ADDRESS => json(ipam.request_address(&typed(b)).await),
            ipam::RELEASE_ADDRESS => {
                let r: ipam::ReleaseAddressRequest = typed(b);
                json(ipam.release_address(&r.pool_id, &r.address).await)
            }
            other => panic!("unexpected call {other}"),
        };
        // What dockerd got, in the same terms: the reply decoded, or the
        // error as the client words it.
        let theirs = match &e.reply {
            Ok(body) => Ok(serde_json::from_str::<Value>(body).unwrap()),
            Err(msg) => Err(format!("{}: {msg}", e.method)),
        };
        match (&ours, &theirs) {
            // A call that answers nothing: dockerd got `{}`.
            (Ok(Value::Null), Ok(t)) => assert_eq!(t, &json!({}), "call {i} {}", e.method),
            // Typed replies re-encode with every field, which the plugin
            // may have left out: compare the fields dockerd got.
            (Ok(Value::Object(o)), Ok(Value::Object(t))) => {
                for (k, v) in t {
                    assert_eq!(o.get(k), Some(v), "call {i} {}: field {k}", e.method);
                }
            }
            _ => assert_eq!(ours, theirs, "call {i}: {} {b}", e.method),
        }
    }

    let sent = calls.all();
    let ours: Vec<(&str, &str)> = sent
        .iter()
        .map(|c| (c.method.as_str(), std::str::from_utf8(&c.body).unwrap()))
        .collect();
    let theirs: Vec<(&str, &str)> = vectors
        .calls
        .iter()
        .map(|e| (e.method.as_str(), e.body.as_str()))
        .collect();
    assert_eq!(ours, theirs, "our proxies sent other bytes than dockerd");
}

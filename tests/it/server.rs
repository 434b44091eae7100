//! plugin-server, the plugin-author kit, and the example plugins (memvol,
//! simple-ipam): dispatch of every subsystem over real sockets, the wire
//! details Docker depends on, listeners (stale, live, systemd, tcp + spec
//! files, TLS) and the shutdown that removes only what it created.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use plugin_client::Client;
use plugin_proto::{RetryPolicy, TlsOptions};
use plugin_server::authz::{self, AuthzPlugin};
use plugin_server::log::{self as logdrv, LogDriver};
use plugin_server::metrics::MetricsCollector;
use plugin_server::network::{self, NetworkDriver};
use plugin_server::volume;
use plugin_server::{
    BuildError, Listener, Plugin, PluginError, Reply, ServeError, Server, SpecFile, SystemdError,
    TlsConfig,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A server running on a task, stopped by [`Running::stop`].
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    fn start(server: Server, listener: Listener) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let server = server.handle_signals(false).shutdown_on(async {
            let _ = rx.await;
        });
        Running {
            stop: Some(tx),
            task: tokio::spawn(server.serve(listener)),
        }
    }

    async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("server did not stop")
            .expect("server task panicked")
    }
}

/// A temporary directory with a plugin socket in it.
struct UnixPlugin {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    running: Running,
}

impl UnixPlugin {
    async fn start(plugin: Plugin) -> UnixPlugin {
        UnixPlugin::start_with(plugin, |s| s).await
    }

    async fn start_with(plugin: Plugin, f: impl FnOnce(Server) -> Server) -> UnixPlugin {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("plugins").join("p.sock");
        let listener = Listener::unix(&sock).unwrap();
        let running = Running::start(f(Server::new(plugin)), listener);
        UnixPlugin {
            _dir: dir,
            sock,
            running,
        }
    }

    fn client(&self) -> Client {
        Client::builder()
            .retry(RetryPolicy::none())
            .build(format!("unix://{}", self.sock.display()), None)
            .unwrap()
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// Status 200, the plugin media type and a JSON body.
    fn ok_json(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/vnd.docker.plugins.v1.1+json")
        );
        self.json()
    }

    /// The plugin error convention: `status`, the media type, `{"Err":…}`.
    pub(crate) fn err(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/vnd.docker.plugins.v1.1+json")
        );
        self.json()["Err"].as_str().unwrap().to_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `request` and reads one response (Content-Length or chunked),
/// leaving the connection open for the next exchange.
pub(crate) async fn exchange<S>(stream: &mut S, request: &[u8]) -> RawResponse
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(request).await.unwrap();
    read_response(stream).await
}

/// Reads one response (Content-Length or chunked) off `stream`.
pub(crate) async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before headers: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().unwrap();
        while rest.len() < len {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed in body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        assert_eq!(get("transfer-encoding").as_deref(), Some("chunked"));
        let mut body = Vec::new();
        loop {
            // Read a size line, then the chunk and its CRLF.
            let line_end = loop {
                if let Some(i) = find(&rest, b"\r\n") {
                    break i;
                }
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed in chunk header");
                rest.extend_from_slice(&chunk[..n]);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            while rest.len() < line_end + 2 + size + 2 {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed in chunk");
                rest.extend_from_slice(&chunk[..n]);
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break body;
            }
        }
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// The request Docker's current client sends on a unix socket.
pub(crate) fn docker_request(method: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\nUser-Agent: Go-http-client/1.1\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One call on a fresh connection.
async fn post(sock: &Path, method: &str, body: &str) -> RawResponse {
    let mut s = UnixStream::connect(sock).await.unwrap();
    exchange(&mut s, &docker_request(method, body)).await
}

/// The lowest-level check that the server is gone: connecting fails.
fn is_gone(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_err()
}

// ---------------------------------------------------------------------------
// Test implementations of every subsystem
// ---------------------------------------------------------------------------

struct TestNet;

impl NetworkDriver for TestNet {
    async fn create_network(&self, req: network::CreateNetworkRequest) -> Result<(), PluginError> {
        if req.network_id == "bad" {
            return Err(PluginError::new("cannot create network bad"));
        }
        Ok(())
    }
    async fn delete_network(&self, _: network::DeleteNetworkRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn create_endpoint(
        &self,
        req: network::CreateEndpointRequest,
    ) -> Result<network::CreateEndpointResponse, PluginError> {
        Ok(network::CreateEndpointResponse {
            interface: req.interface.is_none().then(|| network::EndpointInterface {
                mac_address: "02:42:ac:11:00:02".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
    async fn delete_endpoint(&self, _: network::DeleteEndpointRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn join(&self, req: network::JoinRequest) -> Result<network::JoinResponse, PluginError> {
        Ok(network::JoinResponse {
            interface_name: Some(network::InterfaceName {
                src_name: format!("veth{}", &req.endpoint_id[..3]),
                dst_prefix: "eth".into(),
                ..Default::default()
            }),
            gateway: "10.0.0.1".into(),
            ..Default::default()
        })
    }
    async fn leave(&self, _: network::LeaveRequest) -> Result<(), PluginError> {
        Ok(())
    }
}

struct DenyDeletes;

impl AuthzPlugin for DenyDeletes {
    async fn authz_req(&self, req: authz::Request) -> Result<authz::Response, PluginError> {
        Ok(if req.request_method == "DELETE" {
            authz::Response {
                allow: false,
                msg: format!("{} is not allowed", req.request_uri),
                ..Default::default()
            }
        } else {
            authz::Response {
                allow: true,
                ..Default::default()
            }
        })
    }
    async fn authz_res(&self, _: authz::Request) -> Result<authz::Response, PluginError> {
        Ok(authz::Response {
            allow: true,
            ..Default::default()
        })
    }
}

#[derive(Default)]
struct TestLog {
    started: std::sync::Mutex<Vec<String>>,
}

impl LogDriver for TestLog {
    async fn start_logging(&self, req: logdrv::StartLoggingRequest) -> Result<(), PluginError> {
        self.started.lock().unwrap().push(req.file);
        Ok(())
    }
    async fn stop_logging(&self, req: logdrv::StopLoggingRequest) -> Result<(), PluginError> {
        let mut started = self.started.lock().unwrap();
        let before = started.len();
        started.retain(|f| *f != req.file);
        if started.len() == before {
            return Err(PluginError::new(format!("not logging to {}", req.file)));
        }
        Ok(())
    }
    async fn capabilities(&self) -> Result<logdrv::CapabilitiesResponse, PluginError> {
        Ok(logdrv::CapabilitiesResponse {
            cap: logdrv::Capability { read_logs: true },
            ..Default::default()
        })
    }
    async fn read_logs(&self, req: logdrv::ReadLogsRequest) -> Result<Reply, PluginError> {
        let mut frames = Vec::new();
        for line in ["hello", "world"] {
            let entry = logdrv::LogEntry {
                source: logdrv::SOURCE_STDOUT.into(),
                time_nano: 1,
                line: format!("{}: {line}", req.info.container_id).into_bytes(),
                ..Default::default()
            };
            logdrv::encode_frame(&entry, &mut frames).unwrap();
        }
        Ok(Reply::stream(std::io::Cursor::new(frames)))
    }
}

#[derive(Default)]
struct Counters {
    started: AtomicUsize,
    stopped: AtomicUsize,
}

impl MetricsCollector for Counters {
    async fn start_metrics(&self) -> Result<(), PluginError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn stop_metrics(&self) -> Result<(), PluginError> {
        self.stopped.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn memvol(root: &Path) -> memvol::MemVol {
    memvol::MemVol::new(root)
}

fn ipam() -> simple_ipam::SimpleIpam {
    simple_ipam::SimpleIpam::new("10.77.0.0/16".parse().unwrap())
}

// ---------------------------------------------------------------------------
// Registration and activation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn activate_lists_registered_kinds_in_order() {
    // checklist 29 from the plugin's side: Activate has an empty body and
    // answers `{"Implements":[…]}`.
    let plugin = Plugin::builder()
        .authz(DenyDeletes)
        .volume(memvol(Path::new("/nonexistent")))
        .network(TestNet)
        .ipam(ipam())
        .log(Arc::new(TestLog::default()))
        .metrics(Arc::new(Counters::default()))
        .implements("GraphDriver")
        .implements("VolumeDriver")
        .raw("GraphDriver.Init", |_| async { Ok(Reply::bytes("{}\n")) })
        .build()
        .unwrap();
    let p = UnixPlugin::start(plugin).await;
    let r = post(&p.sock, "Plugin.Activate", "").await;
    assert_eq!(
        r.ok_json(),
        serde_json::json!({"Implements": ["authz", "VolumeDriver", "NetworkDriver", "IpamDriver", "LogDriver", "MetricsCollector", "GraphDriver"]})
    );
    assert!(r.body.ends_with(b"\n"), "Go's encoder ends with a newline");
    // The engine-side client reads the same manifest.
    let m: plugin_proto::Manifest = p.client().call("Plugin.Activate").json().await.unwrap();
    assert!(m.implements("MetricsCollector"));
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn empty_plugin_implements_nothing() {
    let p = UnixPlugin::start(Plugin::builder().build().unwrap()).await;
    let r = post(&p.sock, "Plugin.Activate", "").await;
    assert_eq!(r.ok_json(), serde_json::json!({"Implements": []}));
    p.running.stop().await.unwrap();
}

#[test]
fn builder_refuses_bad_registrations() {
    let raw = |_: Bytes| async { Ok(Reply::bytes("{}")) };
    let err = Plugin::builder()
        .raw("not a method", raw)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidMethod(_)), "{err}");
    let err = Plugin::builder()
        .raw("/Plugin.Activate", raw)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ReservedMethod);
    let err = Plugin::builder()
        .volume(memvol(Path::new("/x")))
        .raw("VolumeDriver.Create", raw)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::DuplicateMethod("VolumeDriver.Create".into())
    );
    let err = Plugin::builder()
        .ipam(ipam())
        .ipam(ipam())
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateMethod(_)), "{err}");
    // A leading slash is accepted, as Docker's client accepts it
    // (checklist 15).
    let p = Plugin::builder().raw("/X.Y", raw).build().unwrap();
    assert_eq!(p.methods(), ["X.Y"]);
}

#[tokio::test]
async fn in_process_call_dispatches_like_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let p = memvol(dir.path()).plugin().unwrap();
    let r = p.call("/Plugin.Activate", "").await.unwrap();
    assert_eq!(
        r.as_bytes().unwrap().as_ref(),
        b"{\"Implements\":[\"VolumeDriver\"]}\n"
    );
    p.call("VolumeDriver.Create", r#"{"Name":"a"}"#)
        .await
        .unwrap();
    let e = p
        .call("VolumeDriver.Get", r#"{"Name":"b"}"#)
        .await
        .unwrap_err();
    assert_eq!(e.message(), "no such volume: b");
    assert_eq!(p.call("X.Y", "").await.unwrap_err().status(), 404);
}

// ---------------------------------------------------------------------------
// Dispatch of every subsystem, over the socket
// ---------------------------------------------------------------------------

#[tokio::test]
async fn volume_dispatch_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let s = &p.sock;
    let mp = root.path().join("v1").display().to_string();
    assert_eq!(
        post(s, "VolumeDriver.Create", r#"{"Name":"v1","Opts":null}"#)
            .await
            .ok_json(),
        serde_json::json!({})
    );
    assert_eq!(
        post(s, "VolumeDriver.Path", r#"{"Name":"v1"}"#)
            .await
            .ok_json(),
        serde_json::json!({"Mountpoint": mp})
    );
    assert_eq!(
        post(s, "VolumeDriver.Mount", r#"{"Name":"v1","ID":"c1"}"#)
            .await
            .ok_json(),
        serde_json::json!({"Mountpoint": mp})
    );
    assert!(
        root.path().join("v1").is_dir(),
        "mount creates the directory"
    );
    let got = post(s, "VolumeDriver.Get", r#"{"Name":"v1"}"#)
        .await
        .ok_json();
    assert_eq!(got["Volume"]["Name"], "v1");
    assert_eq!(got["Volume"]["Mountpoint"], mp.as_str());
    assert_eq!(got["Volume"]["Status"]["mounts"], 1);
    plugin_proto::GoTime::parse(got["Volume"]["CreatedAt"].as_str().unwrap()).unwrap();
    let list = post(s, "VolumeDriver.List", "{}\n").await.ok_json();
    assert_eq!(list["Volumes"].as_array().unwrap().len(), 1);
    assert_eq!(
        post(s, "VolumeDriver.Unmount", r#"{"Name":"v1","ID":"c1"}"#)
            .await
            .ok_json(),
        serde_json::json!({})
    );
    assert_eq!(
        post(s, "VolumeDriver.Capabilities", "{}\n").await.ok_json(),
        serde_json::json!({"Capabilities": {"Scope": "local"}})
    );
    assert_eq!(
        post(s, "VolumeDriver.Remove", r#"{"Name":"v1"}"#)
            .await
            .ok_json(),
        serde_json::json!({})
    );
    assert_eq!(
        post(s, "VolumeDriver.List", "{}\n").await.ok_json(),
        serde_json::json!({"Volumes": []})
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn network_dispatch_round_trip_and_defaults() {
    let p = UnixPlugin::start(Plugin::builder().network(TestNet).build().unwrap()).await;
    let s = &p.sock;
    // Docker sends GetCapabilities with an empty body.
    assert_eq!(
        post(s, "NetworkDriver.GetCapabilities", "").await.ok_json(),
        serde_json::json!({"Scope": "local"})
    );
    let create = r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"local","Gateway":"10.0.0.1/24","Pool":"10.0.0.0/24"}],"IPv6Data":[]}"#;
    assert_eq!(
        post(s, "NetworkDriver.CreateNetwork", create)
            .await
            .ok_json(),
        serde_json::json!({})
    );
    let r = post(s, "NetworkDriver.CreateNetwork", r#"{"NetworkID":"bad"}"#).await;
    assert_eq!(r.err(500), "cannot create network bad");
    let ep = post(
        s,
        "NetworkDriver.CreateEndpoint",
        r#"{"NetworkID":"n1","EndpointID":"e1","Interface":null,"Options":{}}"#,
    )
    .await
    .ok_json();
    assert_eq!(ep["Interface"]["MacAddress"], "02:42:ac:11:00:02");
    let join = post(
        s,
        "NetworkDriver.Join",
        r#"{"NetworkID":"n1","EndpointID":"abcdef","SandboxKey":"/var/run/docker/netns/x","Options":null}"#,
    )
    .await
    .ok_json();
    assert_eq!(join["InterfaceName"]["SrcName"], "vethabc");
    assert_eq!(join["InterfaceName"]["DstPrefix"], "eth");
    assert_eq!(join["Gateway"], "10.0.0.1");
    for (m, body) in [
        (
            "NetworkDriver.Leave",
            r#"{"NetworkID":"n1","EndpointID":"e1"}"#,
        ),
        (
            "NetworkDriver.DeleteEndpoint",
            r#"{"NetworkID":"n1","EndpointID":"e1"}"#,
        ),
        ("NetworkDriver.DeleteNetwork", r#"{"NetworkID":"n1"}"#),
        // Optional methods answer success by default.
        (
            "NetworkDriver.ProgramExternalConnectivity",
            r#"{"NetworkID":"n1","EndpointID":"e1","Options":{}}"#,
        ),
        (
            "NetworkDriver.RevokeExternalConnectivity",
            r#"{"NetworkID":"n1","EndpointID":"e1"}"#,
        ),
        (
            "NetworkDriver.DiscoverNew",
            r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"10.1.1.1","BindAddress":"","Self":true}}"#,
        ),
        (
            "NetworkDriver.DiscoverDelete",
            r#"{"DiscoveryType":1,"DiscoveryData":null}"#,
        ),
    ] {
        assert_eq!(
            post(s, m, body).await.ok_json(),
            serde_json::json!({}),
            "{m}"
        );
    }
    assert_eq!(
        post(
            s,
            "NetworkDriver.EndpointOperInfo",
            r#"{"NetworkID":"n1","EndpointID":"e1"}"#
        )
        .await
        .ok_json(),
        serde_json::json!({"Value": {}})
    );
    // Swarm-only methods are not implemented by default: a 404.
    let r = post(s, "NetworkDriver.AllocateNetwork", r#"{"NetworkID":"n1"}"#).await;
    assert_eq!(
        r.err(404),
        "NetworkDriver.AllocateNetwork is not implemented"
    );
    let e = p
        .client()
        .call("NetworkDriver.FreeNetwork")
        .args(&serde_json::json!({"NetworkID": "n1"}))
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn ipam_dispatch_round_trip() {
    let p = UnixPlugin::start(ipam().plugin().unwrap()).await;
    let s = &p.sock;
    assert_eq!(
        post(s, "IpamDriver.GetCapabilities", "").await.ok_json(),
        serde_json::json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    );
    assert_eq!(
        post(s, "IpamDriver.GetDefaultAddressSpaces", "")
            .await
            .ok_json(),
        serde_json::json!({"LocalDefaultAddressSpace": "local", "GlobalDefaultAddressSpace": "global"})
    );
    let pool = post(
        s,
        "IpamDriver.RequestPool",
        r#"{"AddressSpace":"local","Pool":"","SubPool":"","Options":{},"V6":false}"#,
    )
    .await
    .ok_json();
    // The first /24 of the range simple-ipam carves default pools from.
    assert_eq!(pool["Pool"], "10.77.0.0/24");
    assert_eq!(pool["PoolID"], "local/10.77.0.0/24");
    let gw = post(
        s,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"local/10.77.0.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#,
    )
    .await
    .ok_json();
    assert_eq!(gw["Address"], "10.77.0.1/24");
    let r = post(
        s,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"local/10.77.0.0/24","Address":"10.77.0.1"}"#,
    )
    .await;
    assert_eq!(r.err(500), "address 10.77.0.1 is in use");
    let r = post(
        s,
        "IpamDriver.RequestPool",
        r#"{"AddressSpace":"local","V6":true}"#,
    )
    .await;
    assert_eq!(r.err(500), "simple-ipam does not serve IPv6 pools");
    assert_eq!(
        post(
            s,
            "IpamDriver.ReleaseAddress",
            r#"{"PoolID":"local/10.77.0.0/24","Address":"10.77.0.1"}"#
        )
        .await
        .ok_json(),
        serde_json::json!({})
    );
    assert_eq!(
        post(
            s,
            "IpamDriver.ReleasePool",
            r#"{"PoolID":"local/10.77.0.0/24"}"#
        )
        .await
        .ok_json(),
        serde_json::json!({})
    );
    let r = post(
        s,
        "IpamDriver.ReleasePool",
        r#"{"PoolID":"local/10.77.0.0/24"}"#,
    )
    .await;
    assert_eq!(r.err(500), "no such pool: local/10.77.0.0/24");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn simple_ipam_through_the_client() {
    use plugin_server::ipam::*;
    let p = UnixPlugin::start(ipam().plugin().unwrap()).await;
    let c = p.client();
    let spaces = c.call(&GetDefaultAddressSpacesRequest {}).await.unwrap();
    assert_eq!(spaces.local_default_address_space, "local");
    let pool = c
        .call(&RequestPoolRequest {
            address_space: "local".into(),
            pool: "192.168.5.0/30".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.pool, "192.168.5.0/30");
    let req = RequestAddressRequest {
        pool_id: pool.pool_id.clone(),
        ..Default::default()
    };
    // A /30 has two usable addresses.
    assert_eq!(c.call(&req).await.unwrap().address, "192.168.5.1/30");
    assert_eq!(c.call(&req).await.unwrap().address, "192.168.5.2/30");
    let e = c.call(&req).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "IpamDriver.RequestAddress: pool 192.168.5.0/30 has no free address"
    );
    let e = c
        .call(&RequestPoolRequest {
            address_space: "local".into(),
            pool: "192.168.0.0/16".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "IpamDriver.RequestPool: subnet 192.168.0.0/16 overlaps pool local/192.168.5.0/30"
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn authz_dispatch_round_trip() {
    let p = UnixPlugin::start(Plugin::builder().authz(DenyDeletes).build().unwrap()).await;
    let s = &p.sock;
    let allow = post(
        s,
        "AuthZPlugin.AuthZReq",
        r#"{"User":"alice","RequestMethod":"GET","RequestUri":"/v1.41/containers/json","RequestHeaders":{"Accept":"*/*"}}"#,
    )
    .await
    .ok_json();
    assert_eq!(allow, serde_json::json!({"Allow": true}));
    let deny = post(
        s,
        "AuthZPlugin.AuthZReq",
        r#"{"RequestMethod":"DELETE","RequestUri":"/v1.41/volumes/v1","RequestBody":"e30="}"#,
    )
    .await
    .ok_json();
    assert_eq!(
        deny,
        serde_json::json!({"Allow": false, "Msg": "/v1.41/volumes/v1 is not allowed"})
    );
    let res = post(
        s,
        "AuthZPlugin.AuthZRes",
        r#"{"RequestMethod":"GET","RequestUri":"/_ping","ResponseStatusCode":200,"ResponseBody":"T0s="}"#,
    )
    .await
    .ok_json();
    assert_eq!(res, serde_json::json!({"Allow": true}));
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn log_dispatch_round_trip_with_a_streamed_reply() {
    let driver = Arc::new(TestLog::default());
    let p = UnixPlugin::start(Plugin::builder().log(driver.clone()).build().unwrap()).await;
    let s = &p.sock;
    assert_eq!(
        post(s, "LogDriver.Capabilities", "").await.ok_json(),
        serde_json::json!({"Cap": {"ReadLogs": true}})
    );
    let start = r#"{"File":"/run/docker/logging/abc","Info":{"ContainerID":"c1","ContainerName":"/web","Config":{"tag":"x"}}}"#;
    assert_eq!(
        post(s, "LogDriver.StartLogging", start).await.ok_json(),
        serde_json::json!({})
    );
    assert_eq!(*driver.started.lock().unwrap(), ["/run/docker/logging/abc"]);
    // ReadLogs answers the frame stream, chunked.
    let r = post(
        s,
        "LogDriver.ReadLogs",
        r#"{"Info":{"ContainerID":"c1"},"Config":{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Tail":-1,"Follow":false}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let mut dec = logdrv::FrameDecoder::default();
    dec.push(&r.body);
    let mut lines = Vec::new();
    while let Some(e) = dec.next_entry().unwrap() {
        lines.push(String::from_utf8(e.line).unwrap());
    }
    assert_eq!(lines, ["c1: hello", "c1: world"]);
    // Through the engine-side client's stream call as well.
    let mut body = p
        .client()
        .stream(&logdrv::ReadLogsRequest::default())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes.len(), r.body.len() - 4, "container id is empty here");
    assert_eq!(
        post(
            s,
            "LogDriver.StopLogging",
            r#"{"File":"/run/docker/logging/abc"}"#
        )
        .await
        .ok_json(),
        serde_json::json!({})
    );
    let r = post(s, "LogDriver.StopLogging", r#"{"File":"/nope"}"#).await;
    assert_eq!(r.err(500), "not logging to /nope");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn log_driver_without_read_logs_answers_404() {
    struct Minimal;
    impl LogDriver for Minimal {
        async fn start_logging(&self, _: logdrv::StartLoggingRequest) -> Result<(), PluginError> {
            Ok(())
        }
        async fn stop_logging(&self, _: logdrv::StopLoggingRequest) -> Result<(), PluginError> {
            Ok(())
        }
    }
    let p = UnixPlugin::start(Plugin::builder().log(Minimal).build().unwrap()).await;
    assert_eq!(
        post(&p.sock, "LogDriver.Capabilities", "").await.ok_json(),
        serde_json::json!({"Cap": {"ReadLogs": false}})
    );
    let r = post(&p.sock, "LogDriver.ReadLogs", "{}").await;
    assert_eq!(r.err(404), "LogDriver.ReadLogs is not implemented");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_dispatch_round_trip() {
    let counters = Arc::new(Counters::default());
    let p = UnixPlugin::start(Plugin::builder().metrics(counters.clone()).build().unwrap()).await;
    // Docker sends both with an empty body.
    assert_eq!(
        post(&p.sock, "MetricsCollector.StartMetrics", "")
            .await
            .ok_json(),
        serde_json::json!({})
    );
    assert_eq!(
        post(&p.sock, "MetricsCollector.StopMetrics", "")
            .await
            .ok_json(),
        serde_json::json!({})
    );
    let c = p.client();
    c.call(&plugin_server::metrics::StartMetricsRequest {})
        .await
        .unwrap();
    c.call(&plugin_server::metrics::StopMetricsRequest {})
        .await
        .unwrap();
    assert_eq!(counters.started.load(Ordering::SeqCst), 2);
    assert_eq!(counters.stopped.load(Ordering::SeqCst), 2);
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn raw_handlers_get_bytes_and_answer_bytes() {
    let plugin = Plugin::builder()
        .implements("GraphDriver")
        .raw("GraphDriver.Echo", |body: Bytes| async move {
            Ok(Reply::bytes(body).with_content_type("application/octet-stream"))
        })
        .raw("GraphDriver.Fail", |_| async {
            Err(PluginError::with_status(http::StatusCode::CONFLICT, "busy"))
        })
        .build()
        .unwrap();
    let p = UnixPlugin::start(plugin).await;
    let r = post(&p.sock, "GraphDriver.Echo", "\x01raw\x02").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, b"\x01raw\x02");
    assert_eq!(post(&p.sock, "GraphDriver.Fail", "").await.err(409), "busy");
    p.running.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// Wire details
// ---------------------------------------------------------------------------

#[tokio::test]
async fn docker_20_10_bytes_with_empty_host_are_accepted() {
    // spec §12: Docker 20.10 (Go 1.19) sends an empty Host on unix sockets;
    // checklist 16, 17: Host and Accept are never checked by the plugin.
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let body = "{\"Name\":\"v1\",\"Opts\":{\"k\":\"v\"}}\n";
    let req = format!(
        "POST /VolumeDriver.Create HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    );
    let mut conn = UnixStream::connect(&p.sock).await.unwrap();
    assert_eq!(
        exchange(&mut conn, req.as_bytes()).await.ok_json(),
        serde_json::json!({})
    );
    // Keep-alive: the same connection serves the next call, here without
    // any Host header, with an old Accept value and an empty body.
    let req = "POST /VolumeDriver.List HTTP/1.1\r\nAccept: application/vnd.docker.plugins.v1+json\r\nContent-Length: 0\r\n\r\n";
    let list = exchange(&mut conn, req.as_bytes()).await.ok_json();
    assert_eq!(list["Volumes"][0]["Name"], "v1");
    // Docker's Activate: no body at all.
    let act = exchange(&mut conn, &docker_request("Plugin.Activate", "")).await;
    assert_eq!(
        act.ok_json(),
        serde_json::json!({"Implements": ["VolumeDriver"]})
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn empty_and_null_bodies_are_the_default_request() {
    // checklist 21: nil args are an empty body, Stream's are `null\n`.
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    for body in ["", "   \n", "null", "null\n"] {
        assert_eq!(
            post(&p.sock, "VolumeDriver.List", body).await.ok_json(),
            serde_json::json!({"Volumes": []}),
            "{body:?}"
        );
        assert_eq!(
            post(&p.sock, "VolumeDriver.Capabilities", body)
                .await
                .ok_json()["Capabilities"]["Scope"],
            "local"
        );
    }
    // An empty Create is a create of the volume named "".
    assert_eq!(
        post(&p.sock, "VolumeDriver.Create", "").await.ok_json(),
        serde_json::json!({})
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_are_read_with_go_rules() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    // Case-insensitive keys, unknown keys ignored, trailing data ignored.
    let r = post(
        &p.sock,
        "VolumeDriver.Create",
        r#"{"name":"v2","OPTS":{"a":"b"},"Extra":[1]} trailing"#,
    )
    .await;
    assert_eq!(r.ok_json(), serde_json::json!({}));
    let got = post(&p.sock, "VolumeDriver.Get", r#"{"Name":"v2"}"#)
        .await
        .ok_json();
    assert_eq!(got["Volume"]["Name"], "v2");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn errors_follow_the_plugin_convention() {
    // checklist 23 from the plugin's side: non-200 with `{"Err": msg}`.
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let r = post(
        &p.sock,
        "VolumeDriver.Create",
        r#"{"Name":"v","Opts":{"fail":"disk <full> & gone"}}"#,
    )
    .await;
    assert_eq!(r.err(500), "disk <full> & gone");
    assert!(
        r.text().contains(r"\u003cfull\u003e \u0026"),
        "HTML-escaped like Go: {}",
        r.text()
    );
    assert!(r.body.ends_with(b"}\n"));
    // Through the engine-side client the error reads `<Method>: <message>`.
    let e = p
        .client()
        .call(&volume::GetRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Get: no such volume: nope");
    assert_eq!(e.status(), Some(500));
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_method_is_gos_404() {
    // checklist 23: the raw body is the message; IsNotFound on a 404.
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    for m in ["VolumeDriver.Nope", "NetworkDriver.Join", "nodot", "a/b.c"] {
        let r = post(&p.sock, m, "{}").await;
        assert_eq!(r.status, 404, "{m}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.body, b"404 page not found\n");
    }
    let e = p
        .client()
        .call("VolumeDriver.Nope")
        .args(&serde_json::json!({}))
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "VolumeDriver.Nope: 404 page not found\n");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_body_is_400_with_the_reason() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    for body in ["{", "[1,2]", r#"{"Name":5}"#, "\"x\""] {
        let msg = post(&p.sock, "VolumeDriver.Create", body).await.err(400);
        assert!(msg.starts_with("bad request body: "), "{body}: {msg}");
    }
    let e = p
        .client()
        .call("VolumeDriver.Create")
        .body(Bytes::from_static(b"{"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.to_string()
            .starts_with("VolumeDriver.Create: bad request body: ")
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn non_post_is_405_and_oversized_body_413() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start_with(memvol(root.path()).plugin().unwrap(), |s| {
        s.max_request_body(64)
    })
    .await;
    let mut conn = UnixStream::connect(&p.sock).await.unwrap();
    let r = exchange(
        &mut conn,
        b"GET /VolumeDriver.List HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(r.err(405).contains("GET"));
    assert_eq!(r.header("allow"), Some("POST"));
    let big = format!(r#"{{"Name":"{}"}}"#, "x".repeat(100));
    let r = post(&p.sock, "VolumeDriver.Create", &big).await;
    assert_eq!(r.err(413), "request body larger than 64 bytes");
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_not_a_dropped_connection() {
    let plugin = Plugin::builder()
        .raw("X.Panic", |body: Bytes| async move {
            if body.is_empty() {
                panic!("boom");
            }
            Ok(Reply::bytes(""))
        })
        .raw("X.Ok", |_| async { Ok(Reply::bytes("{}")) })
        .build()
        .unwrap();
    let p = UnixPlugin::start(plugin).await;
    let mut conn = UnixStream::connect(&p.sock).await.unwrap();
    let r = exchange(&mut conn, &docker_request("X.Panic", "")).await;
    assert_eq!(r.err(500), "X.Panic: plugin handler panicked");
    // The connection survives.
    assert_eq!(
        exchange(&mut conn, &docker_request("X.Ok", ""))
            .await
            .status,
        200
    );
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_the_engine_hangs_up_on_still_runs_to_the_end() {
    type Slots = (
        Option<oneshot::Sender<()>>,
        Option<oneshot::Receiver<()>>,
        Option<oneshot::Sender<()>>,
    );
    let (started_tx, started_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let slots: Arc<std::sync::Mutex<Slots>> = Arc::new(std::sync::Mutex::new((
        Some(started_tx),
        Some(go_rx),
        Some(done_tx),
    )));
    let plugin = Plugin::builder()
        .raw("X.Slow", move |_| {
            let (started, go, done) = {
                let mut s = slots.lock().unwrap();
                (s.0.take(), s.1.take(), s.2.take())
            };
            async move {
                let _ = started.unwrap().send(());
                go.unwrap().await.unwrap();
                done.unwrap().send(()).unwrap();
                Ok(Reply::bytes("{}"))
            }
        })
        .build()
        .unwrap();
    let p = UnixPlugin::start(plugin).await;
    let mut conn = UnixStream::connect(&p.sock).await.unwrap();
    conn.write_all(&docker_request("X.Slow", "")).await.unwrap();
    started_rx.await.unwrap();
    // The engine hangs up mid-call; the server notices and drops the call.
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The handler is still there to be released, and finishes.
    go_tx
        .send(())
        .expect("the handler was cancelled with the connection");
    tokio::time::timeout(Duration::from_millis(500), done_rx)
        .await
        .expect("the handler did not finish")
        .unwrap();
    p.running.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// memvol end to end, through the engine-side client
// ---------------------------------------------------------------------------

#[tokio::test]
async fn memvol_end_to_end() {
    use plugin_server::volume::*;
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let c = p.client();
    let opts = |k: &str, v: &str| Some([(k.to_owned(), v.to_owned())].into_iter().collect());
    let create = CreateRequest {
        name: "data".into(),
        opts: opts("size", "1g"),
    };
    c.call(&create).await.unwrap();
    // The same create again succeeds; other options are an error.
    c.call(&create).await.unwrap();
    let e = c
        .call(&CreateRequest {
            name: "data".into(),
            opts: opts("size", "2g"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "VolumeDriver.Create: volume data already exists with different options"
    );
    let e = c
        .call(&CreateRequest {
            name: "other".into(),
            opts: opts("fail", "refused by test"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Create: refused by test");

    let list = c.call(&ListRequest {}).await.unwrap();
    assert_eq!(list.volumes.len(), 1);
    assert_eq!(list.volumes[0].name, "data");
    let mp = root.path().join("data").display().to_string();
    let got = c
        .call(&GetRequest {
            name: "data".into(),
        })
        .await
        .unwrap();
    assert_eq!(got.volume.unwrap().mountpoint, mp);
    let path = c
        .call(&PathRequest {
            name: "data".into(),
        })
        .await
        .unwrap();
    assert_eq!(path.mountpoint, mp);
    let m = c
        .call(&MountRequest {
            name: "data".into(),
            id: "ctr1".into(),
        })
        .await
        .unwrap();
    assert_eq!(m.mountpoint, mp);
    let e = c
        .call(&RemoveRequest {
            name: "data".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Remove: volume data is in use");
    c.call(&UnmountRequest {
        name: "data".into(),
        id: "ctr1".into(),
    })
    .await
    .unwrap();
    let caps = c.call(&CapabilitiesRequest {}).await.unwrap();
    assert_eq!(caps.capabilities.scope, LOCAL_SCOPE);
    c.call(&RemoveRequest {
        name: "data".into(),
    })
    .await
    .unwrap();
    assert!(!root.path().join("data").exists(), "remove cleans up");
    for (method, e) in [
        (
            "Remove",
            c.call(&RemoveRequest {
                name: "data".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "Get",
            c.call(&GetRequest {
                name: "data".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "Path",
            c.call(&PathRequest {
                name: "data".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "Mount",
            c.call(&MountRequest {
                name: "data".into(),
                id: "x".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "Unmount",
            c.call(&UnmountRequest {
                name: "data".into(),
                id: "x".into(),
            })
            .await
            .unwrap_err(),
        ),
    ] {
        assert_eq!(
            e.to_string(),
            format!("VolumeDriver.{method}: no such volume: data")
        );
    }
    p.running.stop().await.unwrap();
}

#[tokio::test]
async fn memvol_mount_tolerates_an_unwritable_root() {
    use plugin_server::volume::*;
    let dir = tempfile::tempdir().unwrap();
    // The root is a file, so no directory can be made under it.
    let root = dir.path().join("file");
    std::fs::write(&root, "").unwrap();
    let p = UnixPlugin::start(memvol(&root).plugin().unwrap()).await;
    let c = p.client();
    c.call(&CreateRequest {
        name: "v".into(),
        opts: None,
    })
    .await
    .unwrap();
    let m = c
        .call(&MountRequest {
            name: "v".into(),
            id: "c".into(),
        })
        .await
        .unwrap();
    assert_eq!(m.mountpoint, root.join("v").display().to_string());
    p.running.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// Unix listeners: directories, stale and live sockets, clean shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn socket_directory_is_created_0755() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("a/b/p.sock");
    let l = Listener::unix(&sock).unwrap();
    assert_eq!(l.socket_path(), Some(sock.as_path()));
    let mode = std::fs::metadata(dir.path().join("a/b"))
        .unwrap()
        .permissions()
        .mode();
    // The umask may take bits away, never add them.
    assert_eq!(mode & 0o7777 & !0o755, 0, "{mode:o}");
    drop(l);
    assert!(!sock.exists(), "an unused listener removes its socket");
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("p.sock");
    plugin_tests::server::stale_socket(&sock);
    assert!(is_gone(&sock), "the stale socket refuses connections");
    let l = Listener::unix(&sock).unwrap();
    // Bound anew: connections queue in the backlog even before serving.
    std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let running = Running::start(Server::new(memvol(dir.path()).plugin().unwrap()), l);
    assert_eq!(post(&sock, "Plugin.Activate", "").await.status, 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_live_socket_is_refused_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let ino = std::fs::metadata(&p.sock).unwrap().ino();
    let err = Listener::unix(&p.sock).unwrap_err();
    assert!(matches!(err, ServeError::SocketInUse(_)), "{err}");
    assert!(err.to_string().contains("in use by a running process"));
    assert_eq!(std::fs::metadata(&p.sock).unwrap().ino(), ino);
    assert_eq!(post(&p.sock, "Plugin.Activate", "").await.status, 200);
    p.running.stop().await.unwrap();
}

#[test]
fn a_non_socket_at_the_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.sock");
    std::fs::write(&file, "keep me").unwrap();
    let err = Listener::unix(&file).unwrap_err();
    assert!(matches!(err, ServeError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let link = dir.path().join("l.sock");
    std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
    assert!(matches!(
        Listener::unix(&link).unwrap_err(),
        ServeError::NotASocket(_)
    ));
    let sub = dir.path().join("d.sock");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(
        Listener::unix(&sub).unwrap_err(),
        ServeError::NotASocket(_)
    ));
    assert!(matches!(
        Listener::plugin_socket("../escape").unwrap_err(),
        ServeError::InvalidName(_)
    ));
}

#[tokio::test]
async fn shutdown_removes_the_socket() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    assert!(p.sock.exists());
    let sock = p.sock.clone();
    p.running.stop().await.unwrap();
    assert!(!sock.exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn shutdown_leaves_a_replaced_socket_alone() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    // A restarted plugin replaced the socket while the old one still runs.
    std::fs::remove_file(&p.sock).unwrap();
    let newer = std::os::unix::net::UnixListener::bind(&p.sock).unwrap();
    let sock = p.sock.clone();
    p.running.stop().await.unwrap();
    assert!(sock.exists(), "the newer socket must survive");
    std::os::unix::net::UnixStream::connect(&sock).unwrap();
    drop(newer);
}

// The shutdown schedules run on tokio's paused clock and are asserted to
// the millisecond. The unix sockets do not force the real clock here: the
// server runs on the test's runtime, and a written request is in the
// kernel before that runtime idles, so it is read at the instant it was
// sent; the clock jumps only when every task waits on a timer.

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_in_flight_calls() {
    let plugin = Plugin::builder()
        .raw("X.Slow", |_| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(Reply::bytes("{\"done\":true}"))
        })
        .build()
        .unwrap();
    let p = UnixPlugin::start(plugin).await;
    let sock = p.sock.clone();
    let mut conn = UnixStream::connect(&sock).await.unwrap();
    let call =
        tokio::spawn(async move { exchange(&mut conn, &docker_request("X.Slow", "")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = tokio::time::Instant::now();
    p.running.stop().await.unwrap();
    // Stopping waited for the rest of the handler's 300 ms, no more.
    assert_eq!(t.elapsed(), Duration::from_millis(250));
    let r = call.await.unwrap();
    assert_eq!(r.ok_json(), serde_json::json!({"done": true}));
    assert!(!sock.exists());
    assert!(is_gone(&sock));
}

#[tokio::test(start_paused = true)]
async fn shutdown_cuts_off_calls_past_the_deadline() {
    let plugin = Plugin::builder()
        .raw("X.Hang", |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Reply::bytes("{}"))
        })
        .build()
        .unwrap();
    let p =
        UnixPlugin::start_with(plugin, |s| s.shutdown_timeout(Duration::from_millis(100))).await;
    let sock = p.sock.clone();
    let mut conn = UnixStream::connect(&sock).await.unwrap();
    conn.write_all(&docker_request("X.Hang", "")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = tokio::time::Instant::now();
    p.running.stop().await.unwrap();
    // Exactly the shutdown deadline.
    assert_eq!(t.elapsed(), Duration::from_millis(100));
    // The connection was closed without a response, at once.
    let mut buf = Vec::new();
    let n = conn.read_to_end(&mut buf).await.unwrap_or(0);
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf));
    assert_eq!(t.elapsed(), Duration::from_millis(100));
    assert!(!sock.exists());
}

#[tokio::test(start_paused = true)]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let root = tempfile::tempdir().unwrap();
    let p = UnixPlugin::start(memvol(root.path()).plugin().unwrap()).await;
    let mut conn = UnixStream::connect(&p.sock).await.unwrap();
    exchange(&mut conn, &docker_request("Plugin.Activate", "")).await;
    let t = tokio::time::Instant::now();
    p.running.stop().await.unwrap();
    // No wait at all, although the shutdown deadline is 10 s by default.
    assert_eq!(t.elapsed(), Duration::ZERO);
}

// ---------------------------------------------------------------------------
// tcp, spec files and TLS
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tcp_with_a_spec_file_written_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let spec_dir = dir.path().join("specs");
    let l = Listener::tcp("127.0.0.1:0").unwrap();
    let port = match l.local_addr().unwrap() {
        plugin_server::ListenAddr::Tcp(a) => a.port(),
        other => panic!("{other:?}"),
    };
    let running = Running::start(
        Server::new(memvol(dir.path()).plugin().unwrap())
            .spec_file(SpecFile::spec(&spec_dir, "tcpvol")),
        l,
    );
    let spec = spec_dir.join("tcpvol.spec");
    wait_for_file(&spec).await;
    let text = std::fs::read_to_string(&spec).unwrap();
    assert_eq!(text, format!("tcp://127.0.0.1:{port}\n"));
    // No temporary file is left next to it.
    assert_eq!(std::fs::read_dir(&spec_dir).unwrap().count(), 1);
    // Discovery finds it, and the client reaches the plugin through it.
    let parsed = plugin_proto::parse_spec(text.as_bytes()).unwrap();
    let c = Client::builder()
        .retry(RetryPolicy::none())
        .build(parsed.address.clone(), parsed.tls.as_ref())
        .unwrap();
    let m: plugin_proto::Manifest = c.call("Plugin.Activate").json().await.unwrap();
    assert!(m.implements("VolumeDriver"));
    let tree_reg = plugin_discovery::LocalRegistry::with_dirs(
        dir.path().join("nosock"),
        vec![spec_dir.clone()],
    );
    let found = tree_reg.plugin("tcpvol").unwrap();
    assert_eq!(found.address().as_str(), format!("tcp://127.0.0.1:{port}"));
    running.stop().await.unwrap();
    assert!(!spec.exists(), "spec removed on shutdown");
}

#[tokio::test]
async fn a_replaced_spec_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(
        Server::new(memvol(dir.path()).plugin().unwrap())
            .spec_file(SpecFile::spec(dir.path(), "p")),
        Listener::tcp("127.0.0.1:0").unwrap(),
    );
    let spec = dir.path().join("p.spec");
    wait_for_file(&spec).await;
    // Another instance rewrote it (a new file, as our atomic writes do).
    let tmp = dir.path().join("other.tmp");
    std::fs::write(&tmp, "tcp://127.0.0.1:1\n").unwrap();
    std::fs::rename(&tmp, &spec).unwrap();
    running.stop().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&spec).unwrap(),
        "tcp://127.0.0.1:1\n"
    );
}

#[tokio::test]
async fn a_unix_socket_can_be_advertised_in_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s/p.sock");
    let running = Running::start(
        Server::new(memvol(dir.path()).plugin().unwrap())
            .spec_file(SpecFile::json(dir.path().join("specs"), "p")),
        Listener::unix(&sock).unwrap(),
    );
    let spec = dir.path().join("specs/p.json");
    wait_for_file(&spec).await;
    let parsed = plugin_proto::parse_json_spec(&std::fs::read(&spec).unwrap()).unwrap();
    assert_eq!(
        parsed.address.as_str(),
        format!("unix://{}", sock.display())
    );
    assert_eq!(parsed.implements, Some(vec!["VolumeDriver".to_owned()]));
    assert_eq!(parsed.tls, None);
    running.stop().await.unwrap();
    assert!(!spec.exists() && !sock.exists());
}

#[tokio::test]
async fn tls_on_tcp_with_a_json_spec() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    let tls = TlsConfig::from_pem_files(&pki.server_cert, &pki.server_key, None).unwrap();
    let spec_dir = dir.path().join("specs");
    let running = Running::start(
        Server::new(memvol(dir.path()).plugin().unwrap())
            .tls(tls)
            .spec_file(
                SpecFile::json(&spec_dir, "tlsvol")
                    .client_tls(TlsOptions::with_ca_file(&pki.ca_cert)),
            ),
        Listener::tcp("127.0.0.1:0").unwrap(),
    );
    let spec = spec_dir.join("tlsvol.json");
    wait_for_file(&spec).await;
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    assert_eq!(json["Name"], "tlsvol");
    assert!(
        json["Addr"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert_eq!(
        json["TLSConfig"]["CAFile"],
        pki.ca_cert.display().to_string()
    );
    assert_eq!(json["TLSConfig"]["InsecureSkipVerify"], false);
    assert_eq!(json["Implements"], serde_json::json!(["VolumeDriver"]));
    // The engine side reads the spec and verifies the server against the CA.
    let parsed = plugin_proto::parse_json_spec(&std::fs::read(&spec).unwrap()).unwrap();
    let c = Client::builder()
        .retry(RetryPolicy::none())
        .build(parsed.address.clone(), parsed.tls.as_ref())
        .unwrap();
    let m: plugin_proto::Manifest = c.call("Plugin.Activate").json().await.unwrap();
    assert!(m.implements("VolumeDriver"));
    c.call(&volume::CreateRequest {
        name: "secure".into(),
        opts: None,
    })
    .await
    .unwrap();
    // A client that trusts another CA fails the handshake.
    let wrong = Client::builder()
        .retry(RetryPolicy::none())
        .build(
            parsed.address.clone(),
            Some(&TlsOptions::with_ca_file(&pki.wrong_ca_cert)),
        )
        .unwrap();
    let e = wrong
        .call("Plugin.Activate")
        .json::<plugin_proto::Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_tls(), "{e}");
    running.stop().await.unwrap();
    assert!(!spec.exists());
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    let tls = TlsConfig::from_pem_files(
        &pki.server_cert,
        &pki.server_key,
        Some(pki.ca_cert.as_path()),
    )
    .unwrap();
    let l = Listener::tcp("127.0.0.1:0").unwrap();
    let addr = match l.local_addr().unwrap() {
        plugin_server::ListenAddr::Tcp(a) => format!("https://localhost:{}", a.port()),
        other => panic!("{other:?}"),
    };
    let running = Running::start(
        Server::new(memvol(dir.path()).plugin().unwrap()).tls(tls),
        l,
    );
    let build = |tls: TlsOptions| {
        Client::builder()
            .retry(RetryPolicy::none())
            .build(addr.as_str(), Some(&tls))
            .unwrap()
    };
    let with_cert = build(
        TlsOptions::with_ca_file(&pki.ca_cert).client_cert(&pki.client_cert, &pki.client_key),
    );
    let m: plugin_proto::Manifest = with_cert.call("Plugin.Activate").json().await.unwrap();
    assert!(m.implements("VolumeDriver"));
    let without = build(TlsOptions::with_ca_file(&pki.ca_cert));
    let e = without
        .call("Plugin.Activate")
        .json::<plugin_proto::Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_tls() || e.is_connect(), "{e}");
    running.stop().await.unwrap();
}

#[test]
fn tls_config_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    let e = TlsConfig::from_pem_files(&pki.empty_file, &pki.server_key, None).unwrap_err();
    assert!(e.to_string().contains("empty.pem"), "{e}");
    let e = TlsConfig::from_pem_files(&pki.server_cert, dir.path().join("missing.pem"), None)
        .unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    // A key that does not match the certificate.
    let e = TlsConfig::from_pem_files(&pki.server_cert, &pki.client_key, None).unwrap_err();
    assert!(e.to_string().starts_with("TLS configuration"), "{e}");
}

#[tokio::test]
async fn tls_is_refused_on_unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    let tls = TlsConfig::from_pem_files(&pki.server_cert, &pki.server_key, None).unwrap();
    let sock = dir.path().join("p.sock");
    let err = Server::new(memvol(dir.path()).plugin().unwrap())
        .handle_signals(false)
        .tls(tls)
        .serve(Listener::unix(&sock).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::TlsOnUnix(_)), "{err}");
    assert!(!sock.exists(), "the listener's socket is removed on error");
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// systemd socket activation
// ---------------------------------------------------------------------------

#[test]
fn systemd_without_activation_is_a_clear_error() {
    // This test process was not socket-activated.
    let e = Listener::systemd("p").unwrap_err();
    assert!(
        matches!(e, ServeError::Systemd(SystemdError::NotActivated(_))),
        "{e}"
    );
    assert!(e.to_string().starts_with("not socket-activated"), "{e}");
}

#[tokio::test]
async fn passed_fds_become_listeners() {
    use std::os::fd::OwnedFd;
    let dir = tempfile::tempdir().unwrap();
    // A unix listener, as systemd's ListenStream=/path makes it.
    let sock = dir.path().join("sd.sock");
    let fd: OwnedFd = std::os::unix::net::UnixListener::bind(&sock)
        .unwrap()
        .into();
    let l = Listener::from_fd(fd).unwrap();
    assert_eq!(l.socket_path(), None, "not ours to remove");
    let running = Running::start(Server::new(memvol(dir.path()).plugin().unwrap()), l);
    assert_eq!(post(&sock, "Plugin.Activate", "").await.status, 200);
    running.stop().await.unwrap();
    assert!(sock.exists(), "a socket passed in is left for its owner");
    // A tcp listener.
    let fd: OwnedFd = std::net::TcpListener::bind("127.0.0.1:0").unwrap().into();
    let l = Listener::from_fd(fd).unwrap();
    assert!(matches!(
        l.local_addr().unwrap(),
        plugin_server::ListenAddr::Tcp(_)
    ));
    // Not a listening socket: refused with a reason.
    let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
    let e = Listener::from_fd(fd).unwrap_err();
    assert!(matches!(e, ServeError::BadFd { .. }), "{e}");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let e = Listener::from_fd(a.into()).unwrap_err();
    assert!(e.to_string().contains("not listening"), "{e}");
    let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
    let e = Listener::from_fd(udp).unwrap_err();
    assert!(e.to_string().contains("not a stream socket"), "{e}");
}

// ---------------------------------------------------------------------------
// The memvol binary's command line, run in a child process
// ---------------------------------------------------------------------------

/// Set in a child process: memvol's arguments, separated by `\x1f`.
const MEMVOL_CHILD: &str = "PLUGIN_SERVER_MEMVOL_CHILD";

/// Runs memvol's command line (`memvol::cli`, what the `memvol` binary
/// runs) when this test binary is re-executed by [`spawn_memvol`]; a no-op
/// in a normal test run. A child process, because memvol installs SIGINT
/// and SIGTERM handlers, which would outlive a test in this process.
#[test]
fn memvol_child() {
    use clap::Parser;
    let Ok(args) = std::env::var(MEMVOL_CHILD) else {
        return;
    };
    let args = memvol::cli::Args::parse_from(std::iter::once("memvol").chain(args.split('\x1f')));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // What the binary prints: the error's message.
    if let Err(e) = rt.block_on(memvol::cli::run(args)) {
        panic!("memvol: {e}");
    }
}

/// Starts memvol with `args` in a child process; `fds` are passed from
/// fd 3 on with `LISTEN_PID`/`LISTEN_FDS` (and `LISTEN_FDNAMES` when
/// `names` is given), as systemd does.
fn spawn_memvol(args: &[&str], fds: &[std::os::fd::RawFd]) -> std::process::Child {
    spawn_memvol_named(args, fds, None)
}

fn spawn_memvol_named(
    args: &[&str],
    fds: &[std::os::fd::RawFd],
    names: Option<&str>,
) -> std::process::Child {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap();
    let test = [
        "server::memvol_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ];
    // Out of the way of fd 3.. first, so that no dup2 in the child
    // overwrites a descriptor still to be moved; closed once spawned.
    let high: Vec<std::os::fd::OwnedFd> = fds
        .iter()
        .map(|&fd| {
            use std::os::fd::FromRawFd;
            // SAFETY: plain fcntl(2) on a descriptor the caller keeps open.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
            assert!(dup >= 100, "{}", std::io::Error::last_os_error());
            // SAFETY: `dup` is a fresh descriptor nothing else owns.
            unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) }
        })
        .collect();
    let mut cmd = if fds.is_empty() {
        let mut c = std::process::Command::new(&exe);
        c.args(test);
        c
    } else {
        let mut c = std::process::Command::new("/bin/sh");
        // `exec` keeps the shell's pid, so LISTEN_PID names memvol.
        c.arg("-c")
            .arg(format!(
                r#"LISTEN_PID=$$ LISTEN_FDS={} exec "$0" "$@""#,
                fds.len()
            ))
            .arg(&exe)
            .args(test);
        let raw: Vec<i32> = high.iter().map(|fd| fd.as_raw_fd()).collect();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                for (i, &fd) in raw.iter().enumerate() {
                    // dup2 clears close-on-exec on the new descriptor.
                    if libc::dup2(fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        c
    };
    if let Some(names) = names {
        cmd.env("LISTEN_FDNAMES", names);
    } else {
        cmd.env_remove("LISTEN_FDNAMES");
    }
    // The child's stderr is piped: only a failing child writes to it (the
    // test harness's panic report), which the tests show on failure.
    cmd.env(MEMVOL_CHILD, args.join("\x1f"))
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(high);
    child
}

/// Sends `signal` and expects a clean exit.
async fn stop_child(child: std::process::Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on our child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("memvol did not exit")
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unix_client(sock: &Path) -> Client {
    Client::builder()
        .retry(RetryPolicy::none())
        .timeout(Duration::from_secs(20))
        .build(format!("unix://{}", sock.display()), None)
        .unwrap()
}

#[tokio::test]
async fn memvol_binary_on_a_socket_stops_on_sigint_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("run/memvol.sock");
    let root = dir.path().join("root");
    let child = spawn_memvol(
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "memvol never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = unix_client(&sock);
    c.call(&volume::CreateRequest {
        name: "v".into(),
        opts: None,
    })
    .await
    .unwrap();
    let m = c
        .call(&volume::MountRequest {
            name: "v".into(),
            id: "c".into(),
        })
        .await
        .unwrap();
    assert_eq!(m.mountpoint, root.join("v").display().to_string());
    stop_child(child, libc::SIGINT).await;
    assert!(!sock.exists(), "memvol removed its socket");
}

#[tokio::test]
async fn memvol_binary_on_tcp_stops_on_sigterm_and_removes_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    let child = spawn_memvol(
        &[
            "--name",
            "tcpvol",
            "--tcp",
            "127.0.0.1:0",
            "--spec-dir",
            specs.to_str().unwrap(),
            "--json-spec",
            "--root",
            dir.path().join("root").to_str().unwrap(),
        ],
        &[],
    );
    let spec = specs.join("tcpvol.json");
    wait_for_file(&spec).await;
    let parsed = plugin_proto::parse_json_spec(&std::fs::read(&spec).unwrap()).unwrap();
    assert!(parsed.address.as_str().starts_with("tcp://127.0.0.1:"));
    assert_eq!(parsed.implements, Some(vec!["VolumeDriver".to_owned()]));
    let c = Client::builder()
        .retry(RetryPolicy::none())
        .build(parsed.address.clone(), parsed.tls.as_ref())
        .unwrap();
    let e = c
        .call(&volume::CreateRequest {
            name: "v".into(),
            opts: Some([("fail".to_owned(), "no space".to_owned())].into()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Create: no space");
    stop_child(child, libc::SIGTERM).await;
    assert!(!spec.exists(), "memvol removed its spec file");
}

#[tokio::test]
async fn systemd_activation_end_to_end() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sdvol.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let root = dir.path().join("root");
    let child = spawn_memvol(
        &["--systemd", "--root", root.to_str().unwrap()],
        &[listener.as_raw_fd()],
    );
    drop(listener);
    // The socket was listening before memvol started; the call waits in
    // the backlog until memvol accepts it.
    let client = unix_client(&sock);
    let m: plugin_proto::Manifest = client.call("Plugin.Activate").json().await.unwrap();
    assert_eq!(m.implements, ["VolumeDriver"]);
    client
        .call(&volume::CreateRequest {
            name: "sd".into(),
            opts: None,
        })
        .await
        .unwrap();
    let list = client.call(&volume::ListRequest {}).await.unwrap();
    assert_eq!(list.volumes[0].name, "sd");
    stop_child(child, libc::SIGTERM).await;
    assert!(sock.exists(), "the activation socket belongs to systemd");
}

#[tokio::test]
async fn memvol_binary_without_activation_fails_clearly() {
    let child = spawn_memvol(&["--systemd"], &[]);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success(), "the child test fails");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("memvol: not socket-activated: LISTEN_PID is not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn systemd_names_pick_the_plugins_socket() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.sock");
    let mine = dir.path().join("sdvol.sock");
    let l_other = std::os::unix::net::UnixListener::bind(&other).unwrap();
    let l_mine = std::os::unix::net::UnixListener::bind(&mine).unwrap();
    let root = dir.path().join("root");
    // A unit passing two sockets, named as FileDescriptorName= names them.
    let child = spawn_memvol_named(
        &[
            "--systemd",
            "--name",
            "sdvol",
            "--root",
            root.to_str().unwrap(),
        ],
        &[l_other.as_raw_fd(), l_mine.as_raw_fd()],
        Some("other.socket:sdvol"),
    );
    drop((l_other, l_mine));
    let client = unix_client(&mine);
    let m: plugin_proto::Manifest = client.call("Plugin.Activate").json().await.unwrap();
    assert_eq!(m.implements, ["VolumeDriver"]);
    // memvol is serving, so it has taken its descriptors: the other one
    // was closed, and nothing listens on it any more.
    let e = std::os::unix::net::UnixStream::connect(&other).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    stop_child(child, libc::SIGTERM).await;
}

#[tokio::test]
async fn systemd_names_that_do_not_match_the_descriptors_fail_clearly() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let l = std::os::unix::net::UnixListener::bind(dir.path().join("s.sock")).unwrap();
    let child = spawn_memvol_named(&["--systemd"], &[l.as_raw_fd()], Some("a:memvol"));
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success(), "the child test fails");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("memvol: LISTEN_FDNAMES=\"a:memvol\" names 2 descriptors, but LISTEN_FDS=1"),
        "{stderr}"
    );
}

//! Group 2: dockerd (their engine) against our example plugin `memvol`,
//! found by dockerd on a unix socket in what it sees as
//! `/run/docker/plugins`, on tcp through a `.spec` in what it sees as
//! `/etc/docker/plugins`, and through a `.json` spec. Both are private
//! directories of the test, mounted there only in dockerd's namespace.

use plugin_server::ListenAddr;
use serde_json::{Value, json};

use super::harness::{Dockerd, Isolation, require, unique_name};
use super::memvol::{Memvol, Serve};
use super::served::socket_dir;

/// Drives dockerd through a volume's life on plugin `name` (memvol):
/// create with options, ls, inspect (options and mountpoint as memvol
/// reports them), a create memvol refuses (`-o fail=boom`, whose message
/// must reach the CLI's stderr), rm.
async fn volume_lifecycle(dockerd: &Dockerd, name: &str, memvol: &Memvol) {
    let out = dockerd
        .docker_ok(&[
            "volume", "create", "-d", name, "-o", "k=v", "-o", "size=1g", "v1",
        ])
        .await;
    assert_eq!(out.trim(), "v1");

    let ls = dockerd
        .docker_ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"])
        .await;
    assert!(
        ls.lines().any(|l| l == format!("{name} v1")),
        "volume ls: {ls}"
    );

    let inspect = dockerd.docker_ok(&["volume", "inspect", "v1"]).await;
    let v: Value = serde_json::from_str(&inspect).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "v1", "{inspect}");
    assert_eq!(v["Driver"], name, "{inspect}");
    assert_eq!(v["Options"], json!({ "k": "v", "size": "1g" }), "{inspect}");
    let mountpoint = memvol.root().join("v1");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap(), "{inspect}");
    assert_eq!(v["Status"], json!({ "mounts": 0 }), "{inspect}");
    assert_eq!(v["Scope"], "local", "{inspect}");
    // memvol's CreatedAt (RFC 3339), passed through by dockerd.
    let created = v["CreatedAt"].as_str().unwrap_or_default();
    assert!(
        created.len() >= 20 && !created.starts_with("0001"),
        "{inspect}"
    );

    // The plugin's error reaches the user, with dockerd's prefixes.
    let refused = dockerd
        .docker(&["volume", "create", "-d", name, "-o", "fail=boom", "v2"])
        .await;
    assert!(!refused.status.success(), "create with fail=boom succeeded");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr.trim(),
        "Error response from daemon: create v2: VolumeDriver.Create: boom",
        "stderr of the refused create"
    );

    dockerd.docker_ok(&["volume", "rm", "v1"]).await;
    let ls = dockerd.docker_ok(&["volume", "ls", "-q"]).await;
    assert!(ls.trim().is_empty(), "volumes left after rm: {ls}");
}

#[tokio::test]
async fn dockerd_uses_memvol_on_unix_socket() {
    let test = "dockerd_uses_memvol_on_unix_socket";
    let Some(bins) = require(test, &["dockerd", "docker", "unshare"]) else {
        return;
    };
    let sockets = socket_dir();
    let name = unique_name("u");
    let socket = sockets.path().join(format!("{name}.sock"));
    let memvol = Memvol::start(Serve::Unix(&socket)).await;
    let dockerd = Dockerd::start_isolated(&bins[0], &Isolation::sockets(sockets.path()));

    volume_lifecycle(&dockerd, &name, &memvol).await;

    drop(dockerd);
    memvol.stop().await;
    assert!(!socket.exists(), "memvol removed its socket");
}

async fn memvol_over_tcp(test: &str, json: bool) {
    let Some(bins) = require(test, &["dockerd", "docker", "unshare"]) else {
        return;
    };
    let (sockets, specs) = (socket_dir(), socket_dir());
    let name = unique_name(if json { "j" } else { "t" });
    let file = specs
        .path()
        .join(format!("{name}.{}", if json { "json" } else { "spec" }));
    let memvol = Memvol::start(Serve::Tcp {
        spec_dir: specs.path(),
        name: &name,
        json,
    })
    .await;
    assert_eq!(memvol.spec(), Some(file.as_path()));
    let ListenAddr::Tcp(addr) = memvol.addr() else {
        panic!("memvol is not on tcp: {:?}", memvol.addr());
    };
    let text = std::fs::read_to_string(&file).unwrap();
    if json {
        let spec: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(spec["Addr"], format!("tcp://{addr}"), "{text}");
    } else {
        assert_eq!(text.trim(), format!("tcp://{addr}"));
    }
    let dockerd = Dockerd::start_isolated(
        &bins[0],
        &Isolation {
            spec_dir: Some(specs.path()),
            ..Isolation::sockets(sockets.path())
        },
    );

    volume_lifecycle(&dockerd, &name, &memvol).await;

    drop(dockerd);
    memvol.stop().await;
    assert!(!file.exists(), "memvol removed its spec file");
}

#[tokio::test]
async fn dockerd_uses_memvol_on_tcp_with_spec() {
    memvol_over_tcp("dockerd_uses_memvol_on_tcp_with_spec", false).await;
}

#[tokio::test]
async fn dockerd_uses_memvol_on_tcp_with_json_spec() {
    memvol_over_tcp("dockerd_uses_memvol_on_tcp_with_json_spec", true).await;
}

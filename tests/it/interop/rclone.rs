//! Group 1: our engine side (discovery, registry, client and the typed
//! `VolumeDriver` proxy) against rclone's volume plugin (`rclone serve
//! docker`). rclone is found in a temporary plugin tree, never in the
//! host's directories, so these tests need no lock.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use plugin_registry::{Policy, Registry, VolumeDriver};
use plugin_tests::tree::PluginTree;

use super::harness::{Listen, Rclone, free_port, require};

fn opts(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Activates plugin `name` through the registry and checks what rclone
/// says it implements.
async fn activate(registry: &Registry, name: &str) -> VolumeDriver {
    let plugin = registry
        .get(name, "VolumeDriver")
        .await
        .unwrap_or_else(|e| panic!("get({name:?}, VolumeDriver): {e}"));
    assert_eq!(plugin.name(), name);
    assert!(plugin.implements("VolumeDriver"));
    let manifest = plugin.manifest().expect("activated");
    assert_eq!(manifest.implements, ["VolumeDriver"]);
    VolumeDriver::new(&plugin).unwrap()
}

/// The typed proxy through a volume's life on rclone: Capabilities, Create
/// with options (an in-memory remote and a local directory remote), Get,
/// List, Path, Remove.
async fn volume_lifecycle(driver: &VolumeDriver, rclone: &Rclone, local: &Path) {
    let caps = driver.capabilities().await.unwrap();
    assert_eq!(caps.scope, "local");

    driver
        .create("mem", opts(&[("type", "memory")]))
        .await
        .unwrap();
    let remote = format!(":local:{}", local.display());
    driver
        .create("disk", opts(&[("remote", &remote)]))
        .await
        .unwrap();

    let vol = driver.get("mem").await.unwrap().expect("a volume");
    assert_eq!(vol.name, "mem");
    let mountpoint = rclone.base_dir().join("mem");
    assert_eq!(vol.mountpoint, mountpoint.to_str().unwrap());
    plugin_proto::GoTime::parse(&vol.created_at)
        .unwrap_or_else(|e| panic!("CreatedAt {:?}: {e}", vol.created_at));
    assert!(vol.status.contains_key("Mounts"), "{vol:?}");

    let mut names: Vec<String> = driver
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    assert_eq!(names, ["disk", "mem"]);

    assert_eq!(
        driver.path("mem").await.unwrap(),
        mountpoint.to_str().unwrap()
    );

    driver.remove("mem").await.unwrap();
    let left: Vec<String> = driver
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(left, ["disk"]);
    driver.remove("disk").await.unwrap();
    assert!(driver.list().await.unwrap().is_empty());
}

/// rclone's errors through our error types: its 500 `{"Err":…}` replies
/// and its plain-text protocol errors (400 for a body that is not JSON,
/// 404 for an unknown method), all as `<Method>: <text>`.
async fn errors(driver: &VolumeDriver) {
    let e = driver.get("missing").await.unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Get: volume not found");
    assert_eq!(e.status_error().map(|s| s.status()), Some(500), "{e:?}");
    assert!(!e.is_status_not_found());

    let e = driver
        .create("bad", opts(&[("type", "memory"), ("nonsense", "1")]))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "VolumeDriver.Create: unsupported backend option \"nonsense\""
    );

    let e = driver.remove("missing").await.unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Remove: volume not found");

    let client = driver.plugin().client();
    let e = client
        .call("VolumeDriver.Get")
        .body(Bytes::from_static(b"{bad"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    assert_eq!(
        e.to_string(),
        "VolumeDriver.Get: invalid character 'b' looking for beginning of object key string\n"
    );

    let e = client
        .call("VolumeDriver.Nope")
        .body(Bytes::from_static(b"{}\n"))
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.to_string(), "VolumeDriver.Nope: 404 page not found\n");
}

#[tokio::test]
async fn registry_drives_rclone_on_unix_socket() {
    let Some(bins) = require("registry_drives_rclone_on_unix_socket", &["rclone"]) else {
        return;
    };
    let tree = PluginTree::new();
    let rclone = Rclone::start(&bins[0], Listen::Unix(tree.path("run/rclone.sock")));
    let registry = Registry::new(tree.registry(), Policy::default());
    assert_eq!(registry.local().scan().unwrap(), ["rclone"]);

    let driver = activate(&registry, "rclone").await;
    assert_eq!(
        driver.plugin().address().to_string(),
        format!("unix://{}", tree.path("run/rclone.sock").display())
    );
    let all = registry.get_all("VolumeDriver").await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["rclone"]);
    let e = registry.get("rclone", "NetworkDriver").await.unwrap_err();
    assert!(e.is_not_implemented(), "{e:?}");

    volume_lifecycle(&driver, &rclone, &tree.mkdir("data")).await;
    errors(&driver).await;
}

#[tokio::test]
async fn registry_drives_rclone_on_tcp_via_spec_files() {
    let Some(bins) = require("registry_drives_rclone_on_tcp_via_spec_files", &["rclone"]) else {
        return;
    };
    let tree = PluginTree::new();
    let port = free_port();
    let rclone = Rclone::start(&bins[0], Listen::Tcp(port));
    let addr = format!("tcp://127.0.0.1:{port}");
    tree.write_spec(0, "rcspec", &format!("{addr}\n"));
    tree.write_json(
        1,
        "rcjson",
        &format!(r#"{{"Name":"rcjson","Addr":"{addr}"}}"#),
    );
    let registry = Registry::new(tree.registry(), Policy::default());
    assert_eq!(registry.local().scan().unwrap(), ["rcspec", "rcjson"]);

    let by_spec = activate(&registry, "rcspec").await;
    assert_eq!(by_spec.plugin().address().to_string(), addr);
    volume_lifecycle(&by_spec, &rclone, &tree.mkdir("data")).await;
    errors(&by_spec).await;

    // The same rclone through a `.json` spec: one volume seen both ways.
    let by_json = activate(&registry, "rcjson").await;
    by_json
        .create("shared", opts(&[("type", "memory")]))
        .await
        .unwrap();
    let vol = by_spec.get("shared").await.unwrap().expect("a volume");
    assert_eq!(vol.name, "shared");
    by_spec.remove("shared").await.unwrap();
    let all = registry.get_all("VolumeDriver").await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["rcspec", "rcjson"]);
}

//! Group 5: podman 4 (a second engine, issue 15) against volume plugins.
//!
//! podman reads its volume plugins from `containers.conf`
//! (`[engine.volume_plugins] NAME = "/path.sock"`: no discovery), needs no
//! daemon, and activates the plugin again in every command. Its requests
//! differ from dockerd's: `Host: plugin`, our media type (v1.1) in
//! `Content-Type` instead of `Accept`, and JSON without the trailing
//! newline. These tests record those bytes as test vectors, replay them to
//! memvol, and drive podman against memvol through a volume's life,
//! checking memvol's state after each command and that memvol's errors
//! reach podman's user.
//!
//! podman keeps a database of its own volumes and asks the plugin about
//! each one (`Get`) for `volume ls`; a volume the plugin lost (restarted)
//! makes the whole `ls` fail until it is removed. That is podman's
//! behaviour, asserted here as it is, not something memvol works around.

use std::path::{Path, PathBuf};

use plugin_client::Client;
use plugin_proto::volume::{CreateRequest, GetRequest, ListRequest, RemoveRequest};
use plugin_proto::{Call, RetryPolicy, decode_request, encode_request};
use plugin_tests::server::Recorded;
use plugin_tests::tree::short_tempdir;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::harness::{Podman, require, unique_name};
use super::memvol::{Memvol, Serve};
use super::wire::{PLUGIN, bless_or_load, fake_volume_driver, raw_texts, replay};

/// The media type podman sends, in `Content-Type`: go-plugins-helpers'
/// v1.1, not the v1.2 dockerd accepts.
const PODMAN_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.1+json";

/// The podman commands whose plugin traffic is recorded, in order.
const COMMANDS: &[&[&str]] = &[
    &[
        "volume",
        "create",
        "--driver",
        PLUGIN,
        "-o",
        "k=v",
        "-o",
        "html=<a&b>",
        "v1",
    ],
    &["volume", "ls"],
    &["volume", "inspect", "v1"],
    &["volume", "rm", "v1"],
];

/// The test vectors: what podman sent for each command, byte for byte.
/// `INTEROP_BLESS=1` rewrites the file from a live run.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vectors {
    /// How to regenerate the file.
    comment: String,
    /// `podman version` of the CLI that sent them.
    podman: String,
    /// One entry per podman command.
    commands: Vec<Command>,
}

/// The requests podman sent a plugin while running one command.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Command {
    /// The podman arguments; `<plugin>` is the plugin's name.
    podman: Vec<String>,
    /// Each request exactly as read from the socket (head and body).
    requests: Vec<String>,
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("it/interop/podman-4.3-volume-requests.json")
}

fn load_vectors() -> Vectors {
    let text = std::fs::read_to_string(vectors_path()).expect("read the podman test vectors");
    serde_json::from_str(&text).expect("parse the podman test vectors")
}

/// podman's request head, in wire order: `Host: plugin`, Go's
/// `User-Agent`, `Content-Length` (always) and the media type in
/// `Content-Type`; no `Accept`.
fn assert_podman_head(r: &Recorded) {
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Host", "User-Agent", "Content-Length", "Content-Type"],
        "header list of {r:?}"
    );
    assert_eq!(r.method, "POST", "{r:?}");
    assert_eq!(r.version, "HTTP/1.1", "{r:?}");
    assert_eq!(r.header("Host"), Some("plugin"), "{r:?}");
    assert_eq!(r.header("User-Agent"), Some("Go-http-client/1.1"));
    assert_eq!(r.header("Content-Type"), Some(PODMAN_CONTENT_TYPE));
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(
        r.raw,
        [r.head.as_slice(), r.body.as_slice()].concat(),
        "not chunked"
    );
}

/// Decodes `body` as the typed request `C`: podman's JSON is what
/// plugin-proto encodes (Go's HTML escaping included) without the trailing
/// newline.
fn assert_decodes_as<C>(body: &[u8])
where
    C: Call + serde::de::DeserializeOwned + Default + std::fmt::Debug,
{
    let typed: C = decode_request(body)
        .unwrap_or_else(|e| panic!("decode {:?}: {e}", String::from_utf8_lossy(body)));
    let ours = encode_request(&typed).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        format!("{}\n", String::from_utf8_lossy(body)),
        "{typed:?}"
    );
}

fn assert_body(r: &Recorded) {
    assert!(!r.body.ends_with(b"\n"), "no trailing newline: {r:?}");
    match r.route().as_str() {
        "/Plugin.Activate" => assert!(r.body.is_empty(), "activation has no body: {r:?}"),
        "/VolumeDriver.Create" => assert_decodes_as::<CreateRequest>(&r.body),
        "/VolumeDriver.Get" => assert_decodes_as::<GetRequest>(&r.body),
        "/VolumeDriver.Remove" => assert_decodes_as::<RemoveRequest>(&r.body),
        other => panic!("unexpected call {other}: {r:?}"),
    }
}

/// A kit fake volume plugin records what podman sends for `podman volume
/// create/ls/inspect/rm`; the bytes are checked field by field, decoded
/// with plugin-proto, and compared with the committed test vectors.
#[tokio::test]
async fn podman_request_bytes() {
    let Some(bins) = require("podman_request_bytes", &["podman"]) else {
        return;
    };
    let dir = short_tempdir("pp");
    let socket = dir.path().join("fake.sock");
    let name = unique_name("pw");
    let plugin = fake_volume_driver().unix(&socket).await;
    let podman = Podman::new(&bins[0], &[(&name, &socket)]);
    let version = podman.version().await;

    let mut captured = Vec::new();
    for cmd in COMMANDS {
        let args: Vec<&str> = cmd
            .iter()
            .map(|a| if *a == PLUGIN { name.as_str() } else { a })
            .collect();
        let out = podman.podman_ok(&args).await;
        match cmd[1] {
            "create" | "rm" => assert_eq!(out.trim(), "v1"),
            "ls" => assert!(
                out.lines()
                    .any(|l| l.split_whitespace().eq([name.as_str(), "v1"])),
                "{out}"
            ),
            _ => {
                let v: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v[0]["Options"], json!({ "html": "<a&b>", "k": "v" }));
                // The fake's Status, passed through.
                assert_eq!(v[0]["Status"]["opts"], v[0]["Options"], "{out}");
            }
        }
        // The CLI has exited: every request is in.
        let reqs = plugin.requests();
        plugin.clear();
        captured.push((cmd, reqs));
    }
    for (_, reqs) in &captured {
        for r in reqs {
            assert_podman_head(r);
            assert_body(r);
        }
        // One connection per command, activated first.
        assert!(reqs.iter().all(|r| r.conn_id == reqs[0].conn_id));
        assert_eq!(reqs[0].route(), "/Plugin.Activate");
    }
    let routes = |i: usize| -> Vec<String> { captured[i].1.iter().map(Recorded::route).collect() };
    assert_eq!(
        routes(0),
        [
            "/Plugin.Activate",
            "/VolumeDriver.Get",
            "/VolumeDriver.Create"
        ]
    );
    // `ls` asks about each volume podman knows, never `List`.
    assert_eq!(routes(1), ["/Plugin.Activate", "/VolumeDriver.Get"]);
    assert_eq!(routes(2), ["/Plugin.Activate", "/VolumeDriver.Get"]);
    assert_eq!(
        routes(3),
        [
            "/Plugin.Activate",
            "/VolumeDriver.Get",
            "/VolumeDriver.Remove"
        ]
    );
    assert_eq!(
        captured[0].1[2].body_text(),
        "{\"Name\":\"v1\",\"Opts\":{\"html\":\"\\u003ca\\u0026b\\u003e\",\"k\":\"v\"}}"
    );
    assert_eq!(podman.leftovers(), Vec::<String>::new());

    let live = Vectors {
        comment: "Requests podman sent a v1 volume plugin on a unix socket, recorded by \
                  interop::podman::podman_request_bytes; regenerate with INTEROP_BLESS=1 \
                  cargo test -p plugin-tests --test it interop::podman"
            .to_owned(),
        podman: version.clone(),
        commands: captured
            .iter()
            .map(|(cmd, reqs)| Command {
                podman: cmd.iter().map(|a| (*a).to_owned()).collect(),
                requests: raw_texts(reqs),
            })
            .collect(),
    };
    let Some(vectors) = bless_or_load(&vectors_path(), &live) else {
        return;
    };
    if vectors.podman == version {
        assert_eq!(live, vectors, "podman's bytes differ from the test vectors");
    } else {
        eprintln!(
            "note: test vectors are from podman {:?}, this is {version:?}: compared field by field only",
            vectors.podman
        );
    }
}

/// The recorded podman requests, replayed byte for byte to memvol on one
/// keep-alive connection per command as podman sends them, are all served:
/// the kit takes `Host: plugin`, a `Content-Type` instead of `Accept`, and
/// bodies without a trailing newline. Each gets 200 except the `Get`
/// podman sends before `Create`, which memvol answers in the plugin
/// convention.
#[tokio::test]
async fn memvol_accepts_podman_bytes() {
    let vectors = load_vectors();
    let dir = short_tempdir("pp");
    let socket = dir.path().join("memvol.sock");
    for raw in vectors.commands.iter().flat_map(|c| &c.requests) {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("\r\nHost: plugin\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Type: ") && !head.contains("Accept"));
        assert!(!body.ends_with('\n'), "{body:?}");
    }
    let memvol = Memvol::start(Serve::Unix(&socket)).await;
    let replies = replay(&socket, vectors.commands.iter().map(|c| &c.requests[..])).await;
    let statuses: Vec<(&str, u16)> = replies.iter().map(|(p, r)| (p.as_str(), r.0)).collect();
    assert_eq!(
        statuses,
        [
            ("/Plugin.Activate", 200),
            ("/VolumeDriver.Get", 500),
            ("/VolumeDriver.Create", 200),
            ("/Plugin.Activate", 200),
            ("/VolumeDriver.Get", 200),
            ("/Plugin.Activate", 200),
            ("/VolumeDriver.Get", 200),
            ("/Plugin.Activate", 200),
            ("/VolumeDriver.Get", 200),
            ("/VolumeDriver.Remove", 200),
        ],
        "{replies:#?}"
    );
    let body = |i: usize| -> Value { serde_json::from_str(&replies[i].1.2).unwrap() };
    assert_eq!(body(0), json!({ "Implements": ["VolumeDriver"] }));
    assert_eq!(body(1), json!({ "Err": "no such volume: v1" }));
    let got = body(4);
    assert_eq!(got["Volume"]["Name"], "v1", "{got}");
    assert_eq!(
        got["Volume"]["Mountpoint"],
        memvol.root().join("v1").to_str().unwrap(),
        "{got}"
    );
    memvol.stop().await;
}

/// The engine side of this workspace, to look at memvol's state.
fn memvol_client(socket: &Path) -> Client {
    Client::builder()
        .retry(RetryPolicy::none())
        .build(format!("unix://{}", socket.display()), None)
        .unwrap()
}

/// The volumes memvol holds.
async fn memvol_volumes(c: &Client) -> Vec<String> {
    let list = c.call(&ListRequest {}).await.unwrap();
    list.volumes.into_iter().map(|v| v.name).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// podman drives memvol through a volume's life: create with options
/// (memvol holds the volume with exactly those options), ls, inspect
/// (memvol's `Status`, passed through), a create memvol refuses (its
/// message reaches podman's stderr; memvol holds nothing more), rm (memvol
/// holds nothing). podman leaves no process, mount or lock file behind.
#[tokio::test]
async fn podman_uses_memvol() {
    let Some(bins) = require("podman_uses_memvol", &["podman"]) else {
        return;
    };
    let dir = short_tempdir("pp");
    let socket = dir.path().join("memvol.sock");
    let memvol = Memvol::start(Serve::Unix(&socket)).await;
    let state = memvol_client(&socket);
    let name = unique_name("pm");
    let podman = Podman::new(&bins[0], &[(&name, &socket)]);

    let out = podman
        .podman_ok(&[
            "volume", "create", "--driver", &name, "-o", "k=v", "-o", "size=1g", "v1",
        ])
        .await;
    assert_eq!(out.trim(), "v1");
    assert_eq!(memvol_volumes(&state).await, ["v1"]);
    // memvol got the options: creating again with the same ones is a
    // no-op, with others an error.
    let opts = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    let again = |o| CreateRequest {
        name: "v1".into(),
        opts: o,
    };
    state
        .call(&again(opts(&[("k", "v"), ("size", "1g")])))
        .await
        .unwrap();
    let e = state.call(&again(opts(&[("k", "v")]))).await.unwrap_err();
    assert!(e.to_string().contains("different options"), "{e}");

    let ls = podman
        .podman_ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"])
        .await;
    assert_eq!(ls.trim(), format!("{name} v1"));

    let inspect = podman.podman_ok(&["volume", "inspect", "v1"]).await;
    let v: Value = serde_json::from_str(&inspect).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "v1", "{inspect}");
    assert_eq!(v["Driver"], name.as_str(), "{inspect}");
    assert_eq!(v["Options"], json!({ "k": "v", "size": "1g" }), "{inspect}");
    assert_eq!(v["Status"], json!({ "mounts": 0 }), "memvol's: {inspect}");

    let refused = podman
        .podman(&[
            "volume",
            "create",
            "--driver",
            &name,
            "-o",
            "fail=boom",
            "v2",
        ])
        .await;
    assert_eq!(refused.status.code(), Some(125));
    assert_eq!(
        stderr(&refused),
        format!(
            "Error: creating volume \"v2\" in plugin {name}: on /VolumeDriver.Create on volume v2 \
             in volume plugin {name}: boom"
        )
    );
    assert_eq!(memvol_volumes(&state).await, ["v1"]);
    let ls = podman.podman_ok(&["volume", "ls", "-q"]).await;
    assert_eq!(ls.trim(), "v1", "podman keeps no refused volume");

    let out = podman.podman_ok(&["volume", "rm", "v1"]).await;
    assert_eq!(out.trim(), "v1");
    assert!(memvol_volumes(&state).await.is_empty());
    let ls = podman.podman_ok(&["volume", "ls", "-q"]).await;
    assert!(ls.trim().is_empty(), "{ls}");

    assert_eq!(podman.leftovers(), Vec::<String>::new());
    drop(podman);
    memvol.stop().await;
}

/// A volume memvol lost (restarted with nothing): podman asks memvol
/// about it, and memvol's `no such volume` reaches podman's user in
/// `inspect`, in the whole `ls` (podman's behaviour), and in `rm`, which
/// still forgets the volume, after which podman works again.
#[tokio::test]
async fn podman_shows_memvol_errors_for_a_lost_volume() {
    let Some(bins) = require("podman_shows_memvol_errors_for_a_lost_volume", &["podman"]) else {
        return;
    };
    let dir = short_tempdir("pp");
    let socket = dir.path().join("memvol.sock");
    let memvol = Memvol::start(Serve::Unix(&socket)).await;
    let name = unique_name("pl");
    let podman = Podman::new(&bins[0], &[(&name, &socket)]);
    podman
        .podman_ok(&["volume", "create", "--driver", &name, "v1"])
        .await;
    memvol.stop().await;
    let memvol = Memvol::start(Serve::Unix(&socket)).await;
    let state = memvol_client(&socket);
    assert!(memvol_volumes(&state).await.is_empty());

    let lost =
        format!("on /VolumeDriver.Get on volume v1 in volume plugin {name}: no such volume: v1");
    let inspect = podman.podman(&["volume", "inspect", "v1"]).await;
    assert_eq!(inspect.status.code(), Some(125));
    assert_eq!(
        stderr(&inspect),
        format!("Error: retrieving volume v1 information from plugin {name}: {lost}")
    );
    let ls = podman.podman(&["volume", "ls"]).await;
    assert_eq!(ls.status.code(), Some(125));
    assert_eq!(
        stderr(&ls),
        format!("Error: retrieving volume v1 information from plugin {name}: {lost}")
    );
    let rm = podman.podman(&["volume", "rm", "v1"]).await;
    assert_eq!(rm.status.code(), Some(1));
    assert_eq!(
        stderr(&rm),
        format!(
            "Error: volume v1 could not be retrieved from plugin {name}, but it has been removed \
             from Podman: {lost}"
        )
    );
    let ls = podman.podman_ok(&["volume", "ls", "-q"]).await;
    assert!(ls.trim().is_empty(), "{ls}");
    // The same name can be created again, on memvol.
    podman
        .podman_ok(&["volume", "create", "--driver", &name, "v1"])
        .await;
    assert_eq!(memvol_volumes(&state).await, ["v1"]);

    assert_eq!(podman.leftovers(), Vec::<String>::new());
    drop(podman);
    memvol.stop().await;
}

//! `plugctl`, run in-process through its library entry with captured
//! output, against temporary plugin trees and fake plugins: each command's
//! table and JSON, exit statuses, every `doctor` finding, `call` replies and
//! status errors, and the demo.
//!
//! The tests whose subject is a deadline (`call`'s and `doctor`'s timeouts,
//! `check`'s slow-method finding, refusals that must not wait) run on
//! tokio's paused clock, plugctl and the fake plugins sharing the test's
//! runtime, and assert exact virtual durations. `watch` stays on the real
//! clock (see its section).

use std::time::Duration;

use plugctl::{Exit, Output, run_captured};
use plugin_tests::server::{FakePlugin, Reply};
use plugin_tests::tree::PluginTree;
use serde_json::Value;
use tokio::time::Instant;

/// `plugctl --socket-dir <run> --spec-dir <etc> --spec-dir <lib> --timeout
/// 500ms ARGS…`.
async fn plugctl(tree: &PluginTree, args: &[&str]) -> Output {
    plugctl_stdin(tree, args, b"").await
}

async fn plugctl_stdin(tree: &PluginTree, args: &[&str], stdin: &[u8]) -> Output {
    plugctl_with(tree, "500ms", args, stdin).await
}

async fn plugctl_with(tree: &PluginTree, timeout: &str, args: &[&str], stdin: &[u8]) -> Output {
    let dirs = [
        "--socket-dir".to_owned(),
        tree.socket_dir().display().to_string(),
        "--spec-dir".to_owned(),
        tree.spec_dir(0).display().to_string(),
        "--spec-dir".to_owned(),
        tree.spec_dir(1).display().to_string(),
        "--timeout".to_owned(),
        timeout.to_owned(),
    ];
    let argv = std::iter::once("plugctl".to_owned())
        .chain(dirs)
        .chain(args.iter().map(|a| (*a).to_owned()));
    run_captured(argv, stdin).await
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", out.stdout))
}

/// The `ls --json` row called `name`.
fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows:#}"))
}

async fn volume_plugin(tree: &PluginTree, rel: &str) -> FakePlugin {
    FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "/VolumeDriver.List",
            Reply::json(
                200,
                r#"{"Volumes":[{"Name":"v1","Mountpoint":"/m"}],"Err":""}"#,
            ),
        )
        .on("/VolumeDriver.Create", Reply::err("boom"))
        .on("/VolumeDriver.Get", Reply::echo())
        .on("/VolumeDriver.Path", Reply::text(200, "not json"))
        .unix(tree.path(rel))
        .await
}

/// A tree with a live volume plugin (`vol`), a stale socket (`dead`), a
/// tcp network plugin behind a `.spec` (`net`), a broken `.spec` (`bad`)
/// and an https `.json` that skips verification and refuses (`sec`).
struct Zoo {
    tree: PluginTree,
    _vol: FakePlugin,
    _net: FakePlugin,
}

async fn zoo() -> Zoo {
    let tree = PluginTree::new();
    let vol = volume_plugin(&tree, "run/vol.sock").await;
    tree.stale_socket("run/dead.sock");
    let net = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .tcp()
        .await;
    tree.write_spec(0, "net", &net.address());
    tree.write_spec(0, "bad", "127.0.0.1:8080");
    tree.write_json(
        1,
        "sec",
        r#"{"Name":"sec","Addr":"https://127.0.0.1:1","TLSConfig":{"InsecureSkipVerify":true},"Implements":["NetworkDriver"]}"#,
    );
    Zoo {
        tree,
        _vol: vol,
        _net: net,
    }
}

// ---------------------------------------------------------------------------
// ls
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ls_lists_each_name_in_scan_order_with_source_address_and_tls() {
    let z = zoo().await;
    let out = plugctl(&z.tree, &["ls"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("SOURCE  PATH"),
        "{}",
        out.stdout
    );
    assert!(
        lines[0].contains("ADDRESS") && lines[0].contains("TLS") && lines[0].ends_with("ERROR")
    );
    assert!(
        !lines[0].contains("STATE"),
        "no probe, no state: {}",
        lines[0]
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    // Sockets sorted, then etc/ sorted, then lib/.
    assert_eq!(names, ["dead", "vol", "bad", "net", "sec"]);
    let sec = lines.iter().find(|l| l.starts_with("sec")).unwrap();
    assert!(
        sec.contains(" json ") && sec.contains("https://127.0.0.1:1") && sec.contains(" insecure"),
        "{sec}"
    );
    let bad = lines.iter().find(|l| l.starts_with("bad")).unwrap();
    assert!(
        bad.contains("did you mean \"tcp://127.0.0.1:8080\"?"),
        "{bad}"
    );

    let out = plugctl(&z.tree, &["ls", "--json"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 5);
    let vol = row(&rows, "vol");
    assert_eq!(vol["source"]["kind"], "socket");
    assert_eq!(
        vol["source"]["path"],
        z.tree.path("run/vol.sock").display().to_string()
    );
    assert_eq!(
        vol["address"],
        format!("unix://{}", z.tree.path("run/vol.sock").display())
    );
    assert_eq!(vol["tls"], "none");
    for key in [
        "state",
        "implements",
        "latency_ms",
        "error",
        "declared_implements",
    ] {
        assert!(vol[key].is_null(), "{key}: {vol}");
    }
    let net = row(&rows, "net");
    assert_eq!(net["source"]["kind"], "spec");
    assert!(
        net["address"]
            .as_str()
            .unwrap()
            .starts_with("tcp://127.0.0.1:")
    );
    assert_eq!(net["tls"], "none");
    let sec = row(&rows, "sec");
    assert_eq!(sec["tls"], "insecure");
    assert_eq!(
        sec["declared_implements"],
        serde_json::json!(["NetworkDriver"])
    );
    let bad = row(&rows, "bad");
    assert_eq!(bad["source"]["kind"], "spec");
    assert_eq!(
        bad["source"]["path"],
        z.tree.spec_dir(0).join("bad.spec").display().to_string()
    );
    assert!(bad["address"].is_null() && bad["tls"].is_null());
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("first path segment"),
        "{bad}"
    );
}

#[tokio::test(start_paused = true)]
async fn ls_probe_activates_in_parallel_and_a_stale_socket_is_refused_at_once() {
    let z = zoo().await;
    // A generous deadline: a refused socket retried on Docker's schedule
    // would take a second; here it is refused at once, not a tick later.
    let start = Instant::now();
    let out = plugctl_with(&z.tree, "5s", &["ls", "--probe", "--json"], b"").await;
    let took = start.elapsed();
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert_eq!(took, Duration::ZERO);
    let rows = json(&out);
    let vol = row(&rows, "vol");
    assert_eq!(vol["state"], "ok");
    assert_eq!(vol["implements"], serde_json::json!(["VolumeDriver"]));
    assert!(vol["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(vol["error"].is_null());
    let dead = row(&rows, "dead");
    assert_eq!(dead["state"], "refused");
    assert!(
        dead["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{dead}"
    );
    assert!(dead["implements"].is_null());
    assert_eq!(row(&rows, "net")["state"], "ok");
    assert_eq!(
        row(&rows, "net")["implements"],
        serde_json::json!(["NetworkDriver"])
    );
    assert_eq!(row(&rows, "bad")["state"], "error");
    assert_eq!(row(&rows, "sec")["state"], "refused");

    let out = plugctl(&z.tree, &["ls", "--probe"]).await;
    assert_eq!(out.exit, Exit::Ok);
    let header = out.stdout.lines().next().unwrap();
    for column in ["STATE", "IMPLEMENTS", "LATENCY", "ERROR"] {
        assert!(header.contains(column), "{header}");
    }
    let dead = out.stdout.lines().find(|l| l.starts_with("dead")).unwrap();
    assert!(dead.contains(" refused "), "{dead}");
}

#[tokio::test]
async fn ls_kind_filters_by_manifest_when_probing_and_by_declaration_otherwise() {
    let z = zoo().await;
    let out = plugctl(
        &z.tree,
        &["ls", "--probe", "--kind", "VolumeDriver", "--json"],
    )
    .await;
    let rows = json(&out);
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // net activated as a NetworkDriver: dropped; failures are kept (kinds unknown).
    assert_eq!(names, ["dead", "vol", "bad", "sec"]);

    let out = plugctl(&z.tree, &["ls", "--kind", "VolumeDriver", "--json"]).await;
    let rows = json(&out);
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // Only sec declares its kinds (NetworkDriver).
    assert_eq!(names, ["dead", "vol", "bad", "net"]);

    let out = plugctl(&z.tree, &["ls", "--kind", "NetworkDriver", "--json"]).await;
    assert_eq!(row(&json(&out), "sec")["name"], "sec");
}

#[tokio::test]
async fn ls_of_an_empty_tree_says_so_and_a_json_array_is_empty() {
    let tree = PluginTree::new();
    let out = plugctl(&tree, &["ls"]).await;
    assert_eq!(out.exit, Exit::Ok);
    assert!(
        out.stdout.starts_with("no plugins found in "),
        "{}",
        out.stdout
    );
    let out = plugctl(&tree, &["ls", "--json"]).await;
    assert_eq!(json(&out), serde_json::json!([]));
}

#[tokio::test]
async fn ls_fails_with_exit_1_when_a_directory_cannot_be_listed() {
    let tree = PluginTree::new();
    // A file where the socket directory should be.
    let file = tree.write("notadir", "x");
    let out = run_captured(
        [
            "plugctl",
            "--socket-dir",
            file.to_str().unwrap(),
            "--spec-dir",
            tree.spec_dir(0).to_str().unwrap(),
            "ls",
        ],
        b"",
    )
    .await;
    assert_eq!(out.exit, Exit::Problem, "{out:?}");
    assert!(
        out.stderr.contains("error reading dir entries"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------

#[tokio::test]
async fn inspect_shows_candidates_in_order_the_winner_tls_and_manifest() {
    let tree = PluginTree::new();
    let _vol = volume_plugin(&tree, "run/vol.sock").await;
    tree.write_spec(1, "vol", "tcp://127.0.0.1:9");

    let out = plugctl(&tree, &["inspect", "vol"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert!(
        out.stdout.contains("winner:      socket "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("manifest:    {\"Implements\":[\"VolumeDriver\"]}"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("activation:  ok"), "{}", out.stdout);
    assert!(out.stdout.contains("shadowed"), "{}", out.stdout);

    let out = plugctl(&tree, &["inspect", "vol", "--json"]).await;
    assert_eq!(out.exit, Exit::Ok);
    let r = json(&out);
    let candidates = r["candidates"].as_array().unwrap();
    // 2 socket candidates, then 4 per spec directory.
    assert_eq!(candidates.len(), 10);
    assert_eq!(
        candidates[0]["path"],
        tree.path("run/vol.sock").display().to_string()
    );
    assert_eq!(candidates[0]["source"], "socket");
    assert_eq!(candidates[0]["file_kind"], "socket");
    assert_eq!(candidates[0]["finding"], "winner");
    assert_eq!(candidates[1]["finding"], "missing");
    assert!(candidates[1]["file_kind"].is_null());
    let shadowed: Vec<&Value> = candidates
        .iter()
        .filter(|c| c["finding"] == "shadowed")
        .collect();
    assert_eq!(shadowed.len(), 1);
    assert_eq!(
        shadowed[0]["path"],
        tree.spec_dir(1).join("vol.spec").display().to_string()
    );
    assert_eq!(shadowed[0]["source"], "spec");
    assert_eq!(shadowed[0]["file_kind"], "file");
    assert_eq!(r["source"]["kind"], "socket");
    assert_eq!(r["tls"], "none");
    assert_eq!(r["tls_options"]["InsecureSkipVerify"], true);
    assert_eq!(r["state"], "ok");
    assert_eq!(
        r["manifest"],
        serde_json::json!({"Implements": ["VolumeDriver"]})
    );
    assert!(r["error"].is_null());
}

#[tokio::test]
async fn inspect_exits_1_for_stale_unknown_broken_and_invalid_names() {
    let tree = PluginTree::new();
    tree.stale_socket("run/dead.sock");
    tree.write_json(0, "bad", "{");

    let out = plugctl(&tree, &["inspect", "dead", "--json"]).await;
    assert_eq!(out.exit, Exit::Problem);
    let r = json(&out);
    assert_eq!(r["state"], "refused");
    assert!(r["manifest"].is_null());
    assert!(r["error"].as_str().unwrap().contains("connection refused"));

    let out = plugctl(&tree, &["inspect", "dead"]).await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(
        out.stdout.contains("activation:  refused"),
        "{}",
        out.stdout
    );

    let out = plugctl(&tree, &["inspect", "ghost", "--json"]).await;
    assert_eq!(out.exit, Exit::Problem);
    let r = json(&out);
    assert!(r["state"].is_null() && r["source"].is_null());
    assert_eq!(
        r["error"],
        "could not find plugin ghost in v1 plugin registry: plugin not found"
    );
    assert!(
        r["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["finding"] == "missing")
    );

    let out = plugctl(&tree, &["inspect", "bad", "--json"]).await;
    assert_eq!(out.exit, Exit::Problem);
    let r = json(&out);
    assert_eq!(r["source"]["kind"], "json");
    let failed = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["finding"] == "failed")
        .unwrap();
    assert_eq!(
        failed["path"],
        tree.spec_dir(0).join("bad.json").display().to_string()
    );

    let out = plugctl(&tree, &["inspect", "../x", "--json"]).await;
    assert_eq!(out.exit, Exit::Problem);
    let r = json(&out);
    assert_eq!(r["candidates"], serde_json::json!([]));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid plugin name"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------
// call
// ---------------------------------------------------------------------------

#[tokio::test]
async fn call_prints_the_reply_and_sends_docker_bodies() {
    let tree = PluginTree::new();
    let vol = volume_plugin(&tree, "run/vol.sock").await;

    // No JSON argument: an empty body, as Docker's nil args.
    let out = plugctl(&tree, &["call", "vol", "VolumeDriver.List"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    // Not a terminal: compact, in the plugin's key order.
    assert_eq!(
        out.stdout,
        "{\"Volumes\":[{\"Name\":\"v1\",\"Mountpoint\":\"/m\"}],\"Err\":\"\"}\n"
    );
    let reqs = vol.requests();
    assert_eq!(reqs.len(), 1, "no handshake first");
    assert_eq!(reqs[0].path, "/VolumeDriver.List");
    assert!(reqs[0].body.is_empty());

    // A JSON argument is sent as written, with Go's trailing newline.
    let out = plugctl(
        &tree,
        &["call", "vol", "VolumeDriver.Get", r#"{"Name": "v1"}"#],
    )
    .await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert_eq!(vol.requests()[1].body_text(), "{\"Name\": \"v1\"}\n");
    assert_eq!(out.stdout, "{\"Name\":\"v1\"}\n");

    // `-` reads stdin.
    let out = plugctl_stdin(
        &tree,
        &["call", "vol", "VolumeDriver.Get", "-"],
        b"{\"Name\":\"v2\"}\n",
    )
    .await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert_eq!(vol.requests()[2].body_text(), "{\"Name\":\"v2\"}\n");

    // A reply that is not JSON is printed as it came.
    let out = plugctl(&tree, &["call", "vol", "VolumeDriver.Path", "{}"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert_eq!(out.stdout, "not json");
}

#[tokio::test(start_paused = true)]
async fn call_status_errors_print_dockers_text_and_exit_1() {
    let tree = PluginTree::new();
    let _vol = volume_plugin(&tree, "run/vol.sock").await;
    tree.stale_socket("run/dead.sock");

    let out = plugctl(
        &tree,
        &["call", "vol", "VolumeDriver.Create", r#"{"Name":"x"}"#],
    )
    .await;
    assert_eq!(out.exit, Exit::Problem);
    assert_eq!(out.stderr, "VolumeDriver.Create: boom\n");
    assert!(out.stdout.is_empty());

    // Unscripted: Go's 404 text.
    let out = plugctl(&tree, &["call", "vol", "VolumeDriver.Mount"]).await;
    assert_eq!(out.exit, Exit::Problem);
    assert_eq!(out.stderr, "VolumeDriver.Mount: 404 page not found\n\n");

    let start = Instant::now();
    let out = plugctl_with(&tree, "5s", &["call", "dead", "VolumeDriver.List"], b"").await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a refused socket is not retried"
    );

    let out = plugctl(&tree, &["call", "ghost", "VolumeDriver.List"]).await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(out.stderr.contains("plugin not found"), "{}", out.stderr);
}

#[tokio::test]
async fn call_usage_errors_exit_2_before_any_io() {
    let tree = PluginTree::new();
    let vol = volume_plugin(&tree, "run/vol.sock").await;

    let out = plugctl(&tree, &["call", "vol", "VolumeDriver.Get", "{not json"]).await;
    assert_eq!(out.exit, Exit::Usage);
    assert!(out.stderr.contains("not JSON"), "{}", out.stderr);

    let out = plugctl(&tree, &["call", "vol", "List"]).await;
    assert_eq!(out.exit, Exit::Usage);

    let out = plugctl(&tree, &["call", "vol"]).await;
    assert_eq!(out.exit, Exit::Usage, "clap: missing METHOD");
    assert!(vol.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn call_times_out_under_the_deadline() {
    let tree = PluginTree::new();
    let _slow = FakePlugin::builder()
        .on("/VolumeDriver.List", Reply::hang())
        .unix(tree.path("run/slow.sock"))
        .await;
    let start = Instant::now();
    let out = plugctl_with(&tree, "200ms", &["call", "slow", "VolumeDriver.List"], b"").await;
    assert_eq!(out.exit, Exit::Problem);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert!(!out.stderr.is_empty());
}

// ---------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------

#[tokio::test]
async fn doctor_reports_no_problems_with_exit_0() {
    let tree = PluginTree::new();
    let _vol = volume_plugin(&tree, "run/vol.sock").await;
    let out = plugctl(&tree, &["doctor"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert_eq!(out.stdout, "no problems found (1 plugin name checked)\n");
    let out = plugctl(&tree, &["doctor", "--json"]).await;
    assert_eq!(
        json(&out),
        serde_json::json!({"checked": 1, "problems": []})
    );
}

/// The `(kind, name, path)` of every problem `doctor --json` reports.
async fn problems(tree: &PluginTree) -> Vec<(String, String, String)> {
    let out = plugctl(tree, &["doctor", "--json"]).await;
    let r = json(&out);
    let list = r["problems"].as_array().unwrap();
    assert_eq!(
        out.exit,
        if list.is_empty() {
            Exit::Ok
        } else {
            Exit::Problem
        }
    );
    for p in list {
        assert!(
            p["severity"] == "error" || p["severity"] == "warning",
            "{p}"
        );
        assert!(!p["message"].as_str().unwrap().is_empty(), "{p}");
    }
    list.iter()
        .map(|p| {
            let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
            (s(&p["kind"]), s(&p["name"]), s(&p["path"]))
        })
        .collect()
}

fn p(kind: &str, name: &str, path: impl AsRef<std::path::Path>) -> (String, String, String) {
    (
        kind.to_owned(),
        name.to_owned(),
        path.as_ref().display().to_string(),
    )
}

#[tokio::test(start_paused = true)]
async fn doctor_finds_stale_sockets_and_dead_plugins() {
    let tree = PluginTree::new();
    let dead = tree.stale_socket("run/dead.sock");
    let _hang = FakePlugin::builder()
        .on("/Plugin.Activate", Reply::hang())
        .unix(tree.path("run/hang.sock"))
        .await;
    let _fail = FakePlugin::builder()
        .on("/Plugin.Activate", Reply::err("not today"))
        .unix(tree.path("run/fail.sock"))
        .await;
    let start = Instant::now();
    let found = problems(&tree).await;
    // The plugins are activated in parallel: the mute one costs the 500 ms
    // timeout once, the others nothing.
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(
        found,
        [
            p("stale_socket", "dead", &dead),
            p("activation_failed", "fail", tree.path("run/fail.sock")),
            p("timeout", "hang", tree.path("run/hang.sock")),
        ]
    );
    let out = plugctl(&tree, &["doctor"]).await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(
        out.stdout.contains("Plugin.Activate: not today"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("3 problems found (3 plugin names checked)\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn doctor_finds_unparsable_and_unreadable_specs_with_file_and_reason() {
    let tree = PluginTree::new();
    let bad = tree.write_spec(0, "bad", "localhost:8080");
    let json_bad = tree.write_json(1, "jbad", r#"{"Addr": 12}"#);
    let fifo = tree.fifo("etc/pipe.spec");
    let found = problems(&tree).await;
    assert_eq!(
        found,
        [
            p("unparsable_spec", "bad", &bad),
            p("unreadable_spec", "pipe", &fifo),
            p("unparsable_spec", "jbad", &json_bad),
        ]
    );
    let out = plugctl(&tree, &["doctor", "--json"]).await;
    let r = json(&out);
    let message = r["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("tcp://localhost:8080"),
        "the reason, with a hint: {message}"
    );
    assert!(
        !message.contains(&bad.display().to_string()),
        "the path has its own field: {message}"
    );
    let message = r["problems"][1]["message"].as_str().unwrap();
    assert!(message.contains("named pipe"), "{message}");
}

#[tokio::test]
async fn doctor_finds_shadowed_unresolvable_and_invalid_names() {
    let tree = PluginTree::new();
    let _vol = volume_plugin(&tree, "run/vol.sock").await;
    let spec = tree.write_spec(0, "vol", "tcp://127.0.0.1:9");
    let json_file = tree.write_json(1, "vol", r#"{"Addr":"tcp://127.0.0.1:9"}"#);
    // Scan lists `odd` for the socket `odd.bar`, which never resolves.
    tree.stale_socket("run/odd.bar");
    // And `""` for a socket named `.sock`: rejected as a name.
    tree.stale_socket("run/.sock");
    let found = problems(&tree).await;
    assert_eq!(
        found,
        [
            p("invalid_name", "", "-"),
            p("unresolvable", "odd", "-"),
            p("shadowed", "vol", &spec),
            p("shadowed", "vol", &json_file),
        ]
    );
    let out = plugctl(&tree, &["doctor"]).await;
    assert!(
        out.stdout.contains("invalid name  \"\""),
        "empty names are shown quoted:\n{}",
        out.stdout
    );
}

#[tokio::test]
async fn doctor_finds_insecure_and_ignored_tls() {
    let tree = PluginTree::new();
    let https_spec = tree.write_spec(0, "web", "https://127.0.0.1:1");
    let insecure_json = tree.write_json(
        0,
        "skip",
        r#"{"Addr":"https://127.0.0.1:1","TLSConfig":{"InsecureSkipVerify":true}}"#,
    );
    let plain_json = tree.write_json(
        1,
        "plain",
        r#"{"Addr":"tcp://127.0.0.1:1","TLSConfig":{"CAFile":"/etc/ca.pem"}}"#,
    );
    // Verified https with a CA is fine as far as TLS goes.
    tree.write_json(
        1,
        "good",
        r#"{"Addr":"https://127.0.0.1:1","TLSConfig":{"CAFile":"/nonexistent/ca.pem"}}"#,
    );
    let found: Vec<_> = problems(&tree)
        .await
        .into_iter()
        // Nothing listens on port 1: each also fails to activate.
        .filter(|(kind, _, _)| kind != "refused" && kind != "activation_failed")
        .collect();
    assert_eq!(
        found,
        [
            p("insecure_tls", "skip", &insecure_json),
            p("insecure_tls", "web", &https_spec),
            p("tls_ignored", "plain", &plain_json),
        ]
    );
}

// ---------------------------------------------------------------------------
// demo, usage
// ---------------------------------------------------------------------------

// Real time: time is not the subject; the bound is on the whole session's
// work (a plugin served, files written, every command run), not a timer.
#[tokio::test]
async fn demo_runs_to_success_and_cleans_up() {
    let start = Instant::now();
    let out = run_captured(["plugctl", "demo"], b"").await;
    assert_eq!(
        out.exit,
        Exit::Ok,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    for step in 1..=6 {
        assert!(
            out.stdout.contains(&format!("[{step}/6] ")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("VolumeDriver.Create demo-vol"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2 problems found"), "{}", out.stdout);
    assert!(
        out.stdout.contains("every step behaved as expected"),
        "{}",
        out.stdout
    );
    let tree = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    assert!(!std::path::Path::new(tree).exists(), "{tree} was removed");

    let out = run_captured(["plugctl", "demo", "--json"], b"").await;
    assert_eq!(out.exit, Exit::Usage);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let tree = PluginTree::new();
    for args in [
        &["ls", "--bogus"][..],
        &["inspect"],
        &["--timeout", "1s", "ls"],
        &["nope"],
    ] {
        let out = plugctl(&tree, args).await;
        assert_eq!(out.exit, Exit::Usage, "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty());
    }
    for timeout in ["0s", "fast", "5"] {
        let out = plugctl_with(&tree, timeout, &["ls"], b"").await;
        assert_eq!(out.exit, Exit::Usage, "{timeout}: {out:?}");
        assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
    }
    let out = plugctl(&tree, &["--version"]).await;
    assert_eq!(out.exit, Exit::Ok);
    assert!(out.stdout.starts_with("plugctl "), "{}", out.stdout);
}

#[tokio::test]
async fn probing_many_plugins_on_a_terminal_shows_a_progress_line_on_stderr_only() {
    let tree = PluginTree::new();
    let mut fakes = Vec::new();
    for i in 0..8 {
        fakes.push(volume_plugin(&tree, &format!("run/p{i}.sock")).await);
    }
    let (socket_dir, etc, lib) = (tree.socket_dir(), tree.spec_dir(0), tree.spec_dir(1));
    let args = [
        "plugctl",
        "--socket-dir",
        socket_dir.to_str().unwrap(),
        "--spec-dir",
        etc.to_str().unwrap(),
        "--spec-dir",
        lib.to_str().unwrap(),
        "ls",
        "--probe",
    ];
    let run = |stderr_terminal: bool| async move {
        let (mut stdin, mut stdout, mut stderr) = (&b""[..], Vec::new(), Vec::new());
        let mut io = plugctl::Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdout_terminal: false,
            stderr_terminal,
        };
        let exit = plugctl::run(args, &mut io).await;
        (
            exit,
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    };
    let (exit, stdout, stderr) = run(true).await;
    assert_eq!(exit, Exit::Ok);
    assert!(
        stderr.starts_with("probing 8 plugins in parallel (each bounded by 2s)…"),
        "{stderr:?}"
    );
    assert!(
        stderr.ends_with("\r\x1b[2K"),
        "the line is erased: {stderr:?}"
    );
    assert!(!stdout.contains("probing"), "stdout stays a clean table");
    let (_, _, stderr) = run(false).await;
    assert!(
        stderr.is_empty(),
        "no progress line off a terminal: {stderr:?}"
    );
}

// ---------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------

/// A writer the test reads while `watch` is still writing to it.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Budget for one expected event: a few rescan intervals.
///
/// Real time, for every `watch` test: the file-system events come from
/// notify's own thread, outside the runtime, so a paused clock would jump to
/// the next rescan while an event is on its way, and the tests could no
/// longer tell an event from a rescan (nor coalescing from polling).
const EVENT_BUDGET: Duration = Duration::from_secs(3);

/// A running `watch`'s output, read line by line.
struct Stream {
    out: Shared,
    err: Shared,
    next: usize,
}

impl Stream {
    /// Waits until `watch` says what it watches (its watches are in place).
    async fn ready(&self) {
        let start = Instant::now();
        while !self.err.text().contains("watching ") {
            assert!(
                start.elapsed() < EVENT_BUDGET,
                "watch never started: {}",
                self.err.text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The next line, parsed as JSON.
    async fn next(&mut self) -> Value {
        let start = Instant::now();
        loop {
            let text = self.out.text();
            if let Some(line) = text.lines().nth(self.next).filter(|_| text.ends_with('\n')) {
                self.next += 1;
                return serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            }
            assert!(
                start.elapsed() < EVENT_BUDGET,
                "no event after line {} within {EVENT_BUDGET:?}:\n{text}",
                self.next
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The next line, which must be `event` about `name`.
    async fn expect(&mut self, event: &str, name: &str) -> Value {
        let e = self.next().await;
        assert_eq!(
            (e["event"].as_str(), e["name"].as_str()),
            (Some(event), Some(name)),
            "{e}\nall output:\n{}",
            self.out.text()
        );
        e
    }
}

/// Runs `plugctl watch --json [--interval 100ms] EXTRA…` on `tree` while
/// `script` runs; `script` returning stops the watch, which must exit 0.
async fn watching<F, Fut>(tree: &PluginTree, extra: &[&str], script: F)
where
    F: FnOnce(Stream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (out, err) = (Shared::default(), Shared::default());
    let stream = Stream {
        out: out.clone(),
        err: err.clone(),
        next: 0,
    };
    let mut argv: Vec<String> = [
        "plugctl",
        "--socket-dir",
        tree.socket_dir().to_str().unwrap(),
        "--spec-dir",
        tree.spec_dir(0).to_str().unwrap(),
        "--spec-dir",
        tree.spec_dir(1).to_str().unwrap(),
        "--timeout",
        "200ms",
        "watch",
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !extra.contains(&"--interval") {
        argv.extend(["--interval".to_owned(), "100ms".to_owned()]);
    }
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (mut stdin, mut stdout, mut stderr) = (&b""[..], out.clone(), err.clone());
    let mut io = plugctl::Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdout_terminal: false,
        stderr_terminal: false,
    };
    let watch = plugctl::run_until(argv, &mut io, async {
        let _ = stop_rx.await;
    });
    let script = async {
        script(stream).await;
        let _ = stop_tx.send(());
    };
    let (exit, ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(watch, script)
    })
    .await
    .expect("the watch did not end when stopped");
    assert_eq!(exit, Exit::Ok, "stderr: {}", err.text());
}

#[tokio::test]
async fn watch_streams_plugins_appearing_going_stale_and_vanishing() {
    let owner = PluginTree::new();
    let tree = &owner;
    let web = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .tcp()
        .await;
    tree.write_spec(0, "web", &web.address());
    watching(tree, &[], |mut s| async move {
        let present = s.next().await;
        assert_eq!(present["event"], "present");
        assert_eq!(present["name"], "web");
        assert_eq!(present["state"], "live");
        assert_eq!(present["source"]["kind"], "spec");
        assert_eq!(present["address"], web.address());
        s.ready().await;

        // A plugin starts: its socket appears and accepts connections.
        let vol = volume_plugin(tree, "run/vol.sock").await;
        let e = s.expect("appeared", "vol").await;
        assert_eq!(e["state"], "live");
        assert_eq!(e["source"]["kind"], "socket");
        assert_eq!(
            e["address"],
            format!("unix://{}", tree.path("run/vol.sock").display())
        );
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");

        // It dies without cleaning up: no file-system event, the socket
        // stays; the next liveness check sees it refuse.
        vol.shutdown().await;
        let e = s.expect("stale", "vol").await;
        assert_eq!(e["state"], "stale");
        assert_eq!(e["detail"], "connection refused");

        // Someone removes the stale socket.
        std::fs::remove_file(tree.path("run/vol.sock")).unwrap();
        let e = s.expect("vanished", "vol").await;
        assert_eq!(e["source"]["kind"], "socket", "the last known source");
        assert_eq!(e["state"], Value::Null);

        // The tcp plugin stops: its port refuses too.
        web.shutdown().await;
        s.expect("stale", "web").await;
        // And comes back on the same port.
        let _web = FakePlugin::builder().tcp_at(web.addr()).await;
        s.expect("live", "web").await;
        assert_eq!(s.out.text().lines().count(), 6, "nothing else happened");
    })
    .await;
}

#[tokio::test]
async fn watch_reports_changed_and_broken_spec_files_and_restarted_plugins() {
    let owner = PluginTree::new();
    let tree = &owner;
    let a = FakePlugin::builder().tcp().await;
    let b = FakePlugin::builder().tcp().await;
    tree.write_spec(0, "web", &a.address());
    let _vol = volume_plugin(tree, "run/vol.sock").await;
    watching(tree, &[], |mut s| async move {
        s.expect("present", "vol").await;
        s.expect("present", "web").await;
        s.ready().await;

        tree.write_spec(0, "web", &b.address());
        let e = s.expect("changed", "web").await;
        assert_eq!(e["address"], b.address());
        assert_eq!(e["previous"]["address"], a.address());
        assert_eq!(e["previous"]["source"]["kind"], "spec");
        assert_eq!(e["state"], "live");

        tree.write_spec(0, "web", "127.0.0.1:8080");
        let e = s.expect("broken", "web").await;
        assert_eq!(e["state"], "broken");
        assert_eq!(e["address"], Value::Null);
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("did you mean \"tcp://127.0.0.1:8080\"?"),
            "{e}"
        );

        // A .json spec now decides the name from the first spec directory's
        // lower priority form: the source changes.
        std::fs::remove_file(tree.spec_dir(0).join("web.spec")).unwrap();
        tree.write_json(0, "web", &format!(r#"{{"Addr":"{}"}}"#, a.address()));
        let e = s.expect("changed", "web").await;
        assert_eq!(e["source"]["kind"], "json");
        assert_eq!(e["previous"]["address"], Value::Null, "it was broken");

        // The volume plugin restarts: a new socket at the same path.
        drop(_vol);
        std::fs::remove_file(tree.path("run/vol.sock")).unwrap();
        let _vol = volume_plugin(tree, "run/vol.sock").await;
        let e = s.expect("changed", "vol").await;
        assert_eq!(e["detail"], "socket re-created");
        assert_eq!(e["state"], "live");
    })
    .await;
}

#[tokio::test]
async fn watch_polls_a_missing_directory_and_watches_it_once_it_exists() {
    let owner = PluginTree::new();
    let tree = &owner;
    std::fs::remove_dir(tree.socket_dir()).unwrap();
    watching(tree, &[], |mut s| async move {
        s.ready().await;
        assert!(
            s.err.text().contains("(polling, rescanning every 100ms)"),
            "{}",
            s.err.text()
        );
        tree.mkdir("run");
        let _vol = volume_plugin(tree, "run/vol.sock").await;
        s.expect("appeared", "vol").await;
        // From now on the directory is watched: changes show at once.
        let _p = volume_plugin(tree, "run/p2.sock").await;
        s.expect("appeared", "p2").await;
    })
    .await;
}

#[tokio::test]
async fn watch_coalesces_bursts_of_file_events_into_rescans() {
    let owner = PluginTree::new();
    let tree = &owner;
    watching(tree, &["--interval", "10s"], |mut s| async move {
        s.ready().await;
        // Thousands of events about files that are not plugins...
        for i in 0..2000 {
            let junk = tree.spec_dir(1).join(format!("junk{}.txt", i % 50));
            std::fs::write(&junk, "x").unwrap();
            std::fs::remove_file(&junk).unwrap();
        }
        // ...produce no line, and the next real change is the next line,
        // seen through inotify (the interval is far away).
        tree.write_spec(1, "late", "tcp://127.0.0.1:1");
        let e = s.expect("appeared", "late").await;
        assert_eq!(e["state"], "stale");
    })
    .await;
}

#[tokio::test]
async fn watch_count_ends_after_n_lines_in_the_human_format() {
    let owner = PluginTree::new();
    let tree = &owner;
    let _vol = volume_plugin(tree, "run/vol.sock").await;
    tree.stale_socket("run/dead.sock");
    let out = plugctl(tree, &["watch", "--count", "2"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let dead = format!(
        "  present     dead  unix://{} (socket)  stale: connection refused",
        tree.path("run/dead.sock").display()
    );
    assert!(lines[0].ends_with(&dead), "{}", lines[0]);
    let time = lines[0].split_whitespace().next().unwrap();
    assert!(
        time.starts_with("20") && time.ends_with('Z'),
        "{}",
        lines[0]
    );
    assert!(lines[1].ends_with(" (socket)  live"), "{}", lines[1]);
    assert!(out.stderr.starts_with("watching "), "{}", out.stderr);
}

/// Set in a child process: plugctl's arguments, separated by `\x1f`.
const PLUGCTL_CHILD: &str = "PLUGCTL_WATCH_CHILD";

/// Runs the plugctl binary's entry point (`plugctl::main_from`, signal
/// handling included) when this test binary is re-executed by
/// [`watch_ends_cleanly_on_sigterm_and_sigint`]; a no-op otherwise. A
/// child process, because the handlers would outlive a test in this one.
#[test]
fn plugctl_child() {
    let Ok(args) = std::env::var(PLUGCTL_CHILD) else {
        return;
    };
    let code = plugctl::main_from(std::iter::once("plugctl").chain(args.split('\x1f')));
    assert_eq!(code, std::process::ExitCode::SUCCESS);
}

#[test]
fn watch_ends_cleanly_on_sigterm_and_sigint() {
    use std::io::{BufRead, BufReader};
    let tree = PluginTree::new();
    tree.stale_socket("run/dead.sock");
    let (run, etc) = (tree.socket_dir(), tree.spec_dir(0));
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let args = [
            "--socket-dir",
            run.to_str().unwrap(),
            "--spec-dir",
            etc.to_str().unwrap(),
            "watch",
            "--json",
        ];
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "cli::plugctl_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PLUGCTL_CHILD, args.join("\x1f"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        // The watch is in place (and the present line written) once this
        // line is out; the handlers are installed before it.
        let mut line = String::new();
        while !line.starts_with("watching ") {
            line.clear();
            assert_ne!(
                stderr.read_line(&mut line).unwrap(),
                0,
                "the child ended early"
            );
        }
        // SAFETY: plain kill(2) on our child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no exit after signal {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        assert!(status.success(), "signal {signal}: {status}\n{stdout}");
        // The harness writes around it: `test cli::plugctl_child ... {…}`.
        let present: Vec<Value> = stdout
            .lines()
            .filter_map(|l| l.find("{\"time\"").map(|i| &l[i..]))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(present.len(), 1, "{stdout}");
        assert_eq!(present[0]["name"], "dead");
        assert_eq!(present[0]["state"], "stale");
    }
}

// ---------------------------------------------------------------------------
// completions and man
// ---------------------------------------------------------------------------

#[tokio::test]
async fn man_dir_writes_one_page_per_command_and_completions_refuse_unknown_shells() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_captured(
        ["plugctl", "man", "--dir", dir.path().to_str().unwrap()],
        b"",
    )
    .await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    let mut written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut listed: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(written, listed, "stdout names what was written");
    for page in [
        "plugctl.1",
        "plugctl-watch.1",
        "plugctl-ls.1",
        "plugctl-man.1",
    ] {
        assert!(written.iter().any(|w| w == page), "{page} in {written:?}");
    }
    let watch = std::fs::read_to_string(dir.path().join("plugctl-watch.1")).unwrap();
    assert!(
        watch.contains("\\-\\-interval") && watch.contains("\\-\\-count"),
        "{watch}"
    );

    let missing = dir.path().join("nope");
    let out = run_captured(["plugctl", "man", "--dir", missing.to_str().unwrap()], b"").await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(
        out.stderr.contains("writing the manual pages into"),
        "{}",
        out.stderr
    );

    let out = run_captured(["plugctl", "completions", "tcsh"], b"").await;
    assert_eq!(out.exit, Exit::Usage);
    assert!(
        out.stderr.contains("bash") && out.stderr.contains("zsh"),
        "{}",
        out.stderr
    );
    let out = run_captured(["plugctl", "completions", "bash"], b"").await;
    assert_eq!(out.exit, Exit::Ok);
    assert!(
        out.stdout.contains("complete -F _plugctl"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

/// A volume plugin that answers every call as Docker expects, except the
/// routes `flaws` replaces. `Get` answers the volume, then (after
/// `Remove`) a 500 `{"Err":…}`, as go-plugins-helpers does.
async fn scripted_volume(tree: &PluginTree, flaws: Vec<(&str, Reply)>) -> FakePlugin {
    let volume = r#"{"Name":"v","Mountpoint":"/m"}"#;
    let mut script = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "/VolumeDriver.Capabilities",
            Reply::json(200, r#"{"Capabilities":{"Scope":"local"}}"#),
        )
        .on("/VolumeDriver.Create", Reply::ok())
        .on_seq(
            "/VolumeDriver.Get",
            [
                Reply::json(200, format!(r#"{{"Volume":{volume},"Err":""}}"#)),
                Reply::err("no such volume"),
            ],
        )
        .on(
            "/VolumeDriver.List",
            Reply::json(200, format!(r#"{{"Volumes":[{volume}],"Err":""}}"#)),
        )
        .on(
            "/VolumeDriver.Path",
            Reply::json(200, r#"{"Mountpoint":"/m"}"#),
        )
        .on(
            "/VolumeDriver.Mount",
            Reply::json(200, r#"{"Mountpoint":"/m","Err":""}"#),
        )
        .on("/VolumeDriver.Unmount", Reply::ok())
        .on("/VolumeDriver.Remove", Reply::ok());
    for (route, reply) in flaws {
        script = if route == "/VolumeDriver.Get" {
            // The flaw is in the answer to the removed volume.
            script.on_seq(
                route,
                [
                    Reply::json(200, format!(r#"{{"Volume":{volume},"Err":""}}"#)),
                    reply,
                ],
            )
        } else {
            script.on(route, reply)
        };
    }
    script.unix(tree.path("run/vol.sock")).await
}

/// `plugctl check vol --json` with `timeout`: the findings' kinds, in
/// order, and the whole report.
async fn check_findings(tree: &PluginTree, name: &str, timeout: &str) -> (Vec<String>, Value) {
    let out = plugctl_with(tree, timeout, &["check", name, "--json"], b"").await;
    let report = json(&out);
    let kinds: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    let expected = if kinds.is_empty() {
        Exit::Ok
    } else {
        Exit::Problem
    };
    assert_eq!(out.exit, expected, "{out:?}");
    (kinds, report)
}

/// The one finding a plugin with one flaw must get, with its Docker
/// consequence.
async fn one_finding(flaw: (&str, Reply), kind: &str, docker: &str) -> Value {
    let tree = PluginTree::new();
    let plugin = scripted_volume(&tree, vec![flaw]).await;
    let (kinds, report) = check_findings(&tree, "vol", "300ms").await;
    assert_eq!(kinds, [kind], "{report:#}");
    let finding = &report["findings"][0];
    assert!(
        finding["docker"].as_str().unwrap().contains(docker),
        "{finding:#}"
    );
    drop(plugin);
    finding.clone()
}

#[tokio::test]
async fn check_passes_a_volume_plugin_without_flaws_and_cleans_up_what_it_created() {
    let tree = PluginTree::new();
    let plugin = scripted_volume(&tree, vec![]).await;
    let out = plugctl(&tree, &["check", "vol"]).await;
    assert_eq!(out.exit, Exit::Ok, "{out:?}");
    assert!(
        out.stdout
            .contains("no findings: vol speaks VolumeDriver as Docker uses it"),
        "{}",
        out.stdout
    );
    // dockerd's order, scratch names, and everything created is removed.
    let calls: Vec<(String, Value)> = plugin
        .requests()
        .iter()
        .map(|r| {
            let body = if r.body.is_empty() {
                Value::Null
            } else {
                r.json()
            };
            (r.route(), body)
        })
        .collect();
    let routes: Vec<&str> = calls.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        routes,
        [
            "/Plugin.Activate",
            "/VolumeDriver.Capabilities",
            "/VolumeDriver.Create",
            "/VolumeDriver.Get",
            "/VolumeDriver.List",
            "/VolumeDriver.Path",
            "/VolumeDriver.Mount",
            "/VolumeDriver.Unmount",
            "/VolumeDriver.Remove",
            "/VolumeDriver.Get",
        ]
    );
    let name = calls[2].1["Name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("plugctl-check-"), "{name}");
    assert_eq!(calls[2].1["Opts"], Value::Null, "Docker's nil options");
    assert_eq!(
        calls[6].1["ID"], calls[7].1["ID"],
        "unmounted with the mount's ID"
    );
    assert_eq!(calls[6].1["ID"].as_str().unwrap().len(), 64);
    assert_eq!(
        calls[8].1["Name"],
        name.as_str(),
        "the scratch volume is removed"
    );
    // Bodies as Docker sends them: `{}\n` for List and Capabilities.
    let list = &plugin.requests()[4];
    assert_eq!(list.body, b"{}\n");
    assert_eq!(list.header("content-type"), None);
}

#[tokio::test]
async fn check_passes_every_example_plugin_and_leaves_nothing_behind() {
    let tree = PluginTree::new();
    let root = tempfile::tempdir().unwrap();
    let plugins = [
        ("memvol", memvol::MemVol::new(root.path()).plugin().unwrap()),
        (
            "simple-ipam",
            simple_ipam::SimpleIpam::new("10.66.0.0/16".parse().unwrap())
                .plugin()
                .unwrap(),
        ),
        ("memnet", memnet::MemNet::new().plugin().unwrap()),
        (
            "rule-authz",
            rule_authz::RuleAuthz::new(rule_authz::Policy::new())
                .plugin()
                .unwrap(),
        ),
    ];
    let mut servers = Vec::new();
    for (name, plugin) in plugins {
        let listener =
            plugin_server::Listener::unix(tree.path(format!("run/{name}.sock"))).unwrap();
        let server = plugin_server::Server::new(plugin).handle_signals(false);
        servers.push(tokio::spawn(server.serve(listener)));
    }
    for (name, kind) in [
        ("memvol", "VolumeDriver"),
        ("simple-ipam", "IpamDriver"),
        ("memnet", "NetworkDriver"),
        ("rule-authz", "authz"),
    ] {
        let out = plugctl(&tree, &["check", name, "--json"]).await;
        assert_eq!(out.exit, Exit::Ok, "{name}: {out:?}");
        let report = json(&out);
        assert_eq!(report["checked"], serde_json::json!([kind]), "{report:#}");
        assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    }
    let out = plugctl(&tree, &["call", "memvol", "VolumeDriver.List", "{}"]).await;
    assert_eq!(out.stdout.trim(), r#"{"Volumes":[]}"#, "{out:?}");
    for server in servers {
        server.abort();
    }
}

#[tokio::test]
async fn check_finds_a_missing_capabilities_method() {
    let f = one_finding(
        ("/VolumeDriver.Capabilities", Reply::not_found()),
        "capabilities_missing",
        "falls back to local scope",
    )
    .await;
    assert_eq!(f["severity"], "warning");
}

#[tokio::test]
async fn check_finds_an_invalid_volume_scope() {
    one_finding(
        (
            "/VolumeDriver.Capabilities",
            Reply::json(200, r#"{"Capabilities":{"Scope":"cluster"}}"#),
        ),
        "invalid_scope",
        "invalid scope\" and uses local",
    )
    .await;
}

#[tokio::test]
async fn check_finds_html_error_pages() {
    let html = "<html><body><h1>500</h1>no such volume</body></html>";
    let f = one_finding(
        (
            "/VolumeDriver.Get",
            Reply::text(500, html).header("Content-Type", "text/html"),
        ),
        "error_not_json",
        "Docker shows the whole body as the error: \"VolumeDriver.Get: <html>",
    )
    .await;
    assert!(
        f["detail"].as_str().unwrap().contains("an HTML page"),
        "{f}"
    );
}

#[tokio::test]
async fn check_finds_errors_sent_with_status_200() {
    let f = one_finding(
        (
            "/VolumeDriver.Get",
            Reply::json(200, r#"{"Err":"no such volume"}"#),
        ),
        "err_with_200",
        "without the method (\"no such volume\"",
    )
    .await;
    assert_eq!(f["method"], "VolumeDriver.Get");
}

#[tokio::test]
async fn check_finds_keys_only_go_reads_case_insensitively() {
    let f = one_finding(
        (
            "/VolumeDriver.Mount",
            Reply::json(200, r#"{"MountPoint":"/m","Err":""}"#),
        ),
        "key_case",
        "Go's JSON decoding ignores key case",
    )
    .await;
    assert_eq!(
        f["detail"],
        "\"MountPoint\" where Docker's field is \"Mountpoint\""
    );
}

#[tokio::test]
async fn check_finds_null_where_a_list_is_expected() {
    one_finding(
        (
            "/VolumeDriver.List",
            Reply::json(200, r#"{"Volumes":null}"#),
        ),
        "null_list",
        "reads it as no volumes",
    )
    .await;
}

#[tokio::test]
async fn check_finds_a_mount_without_mountpoint() {
    one_finding(
        ("/VolumeDriver.Mount", Reply::json(200, r#"{"Err":""}"#)),
        "mount_without_mountpoint",
        "the container fails to start",
    )
    .await;
}

#[tokio::test]
async fn check_finds_a_plugin_that_requires_a_content_type() {
    let f = one_finding(
        (
            "/VolumeDriver.Create",
            Reply::json(415, r#"{"Err":"Content-Type must be application/json"}"#),
        ),
        "content_type_required",
        "Docker sends no Content-Type header",
    )
    .await;
    assert_eq!(f["severity"], "error");
}

#[tokio::test(start_paused = true)]
async fn check_finds_methods_slower_than_the_deadline() {
    let start = Instant::now();
    let f = one_finding(
        (
            "/VolumeDriver.Path",
            Reply::delay(
                Duration::from_secs(2),
                Reply::json(200, r#"{"Mountpoint":"/m"}"#),
            ),
        ),
        "slow",
        "Docker gives up on VolumeDriver.Path after 1m0s",
    )
    .await;
    assert_eq!(f["detail"], "no reply within 300ms");
    // Only the slow method waited, and only until the deadline.
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn check_finds_failing_calls_docker_needs() {
    one_finding(
        ("/VolumeDriver.Remove", Reply::err("device busy")),
        "call_failed",
        "`docker volume rm` fails",
    )
    .await;
}

#[tokio::test]
async fn check_finds_replies_docker_cannot_decode() {
    let f = one_finding(
        ("/VolumeDriver.List", Reply::text(200, "")),
        "bad_reply",
        "Docker cannot decode it (\"EOF\"",
    )
    .await;
    assert_eq!(f["detail"], "empty 200 reply");
}

#[tokio::test]
async fn check_finds_ipam_network_and_authz_flaws() {
    let tree = PluginTree::new();
    // IPAM: a pool id spelled `PoolId`, which Go reads and stricter
    // decoders do not; the check still releases what it got.
    let ipam = FakePlugin::builder()
        .activate(&["IpamDriver"])
        .on(
            "/IpamDriver.GetCapabilities",
            Reply::json(200, r#"{"RequiresMACAddress":false}"#),
        )
        .on(
            "/IpamDriver.GetDefaultAddressSpaces",
            Reply::json(
                200,
                r#"{"LocalDefaultAddressSpace":"l","GlobalDefaultAddressSpace":"g"}"#,
            ),
        )
        .on(
            "/IpamDriver.RequestPool",
            Reply::json(200, r#"{"PoolId":"p1","Pool":"10.1.0.0/16","Data":{}}"#),
        )
        .on(
            "/IpamDriver.RequestAddress",
            Reply::json(200, r#"{"Address":"10.1.0.2/16","Data":{}}"#),
        )
        .on("/IpamDriver.ReleaseAddress", Reply::json(200, "{}"))
        .on("/IpamDriver.ReleasePool", Reply::json(200, "{}"))
        .unix(tree.path("run/ipam.sock"))
        .await;
    let (kinds, report) = check_findings(&tree, "ipam", "300ms").await;
    assert_eq!(kinds, ["key_case"], "{report:#}");
    let released: Vec<Value> = ipam
        .requests()
        .iter()
        .filter(|r| r.route().starts_with("/IpamDriver.Release"))
        .map(|r| r.json())
        .collect();
    assert_eq!(
        released,
        [
            serde_json::json!({"PoolID":"p1","Address":"10.1.0.2"}),
            serde_json::json!({"PoolID":"p1"})
        ]
    );

    // NetworkDriver: `Local` is not `local` to libnetwork.
    let net = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on(
            "/NetworkDriver.GetCapabilities",
            Reply::json(200, r#"{"Scope":"Local"}"#),
        )
        .on("/NetworkDriver.CreateNetwork", Reply::json(200, "{}"))
        .on("/NetworkDriver.DeleteNetwork", Reply::json(200, "{}"))
        .unix(tree.path("run/net.sock"))
        .await;
    let (kinds, report) = check_findings(&tree, "net", "300ms").await;
    assert_eq!(kinds, ["invalid_scope"], "{report:#}");
    assert!(
        report["findings"][0]["docker"]
            .as_str()
            .unwrap()
            .contains("libnetwork refuses the driver"),
        "{report:#}"
    );
    let routes: Vec<String> = net.requests().iter().map(|r| r.route()).collect();
    assert_eq!(
        routes[2..],
        [
            "/NetworkDriver.CreateNetwork",
            "/NetworkDriver.DeleteNetwork"
        ]
    );
    assert_eq!(
        net.requests()[2].json()["NetworkID"],
        net.requests()[3].json()["NetworkID"]
    );

    // authz: a reply without a boolean Allow denies everything.
    let _authz = FakePlugin::builder()
        .activate(&["authz"])
        .on(
            "/AuthZPlugin.AuthZReq",
            Reply::json(200, r#"{"Allow":true}"#),
        )
        .on(
            "/AuthZPlugin.AuthZRes",
            Reply::json(200, r#"{"Msg":"fine"}"#),
        )
        .unix(tree.path("run/authz.sock"))
        .await;
    let (kinds, report) = check_findings(&tree, "authz", "300ms").await;
    assert_eq!(kinds, ["call_failed"], "{report:#}");
    assert_eq!(report["findings"][0]["method"], "AuthZPlugin.AuthZRes");
    assert_eq!(report["checked"], serde_json::json!(["authz"]));
}

#[tokio::test]
async fn check_usage_and_activation_errors() {
    let tree = PluginTree::new();
    let _vol = scripted_volume(&tree, vec![]).await;
    let out = plugctl(&tree, &["check", "vol", "--kind", "LogDriver"]).await;
    assert_eq!(out.exit, Exit::Usage, "{out:?}");
    assert!(
        out.stderr
            .contains("check knows VolumeDriver, IpamDriver, NetworkDriver, authz")
    );

    let out = plugctl(&tree, &["check", "vol", "--kind", "IpamDriver"]).await;
    assert_eq!(out.exit, Exit::Problem, "{out:?}");
    assert_eq!(
        out.stderr,
        "vol does not implement IpamDriver (it implements: VolumeDriver)\n"
    );

    tree.stale_socket("run/dead.sock");
    let out = plugctl(&tree, &["check", "dead", "--json"]).await;
    assert_eq!(out.exit, Exit::Problem);
    let report = json(&out);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{report}"
    );
    assert_eq!(report["findings"], serde_json::json!([]));

    let out = plugctl(&tree, &["check", "nope"]).await;
    assert_eq!(out.exit, Exit::Problem);
    assert!(
        out.stderr.contains("could not find plugin nope"),
        "{}",
        out.stderr
    );
}

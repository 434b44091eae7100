//! dockerd (their engine) with our example authorization plugin
//! `rule-authz` (`dockerd --authorization-plugin=NAME`): what dockerd asks
//! for each CLI command, what the user reads when a rule denies, and a
//! plugin restarted under a running dockerd. The request bodies dockerd
//! sent are kept as test vectors (`dockerd-20.10-authz-requests.json`) and
//! must decode into `plugin_proto::authz::Request` and re-encode to the
//! same bytes; replayed through plugin-registry's `AuthzChain`, they must
//! get dockerd's verdicts.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plugin_proto::authz::{AUTHZ_REQ, AUTHZ_RES, AuthZReq, AuthZRes};
use rule_authz::{Policy, RuleAuthz};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::harness::{Dockerd, Isolation, require, unique_name};
use super::served::{Call, Calls, Served, socket_dir};
use super::wire::{assert_reencodes, bless_or_load};

/// The test vectors: what dockerd sent the authorization plugin for each
/// command. `INTEROP_BLESS=1` rewrites the file from a live run.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vectors {
    /// How to regenerate the file.
    comment: String,
    /// The daemon's version.
    dockerd: String,
    /// The CLI's version (its `User-Agent` and the headers it sends).
    docker: String,
    /// One entry per docker command.
    commands: Vec<Command>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Command {
    /// The docker CLI arguments.
    docker: Vec<String>,
    /// Each call: `AuthZPlugin.AuthZReq` or `AuthZPlugin.AuthZRes`, and its
    /// body exactly as received.
    calls: Vec<(String, String)>,
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("it/interop/dockerd-20.10-authz-requests.json")
}

/// The body decodes into plugin-proto's `authz::Request` and re-encodes
/// to the same bytes, so every key dockerd sends is one the proto struct
/// spells the same way.
fn assert_authz_body_is_proto(method: &str, body: &[u8]) {
    match method {
        AUTHZ_REQ => assert_reencodes::<AuthZReq>(body),
        AUTHZ_RES => assert_reencodes::<AuthZRes>(body),
        other => panic!("unexpected call {other}"),
    }
}

/// What a call says, without the values that change from run to run:
/// method, HTTP method and URI, its keys and its header names.
fn shape(method: &str, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    let names = |k: &str| -> Vec<String> {
        v[k].as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    json!([
        method,
        v["RequestMethod"],
        v["RequestUri"],
        keys,
        names("RequestHeaders"),
        names("ResponseHeaders")
    ])
}

fn decoded(call: &Call, key: &str) -> Value {
    let b64 = call.json()[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a base64 string: {:?}", call.json()))
        .to_owned();
    serde_json::from_slice(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn methods(calls: &[Call]) -> Vec<(String, String, String)> {
    calls
        .iter()
        .map(|c| {
            let v = c.json();
            (
                c.method.trim_start_matches("AuthZPlugin.").to_owned(),
                v["RequestMethod"].as_str().unwrap_or_default().to_owned(),
                v["RequestUri"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn m(call: &str, method: &str, uri: &str) -> (String, String, String) {
    (call.to_owned(), method.to_owned(), uri.to_owned())
}

/// Issue 15: dockerd started with `--authorization-plugin` pointing at
/// rule-authz (policy: `deny DELETE /volumes/* volumes are kept`). Every
/// CLI command is asked about twice (`HEAD /_ping`, then the real call),
/// each allowed request again as a response (`AuthZRes`, with the status
/// code and body dockerd is about to send); JSON request bodies arrive
/// base64-encoded; a denied command fails with `authorization denied by
/// plugin NAME: <the rule's message>` and gets no `AuthZRes`. rule-authz
/// restarted (read-only now) while dockerd runs is asked again at once.
/// Every body decodes into plugin-proto's `authz::Request` and re-encodes
/// byte for byte; the bodies are compared, shape by shape, with the
/// committed vectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_asks_rule_authz_and_shows_its_denials() {
    let test = "dockerd_asks_rule_authz_and_shows_its_denials";
    let Some(bins) = require(test, &["dockerd", "docker", "unshare"]) else {
        return;
    };
    let dir = socket_dir();
    let calls = Calls::default();
    let name = unique_name("authz");
    let policy = Policy::new().rule("deny DELETE /volumes/* volumes are kept".parse().unwrap());
    let plugin = RuleAuthz::new(policy).plugin().unwrap();
    let served = Served::start(dir.path(), &name, plugin, &calls);
    // The daemon activates its authorization plugins as it starts (the
    // plugin answers from the runtime's other thread meanwhile).
    let dockerd = Dockerd::start_isolated(
        &bins[0],
        &Isolation {
            socket_dir: dir.path(),
            spec_dir: None,
            netns: false,
            routes: &[],
            authz: &[&name],
        },
    );
    let version = dockerd.version().await;
    let cli = dockerd
        .docker_ok(&["version", "--format", "{{.Client.Version}}"])
        .await;
    calls.take();

    let commands: [&[&str]; 3] = [
        &["volume", "create", "--label", "a=<b>", "v1"],
        &["volume", "ls", "-q"],
        &["volume", "rm", "v1"],
    ];
    let mut recorded = Vec::new();

    let out = dockerd.docker_ok(commands[0]).await;
    assert_eq!(out.trim(), "v1");
    let c = calls.take();
    assert_eq!(
        methods(&c),
        [
            m("AuthZReq", "HEAD", "/_ping"),
            m("AuthZRes", "HEAD", "/_ping"),
            m("AuthZReq", "POST", "/v1.41/volumes/create"),
            m("AuthZRes", "POST", "/v1.41/volumes/create"),
        ]
    );
    // The JSON body, as a base64 string, in both directions; no user on a
    // unix socket.
    let body = decoded(&c[2], "RequestBody");
    assert_eq!(
        (&body["Name"], &body["Labels"]),
        (&json!("v1"), &json!({"a": "<b>"}))
    );
    assert_eq!(
        c[2].json()["RequestHeaders"]["Content-Type"],
        "application/json"
    );
    assert!(c[2].json().get("User").is_none(), "{:?}", c[2].json());
    assert_eq!(decoded(&c[3], "RequestBody"), body);
    assert_eq!(c[3].json()["ResponseStatusCode"], 201);
    let created = decoded(&c[3], "ResponseBody");
    assert_eq!(
        (&created["Name"], &created["Driver"]),
        (&json!("v1"), &json!("local"))
    );
    recorded.push((commands[0], c));

    let out = dockerd.docker_ok(commands[1]).await;
    assert_eq!(out.trim(), "v1");
    let c = calls.take();
    assert_eq!(
        methods(&c)[2..],
        [
            m("AuthZReq", "GET", "/v1.41/volumes"),
            m("AuthZRes", "GET", "/v1.41/volumes"),
        ]
    );
    // No body, no key.
    assert!(
        c[2].json().get("RequestBody").is_none(),
        "{:?}",
        c[2].json()
    );
    assert_eq!(c[3].json()["ResponseStatusCode"], 200);
    assert_eq!(decoded(&c[3], "ResponseBody")["Volumes"][0]["Name"], "v1");
    recorded.push((commands[1], c));

    let out = dockerd.docker(commands[2]).await;
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Error response from daemon: authorization denied by plugin {name}: volumes are kept"
        )
    );
    let c = calls.take();
    assert_eq!(
        methods(&c),
        [
            m("AuthZReq", "HEAD", "/_ping"),
            m("AuthZRes", "HEAD", "/_ping"),
            m("AuthZReq", "DELETE", "/v1.41/volumes/v1"),
        ],
        "a denied request gets no AuthZRes"
    );
    assert_eq!(
        c[2].reply_json(),
        json!({"Allow": false, "Msg": "volumes are kept"})
    );
    recorded.push((commands[2], c));

    // Restarted with another policy on the same socket, while dockerd runs.
    served.stop().await;
    let plugin = RuleAuthz::new(Policy::new().read_only(true))
        .plugin()
        .unwrap();
    let served = Served::start(dir.path(), &name, plugin, &calls);
    let out = dockerd.docker(&["volume", "create", "v2"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Error response from daemon: authorization denied by plugin {name}: \
             read-only mode: POST /volumes/create is not allowed"
        )
    );
    assert_eq!(
        dockerd.docker_ok(&["volume", "ls", "-q"]).await.trim(),
        "v1"
    );
    assert_eq!(
        calls.count(AUTHZ_REQ),
        4,
        "both commands asked the new plugin"
    );

    drop(dockerd);
    served.stop().await;

    for (_, c) in &recorded {
        for call in c {
            assert_authz_body_is_proto(&call.method, &call.body);
        }
    }
    let live = Vectors {
        comment: "Bodies dockerd sent an authorization plugin, recorded by \
                  interop::dockerd_authz::dockerd_asks_rule_authz_and_shows_its_denials; \
                  regenerate with INTEROP_BLESS=1 cargo test -p plugin-tests --test it \
                  interop::dockerd_authz"
            .to_owned(),
        dockerd: version.clone(),
        docker: cli.trim().to_owned(),
        commands: recorded
            .iter()
            .map(|(cmd, c)| Command {
                docker: cmd.iter().map(|a| (*a).to_owned()).collect(),
                calls: c
                    .iter()
                    .map(|c| {
                        (
                            c.method.clone(),
                            String::from_utf8(c.body.to_vec()).unwrap(),
                        )
                    })
                    .collect(),
            })
            .collect(),
    };
    let Some(vectors) = bless_or_load(&vectors_path(), &live) else {
        return;
    };
    if (&vectors.dockerd, &vectors.docker) != (&live.dockerd, &live.docker) {
        eprintln!(
            "note: authz vectors are from dockerd {:?} and docker {:?}, this is {:?} and {:?}: \
             not compared",
            vectors.dockerd, vectors.docker, live.dockerd, live.docker
        );
        return;
    }
    let shapes = |v: &Vectors| -> Vec<Value> {
        v.commands
            .iter()
            .flat_map(|c| c.calls.iter().map(|(m, b)| shape(m, b.as_bytes())))
            .collect()
    };
    assert_eq!(
        shapes(&live),
        shapes(&vectors),
        "dockerd's authz bodies changed shape"
    );
}

fn load_vectors() -> Vectors {
    let text = std::fs::read_to_string(vectors_path()).expect("read the authz test vectors");
    serde_json::from_str(&text).expect("parse the authz test vectors")
}

/// The committed bodies decode into plugin-proto's `authz::Request` and
/// re-encode byte for byte (no dockerd needed): dockerd 20.10's keys are
/// `RequestMethod`, `RequestUri`, `RequestBody`, `RequestHeaders`,
/// `ResponseStatusCode`, `ResponseBody`, `ResponseHeaders`, as the struct
/// spells them.
#[test]
fn dockerd_authz_vectors_are_plugin_proto_requests() {
    let vectors = load_vectors();
    let mut keys = std::collections::BTreeSet::new();
    for cmd in &vectors.commands {
        for (method, body) in &cmd.calls {
            assert_authz_body_is_proto(method, body.as_bytes());
            let v: Value = serde_json::from_str(body).unwrap();
            keys.extend(v.as_object().unwrap().keys().cloned());
        }
    }
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        [
            "RequestBody",
            "RequestHeaders",
            "RequestMethod",
            "RequestUri",
            "ResponseBody",
            "ResponseHeaders",
            "ResponseStatusCode"
        ]
    );
}

/// Issue 15, engine side: the requests dockerd put to rule-authz, replayed
/// through our own authorization chain (`plugin_registry::authz::AuthzChain`,
/// the registry finding the plugin in a socket directory) to a fresh
/// rule-authz with the same policy: the same verdicts (the denial worded
/// as dockerd words it), and the plugin receives the bodies dockerd sent.
#[tokio::test]
async fn our_authz_chain_replays_dockerds_requests_with_dockerds_results() {
    use plugin_registry::Registry;
    use plugin_registry::authz::AuthzChain;

    let vectors = load_vectors();
    let dir = socket_dir();
    let calls = Calls::default();
    let policy = Policy::new().rule("deny DELETE /volumes/* volumes are kept".parse().unwrap());
    let plugin = RuleAuthz::new(policy).plugin().unwrap();
    let _served = Served::start(dir.path(), "rule-authz", plugin, &calls);
    let registry = Registry::new(
        plugin_registry::discovery::LocalRegistry::with_dirs(
            dir.path(),
            Vec::<&std::path::Path>::new(),
        ),
        plugin_registry::Policy::default(),
    );
    let chain = AuthzChain::new(registry, ["rule-authz"]);

    let headers = |v: &Value, key: &str| -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, val) in v[key].as_object().into_iter().flatten() {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
            );
        }
        map
    };
    let bytes = |v: &Value, key: &str| -> Vec<u8> {
        v[key]
            .as_str()
            .map(|b| STANDARD.decode(b).unwrap())
            .unwrap_or_default()
    };
    let dockerd_sent: Vec<&(String, String)> =
        vectors.commands.iter().flat_map(|c| &c.calls).collect();
    let mut pending = None;
    for (method, body) in &dockerd_sent {
        let v: Value = serde_json::from_str(body).unwrap();
        if method == AUTHZ_REQ {
            let mut req = http::Request::builder()
                .method(v["RequestMethod"].as_str().unwrap())
                .uri(v["RequestUri"].as_str().unwrap())
                .body(())
                .unwrap();
            *req.headers_mut() = headers(&v, "RequestHeaders");
            let (parts, ()) = req.into_parts();
            let verdict = chain
                .authorize_request(&parts, Some(&bytes(&v, "RequestBody")))
                .await;
            // dockerd's CLI showed this denial after `Error response from daemon: `.
            if v["RequestMethod"] == "DELETE" {
                assert_eq!(
                    verdict.unwrap_err().to_string(),
                    "authorization denied by plugin rule-authz: volumes are kept"
                );
            } else {
                pending = Some(verdict.unwrap());
            }
        } else {
            let status = v["ResponseStatusCode"].as_u64().unwrap_or(200) as u16;
            pending
                .take()
                .expect("an AuthZRes follows an allowed AuthZReq")
                .authorize_response(
                    http::StatusCode::from_u16(status).unwrap(),
                    &headers(&v, "ResponseHeaders"),
                    Some(&bytes(&v, "ResponseBody")),
                )
                .await
                .unwrap();
        }
    }

    let ours = calls.all();
    assert_eq!(ours.len(), dockerd_sent.len());
    for (c, (method, body)) in ours.iter().zip(&dockerd_sent) {
        assert_eq!(&c.method, method);
        let mut theirs: Value = serde_json::from_str(body).unwrap();
        // dockerd records a response's status only when the handler calls
        // WriteHeader itself; `/_ping` never does, so its AuthZRes carries
        // no status (0). Our chain reports the status sent, 200.
        if method == AUTHZ_RES && theirs["RequestUri"] == "/_ping" {
            assert!(theirs.get("ResponseStatusCode").is_none(), "{theirs}");
            theirs["ResponseStatusCode"] = json!(200);
        }
        assert_eq!(c.json(), theirs, "{method}");
    }
}

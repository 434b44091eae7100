//! `plugin-registry` against the fake-plugin kit: activation, caching,
//! handlers, listings, lookup policies, eviction and the volume proxy
//! (checklist 29–38 and divergences D8–D12).
//!
//! Tests whose subject is time (retry and lookup schedules, handshake,
//! listing and call bounds, the failure cache's expiry, the lookup
//! deadline) run on tokio's paused clock and assert exact virtual
//! durations; the fake plugins run on the test's runtime, so a reply on its
//! way is never overtaken by a jump of the clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_registry::discovery::LocalRegistry;
use plugin_registry::proto::{Address, RetryPolicy};
use plugin_registry::{
    CompatPlugin, Event, Eviction, Getter, ListState, LookupWait, Managed, ManagedStore,
    NetworkDriver, Plugin, Policy, Registry, VolumeDriver,
};
use plugin_tests::logs;
use plugin_tests::server::{FakePlugin, Reply};
use plugin_tests::tree::PluginTree;
use tokio::time::Instant;

const ACTIVATE: &str = "/Plugin.Activate";

fn registry(tree: &PluginTree) -> Registry {
    Registry::new(tree.registry(), quick_policy())
}

/// The default policy with retries short enough for tests.
fn quick_policy() -> Policy {
    Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_millis(300)))
}

async fn volume_plugin(tree: &PluginTree, name: &str) -> FakePlugin {
    FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .unix(tree.path(format!("run/{name}.sock")))
        .await
}

#[tokio::test]
async fn empty_name_fails_at_once_checklist_14() {
    let tree = PluginTree::new();
    let err = registry(&tree).get("", "VolumeDriver").await.unwrap_err();
    assert_eq!(err.to_string(), "Unable to find plugin without name");
    assert!(err.is_invalid_name());
}

#[tokio::test]
async fn first_get_activates_with_an_empty_post_and_caches_checklist_29_32() {
    let tree = PluginTree::new();
    let fake = volume_plugin(&tree, "vol").await;
    let reg = registry(&tree);

    let p = reg.get("vol", "VolumeDriver").await.unwrap();
    assert_eq!(p.name(), "vol");
    assert!(p.implements("VolumeDriver"));
    assert_eq!(p.client().address(), p.address());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, ACTIVATE);
    assert_eq!(reqs[0].header("content-length"), Some("0"));
    assert!(reqs[0].body.is_empty());

    // Later gets send nothing, even once the plugin is gone (checklist 32).
    fake.shutdown().await;
    let again = reg.get("vol", "VolumeDriver").await.unwrap();
    assert!(Arc::ptr_eq(&p, &again));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn empty_null_or_missing_implements_still_activates_checklist_29() {
    for body in [
        "{}",
        "null",
        r#"{"Implements":null}"#,
        r#"{"Implements":[]}"#,
    ] {
        let tree = PluginTree::new();
        let _fake = FakePlugin::builder()
            .on(ACTIVATE, Reply::json(200, body))
            .unix(tree.path("run/p.sock"))
            .await;
        let reg = registry(&tree);
        let err = reg.get("p", "VolumeDriver").await.unwrap_err();
        assert!(err.is_not_implemented(), "{body}: {err}");
        let stored = reg.plugins();
        assert_eq!(stored.len(), 1, "{body}: activated and cached");
        assert_eq!(
            stored[0].manifest().unwrap().implements,
            Vec::<String>::new()
        );
    }
}

#[tokio::test]
async fn empty_activation_reply_is_eof() {
    let tree = PluginTree::new();
    let _fake = FakePlugin::builder()
        .on(ACTIVATE, Reply::text(200, ""))
        .unix(tree.path("run/p.sock"))
        .await;
    let err = registry(&tree).get("p", "VolumeDriver").await.unwrap_err();
    assert_eq!(err.to_string(), "EOF");
}

#[tokio::test]
async fn failed_activation_is_removed_and_not_sticky_checklist_30() {
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .on_seq(
            ACTIVATE,
            [
                Reply::err("not ready"),
                Reply::json(200, r#"{"Implements":["VolumeDriver"]}"#),
            ],
        )
        .unix(tree.path("run/p.sock"))
        .await;
    let reg = registry(&tree);
    let err = reg.get("p", "VolumeDriver").await.unwrap_err();
    assert_eq!(err.to_string(), "Plugin.Activate: not ready");
    assert_eq!(err.status_error().map(|s| s.status()), Some(500));
    assert!(
        reg.plugins().is_empty(),
        "a failed plugin is not left in storage"
    );
    reg.get("p", "VolumeDriver").await.unwrap();
    assert_eq!(fake.count(ACTIVATE), 2);
}

// Real time and two threads: the subject is callers racing on the same
// handshake, which the 50 ms reply keeps open while they pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_gets_make_one_handshake_checklist_31() {
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .on(
            ACTIVATE,
            Reply::delay(
                Duration::from_millis(50),
                Reply::json(200, r#"{"Implements":["VolumeDriver"]}"#),
            ),
        )
        .unix(tree.path("run/p.sock"))
        .await;
    let reg = registry(&tree);
    let gets: Vec<_> = (0..1000)
        .map(|_| {
            let reg = reg.clone();
            tokio::spawn(async move { reg.get("p", "VolumeDriver").await })
        })
        .collect();
    let mut plugins = Vec::new();
    for g in gets {
        plugins.push(g.await.unwrap().unwrap());
    }
    assert!(
        plugins.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])),
        "one shared plugin object"
    );
    assert_eq!(fake.count(ACTIVATE), 1);
}

// Real time and two threads, as above: racing waiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_a_failing_handshake_share_its_error_divergence_d12() {
    // Docker makes each waiter retry the handshake in turn (3 gets → 3
    // requests, checklist 31); we make one and hand its error to all.
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .on(
            ACTIVATE,
            Reply::delay(Duration::from_millis(50), Reply::err("broken")),
        )
        .unix(tree.path("run/p.sock"))
        .await;
    let reg = registry(&tree);
    let results = futures_join(&reg, "p", 3).await;
    for r in results {
        assert_eq!(r.unwrap_err().to_string(), "Plugin.Activate: broken");
    }
    assert_eq!(fake.count(ACTIVATE), 1);
    assert!(reg.plugins().is_empty());
}

async fn futures_join(
    reg: &Registry,
    name: &str,
    n: usize,
) -> Vec<Result<Arc<Plugin>, plugin_registry::Error>> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let reg = reg.clone();
            let name = name.to_owned();
            tokio::spawn(async move { reg.get(&name, "VolumeDriver").await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn not_implemented_text_and_case_sensitive_match_checklist_33() {
    let tree = PluginTree::new();
    let _fake = volume_plugin(&tree, "conc").await;
    let reg = registry(&tree);
    let err = reg.get("conc", "IpamDriver").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Plugin does not implement the requested driver: plugin="conc", requested implementation="IpamDriver""#
    );
    assert!(err.is_not_implemented());
    assert!(
        reg.get("conc", "volumedriver")
            .await
            .unwrap_err()
            .is_not_implemented()
    );
    assert!(reg.get("conc", "VolumeDriver").await.is_ok());
}

#[tokio::test]
async fn connect_activates_a_plugin_at_a_known_address_checklist_36() {
    // The seed's `NewLocalPlugin` + `Client()`: no discovery, no registry,
    // and what comes back is activated and callable.
    let tree = PluginTree::new();
    let sock = tree.path("run/x.sock");
    let fake = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "/VolumeDriver.List",
            Reply::json(200, r#"{"Volumes":[{"Name":"v"}]}"#),
        )
        .unix(&sock)
        .await;
    let addr = Address::unix(&sock);
    let p = Plugin::connect("x", addr.clone()).await.unwrap();
    assert_eq!(p.name(), "x");
    assert_eq!(p.address(), &addr);
    assert_eq!(p.client().address(), &addr);
    assert!(
        p.implements("VolumeDriver"),
        "activated: {:?}",
        p.manifest()
    );
    assert!(p.source().is_none());
    assert!(p.is_v1());
    assert_eq!(p.protocol(), "moby.plugins.http/v1");
    let path = std::path::Path::new("/var/lib/x");
    assert_eq!(p.scoped_path(path), path);
    assert!(
        p.tls_options().unwrap().insecure_skip_verify,
        "NewLocalPlugin's TLS default"
    );
    let volumes = VolumeDriver::new(&p).unwrap().list().await.unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "v");
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, [ACTIVATE, "/VolumeDriver.List"]);
}

#[tokio::test]
async fn connect_reports_a_refused_activation() {
    let tree = PluginTree::new();
    let sock = tree.path("run/y.sock");
    let _fake = FakePlugin::builder()
        .on(ACTIVATE, Reply::err("not today"))
        .unix(&sock)
        .await;
    let e = Plugin::connect("y", Address::unix(&sock))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Plugin.Activate: not today");
}

#[tokio::test]
async fn successful_get_logs_implements_at_debug_checklist_37() {
    let capture = logs::capture();
    let tree = PluginTree::new();
    let _fake = volume_plugin(&tree, "vol").await;
    registry(&tree).get("vol", "VolumeDriver").await.unwrap();
    assert_eq!(
        capture
            .find(tracing::Level::DEBUG, "vol implements: VolumeDriver")
            .len(),
        1,
        "{:?}",
        capture.lines()
    );
}

type Calls = Arc<Mutex<Vec<String>>>;

fn recording_handler(calls: &Calls, tag: &'static str) -> impl plugin_registry::Handler {
    let calls = calls.clone();
    move |p: Arc<Plugin>| {
        let calls = calls.clone();
        async move {
            assert!(p.manifest().is_some(), "handlers get an activated plugin");
            calls.lock().unwrap().push(format!("{tag}:{}", p.name()));
        }
    }
}

#[tokio::test]
async fn handlers_run_once_per_plugin_during_activation_checklist_34() {
    let tree = PluginTree::new();
    let _a = FakePlugin::builder()
        .activate(&["NetworkDriver", "VolumeDriver"])
        .unix(tree.path("run/a.sock"))
        .await;
    let reg = registry(&tree);
    let calls: Calls = Arc::default();
    reg.handle("VolumeDriver", recording_handler(&calls, "vol1"))
        .await;
    reg.handle("NetworkDriver", recording_handler(&calls, "net"))
        .await;
    reg.handle("VolumeDriver", recording_handler(&calls, "vol2"))
        .await;
    reg.handle("IpamDriver", recording_handler(&calls, "ipam"))
        .await;
    assert!(
        calls.lock().unwrap().is_empty(),
        "handle runs nothing by itself"
    );

    reg.get("a", "VolumeDriver").await.unwrap();
    // Before get returns, in Implements order, then registration order.
    assert_eq!(*calls.lock().unwrap(), ["net:a", "vol1:a", "vol2:a"]);

    // Later gets, and a new handler, never re-run earlier handlers (D12).
    reg.get("a", "NetworkDriver").await.unwrap();
    reg.handle("NetworkDriver", recording_handler(&calls, "net2"))
        .await;
    assert_eq!(
        *calls.lock().unwrap(),
        ["net:a", "vol1:a", "vol2:a", "net2:a"],
        "new handler ran right away"
    );
    reg.get("a", "VolumeDriver").await.unwrap();
    assert_eq!(calls.lock().unwrap().len(), 4, "never twice");
}

#[tokio::test]
async fn handler_calling_back_into_the_registry_does_not_deadlock_divergence_d12() {
    let tree = PluginTree::new();
    let _a = volume_plugin(&tree, "a").await;
    let _b = volume_plugin(&tree, "b").await;
    let reg = registry(&tree);
    let seen: Calls = Arc::default();
    let (reg2, seen2) = (reg.clone(), seen.clone());
    reg.handle("VolumeDriver", move |p: Arc<Plugin>| {
        let (reg, seen) = (reg2.clone(), seen2.clone());
        async move {
            // Docker deadlocks on both of these.
            let same = reg.get(p.name(), "VolumeDriver").await.unwrap();
            assert!(Arc::ptr_eq(&same, &p));
            let all = reg.get_all("VolumeDriver").await.unwrap();
            seen.lock()
                .unwrap()
                .push(format!("{}:{}", p.name(), all.len()));
        }
    })
    .await;
    let got = tokio::time::timeout(Duration::from_secs(5), reg.get("a", "VolumeDriver")).await;
    assert!(got.expect("no deadlock").is_ok());
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert!(seen.iter().any(|s| s.starts_with("a:")), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn get_all_lists_live_plugins_and_skips_stale_and_missing_quickly_checklist_35() {
    let tree = PluginTree::new();
    let _v1 = volume_plugin(&tree, "v1").await;
    let _v2 = volume_plugin(&tree, "v2").await;
    let net = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .unix(tree.path("run/net.sock"))
        .await;
    tree.stale_socket("run/stale.sock");
    tree.write_spec(
        0,
        "gone",
        &format!("unix://{}", tree.path("run/nowhere/gone.sock").display()),
    );
    // A socket and a spec with the same name: listed once (D10).
    tree.write_spec(
        0,
        "v1",
        &format!("unix://{}", tree.path("run/v1.sock").display()),
    );

    let reg = Registry::new(tree.registry(), Policy::default());
    let start = Instant::now();
    let all = reg.get_all("VolumeDriver").await.unwrap();
    let elapsed = start.elapsed();
    let names: Vec<_> = all.iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(names, ["v1", "v2"]);
    // Docker takes ~15 s per stale socket here (D9): nothing waited on a
    // retry schedule, not a tick.
    assert_eq!(elapsed, Duration::ZERO);
    // Newly loaded plugins are activated whatever the kind (checklist 35).
    assert_eq!(net.count(ACTIVATE), 1);

    let listing = reg.list("VolumeDriver").await.unwrap();
    let states: BTreeMap<_, _> = listing.iter().map(|l| (l.name.as_str(), l.state)).collect();
    assert_eq!(states["v1"], ListState::Ok);
    assert_eq!(states["net"], ListState::Ok);
    assert_eq!(states["stale"], ListState::Refused);
    assert_eq!(states["gone"], ListState::Missing);
    assert_eq!(listing.iter().filter(|l| l.name == "v1").count(), 1);
}

#[tokio::test]
async fn get_all_uses_stored_plugins_without_reactivating_checklist_35() {
    let tree = PluginTree::new();
    let fake = volume_plugin(&tree, "v").await;
    let reg = registry(&tree);
    reg.get("v", "VolumeDriver").await.unwrap();
    for _ in 0..3 {
        assert_eq!(reg.get_all("VolumeDriver").await.unwrap().len(), 1);
    }
    assert_eq!(fake.count(ACTIVATE), 1);
}

#[tokio::test]
async fn get_all_scan_error_is_the_error_checklist_35() {
    let tree = PluginTree::new();
    let file = tree.write("notadir", "x");
    let reg = Registry::new(
        LocalRegistry::with_dirs(file, Vec::<std::path::PathBuf>::new()),
        quick_policy(),
    );
    let err = reg.get_all("VolumeDriver").await.unwrap_err();
    assert!(
        err.to_string().starts_with("error reading dir entries: "),
        "{err}"
    );
}

#[tokio::test]
async fn json_spec_declaring_another_kind_is_skipped_without_a_connection() {
    let tree = PluginTree::new();
    // Outside the socket directory, so only the spec names it.
    tree.mkdir("elsewhere");
    let net = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .unix(tree.path("elsewhere/net.sock"))
        .await;
    tree.write_json(
        0,
        "net",
        &format!(
            r#"{{"Addr":"unix://{}","Implements":["NetworkDriver"]}}"#,
            net.path().unwrap().display()
        ),
    );
    let reg = registry(&tree);
    let listing = reg.list("VolumeDriver").await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].state, ListState::Skipped);
    assert_eq!(net.connections(), 0, "no connection was made");
    // Asking for the declared kind activates it.
    assert_eq!(reg.get_all("NetworkDriver").await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn listing_failures_are_remembered_briefly_and_logged() {
    let capture = logs::capture();
    let tree = PluginTree::new();
    let bad = FakePlugin::builder()
        .on(ACTIVATE, Reply::err("boom"))
        .unix(tree.path("run/bad.sock"))
        .await;
    let mut policy = quick_policy();
    policy.negative_ttl = Duration::from_millis(300);
    let reg = Registry::new(tree.registry(), policy);
    assert!(reg.get_all("VolumeDriver").await.unwrap().is_empty());
    let second = reg.list("VolumeDriver").await.unwrap();
    assert_eq!(
        bad.count(ACTIVATE),
        1,
        "the second listing used the failure cache"
    );
    assert!(second[0].cached);
    assert_eq!(second[0].state, ListState::Error);
    // Docker logs the plain error text at error level (checklist 37).
    assert!(
        !capture
            .find(tracing::Level::ERROR, "Plugin.Activate: boom")
            .is_empty(),
        "{:?}",
        capture.lines()
    );
    // Remembered for exactly the TTL from the failure.
    tokio::time::sleep(Duration::from_millis(299)).await;
    assert!(reg.list("VolumeDriver").await.unwrap()[0].cached);
    assert_eq!(bad.count(ACTIVATE), 1, "still remembered at 299 ms");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!reg.list("VolumeDriver").await.unwrap()[0].cached);
    assert_eq!(bad.count(ACTIVATE), 2, "retried once the entry expired");
    // get() is not subject to the listing cache.
    assert!(reg.get("bad", "VolumeDriver").await.is_err());
    assert_eq!(bad.count(ACTIVATE), 3);
}

#[tokio::test(start_paused = true)]
async fn listing_bounds_a_plugin_that_never_answers_divergence_d9() {
    let tree = PluginTree::new();
    let _hang = FakePlugin::builder()
        .on(ACTIVATE, Reply::hang())
        .unix(tree.path("run/hang.sock"))
        .await;
    let _ok = volume_plugin(&tree, "ok").await;
    let mut policy = quick_policy();
    policy.list_timeout = Some(Duration::from_millis(200));
    let reg = Registry::new(tree.registry(), policy);
    let start = Instant::now();
    let listing = reg.list("VolumeDriver").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    let hang = listing.iter().find(|l| l.name == "hang").unwrap();
    assert_eq!(hang.state, ListState::Timeout);
    assert!(
        listing
            .iter()
            .any(|l| l.name == "ok" && l.state == ListState::Ok)
    );
}

#[tokio::test(start_paused = true)]
async fn missing_name_fails_fast_by_default_checklist_10_divergence_d8() {
    let tree = PluginTree::new();
    let reg = Registry::new(tree.registry(), Policy::default());
    let start = Instant::now();
    let err = reg.get("nope", "VolumeDriver").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "Docker retries for 15 s");
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "could not find plugin nope in v1 plugin registry: plugin not found"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_names_are_rejected_not_looked_up_divergence_d2() {
    let tree = PluginTree::new();
    let reg = Registry::new(
        tree.registry(),
        Policy::default().wait_for_plugins(Duration::from_secs(5)),
    );
    let start = Instant::now();
    let err = reg.get("../x", "VolumeDriver").await.unwrap_err();
    assert!(err.is_invalid_name() && !err.is_not_found(), "{err}");
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "an invalid name is not waited for"
    );
}

// Real time: the file-system notification comes from notify's own thread,
// outside the runtime, so a paused clock would jump to the next safety poll
// while it is on its way, and the poll would find the plugin too: the test
// could no longer tell a notification from a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_get_returns_as_soon_as_the_plugin_appears_divergence_d8() {
    let tree = Arc::new(PluginTree::new());
    let reg = Registry::new(
        tree.registry(),
        quick_policy().wait_for_plugins(Duration::from_secs(5)),
    );
    let path = tree.path("run/late.sock");
    let appeared = Arc::new(Mutex::new(None));
    let (appeared2, path2) = (appeared.clone(), path.clone());
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fake = FakePlugin::builder()
            .activate(&["VolumeDriver"])
            .unix(&path2)
            .await;
        *appeared2.lock().unwrap() = Some(Instant::now());
        fake
    });
    let p = reg.get("late", "VolumeDriver").await.unwrap();
    let returned = Instant::now();
    let _fake = server.await.unwrap();
    let appeared = appeared.lock().unwrap().expect("server started");
    let lag = returned.saturating_duration_since(appeared);
    assert_eq!(p.name(), "late");
    // Not the next backoff tick (1 s in Docker): file-system notifications.
    assert!(
        lag < Duration::from_millis(300),
        "returned {lag:?} after the plugin appeared"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_get_gives_up_at_its_deadline() {
    let tree = PluginTree::new();
    let reg = Registry::new(
        tree.registry(),
        quick_policy().wait_for_plugins(Duration::from_millis(150)),
    );
    let start = Instant::now();
    let err = reg.get("never", "VolumeDriver").await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_not_found());
    assert_eq!(elapsed, Duration::from_millis(150));
}

#[tokio::test(start_paused = true)]
async fn docker_lookup_policy_retries_and_logs_checklist_37() {
    let capture = logs::capture();
    let tree = PluginTree::new();
    let mut policy = Policy::docker();
    policy.lookup = LookupWait::Docker(RetryPolicy::with_budget(Duration::from_millis(1500)));
    let reg = Registry::new(tree.registry(), policy);
    let start = Instant::now();
    let err = reg.get("absent", "VolumeDriver").await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_not_found());
    // One retry after 1 s, then 1 s + 2 s would pass the budget.
    assert_eq!(elapsed, Duration::from_secs(1));
    let warned = capture.find(
        tracing::Level::WARN,
        "Unable to locate plugin: absent, retrying in 1s",
    );
    assert_eq!(warned.len(), 1, "{:?}", capture.lines());
}

#[tokio::test]
async fn dead_plugin_is_evicted_and_found_again_where_it_now_lives_divergence_d11() {
    let tree = PluginTree::new();
    let first = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tcp()
        .await;
    tree.write_spec(0, "mover", &first.address());
    let reg = registry(&tree);
    let mut events = reg.subscribe();
    let p = reg.get("mover", "VolumeDriver").await.unwrap();
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Activated {
            name: "mover".into()
        }
    );

    // The plugin restarts on another port and rewrites its spec.
    first.shutdown().await;
    let second = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tcp()
        .await;
    tree.write_spec(0, "mover", &second.address());

    // Calls through the old client fail to connect after their retries...
    let err = p
        .client()
        .call("VolumeDriver.List")
        .body(bytes::Bytes::from_static(b"{}\n"))
        .await
        .unwrap_err();
    assert!(err.is_connect());
    // ...so the registry forgot it, said so, and the next get finds the
    // new port.
    assert!(reg.plugins().is_empty());
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Evicted {
            name: "mover".into(),
            reason: Eviction::Unreachable {
                error: err.to_string()
            }
        }
    );
    let q = reg.get("mover", "VolumeDriver").await.unwrap();
    assert!(!Arc::ptr_eq(&p, &q));
    assert_eq!(q.address().as_str(), second.address());
    assert_eq!(second.count(ACTIVATE), 1);
}

#[tokio::test]
async fn docker_policy_keeps_dead_plugins_cached() {
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tcp()
        .await;
    tree.write_spec(0, "p", &fake.address());
    let mut policy = Policy::docker();
    policy.retry = RetryPolicy::none();
    let reg = Registry::new(tree.registry(), policy);
    let p = reg.get("p", "VolumeDriver").await.unwrap();
    let mut events = reg.subscribe();
    fake.shutdown().await;
    let _ = p.client().call("VolumeDriver.List").await;
    assert_eq!(
        reg.plugins().len(),
        1,
        "Docker caches a dead plugin forever"
    );
    assert!(events.try_recv().is_err(), "no eviction, no event");
}

#[tokio::test]
async fn evict_on_request_is_announced_once() {
    let tree = PluginTree::new();
    let _fake = volume_plugin(&tree, "vol").await;
    let reg = registry(&tree);
    reg.get("vol", "VolumeDriver").await.unwrap();
    let mut events = reg.subscribe();
    assert!(reg.evict("vol"));
    assert!(!reg.evict("vol"), "already gone");
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Evicted {
            name: "vol".into(),
            reason: Eviction::Requested
        }
    );
    assert!(events.try_recv().is_err(), "one event per eviction");
    reg.get("vol", "VolumeDriver").await.unwrap();
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Activated { name: "vol".into() },
        "the next get activates it again"
    );
}

fn volume_script() -> plugin_tests::server::Script {
    FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on("VolumeDriver.Create", Reply::ok())
        .on(
            "VolumeDriver.Remove",
            Reply::json(200, r#"{"Err":"volume v2 is in use"}"#),
        )
        .on(
            "VolumeDriver.Path",
            Reply::json(200, r#"{"Mountpoint":"/mnt/v1"}"#),
        )
        .on(
            "VolumeDriver.Mount",
            Reply::json(200, r#"{"Mountpoint":"/mnt/v1","Err":""}"#),
        )
        .on("VolumeDriver.Unmount", Reply::err("not mounted"))
        .on(
            "VolumeDriver.Get",
            Reply::json(
                200,
                r#"{"Volume":{"Name":"v1","Mountpoint":"/mnt/v1","Status":{"k":1}}}"#,
            ),
        )
        .on(
            "VolumeDriver.List",
            Reply::json(
                200,
                r#"{"Volumes":[{"Name":"v1","Mountpoint":"/mnt/v1"}],"Err":null}"#,
            ),
        )
        .on(
            "VolumeDriver.Capabilities",
            Reply::json(200, r#"{"Capabilities":{"Scope":"global"}}"#),
        )
}

#[tokio::test]
async fn volume_proxy_calls_and_both_error_conventions() {
    let tree = PluginTree::new();
    let fake = volume_script().unix(tree.path("run/vol.sock")).await;
    let reg = registry(&tree);
    let vol = VolumeDriver::new(&reg.get("vol", "VolumeDriver").await.unwrap()).unwrap();

    let opts = BTreeMap::from([("k".to_owned(), "a<b".to_owned())]);
    vol.create("v1", Some(opts)).await.unwrap();
    vol.create("v0", None).await.unwrap();
    assert_eq!(vol.path("v1").await.unwrap(), "/mnt/v1");
    assert_eq!(vol.mount("v1", "ctr").await.unwrap(), "/mnt/v1");
    let got = vol.get("v1").await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.status["k"].as_i64()),
        ("v1", Some(1))
    );
    assert_eq!(vol.list().await.unwrap().len(), 1);
    assert_eq!(vol.capabilities().await.unwrap().scope, "global");

    // 200 with Err: the plugin's message alone (spec §4).
    let e = vol.remove("v2").await.unwrap_err();
    assert_eq!(e.to_string(), "volume v2 is in use");
    // Non-200: Docker's status error text.
    let e = vol.unmount("v1", "ctr").await.unwrap_err();
    assert_eq!(e.to_string(), "VolumeDriver.Unmount: not mounted");
    assert_eq!(e.status_error().unwrap().status(), 500);

    // Docker's wire bodies (spec §5): Opts as a map or null, `{}` for List.
    let bodies: BTreeMap<String, Vec<String>> =
        fake.requests()
            .into_iter()
            .fold(BTreeMap::new(), |mut m, r| {
                m.entry(r.path.clone()).or_default().push(r.body_text());
                m
            });
    assert_eq!(
        bodies["/VolumeDriver.Create"],
        [
            "{\"Name\":\"v1\",\"Opts\":{\"k\":\"a\\u003cb\"}}\n",
            "{\"Name\":\"v0\",\"Opts\":null}\n"
        ]
    );
    assert_eq!(
        bodies["/VolumeDriver.Mount"],
        ["{\"Name\":\"v1\",\"ID\":\"ctr\"}\n"]
    );
    assert_eq!(bodies["/VolumeDriver.List"], ["{}\n"]);
}

struct Store;

impl ManagedStore for Store {
    type Plugin = &'static str;
    fn get<'a>(
        &'a self,
        name: &'a str,
        _capability: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Managed<&'static str>> + Send + 'a>>
    {
        Box::pin(async move {
            match name {
                "managed" => Managed::Found("v2-plugin"),
                "disabled" => Managed::Refused("plugin disabled found but disabled".to_owned()),
                _ => Managed::NotFound,
            }
        })
    }
}

#[tokio::test]
async fn getter_tries_managed_first_then_v1_with_dockers_texts_checklist_38() {
    let tree = PluginTree::new();
    let _fake = volume_plugin(&tree, "legacy").await;
    let _bad = FakePlugin::builder()
        .on(ACTIVATE, Reply::err("nope"))
        .unix(tree.path("run/bad.sock"))
        .await;
    let getter = Getter::new(Store, registry(&tree));
    assert!(matches!(
        getter.get("managed", "VolumeDriver").await.unwrap(),
        CompatPlugin::Managed("v2-plugin")
    ));
    assert!(matches!(
        getter.get("legacy", "VolumeDriver").await.unwrap(),
        CompatPlugin::Legacy(_)
    ));
    let e = getter.get("absent", "VolumeDriver").await.unwrap_err();
    assert_eq!(e.to_string(), r#"plugin "absent" not found"#);
    assert!(e.is_not_found());
    let e = getter.get("bad", "VolumeDriver").await.unwrap_err();
    assert_eq!(e.to_string(), "legacy plugin: Plugin.Activate: nope");
    assert!(getter.get("disabled", "VolumeDriver").await.is_err());
}

#[tokio::test]
async fn v2_plugin_sockets_are_never_listed_or_resolved_checklist_38() {
    let tree = PluginTree::new();
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    tree.mkdir(format!("run/{id}"));
    let _v2 = volume_plugin(&tree, &format!("{id}/vplug")).await;
    let reg = registry(&tree);
    assert!(reg.get_all("VolumeDriver").await.unwrap().is_empty());
    assert!(
        reg.get(&format!("{id}/vplug"), "VolumeDriver")
            .await
            .unwrap_err()
            .is_invalid_name()
    );
}

#[tokio::test(start_paused = true)]
async fn handshake_runs_on_even_if_the_first_caller_gives_up() {
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .on(
            ACTIVATE,
            Reply::delay(
                Duration::from_millis(100),
                Reply::json(200, r#"{"Implements":["VolumeDriver"]}"#),
            ),
        )
        .unix(tree.path("run/p.sock"))
        .await;
    let reg = registry(&tree);
    let start = Instant::now();
    let abandoned =
        tokio::time::timeout(Duration::from_millis(10), reg.get("p", "VolumeDriver")).await;
    assert!(abandoned.is_err());
    // The second caller joins the activation the first one started: it
    // returns when that one's reply comes, at 100 ms, not 100 ms after
    // its own start.
    reg.get("p", "VolumeDriver").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(fake.count(ACTIVATE), 1);
}

#[test]
fn global_registry_uses_the_host_directories_checklist_1() {
    let g = plugin_registry::global();
    assert_eq!(
        g.local().socket_dir(),
        std::path::Path::new("/run/docker/plugins")
    );
    assert!(std::ptr::eq(g, plugin_registry::global()));
}

#[tokio::test]
async fn handlers_count_each_plugin_once_across_many_activations() {
    let tree = PluginTree::new();
    let mut fakes = Vec::new();
    for i in 0..5 {
        fakes.push(volume_plugin(&tree, &format!("p{i}")).await);
    }
    let reg = registry(&tree);
    let runs = Arc::new(AtomicUsize::new(0));
    let r2 = runs.clone();
    reg.handle("VolumeDriver", move |_p: Arc<Plugin>| {
        let r = r2.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await;
    for _ in 0..3 {
        reg.get_all("VolumeDriver").await.unwrap();
        reg.get("p0", "VolumeDriver").await.unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_panicking_handler_does_not_strand_the_plugin() {
    let tree = PluginTree::new();
    let fake = volume_plugin(&tree, "p").await;
    let reg = registry(&tree);
    let first = Arc::new(AtomicUsize::new(0));
    let f2 = first.clone();
    reg.handle("VolumeDriver", move |_p: Arc<Plugin>| {
        let n = f2.fetch_add(1, Ordering::SeqCst);
        async move {
            assert!(n > 0, "handler fails on its first run (expected panic)");
        }
    })
    .await;
    let err = reg.get("p", "VolumeDriver").await.unwrap_err();
    assert!(err.to_string().contains("abandoned"), "{err}");
    assert!(
        reg.plugins().is_empty(),
        "the half-activated plugin was removed"
    );
    // The next get starts over and succeeds.
    reg.get("p", "VolumeDriver").await.unwrap();
    assert_eq!(fake.count(ACTIVATE), 2);
}

#[tokio::test(start_paused = true)]
async fn handshake_attempts_are_bounded_divergence_d20() {
    let tree = PluginTree::new();
    let fake = FakePlugin::builder()
        .on(ACTIVATE, Reply::hang())
        .unix(tree.path("run/hang.sock"))
        .await;
    let mut policy = Policy::default().with_retry(RetryPolicy::none());
    policy.handshake_timeout = Some(Duration::from_millis(200));
    let reg = Registry::new(tree.registry(), policy);
    let start = Instant::now();
    let err = reg.get("hang", "VolumeDriver").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(fake.count(ACTIVATE), 1);
    assert!(reg.plugins().is_empty());
}

/// The IPAM example plugin, served by the plugin-server kit on a socket in
/// `tree`, until the returned sender is dropped.
async fn serve_simple_ipam(tree: &PluginTree, name: &str) -> tokio::sync::oneshot::Sender<()> {
    let plugin = simple_ipam::SimpleIpam::new("10.9.0.0/24".parse().unwrap())
        .plugin()
        .unwrap();
    let listener = plugin_server::Listener::unix(tree.path(format!("run/{name}.sock"))).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = plugin_server::Server::new(plugin)
        .handle_signals(false)
        .shutdown_on(async {
            let _ = stopped.await;
        });
    tokio::spawn(server.serve(listener));
    stop
}

#[tokio::test]
async fn ipam_example_end_to_end_through_the_registry_and_a_handler() {
    use plugin_registry::proto::ipam;
    let tree = PluginTree::new();
    let _stop = serve_simple_ipam(&tree, "ipam").await;
    let reg = registry(&tree);

    // A handler doing IO on activation, as libnetwork asks a new driver for
    // its capabilities.
    let caps = Arc::new(Mutex::new(None));
    let caps2 = caps.clone();
    reg.handle("IpamDriver", move |p: Arc<Plugin>| {
        let caps = caps2.clone();
        async move {
            let reply = p
                .client()
                .call(&ipam::GetCapabilitiesRequest::default())
                .await
                .unwrap();
            *caps.lock().unwrap() = Some(reply);
        }
    })
    .await;

    let plugin = reg.get("ipam", "IpamDriver").await.unwrap();
    assert!(
        caps.lock().unwrap().is_some(),
        "the handler ran before get returned"
    );
    assert!(
        reg.get("ipam", "VolumeDriver")
            .await
            .unwrap_err()
            .is_not_implemented()
    );

    let client = plugin.client();
    let spaces = client
        .call(&ipam::GetDefaultAddressSpacesRequest::default())
        .await
        .unwrap();
    let pool = client
        .call(&ipam::RequestPoolRequest {
            address_space: spaces.local_default_address_space.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.pool, "10.9.0.0/24");
    let a = client
        .call(&ipam::RequestAddressRequest {
            pool_id: pool.pool_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let b = client
        .call(&ipam::RequestAddressRequest {
            pool_id: pool.pool_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(a.address, b.address);
    assert!(a.address.starts_with("10.9.0."), "{}", a.address);
    assert_eq!(reg.get_all("IpamDriver").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_activated_plugin_nobody_calls_holds_no_connection() {
    // The handshake's connection closes with its reply (a plugin activated
    // by a listing and never called holds no socket); calls then pool their
    // own connection as usual.
    let tree = PluginTree::new();
    let fake = volume_script().unix(tree.path("run/vol.sock")).await;
    let reg = registry(&tree);
    let vol = VolumeDriver::new(&reg.get("vol", "VolumeDriver").await.unwrap()).unwrap();
    assert_eq!(fake.connections(), 1);
    vol.list().await.unwrap();
    vol.list().await.unwrap();
    assert_eq!(
        fake.connections(),
        2,
        "one for the handshake, one pooled for the calls"
    );
}

/// Found by the soak (`cargo xtask soak`): libnetwork's calls carry no
/// timeout, so a network plugin that accepts and never answers held
/// `CreateNetwork` forever; `Policy::call_timeout` bounds every attempt.
#[tokio::test(start_paused = true)]
async fn call_timeout_bounds_calls_to_a_plugin_that_never_answers() {
    let tree = PluginTree::new();
    let mute = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on("/NetworkDriver.CreateNetwork", Reply::hang())
        .unix(tree.path("run/mute.sock"))
        .await;
    let mut policy = Policy::default().with_retry(RetryPolicy::none());
    policy.call_timeout = Some(Duration::from_millis(200));
    let reg = Registry::new(tree.registry(), policy);
    let plugin = reg.get("mute", "NetworkDriver").await.unwrap();
    let request = plugin_registry::proto::network::CreateNetworkRequest {
        network_id: "n1".into(),
        ..Default::default()
    };
    let network = NetworkDriver::new(&plugin).unwrap();
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(2), network.create_network(&request))
        .await
        .expect("the call is bounded")
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(mute.count("/NetworkDriver.CreateNetwork"), 1);
    // The activated plugin keeps its bounded client for later calls.
    let again = tokio::time::timeout(Duration::from_secs(2), network.create_network(&request));
    assert!(again.await.expect("bounded").unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), Duration::from_millis(400));
}

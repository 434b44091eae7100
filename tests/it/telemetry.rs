//! Metrics and spans of real calls against kit plugins: a `metrics`
//! debugging recorder installed for the test's thread (the tests run on a
//! current-thread runtime, so every task they spawn records into it) and
//! the kit's log capture for spans.
//!
//! Time is not their subject, but their calls wait out Docker's 1 s retry
//! backoff: they run on tokio's paused clock, which passes it at once (the
//! plugins run on the test's runtime, so no reply is overtaken).

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use plugin_registry::client::Client;
use plugin_registry::client::telemetry::{CALL_DURATION, CALL_ERRORS, CALL_RETRIES, CALLS};
use plugin_registry::proto::RetryPolicy;
use plugin_registry::telemetry::{ACTIVATION_DURATION, ACTIVATIONS, EVICTIONS, LISTING_DURATION};
use plugin_registry::{Policy, Registry, VolumeDriver};
use plugin_tests::logs;
use plugin_tests::server::{FakePlugin, Reply};
use plugin_tests::tree::PluginTree;

/// The metrics recorded since the last snapshot (the debugging recorder
/// hands out and resets counters and histograms at each).
struct Metrics(Vec<(metrics_util::CompositeKey, DebugValue)>);

fn snapshot(snapshotter: &Snapshotter) -> Metrics {
    Metrics(
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (key, value))
            .collect(),
    )
}

/// The metric `name` whose labels include `labels`: a counter's value or
/// a histogram's number of samples; 0 when absent.
fn value(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .0
        .iter()
        .filter(|(key, ..)| key.key().name() == name)
        .filter(|(key, ..)| {
            labels
                .iter()
                .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, value)| match value {
            DebugValue::Counter(n) => *n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => 0,
        })
        .sum()
}

#[tokio::test(start_paused = true)]
async fn calls_activations_evictions_and_listings_are_counted_by_plugin_method_and_class() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = metrics::set_default_local_recorder(&recorder);

    let tree = PluginTree::new();
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "/VolumeDriver.List",
            Reply::json(200, r#"{"Volumes":[],"Err":""}"#),
        )
        .on("/VolumeDriver.Create", Reply::err("boom"))
        .on("/VolumeDriver.Path", Reply::not_found())
        .on("/VolumeDriver.Get", Reply::text(200, "not json"))
        .on(
            "/VolumeDriver.Remove",
            Reply::json(200, r#"{"Err":"busy"}"#),
        )
        .on(
            "/VolumeDriver.Mount",
            Reply::delay(Duration::from_secs(2), Reply::ok()),
        )
        .on_seq("/VolumeDriver.Unmount", [Reply::drop(), Reply::ok()])
        .unix(tree.path("run/vol.sock"))
        .await;
    let policy =
        Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_millis(1500)));
    let registry = Registry::new(tree.registry(), policy);

    let vol = registry.get("vol", "VolumeDriver").await.unwrap();
    let volumes = VolumeDriver::new(&vol).unwrap();
    volumes.list().await.unwrap();
    volumes.list().await.unwrap();
    assert!(volumes.create("v", None).await.is_err());
    assert!(volumes.path("v").await.is_err());
    assert!(volumes.get("v").await.is_err());
    assert!(
        volumes.remove("v").await.is_err(),
        "200 with Err is an error"
    );
    // One attempt cut short by the call's own timeout.
    let timed_out = vol
        .client()
        .call("VolumeDriver.Mount")
        .timeout(Duration::from_millis(100))
        .retry(RetryPolicy::none())
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    // The first connection is dropped: Docker's retry, one second later.
    volumes.unmount("v", "id").await.unwrap();
    assert_eq!(registry.get_all("VolumeDriver").await.unwrap().len(), 1);

    let recorded = snapshot(&snapshotter);
    let of = |name: &str, labels: &[(&str, &str)]| value(&recorded, name, labels);
    let vol_ = [("plugin", "vol")];
    assert_eq!(of(ACTIVATIONS, &[("plugin", "vol"), ("result", "ok")]), 1);
    assert_eq!(of(ACTIVATION_DURATION, &vol_), 1);
    assert_eq!(
        of(CALLS, &[("plugin", "vol"), ("method", "VolumeDriver.List")]),
        2
    );
    assert_eq!(
        of(
            CALL_DURATION,
            &[("plugin", "vol"), ("method", "VolumeDriver.List")]
        ),
        2
    );
    assert_eq!(
        of(CALLS, &[("plugin", "vol"), ("method", "Plugin.Activate")]),
        1
    );
    let errors = |method: &str, class: &str| {
        of(
            CALL_ERRORS,
            &[("plugin", "vol"), ("method", method), ("class", class)],
        )
    };
    assert_eq!(errors("VolumeDriver.Create", "plugin_error"), 1);
    assert_eq!(errors("VolumeDriver.Path", "status"), 1);
    assert_eq!(errors("VolumeDriver.Get", "decode"), 1);
    assert_eq!(errors("VolumeDriver.Remove", "plugin_error"), 1);
    assert_eq!(errors("VolumeDriver.Mount", "timeout"), 1);
    assert_eq!(of(CALL_ERRORS, &vol_), 5, "nothing else failed");
    assert_eq!(
        of(
            CALL_RETRIES,
            &[("plugin", "vol"), ("method", "VolumeDriver.Unmount")]
        ),
        1
    );
    assert_eq!(of(CALL_RETRIES, &vol_), 1);
    assert_eq!(of(LISTING_DURATION, &[("kind", "VolumeDriver")]), 1);

    // Evictions: asked for, and a plugin that died (its calls cannot
    // connect; a refused socket is not retried past the budget).
    assert!(registry.evict("vol"));
    let vol = registry.get("vol", "VolumeDriver").await.unwrap();
    plugin.shutdown().await;
    let err = VolumeDriver::new(&vol).unwrap().list().await.unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
    let recorded = snapshot(&snapshotter);
    let of = |name: &str, labels: &[(&str, &str)]| value(&recorded, name, labels);
    let errors = |method: &str, class: &str| {
        of(
            CALL_ERRORS,
            &[("plugin", "vol"), ("method", method), ("class", class)],
        )
    };
    assert_eq!(
        of(EVICTIONS, &[("plugin", "vol"), ("reason", "requested")]),
        1
    );
    assert_eq!(
        of(EVICTIONS, &[("plugin", "vol"), ("reason", "unreachable")]),
        1
    );
    assert_eq!(errors("VolumeDriver.List", "connect"), 1);
    assert_eq!(
        of(ACTIVATIONS, &[("plugin", "vol"), ("result", "ok")]),
        1,
        "activated again after the eviction"
    );
}

#[tokio::test]
async fn a_bare_client_is_labelled_by_its_address_and_failed_activations_count() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let plugin = FakePlugin::builder()
        .on("/Plugin.Activate", Reply::err("not ready"))
        .on("/A.B", Reply::ok())
        .tcp()
        .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    client.call("A.B").await.unwrap();
    let address = plugin.address();
    assert_eq!(client.label(), address);
    assert_eq!(
        value(
            &snapshot(&snapshotter),
            CALLS,
            &[("plugin", &address), ("method", "A.B")]
        ),
        1
    );
    let tree = PluginTree::new();
    tree.write_spec(0, "late", &address);
    let registry = Registry::new(tree.registry(), Policy::default());
    assert!(registry.get("late", "VolumeDriver").await.is_err());
    assert_eq!(
        value(
            &snapshot(&snapshotter),
            ACTIVATIONS,
            &[("plugin", "late"), ("result", "error")]
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn calls_and_activations_have_spans_with_plugin_method_address_and_attempt() {
    let logs = logs::capture();
    let tree = PluginTree::new();
    let _plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on_seq(
            "/VolumeDriver.List",
            [Reply::drop(), Reply::json(200, r#"{"Volumes":[]}"#)],
        )
        .unix(tree.path("run/vol.sock"))
        .await;
    let registry = Registry::new(tree.registry(), Policy::default());
    let vol = registry.get("vol", "VolumeDriver").await.unwrap();
    VolumeDriver::new(&vol).unwrap().list().await.unwrap();

    let address = format!("unix://{}", tree.path("run/vol.sock").display());
    let activations = logs.spans("plugin_activate");
    assert_eq!(activations.len(), 1, "{activations:?}");
    let a = &activations[0].fields;
    assert_eq!(
        (
            a["plugin"].as_str(),
            a["method"].as_str(),
            a["address"].as_str()
        ),
        ("vol", "Plugin.Activate", address.as_str())
    );
    let calls = logs.spans("plugin_call");
    let methods: Vec<&str> = calls.iter().map(|c| c.fields["method"].as_str()).collect();
    assert_eq!(methods, ["Plugin.Activate", "VolumeDriver.List"]);
    let list = &calls[1].fields;
    assert_eq!(list["plugin"], "vol");
    assert_eq!(list["address"], address);
    assert_eq!(
        list["attempt"], "2",
        "the dropped first attempt was retried"
    );
    assert_eq!(calls[0].fields["attempt"], "1");
    // Docker's retry warning is logged inside the call's span.
    assert_eq!(
        logs.find(tracing::Level::WARN, "Unable to connect to plugin")
            .len(),
        1,
        "{:?}",
        logs.lines()
    );
}

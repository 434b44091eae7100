//! `plugin-client` against the fake plugins: the bytes on the wire
//! (checklist 15–21), replies (22–23), retries and timeouts (24–27), TLS
//! (28), creation failures (20), pooling, streaming bodies, the reply cap
//! and the divergences of the client (full body on retry, no redirects, no
//! `Accept-Encoding`, capped replies).
//!
//! Tests whose subject is time (retry schedules, timeouts) run on tokio's
//! paused clock and assert exact virtual durations: the fake plugins run on
//! the test's runtime, so the clock only jumps once every task waits on a
//! timer, and a reply that is on its way is never overtaken by one.
//! Elsewhere waits use the real clock with small budgets, asserted as upper
//! bounds that prove nothing hung.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use plugin_client::{Client, ClientBuilder, Error, SendBody};
use plugin_proto::{Address, Manifest, RetryPolicy, TlsOptions, USER_AGENT_VALUE};
use plugin_tests::certs::TestPki;
use plugin_tests::server::{ClientAuth, FakePlugin, Reply, stale_socket};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;
const WAIT: Duration = Duration::from_secs(5);

/// A short directory under `/tmp` (unix socket paths are limited to 108
/// bytes).
fn tmp() -> TempDir {
    plugin_tests::tree::short_tempdir("pc")
}

/// A builder that does not retry: most tests want the first error.
fn no_retry() -> ClientBuilder {
    Client::builder().retry(RetryPolicy::none())
}

async fn unix_plugin(dir: &TempDir, script: plugin_tests::server::Script) -> FakePlugin {
    script.unix(dir.path().join("p.sock")).await
}

fn head_text(r: &plugin_tests::server::Recorded) -> String {
    String::from_utf8_lossy(&r.head).into_owned()
}

// ---------------------------------------------------------------------------
// Request bytes (checklist 15–21)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn activation_on_unix_sends_dockers_exact_request() {
    // checklist 15, 16, 17, 21: POST /Plugin.Activate, Host
    // plugin.moby.localhost, Accept, Content-Length: 0, empty body, no
    // Content-Type, no Accept-Encoding (unix).
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().activate(&["VolumeDriver"])).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let m: Manifest = client.call("Plugin.Activate").json().await.unwrap();
    assert_eq!(m, Manifest::new(["VolumeDriver"]));
    let r = &plugin.requests()[0];
    assert_eq!(
        head_text(r),
        format!(
            "POST /Plugin.Activate HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
             Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 0\r\n\
             User-Agent: {USER_AGENT_VALUE}\r\n\r\n"
        )
    );
    assert!(r.body.is_empty());
    assert_eq!(r.raw, r.head, "nothing after the head");
}

#[derive(serde::Serialize)]
#[allow(non_snake_case)]
struct CreateRequest {
    Name: String,
    Opts: Option<std::collections::BTreeMap<String, String>>,
}

#[tokio::test]
async fn struct_args_on_tcp_are_go_json_with_host_port() {
    // checklist 16, 17, 18, 21: Host is 127.0.0.1:PORT, the body is Go's
    // HTML-escaped JSON with a newline; divergence: no Accept-Encoding.
    let plugin = FakePlugin::builder()
        .on("VolumeDriver.Create", Reply::ok())
        .tcp()
        .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let args = CreateRequest {
        Name: "a<b>&c".into(),
        Opts: None,
    };
    let _: Value = client
        .call("VolumeDriver.Create")
        .args(&args)
        .json()
        .await
        .unwrap();
    let r = &plugin.requests()[0];
    let body = b"{\"Name\":\"a\\u003cb\\u003e\\u0026c\",\"Opts\":null}\n";
    assert_eq!(
        head_text(r),
        format!(
            "POST /VolumeDriver.Create HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\n\
             User-Agent: {USER_AGENT_VALUE}\r\n\r\n",
            plugin.port(),
            body.len()
        )
    );
    assert_eq!(r.body, body);
    assert!(r.header("Accept-Encoding").is_none());
    assert!(r.header("Content-Type").is_none());
}

#[tokio::test]
async fn empty_struct_null_and_leading_slash() {
    // checklist 15, 21, §12: `{}\n` for an empty struct, `null\n` for a
    // JSON null, a leading slash is not doubled.
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().default_reply(Reply::ok())).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    #[derive(serde::Serialize)]
    struct Empty {}
    let _: Value = client.call("A.Empty").args(&Empty {}).json().await.unwrap();
    let _: Value = client
        .call("A.Null")
        .args(&Value::Null)
        .json()
        .await
        .unwrap();
    let _: Value = client.call("/VolumeDriver.List").json().await.unwrap();
    let reqs = plugin.requests();
    assert_eq!(reqs[0].body, b"{}\n");
    assert_eq!(reqs[0].header("Content-Length"), Some("3"));
    assert_eq!(reqs[1].body, b"null\n");
    assert_eq!(reqs[2].path, "/VolumeDriver.List");
}

#[tokio::test]
async fn odd_method_names_fail_before_any_io() {
    // divergence: Go builds `//A.B` or `A B` requests from these.
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder()).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    for m in ["//A.B", "A B.C", "A"] {
        let e = client.call(m).json::<Value>().await.unwrap_err();
        assert!(!e.is_status() && !e.is_connect(), "{m}: {e:?}");
    }
    assert_eq!(plugin.connections(), 0);
}

// ---------------------------------------------------------------------------
// Replies (checklist 22–23)
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn status_errors_read_like_dockers_and_are_not_retried() {
    // checklist 23: `<method>: <Err>` with any key case, else the raw body;
    // IsNotFound only for 404; never retried (Docker's policy here would
    // take 15 s if it were).
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("A.Json", Reply::err("boom"))
            .on("A.Lower", Reply::json(500, r#"{"err":"lower"}"#))
            .on("A.Plain", Reply::text(500, "oops\n"))
            .on("A.EmptyErr", Reply::json(500, r#"{"Err":""}"#))
            .on("A.Created", Reply::json(201, r#"{"Err":"made"}"#)),
    )
    .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let err = |m: &'static str| {
        let client = client.clone();
        async move { client.call(m).json::<Value>().await.unwrap_err() }
    };
    let start = Instant::now();
    let e = err("A.Json").await;
    assert_eq!(e.to_string(), "A.Json: boom");
    assert!(e.is_status() && !e.is_not_found() && !e.is_connect());
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.method(), Some("A.Json"));
    assert_eq!(e.status_error().unwrap().message(), "boom");
    assert_eq!(err("A.Lower").await.to_string(), "A.Lower: lower");
    assert_eq!(err("A.Plain").await.to_string(), "A.Plain: oops\n");
    assert_eq!(
        err("A.EmptyErr").await.to_string(),
        r#"A.EmptyErr: {"Err":""}"#
    );
    assert_eq!(err("A.Created").await.status(), Some(201));
    let e = err("A.Missing").await;
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "A.Missing: 404 page not found\n");
    // Docker's policy would sleep 1 s before a retry: not a tick passed.
    assert_eq!(start.elapsed(), Duration::ZERO, "no retry");
    assert_eq!(plugin.requests().len(), 6, "one request each");
}

#[tokio::test]
async fn redirects_are_status_errors() {
    // divergence: Go follows 3xx; here a 3xx is a status error like any
    // other and the Location is never requested.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on(
                "A.Moved",
                Reply::text(302, "").header("Location", "/A.Elsewhere"),
            )
            .on(
                "A.Temp",
                Reply::text(307, "").header("Location", "/A.Elsewhere"),
            )
            .on("A.Elsewhere", Reply::ok()),
    )
    .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let e = client
        .call("A.Moved")
        .args(&json!({"x": 1}))
        .json::<Value>()
        .await
        .unwrap_err();
    assert!(e.is_status());
    assert_eq!(e.status(), Some(302));
    assert_eq!(e.to_string(), "A.Moved: ");
    let e = client.call("A.Temp").json::<Value>().await.unwrap_err();
    assert_eq!(e.status(), Some(307));
    assert_eq!(plugin.count("A.Elsewhere"), 0);
}

/// A reply type as the proto crate writes them: `#[serde(default)]` gives
/// missing keys Go's zero value.
#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
#[allow(non_snake_case)]
struct Mountpoint {
    Mountpoint: String,
    Err: String,
}

#[tokio::test]
async fn typed_replies_decode_by_go_rules() {
    // checklist 22: first value only, `null` is the zero value, an empty
    // body is `EOF`, keys match case-insensitively; no target: not parsed.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on(
                "V.Trailing",
                Reply::json(200, r#"{"Mountpoint":"/m"} trailing junk"#),
            )
            .on("V.Null", Reply::json(200, "null"))
            .on("V.Empty", Reply::json(200, ""))
            .on("V.Lower", Reply::json(200, r#"{"mountpoint":"/l"}"#))
            .on("V.Garbage", Reply::json(200, "not json")),
    )
    .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let m: Mountpoint = client.call("V.Trailing").json().await.unwrap();
    assert_eq!(m.Mountpoint, "/m");
    let m: Mountpoint = client.call("V.Null").json().await.unwrap();
    assert_eq!(m, Mountpoint::default());
    let m: Mountpoint = client.call("V.Lower").json().await.unwrap();
    assert_eq!(m.Mountpoint, "/l");

    let logs = plugin_tests::logs::capture();
    let e = client
        .call("V.Empty")
        .json::<Mountpoint>()
        .await
        .unwrap_err();
    assert!(e.is_decode() && !e.is_status());
    assert_eq!(e.to_string(), "EOF");
    assert_eq!(
        logs.at(tracing::Level::ERROR),
        ["V.Empty: error reading plugin resp: EOF"]
    );
    // No reply target: the body is never parsed.
    client
        .call("V.Garbage")
        .args(&json!({}))
        .no_reply()
        .await
        .unwrap();
    client.call("V.Empty").no_reply().await.unwrap();
}

#[tokio::test]
async fn call_bytes_sends_and_returns_raw_bodies() {
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().on("A.Echo", Reply::echo())).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let out = client
        .call("A.Echo")
        .body(Bytes::from_static(b"raw \x00 bytes"))
        .await
        .unwrap();
    assert_eq!(&out[..], b"raw \x00 bytes");
    assert_eq!(plugin.requests()[0].header("Content-Length"), Some("11"));
}

// ---------------------------------------------------------------------------
// Reply cap (divergence: Docker buffers replies of any size)
// ---------------------------------------------------------------------------

// Real time: the bound is on the work of reading the endless body, which
// keeps the runtime busy; a paused clock would not move.
#[tokio::test]
async fn reply_cap_stops_oversized_replies_while_reading() {
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("A.Huge", Reply::huge(8 << 20))
            .on("A.Endless", Reply::endless_chunked())
            .on(
                "A.BigError",
                Reply::json(500, format!(r#"{{"Err":"{}"}}"#, "x".repeat(2 << 20))),
            )
            .on("A.Fits", Reply::huge(1 << 20)),
    )
    .await;
    let client = no_retry()
        .max_reply_size(1 << 20)
        .build(plugin.address(), None)
        .unwrap();
    // Declared too large: refused before reading.
    let e = client.call("A.Huge").json::<Value>().await.unwrap_err();
    assert!(e.is_too_large() && !e.is_status(), "{e:?}");
    // Never-ending chunked body: stopped once past the cap, memory bounded.
    let start = Instant::now();
    let e = client.call("A.Endless").json::<Value>().await.unwrap_err();
    assert!(e.is_too_large(), "{e:?}");
    assert!(start.elapsed() < WAIT);
    // Error bodies are capped too; the status is kept.
    let e = client.call("A.BigError").json::<Value>().await.unwrap_err();
    assert!(e.is_status() && e.is_too_large(), "{e:?}");
    assert_eq!(e.status(), Some(500));
    // Exactly at the cap is fine.
    let v: Value = client.call("A.Fits").json().await.unwrap();
    assert!(v.get("Data").is_some());
}

// ---------------------------------------------------------------------------
// Timeouts (checklist 26)
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn whole_exchange_timeout_while_awaiting_headers() {
    // checklist 26: NewClientWithTimeout; Go's text.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder().on("A.Slow", Reply::delay(MS(2000), Reply::ok())),
    )
    .await;
    let client = no_retry()
        .timeout(MS(100))
        .build(plugin.address(), None)
        .unwrap();
    let start = Instant::now();
    let e = client.call("A.Slow").json::<Value>().await.unwrap_err();
    assert_eq!(start.elapsed(), MS(100));
    assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Post \"http://plugin.moby.localhost/A.Slow\": context deadline exceeded \
         (Client.Timeout exceeded while awaiting headers)"
    );
}

/// A one-shot plugin that sends a reply head and one body byte, then
/// holds the connection open: reading the body can only time out. (The
/// kit's `slow` reply would also slow the head down.)
async fn stalled_body_plugin(path: &std::path::Path) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
}

#[tokio::test(start_paused = true)]
async fn timeouts_keep_running_while_the_body_is_read() {
    // checklist 26: the client timeout covers reading the body (Go's
    // "while reading body" text); a per-call timeout does too.
    let dir = tmp();
    let path = dir.path().join("stall.sock");
    let server = stalled_body_plugin(&path).await;
    let client = no_retry()
        .timeout(MS(200))
        .build(Address::unix(&path), None)
        .unwrap();
    let logs = plugin_tests::logs::capture();
    let start = Instant::now();
    let e = client.call("A.Stall").json::<Value>().await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        MS(200),
        "from the call's start, not the head's"
    );
    assert!(e.is_timeout() && !e.is_decode(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
    );
    assert_eq!(logs.at(tracing::Level::ERROR).len(), 1);
    server.abort();

    let path = dir.path().join("stall2.sock");
    let server = stalled_body_plugin(&path).await;
    let client = no_retry().build(Address::unix(&path), None).unwrap();
    let start = Instant::now();
    let e = client
        .call("A.Stall")
        .timeout(MS(200))
        .json::<Value>()
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), MS(200));
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.to_string(), "context deadline exceeded");
    server.abort();
}

#[tokio::test(start_paused = true)]
async fn per_call_timeouts_are_retried() {
    // checklist 24, 26: a 100 ms per-call timeout with a 1.5 s budget:
    // attempts at 0 and 1.1 s (the timeout, then the 1 s backoff), then
    // 1.2 s + the next 2 s backoff would pass the budget.
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().on("A.Hang", Reply::hang())).await;
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(1500)))
        .build(plugin.address(), None)
        .unwrap();
    let start = Instant::now();
    let e = client
        .call("A.Hang")
        .timeout(MS(100))
        .json::<Value>()
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Post \"http://plugin.moby.localhost/A.Hang\": context deadline exceeded"
    );
    let reqs = plugin.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].at - start, Duration::ZERO);
    assert_eq!(reqs[1].at - start, MS(1100));
    assert_eq!(took, MS(1200));
}

// ---------------------------------------------------------------------------
// Retries (checklist 24, 25, 27, §12)
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn missing_socket_is_retried_on_dockers_schedule_with_dockers_warning() {
    // checklist 24, 25: with a 1.5 s budget an instantly failing target is
    // tried at 0 and 1 s (1 s + the next 2 s would pass the budget); the
    // last error is returned.
    let dir = tmp();
    let path = dir.path().join("missing.sock");
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(1500)))
        .build(Address::unix(&path), None)
        .unwrap();
    let logs = plugin_tests::logs::capture();
    let start = Instant::now();
    let e = client
        .call("Plugin.Activate")
        .json::<Manifest>()
        .await
        .unwrap_err();
    let took = start.elapsed();
    let text = format!(
        "Post \"http://plugin.moby.localhost/Plugin.Activate\": dial unix {}: connect: \
         no such file or directory",
        path.display()
    );
    assert_eq!(e.to_string(), text);
    assert!(e.is_connect() && e.is_socket_missing() && !e.is_connection_refused());
    assert_eq!(took, MS(1000));
    assert_eq!(
        logs.at(tracing::Level::WARN),
        [format!(
            "Unable to connect to plugin: plugin.moby.localhost/Plugin.Activate: {text}, \
             retrying in 1s"
        )]
    );
    // The error leads to the OS error.
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    assert_eq!(
        cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_stale_socket_fails_at_once_when_asked() {
    // divergence (listing): retry_connection_refused = false skips the
    // retry budget for a refused or missing socket.
    let dir = tmp();
    let path = dir.path().join("stale.sock");
    stale_socket(&path);
    let client = Client::new(Address::unix(&path), None).unwrap();
    let start = Instant::now();
    let e = client
        .call("Plugin.Activate")
        .retry_connection_refused(false)
        .json::<Manifest>()
        .await
        .unwrap_err();
    // Docker's default policy would wait 1 s, then more: no wait at all.
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(e.is_connection_refused() && e.is_connect(), "{e:?}");
    assert!(
        e.to_string().ends_with(&format!(
            "dial unix {}: connect: connection refused",
            path.display()
        )),
        "{e}"
    );
    let missing = Client::new(Address::unix(dir.path().join("none.sock")), None).unwrap();
    let e = missing
        .call("Plugin.Activate")
        .retry_connection_refused(false)
        .json::<Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_socket_missing());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn tcp_refusal_reads_like_go() {
    let client = no_retry().build("tcp://127.0.0.1:1", None).unwrap();
    let e = client
        .call("Service.Method")
        .json::<Value>()
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Post \"http://127.0.0.1:1/Service.Method\": dial tcp 127.0.0.1:1: connect: \
         connection refused"
    );
    assert!(e.is_connection_refused() && e.is_connect() && !e.is_timeout());
}

#[tokio::test]
async fn the_connect_failure_hook_fires_only_for_connection_failures() {
    let dir = tmp();
    let path = dir.path().join("stale.sock");
    stale_socket(&path);
    let fired = Arc::new(AtomicUsize::new(0));
    let seen = fired.clone();
    let client = no_retry()
        .on_connect_failure(Arc::new(move |e: &Error| {
            assert!(e.is_connect());
            seen.fetch_add(1, Ordering::SeqCst);
        }))
        .build(Address::unix(&path), None)
        .unwrap();
    client
        .call("Plugin.Activate")
        .json::<Value>()
        .await
        .unwrap_err();
    assert_eq!(fired.load(Ordering::SeqCst), 1);

    let live = tmp();
    let plugin = unix_plugin(&live, FakePlugin::builder().on("A.Fail", Reply::err("no"))).await;
    let fired2 = Arc::new(AtomicUsize::new(0));
    let seen2 = fired2.clone();
    let client = no_retry()
        .on_connect_failure(Arc::new(move |_: &Error| {
            seen2.fetch_add(1, Ordering::SeqCst);
        }))
        .build(plugin.address(), None)
        .unwrap();
    client.call("A.Fail").json::<Value>().await.unwrap_err();
    assert_eq!(
        fired2.load(Ordering::SeqCst),
        0,
        "status errors do not evict"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_resends_full_body_after_a_dropped_connection() {
    // checklist 27, divergence: Docker resends the consumed reader, i.e.
    // `Content-Length: 0`; we resend the full body. Also checklist 24, 25:
    // EOF is retried, with Docker's warning.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder().on_seq("A.Echo", [Reply::drop(), Reply::echo()]),
    )
    .await;
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(2500)))
        .build(plugin.address(), None)
        .unwrap();
    let logs = plugin_tests::logs::capture();
    let out: Value = client
        .call("A.Echo")
        .args(&json!({"Name": "vol"}))
        .json()
        .await
        .unwrap();
    assert_eq!(out, json!({"Name": "vol"}));
    let reqs = plugin.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].at - reqs[0].at, MS(1000), "Docker's first backoff");
    assert_eq!(reqs[0].body, b"{\"Name\":\"vol\"}\n");
    assert_eq!(reqs[1].body, reqs[0].body);
    assert_eq!(reqs[1].head, reqs[0].head, "same head, Content-Length: 15");
    assert_eq!(reqs[1].header("Content-Length"), Some("15"));
    assert_eq!(
        logs.at(tracing::Level::WARN),
        [
            "Unable to connect to plugin: plugin.moby.localhost/A.Echo: \
             Post \"http://plugin.moby.localhost/A.Echo\": EOF, retrying in 1s"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_reply_is_a_transport_error_and_is_retried() {
    // §12: a reply that is not HTTP counts as a transport error.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder().on_seq(
            "A.B",
            [
                Reply::raw("garbage\r\n\r\n"),
                Reply::json(200, r#"{"ok":1}"#),
            ],
        ),
    )
    .await;
    let client = no_retry().build(plugin.address(), None).unwrap();
    let e = client.call("A.B").json::<Value>().await.unwrap_err();
    assert!(!e.is_status() && !e.is_decode(), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("Post \"http://plugin.moby.localhost/A.B\": malformed HTTP response"),
        "{e}"
    );
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(2500)))
        .build(plugin.address(), None)
        .unwrap();
    plugin.on_seq(
        "A.B",
        [
            Reply::raw("garbage\r\n\r\n"),
            Reply::json(200, r#"{"ok":1}"#),
        ],
    );
    plugin.clear();
    let v: Value = client.call("A.B").json().await.unwrap();
    assert_eq!(v, json!({"ok": 1}));
    let reqs = plugin.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].at - reqs[0].at, MS(1000), "retried after 1 s");
}

/// Runs the retry driver over attempts that each take `work` and fail with
/// a connection error until attempt `succeed_at` (counted from 1; never if
/// 0). Returns the attempts' start times since the first, the result, and
/// the warnings logged.
async fn drive(
    policy: RetryPolicy,
    work: Duration,
    succeed_at: usize,
) -> (Vec<Duration>, Result<usize, String>, Vec<String>) {
    use plugin_client::retry::{Failed, run};
    let logs = plugin_tests::logs::capture();
    let start = Instant::now();
    let mut starts = Vec::new();
    let result = run(policy, || {
        starts.push(start.elapsed());
        let n = starts.len();
        async move {
            tokio::time::sleep(work).await;
            if n == succeed_at {
                Ok(n)
            } else {
                Err(Failed::Connect {
                    error: format!("attempt {n} refused"),
                    target: "plugin.moby.localhost/A.B".to_owned(),
                })
            }
        }
    })
    .await;
    (starts, result, logs.at(tracing::Level::WARN))
}

#[tokio::test(start_paused = true)]
async fn the_retry_driver_sleeps_1_2_4_8_seconds_within_dockers_budget() {
    // checklist 24: Docker's schedule for a target that fails at once:
    // attempts at 0, 1, 3, 7 and 15 s, then 15 s + the next 16 s would
    // pass the 30 s budget, so the last error comes back at 15 s.
    let s = Duration::from_secs;
    let start = Instant::now();
    let (starts, result, warned) = drive(RetryPolicy::docker(), Duration::ZERO, 0).await;
    assert_eq!(start.elapsed(), s(15));
    assert_eq!(starts, [s(0), s(1), s(3), s(7), s(15)]);
    assert_eq!(result, Err("attempt 5 refused".to_owned()));
    let expected: Vec<String> = [(1, "1s"), (2, "2s"), (3, "4s"), (4, "8s")]
        .iter()
        .map(|(n, d)| {
            format!(
                "Unable to connect to plugin: plugin.moby.localhost/A.B: \
                 attempt {n} refused, retrying in {d}"
            )
        })
        .collect();
    assert_eq!(warned, expected);

    // The budget counts from the first attempt, time spent trying
    // included: attempts of 500 ms start at 0, 1.5, 4, 8.5 and 17 s; at
    // 17.5 s the next 16 s would pass the budget.
    let start = Instant::now();
    let (starts, result, warned) = drive(RetryPolicy::docker(), MS(500), 0).await;
    assert_eq!(start.elapsed(), MS(17_500));
    assert_eq!(starts, [MS(0), MS(1500), MS(4000), MS(8500), MS(17_000)]);
    assert!(result.is_err());
    assert_eq!(warned.len(), 4);

    // Docker's tests' 2 s budget: one retry, after 1 s.
    let (starts, _, _) = drive(RetryPolicy::with_budget(s(2)), Duration::ZERO, 0).await;
    assert_eq!(starts, [s(0), s(1)]);
    // No budget: one attempt, no sleep.
    let start = Instant::now();
    let (starts, _, warned) = drive(RetryPolicy::none(), Duration::ZERO, 0).await;
    assert_eq!((starts, start.elapsed()), (vec![s(0)], s(0)));
    assert!(warned.is_empty());

    // Success ends the schedule at once: the third attempt, at 3 s.
    let start = Instant::now();
    let (starts, result, _) = drive(RetryPolicy::docker(), Duration::ZERO, 3).await;
    assert_eq!(result, Ok(3));
    assert_eq!(starts, [s(0), s(1), s(3)]);
    assert_eq!(start.elapsed(), s(3));
}

#[tokio::test(start_paused = true)]
async fn the_retry_driver_never_retries_a_final_failure() {
    use plugin_client::retry::{Failed, run};
    let start = Instant::now();
    let mut tries = 0;
    let result: Result<(), &str> = run(RetryPolicy::docker(), || {
        tries += 1;
        async { Err(Failed::Final("status 500")) }
    })
    .await;
    assert_eq!(result, Err("status 500"));
    assert_eq!((tries, start.elapsed()), (1, Duration::ZERO));
}

// ---------------------------------------------------------------------------
// Creation (checklist 20, 28)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn undialable_addresses_fail_at_creation() {
    // checklist 20: Docker's texts, no retry.
    let long = format!("/tmp/{}.sock", "a".repeat(110));
    let e = Client::new(format!("unix://{long}"), None).unwrap_err();
    assert!(e.is_config());
    assert_eq!(
        e.to_string(),
        format!("unix socket path \"{long}\" is too long")
    );
    let e = Client::new("npipe:////./pipe/docker_plugin", None).unwrap_err();
    assert!(e.is_config());
    assert_eq!(e.to_string(), "protocol not available");
    let e = Client::new("localhost:8080", None).unwrap_err();
    assert!(e.is_config());
}

fn both(s: String) -> [String; 2] {
    [s.clone(), s]
}

#[tokio::test]
async fn bad_tls_files_give_dockers_texts_at_creation() {
    // checklist 28: go-connections' errors, checked for every scheme.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let missing = dir.path().join("nope.pem");
    let texts = |opts: TlsOptions| {
        ["tcp://127.0.0.1:1", "https://127.0.0.1:1"].map(|a| {
            let e = Client::new(a, Some(&opts)).unwrap_err();
            assert!(e.is_config() && e.is_tls(), "{e:?}");
            e.to_string()
        })
    };
    let m = missing.display();
    assert_eq!(
        texts(TlsOptions::with_ca_file(&missing)),
        both(format!(
            "could not read CA certificate \"{m}\": open {m}: no such file or directory"
        ))
    );
    for bad in [&pki.garbage_pem, &pki.empty_file] {
        assert_eq!(
            texts(TlsOptions::with_ca_file(bad)),
            both(format!(
                "failed to append certificates from PEM file: \"{}\"",
                bad.display()
            ))
        );
    }
    let encrypted = "could not load X509 key pair: private key is encrypted; \
                     encrypted private keys are obsolete, and not supported";
    for key in [&pki.encrypted_key, &pki.encrypted_legacy_key] {
        assert_eq!(
            texts(TlsOptions::insecure().client_cert(&pki.client_cert, key)),
            [encrypted; 2]
        );
    }
    assert_eq!(
        texts(TlsOptions::insecure().client_cert(&missing, &pki.client_key)),
        both(format!(
            "could not load X509 key pair: open {m}: no such file or directory"
        ))
    );
    assert_eq!(
        texts(TlsOptions::insecure().client_cert(&pki.client_cert, &pki.server_key)),
        ["could not load X509 key pair: tls: private key does not match public key"; 2]
    );
    let mut low = TlsOptions::insecure();
    low.min_version = 0x0302;
    assert_eq!(
        texts(low),
        ["requested minimum TLS version is too low. Should be at-least: 303"; 2]
    );
    let mut bad = TlsOptions::insecure();
    bad.min_version = 0x0999;
    assert_eq!(texts(bad), ["invalid minimum TLS version: 999"; 2]);
    // Insecure options never read the CA file, as go-connections.
    let mut insecure_ca = TlsOptions::with_ca_file(&missing);
    insecure_ca.insecure_skip_verify = true;
    assert!(Client::new("https://127.0.0.1:1", Some(&insecure_ca)).is_ok());
}

// ---------------------------------------------------------------------------
// TLS (checklist 18, 28)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn mutual_tls_with_every_key_form() {
    // checklist 28: CA verification plus a client certificate, with
    // PKCS#8, SEC1 and PKCS#1 keys; names and IP addresses both verify.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tls(&pki.server(), ClientAuth::Required)
        .await;
    let pairs = [
        (&pki.client_cert, &pki.client_key),
        (&pki.client_cert, &pki.client_key_sec1),
        (&pki.client_rsa_cert, &pki.client_rsa_key),
        (&pki.client_rsa_cert, &pki.client_rsa_key_pkcs1),
    ];
    for (host, (cert, key)) in ["localhost", "127.0.0.1"]
        .iter()
        .zip(pairs.iter().cycle())
        .chain(["localhost"; 4].iter().zip(pairs.iter()))
    {
        let opts = TlsOptions::with_ca_file(&pki.ca_cert).client_cert(*cert, *key);
        let client = no_retry()
            .build(plugin.url("https", host), Some(&opts))
            .unwrap();
        let m: Manifest = client
            .call("Plugin.Activate")
            .json()
            .await
            .unwrap_or_else(|e| panic!("{host} {}: {e:?}", key.display()));
        assert!(m.implements("VolumeDriver"));
    }
    let reqs = plugin.requests();
    assert!(reqs.iter().all(|r| r.peer_cert.is_some()));
    assert_eq!(
        reqs[0].header("Host"),
        Some(&*format!("localhost:{}", plugin.port()))
    );
    assert!(plugin.handshake_errors().is_empty());

    // TLS 1.3 only, and the CA as the only root.
    let mut opts =
        TlsOptions::with_ca_file(&pki.ca_cert).client_cert(&pki.client_cert, &pki.client_key);
    opts.min_version = 0x0304;
    opts.exclusive_root_pools = true;
    let client = no_retry()
        .build(plugin.url("https", "localhost"), Some(&opts))
        .unwrap();
    let _: Manifest = client.call("Plugin.Activate").json().await.unwrap();
}

#[tokio::test]
async fn a_missing_client_certificate_fails() {
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tls(&pki.server(), ClientAuth::Required)
        .await;
    let client = no_retry()
        .build(
            plugin.url("https", "localhost"),
            Some(&TlsOptions::with_ca_file(&pki.ca_cert)),
        )
        .unwrap();
    let e = client
        .call("Plugin.Activate")
        .json::<Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_tls() && e.is_connect(), "{e:?}");
    assert_eq!(plugin.count("Plugin.Activate"), 0);
}

#[tokio::test]
async fn unverifiable_servers_fail_unless_insecure() {
    // checklist 28, spec §3.2 table: an unknown CA, a wrong host name and
    // an expired certificate fail verification; `insecure_skip_verify`
    // (what `.spec` files and `.json` without a CAFile get) still completes
    // a real handshake.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    for certs in [
        pki.server_wrong_ca(),
        pki.server_wrong_host(),
        pki.server_expired(),
    ] {
        let plugin = FakePlugin::builder()
            .activate(&["VolumeDriver"])
            .tls(&certs, ClientAuth::None)
            .await;
        let verified = no_retry()
            .build(
                plugin.url("https", "localhost"),
                Some(&TlsOptions::with_ca_file(&pki.ca_cert)),
            )
            .unwrap();
        let e = verified
            .call("Plugin.Activate")
            .json::<Manifest>()
            .await
            .unwrap_err();
        assert!(e.is_tls() && e.is_connect() && !e.is_timeout(), "{e:?}");
        assert!(e.to_string().contains("tls: "), "{e}");

        let insecure = no_retry()
            .build(
                plugin.url("https", "localhost"),
                Some(&TlsOptions::insecure()),
            )
            .unwrap();
        let m: Manifest = insecure.call("Plugin.Activate").json().await.unwrap();
        assert!(m.implements("VolumeDriver"));
        assert_eq!(plugin.count("Plugin.Activate"), 1);
    }
}

#[tokio::test]
async fn https_without_options_verifies_against_the_system_roots() {
    // spec §3.2: `.json` with an https address and no TLSConfig uses Go's
    // default TLS, so the test CA is unknown.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tls(&pki.server(), ClientAuth::None)
        .await;
    let client = no_retry()
        .build(plugin.url("https", "localhost"), None)
        .unwrap();
    let e = client
        .call("Plugin.Activate")
        .json::<Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_tls(), "{e:?}");
}

#[tokio::test]
async fn tcp_with_tls_options_stays_plaintext() {
    // checklist 18: only https:// speaks TLS.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tcp()
        .await;
    let opts =
        TlsOptions::with_ca_file(&pki.ca_cert).client_cert(&pki.client_cert, &pki.client_key);
    for scheme in ["tcp", "http"] {
        let client = no_retry()
            .build(plugin.url(scheme, "127.0.0.1"), Some(&opts))
            .unwrap();
        let _: Manifest = client.call("Plugin.Activate").json().await.unwrap();
    }
    let reqs = plugin.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[0]
            .raw
            .starts_with(b"POST /Plugin.Activate HTTP/1.1\r\n")
    );
}

// ---------------------------------------------------------------------------
// Pooling and concurrency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sequential_calls_reuse_one_connection() {
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().default_reply(Reply::ok())).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    for i in 0..20 {
        let _: Value = client
            .call("A.B")
            .args(&json!({ "i": i }))
            .json()
            .await
            .unwrap();
        // A clone shares the pool.
        let _: Value = client.clone().call("A.C").json().await.unwrap();
    }
    assert_eq!(plugin.requests().len(), 40);
    assert_eq!(plugin.connections(), 1);
    assert!(plugin.requests().iter().all(|r| r.conn_id == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_on_one_client() {
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().on("A.Echo", Reply::echo())).await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = client.clone();
        set.spawn(async move {
            let v: Value = client
                .call("A.Echo")
                .args(&json!({ "i": i }))
                .json()
                .await?;
            Ok::<_, Error>((i, v))
        });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let (i, v) = r.unwrap().unwrap();
        assert_eq!(v, json!({ "i": i }));
        n += 1;
    }
    assert_eq!(n, 50);
    assert_eq!(plugin.requests().len(), 50);
}

// ---------------------------------------------------------------------------
// Stream and SendFile
// ---------------------------------------------------------------------------

#[tokio::test]
async fn stream_hands_back_the_body_incrementally() {
    // checklist 21: Stream sends `null\n` for no args; the body is read at
    // the caller's pace and is not capped.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("LogDriver.ReadLogs", Reply::endless_chunked())
            .on("A.Err", Reply::err("nope")),
    )
    .await;
    let client = no_retry()
        .max_reply_size(1024)
        .build(plugin.address(), None)
        .unwrap();
    let mut body = client.stream("LogDriver.ReadLogs").await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut start = Vec::new();
    let mut total = 0;
    while total < 256 * 1024 {
        let n = body.read(&mut buf).await.unwrap();
        assert!(n > 0);
        if start.len() < 16 {
            start.extend_from_slice(&buf[..n.min(16)]);
        }
        total += n;
    }
    assert!(start.starts_with(b"{\"Data\":\"a"), "{start:?}");
    drop(body);
    let r = &plugin.requests()[0];
    assert_eq!(r.body, b"null\n");
    assert_eq!(r.header("Content-Length"), Some("5"));
    // Status errors come back before any body.
    let e = client.stream("A.Err").args(&json!({})).await.unwrap_err();
    assert_eq!(e.to_string(), "A.Err: nope");
}

// Real time: the endless body keeps the plugin and the reader busy, so a
// paused clock would never find the runtime idle and never reach the
// timeout.
#[tokio::test]
async fn the_whole_exchange_timeout_bounds_a_stream() {
    // checklist 26: the client timeout also covers reading Stream's body.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder().on("LogDriver.ReadLogs", Reply::endless_chunked()),
    )
    .await;
    let client = no_retry()
        .timeout(MS(300))
        .build(plugin.address(), None)
        .unwrap();
    let mut body = client
        .stream("LogDriver.ReadLogs")
        .args(&json!({"File": "x"}))
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let err = loop {
        match body.read(&mut buf).await {
            Ok(n) => assert!(n > 0),
            Err(e) => break e,
        }
        assert!(start.elapsed() < WAIT, "did not time out");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(
        err.to_string(),
        "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
    );
}

#[tokio::test]
async fn send_file_sized_and_unsized_bodies() {
    // spec §3.4: sized bodies carry Content-Length, readers go chunked; the
    // reply is always decoded (an empty one is EOF).
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("A.Echo", Reply::echo())
            .on("A.Empty", Reply::json(200, "")),
    )
    .await;
    let client = no_retry().build(plugin.address(), None).unwrap();
    let v: Value = client
        .call("A.Echo")
        .body(Bytes::from_static(b"{\"sized\":true}"))
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"sized": true}));
    let v: Value = client
        .call("A.Echo")
        .body(SendBody::from_reader(&b"{\"chunked\":true}"[..]))
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"chunked": true}));
    let v: Value = client
        .call("A.Echo")
        .body(SendBody::from_sized_reader(13, &b"{\"known\":123}"[..]))
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"known": 123}));
    let reqs = plugin.requests();
    assert_eq!(reqs[0].header("Content-Length"), Some("14"));
    assert!(reqs[0].header("Transfer-Encoding").is_none());
    assert_eq!(reqs[1].header("Transfer-Encoding"), Some("chunked"));
    assert!(reqs[1].header("Content-Length").is_none());
    assert_eq!(reqs[1].body, b"{\"chunked\":true}");
    assert_eq!(reqs[2].header("Content-Length"), Some("13"));

    let e = client
        .call("A.Empty")
        .body("{}")
        .json::<serde::de::IgnoredAny>()
        .await
        .unwrap_err();
    assert!(e.is_decode());
    assert_eq!(e.to_string(), "EOF");
}

#[tokio::test(start_paused = true)]
async fn send_file_streamed_body_is_never_retried_once_sent() {
    // divergence: a streamed body that left is never resent (Docker would
    // resend it empty); an in-memory body is resent whole.
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder().on_seq("A.Echo", [Reply::drop(), Reply::echo()]),
    )
    .await;
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(2500)))
        .build(plugin.address(), None)
        .unwrap();
    let start = Instant::now();
    let e = client
        .call("A.Echo")
        .body(SendBody::from_reader(&b"{\"a\":1}"[..]))
        .json::<Value>()
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "not retried");
    assert_eq!(
        e.to_string(),
        "Post \"http://plugin.moby.localhost/A.Echo\": EOF"
    );
    assert_eq!(plugin.count("A.Echo"), 1);

    plugin.on_seq("A.Echo", [Reply::drop(), Reply::echo()]);
    plugin.clear();
    let v: Value = client
        .call("A.Echo")
        .body("{\"a\":2}")
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"a": 2}));
    let reqs = plugin.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].at - reqs[0].at, MS(1000), "retried after 1 s");
    assert_eq!(reqs[1].body, b"{\"a\":2}");
}

// ---------------------------------------------------------------------------
// Custom transports (Docker's NewClientWithTransport)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_custom_transport_over_an_in_memory_pipe() {
    // Each dial makes an in-memory duplex pipe whose far end is bridged to
    // the fake plugin's socket; the client only sees the pipe.
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().activate(&["LogDriver"])).await;
    let sock = plugin.path().unwrap().to_path_buf();
    let dials = Arc::new(AtomicUsize::new(0));
    let counter = dials.clone();
    let transport = move || {
        let sock = sock.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let (near, mut far) = tokio::io::duplex(64 * 1024);
            let mut upstream = tokio::net::UnixStream::connect(&sock).await?;
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut far, &mut upstream).await;
            });
            Ok(near)
        }
    };
    // The address only names the Host header; nothing dials it.
    let client = Client::with_transport(
        Address::parse("unix:///nonexistent/in-memory.sock").unwrap(),
        transport,
    );
    for _ in 0..3 {
        let m: Manifest = client.call("Plugin.Activate").json().await.unwrap();
        assert!(m.implements("LogDriver"));
    }
    assert_eq!(dials.load(Ordering::SeqCst), 1, "pooled");
    assert_eq!(
        plugin.requests()[0].header("Host"),
        Some("plugin.moby.localhost")
    );

    // A failing dial is a connect error, retried like any other.
    let failing = no_retry().build_with_transport(
        Address::parse("unix:///nonexistent/x.sock").unwrap(),
        || async {
            Err::<tokio::io::DuplexStream, _>(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))
        },
    );
    let e = failing
        .call("Plugin.Activate")
        .json::<Manifest>()
        .await
        .unwrap_err();
    assert!(e.is_connect() && e.is_connection_refused(), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dial_that_never_completes_hits_the_dial_timeout() {
    // checklist 20: the dial is bounded (Docker: 10 s; shortened here).
    let client = no_retry().dial_timeout(MS(100)).build_with_transport(
        Address::parse("unix:///nonexistent/x.sock").unwrap(),
        std::future::pending::<std::io::Result<tokio::io::DuplexStream>>,
    );
    let start = Instant::now();
    let e = client
        .call("Plugin.Activate")
        .json::<Manifest>()
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), MS(100));
    assert!(e.is_timeout() && e.is_connect(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Post \"http://plugin.moby.localhost/Plugin.Activate\": dial: i/o timeout"
    );
}

// ---------------------------------------------------------------------------
// Typed calls (plugin_proto::Call)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn typed_requests_use_the_messages_rules() {
    use plugin_proto::volume::{CreateRequest, PathRequest};
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("VolumeDriver.Create", Reply::ok())
            .on(
                "VolumeDriver.Path",
                Reply::json(200, r#"{"mountpoint":"/mnt/v","err":""}"#),
            ),
    )
    .await;
    let client = Client::new(plugin.address().as_str(), None).unwrap();
    let create = CreateRequest {
        name: "v<1>".into(),
        ..Default::default()
    };
    client.call(&create).await.unwrap();
    let path = PathRequest { name: "v".into() };
    let reply = client.call(&path).await.unwrap();
    assert_eq!(reply.mountpoint, "/mnt/v", "keys match case-insensitively");
    let reqs = plugin.requests();
    assert_eq!(
        reqs[0].body,
        b"{\"Name\":\"v\\u003c1\\u003e\",\"Opts\":null}\n"
    );
    assert_eq!(reqs[1].path, "/VolumeDriver.Path");
}

#[tokio::test(start_paused = true)]
async fn typed_calls_take_per_call_settings() {
    use plugin_proto::metrics::StopMetricsRequest;
    use plugin_proto::volume::CreateRequest;
    let dir = tmp();
    let plugin = unix_plugin(
        &dir,
        FakePlugin::builder()
            .on("VolumeDriver.Create", Reply::hang())
            .on("MetricsCollector.StopMetrics", Reply::text(200, "not json")),
    )
    .await;
    // A client that would retry for a long time, and Docker's two-minute
    // timeout for `VolumeDriver.Create`: both replaced for one call.
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(Duration::from_secs(60)))
        .build(plugin.address().as_str(), None)
        .unwrap();
    let start = Instant::now();
    let e = client
        .call(&CreateRequest {
            name: "v".into(),
            ..Default::default()
        })
        .timeout(MS(100))
        .retry(RetryPolicy::none())
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(start.elapsed(), MS(100), "the call's timeout, once");
    assert_eq!(plugin.count("/VolumeDriver.Create"), 1, "not retried");
    // Docker never reads this reply, so garbage in it is no error.
    client.call(&StopMetricsRequest {}).await.unwrap();
}

// ---------------------------------------------------------------------------
// The whole call's deadline
// ---------------------------------------------------------------------------

/// Counts each hook's runs, and checks what each is handed.
fn counting_hooks(builder: ClientBuilder) -> (ClientBuilder, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (connects, timeouts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, t) = (connects.clone(), timeouts.clone());
    let builder = builder
        .on_connect_failure(Arc::new(move |e: &Error| {
            assert!(e.is_connect(), "{e}");
            c.fetch_add(1, Ordering::SeqCst);
        }))
        .on_timeout(Arc::new(move |e: &Error| {
            assert!(e.is_timeout() && !e.is_connect(), "{e}");
            t.fetch_add(1, Ordering::SeqCst);
        }));
    (builder, connects, timeouts)
}

/// A caller that needs an answer in bounded time used to drop the call
/// from outside, which also dropped the retry loop before it could run the
/// connect-failure hook (how the registry evicts a dead plugin). The
/// deadline ends the retries itself: Docker's schedule runs until the next
/// wait would pass it, then the call fails as a timeout that says what it
/// tried, and the hook runs as at the end of the retry budget.
#[tokio::test(start_paused = true)]
async fn a_deadline_ends_the_retries_and_still_runs_the_connect_failure_hook() {
    let dir = tmp();
    let path = dir.path().join("stale.sock");
    stale_socket(&path);
    // Without the deadline this client would try at 0, 1, 3 and 7 s.
    let (builder, connects, timeouts) =
        counting_hooks(Client::builder().retry(RetryPolicy::with_budget(Duration::from_secs(10))));
    let client = builder.build(Address::unix(&path), None).unwrap();
    let logs = plugin_tests::logs::capture();
    let start = Instant::now();
    let err = client
        .call("Plugin.Activate")
        .deadline(MS(1500))
        .await
        .unwrap_err();
    // Attempts at 0 and 1 s; the next, 2 s later, would start past the
    // deadline, so the call ends at once rather than sleep towards it.
    assert_eq!(start.elapsed(), MS(1000));
    assert!(
        err.is_deadline() && err.is_timeout() && err.is_connect(),
        "{err:?}"
    );
    assert!(err.is_connection_refused(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Plugin.Activate: no answer within 1.5s: Post \"http://plugin.moby.localhost/Plugin.Activate\": dial unix {}: connect: connection refused",
            path.display()
        )
    );
    // One retry (after 1 s) fitted; the next (2 s later) would not.
    let warnings = logs.find(tracing::Level::WARN, "Unable to connect to plugin");
    assert_eq!(warnings.len(), 1, "{:?}", logs.lines());
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    assert_eq!(timeouts.load(Ordering::SeqCst), 0);
}

/// A deadline that passes while the plugin holds the request ends the call
/// with `<method>: no answer within <d>` and runs the timeout hook (the
/// plugin was reached, so the connect-failure hook does not run).
#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_call_the_plugin_never_answers_and_runs_the_timeout_hook() {
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().on("A.Hang", Reply::hang())).await;
    let (builder, connects, timeouts) =
        counting_hooks(Client::builder().retry(RetryPolicy::with_budget(Duration::from_secs(10))));
    let client = builder.build(plugin.address().as_str(), None).unwrap();
    let start = Instant::now();
    let err = client.call("A.Hang").deadline(MS(200)).await.unwrap_err();
    assert_eq!(start.elapsed(), MS(200));
    assert!(
        err.is_deadline() && err.is_timeout() && !err.is_connect(),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "A.Hang: no answer within 200ms");
    assert_eq!(err.method(), Some("A.Hang"));
    assert_eq!(
        plugin.count("/A.Hang"),
        1,
        "nothing is retried past the deadline"
    );
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    assert_eq!(connects.load(Ordering::SeqCst), 0);

    // A call that answers within its deadline is untouched by it.
    plugin.on("A.Hang", Reply::json(200, r#"{"ok":true}"#));
    let start = Instant::now();
    let out: Value = client
        .call("A.Hang")
        .deadline(MS(2000))
        .json()
        .await
        .unwrap();
    assert_eq!(out, json!({"ok": true}));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Per-attempt timeouts that use up the retries (no deadline) run the
/// timeout hook too: the registry looks at where the plugin now lives.
#[tokio::test(start_paused = true)]
async fn retried_per_attempt_timeouts_run_the_timeout_hook_once() {
    let dir = tmp();
    let plugin = unix_plugin(&dir, FakePlugin::builder().on("A.Hang", Reply::hang())).await;
    let (builder, connects, timeouts) = counting_hooks(no_retry().timeout(MS(100)));
    let client = builder.build(plugin.address().as_str(), None).unwrap();
    let start = Instant::now();
    let err = client.call("A.Hang").await.unwrap_err();
    assert_eq!(start.elapsed(), MS(100));
    assert!(err.is_timeout() && !err.is_deadline(), "{err:?}");
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    assert_eq!(connects.load(Ordering::SeqCst), 0);
    // A status error runs neither hook.
    plugin.on("A.Fail", Reply::err("no"));
    client.call("A.Fail").await.unwrap_err();
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    assert_eq!(connects.load(Ordering::SeqCst), 0);
}

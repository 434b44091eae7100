//! The client's connection pool over real unix sockets: idle connections
//! expire after the idle timeout, a connection the plugin closed is never
//! used for a call, concurrent callers each get a connection of their own,
//! and a call dropped halfway never leaves its connection to the next one.
//!
//! The plugins here are small raw servers that count what a connection
//! did (accepted, requests, closed by the client), so the tests see the
//! pool from the plugin's side. Tests about the idle timeout run on
//! tokio's paused clock: the servers run on the test's runtime, so the
//! clock only jumps once every task waits on a timer, after every byte in
//! flight was read.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, stream};
use plugin_client::{Client, ClientBuilder, SendBody};
use plugin_proto::RetryPolicy;
use plugin_tests::server::{FakePlugin, Reply};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const MS: fn(u64) -> Duration = Duration::from_millis;
const WAIT: Duration = Duration::from_secs(5);

fn tmp() -> TempDir {
    tempfile::Builder::new()
        .prefix("pp")
        .tempdir_in("/tmp")
        .unwrap()
}

/// No retries: a call that succeeds did so on its first attempt.
fn no_retry() -> ClientBuilder {
    Client::builder().retry(RetryPolicy::none())
}

/// What a raw plugin saw.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    requests: AtomicUsize,
    /// Connections the client closed (EOF while waiting for a request).
    closed: AtomicUsize,
}

impl Seen {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

/// A plugin answering `200 {}` to every request; `after` runs once each
/// request is read, before the reply, and says whether the connection
/// stays open after it (else it is closed 20 ms after the reply).
fn raw_plugin<F, Fut>(path: &Path, after: F) -> (String, Arc<Seen>)
where
    F: Fn(Arc<Seen>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = bool> + Send,
{
    let listener = UnixListener::bind(path).unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counts.accepted.fetch_add(1, Ordering::SeqCst);
            let (counts, after) = (counts.clone(), after.clone());
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                loop {
                    if !read_request(&mut s).await {
                        counts.closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    counts.requests.fetch_add(1, Ordering::SeqCst);
                    let keep = after(counts.clone()).await;
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                    if s.get_mut().write_all(reply).await.is_err() {
                        counts.closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    if !keep {
                        // Closed a little later, once the client has
                        // pooled the connection.
                        tokio::time::sleep(MS(20)).await;
                        return;
                    }
                }
            });
        }
    });
    (format!("unix://{}", path.display()), seen)
}

/// Reads one request (head and `Content-Length` body); `false` at EOF.
async fn read_request(s: &mut BufReader<UnixStream>) -> bool {
    let mut len = 0;
    loop {
        let mut line = String::new();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.is_ok()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "{what}: not true after {WAIT:?}");
        tokio::time::sleep(MS(10)).await;
    }
}

async fn ok(client: &Client) {
    let v: Value = client.call("A.B").json().await.unwrap();
    assert_eq!(v, json!({}));
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_kept_until_the_idle_timeout_then_closed() {
    let dir = tmp();
    let (addr, seen) = raw_plugin(&dir.path().join("p.sock"), |_| async { true });
    let client = no_retry()
        .pool_idle_timeout(Duration::from_secs(30))
        .build(addr.as_str(), None)
        .unwrap();
    ok(&client).await;
    // Idle for less than the timeout: the same connection serves again.
    tokio::time::sleep(Duration::from_secs(29)).await;
    ok(&client).await;
    assert_eq!(seen.accepted(), 1);
    assert_eq!(seen.closed(), 0);
    // Past the timeout, the pool closes it with no call made: the plugin
    // sees it go.
    tokio::time::sleep(Duration::from_secs(31)).await;
    eventually("idle connection closed", || seen.closed() == 1).await;
    ok(&client).await;
    assert_eq!(seen.accepted(), 2, "a new connection after the expiry");
    assert_eq!(seen.requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_pool_keeps_at_most_max_idle_connections_and_none_when_zero() {
    let dir = tmp();
    let wait = Arc::new(tokio::sync::Barrier::new(4));
    let (addr, seen) = raw_plugin(&dir.path().join("p.sock"), move |_| {
        let wait = wait.clone();
        async move {
            wait.wait().await;
            true
        }
    });
    let client = no_retry()
        .pool_max_idle(2)
        .build(addr.as_str(), None)
        .unwrap();
    // Four calls at once: four connections, of which two are kept.
    let calls: Vec<_> = (0..4).map(|_| ok(&client)).collect();
    futures_util::future::join_all(calls).await;
    assert_eq!(seen.accepted(), 4);
    eventually("two connections beyond max_idle closed", || {
        seen.closed() == 2
    })
    .await;

    let dir = tmp();
    let (addr, seen) = raw_plugin(&dir.path().join("q.sock"), |_| async { true });
    let client = no_retry()
        .pool_max_idle(0)
        .build(addr.as_str(), None)
        .unwrap();
    for _ in 0..3 {
        ok(&client).await;
    }
    assert_eq!(seen.accepted(), 3, "no reuse with a pool of 0");
    eventually("each connection closed after its call", || {
        seen.closed() == 3
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_plugin_closed_is_never_used_and_the_call_succeeds_once() {
    // The plugin closes every connection after its reply, without saying
    // so (no `Connection: close`), as a plugin that restarts or times out
    // idle connections does. No retry policy: each call succeeds on its
    // first attempt, on a new connection, and reaches the plugin once.
    let dir = tmp();
    let (addr, seen) = raw_plugin(&dir.path().join("p.sock"), |_| async { false });
    let client = no_retry().build(addr.as_str(), None).unwrap();
    for i in 1..=5 {
        ok(&client).await;
        // The plugin closes the connection while it idles in the pool.
        tokio::time::sleep(MS(50)).await;
        assert_eq!(seen.requests(), i, "each call reached the plugin once");
    }
    assert_eq!(seen.accepted(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_each_get_a_connection_of_their_own() {
    // The plugin answers only once eight requests are in at the same time:
    // callers queued behind one connection would never get there.
    const CALLERS: usize = 8;
    let dir = tmp();
    let wait = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let (addr, seen) = raw_plugin(&dir.path().join("p.sock"), move |_| {
        let wait = wait.clone();
        async move {
            wait.wait().await;
            true
        }
    });
    let client = no_retry().build(addr.as_str(), None).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let client = client.clone();
        set.spawn(async move { client.call("A.B").json::<Value>().await });
    }
    let all = tokio::time::timeout(WAIT, async {
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap().unwrap(), json!({}));
            n += 1;
        }
        n
    })
    .await
    .expect("the calls were serialized");
    assert_eq!(all, CALLERS);
    assert_eq!(seen.accepted(), CALLERS);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_waiting_closes_its_connection() {
    // The first call's reply comes late; the caller gives up first (drops
    // the call). Its connection must not serve the next call, whose reply
    // would then be the late one.
    let dir = tmp();
    let first = Arc::new(AtomicUsize::new(0));
    let (addr, seen) = raw_plugin(&dir.path().join("p.sock"), move |_| {
        let first = first.clone();
        async move {
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(MS(500)).await;
            }
            true
        }
    });
    let client = no_retry().build(addr.as_str(), None).unwrap();
    let dropped = tokio::time::timeout(MS(100), ok(&client)).await;
    assert!(dropped.is_err(), "the first call was still waiting");
    eventually("dropped call's connection closed", || seen.closed() == 1).await;
    ok(&client).await;
    assert_eq!(seen.accepted(), 2);
}

#[tokio::test]
async fn a_call_dropped_halfway_through_its_body_does_not_poison_the_next() {
    // A streamed body that stops after its first chunk: the call is
    // dropped with half a request on the wire. The next call goes out on
    // a connection of its own and gets its own reply.
    let dir = tmp();
    let plugin = FakePlugin::builder()
        .on("A.Echo", Reply::echo())
        .unix(dir.path().join("e.sock"))
        .await;
    let client = no_retry().build(plugin.address(), None).unwrap();
    ok_echo(&client, "warm").await;
    let stalled = stream::iter([Ok(Bytes::from_static(b"{\"half\":"))]).chain(stream::pending());
    let half = client
        .call("A.Echo")
        .body(SendBody::from_stream(stalled))
        .json::<Value>();
    assert!(tokio::time::timeout(MS(200), half).await.is_err());
    ok_echo(&client, "after").await;
    assert_eq!(
        plugin.connections(),
        2,
        "the half-sent request's connection is gone"
    );
    // A stream dropped before its end does not poison the pool either.
    let mut body = client
        .stream("A.Echo")
        .args(&json!({"s": 1}))
        .await
        .unwrap();
    let mut one = [0u8; 1];
    body.read_exact(&mut one).await.unwrap();
    drop(body);
    ok_echo(&client, "after stream").await;
}

async fn ok_echo(client: &Client, tag: &str) {
    let v: Value = client
        .call("A.Echo")
        .args(&json!({ "tag": tag }))
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({ "tag": tag }));
}

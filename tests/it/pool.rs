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

use std::future::{Future, IntoFuture as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, stream};
use plugin_client::{Client, ClientBuilder, SendBody};
use plugin_proto::RetryPolicy;
use plugin_proto::TlsOptions;
use plugin_tests::certs::TestPki;
use plugin_tests::server::{ClientAuth, FakePlugin, Reply};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const MS: fn(u64) -> Duration = Duration::from_millis;
const WAIT: Duration = Duration::from_secs(5);

fn tmp() -> TempDir {
    plugin_tests::tree::short_tempdir("pp")
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

/// A raw plugin that answers requests `n` at a time, once `n` are in at
/// once: callers that shared a connection would never get there.
fn gathering_plugin(path: &Path, n: usize) -> (String, Arc<Seen>) {
    let wait = Arc::new(tokio::sync::Barrier::new(n));
    raw_plugin(path, move |_| {
        let wait = wait.clone();
        async move {
            wait.wait().await;
            true
        }
    })
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
    let (addr, seen) = gathering_plugin(&dir.path().join("p.sock"), 4);
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
    let (addr, seen) = gathering_plugin(&dir.path().join("p.sock"), CALLERS);
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

/// What a scripted plugin writes for one request.
struct Raw {
    now: Vec<u8>,
    /// Written 10 ms later, once the client had time to pool the
    /// connection.
    later: Option<&'static [u8]>,
    /// Whether the connection is closed after the reply.
    close: bool,
}

/// A plugin that answers request `n` (counted over all connections, from
/// 0) with `script(n)`, written as it is. It records which connection
/// carried each request.
fn scripted_plugin(
    path: &Path,
    script: fn(usize) -> Raw,
) -> (String, Arc<std::sync::Mutex<Vec<usize>>>) {
    let listener = UnixListener::bind(path).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut conn_id = 0;
        while let Ok((s, _)) = listener.accept().await {
            conn_id += 1;
            let log = log.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while read_request(&mut s).await {
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(conn_id);
                        log.len() - 1
                    };
                    let raw = script(n);
                    if s.get_mut().write_all(&raw.now).await.is_err() || raw.close {
                        return;
                    }
                    if let Some(later) = raw.later {
                        tokio::time::sleep(MS(10)).await;
                        if s.get_mut().write_all(later).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("unix://{}", path.display()), seen)
}

#[tokio::test(start_paused = true)]
async fn replies_that_end_or_overrun_their_connection_never_leak_into_the_next_call() {
    // Each odd reply below is followed by a call that must get its own
    // reply (`{"n":<request>}`), reach the plugin once, and never read
    // what the odd reply left behind on its connection.
    const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"smuggled\":1}";
    fn odd(kind: usize) -> Raw {
        let with_extra = |head: &[u8]| Raw {
            now: [head, SMUGGLED].concat(),
            later: None,
            close: false,
        };
        let only = |now: &[u8], close| Raw {
            now: now.to_vec(),
            later: None,
            close,
        };
        match kind {
            // Says close, yet writes a second reply and stays open.
            0 => with_extra(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"),
            // HTTP/1.0: no keep-alive unless asked for.
            1 => with_extra(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            // A body shorter than what follows it: the rest is unasked.
            2 => with_extra(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            // Chunked, then more.
            3 => with_extra(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            ),
            // Informational replies before the real one.
            4 => only(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                false,
            ),
            // No length: the body runs to EOF.
            5 => only(b"HTTP/1.1 200 OK\r\n\r\n{}", true),
            // A reply sent unasked while the connection idles in the pool.
            6 => Raw {
                later: Some(SMUGGLED),
                ..only(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false)
            },
            // 204 has no body, whatever it declares.
            _ => with_extra(b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n"),
        }
    }
    const KINDS: usize = 8;
    let dir = tmp();
    let (addr, seen) = scripted_plugin(&dir.path().join("p.sock"), |n| {
        if n % 2 == 0 {
            odd(n / 2)
        } else {
            let body = format!("{{\"n\":{n}}}");
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            Raw {
                now: (head + &body).into_bytes(),
                later: None,
                close: false,
            }
        }
    });
    let client = no_retry().build(addr.as_str(), None).unwrap();
    for kind in 0..KINDS {
        let first = client.call("A.B").await;
        if kind == KINDS - 1 {
            assert!(first.is_err(), "204 is not 200: {first:?}");
        } else {
            assert_eq!(&first.unwrap()[..], b"{}", "odd reply {kind}");
        }
        // Whatever the odd reply left is in the client's socket by now.
        tokio::time::sleep(MS(50)).await;
        let v: Value = client.call("A.B").json().await.unwrap();
        let n = 2 * kind + 1;
        assert_eq!(v, json!({ "n": n }), "the call after odd reply {kind}");
        assert_eq!(
            seen.lock().unwrap().len(),
            n + 1,
            "each call reached the plugin once"
        );
    }
    // Plain replies do keep their connection: the pool is not just off.
    let log = seen.lock().unwrap().clone();
    assert_eq!(
        log[9], log[8],
        "the call after the 1xx reply reused its connection"
    );
}

#[tokio::test(start_paused = true)]
async fn tls_connections_are_reused_and_a_plugin_closing_each_one_costs_no_call() {
    // Over TLS as over unix sockets: one connection serves call after
    // call, and a plugin that closes each connection after its reply
    // (close_notify, then FIN; no `Connection: close`) still gets each
    // call exactly once, on a new connection, with no retry policy.
    let dir = tmp();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .on("A.Keep", Reply::ok())
        .on(
            "A.Close",
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"[..]),
        )
        .tls(&pki.server(), ClientAuth::None)
        .await;
    let opts = TlsOptions::with_ca_file(&pki.ca_cert);
    let client = no_retry()
        .build(plugin.url("https", "localhost"), Some(&opts))
        .unwrap();
    for _ in 0..3 {
        client.call("A.Keep").await.unwrap();
        tokio::time::sleep(MS(50)).await;
    }
    assert_eq!(
        plugin.connections(),
        1,
        "one TLS connection for three calls"
    );
    for i in 1..=3 {
        let body = client.call("A.Close").await.unwrap();
        assert_eq!(&body[..], b"{}");
        // The plugin's close reaches the client while it idles.
        tokio::time::sleep(MS(50)).await;
        assert_eq!(
            plugin.count("/A.Close"),
            i,
            "each call reached the plugin once"
        );
    }
    // The first `A.Close` went out on the `A.Keep` connection.
    assert_eq!(plugin.connections(), 3);
}

#[tokio::test]
async fn a_dropped_client_closes_its_connections_and_stops_its_reaper_at_once() {
    // An engine makes and drops clients as plugins come and go: nothing
    // of a dropped client may outlive it, not its idle connections and
    // not the task that watches them, even with the idle timeout far off.
    // (The plugin counts the closes: this process's fd count moves with
    // the tests running beside this one.)
    let dir = tmp();
    let (addr, seen) = gathering_plugin(&dir.path().join("p.sock"), 3);
    // The client lives on a runtime of its own, so its tasks are the only
    // ones counted there.
    let (tasks_pooled, tasks_after) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = no_retry()
                .pool_idle_timeout(Duration::from_secs(3600))
                .build(addr.as_str(), None)
                .unwrap();
            let calls: Vec<_> = (0..3).map(|_| client.call("A.B").into_future()).collect();
            for r in futures_util::future::join_all(calls).await {
                r.unwrap();
            }
            let tasks = || {
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
            };
            let tasks_pooled = tasks();
            drop(client);
            // Let anything woken by the drop run.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            (tasks_pooled, tasks())
        })
    })
    .await
    .unwrap();
    assert_eq!(seen.accepted(), 3);
    assert_eq!(tasks_pooled, 1, "one reaper while connections idle");
    eventually("the idle connections closed", || seen.closed() == 3).await;
    assert_eq!(tasks_after, 0, "the reaper ended with its client");
}

#[tokio::test]
async fn timeouts_fire_while_the_call_drives_its_own_connection() {
    // The call's task is the only one polling its connection: its
    // per-attempt timeout must still cut a body upload the plugin never
    // reads, and the call's deadline a reply that trickles in. Neither
    // connection serves again.
    let dir = tmp();
    let path = dir.path().join("deaf.sock");
    let deaf = UnixListener::bind(&path).unwrap();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = deaf.accept().await {
            // Accepted and never read: the upload stalls once the socket
            // buffers are full.
            keep.lock().unwrap().push(s);
        }
    });
    let client = no_retry()
        .build(format!("unix://{}", path.display()).as_str(), None)
        .unwrap();
    let big = Bytes::from(vec![b' '; 32 << 20]);
    let e = client
        .call("A.B")
        .body(big.clone())
        .timeout(MS(200))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let e = client
        .call("A.B")
        .body(big)
        .deadline(MS(200))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(held.lock().unwrap().len(), 2, "no connection reused");

    // A reply whose head comes at once and whose body never ends.
    let path = dir.path().join("slow.sock");
    let slow = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = slow.accept().await {
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                if read_request(&mut s).await {
                    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{";
                    s.get_mut().write_all(head).await.unwrap();
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    let client = no_retry()
        .build(format!("unix://{}", path.display()).as_str(), None)
        .unwrap();
    let e = client.call("A.B").deadline(MS(150)).await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let mut body = client.stream("A.B").timeout(MS(150)).await.unwrap();
    let mut all = Vec::new();
    let e = body.read_to_end(&mut all).await.unwrap_err();
    assert_eq!(all, b"{");
    assert!(e.to_string().contains("deadline exceeded"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn callers_arriving_as_the_reaper_fires_each_succeed_once() {
    // Six connections idle; six callers come at the very instant they
    // expire, when the reaper wakes too. Whoever wins each connection,
    // every call succeeds on its first attempt and reaches the plugin
    // once, and no expired connection serves.
    const N: usize = 6;
    let dir = tmp();
    // Both rounds come six at a time: six connections each.
    let (addr, seen) = gathering_plugin(&dir.path().join("p.sock"), N);
    let client = no_retry()
        .pool_max_idle(N)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(addr.as_str(), None)
        .unwrap();
    futures_util::future::join_all((0..N).map(|_| ok(&client))).await;
    assert_eq!(seen.accepted(), N);
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(seen.closed(), 0, "all six pooled");
    tokio::time::sleep(Duration::from_secs(1)).await;
    futures_util::future::join_all((0..N).map(|_| ok(&client))).await;
    assert_eq!(seen.requests(), 2 * N);
    eventually("the expired connections closed", || seen.closed() == N).await;
    assert_eq!(seen.accepted(), 2 * N, "no expired connection served");
}

#[tokio::test(start_paused = true)]
async fn by_default_two_idle_connections_are_kept_as_dockers_transport_does() {
    // Docker's transport keeps `MaxIdleConnsPerHost` idle connections per
    // host, unset and so Go's default of 2; go-connections' `MaxIdleConns
    // = 6` caps all hosts together, and a plugin's transport has one.
    // Four calls at once leave two connections open, not four.
    let dir = tmp();
    let (addr, seen) = gathering_plugin(&dir.path().join("p.sock"), 4);
    let client = no_retry().build(addr.as_str(), None).unwrap();
    futures_util::future::join_all((0..4).map(|_| ok(&client))).await;
    assert_eq!(seen.accepted(), 4);
    // Every task waits on a timer only once the closes were read.
    tokio::time::sleep(MS(100)).await;
    assert_eq!(seen.closed(), 2, "two connections kept idle");
    assert_eq!(plugin_client::DEFAULT_POOL_MAX_IDLE, 2);
}

//! The plugin side under hostile or broken callers: whatever reaches a
//! plugin's socket (a wedged engine, a port scanner, a local attacker) must
//! neither crash the plugin built on `plugin-server` nor stop it serving
//! the engines that behave.
//!
//! Two kinds of tests. Over real unix sockets: many hostile connections at
//! once while a well-behaved caller's calls still succeed, the connection
//! limit, caps and garbage. Over an in-memory stream
//! (`plugin_server::fuzzing::serve_stream`): the exact schedule of each
//! timeout. Wherever time is the subject, the test runs on tokio's paused
//! clock and asserts instants to the millisecond without waiting for them.
//! The unix sockets allow that: the server runs on the test's runtime, and
//! bytes written to a unix socket are in the kernel before the runtime
//! idles, so the clock never jumps past a socket wait.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use plugin_server::fuzzing::serve_stream;
use plugin_server::{Listener, Plugin, Reply, ServeError, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::{RawResponse, docker_request, exchange, read_response};

/// A plugin with one raw method that echoes its body.
fn echo_plugin() -> Plugin {
    Plugin::builder()
        .implements("VolumeDriver")
        .raw(
            "Test.Echo",
            |body: Bytes| async move { Ok(Reply::bytes(body)) },
        )
        .build()
        .unwrap()
}

/// A server on a unix socket in a temporary directory, stopped by
/// [`Served::stop`].
struct Served {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Served {
    fn start(server: Server) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("hostile.sock");
        let listener = Listener::unix(&sock).unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let server = server.handle_signals(false).shutdown_on(async {
            let _ = rx.await;
        });
        Served {
            _dir: dir,
            sock,
            stop,
            task: tokio::spawn(server.serve(listener)),
        }
    }

    /// Stops the server and returns how long the shutdown took.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop")
            .expect("server task panicked")
            .expect("server failed");
        started.elapsed()
    }
}

/// A well-behaved engine's call on a fresh connection: it must succeed.
async fn good_call(sock: &Path, body: &str) {
    let mut s = UnixStream::connect(sock).await.unwrap();
    let r = exchange(&mut s, &docker_request("Test.Echo", body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, body.as_bytes());
}

/// Reads what is left on `s` until the plugin closes it.
async fn read_to_close<S: AsyncReadExt + Unpin>(s: &mut S) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the plugin did not close the connection")
        .unwrap();
    rest
}

/// Reads what the plugin wrote to `s` until it closes it. A byte the
/// caller wrote after the plugin's last read turns the close into a reset,
/// reported once everything the plugin wrote has been read (Linux sets
/// `ECONNRESET` on the peer of a unix socket closed with unread data).
async fn read_until_reset<S: AsyncReadExt + Unpin>(s: &mut S) -> Vec<u8> {
    let mut rest = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("the plugin did not close the connection");
        match read {
            Ok(0) => return rest,
            Ok(n) => rest.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return rest,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Reads a `408` in the plugin convention saying `message`, then the
/// close that follows it.
async fn expect_timeout<S: AsyncReadExt + Unpin>(s: &mut S, message: &str) {
    let r = tokio::time::timeout(Duration::from_secs(5), read_response(s))
        .await
        .expect("no answer within 5 s");
    assert_eq!(r.err(408), message);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(read_to_close(s).await.is_empty());
}

/// The start of a request head, never finished.
const PARTIAL_HEAD: &[u8] =
    b"POST /Test.Echo HTTP/1.1\r\nHost: plugin.moby.localhost\r\nContent-Le";

// ---------------------------------------------------------------------------
// Real unix sockets
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn fifty_slowloris_connections_do_not_stop_well_behaved_calls() {
    let header_timeout = Duration::from_millis(600);
    let p = Served::start(Server::new(echo_plugin()).header_read_timeout(header_timeout));
    let started = tokio::time::Instant::now();

    // 50 connections that start a head and never finish it, and one that
    // trickles a byte every 100 ms.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = UnixStream::connect(&p.sock).await.unwrap();
        s.write_all(PARTIAL_HEAD).await.unwrap();
        slow.push(s);
    }
    let trickle = {
        let sock = p.sock.clone();
        tokio::spawn(async move {
            let (mut rd, mut wr) = UnixStream::connect(&sock).await.unwrap().into_split();
            let writer = tokio::spawn(async move {
                for b in PARTIAL_HEAD.iter().cycle() {
                    if wr.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let answer = read_until_reset(&mut rd).await;
            let answered = started.elapsed();
            writer.abort();
            (answer, answered)
        })
    };

    // Meanwhile an engine's calls succeed, on fresh and reused connections.
    for i in 0..20 {
        good_call(&p.sock, &format!("{{\"Call\":{i}}}")).await;
    }
    let mut pooled = UnixStream::connect(&p.sock).await.unwrap();
    for i in 0..5 {
        let body = format!("{{\"Pooled\":{i}}}");
        let r = exchange(&mut pooled, &docker_request("Test.Echo", &body)).await;
        assert_eq!(r.status, 200, "{r:?}");
    }

    // All of them were served at once, while 51 heads hung.
    assert_eq!(started.elapsed(), Duration::ZERO);

    // Each slowloris head is answered 408 in the plugin convention exactly
    // the timeout after its first byte, and closed; the trickled one too,
    // however steadily its bytes came.
    let message = format!("request head not received within {header_timeout:?}");
    for mut s in slow {
        expect_timeout(&mut s, &message).await;
        assert_eq!(started.elapsed(), header_timeout);
    }
    let (trickled, answered) = trickle.await.unwrap();
    assert_eq!(answered, header_timeout);
    assert!(
        trickled.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"),
        "{}",
        String::from_utf8_lossy(&trickled)
    );

    // The pooled connection, idle all along, is still open and usable.
    let r = exchange(&mut pooled, &docker_request("Test.Echo", "{}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_answered_408_while_others_are_served() {
    let body_timeout = Duration::from_millis(400);
    let p = Served::start(Server::new(echo_plugin()).body_read_timeout(body_timeout));
    let mut stalled = UnixStream::connect(&p.sock).await.unwrap();
    stalled
        .write_all(b"POST /Test.Echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"half\":")
        .await
        .unwrap();
    let sent = tokio::time::Instant::now();
    good_call(&p.sock, "{\"meanwhile\":true}").await;
    assert_eq!(sent.elapsed(), Duration::ZERO, "the good call waited");
    let message = format!("request body not received within {body_timeout:?}");
    expect_timeout(&mut stalled, &message).await;
    assert_eq!(sent.elapsed(), body_timeout);
    p.stop().await;
}

// Time is not the subject here: the real clock, and the retry below only
// gives the freed place's task a chance to see the close.
#[tokio::test]
async fn connections_over_the_limit_are_answered_503_and_the_plugin_recovers() {
    let p = Served::start(Server::new(echo_plugin()).max_connections(4));
    // Four idle connections, as an engine's pool would hold, fill the limit.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = UnixStream::connect(&p.sock).await.unwrap();
        let r = exchange(&mut s, &docker_request("Test.Echo", "{}")).await;
        assert_eq!(r.status, 200);
        idle.push(s);
    }
    // Over the limit: a 503 Docker shows as `Test.Echo: plugin is busy: …`,
    // then the connection is closed.
    for _ in 0..10 {
        let mut s = UnixStream::connect(&p.sock).await.unwrap();
        let r = exchange(&mut s, &docker_request("Test.Echo", "{}")).await;
        assert_eq!(
            r.err(503),
            "plugin is busy: it already serves its maximum of 4 connections"
        );
        assert_eq!(r.header("connection"), Some("close"));
        assert!(read_to_close(&mut s).await.is_empty());
    }
    // The connections within the limit were never disturbed.
    for s in &mut idle {
        let r = exchange(s, &docker_request("Test.Echo", "{\"still\":1}")).await;
        assert_eq!(r.status, 200);
    }
    // One closes: its place is free again (once its task has seen the
    // close, hence the retries).
    drop(idle.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = UnixStream::connect(&p.sock).await.unwrap();
        let r = exchange(&mut s, &docker_request("Test.Echo", "{}")).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "the freed place never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.stop().await;
}

#[tokio::test]
async fn oversized_heads_and_bodies_and_garbage_get_clear_answers() {
    let p = Served::start(
        Server::new(echo_plugin())
            .max_header_bytes(1024)
            .max_request_body(1024),
    );

    // A head over the cap: hyper's 431, then the connection closes.
    let mut s = UnixStream::connect(&p.sock).await.unwrap();
    let big = format!(
        "POST /Test.Echo HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4096)
    );
    let r = exchange(&mut s, big.as_bytes()).await;
    assert_eq!(r.status, 431, "{r:?}");
    read_to_close(&mut s).await;

    // A declared body over the cap: 413 before any of it is sent.
    let mut s = UnixStream::connect(&p.sock).await.unwrap();
    let r = exchange(
        &mut s,
        b"POST /Test.Echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n",
    )
    .await;
    assert_eq!(r.err(413), "request body larger than 1024 bytes");
    assert_eq!(r.header("connection"), Some("close"));
    read_to_close(&mut s).await;

    // An endless chunked body: stopped at the cap while reading, while the
    // caller is still sending.
    let mut s = UnixStream::connect(&p.sock).await.unwrap();
    s.write_all(b"POST /Test.Echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = format!("100\r\n{}\r\n", "z".repeat(256));
        let mut sent = 0usize;
        while wr.write_all(chunk.as_bytes()).await.is_ok() {
            sent += 256;
            if sent > 64 * 1024 * 1024 {
                break;
            }
        }
        sent
    });
    let r = read_response(&mut rd).await;
    assert_eq!(r.err(413), "request body larger than 1024 bytes");
    read_until_reset(&mut rd).await;
    let sent = writer.await.unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "the plugin read the whole endless body"
    );

    // Bytes that are not HTTP: hyper's 400, closed.
    let mut s = UnixStream::connect(&p.sock).await.unwrap();
    let r = exchange(
        &mut s,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    read_to_close(&mut s).await;

    // A good request with garbage pipelined behind it: the good one is
    // answered, then a 400, then the close.
    let mut s = UnixStream::connect(&p.sock).await.unwrap();
    let mut pipelined = docker_request("Test.Echo", "{\"first\":1}");
    pipelined.extend_from_slice(b"NOT HTTP\r\n\r\n");
    s.write_all(&pipelined).await.unwrap();
    let rest = read_to_close(&mut s).await;
    let text = String::from_utf8_lossy(&rest);
    let (first, second) = text
        .split_once("{\"first\":1}")
        .unwrap_or_else(|| panic!("the good request was not answered: {text}"));
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(second.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(second.contains("\r\nconnection: close\r\n"), "{text}");

    // Through all of it, the plugin kept serving.
    good_call(&p.sock, "{\"after\":\"all that\"}").await;
    p.stop().await;
}

// "Prompt" is the wall-clock time an operator waits for the plugin to
// exit, so this one is on the real clock, with an upper bound.
#[tokio::test]
async fn shutdown_with_hostile_connections_open_is_prompt_and_clean() {
    let p = Served::start(
        Server::new(echo_plugin())
            .max_connections(8)
            .shutdown_timeout(Duration::from_secs(5)),
    );
    let sock = p.sock.clone();
    let mut held = Vec::new();
    for i in 0..12 {
        let mut s = UnixStream::connect(&sock).await.unwrap();
        if i % 2 == 0 {
            s.write_all(PARTIAL_HEAD).await.unwrap();
        }
        held.push((i, s));
    }
    good_call_or_busy(&sock).await;
    let took = p.stop().await;
    // Half-sent heads and idle connections close at once; nothing waits
    // for the 5 s shutdown deadline or the 10 s header timeout.
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    assert!(!sock.exists(), "the socket file was left behind");
    for (i, mut s) in held {
        let rest = read_to_close(&mut s).await;
        let text = String::from_utf8_lossy(&rest);
        // The first eight were served: a half-sent head is told why it is
        // dropped; the four over the limit had their 503 already.
        if i < 8 && i % 2 == 0 {
            assert!(
                text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{text}"
            );
            assert!(
                text.ends_with("{\"Err\":\"plugin is shutting down\"}\n"),
                "{text}"
            );
        } else if i < 8 {
            assert!(text.is_empty(), "{text}");
        }
    }
}

/// A call while the limit may be full: a 200 or the documented 503.
async fn good_call_or_busy(sock: &Path) {
    let mut s = UnixStream::connect(sock).await.unwrap();
    let r: RawResponse = exchange(&mut s, &docker_request("Test.Echo", "{}")).await;
    assert!(
        r.status == 200 || r.err(503).starts_with("plugin is busy"),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------
// In-memory streams, paused clock: exact schedules
// ---------------------------------------------------------------------------

/// One connection to `server`'s plugin over an in-memory stream.
fn connect(server: Server) -> (DuplexStream, JoinHandle<()>) {
    let (engine, plugin) = tokio::io::duplex(64 * 1024);
    (engine, tokio::spawn(serve_stream(server, plugin)))
}

/// Lets `d` of virtual time pass, the way a caller waiting that long
/// would see it.
///
/// `tokio::time::advance` is not used: it moves the clock before the
/// plugin's task has run, so the plugin would read bytes written just
/// before it only at the end of `d`, and time its deadlines from there.
/// `sleep` on the paused clock jumps only once every task waits: the plugin
/// handles what it was sent at the instant it was sent, and a deadline of
/// the plugin's that falls within `d` fires at its own instant.
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Lets every task run until it waits, then reports whether the plugin
/// wrote anything (without waiting for it).
async fn has_answered(s: &mut DuplexStream) -> bool {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut byte = [0u8; 1];
    tokio::select! {
        biased;
        r = s.read(&mut byte) => {
            // Put nothing back: callers only ask before an answer is due.
            r.unwrap();
            true
        }
        () = std::future::ready(()) => false,
    }
}

/// [`expect_timeout`] at this very instant: the `408` was due now, to the
/// millisecond, so no virtual time passes while it is read.
async fn expect_timeout_now(s: &mut DuplexStream, message: &str) {
    let now = tokio::time::Instant::now();
    expect_timeout(s, message).await;
    assert_eq!(now.elapsed(), Duration::ZERO, "the 408 came late");
}

#[tokio::test(start_paused = true)]
async fn a_head_is_timed_from_its_first_byte_not_from_idle() {
    let server = Server::new(echo_plugin()).header_read_timeout(Duration::from_secs(10));
    let (mut s, task) = connect(server);
    // A whole hour idle: never timed out.
    pass(Duration::from_secs(3600)).await;
    assert!(!has_answered(&mut s).await);
    // A head trickled a byte a second: the deadline is 10 s after the
    // first byte, however steadily the rest comes.
    for b in &PARTIAL_HEAD[..9] {
        s.write_all(&[*b]).await.unwrap();
        pass(Duration::from_secs(1)).await;
    }
    s.write_all(&PARTIAL_HEAD[9..10]).await.unwrap();
    pass(Duration::from_millis(999)).await;
    assert!(!has_answered(&mut s).await, "answered before the deadline");
    pass(Duration::from_millis(1)).await;
    expect_timeout_now(&mut s, "request head not received within 10s").await;
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn each_head_on_a_kept_alive_connection_gets_its_own_deadline() {
    let server = Server::new(echo_plugin()).header_read_timeout(Duration::from_secs(5));
    let (mut s, _task) = connect(server);
    for i in 0..3 {
        // Each request's head takes 4 s of the 5 allowed, and the
        // connection idles a minute between requests.
        let request = docker_request("Test.Echo", &format!("{{\"n\":{i}}}"));
        let (head, rest) = request.split_at(10);
        s.write_all(head).await.unwrap();
        pass(Duration::from_secs(4)).await;
        let r = exchange(&mut s, rest).await;
        assert_eq!(r.status, 200, "{r:?}");
        pass(Duration::from_secs(60)).await;
    }
    // The fourth stalls: cut at exactly 5 s.
    s.write_all(b"POST").await.unwrap();
    pass(Duration::from_millis(4999)).await;
    assert!(!has_answered(&mut s).await);
    pass(Duration::from_millis(1)).await;
    expect_timeout_now(&mut s, "request head not received within 5s").await;
}

#[tokio::test(start_paused = true)]
async fn a_body_is_timed_from_the_end_of_its_head() {
    let server = Server::new(echo_plugin())
        .header_read_timeout(Duration::from_secs(10))
        .body_read_timeout(Duration::from_secs(30));
    let (mut s, task) = connect(server);
    s.write_all(b"POST /Test.Echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{\"a\"")
        .await
        .unwrap();
    // The head timeout no longer applies once the head is in.
    pass(Duration::from_millis(29_999)).await;
    assert!(
        !has_answered(&mut s).await,
        "answered before the body deadline"
    );
    pass(Duration::from_millis(1)).await;
    expect_timeout_now(&mut s, "request body not received within 30s").await;
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_slow_handler_is_not_a_slow_caller() {
    // A handler may take as long as it needs: only the caller's bytes are
    // timed.
    let plugin = Plugin::builder()
        .raw("Test.Slow", |_| async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(Reply::bytes("{}\n"))
        })
        .build()
        .unwrap();
    let server = Server::new(plugin)
        .header_read_timeout(Duration::from_secs(1))
        .body_read_timeout(Duration::from_secs(1));
    let (mut s, _task) = connect(server);
    let started = tokio::time::Instant::now();
    let r = exchange(&mut s, &docker_request("Test.Slow", "{}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(600));
}

#[tokio::test(start_paused = true)]
async fn timeouts_can_be_turned_off() {
    let server = Server::new(echo_plugin())
        .header_read_timeout(None)
        .body_read_timeout(None);
    let (mut s, _task) = connect(server);
    s.write_all(b"POST /Test.Echo HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    pass(Duration::from_secs(86_400)).await;
    assert!(!has_answered(&mut s).await);
    let r = exchange(&mut s, b"ngth: 2\r\n\r\n{}").await;
    assert_eq!(r.status, 200, "{r:?}");
}

//! Reliability under faults: plugins that die mid-call, accept and never
//! answer, trickle bytes, speak broken HTTP, send endless or cut bodies,
//! move between sockets, ports and transports while an engine uses them;
//! a thousand plugins under ten thousand concurrent calls; TLS failures
//! end to end through the registry, and a handshake whose signature does
//! not match its certificate.
//!
//! Docker, measured: `docker volume ls` hangs with no limit when a plugin
//! socket accepts and never answers; a plugin whose socket vanished costs
//! 15 s on every `ls`/`rm`/`inspect`; a plugin moved from unix to tcp is
//! not found again until the engine restarts. Each of those is a test here
//! with the opposite outcome.
//!
//! Where a real process death matters, the test binary runs itself as a
//! child (`spawn_self`): the same test function, with `FAULTS_ROLE` set,
//! plays the plugin (or the load test's client and server farm) and is
//! killed with `SIGKILL`. Every test is bounded by a deadline of a few
//! seconds; budgets are hundreds of milliseconds.
//!
//! Tests whose subject is time (timeouts against mute and trickling
//! plugins, the retry after a plugin's death) run on tokio's paused clock
//! and assert exact virtual durations. Their plugins run on the test's
//! runtime, so the clock only jumps once every task waits on a timer; a
//! child process cannot share that clock, so a test with one pauses only
//! once the child is dead. The rest stay on the real clock, each saying why.

use std::ffi::OsString;
use std::future::IntoFuture;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use plugin_client::{Client, ClientBuilder};
use plugin_proto::{Address, Manifest, RetryPolicy};
use plugin_registry::{ListState, Policy, Registry};
use plugin_tests::procfs::{self, open_fds};
use plugin_tests::server::{FakePlugin, Reply};
use plugin_tests::tree::PluginTree;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;
/// The outer bound of every test: nothing here may take longer.
const DEADLINE: Duration = Duration::from_secs(10);
const ACTIVATE: &str = "Plugin.Activate";

/// Runs `f` under [`DEADLINE`]; a hang is a test failure, not a stuck CI.
async fn bounded<T>(what: &str, f: impl IntoFuture<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: still running after {DEADLINE:?}"),
    }
}

/// A short directory under `/tmp` (unix socket paths are limited to 108
/// bytes).
fn tmp() -> TempDir {
    plugin_tests::tree::short_tempdir("pf")
}

fn no_retry() -> ClientBuilder {
    Client::builder().retry(RetryPolicy::none())
}

/// The default registry policy with budgets short enough for tests: no
/// retry fits in 300 ms (the first backoff is 1 s), handshakes and listings
/// bounded at 300 ms.
fn quick_policy() -> Policy {
    let mut p = Policy::default().with_retry(RetryPolicy::with_budget(MS(300)));
    p.handshake_timeout = Some(MS(300));
    p.list_timeout = Some(MS(500));
    p
}

/// Polls `cond` every 10 ms until it holds; panics after `limit` (of
/// virtual time on a paused clock).
async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not true after {limit:?}");
        tokio::time::sleep(MS(10)).await;
    }
}

// ---------------------------------------------------------------------------
// Child processes: this test binary, running one test in a role
// ---------------------------------------------------------------------------

/// Set in a child: which part the test function plays there.
const ROLE: &str = "FAULTS_ROLE";

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .unwrap_or_else(|| panic!("child role needs {name}"))
        .into()
}

/// The libtest name of a test function of this module.
fn test_name(function: &str) -> String {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, m)| m);
    format!("{module}::{function}")
}

/// A child process killed (`SIGKILL`) and reaped when dropped, so a failed
/// assertion never leaves a plugin running.
struct ChildGuard(Child);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// `SIGKILL` now, and reap it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits for the child to exit by itself within `limit`; kills it and
    /// fails otherwise. Returns its stdout and whether it succeeded.
    fn wait_output(mut self, limit: Duration) -> (bool, String) {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(mut s) = self.0.stdout.take() {
                    let _ = s.read_to_string(&mut out);
                }
                return (status.success(), out);
            }
            if start.elapsed() > limit {
                self.kill();
                panic!("child {} still running after {limit:?}", self.pid());
            }
            std::thread::sleep(MS(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Runs this test binary again with only `function` selected, `ROLE` set to
/// `role` and `env` added. Its stdout is piped (read it with
/// [`ChildGuard::wait_output`]); stderr is inherited.
fn spawn_self(function: &str, role: &str, env: &[(&str, OsString)]) -> ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        test_name(function).as_str(),
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    ChildGuard(cmd.spawn().unwrap())
}

/// In a child: die with the thread that spawned us, so nothing outlives a
/// crashed or interrupted test run.
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
}

// ---------------------------------------------------------------------------
// A raw unix-socket server, for behaviour the kit cannot script
// ---------------------------------------------------------------------------

/// Serves each accepted connection with `f(stream, connection number)`.
/// Stops (and drops every connection) when dropped.
struct RawServer {
    path: PathBuf,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    fn start<F, Fut>(path: PathBuf, f: F) -> RawServer
    where
        F: Fn(UnixStream, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    Ok((s, _)) = listener.accept() => {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        conns.spawn(f(s, n));
                    }
                }
            }
        });
        RawServer {
            path,
            accepted,
            task,
        }
    }

    fn address(&self) -> Address {
        Address::unix(&self.path)
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `Content-Length` body); `None` at a clean
/// end of stream.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some(head)
}

/// Waits until the peer closes its end (reads return 0 or fail).
async fn until_closed(s: &mut UnixStream) {
    let mut tmp = [0u8; 1024];
    while let Ok(n) = s.read(&mut tmp).await {
        if n == 0 {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// A plugin killed mid-call (a real process, SIGKILL)
// ---------------------------------------------------------------------------

/// The child's part: a volume plugin on `$FAULTS_SOCK` that records every
/// `VolumeDriver.Create` body as a file `req.<n>` in `$FAULTS_DIR` and never
/// answers it. It writes `$FAULTS_DIR/ready` once it listens, and exits by
/// itself after 20 s in case nobody kills it.
async fn hanging_plugin_child() {
    die_with_parent();
    let dir = env_path("FAULTS_DIR");
    let sock = env_path("FAULTS_SOCK");
    let seen = Arc::new(AtomicUsize::new(0));
    let record_dir = dir.clone();
    let _plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on(
            "VolumeDriver.Create",
            Reply::with(move |r| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                std::fs::write(record_dir.join(format!("req.{n}")), &r.body).unwrap();
                Reply::hang()
            }),
        )
        .unix(&sock)
        .await;
    std::fs::write(dir.join("ready"), "").unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
}

/// The bodies the child recorded, in order.
fn recorded_bodies(dir: &Path) -> Vec<Vec<u8>> {
    (0..)
        .map_while(|n| std::fs::read(dir.join(format!("req.{n}"))).ok())
        .collect()
}

/// Starts the hanging plugin child for `function` and waits until it
/// listens on `<dir>/k.sock`.
async fn start_hanging_child(function: &str, dir: &Path) -> (ChildGuard, PathBuf) {
    let sock = dir.join("k.sock");
    let child = spawn_self(
        function,
        "hanging-plugin",
        &[
            ("FAULTS_DIR", dir.as_os_str().to_owned()),
            ("FAULTS_SOCK", sock.as_os_str().to_owned()),
        ],
    );
    let ready = dir.join("ready");
    eventually("child plugin ready", Duration::from_secs(8), || {
        ready.exists()
    })
    .await;
    (child, sock)
}

fn create_args() -> Value {
    json!({"Name": "v-killed", "Opts": {"size": "1g"}})
}

#[tokio::test]
async fn plugin_killed_mid_call_is_a_transport_error_and_no_second_request_without_retry() {
    if role().is_some() {
        return hanging_plugin_child().await;
    }
    let dir = tmp();
    let (mut child, sock) = start_hanging_child(
        "plugin_killed_mid_call_is_a_transport_error_and_no_second_request_without_retry",
        dir.path(),
    )
    .await;
    let client = no_retry().build(Address::unix(&sock), None).unwrap();
    let call = tokio::spawn(async move {
        client
            .call("VolumeDriver.Create")
            .args(&create_args())
            .json::<Value>()
            .await
    });
    // The plugin has read the request and is working on it: kill it.
    eventually("request recorded", Duration::from_secs(5), || {
        !recorded_bodies(dir.path()).is_empty()
    })
    .await;
    child.kill();
    // The child is reaped, so its end of the socket is closed: from here
    // on nothing real is in flight, and the clock can be paused to see
    // that the caller learns of the death at that very instant.
    tokio::time::pause();
    let killed = Instant::now();
    let e = bounded("call after kill", call).await.unwrap().unwrap_err();
    assert_eq!(killed.elapsed(), Duration::ZERO, "no hang");
    assert!(
        !e.is_status() && !e.is_timeout() && !e.is_decode() && !e.is_connect(),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text == "Post \"http://plugin.moby.localhost/VolumeDriver.Create\": EOF"
            || text.ends_with("connection reset by peer"),
        "{text}"
    );
    // One request reached the plugin; nothing was sent again.
    assert_eq!(recorded_bodies(dir.path()).len(), 1);
    // The dead process left its socket file behind: the next call is
    // refused at once.
    let client = no_retry().build(Address::unix(&sock), None).unwrap();
    let e = bounded(
        "call to the dead plugin",
        client
            .call("VolumeDriver.Create")
            .args(&create_args())
            .json::<Value>(),
    )
    .await
    .unwrap_err();
    assert!(e.is_connection_refused(), "{e:?}");
}

#[tokio::test]
async fn plugin_killed_mid_call_is_retried_with_the_full_body_on_its_successor() {
    if role().is_some() {
        return hanging_plugin_child().await;
    }
    let dir = tmp();
    let (mut child, sock) = start_hanging_child(
        "plugin_killed_mid_call_is_retried_with_the_full_body_on_its_successor",
        dir.path(),
    )
    .await;
    // One retry, one second after the failure.
    let client = Client::builder()
        .retry(RetryPolicy::with_budget(MS(1500)))
        .build(Address::unix(&sock), None)
        .unwrap();
    let call = tokio::spawn(async move {
        client
            .call("VolumeDriver.Create")
            .args(&create_args())
            .json::<Value>()
            .await
    });
    eventually("request recorded", Duration::from_secs(5), || {
        !recorded_bodies(dir.path()).is_empty()
    })
    .await;
    child.kill();
    // Reaped: nothing real is in flight any more (see above), so the
    // retry's backoff can pass on the paused clock.
    tokio::time::pause();
    let killed = Instant::now();
    // A supervisor restarts the plugin at the same path before the retry.
    std::fs::remove_file(&sock).unwrap();
    let successor = FakePlugin::builder()
        .on("VolumeDriver.Create", Reply::echo())
        .unix(&sock)
        .await;
    let v = bounded("retried call", call).await.unwrap().unwrap();
    assert_eq!(v, create_args());
    let first = &recorded_bodies(dir.path())[0];
    let again = successor.requests();
    assert_eq!(again.len(), 1);
    // Docker's first backoff. The clock was paused between two of the
    // timer wheel's 1 ms ticks, and tokio rounds a sleep's end up to a tick.
    let backoff = again[0].at - killed;
    assert!(backoff >= MS(1000) && backoff <= MS(1001), "{backoff:?}");
    assert_eq!(&again[0].body, first, "the whole body, not an empty one");
    assert_eq!(
        again[0].header("Content-Length"),
        Some(first.len().to_string().as_str())
    );
}

// ---------------------------------------------------------------------------
// A plugin that accepts and never answers
// ---------------------------------------------------------------------------

/// Answers `A.Ok` with `{}`; never answers anything else and reports (by
/// counting) when the client closes such a connection.
fn hang_server(path: PathBuf, closed: Arc<AtomicUsize>) -> RawServer {
    RawServer::start(path, move |mut s, _| {
        let closed = closed.clone();
        async move {
            while let Some(head) = read_request(&mut s).await {
                if head.starts_with("POST /A.Ok ") {
                    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                } else {
                    until_closed(&mut s).await;
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn timeouts_fire_on_time_and_the_hung_connection_is_closed_not_reused() {
    let dir = tmp();
    let closed = Arc::new(AtomicUsize::new(0));
    let server = hang_server(dir.path().join("h.sock"), closed.clone());
    bounded("timeouts", async {
        // Per-call timeout (Docker's WithRequestTimeout).
        let client = no_retry().build(server.address(), None).unwrap();
        let _: Value = client.call("A.Ok").json().await.unwrap();
        assert_eq!(server.connections(), 1);
        let start = Instant::now();
        let e = client
            .call("A.Hang")
            .timeout(MS(200))
            .json::<Value>()
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), MS(200), "per-call timeout");
        assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
        // The hung connection is closed by the client, not parked in the
        // pool: the plugin sees it go.
        eventually("hung connection closed", MS(1000), || {
            closed.load(Ordering::SeqCst) == 1
        })
        .await;
        // The next call works, on a fresh connection.
        let _: Value = client.call("A.Ok").json().await.unwrap();
        assert_eq!(server.connections(), 2);

        // Client timeout (Docker's NewClientWithTimeout).
        let client = no_retry()
            .timeout(MS(200))
            .build(server.address(), None)
            .unwrap();
        let start = Instant::now();
        let e = client.call("A.Hang").json::<Value>().await.unwrap_err();
        assert_eq!(start.elapsed(), MS(200), "client timeout");
        assert!(e.is_timeout(), "{e:?}");
        eventually("second hung connection closed", MS(1000), || {
            closed.load(Ordering::SeqCst) == 2
        })
        .await;
        let _: Value = client.call("A.Ok").json().await.unwrap();
        assert_eq!(server.connections(), 4);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn registry_get_of_a_plugin_that_never_answers_is_bounded_by_the_handshake_timeout() {
    // Docker's handshake has no bound: `get` (and every volume operation
    // naming the driver) hangs.
    let tree = PluginTree::new();
    let closed = Arc::new(AtomicUsize::new(0));
    let _server = hang_server(tree.path("run/mute.sock"), closed);
    let reg = Registry::new(tree.registry(), quick_policy());
    let start = Instant::now();
    let e = bounded("get", reg.get("mute", "VolumeDriver"))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), MS(300), "the handshake timeout");
    assert!(e.is_timeout(), "{e:?}");
    assert!(reg.plugins().is_empty(), "a failed activation is not kept");
}

#[tokio::test(start_paused = true)]
async fn get_all_finishes_within_the_list_timeout_whatever_hangs() {
    // Three ways to never answer: the kit's plugin that reads the request
    // and hangs, a listener nobody accepts on (the kernel completes the
    // connection into the backlog), and a listener that accepts and never
    // reads. Docker's `volume ls` hangs forever on each.
    let tree = PluginTree::new();
    let _hang = FakePlugin::builder()
        .on(ACTIVATE, Reply::hang())
        .unix(tree.path("run/hang.sock"))
        .await;
    let _backlog = tree.live_socket("run/backlog.sock");
    let _mute = RawServer::start(tree.path("run/mute.sock"), |s, _| async move {
        let _keep = s;
        std::future::pending::<()>().await;
    });
    let _ok = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .unix(tree.path("run/ok.sock"))
        .await;
    let mut policy = Policy::default();
    policy.list_timeout = Some(MS(300));
    let reg = Registry::new(tree.registry(), policy);
    let start = Instant::now();
    let all = bounded("get_all", reg.get_all("VolumeDriver"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), MS(300), "the list timeout, once for all");
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["ok"]);
    let start = Instant::now();
    let listing = bounded("list", reg.list("VolumeDriver")).await.unwrap();
    assert_eq!(start.elapsed(), MS(300));
    for l in &listing {
        let want = if l.name == "ok" {
            ListState::Ok
        } else {
            ListState::Timeout
        };
        assert_eq!(l.state, want, "{}: {:?}", l.name, l.error);
    }
}

// ---------------------------------------------------------------------------
// Slow, malformed, cut and oversized replies
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn slowloris_replies_hit_the_deadline_however_steady_the_trickle() {
    let dir = tmp();
    // Byte by byte, head included: each byte resets no timer.
    let head_trickle = FakePlugin::builder()
        .on(
            "A.B",
            Reply::slow(MS(20), Reply::json(200, r#"{"Err":""}"#)),
        )
        .unix(dir.path().join("slow.sock"))
        .await;
    // The head at once, then the body one byte every 10 ms.
    let body_trickle = RawServer::start(dir.path().join("body.sock"), |mut s, _| async move {
        if read_request(&mut s).await.is_none() {
            return;
        }
        let body = format!(r#"{{"Data":"{}"}}"#, "a".repeat(1000));
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for b in body.bytes() {
            tokio::time::sleep(MS(10)).await;
            if s.write_all(&[b]).await.is_err() {
                return;
            }
        }
    });
    bounded("slowloris", async {
        for address in [
            Address::parse(&head_trickle.address()).unwrap(),
            body_trickle.address(),
        ] {
            let per_call = no_retry().build(&address, None).unwrap();
            let start = Instant::now();
            let e = per_call
                .call("A.B")
                .timeout(MS(300))
                .json::<Value>()
                .await
                .unwrap_err();
            assert_eq!(start.elapsed(), MS(300), "{address}: per-call");
            assert!(e.is_timeout() && !e.is_decode(), "{address}: {e:?}");

            let whole = no_retry().timeout(MS(300)).build(&address, None).unwrap();
            let start = Instant::now();
            let e = whole.call("A.B").json::<Value>().await.unwrap_err();
            assert_eq!(start.elapsed(), MS(300), "{address}: client");
            assert!(e.is_timeout(), "{address}: {e:?}");
        }
    })
    .await;
}

/// Replies that are not HTTP a client can accept. Each must fail alone,
/// quickly, as a transport or body error (never a status, never a panic).
const MALFORMED: &[(&str, &[u8])] = &[
    ("bad status code", b"HTTP/1.1 abc OK\r\n\r\n"),
    ("no status line", b"\r\n\r\n"),
    (
        "header without colon",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n{}",
    ),
    (
        "negative length",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    ),
    (
        "overflowing length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    ),
    (
        "conflicting lengths",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    ),
    (
        "bad chunk size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ),
    (
        "chunked body cut",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"Err\"",
    ),
    ("head cut", b"HTTP/1.1 200 OK\r\nContent-Le"),
    ("HTTP/0.9 body", b"{\"Implements\":[\"VolumeDriver\"]}"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("TLS record", b"\x16\x03\x01\x00\x05hello"),
    ("NUL bytes", b"\0\0\0\0\0\0\0\0\r\n\r\n"),
    ("interim reply only", b"HTTP/1.1 100 Continue\r\n\r\n"),
    ("HTTP/3", b"HTTP/3 200 OK\r\n\r\n"),
];

#[tokio::test(start_paused = true)]
async fn malformed_replies_are_clear_errors() {
    let dir = tmp();
    let mut script = FakePlugin::builder();
    for (i, (_, bytes)) in MALFORMED.iter().enumerate() {
        script = script.on(&format!("M.Case{i}"), Reply::raw(*bytes));
    }
    let plugin = script
        .on("M.Ok", Reply::json(200, r#"{"ok":true}"#))
        .unix(dir.path().join("m.sock"))
        .await;
    let client = no_retry().build(plugin.address(), None).unwrap();
    bounded("malformed", async {
        for (i, (what, _)) in MALFORMED.iter().enumerate() {
            let method = format!("M.Case{i}");
            let start = Instant::now();
            let e = client
                .call(method.as_str())
                .json::<Value>()
                .await
                .unwrap_err();
            // No timer is involved: each fails the moment it is read.
            assert_eq!(start.elapsed(), Duration::ZERO, "{what}");
            assert!(!e.is_status() && !e.is_timeout(), "{what}: {e:?}");
            println!("{what}: {e}");
            // The same client keeps working.
            let v: Value = client.call("M.Ok").json().await.unwrap();
            assert_eq!(v, json!({"ok": true}), "{what}");
        }
    })
    .await;
}

// Real time: the bound is on the work of reading the flood, which keeps
// the runtime busy; a paused clock only moves when the runtime idles, so it
// could not measure that work.
#[tokio::test]
async fn reply_heads_that_never_end_are_cut_off() {
    // Headers forever, or a status line with no end: the client stops at
    // its head-size limit with a clear error, long before memory matters.
    let dir = tmp();
    let flood = |path: PathBuf, start: &'static [u8], unit: &'static [u8]| {
        RawServer::start(path, move |mut s, _| async move {
            if read_request(&mut s).await.is_none() {
                return;
            }
            let block: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
            if s.write_all(start).await.is_err() {
                return;
            }
            // Up to 64 MiB, then give up (the client must stop far earlier).
            for _ in 0..1024 {
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
        })
    };
    let headers = flood(
        dir.path().join("h.sock"),
        b"HTTP/1.1 200 OK\r\n",
        b"X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    );
    let status = flood(dir.path().join("s.sock"), b"HTTP/1.1 200 ", b"O");
    bounded("floods", async {
        for server in [&headers, &status] {
            let client = no_retry().build(server.address(), None).unwrap();
            let start = Instant::now();
            let e = client.call("F.Flood").json::<Value>().await.unwrap_err();
            assert!(start.elapsed() < MS(2000), "{:?}", start.elapsed());
            assert!(!e.is_status() && !e.is_timeout(), "{e:?}");
            assert!(
                e.to_string().starts_with(
                    "Post \"http://plugin.moby.localhost/F.Flood\": malformed HTTP response"
                ),
                "{e}"
            );
            println!("{e}");
        }
    })
    .await;
}

#[tokio::test]
async fn cut_non_json_and_hostile_json_bodies_are_clear_errors() {
    let dir = tmp();
    let deep_array = "[".repeat(100_000);
    let deep_object = r#"{"a":"#.repeat(50_000);
    let plugin = FakePlugin::builder()
        .on("B.Cut", Reply::truncated(200, 100, r#"{"Err":"#))
        .on("B.CutError", Reply::truncated(500, 100, r#"{"Err":"bo"#))
        .on(
            "B.CutChunked",
            Reply::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"Err\""),
        )
        .on(
            "B.HugeChunk",
            Reply::raw(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}",
            ),
        )
        .on(
            "B.BadChunk",
            Reply::raw(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            ),
        )
        .on("B.NotJson", Reply::json(200, "not json"))
        .on("B.Binary", Reply::json(200, "\u{0}\u{1}garbage"))
        .on("B.DeepArray", Reply::json(200, deep_array))
        .on("B.DeepObject", Reply::json(200, deep_object))
        .unix(dir.path().join("b.sock"))
        .await;
    let client = no_retry().build(plugin.address(), None).unwrap();
    bounded("bodies", async {
        // A body cut short reads as Go's `unexpected EOF`, 200 or not.
        for m in ["B.Cut", "B.CutChunked"] {
            let e = client.call(m).json::<Value>().await.unwrap_err();
            assert!(!e.is_status() && !e.is_decode(), "{m}: {e:?}");
            assert_eq!(e.to_string(), "unexpected EOF", "{m}");
        }
        let e = client.call("B.CutError").json::<Value>().await.unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.to_string(), "B.CutError: unexpected EOF");
        for m in ["B.BadChunk", "B.HugeChunk"] {
            let e = client.call(m).json::<Value>().await.unwrap_err();
            assert!(
                !e.is_status() && !e.is_decode() && !e.is_too_large(),
                "{m}: {e:?}"
            );
            println!("{m}: {e}");
        }
        // Not JSON, or JSON too deep to decode without recursion: decode
        // errors, never a stack overflow.
        for m in ["B.NotJson", "B.Binary", "B.DeepArray", "B.DeepObject"] {
            let e = client.call(m).json::<Value>().await.unwrap_err();
            assert!(e.is_decode() && !e.is_status(), "{m}: {e:?}");
            println!("{m}: {e}");
            let e = client.call(m).json::<Manifest>().await.unwrap_err();
            assert!(e.is_decode(), "{m}: {e:?}");
        }
    })
    .await;
}

/// Runs `f` on its own thread with its own runtime and fails if it has not
/// finished within `limit`. For CPU-bound work, which no `timeout` on the
/// same thread can interrupt.
fn on_a_thread_within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}"))
}

// Real time, on a thread of its own: the bound is on CPU work, which no
// clock of tokio's measures.
#[test]
fn replies_with_a_million_keys_or_elements_decode_in_linear_time() {
    // ~10 MB each: under the 64 MiB default cap, so they are decoded, not
    // refused. Key matching used to be quadratic: a plugin could pin a core
    // of the engine for many minutes, beyond the reach of any timeout.
    let mut keys = String::from(r#"{"Implements":["VolumeDriver"]"#);
    for i in 0..1_000_000 {
        keys.push_str(&format!(",\"k{i}\":1"));
    }
    keys.push('}');
    let mut elements = String::from(r#"{"Implements":["#);
    for _ in 0..1_000_000 {
        elements.push_str(r#""NetworkDriver","#);
    }
    elements.push_str(r#""VolumeDriver"]}"#);
    on_a_thread_within(Duration::from_secs(20), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tmp();
            let plugin = FakePlugin::builder()
                .on("K.Keys", Reply::json(200, keys))
                .on("K.Elements", Reply::json(200, elements))
                .unix(dir.path().join("keys.sock"))
                .await;
            let client = no_retry().build(plugin.address(), None).unwrap();
            for m in ["K.Keys", "K.Elements"] {
                // CPU time, measured for the log: the real clock.
                let start = std::time::Instant::now();
                let manifest: Manifest = client.call(m).json().await.unwrap();
                assert!(manifest.implements("VolumeDriver"), "{m}");
                println!("{m}: {:?}", start.elapsed());
            }
        });
    });
}

// The paused clock orders the late bytes: the plugin's 50 ms pause ends,
// and its smuggled reply lands on the idle connection, before the engine's
// 100 ms pause does, every time and without waiting.
#[tokio::test(start_paused = true)]
async fn bytes_after_a_complete_reply_are_never_taken_as_the_next_reply() {
    // A plugin that sends a second, unsolicited reply after the first (in
    // the same write, or later on the idle connection) must not answer the
    // engine's next call with it: that call goes to the plugin.
    const EVIL: &str = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"evil\":true}";
    let dir = tmp();
    let same_write = FakePlugin::builder()
        .on(
            "S.First",
            Reply::raw(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}{EVIL}"
            )),
        )
        .on("S.Second", Reply::json(200, r#"{"real":true}"#))
        .unix(dir.path().join("s.sock"))
        .await;
    // Keeps the connection open: the smuggled reply sits in the buffer, or
    // arrives while the connection idles in the pool.
    let seconds = Arc::new(AtomicUsize::new(0));
    let counted = seconds.clone();
    let keep_open = RawServer::start(dir.path().join("k.sock"), move |mut s, _| {
        let counted = counted.clone();
        async move {
            while let Some(head) = read_request(&mut s).await {
                let reply = if head.starts_with("POST /S.First ") {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}{EVIL}")
                } else if head.starts_with("POST /S.Late ") {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                        .await;
                    tokio::time::sleep(MS(50)).await;
                    EVIL.to_owned()
                } else {
                    counted.fetch_add(1, Ordering::SeqCst);
                    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"real\":true}".to_owned()
                };
                if s.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    bounded("desync", async {
        let client = no_retry().build(same_write.address(), None).unwrap();
        for _ in 0..3 {
            let v: Value = client.call("S.First").json().await.unwrap();
            assert_eq!(v, json!({}));
            let v: Value = client.call("S.Second").json().await.unwrap();
            assert_eq!(v, json!({"real": true}));
        }
        assert_eq!(same_write.count("S.Second"), 3);

        let client = no_retry().build(keep_open.address(), None).unwrap();
        for first in ["S.First", "S.Late"] {
            for _ in 0..3 {
                let v: Value = client.call(first).json().await.unwrap();
                assert_eq!(v, json!({}), "{first}");
                tokio::time::sleep(MS(100)).await;
                let r = client.call("S.Second").json::<Value>().await;
                match r {
                    Ok(v) => assert_eq!(v, json!({"real": true}), "{first}"),
                    // A connection poisoned by unsolicited bytes may fail
                    // the call; it must never answer it.
                    Err(e) => panic!("{first}: {e:?}"),
                }
            }
        }
        assert_eq!(seconds.load(Ordering::SeqCst), 6);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Plugins that move: socket removed, replaced, moved to tcp; restarts
// ---------------------------------------------------------------------------

async fn list_volumes(p: &plugin_registry::Plugin) -> Result<Value, plugin_client::Error> {
    p.client()
        .call("VolumeDriver.List")
        .args(&json!({}))
        .json()
        .await
}

fn volume_script() -> plugin_tests::server::Script {
    FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .on("VolumeDriver.List", Reply::json(200, r#"{"Volumes":[]}"#))
}

#[tokio::test(start_paused = true)]
async fn a_vanished_socket_evicts_the_plugin_and_later_lookups_fail_fast() {
    // Docker: 15 s of lookup retries on every `ls`/`rm`/`inspect` naming
    // the driver, for as long as the engine runs.
    let tree = PluginTree::new();
    let sock = tree.path("run/p.sock");
    let first = volume_script().unix(&sock).await;
    let reg = Registry::new(tree.registry(), quick_policy());
    bounded("vanished", async {
        let p = reg.get("p", "VolumeDriver").await.unwrap();
        list_volumes(&p).await.unwrap();
        // The plugin goes away and takes its socket with it.
        first.shutdown().await;
        std::fs::remove_file(&sock).unwrap();
        let start = Instant::now();
        let e = list_volumes(&p).await.unwrap_err();
        assert!(e.is_connect() && e.is_socket_missing(), "{e:?}");
        assert!(reg.plugins().is_empty(), "evicted after the failed call");
        for _ in 0..3 {
            let e = reg.get("p", "VolumeDriver").await.unwrap_err();
            assert!(e.is_not_found(), "{e}");
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "not a tick of waiting");
        // It comes back: found and activated again.
        let second = volume_script().unix(&sock).await;
        let q = reg.get("p", "VolumeDriver").await.unwrap();
        list_volumes(&q).await.unwrap();
        assert_eq!(second.count(ACTIVATE), 1);
    })
    .await;
}

#[tokio::test]
async fn a_socket_replaced_by_a_new_listener_is_used_at_once() {
    // The plugin restarts at the same path: same address, so the cached
    // plugin stays and its next call reaches the new process, even though
    // the pool still held a connection to the old one.
    let tree = PluginTree::new();
    let sock = tree.path("run/p.sock");
    let mut current = volume_script().unix(&sock).await;
    let reg = Registry::new(tree.registry(), quick_policy());
    bounded("replaced", async {
        let p = reg.get("p", "VolumeDriver").await.unwrap();
        list_volumes(&p).await.unwrap();
        for round in 0..5 {
            // The old process is gone (its connections closed) before the
            // new one binds, as with a supervisor's restart.
            current.shutdown().await;
            std::fs::remove_file(&sock).unwrap();
            current = volume_script().unix(&sock).await;
            list_volumes(&p)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            assert_eq!(current.count("VolumeDriver.List"), 1);
        }
        let q = reg.get("p", "VolumeDriver").await.unwrap();
        assert!(
            Arc::ptr_eq(&p, &q),
            "not evicted: it never failed to connect"
        );
    })
    .await;
}

#[tokio::test]
async fn a_plugin_moved_from_unix_to_tcp_is_found_again() {
    // Docker keeps the dead unix plugin cached until the engine restarts.
    let tree = PluginTree::new();
    let sock = tree.path("run/p.sock");
    let unix = volume_script().unix(&sock).await;
    let reg = Registry::new(tree.registry(), quick_policy());
    bounded("moved", async {
        let p = reg.get("p", "VolumeDriver").await.unwrap();
        unix.shutdown().await;
        std::fs::remove_file(&sock).unwrap();
        let tcp = volume_script().tcp().await;
        tree.write_spec(0, "p", &tcp.address());
        let e = list_volumes(&p).await.unwrap_err();
        assert!(e.is_socket_missing(), "{e:?}");
        let q = reg.get("p", "VolumeDriver").await.unwrap();
        assert_eq!(q.address().as_str(), tcp.address());
        list_volumes(&q).await.unwrap();
        assert_eq!(tcp.count(ACTIVATE), 1);
        assert_eq!(tcp.count("VolumeDriver.List"), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_socket_left_behind_still_wins_over_a_new_spec_and_fails_fast() {
    // Docker's order puts sockets before spec files (checklist 9), so a
    // plugin that moved to tcp but left its socket file behind resolves to
    // the dead socket. It fails at once, naming the socket; it is never
    // retried for 15 s nor cached.
    let tree = PluginTree::new();
    let sock = tree.stale_socket("run/p.sock");
    let tcp = volume_script().tcp().await;
    tree.write_spec(0, "p", &tcp.address());
    let reg = Registry::new(tree.registry(), quick_policy());
    let start = Instant::now();
    let e = bounded("stale", reg.get("p", "VolumeDriver"))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(e.is_connect(), "{e:?}");
    assert!(
        e.to_string().ends_with(&format!(
            "dial unix {}: connect: connection refused",
            sock.display()
        )),
        "{e}"
    );
    assert!(reg.plugins().is_empty());
    // Listing reports it as refused, without waiting.
    let listing = bounded("list", reg.list("VolumeDriver")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].state, ListState::Refused);
    assert_eq!(tcp.count(ACTIVATE), 0);
}

// Real time: the subject is the races between a restarting plugin and the
// listings, which need two threads; a paused clock needs the
// current-thread runtime, where they would interleave the same way every
// run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_while_a_plugin_restarts_finishes_on_time_every_time() {
    let tree = Arc::new(PluginTree::new());
    let _steady = volume_script().unix(tree.path("run/a.sock")).await;
    let sock = tree.path("run/b.sock");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Restarts `b` over and over: stale socket, no socket, new listener.
    let restarter = {
        let (sock, stop) = (sock.clone(), stop.clone());
        tokio::spawn(async move {
            let mut restarts = 0;
            while !stop.load(Ordering::SeqCst) {
                let b = volume_script().unix(&sock).await;
                tokio::time::sleep(MS(15)).await;
                b.shutdown().await;
                tokio::time::sleep(MS(5)).await;
                std::fs::remove_file(&sock).unwrap();
                tokio::time::sleep(MS(5)).await;
                restarts += 1;
            }
            restarts
        })
    };
    let mut policy = Policy::default();
    policy.list_timeout = Some(MS(1000));
    policy.negative_ttl = Duration::ZERO;
    let reg = Registry::new(tree.registry(), policy);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    bounded("listings", async {
        for _ in 0..40 {
            let start = Instant::now();
            let listing = reg.list("VolumeDriver").await.unwrap();
            let took = start.elapsed();
            assert!(took < MS(1500), "listing took {took:?}");
            let a = listing.iter().find(|l| l.name == "a").unwrap();
            assert_eq!(a.state, ListState::Ok);
            if let Some(b) = listing.iter().find(|l| l.name == "b") {
                *seen.entry(b.state.as_str().to_owned()).or_default() += 1;
            }
            // Forget b so that each listing meets it afresh.
            reg.evict("b");
            tokio::time::sleep(MS(7)).await;
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let restarts = restarter.await.unwrap();
    println!("b seen as {seen:?} over {restarts} restarts");
    assert!(restarts > 5);
}

// ---------------------------------------------------------------------------
// Load: many plugins, many concurrent calls, no error, no fd leak
// ---------------------------------------------------------------------------

/// `PLUGIN_STRESS=full` (what `cargo xtask stress` sets): 1,000 plugins and
/// 10,000 concurrent calls. Otherwise a tenth of that, for `cargo test`.
fn load_size() -> (usize, usize) {
    match std::env::var("PLUGIN_STRESS").as_deref() {
        Ok("full") => (1_000, 10_000),
        _ => (100, 1_000),
    }
}

/// Raises this process's soft limit on open files to its hard limit (the
/// full load needs ~11,000 descriptors in each process; CI's default soft
/// limit may be 1,024). Returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// A `kB` field of `/proc/self/status`, which must be there.
fn status_kib(field: &str) -> u64 {
    procfs::status_kib(field).unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The farm's part: `n` volume plugins `p0..` on unix sockets in
/// `$FAULTS_DIR/run`, each answering `VolumeDriver.Get` after 100 ms with
/// its name and the request. Writes `$FAULTS_DIR/ready` once all listen.
async fn load_farm() {
    die_with_parent();
    raise_fd_limit();
    let dir = env_path("FAULTS_DIR");
    let (plugins, _) = load_size();
    let mut farm = Vec::with_capacity(plugins);
    for i in 0..plugins {
        let name = format!("p{i}");
        // Each reply takes 100 ms, so that the calls really are in flight
        // together (one connection each), not served one after the other.
        let reply = Reply::with(move |r| {
            let body = json!({"plugin": name, "echo": r.json()}).to_string();
            Reply::delay(MS(100), Reply::json(200, body))
        });
        let plugin = FakePlugin::builder()
            .activate(&["VolumeDriver"])
            .on("VolumeDriver.Get", reply)
            .unix(dir.join(format!("run/p{i}.sock")))
            .await;
        farm.push(plugin);
    }
    std::fs::write(dir.join("ready"), "").unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// The client's part: discovers and activates every plugin of the farm
/// through one registry, makes all the calls at once, checks each reply,
/// then drops everything and checks that every descriptor came back.
// The summary lines on stdout are how the parent test reads the results.
#[allow(clippy::print_stdout)]
async fn load_client(function: &str) {
    die_with_parent();
    let fd_limit = raise_fd_limit();
    let (plugins, calls) = load_size();
    let tree = PluginTree::new();
    let farm = spawn_self(
        function,
        "load-farm",
        &[("FAULTS_DIR", tree.root().as_os_str().to_owned())],
    );
    let ready = tree.path("ready");
    eventually("farm ready", Duration::from_secs(60), || ready.exists()).await;

    let fds_before = open_fds();
    let rss_before = status_kib("VmRSS");
    let mut rss_after = Vec::new();
    // Three times, each with a fresh registry: what the first round leaves
    // in memory, later rounds must not add to.
    for round in 0..3 {
        let start = Instant::now();
        let reg = Registry::new(tree.registry(), Policy::default());
        let all = reg.get_all("VolumeDriver").await.unwrap();
        assert_eq!(all.len(), plugins, "every plugin listed and activated");
        let activated = start.elapsed();

        let mut tasks = JoinSet::new();
        for i in 0..calls {
            let plugin = all[i % plugins].clone();
            tasks.spawn(async move {
                let args = json!({"Name": format!("v{i}")});
                let reply: Value = plugin
                    .client()
                    .call("VolumeDriver.Get")
                    .args(&args)
                    .json()
                    .await?;
                // The reply belongs to this call, from this plugin.
                assert_eq!(reply["plugin"], plugin.name(), "call {i}");
                assert_eq!(reply["echo"], args, "call {i}");
                Ok::<_, plugin_client::Error>(())
            });
        }
        let (mut ok, mut errors) = (0, Vec::new());
        let mut fds_peak = open_fds();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(()) => ok += 1,
                Err(e) => errors.push(e.to_string()),
            }
            if ok % 100 == 0 {
                fds_peak = fds_peak.max(open_fds());
            }
        }
        let called = start.elapsed();
        assert!(
            errors.is_empty(),
            "{} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        assert_eq!(ok, calls);

        // Dropping the registry drops every client and its pool: every
        // connection must close.
        drop(all);
        drop(reg);
        let settle = Instant::now();
        while open_fds() > fds_before && settle.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(MS(20)).await;
        }
        let fds_after = open_fds();
        // Hand freed memory back to the system first, so that RSS shows
        // what is still allocated rather than what malloc keeps cached.
        // SAFETY: malloc_trim only releases free memory of glibc's heap.
        unsafe {
            libc::malloc_trim(0);
        }
        rss_after.push(status_kib("VmRSS"));
        println!(
            "LOAD round={round} plugins={plugins} calls={calls} activate={activated:?} \
             total={called:?} fd_limit={fd_limit} fds_before={fds_before} fds_peak={fds_peak} \
             fds_after={fds_after} rss_before={rss_before}KiB rss_after={}KiB rss_peak={}KiB",
            rss_after[round],
            status_kib("VmHWM")
        );
        assert!(
            fds_after <= fds_before,
            "fd leak: {fds_before} -> {fds_after}"
        );
    }
    drop(farm);
    // Generous bounds: a leak of buffers per call or per connection would
    // blow far past them.
    let hwm = status_kib("VmHWM");
    let bound_kib = 64 * 1024 + calls as u64 * 64;
    assert!(hwm < bound_kib, "peak RSS {hwm} KiB over {bound_kib} KiB");
    // After the first round: the runtime's and the allocator's own state.
    assert!(
        rss_after[0] < rss_before + 64 * 1024,
        "RSS after one round: {rss_before} -> {} KiB",
        rss_after[0]
    );
    // Later rounds: nothing more (measured: within a few hundred KiB).
    for (round, rss) in rss_after.iter().enumerate().skip(1) {
        assert!(
            *rss < rss_after[0] + 8 * 1024,
            "RSS grew by round {round}: {rss_after:?} KiB"
        );
    }
}

// Real time: the load runs in child processes, which cannot share a paused
// clock, and the subject is throughput and descriptors, not a schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_plugins_many_concurrent_calls_no_error_no_fd_leak() {
    const ME: &str = "many_plugins_many_concurrent_calls_no_error_no_fd_leak";
    match role().as_deref() {
        Some("load-farm") => return load_farm().await,
        Some("load-client") => return load_client(ME).await,
        _ => {}
    }
    let limit = match load_size() {
        (1_000, _) => Duration::from_secs(600),
        _ => Duration::from_secs(60),
    };
    let child = spawn_self(ME, "load-client", &[]);
    let (ok, out) = tokio::task::spawn_blocking(move || child.wait_output(limit))
        .await
        .unwrap();
    let summary: Vec<&str> = out
        .lines()
        .filter_map(|l| l.find("LOAD ").map(|i| &l[i..]))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(ok, "load client failed:\n{out}");
    assert_eq!(summary.len(), 3, "{out}");
}

// ---------------------------------------------------------------------------
// Endless and huge replies: the cap holds, memory stays bounded
// ---------------------------------------------------------------------------

/// Resets this process's peak RSS (`VmHWM`) to its current RSS, so that a
/// later `VmHWM` reads the peak of what ran in between. `false` if the
/// kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// Real time: the subject is memory under endless bodies that keep the
// runtime busy (a paused clock would not move), on two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_and_huge_replies_stop_at_the_cap_with_bounded_memory() {
    let dir = tmp();
    let plugin = FakePlugin::builder()
        .on(ACTIVATE, Reply::endless_chunked())
        .on("E.Huge", Reply::huge(512 << 20))
        .unix(dir.path().join("e.sock"))
        .await;
    // Sixteen endless replies at once against a 1 MiB cap: each stops
    // just past 1 MiB.
    let client = no_retry()
        .max_reply_size(1 << 20)
        .build(plugin.address(), None)
        .unwrap();
    // SAFETY: malloc_trim only releases free memory of glibc's heap.
    unsafe {
        libc::malloc_trim(0);
    }
    let rss_before = status_kib("VmRSS");
    let peak_known = reset_peak_rss();
    let mut calls = JoinSet::new();
    for _ in 0..16 {
        let client = client.clone();
        calls.spawn(async move { client.call(ACTIVATE).json::<Value>().await });
    }
    bounded("endless", async {
        while let Some(r) = calls.join_next().await {
            let e = r.unwrap().unwrap_err();
            assert!(e.is_too_large() && !e.is_timeout(), "{e:?}");
        }
    })
    .await;
    if peak_known {
        // 16 MiB of bodies; other tests share this process, so the bound
        // is generous. Without the cap the streams grow at hundreds of
        // MiB a second until something gives.
        let grew = status_kib("VmHWM").saturating_sub(rss_before);
        assert!(grew < 512 * 1024, "peak RSS grew by {grew} KiB");
    }
    // A declared 512 MiB body is refused before reading it.
    let start = Instant::now();
    let e = bounded("huge", client.call("E.Huge").json::<Value>())
        .await
        .unwrap_err();
    assert!(e.is_too_large(), "{e:?}");
    assert!(start.elapsed() < MS(500), "{:?}", start.elapsed());

    // The registry's handshake uses the default 64 MiB cap: an endless
    // activation reply fails there, in bounded time, and is not cached.
    let tree = PluginTree::new();
    std::os::unix::fs::symlink(plugin.path().unwrap(), tree.path("run/e.sock")).unwrap();
    let reg = Registry::new(tree.registry(), quick_policy());
    let mut policy = quick_policy();
    policy.handshake_timeout = Some(Duration::from_secs(8));
    let reg = Registry::new(reg.local().clone(), policy);
    let start = Instant::now();
    let e = bounded("activation", reg.get("e", "VolumeDriver"))
        .await
        .unwrap_err();
    println!("endless activation: {e} after {:?}", start.elapsed());
    assert!(e.client_error().is_some_and(|c| c.is_too_large()), "{e:?}");
    assert!(reg.plugins().is_empty());
}

// ---------------------------------------------------------------------------
// TLS end to end: `.json` specs with real certificates, and a tampered
// handshake signature
// ---------------------------------------------------------------------------

fn json_spec(addr: &str, ca: &Path, cert_key: Option<(&Path, &Path)>) -> String {
    let mut tls = json!({ "CAFile": ca });
    if let Some((cert, key)) = cert_key {
        tls["CertFile"] = json!(cert);
        tls["KeyFile"] = json!(key);
    }
    json!({ "Addr": addr, "TLSConfig": tls }).to_string()
}

#[tokio::test]
async fn tls_through_the_registry_with_json_specs() {
    use plugin_tests::certs::TestPki;
    use plugin_tests::server::ClientAuth;
    let tree = PluginTree::new();
    let pki = TestPki::new(tree.mkdir("pki"));
    let mtls = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tls(&pki.server(), ClientAuth::Required)
        .await;
    let addr = mtls.url("https", "localhost");
    let client_pair = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    tree.write_json(0, "good", &json_spec(&addr, &pki.ca_cert, client_pair));
    tree.write_json(0, "nocert", &json_spec(&addr, &pki.ca_cert, None));
    tree.write_json(
        0,
        "encrypted",
        &json_spec(
            &addr,
            &pki.ca_cert,
            Some((&pki.client_cert, &pki.encrypted_key)),
        ),
    );
    tree.write_json(0, "garbageca", &json_spec(&addr, &pki.garbage_pem, None));
    let mut servers = vec![mtls];
    for (name, certs) in [
        ("wrongca", pki.server_wrong_ca()),
        ("expired", pki.server_expired()),
        ("wronghost", pki.server_wrong_host()),
    ] {
        let s = FakePlugin::builder()
            .activate(&["VolumeDriver"])
            .tls(&certs, ClientAuth::None)
            .await;
        tree.write_json(
            0,
            name,
            &json_spec(&s.url("https", "localhost"), &pki.ca_cert, None),
        );
        // Docker's `.spec` files give https plugins InsecureSkipVerify.
        tree.write_spec(0, &format!("{name}-spec"), &s.url("https", "localhost"));
        servers.push(s);
    }
    let reg = Registry::new(tree.registry(), quick_policy());
    bounded("tls", async {
        let p = reg.get("good", "VolumeDriver").await.unwrap();
        assert!(servers[0].requests()[0].peer_cert.is_some());
        drop(p);

        // Refused by the server: no client certificate.
        let e = reg.get("nocert", "VolumeDriver").await.unwrap_err();
        let c = e.client_error().expect("a client error");
        assert!(c.is_tls() && c.is_connect(), "{e:?}");
        println!("nocert: {e}");

        // Bad files: refused when the client is made, before any dial.
        let before = servers[0].connections();
        for (name, text) in [
            (
                "encrypted",
                "could not load X509 key pair: private key is encrypted; \
                 encrypted private keys are obsolete, and not supported"
                    .to_owned(),
            ),
            (
                "garbageca",
                format!(
                    "failed to append certificates from PEM file: \"{}\"",
                    pki.garbage_pem.display()
                ),
            ),
        ] {
            let e = reg.get(name, "VolumeDriver").await.unwrap_err();
            let c = e.client_error().expect("a client error");
            assert!(c.is_config() && c.is_tls(), "{name}: {e:?}");
            assert_eq!(e.to_string(), text, "{name}");
        }
        assert_eq!(servers[0].connections(), before, "nothing was dialled");

        // Unverifiable servers: refused with a TLS error through `.json`,
        // accepted through `.spec` (insecure, as Docker).
        for name in ["wrongca", "expired", "wronghost"] {
            let e = reg.get(name, "VolumeDriver").await.unwrap_err();
            let c = e.client_error().expect("a client error");
            assert!(
                c.is_tls() && c.is_connect() && !c.is_timeout(),
                "{name}: {e:?}"
            );
            assert!(e.to_string().contains("tls: "), "{name}: {e}");
            println!("{name}: {e}");
            reg.get(&format!("{name}-spec"), "VolumeDriver")
                .await
                .unwrap_or_else(|e| panic!("{name}-spec: {e:?}"));
        }
        // A listing shows each failure as an error, not a hang or a retry.
        let listing = reg.list("VolumeDriver").await.unwrap();
        for l in &listing {
            let ok = l.name == "good" || l.name.ends_with("-spec");
            let want = if ok { ListState::Ok } else { ListState::Error };
            assert_eq!(l.state, want, "{}: {:?}", l.name, l.error);
        }
    })
    .await;
}

/// Resolves every handshake to one certificate chain paired with whatever
/// signing key it is given, matching or not. rustls' `CertifiedKey::new`
/// does not check the pair, which is the point.
#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A TLS plugin on loopback that presents `chain` but signs the handshake
/// with `key`, speaking only `version`; it answers every request with an
/// activation reply. Returns its port and the accept task.
async fn tls_plugin_with_key(
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    version: &'static rustls::SupportedProtocolVersion,
) -> (u16, JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signer = provider.key_provider.load_private_key(key).unwrap();
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(certified))));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            conns.spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                while read_request(&mut tls).await.is_some() {
                    let body = r#"{"Implements":["VolumeDriver"]}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn insecure_tls_still_rejects_a_handshake_not_signed_by_the_certificates_key() {
    // `InsecureSkipVerify` skips the chain, the name and the dates, never
    // the proof that the peer holds the certificate's key: a server that
    // presents a certificate it has no key for is refused, in TLS 1.2 and
    // 1.3, directly and through a `.spec` file (insecure by Docker's rules).
    use plugin_tests::certs::TestPki;
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let tree = PluginTree::new();
    let pki = TestPki::new(tree.mkdir("pki"));
    let server = pki.server();
    let other_key = || -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(rcgen::KeyPair::generate().unwrap().serialize_der()).into()
    };
    let reg = Registry::new(tree.registry(), quick_policy());
    bounded("tampered", async {
        for (v, version) in [
            ("tls12", &rustls::version::TLS12),
            ("tls13", &rustls::version::TLS13),
        ] {
            let (good_port, _good) =
                tls_plugin_with_key(server.chain.clone(), server.key.clone_key(), version).await;
            let (bad_port, _bad) =
                tls_plugin_with_key(server.chain.clone(), other_key(), version).await;
            let insecure = plugin_proto::TlsOptions::insecure();
            // Control: the same server with the matching key is accepted.
            let good = no_retry()
                .build(format!("https://localhost:{good_port}"), Some(&insecure))
                .unwrap();
            let m: Manifest = good.call(ACTIVATE).json().await.unwrap();
            assert!(m.implements("VolumeDriver"), "{v}");

            let bad = no_retry()
                .build(format!("https://localhost:{bad_port}"), Some(&insecure))
                .unwrap();
            let e = bad.call(ACTIVATE).json::<Manifest>().await.unwrap_err();
            assert!(e.is_tls() && e.is_connect(), "{v}: {e:?}");
            println!("{v}: {e}");

            tree.write_spec(
                0,
                &format!("good-{v}"),
                &format!("https://localhost:{good_port}"),
            );
            tree.write_spec(
                0,
                &format!("bad-{v}"),
                &format!("https://localhost:{bad_port}"),
            );
            reg.get(&format!("good-{v}"), "VolumeDriver").await.unwrap();
            let e = reg
                .get(&format!("bad-{v}"), "VolumeDriver")
                .await
                .unwrap_err();
            assert!(e.client_error().is_some_and(|c| c.is_tls()), "{v}: {e:?}");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn tls_peers_that_never_handshake_or_speak_plain_http_fail_in_bounded_time() {
    // A port that accepts and never speaks TLS, and a plain HTTP plugin
    // behind an https:// address (it waits for a request head that the
    // ClientHello never completes): both are bounded by the dial timeout,
    // which covers the handshake (divergence D15; Go has no bound there).
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let _mute = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            held.push(s);
        }
    });
    let plain = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .tcp()
        .await;
    // A server that answers anything with plain text at once.
    let blunt = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let blunt_port = blunt.local_addr().unwrap().port();
    let _blunt = tokio::spawn(async move {
        while let Ok((mut s, _)) = blunt.accept().await {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let insecure = plugin_proto::TlsOptions::insecure();
    bounded("handshakes", async {
        for url in [
            format!("https://127.0.0.1:{mute_port}"),
            plain.url("https", "127.0.0.1"),
        ] {
            let client = no_retry()
                .dial_timeout(MS(200))
                .build(&url, Some(&insecure))
                .unwrap();
            let start = Instant::now();
            let e = client.call(ACTIVATE).json::<Manifest>().await.unwrap_err();
            assert_eq!(start.elapsed(), MS(200), "{url}: the dial timeout");
            assert!(e.is_timeout() && e.is_connect(), "{url}: {e:?}");
            assert!(
                e.to_string().ends_with("net/http: TLS handshake timeout"),
                "{e}"
            );
        }
        let client = no_retry()
            .build(format!("https://127.0.0.1:{blunt_port}"), Some(&insecure))
            .unwrap();
        let start = Instant::now();
        let e = client.call(ACTIVATE).json::<Manifest>().await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "refused at once");
        assert!(e.is_tls() && e.is_connect() && !e.is_timeout(), "{e:?}");
        println!("plain HTTP answer to a ClientHello: {e}");
    })
    .await;
}

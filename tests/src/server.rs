//! Fake plugin servers: a hand-written HTTP/1.1 server on tokio that records
//! every request byte for byte and answers from a per-test [`Script`].
//!
//! It is deliberately not hyper: it must keep the exact bytes a client sent
//! and it must be able to misbehave (drop, reset, hang, lie about lengths,
//! stream forever).
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) {
//! use plugin_tests::server::{FakePlugin, Reply};
//! let plugin = FakePlugin::builder()
//!     .activate(&["VolumeDriver"])
//!     .on("VolumeDriver.Create", Reply::json(200, r#"{"Err":""}"#))
//!     .unix(dir.join("vol.sock"))
//!     .await;
//! // ... drive a client against plugin.address() ...
//! let reqs = plugin.wait_for(2, std::time::Duration::from_secs(1)).await;
//! assert_eq!(reqs[0].path, "/Plugin.Activate");
//! assert_eq!(plugin.count("Plugin.Activate"), 1);
//! # }
//! ```
//!
//! Every server runs as tasks spawned on the current tokio runtime, serves
//! any number of connections, each with any number of keep-alive requests,
//! and stops when the [`FakePlugin`] is dropped or [`FakePlugin::shutdown`]
//! is awaited. Stopping closes the listener and every open connection; the
//! unix socket file is left in place (a dead plugin leaves a stale socket
//! behind, which refuses connections).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::certs::ServerCerts;

/// The `Content-Type` go-plugins-helpers puts on every plugin reply (note:
/// `v1.1`, while clients send `Accept: …v1.2+json`).
pub const PLUGIN_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.1+json";

/// Go's `http.NotFound` body, used by the default reply for unscripted paths.
pub const NOT_FOUND_BODY: &str = "404 page not found\n";

/// Largest request head (request line plus headers) accepted, as Go's
/// `http.DefaultMaxHeaderBytes` (1 MiB).
const MAX_HEAD: usize = 1 << 20;

/// Chunk size used by the streaming replies ([`Reply::huge`],
/// [`Reply::endless_chunked`]).
const STREAM_CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------------------
// Recorded requests
// ---------------------------------------------------------------------------

/// One request as the fake plugin received it.
#[derive(Clone)]
pub struct Recorded {
    /// Which connection carried it: connections are numbered from 0 in the
    /// order the server accepted them.
    pub conn_id: u64,
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request-target exactly as sent, e.g. `/Plugin.Activate` (or an
    /// absolute-form `http://host/Plugin.Activate` if the client sent that).
    pub path: String,
    /// The protocol version from the request line, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header fields in the order sent, names with their original case,
    /// values with surrounding whitespace trimmed (bytes decoded lossily as
    /// UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body: decoded if the request was chunked, else as sent.
    pub body: Vec<u8>,
    /// The raw request head: request line and headers, up to and including
    /// the blank line.
    pub head: Vec<u8>,
    /// The whole request exactly as read from the socket: `head` followed by
    /// the body bytes as framed on the wire (chunk sizes and trailers
    /// included when chunked).
    pub raw: Vec<u8>,
    /// The DER of the client's TLS certificate, if it presented one.
    pub peer_cert: Option<Vec<u8>>,
    /// When the request was complete, on tokio's clock: retry schedules
    /// are checked as exact differences on a paused test clock.
    pub at: tokio::time::Instant,
}

impl Recorded {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers called `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The path used to pick the scripted reply: the request-target without
    /// scheme, authority or query, always starting with `/`.
    pub fn route(&self) -> String {
        route_of(&self.path)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {:?}", self.body_text()))
    }
}

impl fmt::Debug for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorded")
            .field("conn_id", &self.conn_id)
            .field("raw", &String::from_utf8_lossy(&self.raw))
            .field("peer_cert", &self.peer_cert.is_some())
            .finish()
    }
}

/// Normalises a request-target or a scripted name to a route: strips
/// `scheme://authority`, drops the query and adds a leading `/`.
fn route_of(target: &str) -> String {
    let mut t = target;
    if let Some(i) = t.find("://") {
        let rest = &t[i + 3..];
        t = rest.find('/').map_or("", |j| &rest[j..]);
    }
    if let Some(q) = t.find('?') {
        t = &t[..q];
    }
    if t.starts_with('/') {
        t.to_owned()
    } else {
        format!("/{t}")
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// What the fake plugin does with a request. Build one with the
/// constructors; all of them are cheap to clone.
///
/// Replies with a body (`json`, `text`, `echo`, `chunked`, `truncated`,
/// `huge`, `endless_chunked`) carry `Content-Type:
/// application/vnd.docker.plugins.v1.1+json` (`text`: `text/plain;
/// charset=utf-8`) and `Content-Length`, like go-plugins-helpers; add or
/// replace headers with [`Reply::header`]. After a complete normal reply the
/// connection stays open for the next request unless the request said
/// `Connection: close`.
#[derive(Clone)]
pub struct Reply {
    kind: Kind,
    headers: Vec<(String, String)>,
}

type ReplyFn = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Clone)]
enum Kind {
    Full {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    Raw(Vec<u8>),
    Echo,
    Delay(Duration, Box<Reply>),
    Drop,
    Reset,
    Hang,
    Slow(Duration, Box<Reply>),
    Truncated {
        status: u16,
        declared: usize,
        body: Vec<u8>,
    },
    Chunked {
        status: u16,
        chunks: Vec<Vec<u8>>,
    },
    EndlessChunked,
    Huge(usize),
    With(Arc<ReplyFn>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full { status, body, .. } => {
                write!(
                    f,
                    "Reply::full({status}, {:?})",
                    String::from_utf8_lossy(body)
                )
            }
            Kind::Raw(b) => write!(f, "Reply::raw({:?})", String::from_utf8_lossy(b)),
            Kind::Echo => f.write_str("Reply::echo()"),
            Kind::Delay(d, r) => write!(f, "Reply::delay({d:?}, {r:?})"),
            Kind::Drop => f.write_str("Reply::drop()"),
            Kind::Reset => f.write_str("Reply::reset()"),
            Kind::Hang => f.write_str("Reply::hang()"),
            Kind::Slow(d, r) => write!(f, "Reply::slow({d:?}, {r:?})"),
            Kind::Truncated {
                status,
                declared,
                body,
            } => {
                write!(
                    f,
                    "Reply::truncated({status}, {declared}, {} bytes)",
                    body.len()
                )
            }
            Kind::Chunked { status, chunks } => {
                write!(f, "Reply::chunked({status}, {} chunks)", chunks.len())
            }
            Kind::EndlessChunked => f.write_str("Reply::endless_chunked()"),
            Kind::Huge(n) => write!(f, "Reply::huge({n})"),
            Kind::With(_) => f.write_str("Reply::with(..)"),
        }
    }
}

impl Reply {
    fn of(kind: Kind) -> Reply {
        Reply {
            kind,
            headers: Vec::new(),
        }
    }

    /// `status` with a JSON body, as go-plugins-helpers sends it.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::of(Kind::Full {
            status,
            content_type: PLUGIN_CONTENT_TYPE,
            body: body.into().into_bytes(),
        })
    }

    /// `200` with `{"Err":""}`.
    pub fn ok() -> Reply {
        Reply::json(200, r#"{"Err":""}"#)
    }

    /// `500` with `{"Err":msg}`, the go-plugins-helpers error convention.
    pub fn err(msg: &str) -> Reply {
        Reply::json(500, serde_json::json!({ "Err": msg }).to_string())
    }

    /// `status` with a plain-text body (`Content-Type: text/plain;
    /// charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::of(Kind::Full {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        })
    }

    /// Go's `http.NotFound`: `404` with `404 page not found\n` and
    /// `X-Content-Type-Options: nosniff`. The default for unscripted paths.
    pub fn not_found() -> Reply {
        Reply::text(404, NOT_FOUND_BODY).header("X-Content-Type-Options", "nosniff")
    }

    /// Writes `bytes` verbatim as the whole response (no headers added), then
    /// closes the connection. For malformed HTTP and hand-framed replies.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::of(Kind::Raw(bytes.into()))
    }

    /// `200` whose body is the request body.
    pub fn echo() -> Reply {
        Reply::of(Kind::Echo)
    }

    /// Sleeps `d`, then does `reply`.
    pub fn delay(d: Duration, reply: Reply) -> Reply {
        Reply::of(Kind::Delay(d, Box::new(reply)))
    }

    /// Closes the connection after reading the request, without replying.
    pub fn drop() -> Reply {
        Reply::of(Kind::Drop)
    }

    /// Closes the connection with a TCP RST (`SO_LINGER` 0) after reading the
    /// request. Unix sockets have no RST: there it behaves as
    /// [`Reply::drop`].
    pub fn reset() -> Reply {
        Reply::of(Kind::Reset)
    }

    /// Never answers and keeps the connection open until the server stops.
    pub fn hang() -> Reply {
        Reply::of(Kind::Hang)
    }

    /// Writes `reply` (one that produces bytes: `json`, `text`, `raw`,
    /// `echo`, `chunked`, `truncated`, or `with` returning one of those) one byte at a
    /// time, sleeping `per_byte` before each byte.
    pub fn slow(per_byte: Duration, reply: Reply) -> Reply {
        Reply::of(Kind::Slow(per_byte, Box::new(reply)))
    }

    /// Declares `Content-Length: declared` but sends only `body` (shorter),
    /// then closes the connection.
    pub fn truncated(status: u16, declared: usize, body: impl Into<Vec<u8>>) -> Reply {
        Reply::of(Kind::Truncated {
            status,
            declared,
            body: body.into(),
        })
    }

    /// `status` with `Transfer-Encoding: chunked`, one chunk per element of
    /// `chunks` (empty ones are skipped: an empty chunk would end the body),
    /// then the terminating `0` chunk; the connection stays open.
    pub fn chunked<C: Into<Vec<u8>>>(status: u16, chunks: impl IntoIterator<Item = C>) -> Reply {
        Reply::of(Kind::Chunked {
            status,
            chunks: chunks.into_iter().map(Into::into).collect(),
        })
    }

    /// `200` with `Transfer-Encoding: chunked` and a body that never ends: a
    /// JSON string that never closes (`{"Data":"aaaa…`), written in 16 KiB
    /// chunks until the peer goes away or the server stops.
    pub fn endless_chunked() -> Reply {
        Reply::of(Kind::EndlessChunked)
    }

    /// `200` with a valid JSON body of exactly `n` bytes
    /// (`{"Err":"","Data":"aaa…"}`; for `n < 20`, spaces then `{}`),
    /// generated on the fly with a correct `Content-Length`. Panics when
    /// used with `n < 2`.
    pub fn huge(n: usize) -> Reply {
        Reply::of(Kind::Huge(n))
    }

    /// Decides per request: `f` sees the recorded request and returns the
    /// reply to use.
    pub fn with(f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::of(Kind::With(Arc::new(f)))
    }

    /// Adds a response header, replacing a default one of the same name
    /// (`Content-Type`, or `Content-Length` to lie about the length). Applies
    /// to replies that write a head; ignored by `raw`, `drop`, `reset` and
    /// `hang`.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Renders a response head. `length` is `Some(n)` for `Content-Length: n`,
/// `None` for `Transfer-Encoding: chunked`.
fn head(
    status: u16,
    content_type: &str,
    length: Option<usize>,
    extra: &[(String, String)],
) -> Vec<u8> {
    let mut fields: Vec<(String, String)> = vec![("Content-Type".into(), content_type.into())];
    match length {
        Some(n) => fields.push(("Content-Length".into(), n.to_string())),
        None => fields.push(("Transfer-Encoding".into(), "chunked".into())),
    }
    for (name, value) in extra {
        match fields
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => *slot = (name.clone(), value.clone()),
            None => fields.push((name.clone(), value.clone())),
        }
    }
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in fields {
        out.push_str(&n);
        out.push_str(": ");
        out.push_str(&v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

// ---------------------------------------------------------------------------
// Script
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Route {
    replies: Vec<Reply>,
    next: usize,
}

/// The replies a fake plugin gives, per path; also the builder that starts a
/// [`FakePlugin`] (see [`FakePlugin::builder`]).
///
/// Paths may be written with or without the leading `/`
/// (`"Plugin.Activate"` = `"/Plugin.Activate"`). Unscripted paths get the
/// default reply, [`Reply::not_found`] unless changed.
#[derive(Clone, Debug, Default)]
pub struct Script {
    routes: HashMap<String, Route>,
    default: Option<Reply>,
}

impl Script {
    /// An empty script: every path gets Go's 404.
    pub fn new() -> Script {
        Script::default()
    }

    /// Answers `path` with `reply`, every time.
    pub fn on(mut self, path: &str, reply: Reply) -> Script {
        self.set(path, vec![reply]);
        self
    }

    /// Answers `path` with `replies` in order, one per request; the last one
    /// then repeats. Panics if `replies` is empty.
    pub fn on_seq(mut self, path: &str, replies: impl IntoIterator<Item = Reply>) -> Script {
        self.set(path, replies.into_iter().collect());
        self
    }

    /// Scripts `/Plugin.Activate` to answer `200 {"Implements":[kinds…]}`.
    pub fn activate(self, kinds: &[&str]) -> Script {
        self.on("/Plugin.Activate", activate_reply(kinds))
    }

    /// The reply for paths that are not scripted (default: Go's 404).
    pub fn default_reply(mut self, reply: Reply) -> Script {
        self.default = Some(reply);
        self
    }

    /// Starts serving this script on a new unix socket at `path` (which must
    /// not exist yet). Panics if it cannot bind. To restart a plugin at the
    /// path of one that was shut down, remove the stale socket file first.
    ///
    /// The socket is bound and listening under a temporary name and then
    /// renamed into place, so a watcher that sees `path` appear never finds
    /// a socket that refuses connections (the window between `bind` and
    /// `listen` made tests that wait for a plugin flaky).
    pub async fn unix(self, path: impl AsRef<Path>) -> FakePlugin {
        let path = path.as_ref().to_path_buf();
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "fake plugin: {} already exists",
            path.display()
        );
        let mut staging = path.clone().into_os_string();
        staging.push(format!(".{}.binding", std::process::id()));
        let staging = PathBuf::from(staging);
        let listener = UnixListener::bind(&staging)
            .unwrap_or_else(|e| panic!("fake plugin: bind unix socket {}: {e}", path.display()));
        std::fs::rename(&staging, &path)
            .unwrap_or_else(|e| panic!("fake plugin: move socket to {}: {e}", path.display()));
        FakePlugin::start(self, Listener::Unix(listener), Endpoint::Unix(path))
    }

    /// Starts serving this script over plain HTTP on `127.0.0.1` with an
    /// ephemeral port.
    pub async fn tcp(self) -> FakePlugin {
        self.tcp_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts serving this script over plain HTTP on `addr` (e.g. the port of
    /// a plugin that was shut down, to model a restart). Panics if it cannot
    /// bind.
    pub async fn tcp_at(self, addr: SocketAddr) -> FakePlugin {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("fake plugin: bind tcp {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        FakePlugin::start(
            self,
            Listener::Tcp(listener, None),
            Endpoint::Tcp { addr, tls: false },
        )
    }

    /// Starts serving this script over HTTPS on `127.0.0.1` with an
    /// ephemeral port, presenting `certs` and checking client certificates
    /// as `auth` says (against `certs.client_ca`).
    pub async fn tls(self, certs: &ServerCerts, auth: ClientAuth) -> FakePlugin {
        let acceptor = tls_acceptor(certs, auth);
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_or_else(|e| panic!("fake plugin: bind tcp: {e}"));
        let addr = listener.local_addr().unwrap();
        FakePlugin::start(
            self,
            Listener::Tcp(listener, Some(acceptor)),
            Endpoint::Tcp { addr, tls: true },
        )
    }

    fn set(&mut self, path: &str, replies: Vec<Reply>) {
        assert!(
            !replies.is_empty(),
            "fake plugin: empty reply sequence for {path}"
        );
        self.routes
            .insert(route_of(path), Route { replies, next: 0 });
    }

    fn reply_for(&mut self, route: &str) -> Reply {
        match self.routes.get_mut(route) {
            Some(r) => {
                let i = r.next.min(r.replies.len() - 1);
                r.next += 1;
                r.replies[i].clone()
            }
            None => self.default.clone().unwrap_or_else(Reply::not_found),
        }
    }
}

fn activate_reply(kinds: &[&str]) -> Reply {
    Reply::json(200, serde_json::json!({ "Implements": kinds }).to_string())
}

/// Whether a TLS fake plugin asks for client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Does not ask for a client certificate.
    None,
    /// Asks; a certificate, if presented, must chain to the client CA.
    Optional,
    /// Requires a certificate that chains to the client CA.
    Required,
}

fn tls_acceptor(certs: &ServerCerts, auth: ClientAuth) -> tokio_rustls::TlsAcceptor {
    use rustls::server::WebPkiClientVerifier;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut roots = rustls::RootCertStore::empty();
            for c in &certs.client_ca {
                roots.add(c.clone()).unwrap();
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().expect("client CA roots"))
        }
    };
    let config = builder
        .with_single_cert(certs.chain.clone(), certs.key.clone_key())
        .expect("server certificate and key");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

struct Shared {
    script: Mutex<Script>,
    log: Mutex<Vec<Recorded>>,
    recorded: watch::Sender<usize>,
    connections: AtomicU64,
    handshake_errors: Mutex<Vec<String>>,
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

#[derive(Clone, Debug)]
enum Endpoint {
    Unix(PathBuf),
    Tcp { addr: SocketAddr, tls: bool },
}

/// A running fake plugin. Stops when dropped.
pub struct FakePlugin {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    stop: watch::Sender<bool>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for FakePlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakePlugin")
            .field("address", &self.address())
            .finish()
    }
}

impl Drop for FakePlugin {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl FakePlugin {
    /// A [`Script`] to fill in, then start with `.unix(path)`, `.tcp()` or
    /// `.tls(certs, auth)`.
    pub fn builder() -> Script {
        Script::new()
    }

    /// A unix-socket plugin with an empty script (every path: 404).
    pub async fn unix(path: impl AsRef<Path>) -> FakePlugin {
        Script::new().unix(path).await
    }

    /// A loopback tcp plugin with an empty script (every path: 404).
    pub async fn tcp() -> FakePlugin {
        Script::new().tcp().await
    }

    /// A TLS plugin with an empty script (every path: 404).
    pub async fn tls(certs: &ServerCerts, auth: ClientAuth) -> FakePlugin {
        Script::new().tls(certs, auth).await
    }

    fn start(script: Script, listener: Listener, endpoint: Endpoint) -> FakePlugin {
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            log: Mutex::new(Vec::new()),
            recorded: watch::Sender::new(0),
            connections: AtomicU64::new(0),
            handshake_errors: Mutex::new(Vec::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        FakePlugin {
            shared,
            endpoint,
            stop,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The address a plugin spec would hold: `unix:///abs/path.sock` (or
    /// `unix://rel/path` for a relative path), `tcp://127.0.0.1:PORT`, or
    /// `https://127.0.0.1:PORT` for TLS.
    pub fn address(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Tcp { addr, tls: false } => format!("tcp://{addr}"),
            Endpoint::Tcp { addr, tls: true } => format!("https://{addr}"),
        }
    }

    /// `scheme://host:PORT` for this tcp/TLS plugin, e.g.
    /// `url("https", "localhost")` or `url("tcp", "127.0.0.1")`. Panics for a
    /// unix plugin.
    pub fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.port())
    }

    /// The tcp address (`127.0.0.1:PORT`). Panics for a unix plugin.
    pub fn addr(&self) -> SocketAddr {
        match &self.endpoint {
            Endpoint::Tcp { addr, .. } => *addr,
            Endpoint::Unix(p) => panic!("fake plugin on {} has no tcp address", p.display()),
        }
    }

    /// The tcp port. Panics for a unix plugin.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The socket path of a unix plugin, `None` for tcp/TLS.
    pub fn path(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests went to `path` (`"Plugin.Activate"` or
    /// `"/Plugin.Activate"`; compared with [`Recorded::route`]).
    pub fn count(&self, path: &str) -> usize {
        let route = route_of(path);
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.route() == route)
            .count()
    }

    /// How many connections the server accepted (for TLS: tcp connections,
    /// including those whose handshake failed).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// TLS handshake failures seen by the server, as rustls describes them.
    pub fn handshake_errors(&self) -> Vec<String> {
        self.shared.handshake_errors.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have been recorded and returns all
    /// of them. Panics (listing what did arrive) after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let mut rx = self.shared.recorded.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "fake plugin {}: waited {timeout:?} for {n} requests, got {:#?}",
                self.address(),
                self.requests()
            );
        }
        self.requests()
    }

    /// Forgets the recorded requests (the connection count is kept).
    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
        self.shared.recorded.send_replace(0);
    }

    /// Changes the script while running: `path` now gets `reply` every time.
    pub fn on(&self, path: &str, reply: Reply) {
        self.shared.script.lock().unwrap().set(path, vec![reply]);
    }

    /// Changes the script while running: `path` now gets `replies` in order,
    /// the last one repeating.
    pub fn on_seq(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .unwrap()
            .set(path, replies.into_iter().collect());
    }

    /// Stops the server: closes the listener and every open connection, and
    /// returns once they are closed. New connections are then refused (a
    /// unix socket file stays behind, stale).
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let handle = self.accept.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

/// Binds a unix socket at `path` and closes it at once, leaving a socket file
/// that refuses connections (`ECONNREFUSED`), as a crashed plugin does.
pub fn stale_socket(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let l = std::os::unix::net::UnixListener::bind(path)
        .unwrap_or_else(|e| panic!("stale_socket: bind {}: {e}", path.display()));
    drop(l);
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = accept(&listener) => {
                let Ok(stream) = accepted else { continue };
                let id = shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                match stream {
                    Accepted::Unix(s) => { conns.spawn(serve(s, id, None, shared)); }
                    Accepted::Tcp(s) => { conns.spawn(serve(s, id, None, shared)); }
                    Accepted::Tls(s, acceptor) => {
                        conns.spawn(async move {
                            match acceptor.accept(s).await {
                                Ok(tls) => {
                                    let peer = tls.get_ref().1.peer_certificates()
                                        .and_then(|c| c.first()).map(|c| c.to_vec());
                                    serve(tls, id, peer, shared).await;
                                }
                                Err(e) => shared.handshake_errors.lock().unwrap().push(e.to_string()),
                            }
                        });
                    }
                }
            }
        }
    }
    drop(listener);
    conns.shutdown().await;
}

enum Accepted {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(TcpStream, tokio_rustls::TlsAcceptor),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
        Listener::Tcp(l, None) => Ok(Accepted::Tcp(l.accept().await?.0)),
        Listener::Tcp(l, Some(a)) => Ok(Accepted::Tls(l.accept().await?.0, a.clone())),
    }
}

/// A connection the server can also reset.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Arms an RST on close (`SO_LINGER` 0) where the transport has one.
    fn arm_reset(&self);
}

impl Stream for TcpStream {
    fn arm_reset(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Stream for UnixStream {
    fn arm_reset(&self) {}
}

impl Stream for tokio_rustls::server::TlsStream<TcpStream> {
    fn arm_reset(&self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}

/// What to do with the connection after a reply.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

async fn serve<S: Stream>(mut s: S, conn_id: u64, peer_cert: Option<Vec<u8>>, shared: Arc<Shared>) {
    let mut reader = Reader { buf: Vec::new() };
    loop {
        let req = match reader.read_request(&mut s).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // Go's server answers unparsable requests like this.
                let _ = s
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                          Connection: close\r\n\r\n400 Bad Request",
                    )
                    .await;
                let _ = s.shutdown().await;
                return;
            }
            Err(_) => return,
        };
        let rec = Recorded {
            conn_id,
            method: req.method,
            path: req.target,
            version: req.version,
            headers: req.headers,
            body: req.body,
            head: req.head,
            raw: req.raw,
            peer_cert: peer_cert.clone(),
            at: tokio::time::Instant::now(),
        };
        let reply = shared.script.lock().unwrap().reply_for(&rec.route());
        let close_requested = rec
            .header_all("Connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            || rec.version == "HTTP/1.0";
        {
            let mut log = shared.log.lock().unwrap();
            log.push(rec.clone());
            shared.recorded.send_replace(log.len());
        }
        let next = match execute(&mut s, reply, &rec).await {
            Ok(n) => n,
            Err(_) => return,
        };
        match next {
            Next::KeepAlive if !close_requested => {}
            Next::KeepAlive | Next::Close => {
                let _ = s.shutdown().await;
                return;
            }
            Next::Reset => {
                s.arm_reset();
                return;
            }
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn execute<'a, S: Stream>(
    s: &'a mut S,
    reply: Reply,
    req: &'a Recorded,
) -> BoxFut<'a, io::Result<Next>> {
    Box::pin(async move {
        match reply.kind {
            Kind::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                execute(s, *inner, req).await
            }
            Kind::With(f) => execute(s, f(req), req).await,
            Kind::Drop => Ok(Next::Close),
            Kind::Reset => Ok(Next::Reset),
            Kind::Hang => std::future::pending().await,
            Kind::Slow(d, inner) => {
                let (bytes, next) =
                    render(*inner, req).unwrap_or_else(|r| panic!("Reply::slow cannot wrap {r:?}"));
                for b in bytes {
                    tokio::time::sleep(d).await;
                    s.write_all(&[b]).await?;
                    s.flush().await?;
                }
                Ok(next)
            }
            Kind::EndlessChunked => {
                let mut out = head(200, PLUGIN_CONTENT_TYPE, None, &reply.headers);
                let first = br#"{"Data":""#;
                out.extend_from_slice(format!("{:x}\r\n", first.len()).as_bytes());
                out.extend_from_slice(first);
                out.extend_from_slice(b"\r\n");
                s.write_all(&out).await?;
                let mut chunk = format!("{STREAM_CHUNK:x}\r\n").into_bytes();
                chunk.resize(chunk.len() + STREAM_CHUNK, b'a');
                chunk.extend_from_slice(b"\r\n");
                loop {
                    s.write_all(&chunk).await?;
                    s.flush().await?;
                }
            }
            Kind::Huge(n) => {
                assert!(n >= 2, "Reply::huge needs at least 2 bytes");
                let (prefix, suffix): (&[u8], &[u8]) = if n >= 20 {
                    (br#"{"Err":"","Data":""#, br#""}"#)
                } else {
                    (b"", b"{}")
                };
                let fill = n - prefix.len() - suffix.len();
                let filler = if prefix.is_empty() { b' ' } else { b'a' };
                let mut out = head(200, PLUGIN_CONTENT_TYPE, Some(n), &reply.headers);
                out.extend_from_slice(prefix);
                s.write_all(&out).await?;
                let block = vec![filler; STREAM_CHUNK.min(fill)];
                let mut left = fill;
                while left > 0 {
                    let k = left.min(block.len());
                    s.write_all(&block[..k]).await?;
                    left -= k;
                }
                s.write_all(suffix).await?;
                s.flush().await?;
                Ok(Next::KeepAlive)
            }
            kind => {
                let reply = Reply {
                    kind,
                    headers: reply.headers,
                };
                let (bytes, next) =
                    render(reply, req).unwrap_or_else(|r| panic!("cannot render {r:?}"));
                s.write_all(&bytes).await?;
                s.flush().await?;
                Ok(next)
            }
        }
    })
}

/// The bytes of a reply that is just bytes, or the reply back if it is not.
fn render(reply: Reply, req: &Recorded) -> Result<(Vec<u8>, Next), Reply> {
    match reply.kind {
        Kind::Full {
            status,
            content_type,
            body,
        } => {
            let mut out = head(status, content_type, Some(body.len()), &reply.headers);
            out.extend_from_slice(&body);
            Ok((out, Next::KeepAlive))
        }
        Kind::Echo => {
            let mut out = head(
                200,
                PLUGIN_CONTENT_TYPE,
                Some(req.body.len()),
                &reply.headers,
            );
            out.extend_from_slice(&req.body);
            Ok((out, Next::KeepAlive))
        }
        Kind::Raw(bytes) => Ok((bytes, Next::Close)),
        Kind::Chunked { status, chunks } => {
            let mut out = head(status, PLUGIN_CONTENT_TYPE, None, &reply.headers);
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            Ok((out, Next::KeepAlive))
        }
        Kind::Truncated {
            status,
            declared,
            body,
        } => {
            let mut out = head(status, PLUGIN_CONTENT_TYPE, Some(declared), &reply.headers);
            out.extend_from_slice(&body);
            Ok((out, Next::Close))
        }
        Kind::With(f) => render(f(req), req),
        kind => Err(Reply {
            kind,
            headers: reply.headers,
        }),
    }
}

// ---------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------

struct Parsed {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    head: Vec<u8>,
    raw: Vec<u8>,
}

/// Buffered reader over a connection; bytes past the current request stay
/// buffered for the next one (pipelining).
struct Reader {
    buf: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Reader {
    /// Reads more bytes; `Ok(false)` at end of stream.
    async fn fill<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> io::Result<bool> {
        let mut tmp = [0u8; 8192];
        let n = s.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n > 0)
    }

    /// Ensures `self.buf.len() >= n`.
    async fn need<S: AsyncRead + Unpin>(&mut self, s: &mut S, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            if !self.fill(s).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Returns the end (exclusive) of the line starting at `from`, CRLF or
    /// LF included.
    async fn line_end<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        from: usize,
    ) -> io::Result<usize> {
        loop {
            if let Some(i) = self.buf[from..].iter().position(|&b| b == b'\n') {
                return Ok(from + i + 1);
            }
            if self.buf.len() - from > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill(s).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_request<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
    ) -> io::Result<Option<Parsed>> {
        // The head ends at the first empty line (CRLF CRLF, or bare LFs).
        let head_end = loop {
            // Leading empty lines before the request line are skipped as Go
            // does, so the search for the blank line starts after them.
            if let Some(st) = self.buf.iter().position(|&b| b != b'\r' && b != b'\n') {
                let crlf = find(&self.buf[st..], b"\r\n\r\n").map(|i| st + i + 4);
                let lf = find(&self.buf[st..], b"\n\n").map(|i| st + i + 2);
                let end = match (crlf, lf) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(e) = end {
                    break e;
                }
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            if !self.fill(s).await? {
                if self.buf.iter().all(|&b| b == b'\r' || b == b'\n') {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = self.buf[..head_end].to_vec();
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .skip_while(|l| l.is_empty());
        let request_line = lines.next().ok_or_else(|| invalid("no request line"))?;
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(format!("malformed request line {request_line:?}")));
        };
        if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/") {
            return Err(invalid(format!("malformed request line {request_line:?}")));
        }
        let mut headers = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("malformed header {line:?}")))?;
            if name.is_empty() || name.ends_with([' ', '\t']) {
                return Err(invalid(format!("malformed header {line:?}")));
            }
            headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v)
        };
        let chunked = get("Transfer-Encoding").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
        });
        let (body, end) = if chunked {
            self.read_chunked(s, head_end).await?
        } else {
            let len = match get("Content-Length") {
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
                None => 0,
            };
            self.need(s, head_end + len).await?;
            (self.buf[head_end..head_end + len].to_vec(), head_end + len)
        };
        let raw: Vec<u8> = self.buf.drain(..end).collect();
        Ok(Some(Parsed {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
            headers,
            body,
            head,
            raw,
        }))
    }

    /// Decodes a chunked body starting at `pos`; returns the body and the
    /// end of its framing (trailers included).
    async fn read_chunked<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        mut pos: usize,
    ) -> io::Result<(Vec<u8>, usize)> {
        let mut body = Vec::new();
        loop {
            let end = self.line_end(s, pos).await?;
            let line = String::from_utf8_lossy(&self.buf[pos..end]).into_owned();
            let size_text = line.trim_end().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            pos = end;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let end = self.line_end(s, pos).await?;
                    let empty = matches!(&self.buf[pos..end], b"\r\n" | b"\n");
                    pos = end;
                    if empty {
                        return Ok((body, pos));
                    }
                }
            }
            self.need(s, pos + size).await?;
            body.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size;
            let end = self.line_end(s, pos).await?;
            if !matches!(&self.buf[pos..end], b"\r\n" | b"\n") {
                return Err(invalid("missing CRLF after chunk data"));
            }
            pos = end;
        }
    }
}

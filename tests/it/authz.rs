//! The authorization chain (`plugin_registry::authz`) against real plugins
//! and a real hyper server: Docker's `pkg/authorization` order, texts and
//! body rules, and the places it fails closed where Docker does not
//! (divergences in `docs/divergences.md`).
//!
//! Every row runs requests through `AuthzLayer` in front of a counting
//! engine on a loopback hyper server, with raw HTTP/1 bytes where a
//! well-behaved client could not send them, and checks both what the
//! client got and that the engine never ran for a refused request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Incoming};
use plugin_registry::authz::{AuthzChain, AuthzIdentity, AuthzLayer, AuthzOptions, AuthzService};
use plugin_registry::proto::RetryPolicy;
use plugin_registry::proto::authz::{PeerCertificate, Request, Response};
use plugin_registry::{Policy, Registry};
use plugin_server::{AuthzPlugin, Listener, Plugin, PluginError, Server};
use plugin_tests::server::{FakePlugin, Recorded, Reply};
use plugin_tests::tree::PluginTree;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_layer::Layer as _;
use tower_service::Service;

const REQ: &str = "/AuthZPlugin.AuthZReq";
const RES: &str = "/AuthZPlugin.AuthZRes";
const ALLOW: &str = r#"{"Allow":true}"#;
const CREATE: &str = "/v1.41/containers/create";

// ---------------------------------------------------------------------------
// The rig: plugins in a temporary tree, a chain, a counting engine behind
// the layer on a loopback hyper server.
// ---------------------------------------------------------------------------

/// What the engine's handler was given, one entry per call.
#[derive(Clone, Default)]
struct Engine {
    calls: Arc<Mutex<Vec<(String, Bytes)>>>,
    big: usize,
}

impl Engine {
    fn calls(&self) -> Vec<(String, Bytes)> {
        self.calls.lock().unwrap().clone()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> Service<http::Request<B>> for Engine
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let engine = self.clone();
        Box::pin(async move {
            let uri = req.uri().to_string();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            engine.calls.lock().unwrap().push((uri.clone(), body));
            let path = uri.split('?').next().unwrap_or_default().to_owned();
            let (status, ct, body) = if path.ends_with("/secret") {
                (
                    200,
                    "application/json",
                    r#"{"Secret":"hunter2"}"#.to_owned(),
                )
            } else if path.ends_with("/big") {
                (
                    200,
                    "application/json",
                    format!("\"{}\"", "x".repeat(engine.big)),
                )
            } else if path.ends_with("/export") {
                (200, "application/x-tar", "tar bytes".to_owned())
            } else {
                (201, "application/json", "{\"Id\":\"abc\"}\n".to_owned())
            };
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", ct)
                .header("api-version", "1.41")
                .body(Full::new(Bytes::from(body)))
                .unwrap())
        })
    }
}

/// A plugin-server authorization plugin: denies requests whose body says
/// `evil`, responses whose body says `hunter2`; records what it was shown.
#[derive(Clone, Default)]
struct Policing {
    seen: Arc<Mutex<Vec<(&'static str, Request)>>>,
}

impl AuthzPlugin for Policing {
    async fn authz_req(&self, req: Request) -> Result<Response, PluginError> {
        let evil = String::from_utf8_lossy(&req.request_body).contains("evil");
        self.seen.lock().unwrap().push(("req", req));
        Ok(Response {
            allow: !evil,
            msg: if evil {
                "no evil images".into()
            } else {
                String::new()
            },
            err: String::new(),
        })
    }

    async fn authz_res(&self, req: Request) -> Result<Response, PluginError> {
        let secret = String::from_utf8_lossy(&req.response_body).contains("hunter2");
        self.seen.lock().unwrap().push(("res", req));
        Ok(Response {
            allow: !secret,
            msg: if secret {
                "secrets stay inside".into()
            } else {
                String::new()
            },
            err: String::new(),
        })
    }
}

impl Policing {
    fn seen(&self) -> Vec<(&'static str, Request)> {
        self.seen.lock().unwrap().clone()
    }
}

struct Rig {
    tree: PluginTree,
    registry: Registry,
    engine: Engine,
    servers: Vec<tokio::sync::oneshot::Sender<()>>,
}

fn quick_policy() -> Policy {
    Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_millis(300)))
}

/// Small real budgets: a 1 KiB body limit, 200 ms plugin and body bounds.
fn small() -> AuthzOptions {
    AuthzOptions::default()
        .with_limits(1024, 2048)
        .with_call_timeout(Duration::from_millis(200))
        .with_body_timeout(Duration::from_millis(200))
}

impl Rig {
    fn new() -> Rig {
        let tree = PluginTree::new();
        let registry = Registry::new(tree.registry(), quick_policy());
        Rig {
            tree,
            registry,
            engine: Engine {
                big: 4096,
                ..Engine::default()
            },
            servers: Vec::new(),
        }
    }

    fn sock(&self, name: &str) -> std::path::PathBuf {
        self.tree.path(format!("run/{name}.sock"))
    }

    /// Serves a plugin-server authorization plugin as `name`.
    fn serve(&mut self, name: &str, plugin: impl AuthzPlugin) {
        let listener = Listener::unix(self.sock(name)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server::new(Plugin::builder().authz(plugin).build().unwrap())
            .handle_signals(false)
            .shutdown_on(async {
                let _ = rx.await;
            });
        tokio::spawn(server.serve(listener));
        self.servers.push(tx);
    }

    /// A recording fake authorization plugin answering from `script`.
    async fn fake(&self, name: &str, req: Reply, res: Reply) -> FakePlugin {
        FakePlugin::builder()
            .activate(&["authz"])
            .on(REQ, req)
            .on(RES, res)
            .unix(self.sock(name))
            .await
    }

    fn chain(&self, names: &[&str]) -> AuthzChain {
        AuthzChain::with_options(self.registry.clone(), names.iter().copied(), small())
    }

    /// The engine behind the chain on a loopback hyper server.
    async fn listen(&self, chain: &AuthzChain) -> SocketAddr {
        let service = AuthzLayer::new(chain.clone()).layer(self.engine.clone());
        serve_http(service).await
    }
}

async fn serve_http(service: AuthzService<Engine>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let hyper_service = hyper::service::service_fn(move |req| {
                    let mut service = service.clone();
                    async move {
                        std::future::poll_fn(|cx| {
                            Service::<http::Request<Incoming>>::poll_ready(&mut service, cx)
                        })
                        .await?;
                        service.call(req).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper_service)
                    .await;
            });
        }
    });
    addr
}

/// One HTTP response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Docker's error answer: status and `{"message":"…"}`.
    fn assert_docker_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        let expected = format!("{}\n", serde_json::json!({ "message": message }));
        assert_eq!(self.text(), expected);
    }
}

/// Writes `raw` on a fresh connection, optionally half-closes, and reads
/// every response until the server closes (bounded).
async fn exchange(addr: SocketAddr, raw: &[u8], close_write: bool) -> Vec<Answer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    if close_write {
        stream.shutdown().await.unwrap();
    }
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .expect("server did not finish the exchange")
        .unwrap();
    parse_answers(&bytes)
}

fn parse_answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = find("content-length") {
            let len: usize = len.parse().unwrap();
            body.extend_from_slice(&bytes[..len]);
            bytes = &bytes[len..];
        } else if find("transfer-encoding").is_some() {
            loop {
                let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&bytes[..line_end]).trim(), 16)
                        .unwrap();
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    bytes = &bytes[2..];
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
        }
        out.push(Answer {
            status,
            headers,
            body,
        });
    }
    out
}

/// A well-formed JSON POST with `Connection: close`.
fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: Docker-Client/20.10.24 (linux)\r\nContent-Type: application/json\r\nAuthorization: Basic c2VjcmV0\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A JSON POST to `path`: the head with `extra` header lines (each ending
/// in CRLF), then `body` as is, whatever the headers say.
fn json_post(path: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

/// A chunked JSON POST with these chunks, then `Connection: close`.
fn chunked_post(path: &str, extra: &str, chunks: &[&str]) -> Vec<u8> {
    let mut body: String = chunks
        .iter()
        .map(|c| format!("{:x}\r\n{c}\r\n", c.len()))
        .collect();
    body.push_str("0\r\n\r\n");
    let extra = format!("{extra}Transfer-Encoding: chunked\r\nConnection: close\r\n");
    json_post(path, &extra, &body)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").into_bytes()
}

async fn one(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut answers = exchange(addr, raw, false).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers.remove(0)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------
// Docker's semantics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_allowed_exchange_shows_the_plugins_dockers_fields() {
    let mut rig = Rig::new();
    let policing = Policing::default();
    rig.serve("policy", policing.clone());
    let chain = rig.chain(&["policy"]);
    let addr = rig.listen(&chain).await;

    let answer = one(
        addr,
        &post(&format!("{CREATE}?name=web"), r#"{"Image":"busybox"}"#),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.text(), "{\"Id\":\"abc\"}\n");
    assert_eq!(
        rig.engine.calls(),
        [(
            format!("{CREATE}?name=web"),
            Bytes::from(r#"{"Image":"busybox"}"#)
        )]
    );

    let seen = policing.seen();
    assert_eq!(seen.len(), 2);
    let (kind, req) = &seen[0];
    assert_eq!(*kind, "req");
    assert_eq!(req.request_method, "POST");
    assert_eq!(req.request_uri, "/v1.41/containers/create?name=web");
    assert_eq!(req.request_body, br#"{"Image":"busybox"}"#);
    // Go's canonical names, last value wins, no Host, no credentials.
    let names: Vec<&str> = req.request_headers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["Connection", "Content-Length", "Content-Type", "User-Agent"]
    );
    assert_eq!(req.request_headers["Content-Type"], "application/json");
    assert!(req.response_status_code == 0 && req.response_body.is_empty());
    // AuthZRes: the same request fields plus the response's.
    let (kind, res) = &seen[1];
    assert_eq!(*kind, "res");
    assert_eq!(res.request_body, req.request_body);
    assert_eq!(res.request_headers, req.request_headers);
    assert_eq!(res.response_status_code, 201);
    assert_eq!(res.response_body, b"{\"Id\":\"abc\"}\n");
    assert_eq!(res.response_headers["Api-Version"], "1.41");
    assert_eq!(res.response_headers["Content-Type"], "application/json");
}

#[tokio::test]
async fn the_wire_bytes_are_dockers_struct_with_the_identity_from_extensions() {
    let rig = Rig::new();
    let fake = rig
        .fake("rec", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await;
    let chain = rig.chain(&["rec"]);
    let body = br#"{"Image":"<busybox>"}"#;
    let (mut head, ()) = http::Request::post("/v1.41/containers/create?name=a&b=c")
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .header("x-registry-auth", "secret")
        .body(())
        .unwrap()
        .into_parts();
    let cert = PeerCertificate::from_der(vec![1, 2, 3]);
    head.extensions
        .insert(AuthzIdentity::new("alice", "TLS", vec![cert.clone()]));
    let mut exchange = chain.authorize_request(&head, Some(body)).await.unwrap();
    let mut response_headers = http::HeaderMap::new();
    response_headers.insert("content-type", "application/json".parse().unwrap());
    exchange
        .authorize_response(http::StatusCode::CREATED, &response_headers, Some(b"{}"))
        .await
        .unwrap();

    let reqs = fake.requests();
    let routes: Vec<String> = reqs.iter().map(Recorded::route).collect();
    assert_eq!(routes, ["/Plugin.Activate", REQ, RES]);
    // Go's encoding of pkg/authorization.Request: struct order, omitempty,
    // base64 []byte, HTML escaped, sorted map keys, a trailing newline.
    let pem_b64 = b64(cert.to_pem().as_bytes());
    let expected_req = format!(
        "{{\"User\":\"alice\",\"UserAuthNMethod\":\"TLS\",\"RequestMethod\":\"POST\",\"RequestUri\":\"/v1.41/containers/create?name=a\\u0026b=c\",\"RequestBody\":\"{}\",\"RequestHeaders\":{{\"Content-Length\":\"21\",\"Content-Type\":\"application/json\"}},\"RequestPeerCertificates\":[\"{pem_b64}\"]}}\n",
        b64(body)
    );
    assert_eq!(reqs[1].body_text(), expected_req);
    let expected_res = format!(
        "{},\"ResponseStatusCode\":201,\"ResponseBody\":\"e30=\",\"ResponseHeaders\":{{\"Content-Type\":\"application/json\"}}}}\n",
        expected_req.strip_suffix("}\n").unwrap()
    );
    assert_eq!(reqs[2].body_text(), expected_res);
    assert_eq!(
        reqs[1].header("accept"),
        Some("application/vnd.docker.plugins.v1.2+json")
    );
}

#[tokio::test]
async fn two_plugins_are_asked_in_order_and_the_first_denial_stops_the_chain() {
    let rig = Rig::new();
    let first = rig
        .fake("first", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await;
    let second = rig
        .fake(
            "second",
            Reply::json(200, r#"{"Allow":false,"Msg":"not on fridays"}"#),
            Reply::json(200, ALLOW),
        )
        .await;
    let chain = rig.chain(&["first", "second", "first"]);
    assert_eq!(
        chain.plugins(),
        ["first", "second"],
        "duplicates dropped, as Docker"
    );
    let addr = rig.listen(&chain).await;

    let answer = one(addr, &post(CREATE, r#"{"Image":"busybox"}"#)).await;
    answer.assert_docker_error(403, "authorization denied by plugin second: not on fridays");
    assert!(
        rig.engine.calls().is_empty(),
        "the handler ran on a denied request"
    );
    assert_eq!((first.count(REQ), second.count(REQ)), (1, 1));
    assert_eq!(
        (first.count(RES), second.count(RES)),
        (0, 0),
        "AuthZRes after a denial"
    );
    let at = |f: &FakePlugin| f.requests().iter().find(|r| r.route() == REQ).unwrap().at;
    assert!(at(&first) <= at(&second));
}

#[tokio::test]
async fn a_response_the_plugins_deny_never_reaches_the_client() {
    let (rig, policing, addr) = policed().await;

    let answer = one(addr, &get("/v1.41/secret")).await;
    answer.assert_docker_error(
        403,
        "authorization denied by plugin policy: secrets stay inside",
    );
    assert!(!answer.text().contains("hunter2"));
    // Docker's order: the handler ran, then AuthZRes said no.
    assert_eq!(rig.engine.calls().len(), 1);
    let seen = policing.seen();
    assert_eq!(seen[1].1.response_body, br#"{"Secret":"hunter2"}"#);
    // A GET carries no body: none is shown, none required.
    assert!(seen[0].1.request_body.is_empty());
}

#[tokio::test]
async fn a_non_json_body_is_not_shown_and_the_request_is_still_allowed() {
    let rig = Rig::new();
    let fake = rig
        .fake("rec", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await;
    let addr = rig.listen(&rig.chain(&["rec"])).await;

    // Docker shows bodies only for application/json (a build context or an
    // image tarball streams past the plugins).
    let tar = "x".repeat(4000);
    let raw = format!(
        "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{tar}",
        tar.len()
    );
    let answer = one(addr, raw.as_bytes()).await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        rig.engine.calls()[0].1.len(),
        4000,
        "the body streams through, over the limit"
    );
    let shown = fake.requests()[1].json();
    assert!(shown.get("RequestBody").is_none(), "{shown}");
    assert_eq!(shown["RequestHeaders"]["Content-Type"], "application/x-tar");

    // The /auth endpoint's JSON body holds registry credentials: never shown.
    let answer = one(addr, &post("/v1.41/auth", r#"{"password":"pw"}"#)).await;
    assert_eq!(answer.status, 201);
    let shown = fake
        .requests()
        .iter()
        .filter(|r| r.route() == REQ)
        .nth(1)
        .unwrap()
        .json();
    assert!(shown.get("RequestBody").is_none(), "{shown}");
    assert!(shown["RequestHeaders"].get("Authorization").is_none());

    // A non-JSON response is approved from its status and headers before
    // it streams.
    let answer = one(addr, &get("/v1.41/containers/web/export")).await;
    assert_eq!((answer.status, answer.text().as_str()), (200, "tar bytes"));
    let res = fake
        .requests()
        .iter()
        .rfind(|r| r.route() == RES)
        .unwrap()
        .json();
    assert_eq!(res["ResponseStatusCode"], 200);
    assert_eq!(res["ResponseHeaders"]["Content-Type"], "application/x-tar");
    assert!(res.get("ResponseBody").is_none());
}

#[tokio::test]
async fn set_plugins_and_remove_plugin_change_the_chain_at_runtime() {
    let rig = Rig::new();
    let deny = rig
        .fake(
            "deny",
            Reply::json(200, r#"{"Allow":false,"Msg":"no"}"#),
            Reply::json(200, ALLOW),
        )
        .await;
    let chain = rig.chain(&[]);
    let addr = rig.listen(&chain).await;

    // No plugins: nothing is asked, nothing is checked (Docker).
    assert_eq!(one(addr, &post(CREATE, "{}")).await.status, 201);
    chain.set_plugins(["deny"]);
    one(addr, &post(CREATE, "{}"))
        .await
        .assert_docker_error(403, "authorization denied by plugin deny: no");
    chain.remove_plugin("deny");
    assert!(chain.plugins().is_empty());
    assert_eq!(one(addr, &post(CREATE, "{}")).await.status, 201);
    assert_eq!(deny.count(REQ), 1);
    assert_eq!(rig.engine.calls().len(), 2);
}

// ---------------------------------------------------------------------------
// Body rules: refused before any plugin is asked (beyond Docker)
// ---------------------------------------------------------------------------

/// A rig whose chain is one plugin-server plugin, `policy`.
async fn policed() -> (Rig, Policing, SocketAddr) {
    let mut rig = Rig::new();
    let policing = Policing::default();
    rig.serve("policy", policing.clone());
    let addr = rig.listen(&rig.chain(&["policy"])).await;
    (rig, policing, addr)
}

/// Refused with Docker's error answer before `fake` was asked, and the
/// engine never ran.
fn assert_refused_unasked(
    answer: &Answer,
    status: u16,
    message: &str,
    rig: &Rig,
    fake: &FakePlugin,
) {
    answer.assert_docker_error(status, message);
    assert_eq!(fake.count(REQ), 0, "a plugin was asked");
    assert!(
        rig.engine.calls().is_empty(),
        "the handler ran on a refused request"
    );
}

/// A plugin that allows everything, to prove it is never even asked.
async fn allow_all(rig: &Rig) -> FakePlugin {
    rig.fake("allow", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await
}

#[tokio::test]
async fn an_oversized_json_body_is_denied_before_any_plugin_is_asked() {
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let addr = rig.listen(&rig.chain(&["allow"])).await;

    let body = format!("\"{}\"", "x".repeat(1100));
    let answer = one(addr, &post(CREATE, &body)).await;
    assert_refused_unasked(
        &answer,
        500,
        "request body too large for authorization plugin: size exceeds 1024 bytes",
        &rig,
        &fake,
    );

    // Docker's own limit (4 MiB) by default; a declared length over it is
    // refused from the head alone.
    let default = AuthzChain::new(rig.registry.clone(), ["allow"]);
    let addr = rig.listen(&default).await;
    let raw = json_post(
        CREATE,
        &format!(
            "Connection: close\r\nContent-Length: {}\r\n",
            4 * 1024 * 1024 + 1
        ),
        "{",
    );
    let answers = exchange(addr, &raw, true).await;
    assert_refused_unasked(
        &answers[0],
        500,
        "request body too large for authorization plugin: size exceeds 4194304 bytes",
        &rig,
        &fake,
    );
}

#[tokio::test]
async fn a_chunked_json_body_within_the_limit_is_shown_whole() {
    // moby#41452: chunked bodies reached Docker's plugins empty.
    let (rig, policing, addr) = policed().await;

    let raw = chunked_post(CREATE, "", &["{\"Ima", "ge\":", "\"busybox", "\"}"]);
    let answer = one(addr, &raw).await;
    assert_eq!(answer.status, 201);
    let whole = br#"{"Image":"busybox"}"#;
    assert_eq!(policing.seen()[0].1.request_body, whole);
    assert!(
        !policing.seen()[0]
            .1
            .request_headers
            .contains_key("Transfer-Encoding")
    );
    assert_eq!(rig.engine.calls()[0].1, &whole[..]);

    // The same smuggling an evil image in a chunk is seen, and denied.
    let raw = chunked_post(CREATE, "", &["{\"Image\":", "\"evil\"", "}"]);
    one(addr, &raw)
        .await
        .assert_docker_error(403, "authorization denied by plugin policy: no evil images");
    assert_eq!(rig.engine.calls().len(), 1);
}

#[tokio::test]
async fn a_chunked_json_body_past_the_limit_is_denied_before_any_plugin_is_asked() {
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let addr = rig.listen(&rig.chain(&["allow"])).await;

    let chunk = "y".repeat(600);
    let raw = chunked_post(CREATE, "", &[&chunk, &chunk]);
    let answers = exchange(addr, &raw, false).await;
    assert_refused_unasked(
        &answers[0],
        500,
        "request body too large for authorization plugin: size exceeds 1024 bytes",
        &rig,
        &fake,
    );
}

#[tokio::test]
async fn content_length_zero_with_a_body_never_lets_the_unseen_body_reach_the_handler() {
    // CVE-2024-41110. On the wire, HTTP/1 framing makes the bytes after a
    // zero-length request a request of their own: the handler gets the
    // empty body the plugin saw, and a smuggled request is authorized on
    // its own, here denied.
    let (rig, policing, addr) = policed().await;

    let smuggled = r#"{"Image":"evil"}"#;
    let second = json_post(
        CREATE,
        &format!(
            "Connection: close\r\nContent-Length: {}\r\n",
            smuggled.len()
        ),
        smuggled,
    );
    let raw = [json_post(CREATE, "Content-Length: 0\r\n", ""), second].concat();
    let answers = exchange(addr, &raw, false).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 201);
    answers[1].assert_docker_error(403, "authorization denied by plugin policy: no evil images");
    assert_eq!(rig.engine.calls(), [(CREATE.to_owned(), Bytes::new())]);
    let seen = policing.seen();
    assert!(seen[0].1.request_body.is_empty());
    assert_eq!(seen.iter().filter(|(k, _)| *k == "req").count(), 2);

    // Garbage after the zero-length body is no request at all: hyper
    // answers 400 and the handler sees only what the plugin saw.
    let raw = json_post(CREATE, "Content-Length: 0\r\n", smuggled);
    let answers = exchange(addr, &raw, true).await;
    assert_eq!(
        answers.iter().map(|a| a.status).collect::<Vec<_>>(),
        [201, 400]
    );
    assert!(rig.engine.calls().iter().all(|(_, body)| body.is_empty()));
}

#[tokio::test]
async fn a_content_length_shorter_than_the_body_shows_the_handler_only_what_the_plugin_saw() {
    let (rig, policing, addr) = policed().await;

    let raw = json_post(CREATE, "Content-Length: 10\r\n", r#"{"Image":"evil"}"#);
    let answers = exchange(addr, &raw, true).await;
    assert_eq!(answers[0].status, 201);
    assert_eq!(policing.seen()[0].1.request_body, br#"{"Image":""#);
    assert_eq!(
        rig.engine.calls(),
        [(CREATE.to_owned(), Bytes::from(r#"{"Image":""#))]
    );
    assert!(
        answers.iter().skip(1).all(|a| a.status == 400),
        "{answers:?}"
    );
}

// On the paused clock, like the mute plugin below: the body bound is
// asserted exactly.
#[tokio::test(start_paused = true)]
async fn a_content_length_longer_than_the_body_is_denied_before_any_plugin_is_asked() {
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let addr = rig.listen(&rig.chain(&["allow"])).await;

    // The client announces 100 bytes, sends 16 and waits.
    let raw = json_post(
        CREATE,
        "Connection: close\r\nContent-Length: 100\r\n",
        r#"{"Image":"evil"}"#,
    );
    let started = tokio::time::Instant::now();
    let answers = exchange(addr, &raw, false).await;
    answers[0].assert_docker_error(
        400,
        "request refused before authorization: the request body was not received whole within 200ms",
    );
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert_eq!(fake.count(REQ), 0);
    assert!(rig.engine.calls().is_empty());

    // A client that gives up half-way: the body cannot be read whole.
    let answers = exchange(addr, &raw, true).await;
    if let Some(a) = answers.first() {
        assert_eq!(a.status, 400, "{a:?}");
        assert!(
            a.text()
                .contains("the request body could not be read whole"),
            "{a:?}"
        );
    }
    assert_eq!(fake.count(REQ), 0);
    assert!(rig.engine.calls().is_empty());
}

#[tokio::test]
async fn a_body_disagreeing_with_its_headers_is_denied_before_any_plugin_is_asked() {
    // Engines that build requests themselves (not from hyper's framing):
    // the chain compares the body it is handed with Content-Length.
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let chain = rig.chain(&["allow"]);
    let mut service = AuthzLayer::new(chain.clone()).layer(rig.engine.clone());

    for (length, text) in [
        (Some("0"), "Content-Length says 0 bytes but the body has 16"),
        (Some("4"), "Content-Length says 4 bytes but the body has 16"),
        (
            Some("99"),
            "Content-Length says 99 bytes but the body has 16",
        ),
        (
            None,
            "a body of 16 bytes came without Content-Length or chunked framing",
        ),
    ] {
        let mut builder = http::Request::post(CREATE).header("content-type", "application/json");
        if let Some(length) = length {
            builder = builder.header("content-length", length);
        }
        let body = Bytes::from_static(br#"{"Image":"evil"}"#);
        let (head, ()) = builder.body(()).unwrap().into_parts();
        let err = chain
            .authorize_request(&head, Some(&body))
            .await
            .unwrap_err();
        assert!(err.is_body_rule() && !err.is_denied() && err.plugin().is_none());
        assert_eq!(
            err.to_string(),
            format!("request refused before authorization: {text}")
        );
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);

        // Through the layer, with a body whose size is exact.
        let request = http::Request::from_parts(head, Full::new(body));
        let response = call(&mut service, request).await;
        assert_eq!(response.status(), 400);
        let text = String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            text,
            format!("{}\n", serde_json::json!({"message": err.to_string()}))
        );
    }
    // A JSON body the caller did not read cannot be authorized.
    let (head, ()) = http::Request::post(CREATE)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    let err = chain.authorize_request(&head, None).await.unwrap_err();
    assert!(err.is_body_rule());
    assert_eq!(fake.count(REQ), 0);
    assert!(rig.engine.calls().is_empty());
}

async fn call<S, B>(service: &mut S, request: http::Request<B>) -> S::Response
where
    S: Service<http::Request<B>>,
    S::Error: std::fmt::Debug,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    service.call(request).await.unwrap()
}

#[tokio::test]
async fn an_oversized_json_response_is_denied_and_never_shown() {
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let addr = rig.listen(&rig.chain(&["allow"])).await;

    let answer = one(addr, &get("/v1.41/big")).await;
    answer.assert_docker_error(
        500,
        "response body too large for authorization plugin: size exceeds 2048 bytes",
    );
    assert_eq!((fake.count(REQ), fake.count(RES)), (1, 0));
    assert_eq!(rig.engine.calls().len(), 1);
}

// ---------------------------------------------------------------------------
// Plugins that fail: the request is denied (Docker fails closed here too,
// except where the divergence table says otherwise)
// ---------------------------------------------------------------------------

/// Asks `chain` once through the layer; the engine must not run.
async fn assert_failed(rig: &Rig, chain: &AuthzChain, message: &str) {
    let addr = rig.listen(chain).await;
    let answer = one(addr, &post(CREATE, r#"{"Image":"busybox"}"#)).await;
    answer.assert_docker_error(500, message);
    assert!(
        rig.engine.calls().is_empty(),
        "the handler ran on a denied request"
    );
}

/// Asks `chain` directly about a bodyless GET; it must fail with a plugin
/// failure of `name`. Returns the text after Docker's prefix.
async fn plugin_failure(chain: &AuthzChain, name: &str) -> String {
    let (head, ()) = http::Request::get("/v1.41/info")
        .body(())
        .unwrap()
        .into_parts();
    let err = chain.authorize_request(&head, None).await.unwrap_err();
    assert!(err.is_plugin_failure() && !err.is_denied(), "{err}");
    assert_eq!(err.plugin(), Some(name));
    assert_eq!(err.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let prefix = format!("plugin {name} failed with error: ");
    let text = err.to_string();
    assert!(text.starts_with(&prefix), "{text}");
    assert_eq!(err.message(), Some(&text[prefix.len()..]));
    text[prefix.len()..].to_owned()
}

#[tokio::test]
async fn a_missing_plugin_denies() {
    let rig = Rig::new();
    assert_failed(
        &rig,
        &rig.chain(&["ghost"]),
        "plugin ghost failed with error: could not find plugin ghost in v1 plugin registry: plugin not found",
    )
    .await;
}

#[tokio::test]
async fn a_dead_plugin_denies() {
    let rig = Rig::new();
    rig.tree.stale_socket("run/dead.sock");
    let chain = rig.chain(&["dead"]);
    let text = plugin_failure(&chain, "dead").await;
    assert!(text.contains("connection refused"), "{text}");
    let addr = rig.listen(&chain).await;
    let answer = one(addr, &post(CREATE, "{}")).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.text().contains("plugin dead failed with error: "),
        "{answer:?}"
    );
    assert!(rig.engine.calls().is_empty());
}

// On tokio's paused clock, so the bound is asserted exactly: the fake
// plugin and the loopback server run on the test's runtime, and what one
// writes is in the kernel before the runtime idles, so no socket wait is
// skipped.
#[tokio::test(start_paused = true)]
async fn a_mute_plugin_denies_within_the_call_timeout() {
    let rig = Rig::new();
    let _mute = rig
        .fake("mute", Reply::hang(), Reply::json(200, ALLOW))
        .await;
    let started = tokio::time::Instant::now();
    assert_failed(
        &rig,
        &rig.chain(&["mute"]),
        "plugin mute failed with error: AuthZPlugin.AuthZReq: no answer within 200ms",
    )
    .await;
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

#[tokio::test]
async fn a_plugin_answering_html_denies() {
    let rig = Rig::new();
    let _p = rig
        .fake(
            "html",
            Reply::text(200, "<html>hi</html>").header("Content-Type", "text/html"),
            Reply::ok(),
        )
        .await;
    let chain = rig.chain(&["html"]);
    let text = plugin_failure(&chain, "html").await;
    // serde_json's words for Go's `invalid character '<' …` (D22).
    assert!(text.contains("expected value at line 1 column 1"), "{text}");
    assert_failed(
        &rig,
        &chain,
        &format!("plugin html failed with error: {text}"),
    )
    .await;
}

#[tokio::test]
async fn a_plugin_answering_an_error_status_denies() {
    let rig = Rig::new();
    let _p = rig
        .fake("broken", Reply::err("policy store down"), Reply::ok())
        .await;
    assert_failed(
        &rig,
        &rig.chain(&["broken"]),
        "plugin broken failed with error: AuthZPlugin.AuthZReq: policy store down",
    )
    .await;
}

#[tokio::test]
async fn a_plugin_answering_an_empty_object_denies_as_docker() {
    let rig = Rig::new();
    let _p = rig.fake("empty", Reply::json(200, "{}"), Reply::ok()).await;
    let addr = rig.listen(&rig.chain(&["empty"])).await;
    one(addr, &post(CREATE, "{}"))
        .await
        .assert_docker_error(403, "authorization denied by plugin empty: ");
    assert!(rig.engine.calls().is_empty());
}

#[tokio::test]
async fn a_plugin_answering_allow_as_a_string_denies() {
    let rig = Rig::new();
    let _p = rig
        .fake("yes", Reply::json(200, r#"{"Allow":"yes"}"#), Reply::ok())
        .await;
    let chain = rig.chain(&["yes"]);
    let text = plugin_failure(&chain, "yes").await;
    // serde_json's words for Go's `json: cannot unmarshal string …` (D22).
    assert!(
        text.contains("invalid type: string \"yes\", expected a boolean"),
        "{text}"
    );
    assert_failed(
        &rig,
        &chain,
        &format!("plugin yes failed with error: {text}"),
    )
    .await;
}

#[tokio::test]
async fn a_plugin_allowing_with_an_err_denies() {
    // Docker reads Allow alone and lets this through.
    let rig = Rig::new();
    let _p = rig
        .fake(
            "confused",
            Reply::json(200, r#"{"Allow":true,"Err":"cannot read policy"}"#),
            Reply::ok(),
        )
        .await;
    assert_failed(
        &rig,
        &rig.chain(&["confused"]),
        "plugin confused failed with error: cannot read policy",
    )
    .await;
}

#[tokio::test]
async fn a_plugin_that_comes_back_is_used_again() {
    // Docker remembers an authz plugin's first lookup error forever.
    let rig = Rig::new();
    let chain = rig.chain(&["late"]);
    let addr = rig.listen(&chain).await;
    let answer = one(addr, &post(CREATE, "{}")).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.text().contains("plugin late failed with error"),
        "{answer:?}"
    );

    let late = rig
        .fake("late", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await;
    assert_eq!(one(addr, &post(CREATE, "{}")).await.status, 201);
    assert_eq!((late.count(REQ), late.count(RES)), (1, 1));

    // It dies: denied; it comes back on the same socket: allowed again.
    late.shutdown().await;
    assert_eq!(one(addr, &post(CREATE, "{}")).await.status, 500);
    std::fs::remove_file(rig.sock("late")).unwrap();
    let again = rig
        .fake("late", Reply::json(200, ALLOW), Reply::json(200, ALLOW))
        .await;
    assert_eq!(one(addr, &post(CREATE, "{}")).await.status, 201);
    assert_eq!(again.count(REQ), 1);
    assert_eq!(rig.engine.calls().len(), 2);
}

#[tokio::test]
async fn the_layer_works_with_a_service_typed_for_its_body() {
    // AuthzService is itself a tower service over any http body.
    let rig = Rig::new();
    let _allow = allow_all(&rig).await;
    let mut service: AuthzService<Engine> =
        AuthzLayer::new(rig.chain(&["allow"])).layer(rig.engine.clone());
    let request = http::Request::post(CREATE)
        .header("content-type", "application/json")
        .header("content-length", "2")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = call(&mut service, request).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        rig.engine.calls(),
        [(CREATE.to_owned(), Bytes::from_static(b"{}"))]
    );
}

#[tokio::test]
async fn the_opt_in_forwards_oversized_bodies_unshown_and_tells_the_plugins() {
    let rig = Rig::new();
    let fake = allow_all(&rig).await;
    let chain = AuthzChain::with_options(
        rig.registry.clone(),
        ["allow"],
        small().forwarding_unshown_bodies(true),
    );
    let addr = rig.listen(&chain).await;

    // A client cannot forge the marker.
    let body = format!("\"{}\"", "x".repeat(1100));
    let raw = chunked_post(CREATE, "X-Authz-Body-Omitted: forged\r\n", &[&body]);
    let answer = one(addr, &raw).await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        rig.engine.calls()[0].1,
        body.as_bytes(),
        "the handler gets every byte"
    );
    let shown = fake.requests()[1].json();
    assert!(shown.get("RequestBody").is_none(), "{shown}");
    assert_eq!(
        shown["RequestHeaders"]["X-Authz-Body-Omitted"],
        "request body larger than 1024 bytes"
    );

    // The same for a response over its limit: streamed after approval.
    let answer = one(addr, &get("/v1.41/big")).await;
    assert_eq!((answer.status, answer.body.len()), (200, 4098));
    let res = fake
        .requests()
        .iter()
        .rfind(|r| r.route() == RES)
        .unwrap()
        .json();
    assert!(res.get("ResponseBody").is_none(), "{res}");
    assert_eq!(
        res["ResponseHeaders"]["X-Authz-Body-Omitted"],
        "response body larger than 2048 bytes"
    );

    // Framing that does not match the body is refused all the same.
    let (head, ()) = http::Request::post(CREATE)
        .header("content-type", "application/json")
        .header("content-length", "0")
        .body(())
        .unwrap()
        .into_parts();
    let err = chain
        .authorize_request(&head, Some(b"{}"))
        .await
        .unwrap_err();
    assert!(err.is_body_rule());
    assert_eq!(fake.count(REQ), 2);
}

/// Found by the soak (`cargo xtask soak`): with a `call_timeout` shorter
/// than the registry's retry schedule, the chain's timer dropped the
/// client's retry loop before it evicted a dead plugin (D11), so a plugin
/// restarted at another address was never looked up again and every
/// request was refused for good. The chain now bounds each call with the
/// client's deadline, which ends the retries itself and lets the registry
/// evict the plugin.
#[tokio::test]
async fn a_wedged_plugin_restarted_elsewhere_is_used_again_after_a_timeout() {
    let tree = PluginTree::new();
    let policy = Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_secs(10)));
    let registry = Registry::new(tree.registry(), policy);
    let chain = AuthzChain::with_options(registry, ["wedged"], small());
    let head = http::Request::post(CREATE).body(()).unwrap().into_parts().0;

    let wedged = FakePlugin::builder()
        .activate(&["authz"])
        .on(REQ, Reply::hang())
        .unix(tree.path("run/wedged.sock"))
        .await;
    let err = chain.authorize_request(&head, None).await.unwrap_err();
    assert!(err.to_string().contains("no answer within 200ms"), "{err}");

    // The operator starts a new instance on tcp; the wedged one lives on
    // but its socket is gone, so the cached address cannot be dialled.
    std::fs::remove_file(tree.path("run/wedged.sock")).unwrap();
    let moved = FakePlugin::builder()
        .activate(&["authz"])
        .on(REQ, Reply::json(200, ALLOW))
        .on(RES, Reply::json(200, ALLOW))
        .tcp()
        .await;
    tree.write_spec(0, "wedged", &format!("tcp://{}", moved.addr()));

    // The first request still goes to the old address and times out; the
    // next one finds the plugin where it now lives.
    let first = tokio::time::timeout(Duration::from_secs(2), chain.authorize_request(&head, None));
    assert!(first.await.expect("bounded by the call timeout").is_err());
    let second = tokio::time::timeout(Duration::from_secs(2), chain.authorize_request(&head, None));
    second.await.expect("bounded").unwrap();
    assert_eq!(moved.count(REQ), 1);
    assert_eq!(wedged.count(REQ), 1);
}

/// An authorization plugin that died after its activation, with a registry
/// whose retries outlast the chain's bound: the client's deadline ends the
/// retries, so the request is denied within the bound saying why, and the
/// registry forgets the plugin (D11) instead of asking the dead address
/// again at every request.
#[tokio::test]
async fn a_plugin_that_died_denies_within_the_bound_saying_why_and_is_forgotten() {
    let tree = PluginTree::new();
    let policy = Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_secs(10)));
    let registry = Registry::new(tree.registry(), policy);
    let chain = AuthzChain::with_options(registry.clone(), ["gone"], small());
    let head = http::Request::post(CREATE).body(()).unwrap().into_parts().0;
    let socket = tree.path("run/gone.sock");
    let plugin = FakePlugin::builder()
        .activate(&["authz"])
        .on(REQ, Reply::json(200, ALLOW))
        .unix(&socket)
        .await;
    chain.authorize_request(&head, None).await.unwrap();
    assert_eq!(registry.plugins().len(), 1);

    plugin.shutdown().await;
    std::fs::remove_file(&socket).ok();
    let denied = tokio::time::timeout(Duration::from_secs(2), chain.authorize_request(&head, None));
    let err = denied
        .await
        .expect("bounded by the call timeout")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin gone failed with error: AuthZPlugin.AuthZReq: no answer within 200ms: \
             Post \"http://plugin.moby.localhost/AuthZPlugin.AuthZReq\": dial unix {}: \
             connect: no such file or directory",
            socket.display()
        )
    );
    assert!(
        registry.plugins().is_empty(),
        "the dead plugin is forgotten"
    );
}

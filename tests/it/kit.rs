//! Self-tests of the fake-plugin kit (`plugin_tests::server`,
//! `plugin_tests::certs`), driven with plain tokio sockets and a bare rustls
//! client so that they do not depend on the crates under test.

// The helpers below are test code too.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_tests::certs::TestPki;
use plugin_tests::server::{ClientAuth, FakePlugin, NOT_FOUND_BODY, Reply, stale_socket};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

const SECOND: Duration = Duration::from_secs(1);

/// Go's activation request over a unix socket (behaviour §3.3).
const GO_ACTIVATE: &[u8] = b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 0\r\n\
User-Agent: Go-http-client/1.1\r\n\r\n";

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A response as the test client read it.
#[derive(Debug)]
struct Response {
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one Content-Length-framed response.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Response> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut r = Response {
        head,
        body: Vec::new(),
    };
    let len: usize = r.header("Content-Length").map_or(0, |v| v.parse().unwrap());
    r.body = vec![0; len];
    s.read_exact(&mut r.body).await?;
    Ok(r)
}

/// Sends `req` on `s` and reads one response, within a second.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8]) -> Response {
    s.write_all(req).await.unwrap();
    tokio::time::timeout(SECOND, read_response(s))
        .await
        .expect("response in time")
        .unwrap()
}

/// Reads until EOF (or error) within a second; returns the bytes and the
/// error that ended the stream, if any.
async fn read_to_close<S: AsyncRead + Unpin>(s: &mut S) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let res = tokio::time::timeout(SECOND, s.read_to_end(&mut out))
        .await
        .expect("closed in time");
    (out, res.err())
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("kit").tempdir().unwrap()
}

// --- recording ---------------------------------------------------------------

#[tokio::test]
async fn unix_request_is_recorded_byte_exact() {
    let dir = tempdir();
    let sock = dir.path().join("p.sock");
    let plugin = FakePlugin::builder()
        .activate(&["VolumeDriver"])
        .unix(&sock)
        .await;
    assert_eq!(plugin.address(), format!("unix://{}", sock.display()));
    assert_eq!(plugin.path(), Some(sock.as_path()));

    let mut s = UnixStream::connect(&sock).await.unwrap();
    let resp = exchange(&mut s, GO_ACTIVATE).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/vnd.docker.plugins.v1.1+json")
    );
    assert_eq!(resp.text(), r#"{"Implements":["VolumeDriver"]}"#);

    let reqs = plugin.wait_for(1, SECOND).await;
    let r = &reqs[0];
    assert_eq!(r.raw, GO_ACTIVATE);
    assert_eq!(r.head, GO_ACTIVATE);
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.version.as_str()),
        ("POST", "/Plugin.Activate", "HTTP/1.1")
    );
    assert_eq!(r.header("host"), Some("plugin.moby.localhost"));
    assert_eq!(r.header("USER-AGENT"), Some("Go-http-client/1.1"));
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "Accept", "Content-Length", "User-Agent"]);
    assert!(r.body.is_empty());
    assert_eq!(r.conn_id, 0);
    assert!(r.peer_cert.is_none());
    assert_eq!(plugin.count("Plugin.Activate"), 1);
    assert_eq!(plugin.count("/Plugin.Activate"), 1);
}

#[tokio::test]
async fn keep_alive_requests_share_one_connection() {
    let plugin = FakePlugin::builder()
        .activate(&["NetworkDriver"])
        .on("/Echo", Reply::echo())
        .tcp()
        .await;
    assert_eq!(
        plugin.address(),
        format!("tcp://127.0.0.1:{}", plugin.port())
    );
    assert_eq!(
        plugin.url("https", "localhost"),
        format!("https://localhost:{}", plugin.port())
    );

    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    assert_eq!(exchange(&mut s, GO_ACTIVATE).await.status(), 200);
    let resp = exchange(&mut s, &post("/Echo", r#"{"a":1}"#)).await;
    assert_eq!(resp.text(), r#"{"a":1}"#);

    let reqs = plugin.wait_for(2, SECOND).await;
    assert_eq!(plugin.connections(), 1);
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.conn_id == 0));
    assert_eq!(reqs[1].body, br#"{"a":1}"#);

    // A second connection gets the next id.
    let mut s2 = TcpStream::connect(plugin.addr()).await.unwrap();
    exchange(&mut s2, &post("/Echo", "x")).await;
    assert_eq!(plugin.wait_for(3, SECOND).await[2].conn_id, 1);
    assert_eq!(plugin.connections(), 2);
}

#[tokio::test]
async fn pipelined_requests_are_split() {
    let plugin = FakePlugin::builder().on("A", Reply::echo()).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let mut both = post("/A", "one");
    both.extend_from_slice(&post("/A", "two"));
    s.write_all(&both).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().text(), "one");
    assert_eq!(read_response(&mut s).await.unwrap().text(), "two");
    let reqs = plugin.requests();
    assert_eq!(reqs[0].raw, post("/A", "one"));
    assert_eq!(reqs[1].raw, post("/A", "two"));
}

#[tokio::test]
async fn chunked_request_body_is_decoded_and_raw_kept() {
    let plugin = FakePlugin::builder()
        .on("VolumeDriver.Create", Reply::echo())
        .tcp()
        .await;
    let req = b"POST /VolumeDriver.Create HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\n{\"Nam\r\n8;ext=1\r\ne\":\"v1\"}\r\n0\r\nX-Trailer: t\r\n\r\n";
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, req).await;
    assert_eq!(resp.text(), r#"{"Name":"v1"}"#);
    let r = &plugin.wait_for(1, SECOND).await[0];
    assert_eq!(r.body, br#"{"Name":"v1"}"#);
    assert_eq!(r.json()["Name"], "v1");
    assert_eq!(r.raw, req);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
}

#[tokio::test]
async fn missing_host_and_absolute_target_are_tolerated() {
    let plugin = FakePlugin::builder().activate(&["authz"]).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, b"POST /Plugin.Activate HTTP/1.1\r\n\r\n").await;
    assert_eq!(resp.text(), r#"{"Implements":["authz"]}"#);
    let resp = exchange(
        &mut s,
        b"POST http://plugin.moby.localhost/Plugin.Activate?x=1 HTTP/1.1\r\nHost:\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let reqs = plugin.wait_for(2, SECOND).await;
    assert_eq!(reqs[0].header("Host"), None);
    assert_eq!(reqs[1].header("Host"), Some(""));
    assert_eq!(
        reqs[1].path,
        "http://plugin.moby.localhost/Plugin.Activate?x=1"
    );
    assert_eq!(reqs[1].route(), "/Plugin.Activate");
    assert_eq!(plugin.count("Plugin.Activate"), 2);
}

#[tokio::test]
async fn unscripted_path_gets_go_404_and_malformed_request_gets_400() {
    let plugin = FakePlugin::tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, &post("/Nope.Nope", "")).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text(), NOT_FOUND_BODY);
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );

    s.write_all(b"garbage\r\n\r\n").await.unwrap();
    let (bytes, _) = read_to_close(&mut s).await;
    assert!(
        bytes.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[tokio::test]
async fn sequence_replies_in_order_then_repeat_last() {
    let plugin = FakePlugin::builder()
        .on_seq(
            "Plugin.Activate",
            [
                Reply::err("not yet"),
                Reply::json(200, r#"{"Implements":[]}"#),
            ],
        )
        .default_reply(Reply::text(418, "teapot"))
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let statuses = [
        exchange(&mut s, GO_ACTIVATE).await.status(),
        exchange(&mut s, GO_ACTIVATE).await.status(),
        exchange(&mut s, GO_ACTIVATE).await.status(),
    ];
    assert_eq!(statuses, [500, 200, 200]);
    assert_eq!(exchange(&mut s, &post("/Other", "")).await.status(), 418);

    // The script can be changed while running.
    plugin.on("Plugin.Activate", Reply::json(201, "{}"));
    assert_eq!(exchange(&mut s, GO_ACTIVATE).await.status(), 201);
}

#[tokio::test]
async fn with_closure_sees_the_request() {
    let plugin = FakePlugin::builder()
        .on(
            "Len",
            Reply::with(|r| Reply::json(200, format!(r#"{{"Len":{}}}"#, r.body.len()))),
        )
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    assert_eq!(
        exchange(&mut s, &post("/Len", "12345")).await.text(),
        r#"{"Len":5}"#
    );
}

#[tokio::test]
async fn err_and_header_helpers() {
    let plugin = FakePlugin::builder()
        .on(
            "E",
            Reply::err("boom <&>")
                .header("X-Extra", "1")
                .header("content-type", "application/json"),
        )
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, &post("/E", "")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text(), r#"{"Err":"boom <&>"}"#);
    assert_eq!(resp.header("X-Extra"), Some("1"));
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let plugin = FakePlugin::builder().on("A", Reply::ok()).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(b"POST /A HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let (bytes, err) = read_to_close(&mut s).await;
    assert!(err.is_none());
    assert!(bytes.ends_with(br#"{"Err":""}"#));
}

// --- misbehaving replies -----------------------------------------------------

#[tokio::test]
async fn drop_closes_without_reply() {
    let dir = tempdir();
    let plugin = FakePlugin::builder()
        .on("D", Reply::drop())
        .unix(dir.path().join("d.sock"))
        .await;
    let mut s = UnixStream::connect(plugin.path().unwrap()).await.unwrap();
    s.write_all(&post("/D", "body")).await.unwrap();
    let (bytes, err) = read_to_close(&mut s).await;
    assert!(bytes.is_empty() && err.is_none());
    assert_eq!(plugin.requests()[0].body, b"body");
}

#[tokio::test]
async fn reset_sends_rst_on_tcp() {
    let plugin = FakePlugin::builder().on("R", Reply::reset()).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/R", "")).await.unwrap();
    let (bytes, err) = read_to_close(&mut s).await;
    assert!(bytes.is_empty());
    assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::ConnectionReset));
}

#[tokio::test(start_paused = true)]
async fn hang_does_not_answer() {
    let plugin = FakePlugin::builder().on("H", Reply::hang()).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/H", "")).await.unwrap();
    let mut b = [0u8; 1];
    let res = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await;
    assert!(res.is_err(), "hang answered: {res:?}");
    assert_eq!(plugin.count("H"), 1);
    // Shutting down closes the hanging connection.
    plugin.shutdown().await;
    let (bytes, _) = read_to_close(&mut s).await;
    assert!(bytes.is_empty());
}

#[tokio::test]
async fn raw_bytes_arrive_verbatim_then_close() {
    let junk: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n\xff\x00{";
    let plugin = FakePlugin::builder().on("X", Reply::raw(junk)).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/X", "")).await.unwrap();
    let (bytes, err) = read_to_close(&mut s).await;
    assert_eq!(bytes, junk);
    assert!(err.is_none());
}

#[tokio::test]
async fn truncated_declares_more_than_it_sends() {
    let plugin = FakePlugin::builder()
        .on("T", Reply::truncated(200, 100, r#"{"Err":"#))
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/T", "")).await.unwrap();
    let (bytes, _) = read_to_close(&mut s).await;
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("Content-Length: 100\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"Err\":"), "{text}");
}

#[tokio::test]
async fn echo_echoes_the_body() {
    let plugin = FakePlugin::builder().on("E", Reply::echo()).tcp().await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, &post("/E", r#"{"Name":"x\u003c"}"#)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text(), r#"{"Name":"x\u003c"}"#);
}

// The paused clock: the kit's delays are exact to the millisecond, so the
// tests built on them can assert exact schedules. Over a unix socket: on
// tcp, Nagle's algorithm holds the trickled bytes back for a real ACK, and
// the paused clock would jump past them.
#[tokio::test(start_paused = true)]
async fn delay_and_slow_take_their_time() {
    let dir = tempdir();
    let plugin = FakePlugin::builder()
        .on("D", Reply::delay(Duration::from_millis(150), Reply::ok()))
        .on(
            "S",
            Reply::slow(Duration::from_millis(1), Reply::text(200, "slow")),
        )
        .unix(dir.path().join("slow.sock"))
        .await;
    let mut s = UnixStream::connect(plugin.path().unwrap()).await.unwrap();
    let t = tokio::time::Instant::now();
    assert_eq!(
        exchange(&mut s, &post("/D", "")).await.text(),
        r#"{"Err":""}"#
    );
    assert_eq!(t.elapsed(), Duration::from_millis(150));

    let t = tokio::time::Instant::now();
    let resp = exchange(&mut s, &post("/S", "")).await;
    assert_eq!(resp.text(), "slow");
    // One millisecond before each byte, head included.
    let bytes = resp.head.len() + resp.body.len();
    assert_eq!(t.elapsed(), Duration::from_millis(bytes as u64));
}

#[tokio::test]
async fn huge_sends_valid_json_of_exact_size() {
    let plugin = FakePlugin::builder()
        .on("Big", Reply::huge(1_000_000))
        .on("Small", Reply::huge(5))
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    let resp = exchange(&mut s, &post("/Big", "")).await;
    assert_eq!(resp.body.len(), 1_000_000);
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["Err"], "");
    let resp = exchange(&mut s, &post("/Small", "")).await;
    assert_eq!(resp.body, b"   {}");
}

#[tokio::test]
async fn chunked_reply_is_framed() {
    let plugin = FakePlugin::builder()
        .on("C", Reply::chunked(200, ["{\"A\":", "", "1}"]))
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/C", "")).await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"0\r\n\r\n") {
        let mut b = [0u8; 256];
        let n = tokio::time::timeout(SECOND, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n5\r\n{\"A\":\r\n2\r\n1}\r\n0\r\n\r\n"),
        "{text}"
    );
    // Keep-alive: the connection serves another request.
    s.write_all(&post("/C", "")).await.unwrap();
    let mut b = [0u8; 8];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"HTTP/1.1");
}

#[tokio::test]
async fn endless_chunked_keeps_streaming() {
    let plugin = FakePlugin::builder()
        .on("L", Reply::endless_chunked())
        .tcp()
        .await;
    let mut s = TcpStream::connect(plugin.addr()).await.unwrap();
    s.write_all(&post("/L", "")).await.unwrap();
    let mut got = vec![0u8; 256 * 1024];
    tokio::time::timeout(SECOND, s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Transfer-Encoding: chunked\r\n"));
    assert!(text.contains("\r\n\r\n9\r\n{\"Data\":\"\r\n4000\r\naaaa"));
    drop(s);
    plugin.shutdown().await;
}

// --- lifecycle ----------------------------------------------------------------

#[tokio::test]
async fn shutdown_refuses_new_connections() {
    let dir = tempdir();
    let sock = dir.path().join("s.sock");
    let unix = FakePlugin::unix(&sock).await;
    let tcp = FakePlugin::tcp().await;
    let addr = tcp.addr();
    unix.shutdown().await;
    tcp.shutdown().await;
    let e = UnixStream::connect(&sock).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    let e = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);

    // A restart on the same port works.
    let again = FakePlugin::builder().activate(&[]).tcp_at(addr).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        exchange(&mut s, GO_ACTIVATE).await.text(),
        r#"{"Implements":[]}"#
    );
    drop(again);
}

#[tokio::test]
async fn drop_stops_the_server() {
    let plugin = FakePlugin::tcp().await;
    let addr = plugin.addr();
    drop(plugin);
    let deadline = Instant::now() + SECOND;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            _ if Instant::now() > deadline => panic!("still accepting after drop"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[tokio::test]
async fn stale_socket_refuses_connections() {
    let dir = tempdir();
    let sock = dir.path().join("stale.sock");
    stale_socket(&sock);
    assert!(sock.exists());
    let e = UnixStream::connect(&sock).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn wait_for_waits_and_clear_forgets() {
    let plugin = Arc::new(FakePlugin::builder().on("A", Reply::ok()).tcp().await);
    let addr = plugin.addr();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        exchange(&mut s, &post("/A", "")).await;
    });
    assert_eq!(plugin.wait_for(1, SECOND).await.len(), 1);
    plugin.clear();
    assert!(plugin.requests().is_empty());
    assert_eq!(plugin.connections(), 1);
}

// --- TLS -----------------------------------------------------------------------

fn tls_client(
    roots: rustls::RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
        None => b.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// Handshakes and does one activation exchange; any failure is returned.
async fn tls_activate(
    plugin: &FakePlugin,
    connector: &tokio_rustls::TlsConnector,
    host: &str,
) -> io::Result<Response> {
    let tcp = TcpStream::connect(plugin.addr()).await?;
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = tokio::time::timeout(SECOND, connector.connect(name, tcp)).await??;
    tls.write_all(GO_ACTIVATE).await?;
    tokio::time::timeout(SECOND, read_response(&mut tls)).await?
}

#[tokio::test]
async fn tls_handshake_trusting_the_ca() {
    let dir = tempdir();
    let pki = TestPki::new(dir.path());
    let plugin = FakePlugin::builder()
        .activate(&["LogDriver"])
        .tls(&pki.server(), ClientAuth::None)
        .await;
    assert_eq!(
        plugin.address(),
        format!("https://127.0.0.1:{}", plugin.port())
    );
    let good = tls_client(pki.ca_roots(), None);
    for host in ["localhost", "127.0.0.1"] {
        let resp = tls_activate(&plugin, &good, host).await.unwrap();
        assert_eq!(resp.text(), r#"{"Implements":["LogDriver"]}"#);
    }
    assert_eq!(plugin.count("Plugin.Activate"), 2);

    // A client trusting another CA fails, and so does a wrong name.
    let mut other = rustls::RootCertStore::empty();
    other.add(pki.wrong_ca_der()).unwrap();
    let err = tls_activate(&plugin, &tls_client(other, None), "localhost")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let err = tls_activate(&plugin, &good, "example.com")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert_eq!(plugin.count("Plugin.Activate"), 2);
}

#[tokio::test]
async fn tls_bad_server_certificates_are_rejected() {
    let dir = tempdir();
    let pki = TestPki::new(dir.path());
    let good = tls_client(pki.ca_roots(), None);
    for (certs, expect) in [
        (pki.server_wrong_ca(), "UnknownIssuer"),
        (pki.server_expired(), "expired"),
        (pki.server_wrong_host(), "not valid for name"),
    ] {
        let plugin = FakePlugin::builder()
            .activate(&[])
            .tls(&certs, ClientAuth::None)
            .await;
        let err = tls_activate(&plugin, &good, "localhost").await.unwrap_err();
        assert!(err.to_string().contains(expect), "{expect}: {err}");
    }
}

#[tokio::test]
async fn tls_client_auth_required_and_optional() {
    let dir = tempdir();
    let pki = TestPki::new(dir.path());
    let anonymous = tls_client(pki.ca_roots(), None);
    let ecdsa = tls_client(pki.ca_roots(), Some(pki.client_identity()));
    let rsa = tls_client(pki.ca_roots(), Some(pki.client_rsa_identity()));

    let required = FakePlugin::builder()
        .activate(&[])
        .tls(&pki.server(), ClientAuth::Required)
        .await;
    assert!(
        tls_activate(&required, &anonymous, "localhost")
            .await
            .is_err()
    );
    assert_eq!(required.count("Plugin.Activate"), 0);
    assert!(!required.handshake_errors().is_empty());
    tls_activate(&required, &ecdsa, "localhost").await.unwrap();
    tls_activate(&required, &rsa, "localhost").await.unwrap();
    let reqs = required.wait_for(2, SECOND).await;
    assert_eq!(
        reqs[0].peer_cert.as_deref(),
        Some(pki.client_identity().0[0].as_ref())
    );
    assert_eq!(
        reqs[1].peer_cert.as_deref(),
        Some(pki.client_rsa_identity().0[0].as_ref())
    );

    let optional = FakePlugin::builder()
        .activate(&[])
        .tls(&pki.server(), ClientAuth::Optional)
        .await;
    tls_activate(&optional, &anonymous, "localhost")
        .await
        .unwrap();
    tls_activate(&optional, &ecdsa, "localhost").await.unwrap();
    let reqs = optional.wait_for(2, SECOND).await;
    assert!(reqs[0].peer_cert.is_none());
    assert!(reqs[1].peer_cert.is_some());
}

// --- certificate files -------------------------------------------------------------

#[test]
fn pki_files_have_the_documented_forms() {
    let dir = tempdir();
    let pki = TestPki::new(dir.path());
    let certs = |p: &std::path::Path| CertificateDer::pem_file_iter(p).unwrap().count();
    for p in [
        &pki.ca_cert,
        &pki.server_cert,
        &pki.client_cert,
        &pki.client_rsa_cert,
        &pki.wrong_ca_cert,
    ] {
        assert_eq!(certs(p), 1, "{}", p.display());
    }
    let key = |p: &std::path::Path| PrivateKeyDer::from_pem_file(p).unwrap();
    assert!(matches!(key(&pki.client_key), PrivateKeyDer::Pkcs8(_)));
    assert!(matches!(key(&pki.client_key_sec1), PrivateKeyDer::Sec1(_)));
    assert!(matches!(key(&pki.client_rsa_key), PrivateKeyDer::Pkcs8(_)));
    assert!(matches!(
        key(&pki.client_rsa_key_pkcs1),
        PrivateKeyDer::Pkcs1(_)
    ));
    assert!(matches!(key(&pki.server_key), PrivateKeyDer::Pkcs8(_)));

    // Every key form loads into a rustls signing key.
    let provider = rustls::crypto::ring::default_provider();
    for p in [
        &pki.client_key,
        &pki.client_key_sec1,
        &pki.client_rsa_key,
        &pki.client_rsa_key_pkcs1,
    ] {
        provider
            .key_provider
            .load_private_key(key(p))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }

    assert!(PrivateKeyDer::from_pem_file(&pki.encrypted_key).is_err());
    let enc = std::fs::read_to_string(&pki.encrypted_key).unwrap();
    assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    let legacy = std::fs::read_to_string(&pki.encrypted_legacy_key).unwrap();
    assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"));
    assert!(PrivateKeyDer::from_pem_file(&pki.garbage_pem).is_err());
    assert_eq!(
        certs(&pki.garbage_pem),
        1,
        "garbage is a well-formed PEM block"
    );
    assert_eq!(std::fs::metadata(&pki.empty_file).unwrap().len(), 0);
    assert_eq!(certs(&pki.empty_file), 0);
}

#[test]
fn the_log_capture_keeps_spans_with_their_last_field_values() {
    let logs = plugin_tests::logs::capture();
    let span = tracing::info_span!(
        "call",
        method = "VolumeDriver.List",
        attempt = tracing::field::Empty
    );
    span.record("attempt", 1u32);
    span.in_scope(|| tracing::warn!("inside"));
    span.record("attempt", 2u32);
    tracing::debug_span!("other").in_scope(|| {});
    let spans = logs.spans("call");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].fields["method"], "VolumeDriver.List");
    assert_eq!(spans[0].fields["attempt"], "2");
    assert_eq!(logs.spans("other").len(), 1);
    assert_eq!(logs.at(tracing::Level::WARN), ["inside"]);
}

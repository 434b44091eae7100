//! Fuzz target bodies for the plugin side, shared by `fuzz/` and the
//! corpus replay test (feature `fuzzing`), and [`serve_stream`], which
//! serves one connection over any byte stream (the fuzz target's and the
//! paused-clock tests' way in).
//!
//! A plugin faces whatever reaches its socket. Each `pub fn name(data:
//! &[u8])` feeds `data` to the code an engine (or anything else) drives and
//! panics when an invariant breaks; [`TARGETS`] lists them all so none goes
//! unreplayed. Handler panics are never part of a target: libFuzzer aborts
//! on any panic, even one the kit would catch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use plugin_proto::{Call, authz, ipam, log, metrics, network, volume};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conn::{self, Limits};
use crate::{Plugin, PluginError, Reply, Server, decode_request};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` file and
/// corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("server_http_stream", server_http_stream),
    ("server_decode_request", server_decode_request),
];

/// Serves one connection of `server`'s plugin over `io`, with its limits
/// (timeouts, caps), until the peer closes it or a limit ends it. No
/// listener, TLS, connection limit or shutdown is involved.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use plugin_server::{Plugin, Server};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let server = Server::new(Plugin::builder().build()?);
/// let (mut engine, plugin_end) = tokio::io::duplex(4096);
/// tokio::spawn(plugin_server::fuzzing::serve_stream(server, plugin_end));
/// engine.write_all(b"POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
/// let mut reply = String::new();
/// engine.read_to_string(&mut reply).await?;
/// assert!(reply.ends_with("{\"Implements\":[]}\n"));
/// # Ok(()) }
/// ```
pub async fn serve_stream<I>(server: Server, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    conn::serve(io, server.plugin, server.limits, std::future::pending()).await;
}

/// The caps the HTTP target serves with: small, so inputs reach them.
const FUZZ_LIMITS: Limits = Limits {
    max_body: 512,
    max_header_bytes: 1024,
    header_read_timeout: Some(Duration::from_secs(10)),
    body_read_timeout: Some(Duration::from_secs(10)),
};

/// The plugin the HTTP target talks to: a typed volume method, raw
/// handlers that echo, fail and stream, and `Plugin.Activate`.
fn fuzz_plugin() -> Result<Plugin, crate::BuildError> {
    Plugin::builder()
        .implements("VolumeDriver")
        .handle(|r: volume::CreateRequest| async move {
            if r.name.is_empty() {
                Err(PluginError::new("no name"))
            } else {
                Ok(plugin_proto::ErrResponse::default())
            }
        })
        .raw("Echo.Body", |body: Bytes| async move {
            // The body cap holds whatever the framing said.
            assert!(
                body.len() <= FUZZ_LIMITS.max_body,
                "a handler got {} bytes, over the {} cap",
                body.len(),
                FUZZ_LIMITS.max_body
            );
            Ok(Reply::bytes(body))
        })
        .raw("Fail.Teapot", |_| async move {
            Err(PluginError::with_status(
                http::StatusCode::IM_A_TEAPOT,
                "short and stout",
            ))
        })
        .raw("Stream.Three", |_| async move {
            Ok(Reply::stream(std::io::Cursor::new(
                b"one\ntwo\nthree\n".to_vec(),
            )))
        })
        .build()
}

thread_local! {
    static RUNTIME: Option<(tokio::runtime::Runtime, Arc<Plugin>)> = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .ok()
        .zip(fuzz_plugin().ok().map(Arc::new));
}

/// Arbitrary bytes as an HTTP/1 request stream into the real dispatcher
/// (hyper's server connection, the kit's limits, a [`Plugin`]), over an
/// in-memory stream the fuzzer then closes: never a panic; the connection
/// ends; everything written back is a sequence of well-formed HTTP/1.1
/// responses with a status the kit documents, each error in the plugin
/// convention (media type, `{"Err":…}`) unless hyper answered a head it
/// could not parse (`400`, `414`, `431`, no body); nothing follows a
/// response that said `connection: close`; a handler never sees a body
/// over the cap.
pub fn server_http_stream(data: &[u8]) {
    RUNTIME.with(|rt| {
        let Some((rt, plugin)) = rt else {
            panic!("cannot build the fuzzing runtime or plugin");
        };
        let out = rt.block_on(exchange(plugin.clone(), data));
        check_responses(&out);
    });
}

async fn exchange(plugin: Arc<Plugin>, data: &[u8]) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let serve = conn::serve(server, plugin, FUZZ_LIMITS, std::future::pending());
    let talk = async {
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let write = async {
            // The server may close early (a 400, a 413): later bytes go
            // nowhere, which is fine.
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        tokio::join!(write, read).1
    };
    let ((), out) = tokio::join!(serve, talk);
    out
}

/// Statuses the kit answers with.
const STATUSES: &[u16] = &[200, 400, 404, 405, 408, 413, 414, 418, 431, 500, 503];

fn check_responses(mut out: &[u8]) {
    let mut closed = false;
    while !out.is_empty() {
        assert!(
            !closed,
            "bytes after a `connection: close` response: {out:?}"
        );
        let head_end = find(out, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a response head without its end: {out:?}"));
        let head = std::str::from_utf8(&out[..head_end])
            .unwrap_or_else(|_| panic!("a response head that is not UTF-8: {out:?}"));
        out = &out[head_end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let (version, status) = status_line
            .split_once(' ')
            .and_then(|(v, rest)| Some((v, rest.get(..3)?.parse::<u16>().ok()?)))
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        assert!(
            version == "HTTP/1.1" || version == "HTTP/1.0",
            "not HTTP/1: {status_line:?}"
        );
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("a header line without a colon: {line:?}"));
            headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if status == 100 {
            // `Expect: 100-continue` answered; the real response follows.
            assert!(headers.is_empty(), "a 100 Continue with headers: {head}");
            continue;
        }
        assert!(STATUSES.contains(&status), "unexpected status {status}");
        closed = header("connection") == Some("close");
        let body = if let Some(len) = header("content-length") {
            let len: usize = len
                .parse()
                .unwrap_or_else(|_| panic!("bad content-length {len:?}"));
            assert!(
                out.len() >= len,
                "a body cut short: {len} declared, {} sent",
                out.len()
            );
            let (body, rest) = out.split_at(len);
            out = rest;
            body.to_vec()
        } else if header("transfer-encoding") == Some("chunked") {
            let (body, rest) = dechunk(out);
            out = rest;
            body
        } else {
            // Delimited by the end of the connection: only for HTTP/1.0
            // callers, who cannot take chunks.
            assert_eq!(version, "HTTP/1.0", "a body without a length: {head}");
            std::mem::take(&mut out).to_vec()
        };
        let parse_error = matches!(status, 400 | 414 | 431) && body.is_empty();
        if status >= 400 && status != 404 && !parse_error {
            assert_eq!(
                header("content-type"),
                Some(crate::CONTENT_TYPE),
                "an error not in the plugin convention: {head}"
            );
            let v: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("an error body that is not JSON ({e}): {body:?}"));
            assert!(v["Err"].is_string(), "an error body without Err: {v}");
        }
    }
}

fn dechunk(mut out: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut body = Vec::new();
    loop {
        let line_end = find(out, b"\r\n").unwrap_or_else(|| panic!("a chunk size cut short"));
        let size = std::str::from_utf8(&out[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .unwrap_or_else(|| panic!("a bad chunk size line: {:?}", &out[..line_end]));
        out = &out[line_end + 2..];
        assert!(out.len() >= size + 2, "a chunk cut short");
        body.extend_from_slice(&out[..size]);
        assert_eq!(&out[size..size + 2], b"\r\n", "a chunk without its CRLF");
        out = &out[size + 2..];
        if size == 0 {
            return (body, out);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes `body` as the request of one method, as the kit's typed
/// handlers do; an accepted request encodes as Go would and decodes back
/// equal by value (`plugin_proto::fuzzing::same_json`: an integral float
/// may come back as an integer, never as another float).
fn decode_one<T>(body: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default + PartialEq + std::fmt::Debug,
{
    let Ok(req) = decode_request::<T>(body) else {
        return;
    };
    let bytes = plugin_proto::encode_args(Some(&req))
        .unwrap_or_else(|e| panic!("a decoded request does not encode ({e}): {req:?}"));
    let again = decode_request::<T>(&bytes)
        .unwrap_or_else(|e| panic!("an encoded request does not decode ({e}): {bytes:?}"));
    if again != req {
        let same = match (serde_json::to_value(&again), serde_json::to_value(&req)) {
            (Ok(a), Ok(b)) => plugin_proto::fuzzing::same_json(&a, &b),
            _ => false,
        };
        assert!(
            same,
            "round trip through {bytes:?}: {req:?} came back as {again:?}"
        );
    }
}

macro_rules! decoders {
    ($($t:ty),* $(,)?) => {
        &[$((<$t as Call>::METHOD, decode_one::<$t> as Target)),*]
    };
}

/// Every method the kit decodes a typed request for, with its decoder.
const DECODERS: &[(&str, Target)] = decoders![
    volume::CreateRequest,
    volume::RemoveRequest,
    volume::PathRequest,
    volume::MountRequest,
    volume::UnmountRequest,
    volume::GetRequest,
    volume::ListRequest,
    volume::CapabilitiesRequest,
    network::GetCapabilitiesRequest,
    network::CreateNetworkRequest,
    network::AllocateNetworkRequest,
    network::FreeNetworkRequest,
    network::GwAllocCheckRequest,
    network::DeleteNetworkRequest,
    network::CreateEndpointRequest,
    network::EndpointOperInfoRequest,
    network::DeleteEndpointRequest,
    network::JoinRequest,
    network::LeaveRequest,
    network::ProgramExternalConnectivityRequest,
    network::RevokeExternalConnectivityRequest,
    network::DiscoverNewRequest,
    network::DiscoverDeleteRequest,
    ipam::GetCapabilitiesRequest,
    ipam::GetDefaultAddressSpacesRequest,
    ipam::RequestPoolRequest,
    ipam::ReleasePoolRequest,
    ipam::RequestAddressRequest,
    ipam::ReleaseAddressRequest,
    authz::AuthZReq,
    authz::AuthZRes,
    log::StartLoggingRequest,
    log::StopLoggingRequest,
    log::CapabilitiesRequest,
    metrics::StartMetricsRequest,
    metrics::StopMetricsRequest,
];

/// The first byte picks a method (modulo their number), the rest is its
/// request body, decoded with [`decode_request`]: never a panic; an
/// accepted request, encoded as Go's `json.Encoder` would, decodes back
/// equal (what a plugin reads is what the engine meant).
pub fn server_decode_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let all = DECODERS.len() + 1;
    match usize::from(pick) % all {
        i if i < DECODERS.len() => (DECODERS[i].1)(body),
        // `ReadLogs` streams its reply, so it is no `Call`.
        _ => decode_one::<log::ReadLogsRequest>(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_names_a_distinct_method() {
        let mut names: Vec<&str> = DECODERS.iter().map(|(m, _)| *m).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DECODERS.len());
    }

    fn run(input: &[u8]) -> Vec<u8> {
        RUNTIME.with(|rt| {
            let (rt, plugin) = rt.as_ref().unwrap();
            rt.block_on(exchange(plugin.clone(), input))
        })
    }

    #[test]
    fn the_http_target_reads_every_answer() {
        let out = run(b"POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /Stream.Three HTTP/1.1\r\nHost: x\r\n\r\n\
              GET / HTTP/1.1\r\n\r\n");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("\r\n\r\n{\"Implements\":[\"VolumeDriver\"]}\n"),
            "{text}"
        );
        assert!(text.contains("one\ntwo\nthree\n"), "{text}");
        assert!(
            text.contains("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        check_responses(&out);
    }

    #[test]
    #[should_panic(expected = "a body cut short")]
    fn the_checker_refuses_a_body_cut_short() {
        check_responses(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc");
    }

    #[test]
    #[should_panic(expected = "not in the plugin convention")]
    fn the_checker_refuses_an_error_without_the_convention() {
        check_responses(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\nno");
    }
}

//! One call to a plugin with the reply's raw bytes kept: the request goes
//! out through the real client (Docker's bytes, Docker's error texts), on a
//! connection of its own whose incoming bytes are recorded, so the status
//! line, headers and body the plugin actually wrote can be judged.
//!
//! Over TLS the recorded bytes would be ciphertext; there the exchange has
//! the status and body as the client saw them, and no headers.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use plugin_registry::client::{Client, PluginIo};
use plugin_registry::discovery::PluginSpec;
use plugin_registry::proto::{Endpoint, RetryPolicy, retry::go_duration};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// More than any reply a check provokes; the rest is not kept.
const RECORD_CAP: usize = 1 << 20;

/// What happened to one call.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) method: String,
    /// The HTTP status, when a reply head arrived.
    pub(crate) status: Option<u16>,
    /// Reply headers as written (names lower-cased); empty over TLS.
    pub(crate) headers: Vec<(String, String)>,
    /// The reply body as written (de-chunked).
    pub(crate) body: Bytes,
    pub(crate) latency: Duration,
    /// The client's error, in Docker's words, when the call failed.
    pub(crate) error: Option<String>,
    /// No reply within the bound.
    pub(crate) timed_out: bool,
}

impl Exchange {
    /// A 200 reply arrived.
    pub(crate) fn ok(&self) -> bool {
        self.status == Some(200) && self.error.is_none()
    }

    /// The body as JSON, if it is JSON.
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        let mut values = serde_json::Deserializer::from_slice(&self.body).into_iter();
        values.next().and_then(Result::ok)
    }

    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `body` to `method` once (no retry), bounded by `bound`.
pub(crate) async fn exchange(
    spec: &PluginSpec,
    method: &str,
    body: Bytes,
    bound: Duration,
) -> Exchange {
    let record = Arc::new(Mutex::new(Vec::new()));
    let builder = Client::builder()
        .retry(RetryPolicy::none())
        .pool_max_idle(0);
    let client = match Dial::of(spec) {
        Some(dial) => {
            let record = record.clone();
            Ok(
                builder.build_with_transport(spec.address().clone(), move || {
                    let (dial, record) = (dial.clone(), record.clone());
                    async move {
                        Ok(Tee {
                            io: dial.connect().await?,
                            record,
                        })
                    }
                }),
            )
        }
        None => builder.build(spec.address(), spec.tls()),
    };
    let start = Instant::now();
    let mut exchange = Exchange {
        method: method.to_owned(),
        status: None,
        headers: Vec::new(),
        body: Bytes::new(),
        latency: Duration::ZERO,
        error: None,
        timed_out: false,
    };
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            exchange.error = Some(e.to_string());
            return exchange;
        }
    };
    let call = client
        .call(method)
        .body(body)
        .timeout(bound)
        .retry_connection_refused(false);
    let reply = tokio::time::timeout(bound, call).await;
    exchange.latency = start.elapsed();
    match reply {
        Ok(Ok(body)) => {
            exchange.status = Some(200);
            exchange.body = body;
        }
        Ok(Err(e)) => {
            exchange.status = e.status();
            exchange.timed_out = e.is_timeout();
            exchange.body = e
                .status_error()
                .map(|s| Bytes::from(s.message().to_owned()))
                .unwrap_or_default();
            exchange.error = Some(e.to_string());
        }
        Err(_) => {
            exchange.timed_out = true;
            exchange.error = Some(format!("{method}: no answer within {}", go_duration(bound)));
        }
    }
    if exchange.timed_out && exchange.error.is_none() {
        exchange.error = Some(format!("{method}: no answer within {}", go_duration(bound)));
    }
    let raw = record.lock().map(|r| r.clone()).unwrap_or_default();
    if let Some(reply) = parse_reply(&raw) {
        exchange.status = Some(reply.status);
        exchange.headers = reply.headers;
        exchange.body = Bytes::from(reply.body);
    }
    exchange
}

/// Where a recorded connection goes: plain transports only (over TLS the
/// bytes read are ciphertext).
#[derive(Clone)]
enum Dial {
    Unix(std::path::PathBuf),
    Tcp(String),
}

impl Dial {
    fn of(spec: &PluginSpec) -> Option<Dial> {
        match spec.address().endpoint() {
            _ if spec.address().is_tls() => None,
            Endpoint::Unix(path) => Some(Dial::Unix(path.clone())),
            Endpoint::Tcp(host_port) => Some(Dial::Tcp(host_port.clone())),
            _ => None,
        }
    }

    async fn connect(&self) -> io::Result<Box<dyn PluginIo>> {
        Ok(match self {
            Dial::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Dial::Tcp(host_port) => Box::new(tokio::net::TcpStream::connect(host_port).await?),
        })
    }
}

/// A connection that keeps a copy of what it reads.
struct Tee<S> {
    io: S,
    record: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tee<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll
            && let Ok(mut record) = self.record.lock()
        {
            let new = &buf.filled()[before..];
            let room = RECORD_CAP.saturating_sub(record.len());
            record.extend_from_slice(&new[..new.len().min(room)]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tee<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A reply as the plugin wrote it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawReply {
    pub(crate) status: u16,
    /// Names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// The status, headers and body of the first HTTP/1.x reply in `raw`;
/// `None` when no complete head arrived.
pub(crate) fn parse_reply(raw: &[u8]) -> Option<RawReply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(RawReply {
        status,
        headers,
        body,
    })
}

/// The data of a chunked body, as far as it is well formed.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|&s| s > 0) else {
            break;
        };
        let data = &rest[eol + 2..];
        body.extend_from_slice(&data[..size.min(data.len())]);
        rest = data.get(size + 2..).unwrap_or_default();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_with_lengths_and_chunks() {
        let raw = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<h1>!extra";
        let reply = parse_reply(raw).unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.headers[0],
            ("content-type".to_owned(), "text/html".to_owned())
        );
        assert_eq!(reply.body, b"<h1>!");

        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_reply(raw).unwrap().body, b"{\"a\":1}");

        assert_eq!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-"), None);
    }
}

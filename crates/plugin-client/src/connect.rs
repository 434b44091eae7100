//! The connector: how a connection to a plugin is made (spec §3.2 step 4;
//! checklist 18–20).
//!
//! The pool asks the [`Dialer`] for each new connection; it dials the
//! address the client was built for: a unix socket, TCP (plain or TLS, TLS
//! only for `https://`), a named pipe on Windows, or a caller-supplied
//! [`Transport`]. Every dial is bounded by the dial timeout (Docker: 10 s),
//! and failures carry Go's `dial unix <path>: connect: <errno>` texts.

use std::future::Future;
use std::io;
#[cfg(unix)]
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, MISSING, REFUSED, TIMEOUT, TLS, errno_text};
use crate::tls::TlsSetup;

/// A byte stream to a plugin, as a [`Transport`] returns it.
pub trait PluginIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> PluginIo for T {}

/// What a [`Transport`]'s dial resolves to.
pub type DialFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn PluginIo>>> + Send>>;

/// A caller-supplied way to reach a plugin (Docker's
/// `NewClientWithTransport`): vsock, an ssh tunnel, an in-memory pipe in a
/// test. Each call opens one new connection; the client pools them.
///
/// Any `Fn() -> impl Future<Output = io::Result<S>>` where `S` is a
/// [`PluginIo`] is a transport:
///
/// ```no_run
/// # async fn f() -> Result<(), plugin_client::Error> {
/// use plugin_client::Client;
/// use plugin_proto::Address;
///
/// let addr = Address::parse("unix:///run/docker/plugins/x.sock").expect("valid");
/// let client = Client::with_transport(addr, || async {
///     tokio::net::UnixStream::connect("/somewhere/else.sock").await
/// });
/// # Ok(()) }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Opens a new connection to the plugin.
    fn dial(&self) -> DialFuture;
}

impl<F, Fut, S> Transport for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<S>> + Send + 'static,
    S: PluginIo,
{
    fn dial(&self) -> DialFuture {
        let fut = self();
        Box::pin(async move { Ok(Box::new(fut.await?) as Box<dyn PluginIo>) })
    }
}

/// Where the connector dials.
pub(crate) enum Target {
    #[cfg(unix)]
    Unix(PathBuf),
    Tcp {
        addr: String,
        tls: Option<TlsSetup>,
    },
    #[cfg(windows)]
    Pipe(String),
    Custom(Arc<dyn Transport>),
}

/// A failed dial, with Go's text; the source of the call's connect error.
#[derive(Debug)]
pub(crate) struct ConnectFailure {
    pub(crate) text: String,
    pub(crate) flags: u8,
    source: Option<io::Error>,
}

impl ConnectFailure {
    fn io(prefix: &str, err: io::Error) -> ConnectFailure {
        let mut flags = match err.kind() {
            io::ErrorKind::ConnectionRefused => REFUSED,
            io::ErrorKind::NotFound => MISSING,
            io::ErrorKind::TimedOut => TIMEOUT,
            _ => 0,
        };
        if crate::tls::is_tls_error(&err) {
            flags |= TLS;
        }
        ConnectFailure {
            text: format!("{prefix}{}", errno_text(&err)),
            flags,
            source: Some(err),
        }
    }

    fn timeout(what: &str) -> ConnectFailure {
        ConnectFailure {
            text: format!("{what}: i/o timeout"),
            flags: TIMEOUT,
            source: None,
        }
    }
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ConnectFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl From<ConnectFailure> for Error {
    fn from(failure: ConnectFailure) -> Error {
        let (text, flags) = (failure.text.clone(), failure.flags);
        Error::connect(text).with_flags(flags).with_source(failure)
    }
}

/// How the pool opens a connection to the plugin.
pub(crate) struct Dialer {
    target: Target,
    dial_timeout: Duration,
}

impl Dialer {
    pub(crate) fn new(target: Target, dial_timeout: Duration) -> Dialer {
        Dialer {
            target,
            dial_timeout,
        }
    }

    /// Opens one connection, within the dial timeout.
    pub(crate) async fn dial(&self) -> Result<PluginStream, ConnectFailure> {
        let limit = self.dial_timeout;
        match &self.target {
            #[cfg(unix)]
            Target::Unix(path) => {
                let what = format!("dial unix {}", path.display());
                match tokio::time::timeout(limit, tokio::net::UnixStream::connect(path)).await {
                    Ok(Ok(s)) => Ok(PluginStream::Unix(s)),
                    Ok(Err(e)) => Err(ConnectFailure::io(&format!("{what}: connect: "), e)),
                    Err(_) => Err(ConnectFailure::timeout(&what)),
                }
            }
            Target::Tcp { addr, tls } => {
                let tcp = dial_tcp(addr, limit).await?;
                match tls {
                    None => Ok(PluginStream::Tcp(tcp)),
                    // Go leaves the handshake unbounded (no
                    // TLSHandshakeTimeout on a bare http.Transport); a
                    // server that never answers would hang the call, so
                    // the handshake gets the dial timeout too.
                    Some(tls) => match tokio::time::timeout(limit, tls.handshake(tcp)).await {
                        Ok(Ok(s)) => Ok(PluginStream::Tls(Box::new(s))),
                        Ok(Err(e)) => {
                            let mut f = ConnectFailure::io(tls_prefix(&e), e);
                            f.flags |= TLS;
                            Err(f)
                        }
                        Err(_) => Err(ConnectFailure {
                            text: "net/http: TLS handshake timeout".to_owned(),
                            flags: TIMEOUT | TLS,
                            source: None,
                        }),
                    },
                }
            }
            #[cfg(windows)]
            Target::Pipe(name) => {
                let what = format!("open {name}");
                match tokio::time::timeout(limit, open_pipe(name)).await {
                    Ok(Ok(p)) => Ok(PluginStream::Pipe(p)),
                    Ok(Err(e)) => Err(ConnectFailure::io(&format!("{what}: "), e)),
                    Err(_) => Err(ConnectFailure::timeout(&what)),
                }
            }
            Target::Custom(t) => match tokio::time::timeout(limit, t.dial()).await {
                Ok(Ok(io)) => Ok(PluginStream::Custom(io)),
                Ok(Err(e)) => Err(ConnectFailure::io("dial: ", e)),
                Err(_) => Err(ConnectFailure::timeout("dial")),
            },
        }
    }
}

fn tls_prefix(e: &io::Error) -> &'static str {
    if crate::tls::is_tls_error(e) {
        "tls: "
    } else {
        "tls handshake: "
    }
}

/// Go's TCP dial: resolve, then try each address in turn within one
/// deadline; the first failure is reported, naming the resolved address
/// (`dial tcp 127.0.0.1:1: connect: connection refused`).
async fn dial_tcp(addr: &str, limit: Duration) -> Result<TcpStream, ConnectFailure> {
    let deadline = tokio::time::Instant::now() + limit;
    let resolved = match tokio::time::timeout_at(deadline, tokio::net::lookup_host(addr)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            return Err(ConnectFailure::io(&format!("dial tcp: lookup {host}: "), e));
        }
        Err(_) => return Err(ConnectFailure::timeout(&format!("dial tcp {addr}"))),
    };
    let mut first_err = None;
    for sa in resolved {
        match tokio::time::timeout_at(deadline, TcpStream::connect(sa)).await {
            Ok(Ok(s)) => {
                // Go sets TCP_NODELAY on every TCP connection.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert_with(|| {
                    ConnectFailure::io(&format!("dial tcp {sa}: connect: "), e)
                });
            }
            Err(_) => {
                return Err(
                    first_err.unwrap_or_else(|| ConnectFailure::timeout(&format!("dial tcp {sa}")))
                );
            }
        }
    }
    Err(first_err.unwrap_or_else(|| ConnectFailure {
        text: format!("dial tcp: lookup {addr}: no such host"),
        flags: 0,
        source: None,
    }))
}

#[cfg(windows)]
async fn open_pipe(name: &str) -> io::Result<tokio::net::windows::named_pipe::NamedPipeClient> {
    // `//./pipe/x` is how the address spells `\\.\pipe\x`.
    let path = name.replace('/', "\\");
    loop {
        match tokio::net::windows::named_pipe::ClientOptions::new().open(&path) {
            // ERROR_PIPE_BUSY: every instance is taken; tokio's documented
            // idiom is to wait a little and try again.
            Err(e) if e.raw_os_error() == Some(231) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// One connection to a plugin, whatever carries it.
pub(crate) enum PluginStream {
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(windows)]
    Pipe(tokio::net::windows::named_pipe::NamedPipeClient),
    Custom(Box<dyn PluginIo>),
}

/// Forwards a method to whichever stream is inside; every variant is
/// `Unpin`, so `Pin::new` is enough.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            #[cfg(unix)]
            PluginStream::Unix($s) => $e,
            PluginStream::Tcp($s) => $e,
            PluginStream::Tls($s) => $e,
            #[cfg(windows)]
            PluginStream::Pipe($s) => $e,
            PluginStream::Custom($s) => $e,
        }
    };
}

impl AsyncRead for PluginStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for PluginStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            #[cfg(unix)]
            PluginStream::Unix(s) => s.is_write_vectored(),
            PluginStream::Tcp(s) => s.is_write_vectored(),
            PluginStream::Tls(s) => s.is_write_vectored(),
            #[cfg(windows)]
            PluginStream::Pipe(s) => s.is_write_vectored(),
            PluginStream::Custom(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

//! The server: accept loops, one HTTP/1.1 connection task per client (at
//! most [`Server::max_connections`] of them), and the shutdown sequence
//! that leaves no stale socket behind.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::conn::{self, Limits};
use crate::listen::{Listener, OwnedFile, Socket};
use crate::plugin::BoxFuture;
use crate::{Bound, Plugin, ServeError, SpecFile, TlsConfig};

/// How long in-flight calls may run after shutdown starts, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The default cap on request bodies (authz requests carry the engine's
/// request bodies, which Docker caps at 1 MiB).
pub const DEFAULT_MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// How long a request head may take to arrive, from its first byte, by
/// default. Docker's client writes a head in one go.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may take to arrive, from the end of its head,
/// by default.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default cap on a request head (request line and headers). Docker's
/// heads are a few hundred bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// How many connections are served at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How many connections over the limit are answered `503` at once; more
/// are closed unanswered, so a flood costs a bounded number of tasks.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves a [`Plugin`] until SIGINT, SIGTERM or a caller's future.
///
/// Shutdown stops accepting, lets in-flight calls finish within
/// [`shutdown_timeout`](Server::shutdown_timeout) (idle keep-alive
/// connections are closed at once), then removes the socket file and spec
/// file this server created — if they are still the files it created.
#[must_use = "a server does nothing until `serve` is awaited"]
pub struct Server {
    pub(crate) plugin: Arc<Plugin>,
    tls: Option<TlsConfig>,
    spec: Option<SpecFile>,
    shutdown_timeout: Duration,
    signals: bool,
    shutdown: Option<BoxFuture<()>>,
    pub(crate) limits: Limits,
    max_connections: usize,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("plugin", &self.plugin)
            .field("tls", &self.tls.is_some())
            .field("spec", &self.spec)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("signals", &self.signals)
            .field("limits", &self.limits)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `plugin` with the defaults: no TLS, no spec file,
    /// SIGINT and SIGTERM handled, [`DEFAULT_SHUTDOWN_TIMEOUT`], and the
    /// limits [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_HEADER_READ_TIMEOUT`],
    /// [`DEFAULT_BODY_READ_TIMEOUT`], [`DEFAULT_MAX_HEADER_BYTES`] and
    /// [`DEFAULT_MAX_REQUEST_BODY`].
    pub fn new(plugin: impl Into<Arc<Plugin>>) -> Server {
        Server {
            plugin: plugin.into(),
            tls: None,
            spec: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            signals: true,
            shutdown: None,
            limits: Limits {
                max_body: DEFAULT_MAX_REQUEST_BODY,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
                header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
                body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
            },
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Serves TLS on tcp listeners (a unix listener is then an error).
    pub fn tls(mut self, tls: TlsConfig) -> Server {
        self.tls = Some(tls);
        self
    }

    /// Writes `spec` for the first listener when serving starts, and
    /// removes it when serving stops.
    pub fn spec_file(mut self, spec: SpecFile) -> Server {
        self.spec = Some(spec);
        self
    }

    /// How long in-flight calls may run once shutdown starts; calls still
    /// running then are cut off.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Server {
        self.shutdown_timeout = timeout;
        self
    }

    /// Also shuts down when `signal` completes (tests, embedding).
    pub fn shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Server {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Whether SIGINT and SIGTERM start shutdown (default `true`). Turn it
    /// off when the embedding program handles signals itself; tokio's
    /// handlers, once installed, stay for the life of the process.
    pub fn handle_signals(mut self, yes: bool) -> Server {
        self.signals = yes;
        self
    }

    /// The largest request body accepted. A larger one is answered `413`
    /// and the connection closed: refused from its `Content-Length` before
    /// any of it is read, or stopped at the cap while reading a chunked
    /// one, so no more than `bytes` of it is ever buffered.
    pub fn max_request_body(mut self, bytes: usize) -> Server {
        self.limits.max_body = bytes;
        self
    }

    /// The largest request head (request line and headers) accepted; a
    /// larger one is answered `431` and the connection closed. Default
    /// [`DEFAULT_MAX_HEADER_BYTES`].
    pub fn max_header_bytes(mut self, bytes: usize) -> Server {
        self.limits.max_header_bytes = bytes;
        self
    }

    /// How long a request head may take to arrive, counted from its first
    /// byte; a head still incomplete then is answered `408` and the
    /// connection closed (`None`: no limit). Default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`].
    ///
    /// An idle keep-alive connection, with no byte of a next request, is
    /// never timed out: Docker's client keeps connections pooled, and one
    /// closed under it may be reused for a call that Docker then resends
    /// with an empty body (moby#33412).
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Server {
        self.limits.header_read_timeout = timeout.into();
        self
    }

    /// How long a request body may take to arrive, counted from the end of
    /// its head; a body still incomplete then is answered `408` and the
    /// connection closed (`None`: no limit). Default
    /// [`DEFAULT_BODY_READ_TIMEOUT`].
    pub fn body_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Server {
        self.limits.body_read_timeout = timeout.into();
        self
    }

    /// How many connections are served at once, over all listeners
    /// (at least 1). A connection over the limit is accepted, its request
    /// answered `503` with `{"Err":"plugin is busy: …"}`, and closed; the
    /// engine sees `<Method>: plugin is busy: …` and does not retry. Up to
    /// 64 such answers are in flight at once; connections beyond those are
    /// closed unanswered. Default [`DEFAULT_MAX_CONNECTIONS`].
    ///
    /// Idle keep-alive connections count, since they are never timed out:
    /// keep the limit well above the number of engines (each pools a few
    /// connections).
    pub fn max_connections(mut self, n: usize) -> Server {
        self.max_connections = n.max(1);
        self
    }

    /// Serves on `listener` until shutdown. Must run inside a tokio
    /// runtime.
    pub async fn serve(self, listener: Listener) -> Result<(), ServeError> {
        self.serve_all(vec![listener]).await
    }

    /// Serves what [`ListenConfig::bind`](crate::ListenConfig::bind) made
    /// until shutdown, with its spec file and TLS settings (they replace
    /// any set with [`spec_file`](Server::spec_file) or
    /// [`tls`](Server::tls)).
    pub async fn serve_bound(mut self, bound: Bound) -> Result<(), ServeError> {
        let Bound {
            listeners,
            spec,
            tls,
        } = bound;
        if spec.is_some() {
            self.spec = spec;
        }
        if tls.is_some() {
            self.tls = tls;
        }
        self.serve_all(listeners).await
    }

    /// Serves on every listener (systemd may pass several) until shutdown.
    pub async fn serve_all(self, listeners: Vec<Listener>) -> Result<(), ServeError> {
        let Server {
            plugin,
            tls,
            spec,
            shutdown_timeout,
            signals,
            shutdown,
            limits,
            max_connections,
        } = self;
        let first = listeners.first().ok_or(ServeError::NoListener)?;
        if tls.is_some() && listeners.iter().any(Listener::is_unix) {
            let addr = listeners
                .iter()
                .find(|l| l.is_unix())
                .and_then(|l| l.local_addr().ok())
                .map(|a| a.to_string())
                .unwrap_or_else(|| "a unix socket".into());
            return Err(ServeError::TlsOnUnix(addr));
        }
        let first_addr = first
            .local_addr()
            .map_err(|e| ServeError::io("read listener address", None, e))?;

        // Files to remove at the end; dropped last, after the connections.
        let mut owned: Vec<OwnedFile> = Vec::new();
        let mut sockets = Vec::new();
        for l in listeners {
            let Listener { socket, owned: o } = l;
            owned.extend(o);
            sockets.push(socket);
        }
        // Signal handlers first: failing to install them is an error
        // before anything is written.
        let mut stop = stop_signal(signals, shutdown)?;
        if let Some(spec) = &spec {
            owned.push(spec.write(&first_addr, tls.is_some(), &plugin.manifest().implements)?);
        }

        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let (conn_tx, mut conn_rx) = mpsc::channel::<Conn>(64);
        let mut accept_tasks = JoinSet::new();
        for socket in sockets {
            let tx = conn_tx.clone();
            match socket {
                Socket::Unix(l) => {
                    let l = tokio::net::UnixListener::from_std(l)
                        .map_err(|e| ServeError::io("register unix listener", None, e))?;
                    accept_tasks.spawn(async move {
                        loop {
                            match l.accept().await {
                                Ok((s, _)) => {
                                    if tx.send(Conn::Unix(s)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => accept_error(e).await,
                            }
                        }
                    });
                }
                Socket::Tcp(l) => {
                    let l = tokio::net::TcpListener::from_std(l)
                        .map_err(|e| ServeError::io("register tcp listener", None, e))?;
                    accept_tasks.spawn(async move {
                        loop {
                            match l.accept().await {
                                Ok((s, _)) => {
                                    let _ = s.set_nodelay(true);
                                    if tx.send(Conn::Tcp(s)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => accept_error(e).await,
                            }
                        }
                    });
                }
            }
        }
        drop(conn_tx);
        tracing::info!(address = %first_addr, implements = ?plugin.manifest().implements, "plugin serving");

        let (stop_tx, stop_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(max_connections));
        let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
        let mut at_limit = false;
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some(conn) = conn_rx.recv() => {
                    let mode = match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            at_limit = false;
                            Mode::Serve(plugin.clone(), permit)
                        }
                        Err(_) => {
                            // Once per episode: a flood must not flood the log.
                            if !at_limit {
                                tracing::warn!(max_connections, "connection limit reached; refusing connections with 503");
                                at_limit = true;
                            }
                            match refusals.clone().try_acquire_owned() {
                                Ok(permit) => Mode::Refuse(max_connections, permit),
                                Err(_) => {
                                    tracing::debug!("too many refusals in flight; closing a connection unanswered");
                                    continue;
                                }
                            }
                        }
                    };
                    conns.spawn(serve_conn(conn, mode, limits, acceptor.clone(), stop_rx.clone()));
                }
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "connection task panicked");
                    }
                }
            }
        }

        tracing::info!("plugin shutting down");
        // Stop accepting: the listening sockets close with their tasks.
        accept_tasks.shutdown().await;
        drop(conn_rx);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(shutdown_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = conns.len(),
                "in-flight calls did not finish in {shutdown_timeout:?}; cutting them off"
            );
            conns.shutdown().await;
        }
        drop(owned);
        Ok(())
    }
}

/// The future that ends serving: a signal or the caller's future.
fn stop_signal(signals: bool, user: Option<BoxFuture<()>>) -> Result<BoxFuture<()>, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let user = user.unwrap_or_else(|| Box::pin(std::future::pending()));
    if !signals {
        return Ok(user);
    }
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServeError::io("install SIGTERM handler", None, e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServeError::io("install SIGINT handler", None, e))?;
    Ok(Box::pin(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
            () = user => {}
        }
    }))
}

/// Accept errors are transient (out of descriptors, a connection aborted
/// before it was accepted): log, pause briefly so a descriptor shortage
/// does not spin, and keep accepting.
async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Resolves once shutdown starts (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it right here.
    let _ = stop.wait_for(|s| *s).await;
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// What a connection task does with its connection; the permit it holds
/// is released when the task ends.
enum Mode {
    Serve(Arc<Plugin>, OwnedSemaphorePermit),
    Refuse(usize, OwnedSemaphorePermit),
}

async fn serve_conn(
    conn: Conn,
    mode: Mode,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    match (conn, tls) {
        (Conn::Unix(s), _) => drive(s, mode, limits, stop).await,
        (Conn::Tcp(s), None) => drive(s, mode, limits, stop).await,
        (Conn::Tcp(s), Some(acceptor)) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(s));
            let stream = tokio::select! {
                r = handshake => r,
                () = stopped(&mut stop) => return,
            };
            match stream {
                Ok(Ok(tls_stream)) => drive(tls_stream, mode, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn drive<I>(io: I, mode: Mode, limits: Limits, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match mode {
        Mode::Serve(plugin, _permit) => {
            conn::serve(io, plugin, limits, async move { stopped(&mut stop).await }).await;
        }
        Mode::Refuse(max_connections, _permit) => conn::refuse(io, limits, max_connections).await,
    }
}

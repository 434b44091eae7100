//! One connection: HTTP/1.1 over any byte stream, with the limits that
//! keep a hostile or broken caller from holding the plugin hostage.
//!
//! - A request head must arrive within the header-read timeout, counted
//!   from its first byte; a head that stalls is answered `408` and the
//!   connection closed. An idle keep-alive connection is never timed:
//!   Docker's client pools connections indefinitely, and a pooled
//!   connection the plugin closes under it is one Docker may resend a call
//!   on with an empty body (moby#33412).
//! - A head larger than the header cap is answered `431` by hyper; a
//!   malformed one `400`; both close the connection.
//! - Body rules (cap, read timeout) are the request handler's
//!   (`http.rs`).
//! - A connection over the server's limit is answered `503` and closed.
//!
//! Must never: buffer more than the caps allow, let one connection's
//! misbehaviour touch another, or close an idle connection on a timer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::reply::{CONTENT_TYPE, OutBody};
use crate::{Plugin, PluginError};

/// How long the kit spends answering a connection it gives up on (`408`
/// to a stalled head, `503` over the connection limit) before dropping it:
/// a caller that reads nothing must not keep the answer's task alive.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// The per-connection limits a [`Server`](crate::Server) is configured
/// with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest request body, in bytes.
    pub(crate) max_body: usize,
    /// Largest request head (request line and headers), in bytes.
    pub(crate) max_header_bytes: usize,
    /// From a head's first byte to its end.
    pub(crate) header_read_timeout: Option<Duration>,
    /// From a head's end to the end of its body.
    pub(crate) body_read_timeout: Option<Duration>,
}

/// Where a connection is in its request cycle, as far as timing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request with no byte of it read: not timed.
    Idle,
    /// Bytes of a request head have been read since this instant.
    Head(Instant),
    /// A request is being answered (body read, handler, response write).
    Busy,
}

/// The stream, reporting the first byte of each request head.
///
/// Bytes read while a request is being answered (its body, or the next
/// pipelined request, which hyper buffers) do not start the head timer. A
/// partial head pipelined behind a whole request is then not timed until
/// more of it arrives: such a connection holds no more than an idle one,
/// which the connection limit bounds.
struct Tracked<I> {
    io: I,
    phase: Arc<watch::Sender<Phase>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.phase.send_if_modified(|p| {
                let idle = *p == Phase::Idle;
                if idle {
                    *p = Phase::Head(Instant::now());
                }
                idle
            });
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A response body that marks the connection idle once hyper is done
/// with it (written out, or dropped with the connection).
struct IdleWhenDone {
    body: OutBody,
    phase: Arc<watch::Sender<Phase>>,
}

impl Drop for IdleWhenDone {
    fn drop(&mut self) {
        set_quietly(&self.phase, Phase::Idle);
    }
}

/// Leaving a head (`Busy`, `Idle`) is recorded without waking the
/// watcher: only a head's start needs it awake, and it checks the phase
/// again when its timer fires. Each wake-up made the connection's task go
/// through the scheduler and poll hyper once more on every request.
fn set_quietly(phase: &watch::Sender<Phase>, next: Phase) {
    phase.send_if_modified(|p| {
        *p = next;
        false
    });
}

impl Body for IdleWhenDone {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Resolves when a request head has been arriving for longer than
/// `limit`. Woken when a head starts; the end of a head is set quietly
/// (`set_quietly`), so the phase is checked again when the timer fires.
async fn head_timed_out(phase: &mut watch::Receiver<Phase>, limit: Duration) {
    loop {
        let current = *phase.borrow_and_update();
        let changed = match current {
            Phase::Head(start) => tokio::select! {
                () = tokio::time::sleep_until(start + limit) => {
                    if *phase.borrow() == current {
                        return;
                    }
                    continue;
                }
                r = phase.changed() => r,
            },
            Phase::Idle | Phase::Busy => phase.changed().await,
        };
        if changed.is_err() {
            // The connection is gone; its own future ends the select.
            std::future::pending::<()>().await;
        }
    }
}

/// Serves `io` until the caller closes it, a limit ends it, or `stop`
/// resolves (then the call in flight, if any, finishes and the connection
/// closes; an idle one closes at once).
pub(crate) async fn serve<I, F>(io: I, plugin: Arc<Plugin>, limits: Limits, stop: F)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Future<Output = ()>,
{
    let (phase_tx, mut phase_rx) = watch::channel(Phase::Idle);
    let phase = Arc::new(phase_tx);
    let service = {
        let phase = phase.clone();
        service_fn(move |req| {
            set_quietly(&phase, Phase::Busy);
            let phase = phase.clone();
            let plugin = plugin.clone();
            async move {
                let resp = crate::http::handle(plugin, limits, req).await;
                Ok::<_, std::convert::Infallible>(resp.map(|body| IdleWhenDone { body, phase }))
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // A caller that shuts down its write side after its request
        // (`printf … | nc -N`) still gets its answers.
        .half_close(true)
        // hyper's own header timer also runs while a connection is idle;
        // ours (`head_timed_out`) starts at a head's first byte.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF))
        .max_header_size(limits.max_header_bytes);
    let tracked = Tracked {
        io,
        phase: phase.clone(),
    };
    drop(phase);
    let mut conn = builder.serve_connection(TokioIo::new(tracked), service);
    let phase_now = phase_rx.clone();
    let head_timeout = async {
        match limits.header_read_timeout {
            Some(limit) => head_timed_out(&mut phase_rx, limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(head_timeout, stop);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            r = &mut conn => break r,
            () = &mut stop, if !stopping => {
                if matches!(*phase_now.borrow(), Phase::Head(_)) {
                    // A head only partly sent: no engine writes one that
                    // way, and hyper would wait for the rest.
                    let io = conn.into_parts().io.into_inner().io;
                    farewell(io, StatusCode::SERVICE_UNAVAILABLE, "plugin is shutting down").await;
                    return;
                }
                // Finish the call in flight, if any, then close; an idle
                // connection closes at once.
                Pin::new(&mut conn).graceful_shutdown();
                stopping = true;
            }
            () = &mut head_timeout => {
                // hyper is between requests, reading a head: nothing of its
                // own is being written, so the stream is free for the 408.
                let io = conn.into_parts().io.into_inner().io;
                let limit = limits.header_read_timeout.unwrap_or_default();
                tracing::debug!(?limit, "request head not received in time; closing the connection");
                let message = format!("request head not received within {limit:?}");
                farewell(io, StatusCode::REQUEST_TIMEOUT, &message).await;
                return;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// hyper refuses a `max_buf_size` below 8 KiB; a smaller header cap is
/// still applied through `max_header_size`.
const MIN_BUF: usize = 8192;

/// Answers a connection over the server's limit with `503` (after reading
/// its request head, so the caller sees a response rather than a reset)
/// and closes it.
pub(crate) async fn refuse<I>(io: I, limits: Limits, max_connections: usize)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let message =
        format!("plugin is busy: it already serves its maximum of {max_connections} connections");
    let service = service_fn(move |_req| {
        let mut resp = crate::http::error_response(&PluginError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            message.clone(),
        ));
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        std::future::ready(Ok::<_, std::convert::Infallible>(resp))
    });
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(false)
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF))
        .max_header_size(limits.max_header_bytes);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let budget = limits
        .header_read_timeout
        .map_or(FAREWELL_TIMEOUT, |t| t.min(FAREWELL_TIMEOUT));
    match tokio::time::timeout(budget, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "refused connection ended with an error"),
        Err(_) => tracing::debug!("refused connection sent no request in time"),
    }
}

/// Writes a last response in the plugin convention straight to the stream
/// and closes it, within [`FAREWELL_TIMEOUT`].
async fn farewell<I: AsyncWrite + Unpin>(mut io: I, status: StatusCode, message: &str) {
    let resp: Response<OutBody> =
        crate::http::error_response(&PluginError::with_status(status, message));
    let body = match resp.into_body() {
        OutBody::Full(b) => b.unwrap_or_default(),
        OutBody::Stream { .. } => Bytes::new(),
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {CONTENT_TYPE}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let write = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(FAREWELL_TIMEOUT, write).await {
        tracing::debug!(error = %e, "writing the last response failed");
    }
}

//! The connection pool: keep-alive HTTP/1.1 connections to one plugin,
//! each driven by the task of the call that holds it.
//!
//! A call takes the most recently used idle connection, or dials a new
//! one, and sends its request with hyper's connection-level client
//! (`hyper::client::conn::http1`). The call's own task polls the
//! connection while it waits for the reply and while it reads the body:
//! no task per connection and no hop between tasks per call (hyper-util's
//! pooled client sent each request to a spawned connection task and got
//! the reply back through a channel, which cost more than the rest of the
//! call; see BENCHMARKS.md, round 3). Concurrent calls never share a
//! connection: each takes its own, dialling when none is idle.
//!
//! A connection goes back to the pool only when its reply was read to the
//! end and hyper is ready for the next request. Anything else (a call
//! dropped or timed out, a body left unread, an error, bytes the plugin
//! sent unasked) drops it, which closes it: a half-written request or a
//! half-read reply never meets the next call. Idle connections are kept at
//! most `max_idle` at a time, and closed once idle for the idle timeout by
//! a reaper task that lives only while some are pooled, and never past
//! the pool.
//!
//! A request that a pooled connection could not even begin to send
//! because the plugin had closed it (hyper hands such a request back
//! unsent) is sent again on a new connection at once, as Go's
//! `http.Transport` does (`nothingWrittenError`). A request whose bytes
//! may have reached the plugin is never resent here; the call's retry
//! schedule decides, with the whole body (divergence D7).
//!
//! **What it must never do:** hand a connection to a call while another
//! call's exchange is still on it, keep a connection past the idle timeout
//! or beyond `max_idle`, or resend a request that may have been sent.

use std::future::{Future, poll_fn};
use std::mem;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::body::ReqBody;
use crate::classify::classify;
use crate::connect::{Dialer, PluginStream};
use crate::error::Error;

/// The connections of one client (shared by its clones).
pub(crate) struct Pool {
    dialer: Dialer,
    http: http1::Builder,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    state: Mutex<State>,
}

struct State {
    /// Oldest first; calls take from the end.
    idle: Vec<Idle>,
    /// The reaper task, while one is alive for this pool.
    reaper: Option<AbortHandle>,
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// One connection: hyper's request handle and the connection future,
/// which whoever holds it polls. Always boxed: it is ~700 bytes, and a
/// call moves it between futures several times.
struct Conn {
    sender: http1::SendRequest<ReqBody>,
    driver: http1::Connection<TokioIo<PluginStream>, ReqBody>,
}

impl Conn {
    /// Lets the connection read and write; `Ready` once it is finished.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.driver).poll(cx).map(|_| ())
    }
}

impl Pool {
    pub(crate) fn new(dialer: Dialer, max_idle: usize, idle_timeout: Option<Duration>) -> Pool {
        let mut http = http1::Builder::new();
        // Go writes canonical header names (`Host`, `Content-Length`);
        // plugins that compare bytes see what Docker sends.
        http.title_case_headers(true);
        Pool {
            dialer,
            http,
            max_idle,
            idle_timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                reaper: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `request` on an idle connection or a new one; resolves with
    /// the reply once its head arrived.
    pub(crate) async fn send(
        self: &Arc<Pool>,
        mut request: http::Request<ReqBody>,
    ) -> Result<http::Response<Reply>, Error> {
        // hyper writes the URI as it is; the request line has the origin
        // form (`POST /Plugin.Activate HTTP/1.1`), as Go's.
        if let Some(path) = request.uri().path_and_query().cloned() {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(path);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            // The reply future does not borrow the connection: the
            // connection can be dropped while the future is still polled.
            let mut sent = pin!(conn.sender.try_send_request(request));
            let mut live = Some(conn);
            let outcome = poll_fn(|cx| {
                // The reply can only come out of the connection, which is
                // polled right here: the reply's own wake-up is not
                // needed, and a no-op waker spares the task a second poll.
                let mut quiet = Context::from_waker(Waker::noop());
                if let Some(conn) = live.as_mut() {
                    if conn.drive(cx).is_pending() {
                        return sent.as_mut().poll(&mut quiet);
                    }
                    // Finished: dropping it hands back a request it never
                    // took, or fails the one it was on.
                    live = None;
                }
                sent.as_mut().poll(cx)
            })
            .await;
            match outcome {
                Ok(head) => {
                    let pool = self.clone();
                    return Ok(head.map(|body| Reply {
                        body,
                        conn: live,
                        pool,
                    }));
                }
                Err(mut e) => {
                    if let Some(unsent) = e.take_message()
                        && reused
                    {
                        tracing::debug!("pooled connection closed by the plugin, dialling again");
                        request = unsent;
                        continue;
                    }
                    return Err(classify(e.into_error()));
                }
            }
        }
    }

    /// Dials and sets up HTTP/1.1 on the new connection (no IO beyond
    /// the dial).
    async fn connect(&self) -> Result<Box<Conn>, Error> {
        let stream = self.dialer.dial().await.map_err(Error::from)?;
        let (sender, driver) = self
            .http
            .handshake(TokioIo::new(stream))
            .await
            .map_err(classify)?;
        Ok(Box::new(Conn { sender, driver }))
    }

    /// The most recently used idle connection that has not expired;
    /// expired ones are closed on the way.
    fn take_idle(&self) -> Option<Box<Conn>> {
        let mut state = self.lock();
        while let Some(idle) = state.idle.pop() {
            if self.idle_timeout.is_some_and(|t| idle.since.elapsed() >= t) {
                // This one and every older one expired.
                let expired = mem::take(&mut state.idle);
                drop(state);
                drop((idle, expired));
                return None;
            }
            if !idle.conn.sender.is_closed() {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Pools a connection whose exchange is over, if hyper is ready for
    /// the next request on it; otherwise it is closed.
    fn put_back(self: &Arc<Pool>, mut conn: Box<Conn>) {
        if self.max_idle == 0 {
            return;
        }
        // One more turn lets hyper finish the exchange: it checks that
        // nothing more came after the reply and readies itself for the
        // next request. Nobody waits on an idle connection: no waker.
        if conn
            .drive(&mut Context::from_waker(Waker::noop()))
            .is_ready()
            || !conn.sender.is_ready()
        {
            return;
        }
        let mut state = self.lock();
        let mut evicted = None;
        if let Some(timeout) = self.idle_timeout
            && state.reaper.is_none()
        {
            // No runtime to run a reaper on: the connection is closed
            // rather than kept unwatched.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let task = runtime.spawn(reap(Arc::downgrade(self), timeout));
            state.reaper = Some(task.abort_handle());
        }
        state.idle.push(Idle {
            conn,
            since: Instant::now(),
        });
        if state.idle.len() > self.max_idle {
            evicted = Some(state.idle.remove(0));
        }
        drop(state);
        drop(evicted);
    }
}

/// Closes idle connections as they pass the idle timeout, then ends when
/// none is left (the next pooled connection starts another).
async fn reap(pool: Weak<Pool>, timeout: Duration) {
    let mut guard = ReapGuard {
        pool: pool.clone(),
        armed: true,
    };
    let mut next = Instant::now() + timeout;
    loop {
        tokio::time::sleep_until(next).await;
        let Some(pool) = pool.upgrade() else { return };
        let mut state = pool.lock();
        let now = Instant::now();
        let live = state
            .idle
            .iter()
            .position(|i| now.duration_since(i.since) < timeout)
            .unwrap_or(state.idle.len());
        let expired: Vec<Idle> = state.idle.drain(..live).collect();
        match state.idle.first() {
            Some(oldest) => next = oldest.since + timeout,
            None => {
                state.reaper = None;
                guard.armed = false;
            }
        }
        drop(state);
        drop(expired);
        if !guard.armed {
            return;
        }
    }
}

/// Clears the pool's `reaper` if its reaper is dropped early (its runtime
/// shut down), so the next pooled connection starts a new one.
struct ReapGuard {
    pool: Weak<Pool>,
    armed: bool,
}

impl Drop for ReapGuard {
    fn drop(&mut self) {
        if self.armed
            && let Some(pool) = self.pool.upgrade()
        {
            pool.lock().reaper = None;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The reaper holds the pool only weakly and would notice it gone
        // only at its next tick, up to the idle timeout later: a process
        // that makes and drops clients would pile up sleeping tasks.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(reaper) = state.reaper.take() {
            reaper.abort();
        }
    }
}

/// A reply's body, with the connection it comes from: polling it drives
/// the connection; read to the end, the connection goes back to the pool;
/// dropped before, the connection is closed.
pub(crate) struct Reply {
    body: Incoming,
    /// `None` once the connection finished or went back to the pool.
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Pin::new(&mut this.body).poll_frame(cx);
        };
        // Body bytes only come out of the connection, polled here with
        // the task's waker; the body itself needs none.
        let mut quiet = Context::from_waker(Waker::noop());
        let mut driven = false;
        loop {
            match Pin::new(&mut this.body).poll_frame(&mut quiet) {
                Poll::Ready(None) => {
                    if let Some(conn) = this.conn.take() {
                        this.pool.put_back(conn);
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(frame)) => return Poll::Ready(Some(frame)),
                Poll::Pending if driven => return Poll::Pending,
                Poll::Pending => {}
            }
            driven = true;
            if conn.drive(cx).is_ready() {
                // The connection ended; what it left in the body (its end,
                // or why it stopped) is all there is.
                this.conn = None;
                return Pin::new(&mut this.body).poll_frame(cx);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

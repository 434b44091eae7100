//! The [`Client`]: one plugin's connection pool and its two entry points,
//! [`Client::call`] and [`Client::stream`] (Docker's `Call`,
//! `CallWithOptions`, `SendFile` and `Stream`), and the exchange every call
//! goes through: Docker's `callWithRetry`, status check, capped read.
//!
//! **What it must never do:** build request bytes (`plugin-proto`'s
//! [`encode_call_head`] does), retry by a loop of its own
//! ([`retry::run`](crate::retry::run) does), or read a body Docker leaves
//! unread.

use std::fmt;
use std::future::{Future as _, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use plugin_proto::{Address, RetryPolicy, StatusError, TlsOptions, call_url, encode_call_head};
use tokio::time::Instant;

use crate::body::{Deadline, Payload, ReadError, ReqBody, read_capped};
use crate::builder::{ClientBuilder, FailureHook, IntoAddress};
use crate::connect::Transport;
use crate::error::{Error, PLUGIN_ERR, TIMEOUT, TOO_LARGE};
use crate::pool::{Pool, Reply};
use crate::request::{CallRequest, CallTarget, Options, StreamTarget, token};
use crate::retry::{self, Failed, Stopped};
use crate::telemetry;

/// An HTTP client for one plugin.
///
/// Cheap to clone: clones share one connection pool, as Docker's plugins
/// share one `http.Transport`. Calls need a tokio runtime.
///
/// Two entry points send calls; each returns a [`CallRequest`] that takes
/// per-call settings and is sent when awaited:
///
/// | Docker | here |
/// |---|---|
/// | `Call(m, nil, &ret)` | `client.call(m).json::<R>().await?` |
/// | `Call(m, args, &ret)` | `client.call(m).args(&args).json::<R>().await?` |
/// | `Call(m, args, nil)` | `client.call(m).args(&args).no_reply().await?` |
/// | `CallWithOptions(…, WithRequestTimeout(d))` | `….timeout(d)` before `.await` |
/// | `SendFile(m, reader, &ret)` | `client.call(m).body(SendBody::from_reader(r)).json::<R>().await?` |
/// | `Stream(m, args)` | `client.stream(m).args(&args).await?` |
/// | a raw body in, the raw reply out | `client.call(m).body(bytes).await?` |
/// | a generated proxy's typed call | `client.call(&typed_request).await?` |
///
/// [`SendBody`]: crate::SendBody
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

/// What the clones of one client share.
pub(crate) struct Shared {
    pub(crate) pool: Arc<Pool>,
    pub(crate) address: Address,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_reply_size: u64,
    pub(crate) on_connect_failure: Option<FailureHook>,
    pub(crate) on_timeout: Option<FailureHook>,
    /// The `plugin` of its spans and metrics.
    pub(crate) label: Arc<str>,
    /// The keys of its per-call metrics.
    pub(crate) metrics: telemetry::CallMetrics,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.inner.address)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Docker's `NewClient(addr, tlsConfig)`: a client with Docker's
    /// defaults. See [`ClientBuilder::build`] for what is checked.
    ///
    /// ```
    /// let client = plugin_client::Client::new("unix:///run/docker/plugins/memvol.sock", None)?;
    /// assert_eq!(client.address().to_string(), "unix:///run/docker/plugins/memvol.sock");
    /// # Ok::<(), plugin_client::Error>(())
    /// ```
    pub fn new(address: impl IntoAddress, tls: Option<&TlsOptions>) -> Result<Client, Error> {
        ClientBuilder::new().build(address, tls)
    }

    /// Docker's `NewClientWithTransport`: a client with Docker's defaults
    /// over a caller-supplied transport.
    pub fn with_transport(address: Address, transport: impl Transport) -> Client {
        ClientBuilder::new().build_with_transport(address, transport)
    }

    /// A builder for clients with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn from_shared(shared: Shared) -> Client {
        Client {
            inner: Arc::new(shared),
        }
    }

    /// The `plugin` label of its spans and metrics
    /// ([`ClientBuilder::label`], else the address).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    pub(crate) fn metrics(&self) -> &telemetry::CallMetrics {
        &self.inner.metrics
    }

    /// The plugin's address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// A call: `POST /<method>` by name, or a typed request.
    ///
    /// By name (Docker's `Call`), the body is empty unless
    /// [`args`](CallRequest::args) or [`body`](CallRequest::body) give one,
    /// and the 200 reply comes back whole as bytes, or decoded by Go's
    /// rules with [`json`](CallRequest::json);
    /// [`no_reply`](CallRequest::no_reply) leaves it unread.
    ///
    /// Typed ([`plugin_proto::Call`]), the request is encoded as Docker
    /// sends it (no body for calls Docker makes with nil arguments),
    /// Docker's per-call timeout for the method applies, and the reply is
    /// decoded by Go's rules, or not read at all when Docker ignores it. A
    /// 200 reply whose `Err` field is set is returned as is (see
    /// [`plugin_proto::ErrReply`]).
    ///
    /// Either way, failures to connect are retried on the client's
    /// schedule with Docker's warning, the whole body resent each time; a
    /// status other than 200 is an error (`<method>: <message>`), never
    /// retried.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), plugin_client::Error> {
    /// use plugin_client::Client;
    /// use plugin_proto::{Manifest, volume::{CreateRequest, ListRequest}};
    ///
    /// let client = Client::new("unix:///run/docker/plugins/memvol.sock", None)?;
    /// let manifest: Manifest = client.call("Plugin.Activate").json().await?;
    /// let raw = client.call("VolumeDriver.List").args(&ListRequest {}).await?;
    /// let typed = client.call(&CreateRequest { name: "v1".into(), opts: None }).await?;
    /// # let _ = (manifest, raw, typed);
    /// # Ok(()) }
    /// ```
    pub fn call<'a, T: CallTarget<'a>>(&'a self, target: T) -> CallRequest<'a, T::Output> {
        target.into_request(self, token())
    }

    /// Docker's `Stream`: sends the call and hands back the 200 reply body
    /// ([`ReplyBody`](crate::ReplyBody), a byte stream and an `AsyncRead`)
    /// for the caller to read at its pace, not size capped. By name, the
    /// arguments are `null` unless [`args`](CallRequest::args) gives them,
    /// as Docker sends them; typed, a [`plugin_proto::StreamCall`]
    /// (`LogDriver.ReadLogs`). The per-call and client timeouts keep
    /// running while the body is read.
    ///
    /// ```no_run
    /// # async fn f(client: plugin_client::Client) -> Result<(), plugin_client::Error> {
    /// use tokio::io::AsyncReadExt;
    ///
    /// let mut body = client.stream("LogDriver.ReadLogs").args(&serde_json::json!({})).await?;
    /// let mut logs = Vec::new();
    /// body.read_to_end(&mut logs).await.ok();
    /// # Ok(()) }
    /// ```
    pub fn stream<'a, T: StreamTarget<'a>>(
        &'a self,
        target: T,
    ) -> CallRequest<'a, crate::ReplyBody> {
        target.into_request(self, token())
    }

    /// Sends with retries, then reads the 200 body under the cap.
    pub(crate) async fn exchange(
        &self,
        method: &str,
        payload: Payload,
        opts: &Options,
    ) -> Result<Bytes, Error> {
        let (mut reply, mut deadline) = self.send(method, payload, opts).await?;
        let limit = self.inner.max_reply_size;
        match read_capped(&mut reply, &mut deadline, limit).await {
            Ok(bytes) => Ok(bytes),
            Err(ReadError::TooLarge) => Err(Error::too_large(method, limit)),
            Err(e) => {
                let mut err = Error::body(method, e.text(limit));
                if let ReadError::Timeout(_) = e {
                    err = err.with_flags(TIMEOUT);
                }
                if let ReadError::Hyper(h) = e {
                    err = err.with_source(h);
                }
                tracing::error!("{method}: error reading plugin resp: {err}");
                Err(err)
            }
        }
    }

    /// Docker's `callWithRetry`: one request per attempt, each carrying the
    /// whole body; transport failures retried on the policy's schedule
    /// (never once a streamed body started) within the call's deadline;
    /// any status but 200 read (under the cap) into a status error, never
    /// retried. Returns the 200 reply's body and the attempt's deadline,
    /// which keeps running while the body is read. A call that gives up
    /// unable to connect, or on a timeout, runs the matching hook.
    pub(crate) async fn send(
        &self,
        method: &str,
        payload: Payload,
        opts: &Options,
    ) -> Result<(Reply, Deadline), Error> {
        let shared = &*self.inner;
        let policy = opts.retry.unwrap_or(shared.retry);
        let until = opts.deadline.map(|d| Instant::now() + d);
        let payload = &payload;
        let attempts = &AtomicU32::new(0);
        let result = retry::run_until(policy, until, || async move {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::Span::current().record("attempt", attempt);
            let head = encode_call_head(&shared.address, method, payload.content_length())
                .map_err(|e| Failed::Final(Error::encode(method, e)))?;
            let request = head.map(|()| payload.body());
            let mut deadline = Deadline::new(opts.timeout, shared.timeout, until);
            let err = match self.attempt(request, &mut deadline).await {
                Ok(reply) => {
                    return self
                        .check_status(method, reply, deadline)
                        .await
                        .map_err(Failed::Final);
                }
                Err(e) => e,
            };
            // The URL only goes into errors, so it is built when one
            // happens (the head above was built from the same parts).
            let url = call_url(&shared.address, method).unwrap_or_default();
            let err = err.with_method(method).with_url(url.clone());
            if let (Some(until), Some(within)) = (until, opts.deadline)
                && Instant::now() >= until
            {
                // The deadline ended this attempt; its own timeout text
                // would only repeat that.
                let show_last = !err.is_timeout();
                return Err(Failed::Final(Error::past_deadline(
                    method, within, err, show_last,
                )));
            }
            let may_retry = err.is_retryable()
                && payload.can_resend()
                && (opts.retry_refused
                    || !(err.is_connection_refused() || err.is_socket_missing()));
            Err(if may_retry {
                // Docker prints the URL's host and path.
                let target = url.split_once("://").map_or(&*url, |(_, rest)| rest);
                Failed::Connect {
                    error: err,
                    target: target.to_owned(),
                }
            } else {
                Failed::Final(err)
            })
        })
        .await;
        telemetry::record_retries(
            &shared.label,
            method,
            attempts.load(Ordering::Relaxed).saturating_sub(1),
        );
        let result = result.map_err(|stopped| match (stopped, opts.deadline) {
            (Stopped::Deadline(last), Some(within)) => {
                Error::past_deadline(method, within, last, true)
            }
            (Stopped::Failed(e) | Stopped::Deadline(e), _) => e,
        });
        if let Err(err) = &result {
            let hook = if err.is_connect() {
                &shared.on_connect_failure
            } else if err.is_timeout() {
                &shared.on_timeout
            } else {
                &None
            };
            if let Some(hook) = hook {
                hook(err);
            }
        }
        result
    }

    /// One request, bounded by the attempt's deadline until the reply's
    /// head arrives.
    async fn attempt(
        &self,
        request: http::Request<ReqBody>,
        deadline: &mut Deadline,
    ) -> Result<http::Response<Reply>, Error> {
        let mut reply = pin!(self.inner.pool.send(request));
        poll_fn(|cx| {
            if let Poll::Ready(r) = reply.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            match deadline.poll_expired(cx) {
                Some(kind) => Poll::Ready(Err(
                    Error::transport(kind.headers_text().to_owned()).with_flags(TIMEOUT)
                )),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Checks the status of a reply: 200 passes; anything else (3xx
    /// included: redirects are never followed) becomes Docker's status
    /// error, its message read from a capped body.
    async fn check_status(
        &self,
        method: &str,
        reply: http::Response<Reply>,
        mut deadline: Deadline,
    ) -> Result<(Reply, Deadline), Error> {
        let status = reply.status();
        let mut body = reply.into_body();
        if status == http::StatusCode::OK {
            return Ok((body, deadline));
        }
        let limit = self.inner.max_reply_size;
        let err = match read_capped(&mut body, &mut deadline, limit).await {
            Ok(bytes) => {
                let status = StatusError::from_reply(method, status.as_u16(), &bytes);
                // The message is the raw body unless it came from `Err`.
                let own = status.message().as_bytes() != &bytes[..];
                let err = Error::from_status(status);
                if own { err.with_flags(PLUGIN_ERR) } else { err }
            }
            // Go reports a failed read of an error body as the status
            // error's message.
            Err(e) => {
                let too_large = matches!(e, ReadError::TooLarge);
                let err =
                    Error::from_status(StatusError::new(method, status.as_u16(), e.text(limit)));
                if too_large {
                    err.with_flags(TOO_LARGE)
                } else {
                    err
                }
            }
        };
        Err(err)
    }
}

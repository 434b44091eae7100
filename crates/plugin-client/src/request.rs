//! One call being built: what [`Client::call`] and [`Client::stream`]
//! return. A [`CallRequest`] holds the method, the encoded body and the
//! per-call settings (Docker's `RequestOpts`); awaiting it sends the call.
//!
//! **What it must never do:** encode bytes by rules of its own (bodies come
//! from `plugin-proto`) or retry by a loop of its own (the client's `send`
//! goes through [`retry::run`](crate::retry::run)).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use plugin_proto::{
    Call, EncodeError, RetryPolicy, StreamCall, decode_message, encode_args, encode_request,
    encode_stream_args, encode_stream_request,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::{Payload, ReplyBody, SendBody};
use crate::client::Client;
use crate::error::Error;
use tracing::Instrument as _;

/// Per-call settings (Docker's `RequestOpts`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Bounds each attempt, from sending to the reply's last byte.
    pub(crate) timeout: Option<Duration>,
    /// Bounds the whole call: every attempt, the waits between them and
    /// the reply's last byte.
    pub(crate) deadline: Option<Duration>,
    /// Replaces the client's retry policy.
    pub(crate) retry: Option<RetryPolicy>,
    /// Whether a refused connection or a missing socket is retried.
    pub(crate) retry_refused: bool,
}

/// What becomes of a 200 reply.
enum Finish<O> {
    /// Read under the cap, then turned into `O`.
    Buffered(fn(&str, Bytes) -> Result<O, Error>),
    /// Never read (Docker's nil reply target).
    Unread(fn() -> O),
    /// Handed to the caller unread (`O` is [`ReplyBody`]).
    Streamed(fn(ReplyBody) -> O),
}

/// A call to send: returned by [`Client::call`] and [`Client::stream`],
/// configured by its methods, sent when awaited.
///
/// `O` is what awaiting gives: the raw reply body ([`Bytes`]) for a call
/// by method name, `R` after [`json::<R>()`](CallRequest::json), `()`
/// after [`no_reply`](CallRequest::no_reply), the typed reply for a
/// [`plugin_proto::Call`], a [`ReplyBody`] for a stream.
///
/// ```no_run
/// # async fn f(client: plugin_client::Client) -> Result<(), plugin_client::Error> {
/// use std::time::Duration;
/// use plugin_proto::{RetryPolicy, volume::ListRequest};
///
/// // Docker's `CallWithOptions(…, WithRequestTimeout(d))`, without retries:
/// let volumes = client
///     .call(&ListRequest::default())
///     .timeout(Duration::from_secs(5))
///     .retry(RetryPolicy::none())
///     .await?;
/// # let _ = volumes;
/// # Ok(()) }
/// ```
#[must_use = "a call is sent only when awaited"]
pub struct CallRequest<'a, O> {
    client: &'a Client,
    method: &'a str,
    body: Result<Payload, EncodeError>,
    options: Options,
    finish: Finish<O>,
}

impl<O> fmt::Debug for CallRequest<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRequest")
            .field("method", &self.method)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a, O> CallRequest<'a, O> {
    fn new(
        client: &'a Client,
        method: &'a str,
        body: Result<Bytes, EncodeError>,
        timeout: Option<Duration>,
        finish: Finish<O>,
    ) -> Self {
        CallRequest {
            client,
            method,
            body: body.map(Payload::Bytes),
            options: Options {
                timeout,
                deadline: None,
                retry: None,
                retry_refused: true,
            },
            finish,
        }
    }

    /// Docker's `WithRequestTimeout`: bounds each attempt, from sending to
    /// the last byte of the reply (for a stream, while the caller reads
    /// it). An attempt that times out is a transport error and is retried
    /// like any other. Zero means no per-call timeout. It replaces a typed
    /// request's default (two minutes for `VolumeDriver.Create`, …).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Bounds the whole call, where [`timeout`](Self::timeout) bounds
    /// each attempt: from the moment it is awaited to the last byte of the
    /// reply (for a stream, while the caller reads it), every retry and
    /// wait between retries included. Docker has no such bound; a caller
    /// that needs an answer in bounded time (an authorization check, a
    /// health probe) sets it here rather than dropping the call from
    /// outside, because a call dropped from outside never tells the
    /// client's hooks that the plugin could not be reached.
    ///
    /// The retry schedule stays the policy's; a retry whose wait would
    /// reach the deadline is not made. A call the deadline ends fails with
    /// a timeout ([`Error::is_timeout`]) whose text is
    /// `<method>: no answer within <d>`, followed by the last attempt's
    /// error when it ended the retries (`…: Post "…": dial unix …:
    /// connect: connection refused`). Such a call then runs the client's
    /// hooks as a call whose retries ran out: the connect-failure hook
    /// after connection failures (the error is then also
    /// [`Error::is_connect`]), the timeout hook otherwise. A zero deadline
    /// has already passed.
    ///
    /// ```no_run
    /// # async fn f(client: plugin_client::Client) -> Result<(), plugin_client::Error> {
    /// use std::time::Duration;
    /// use plugin_proto::authz::{AuthZReq, Request};
    ///
    /// let verdict = client
    ///     .call(&AuthZReq(Request::default()))
    ///     .deadline(Duration::from_secs(5))
    ///     .await?;
    /// # let _ = verdict;
    /// # Ok(()) }
    /// ```
    pub fn deadline(mut self, within: Duration) -> Self {
        self.options.deadline = Some(within);
        self
    }

    /// Replaces the client's retry policy for this call.
    /// `RetryPolicy::none()` makes one attempt.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    /// Whether a refused connection or a missing unix socket is retried
    /// (default `true`, as Docker). Listing plugins sets `false` so a stale
    /// socket fails at once instead of costing the whole retry budget.
    pub fn retry_connection_refused(mut self, retry: bool) -> Self {
        self.options.retry_refused = retry;
        self
    }
}

impl<'a> CallRequest<'a, Bytes> {
    /// Sends `args` as Go-style JSON with a trailing newline (Docker's
    /// `Call` with non-nil arguments). Without it, the body is empty, as
    /// Docker sends nil arguments; `&serde_json::Value::Null` sends `null`.
    ///
    /// ```no_run
    /// # async fn f(client: plugin_client::Client) -> Result<(), plugin_client::Error> {
    /// # #[derive(serde::Serialize)] struct Create<'a> { #[serde(rename = "Name")] name: &'a str }
    /// client.call("VolumeDriver.Create").args(&Create { name: "v1" }).await?;
    /// # Ok(()) }
    /// ```
    pub fn args<A: Serialize + ?Sized>(mut self, args: &A) -> Self {
        self.body = encode_args(Some(args)).map(Payload::Bytes);
        self
    }

    /// Sends `body` as it is (Docker's `SendFile`, and raw bodies): bytes in
    /// memory go with `Content-Length` and are resent whole on a retry; a
    /// stream or reader goes chunked unless sized and is never retried once
    /// any of it was sent. Docker decodes a `SendFile` reply as JSON even
    /// when it ignores it, so an empty reply fails there: add
    /// [`json`](CallRequest::json) to do the same.
    ///
    /// ```no_run
    /// # async fn f(client: plugin_client::Client, file: tokio::fs::File) -> Result<(), plugin_client::Error> {
    /// use plugin_client::SendBody;
    ///
    /// let _: serde::de::IgnoredAny = client
    ///     .call("GraphDriver.ApplyDiff")
    ///     .body(SendBody::from_reader(file))
    ///     .json()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "send_file")]
    pub fn body(mut self, body: impl Into<SendBody>) -> Self {
        self.body = Ok(body.into().into_payload());
        self
    }

    /// Decodes the 200 reply into `R` as Docker's `Call` does, with Go's
    /// `json.NewDecoder(body).Decode(&ret)` (checklist 22): the first JSON
    /// value, keys matched case-insensitively, trailing bytes ignored,
    /// `null` gives `R::default()`, an empty body is the error `EOF`. A
    /// failure is logged as Docker logs it.
    ///
    /// ```no_run
    /// # async fn f(client: plugin_client::Client) -> Result<(), plugin_client::Error> {
    /// use plugin_proto::Manifest;
    ///
    /// let manifest: Manifest = client.call("Plugin.Activate").json().await?;
    /// # let _ = manifest;
    /// # Ok(()) }
    /// ```
    pub fn json<R: DeserializeOwned + Default>(self) -> CallRequest<'a, R> {
        self.finish(Finish::Buffered(|method, bytes| {
            decode_reply_json(method, &bytes)
        }))
    }

    /// Checks the status and never reads the reply body (Docker's `Call`
    /// with a nil reply target).
    pub fn no_reply(self) -> CallRequest<'a, ()> {
        self.finish(Finish::Unread(|| ()))
    }

    fn finish<R>(self, finish: Finish<R>) -> CallRequest<'a, R> {
        CallRequest {
            client: self.client,
            method: self.method,
            body: self.body,
            options: self.options,
            finish,
        }
    }
}

impl CallRequest<'_, ReplyBody> {
    /// Sends `args` as Go-style JSON (a stream by method name sends
    /// `null` without it, as Docker's `Stream` does). On a typed
    /// [`StreamCall`] it replaces the request's own encoding.
    pub fn args<A: Serialize + ?Sized>(mut self, args: &A) -> Self {
        self.body = encode_stream_args(Some(args)).map(Payload::Bytes);
        self
    }
}

impl<'a, O: Send + 'a> IntoFuture for CallRequest<'a, O> {
    type Output = Result<O, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<O, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl<'a, O: Send + 'a> CallRequest<'a, O> {
    async fn send(self) -> Result<O, Error> {
        let client = self.client;
        let method = self.method;
        let span = tracing::info_span!(
            "plugin_call",
            plugin = client.label(),
            method,
            address = client.address().as_str(),
            attempt = tracing::field::Empty,
        );
        let start = Instant::now();
        let result = self.send_inner().instrument(span).await;
        client
            .metrics()
            .record_call(method, start.elapsed(), result.as_ref().err());
        result
    }

    async fn send_inner(self) -> Result<O, Error> {
        let CallRequest {
            client,
            method,
            body,
            options,
            finish,
        } = self;
        let payload = body.map_err(|e| Error::encode(method, e))?;
        match finish {
            Finish::Buffered(decode) => {
                let bytes = client.exchange(method, payload, &options).await?;
                decode(method, bytes)
            }
            Finish::Unread(zero) => {
                let (_unread, _deadline) = client.send(method, payload, &options).await?;
                Ok(zero())
            }
            Finish::Streamed(wrap) => {
                let (reply, deadline) = client.send(method, payload, &options).await?;
                Ok(wrap(ReplyBody::new(reply, deadline, method)))
            }
        }
    }
}

/// Go's decoding of a reply (checklist 22); failures logged as Docker
/// logs them.
fn decode_reply_json<R: DeserializeOwned + Default>(
    method: &str,
    bytes: &[u8],
) -> Result<R, Error> {
    match decode_message::<R>(bytes) {
        Ok(value) => Ok(value),
        Err(e) => {
            tracing::error!("{method}: error reading plugin resp: {e}");
            Err(Error::decode(method, e))
        }
    }
}

/// Keeps the conversion traits' method out of reach: only this crate can
/// name a [`Token`], so only it can implement or call them.
mod sealed {
    /// Proof that the caller is this crate.
    #[allow(unreachable_pub)] // public in name only: the module is private.
    #[derive(Debug)]
    pub struct Token(pub(super) ());
}

/// What [`Client::call`] accepts: a method name (`"VolumeDriver.List"`),
/// whose reply is the raw body unless decoded with
/// [`json`](CallRequest::json), or a typed request (a
/// [`plugin_proto::Call`], such as `volume::ListRequest`), whose reply is
/// its typed reply.
pub trait CallTarget<'a> {
    /// What awaiting the call gives.
    type Output;

    /// Builds the request (only `plugin-client` can call it).
    #[doc(hidden)]
    fn into_request(
        self,
        client: &'a Client,
        token: sealed::Token,
    ) -> CallRequest<'a, Self::Output>;
}

impl<'a> CallTarget<'a> for &'a str {
    type Output = Bytes;

    fn into_request(self, client: &'a Client, _: sealed::Token) -> CallRequest<'a, Bytes> {
        let raw = Finish::Buffered(|_, bytes| Ok(bytes));
        CallRequest::new(client, self, Ok(Bytes::new()), None, raw)
    }
}

impl<'a, C: Call> CallTarget<'a> for &'a C {
    type Output = C::Reply;

    fn into_request(self, client: &'a Client, _: sealed::Token) -> CallRequest<'a, C::Reply> {
        let finish = if C::READS_REPLY {
            Finish::Buffered(|method: &str, bytes: Bytes| decode_reply_json(method, &bytes))
        } else {
            Finish::Unread(C::Reply::default)
        };
        CallRequest::new(client, C::METHOD, encode_request(self), C::TIMEOUT, finish)
    }
}

/// What [`Client::stream`] accepts: a method name, sent with `null` unless
/// [`args`](CallRequest::args) are given, or a typed
/// [`plugin_proto::StreamCall`] (`log::ReadLogsRequest`).
pub trait StreamTarget<'a> {
    /// Builds the request (only `plugin-client` can call it).
    #[doc(hidden)]
    fn into_request(self, client: &'a Client, token: sealed::Token) -> CallRequest<'a, ReplyBody>;
}

impl<'a> StreamTarget<'a> for &'a str {
    fn into_request(self, client: &'a Client, _: sealed::Token) -> CallRequest<'a, ReplyBody> {
        let body = encode_stream_args::<()>(None);
        CallRequest::new(client, self, body, None, Finish::Streamed(|b| b))
    }
}

impl<'a, S: StreamCall> StreamTarget<'a> for &'a S {
    fn into_request(self, client: &'a Client, _: sealed::Token) -> CallRequest<'a, ReplyBody> {
        let body = encode_stream_request(self);
        CallRequest::new(client, S::METHOD, body, None, Finish::Streamed(|b| b))
    }
}

pub(crate) fn token() -> sealed::Token {
    sealed::Token(())
}

//! The client: creation (Docker's `NewClient`, `NewClientWithTimeout`,
//! `NewClientWithTransport`), the calls (`Call`, `CallWithOptions`,
//! `Stream`, `SendFile`) and the retry loop (`callWithRetry`).

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use plugin_proto::retry::go_duration;
use plugin_proto::{
    Address, AddressError, Call, Endpoint, RetryPolicy, StatusError, StreamCall, TlsOptions,
    decode_message, encode_args, encode_call_head, encode_request, encode_stream_args,
    encode_stream_request, validate_method,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::body::{Deadline, Payload, ReadError, ReplyBody, ReqBody, SendBody, read_capped};
use crate::connect::{ConnectFailure, Connector, Target, Transport};
use crate::error::{Error, MISSING, REFUSED, TIMEOUT, TLS, TOO_LARGE, errno_text};
use crate::tls::LoadedOptions;

/// The default cap on a reply body that a call buffers: 64 MiB.
pub const DEFAULT_MAX_REPLY_SIZE: u64 = 64 * 1024 * 1024;

/// Docker's dial timeout (go-connections since v0.5).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle pooled connection is kept (go-connections v0.8:
/// `IdleConnTimeout = 30s`).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many idle connections are kept (go-connections v0.8:
/// `MaxIdleConns = 6`).
pub const DEFAULT_POOL_MAX_IDLE: usize = 6;

/// Arguments for a call that sends none (an empty body), so callers need
/// not name a type: `client.call::<_, Manifest>("Plugin.Activate", NO_ARGS)`.
pub const NO_ARGS: Option<&()> = None;

/// Called when a call gives up with a connection-level error
/// ([`Error::is_connect`]) after its retries; the registry uses it to evict
/// plugins that died.
pub type ConnectFailureHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// Anything that names a plugin address: a string to parse, or an
/// [`Address`].
pub trait IntoAddress {
    /// Parses or clones the address.
    fn into_address(self) -> Result<Address, AddressError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(&self)
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

/// Settings for one call (Docker's `RequestOpts`).
#[derive(Debug, Clone)]
pub struct CallOptions {
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    retry_connection_refused: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: None,
            retry: None,
            retry_connection_refused: true,
        }
    }
}

impl CallOptions {
    /// The defaults: no per-call timeout, the client's retry policy,
    /// refused connections retried.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Docker's `WithRequestTimeout`: bounds each attempt, from sending to
    /// the last byte of the reply. An attempt that times out is a transport
    /// error and is retried like any other. Zero means no timeout.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Overrides the client's retry policy for this call.
    pub fn retry(mut self, policy: RetryPolicy) -> CallOptions {
        self.retry = Some(policy);
        self
    }

    /// Whether a refused connection or a missing unix socket is retried
    /// (default `true`, as Docker). Listing plugins sets `false` so a stale
    /// socket fails at once instead of costing the whole retry budget.
    pub fn retry_connection_refused(mut self, retry: bool) -> CallOptions {
        self.retry_connection_refused = retry;
        self
    }
}

/// Builds a [`Client`] with settings other than Docker's defaults. It holds
/// no address, so one builder can make the clients of many plugins.
#[derive(Clone)]
pub struct ClientBuilder {
    timeout: Option<Duration>,
    retry: RetryPolicy,
    max_reply_size: u64,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle: usize,
    dial_timeout: Duration,
    on_connect_failure: Option<ConnectFailureHook>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            timeout: None,
            retry: RetryPolicy::docker(),
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            pool_max_idle: DEFAULT_POOL_MAX_IDLE,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            on_connect_failure: None,
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_reply_size", &self.max_reply_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle", &self.pool_max_idle)
            .field("dial_timeout", &self.dial_timeout)
            .field("on_connect_failure", &self.on_connect_failure.is_some())
            .finish()
    }
}

impl ClientBuilder {
    /// Docker's defaults: no whole-exchange timeout, Docker's retry
    /// schedule, a 64 MiB reply cap, a pool of 6 idle connections kept
    /// 30 s, a 10 s dial timeout.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Docker's `NewClientWithTimeout`: bounds each attempt as a whole,
    /// reading the reply included (also for [`Client::stream`]). `None` or
    /// zero means unbounded.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> ClientBuilder {
        self.timeout = timeout.into().filter(|t| !t.is_zero());
        self
    }

    /// How transport failures are retried (default: Docker's schedule).
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// The largest reply body a call buffers, error replies included
    /// (default 64 MiB). [`Client::stream`] is not capped.
    pub fn max_reply_size(mut self, bytes: u64) -> ClientBuilder {
        self.max_reply_size = bytes;
        self
    }

    /// How long an idle connection stays pooled; `None` keeps it until the
    /// plugin closes it.
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> ClientBuilder {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// How many idle connections are kept; 0 disables reuse.
    pub fn pool_max_idle(mut self, max: usize) -> ClientBuilder {
        self.pool_max_idle = max;
        self
    }

    /// How long one dial may take (default 10 s, Docker's).
    pub fn dial_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.dial_timeout = timeout;
        self
    }

    /// Runs `hook` whenever a call gives up with a connection-level error
    /// ([`Error::is_connect`]) after its retries.
    pub fn on_connect_failure(mut self, hook: ConnectFailureHook) -> ClientBuilder {
        self.on_connect_failure = Some(hook);
        self
    }

    /// Creates the client for `address`, as Docker's `NewClient` does: the
    /// address is parsed, unix paths over 108 bytes and named pipes off
    /// Windows are refused, and TLS files are read now. Any of these
    /// failures is final ([`Error::is_config`]); nothing is dialled yet.
    ///
    /// TLS is used only for `https://` addresses; without options they are
    /// verified against the system roots. The options are still checked for
    /// every scheme, as Docker does.
    pub fn build(
        self,
        address: impl IntoAddress,
        tls: Option<&TlsOptions>,
    ) -> Result<Client, Error> {
        let address = address.into_address().map_err(Error::address)?;
        address.check_dialable().map_err(Error::address)?;
        let loaded = tls.map(LoadedOptions::load).transpose()?;
        let target = match address.endpoint() {
            #[cfg(unix)]
            Endpoint::Unix(path) => Target::Unix(path.clone()),
            Endpoint::Tcp(host_port) => {
                let tls = if address.is_tls() {
                    let options = loaded.unwrap_or_else(LoadedOptions::system_default);
                    Some(options.into_setup(host_of(host_port))?)
                } else {
                    None
                };
                Target::Tcp {
                    addr: host_port.clone(),
                    tls,
                }
            }
            #[cfg(windows)]
            Endpoint::NamedPipe(name) => Target::Pipe(name.clone()),
            _ => return Err(Error::address(AddressError::ProtocolNotAvailable)),
        };
        Ok(self.finish(address, target))
    }

    /// Creates a client that reaches the plugin through `transport` rather
    /// than by dialling the address (Docker's `NewClientWithTransport`).
    /// The address still gives the `Host` header and the texts of errors;
    /// no TLS is added on top of the transport's stream.
    pub fn build_with_transport(self, address: Address, transport: impl Transport) -> Client {
        self.finish(address, Target::Custom(Arc::new(transport)))
    }

    fn finish(self, address: Address, target: Target) -> Client {
        let connector = Connector::new(target, self.dial_timeout);
        let mut http = legacy::Client::builder(TokioExecutor::new());
        http.pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle)
            .pool_timer(TokioTimer::new())
            // Go writes canonical header names (`Host`, `Content-Length`);
            // plugins that compare bytes see what Docker sends.
            .http1_title_case_headers(true);
        Client {
            inner: Arc::new(Shared {
                http: http.build(connector),
                address,
                timeout: self.timeout,
                retry: self.retry,
                max_reply_size: self.max_reply_size,
                on_connect_failure: self.on_connect_failure,
            }),
        }
    }
}

/// The host part of `host:port` (or `[v6]:port`), for TLS server names.
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// An HTTP client for one plugin.
///
/// Cheap to clone: clones share one connection pool, as Docker's plugins
/// share one `http.Transport`. Calls need a tokio runtime.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    http: legacy::Client<Connector, ReqBody>,
    address: Address,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    max_reply_size: u64,
    on_connect_failure: Option<ConnectFailureHook>,
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

    /// The plugin's address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// Docker's `Call`: sends `args` (`None` is an empty body; a value is
    /// Go-style JSON) and decodes the 200 reply into `R` by Go's rules:
    /// the first JSON value, trailing bytes ignored, `null` gives
    /// `R::default()`, an empty body is the error `EOF`.
    pub async fn call<A, R>(&self, method: &str, args: Option<&A>) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Default,
    {
        self.call_with(method, args, &CallOptions::default()).await
    }

    /// Docker's `CallWithOptions`: [`call`](Self::call) with per-call
    /// options.
    pub async fn call_with<A, R>(
        &self,
        method: &str,
        args: Option<&A>,
        opts: &CallOptions,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Default,
    {
        let body = encode_args(args).map_err(|e| Error::encode(method, e))?;
        let bytes = self.exchange(method, Payload::Bytes(body), opts).await?;
        decode_reply_json(method, &bytes)
    }

    /// Docker's `Call` with a nil reply target: the status is checked, the
    /// body is never read.
    pub async fn call_no_reply<A>(&self, method: &str, args: Option<&A>) -> Result<(), Error>
    where
        A: Serialize + ?Sized,
    {
        self.call_no_reply_with(method, args, &CallOptions::default())
            .await
    }

    /// [`call_no_reply`](Self::call_no_reply) with per-call options.
    pub async fn call_no_reply_with<A>(
        &self,
        method: &str,
        args: Option<&A>,
        opts: &CallOptions,
    ) -> Result<(), Error>
    where
        A: Serialize + ?Sized,
    {
        let body = encode_args(args).map_err(|e| Error::encode(method, e))?;
        let (_reply, _deadline) = self.send(method, Payload::Bytes(body), opts).await?;
        Ok(())
    }

    /// A call with a raw body in (sent as is, with `Content-Length`) and
    /// the raw 200 reply body out, capped like every buffered reply.
    pub async fn call_bytes(&self, method: &str, body: Bytes) -> Result<Bytes, Error> {
        self.call_bytes_with(method, body, &CallOptions::default())
            .await
    }

    /// [`call_bytes`](Self::call_bytes) with per-call options.
    pub async fn call_bytes_with(
        &self,
        method: &str,
        body: Bytes,
        opts: &CallOptions,
    ) -> Result<Bytes, Error> {
        self.exchange(method, Payload::Bytes(body), opts).await
    }

    /// Docker's `Stream`: sends `args` (`None` is sent as `null\n`, as
    /// Docker does) and hands back the 200 reply body for the caller to
    /// read at its pace. It is not size capped.
    pub async fn stream<A>(&self, method: &str, args: Option<&A>) -> Result<ReplyBody, Error>
    where
        A: Serialize + ?Sized,
    {
        self.stream_with(method, args, &CallOptions::default())
            .await
    }

    /// [`stream`](Self::stream) with per-call options; the per-call timeout
    /// keeps running while the body is read.
    pub async fn stream_with<A>(
        &self,
        method: &str,
        args: Option<&A>,
        opts: &CallOptions,
    ) -> Result<ReplyBody, Error>
    where
        A: Serialize + ?Sized,
    {
        let body = encode_stream_args(args).map_err(|e| Error::encode(method, e))?;
        let (reply, deadline) = self.send(method, Payload::Bytes(body), opts).await?;
        Ok(ReplyBody::new(reply, deadline, method))
    }

    /// Docker's `SendFile`: the request body comes from `body` (bytes with
    /// `Content-Length`, or a stream or reader, chunked unless sized), and
    /// the reply is always decoded as JSON, so an empty body is `EOF` even
    /// when the caller ignores the value. Use `serde::de::IgnoredAny` or
    /// `serde_json::Value` as `R` to accept any JSON.
    ///
    /// A streamed body is never retried once any of it was sent.
    pub async fn send_file<R>(&self, method: &str, body: impl Into<SendBody>) -> Result<R, Error>
    where
        R: DeserializeOwned + Default,
    {
        self.send_file_with(method, body, &CallOptions::default())
            .await
    }

    /// [`send_file`](Self::send_file) with per-call options.
    pub async fn send_file_with<R>(
        &self,
        method: &str,
        body: impl Into<SendBody>,
        opts: &CallOptions,
    ) -> Result<R, Error>
    where
        R: DeserializeOwned + Default,
    {
        let payload = body.into().into_payload();
        let bytes = self.exchange(method, payload, opts).await?;
        decode_reply_json(method, &bytes)
    }

    /// A typed call ([`plugin_proto::Call`]): the request is encoded as
    /// Docker sends it (no body for calls Docker makes with nil arguments),
    /// Docker's per-call timeout for the method applies, and the reply is
    /// decoded by Go's rules, or not read at all when Docker ignores it.
    ///
    /// A 200 reply whose `Err` field is set is returned as is; see
    /// [`plugin_proto::ErrReply`].
    pub async fn request<C: Call>(&self, request: &C) -> Result<C::Reply, Error> {
        let mut opts = CallOptions::default();
        if let Some(t) = C::TIMEOUT {
            opts = opts.timeout(t);
        }
        self.request_with(request, &opts).await
    }

    /// [`request`](Self::request) with per-call options (which replace the
    /// method's default timeout).
    pub async fn request_with<C: Call>(
        &self,
        request: &C,
        opts: &CallOptions,
    ) -> Result<C::Reply, Error> {
        let body = encode_request(request).map_err(|e| Error::encode(C::METHOD, e))?;
        if !C::READS_REPLY {
            let (_unread, _deadline) = self.send(C::METHOD, Payload::Bytes(body), opts).await?;
            return Ok(C::Reply::default());
        }
        let bytes = self.exchange(C::METHOD, Payload::Bytes(body), opts).await?;
        decode_reply_json(C::METHOD, &bytes)
    }

    /// A typed stream call ([`plugin_proto::StreamCall`], e.g.
    /// `LogDriver.ReadLogs`): see [`stream`](Self::stream).
    pub async fn stream_request<S: StreamCall>(&self, request: &S) -> Result<ReplyBody, Error> {
        let body = encode_stream_request(request).map_err(|e| Error::encode(S::METHOD, e))?;
        let (reply, deadline) = self
            .send(S::METHOD, Payload::Bytes(body), &CallOptions::default())
            .await?;
        Ok(ReplyBody::new(reply, deadline, S::METHOD))
    }

    /// Sends with retries, then reads the 200 body under the cap.
    async fn exchange(
        &self,
        method: &str,
        payload: Payload,
        opts: &CallOptions,
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
    /// whole body; transport failures retried on the policy's schedule;
    /// any status but 200 read (under the cap) into a status error, never
    /// retried. Returns the 200 reply's body and the attempt's deadline,
    /// which keeps running while the body is read.
    async fn send(
        &self,
        method: &str,
        payload: Payload,
        opts: &CallOptions,
    ) -> Result<(Incoming, Deadline), Error> {
        let shared = &*self.inner;
        let name = validate_method(method).map_err(|e| Error::encode(method, e))?;
        let policy = opts.retry.unwrap_or(shared.retry);
        let start = Instant::now();
        let mut retries = 0u32;
        loop {
            let head = encode_call_head(&shared.address, method, payload.content_length())
                .map_err(|e| Error::encode(method, e))?;
            let request = head.map(|()| payload.body());
            let mut deadline = Deadline::new(Instant::now(), opts.timeout, shared.timeout);
            let err = match self.attempt(request, &mut deadline).await {
                Ok(reply) => return self.check_status(method, reply, deadline).await,
                Err(e) => e.with_method(method).with_url(self.url(name)),
            };
            let may_retry = err.is_retryable()
                && payload.can_resend()
                && (opts.retry_connection_refused
                    || !(err.is_connection_refused() || err.is_socket_missing()));
            if may_retry && let Some(delay) = policy.next_delay(retries, start.elapsed()) {
                retries += 1;
                tracing::warn!(
                    "Unable to connect to plugin: {}/{name}: {err}, retrying in {}",
                    shared.address.host_header(),
                    go_duration(delay)
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            if err.is_connect()
                && let Some(hook) = &shared.on_connect_failure
            {
                hook(&err);
            }
            return Err(err);
        }
    }

    /// One request, bounded by the attempt's deadline until the reply's
    /// head arrives.
    async fn attempt(
        &self,
        request: http::Request<ReqBody>,
        deadline: &mut Deadline,
    ) -> Result<http::Response<Incoming>, Error> {
        let mut reply = self.inner.http.request(request);
        poll_fn(|cx| {
            if let Poll::Ready(r) = Pin::new(&mut reply).poll(cx) {
                return Poll::Ready(r.map_err(classify));
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
        reply: http::Response<Incoming>,
        mut deadline: Deadline,
    ) -> Result<(Incoming, Deadline), Error> {
        let status = reply.status();
        let mut body = reply.into_body();
        if status == http::StatusCode::OK {
            return Ok((body, deadline));
        }
        let limit = self.inner.max_reply_size;
        let err = match read_capped(&mut body, &mut deadline, limit).await {
            Ok(bytes) => {
                Error::from_status(StatusError::from_reply(method, status.as_u16(), &bytes))
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

    /// The request URL as Go prints it in errors.
    fn url(&self, name: &str) -> String {
        let a = &self.inner.address;
        format!("{}://{}/{name}", a.http_scheme(), a.host_header())
    }
}

use std::future::Future as _;

/// Go's `json.NewDecoder(body).Decode(&ret)` (checklist 22): the first
/// value, keys matched case-insensitively, `null` the zero value, an empty
/// body `EOF`; failures logged as Docker logs them.
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

/// Maps a failure of hyper-util's client to our error, with Go's texts.
fn classify(err: legacy::Error) -> Error {
    let chain: &(dyn std::error::Error + 'static) = &err;
    if let Some(failure) = find::<ConnectFailure>(chain) {
        let (text, flags) = (failure.text.clone(), failure.flags);
        return Error::connect(text).with_flags(flags).with_source(err);
    }
    let tls = crate::tls::is_tls_error(chain);
    let mut text = transport_text(chain);
    if tls {
        text = format!("tls: {text}");
    }
    // A TLS failure after the handshake (TLS 1.3 reports a refused client
    // certificate on the first read) still means the plugin could not be
    // reached.
    let e = if err.is_connect() || tls {
        Error::connect(text)
    } else {
        Error::transport(text)
    };
    let flags = if tls { TLS } else { 0 } | io_flags(chain);
    e.with_flags(flags).with_source(err)
}

fn io_flags(chain: &(dyn std::error::Error + 'static)) -> u8 {
    match find::<std::io::Error>(chain).map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => REFUSED,
        Some(std::io::ErrorKind::NotFound) => MISSING,
        _ => 0,
    }
}

/// Go's text for a request that broke: `EOF` when the plugin closed the
/// connection without a reply, the errno text for a reset, `malformed
/// HTTP response` for something that is not HTTP.
fn transport_text(chain: &(dyn std::error::Error + 'static)) -> String {
    if let Some(h) = find::<hyper::Error>(chain) {
        let inner = h.source().and_then(find::<std::io::Error>);
        if let Some(io) = inner {
            return errno_text(io);
        }
        if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
            return "EOF".to_owned();
        }
        if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
            return format!("malformed HTTP response: {h}");
        }
        return h.to_string();
    }
    match find::<std::io::Error>(chain) {
        Some(io) => errno_text(io),
        None => chain.to_string(),
    }
}

use std::error::Error as _;

fn find<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:443"), "::1");
    }

    #[test]
    fn creation_failures_are_final_config_errors() {
        // checklist 20
        let long = format!("unix:///{}", "a".repeat(120));
        let e = Client::new(long.as_str(), None).unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().ends_with("\" is too long"), "{e}");
        let e = Client::new("npipe:////./pipe/x", None).unwrap_err();
        if !cfg!(windows) {
            assert_eq!(e.to_string(), "protocol not available");
        }
        let e = Client::new("foo://bar:1", None).unwrap_err();
        assert!(e.is_config());
    }
}

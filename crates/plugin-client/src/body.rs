//! Request and reply bodies: what a call sends ([`SendBody`], the internal
//! `ReqBody`), how replies are read under the size cap and the deadlines,
//! and the caller-owned [`ReplyBody`] that `stream` returns.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::{BoxError, Error, TIMEOUT, errno_text};
use crate::pool::Reply;

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// How much a reader-backed body reads at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A request body given to [`CallRequest::body`](crate::CallRequest::body)
/// (Docker's `SendFile`, and raw bodies).
///
/// Bytes in memory are sent with `Content-Length` and resent whole if the
/// call is retried. Streams and readers are sent chunked unless their
/// length is given, and a call never retries once any of their bytes has
/// been handed to the connection (Docker resends such bodies empty).
pub struct SendBody {
    inner: SendInner,
}

enum SendInner {
    Bytes(Bytes),
    Stream {
        len: Option<u64>,
        stream: ByteStream,
    },
}

impl SendBody {
    /// A body from a stream of chunks, sent chunked.
    pub fn from_stream<S>(stream: S) -> SendBody
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        SendBody {
            inner: SendInner::Stream {
                len: None,
                stream: Box::pin(stream),
            },
        }
    }

    /// A body from a stream of chunks that add up to exactly `len` bytes,
    /// sent with `Content-Length: len`. A stream that yields another
    /// amount fails the call.
    pub fn from_sized_stream<S>(len: u64, stream: S) -> SendBody
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        SendBody {
            inner: SendInner::Stream {
                len: Some(len),
                stream: Box::pin(stream),
            },
        }
    }

    /// A body read from `reader` (a file, a pipe), sent chunked.
    pub fn from_reader<R>(reader: R) -> SendBody
    where
        R: AsyncRead + Send + 'static,
    {
        SendBody::from_stream(reader_stream(reader))
    }

    /// A body of exactly `len` bytes read from `reader`, sent with
    /// `Content-Length: len` (for a file whose size is known).
    pub fn from_sized_reader<R>(len: u64, reader: R) -> SendBody
    where
        R: AsyncRead + Send + 'static,
    {
        SendBody::from_sized_stream(len, reader_stream(reader))
    }

    /// The length sent as `Content-Length`, or `None` for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        match &self.inner {
            SendInner::Bytes(b) => Some(b.len() as u64),
            SendInner::Stream { len, .. } => *len,
        }
    }

    pub(crate) fn into_payload(self) -> Payload {
        match self.inner {
            SendInner::Bytes(b) => Payload::Bytes(b),
            SendInner::Stream { len, stream } => Payload::Stream(Arc::new(SharedStream {
                len,
                attempt: AtomicU32::new(0),
                started: AtomicBool::new(false),
                stream: Mutex::new(Some(stream)),
            })),
        }
    }
}

impl std::fmt::Debug for SendBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            SendInner::Bytes(b) => f.debug_tuple("SendBody::Bytes").field(&b.len()).finish(),
            SendInner::Stream { len, .. } => f.debug_tuple("SendBody::Stream").field(len).finish(),
        }
    }
}

impl From<Bytes> for SendBody {
    fn from(b: Bytes) -> SendBody {
        SendBody {
            inner: SendInner::Bytes(b),
        }
    }
}

impl From<Vec<u8>> for SendBody {
    fn from(b: Vec<u8>) -> SendBody {
        Bytes::from(b).into()
    }
}

impl From<String> for SendBody {
    fn from(s: String) -> SendBody {
        Bytes::from(s).into()
    }
}

impl From<&'static [u8]> for SendBody {
    fn from(b: &'static [u8]) -> SendBody {
        Bytes::from_static(b).into()
    }
}

impl From<&'static str> for SendBody {
    fn from(s: &'static str) -> SendBody {
        Bytes::from_static(s.as_bytes()).into()
    }
}

/// Turns an `AsyncRead` into chunks without copying beyond the read itself.
fn reader_stream<R>(reader: R) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static
where
    R: AsyncRead + Send + 'static,
{
    let state = Some((Box::pin(reader), BytesMut::new()));
    futures_util::stream::unfold(state, |state| async move {
        let (mut reader, mut buf) = state?;
        buf.reserve(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => {
                let chunk = buf.split().freeze();
                Some((Ok(chunk), Some((reader, buf))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// What a call sends, kept across attempts.
pub(crate) enum Payload {
    /// In memory: every attempt sends all of it (divergence from Docker,
    /// which resends a consumed reader, i.e. nothing).
    Bytes(Bytes),
    /// Streamed: shared by the attempts, retried only while untouched.
    Stream(Arc<SharedStream>),
}

impl Payload {
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Stream(s) => s.len,
        }
    }

    /// The body for a new attempt.
    pub(crate) fn body(&self) -> ReqBody {
        match self {
            Payload::Bytes(b) => ReqBody::Full(Some(b.clone())),
            Payload::Stream(s) => {
                let attempt = s.attempt.fetch_add(1, Ordering::AcqRel) + 1;
                ReqBody::Stream {
                    shared: s.clone(),
                    attempt,
                }
            }
        }
    }

    /// `false` once any byte of a streamed body left for the connection:
    /// it cannot be sent again.
    pub(crate) fn can_resend(&self) -> bool {
        match self {
            Payload::Bytes(_) => true,
            Payload::Stream(s) => !s.started.load(Ordering::Acquire),
        }
    }
}

/// A streamed body shared by the attempts of one call. Only the current
/// attempt's body may poll it: a connection task left over from a failed
/// attempt must not steal chunks from the next one.
pub(crate) struct SharedStream {
    len: Option<u64>,
    attempt: AtomicU32,
    started: AtomicBool,
    stream: Mutex<Option<ByteStream>>,
}

/// The body hyper sends.
pub(crate) enum ReqBody {
    Full(Option<Bytes>),
    Stream {
        shared: Arc<SharedStream>,
        attempt: u32,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("request body was taken over by a newer attempt")]
struct Superseded;

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            ReqBody::Stream { shared, attempt } => {
                if shared.attempt.load(Ordering::Acquire) != *attempt {
                    return Poll::Ready(Some(Err(Box::new(Superseded))));
                }
                let mut slot = match shared.stream.lock() {
                    Ok(slot) => slot,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let Some(stream) = slot.as_mut() else {
                    return Poll::Ready(None);
                };
                match ready!(stream.as_mut().poll_next(cx)) {
                    Some(Ok(chunk)) => {
                        if !chunk.is_empty() {
                            shared.started.store(true, Ordering::Release);
                        }
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Some(Err(e)) => {
                        // A reader that failed cannot be trusted to start
                        // over: no retry.
                        shared.started.store(true, Ordering::Release);
                        *slot = None;
                        Poll::Ready(Some(Err(Box::new(e))))
                    }
                    None => {
                        *slot = None;
                        Poll::Ready(None)
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Full(b) => b.as_ref().is_none_or(Bytes::is_empty),
            ReqBody::Stream { shared, .. } => shared.len == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Stream { shared, .. } => match shared.len {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    /// The per-call timeout (Docker's `WithRequestTimeout`, a context
    /// deadline).
    Call,
    /// The client's whole-exchange timeout (`http.Client.Timeout`).
    Client,
}

impl TimeoutKind {
    /// Go's text while waiting for the reply's head.
    pub(crate) fn headers_text(self) -> &'static str {
        match self {
            TimeoutKind::Call => "context deadline exceeded",
            TimeoutKind::Client => {
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            }
        }
    }

    /// Go's text while reading the reply's body.
    pub(crate) fn body_text(self) -> &'static str {
        match self {
            TimeoutKind::Call => "context deadline exceeded",
            TimeoutKind::Client => {
                "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
            }
        }
    }
}

/// The earliest of an attempt's per-call and whole-exchange deadlines and
/// the whole call's deadline. It covers the attempt from sending to the
/// last byte of the reply, as Go's contexts do. No timer exists when none
/// is set (Docker's default).
pub(crate) struct Deadline(Option<(Pin<Box<Sleep>>, TimeoutKind)>);

impl Deadline {
    pub(crate) fn new(
        call: Option<Duration>,
        client: Option<Duration>,
        until: Option<Instant>,
    ) -> Deadline {
        if call.is_none() && client.is_none() && until.is_none() {
            // Docker's default: no clock read, no timer.
            return Deadline(None);
        }
        let start = Instant::now();
        let pick = match (call, client) {
            (Some(c), Some(t)) if t < c => Some((start + t, TimeoutKind::Client)),
            (Some(c), _) => Some((start + c, TimeoutKind::Call)),
            (None, Some(t)) => Some((start + t, TimeoutKind::Client)),
            (None, None) => None,
        };
        // The call's deadline reads as a per-call one: in Go both would be
        // a context deadline.
        let pick = match (pick, until) {
            (Some((at, kind)), Some(u)) if at <= u => Some((at, kind)),
            (_, Some(u)) => Some((u, TimeoutKind::Call)),
            (pick, None) => pick,
        };
        Deadline(pick.map(|(at, kind)| (Box::pin(tokio::time::sleep_until(at)), kind)))
    }

    /// `Some` once the deadline has passed.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<TimeoutKind> {
        let (sleep, kind) = self.0.as_mut()?;
        sleep.as_mut().poll(cx).is_ready().then_some(*kind)
    }
}

use std::future::Future as _;

/// Why reading a reply body stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    TooLarge,
    Timeout(TimeoutKind),
    Hyper(hyper::Error),
}

impl ReadError {
    /// Go's text for the failure (`unexpected EOF` for a cut body).
    pub(crate) fn text(&self, limit: u64) -> String {
        match self {
            ReadError::TooLarge => crate::error::too_large_text(limit),
            ReadError::Timeout(k) => k.body_text().to_owned(),
            ReadError::Hyper(e) => body_error_text(e),
        }
    }
}

/// The text Go's body reader gives for a failure mid-body.
pub(crate) fn body_error_text(e: &hyper::Error) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            // hyper reports a body cut short as its own `UnexpectedEof`
            // ("end of file before message length reached"); Go says
            // `unexpected EOF`.
            if io.raw_os_error().is_none() && io.kind() == io::ErrorKind::UnexpectedEof {
                return "unexpected EOF".to_owned();
            }
            return errno_text(io);
        }
        cur = err.source();
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "unexpected EOF".to_owned()
    } else {
        e.to_string()
    }
}

/// Reads a whole reply body, failing as soon as it passes `limit` bytes
/// (a declared `Content-Length` over the limit fails before any read). A
/// single-chunk body is returned without a copy.
pub(crate) async fn read_capped(
    body: &mut Reply,
    deadline: &mut Deadline,
    limit: u64,
) -> Result<Bytes, ReadError> {
    let hint = body.size_hint();
    if hint.lower() > limit {
        return Err(ReadError::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total: u64 = 0;
    loop {
        let frame = poll_fn(|cx| {
            // The deadline first: a plugin that keeps sending must still be
            // cut off when time is up.
            if let Some(kind) = deadline.poll_expired(cx) {
                return Poll::Ready(Err(ReadError::Timeout(kind)));
            }
            Pin::new(&mut *body).poll_frame(cx).map(Ok)
        })
        .await?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(ReadError::Hyper)?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers carry nothing Docker reads
        };
        total += chunk.len() as u64;
        if total > limit {
            return Err(ReadError::TooLarge);
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let want = hint.exact().unwrap_or(total).min(limit);
                let mut buf = BytesMut::with_capacity(usize::try_from(want).unwrap_or(usize::MAX));
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(b), None) => b,
        (None, None) => Bytes::new(),
    })
}

/// A reply body that the caller reads at its own pace: what
/// [`Client::stream`](crate::Client::stream) returns (Docker's `Stream`,
/// used by `LogDriver.ReadLogs`).
///
/// It is a [`Stream`] of chunks and an [`AsyncRead`]. It is not size
/// capped. The client's whole-exchange timeout and the per-call timeout
/// still run while it is read, as Go's do; dropping it closes the
/// connection unless the body was read to the end.
pub struct ReplyBody {
    body: Reply,
    deadline: Deadline,
    method: String,
    /// What `poll_read` has not handed out yet.
    pending: Bytes,
    done: bool,
}

impl ReplyBody {
    pub(crate) fn new(body: Reply, deadline: Deadline, method: &str) -> ReplyBody {
        ReplyBody {
            body,
            deadline,
            method: method.to_owned(),
            pending: Bytes::new(),
            done: false,
        }
    }

    /// The reply's `Content-Length`, when the plugin sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(kind) = self.deadline.poll_expired(cx) {
            self.done = true;
            let err = Error::body(&self.method, kind.body_text().to_owned()).with_flags(TIMEOUT);
            return Poll::Ready(Some(Err(err)));
        }
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) if chunk.is_empty() => continue,
                    Ok(chunk) => return Poll::Ready(Some(Ok(chunk))),
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    let err = Error::body(&self.method, body_error_text(&e)).with_source(e);
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyBody")
            .field("method", &self.method)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for ReplyBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.pending.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.pending))));
        }
        this.poll_chunk(cx)
    }
}

impl AsyncRead for ReplyBody {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match ready!(this.poll_chunk(cx)) {
                Some(Ok(chunk)) => this.pending = chunk,
                Some(Err(e)) => return Poll::Ready(Err(e.into_io())),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

//! What a handler answers: JSON bytes, or a byte stream (`LogDriver.ReadLogs`).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

use crate::PluginError;

/// The reply media type. go-plugins-helpers sends this value; Docker never
/// checks it (behaviour spec §4, §9).
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.1+json";

/// A successful reply: a `200` with a body.
pub struct Reply {
    pub(crate) body: ReplyBody,
    pub(crate) content_type: HeaderValue,
}

pub(crate) enum ReplyBody {
    Full(Bytes),
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

impl Reply {
    /// Encodes `value` as go-plugins-helpers does (Go's `json.Encoder`: HTML
    /// characters escaped, a trailing newline).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Reply, PluginError> {
        let bytes = plugin_proto::encode_args(Some(value))
            .map_err(|e| PluginError::new(format!("encoding reply: {e}")))?;
        Ok(Reply::bytes(bytes))
    }

    /// A reply whose body is `body` as is, sent with the plugin media type.
    pub fn bytes(body: impl Into<Bytes>) -> Reply {
        Reply {
            body: ReplyBody::Full(body.into()),
            content_type: HeaderValue::from_static(CONTENT_TYPE),
        }
    }

    /// A reply streamed from `reader` until it ends (chunked encoding). A
    /// read error ends the response abruptly, which the engine sees as a
    /// broken stream.
    pub fn stream(reader: impl AsyncRead + Send + 'static) -> Reply {
        Reply {
            body: ReplyBody::Stream(Box::pin(reader)),
            content_type: HeaderValue::from_static(CONTENT_TYPE),
        }
    }

    /// Replaces the `Content-Type` (an invalid header value is ignored).
    pub fn with_content_type(mut self, content_type: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(content_type) {
            self.content_type = v;
        }
        self
    }

    /// The body, when it is not a stream (for in-process tests).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.body {
            ReplyBody::Full(b) => Some(b),
            ReplyBody::Stream(_) => None,
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Reply");
        match &self.body {
            ReplyBody::Full(b) => d.field("body", b),
            ReplyBody::Stream(_) => d.field("body", &"<stream>"),
        };
        d.field("content_type", &self.content_type).finish()
    }
}

impl From<Bytes> for Reply {
    fn from(b: Bytes) -> Reply {
        Reply::bytes(b)
    }
}

/// The response body hyper sends.
pub(crate) enum OutBody {
    Full(Option<Bytes>),
    Stream {
        reader: Pin<Box<dyn AsyncRead + Send>>,
        buf: Box<[u8]>,
    },
}

impl OutBody {
    pub(crate) fn full(b: impl Into<Bytes>) -> OutBody {
        let b = b.into();
        OutBody::Full((!b.is_empty()).then_some(b))
    }

    pub(crate) fn from_reply(body: ReplyBody) -> OutBody {
        match body {
            ReplyBody::Full(b) => OutBody::full(b),
            ReplyBody::Stream(reader) => OutBody::Stream {
                reader,
                buf: vec![0; 16 * 1024].into_boxed_slice(),
            },
        }
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            OutBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Stream { reader, buf } => {
                let mut rb = ReadBuf::new(buf);
                match reader.as_mut().poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(None),
                    Poll::Ready(Ok(())) => {
                        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(rb.filled())))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            OutBody::Full(None) => SizeHint::with_exact(0),
            OutBody::Stream { .. } => SizeHint::default(),
        }
    }
}

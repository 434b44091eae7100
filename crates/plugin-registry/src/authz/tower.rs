//! The chain as a `tower` layer (feature `tower`): authorization in front
//! of any `tower::Service<http::Request<B>>`, hyper's or axum's.
//!
//! Request bodies the plugins are shown (JSON) are read whole, bounded by
//! [`AuthzOptions::max_body_size`](super::AuthzOptions) and
//! [`AuthzOptions::body_timeout`](super::AuthzOptions), and the inner
//! service reads exactly those bytes. Other bodies stream through unread,
//! as in Docker. JSON responses are buffered, bounded, and sent only once
//! every plugin approved them; other responses are approved from their
//! status and headers (the plugins are not shown their bodies, as in
//! Docker) before a byte of them leaves, then stream.
//!
//! **What it must never do:** call the inner service for a request the
//! plugins did not approve as it is, or let a byte of an unapproved
//! response reach the client.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use plugin_proto::retry::go_duration;

use super::{AuthzChain, AuthzError, AuthzErrorKind, rules};

/// Puts an [`AuthzChain`] in front of a service.
///
/// ```no_run
/// use plugin_registry::authz::{AuthzChain, AuthzLayer};
/// use tower_layer::Layer as _;
///
/// # fn wrap<S>(chain: AuthzChain, engine_api: S) {
/// let service = AuthzLayer::new(chain).layer(engine_api);
/// # let _ = service;
/// # }
/// ```
#[derive(Clone)]
pub struct AuthzLayer {
    chain: AuthzChain,
}

impl AuthzLayer {
    /// A layer asking `chain`.
    pub fn new(chain: AuthzChain) -> AuthzLayer {
        AuthzLayer { chain }
    }
}

impl<S> tower_layer::Layer<S> for AuthzLayer {
    type Service = AuthzService<S>;

    fn layer(&self, inner: S) -> AuthzService<S> {
        AuthzService {
            inner,
            chain: self.chain.clone(),
        }
    }
}

/// The service [`AuthzLayer`] makes: requests reach `S` only when every
/// plugin allowed them; denials are answered as Docker's API server
/// answers errors (403 or 500, `{"message":"…"}`).
#[derive(Clone)]
pub struct AuthzService<S> {
    inner: S,
    chain: AuthzChain,
}

/// A body that was read whole (and shown to the plugins) or streams
/// through unread.
pub struct AuthzBody<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Whole(Option<Bytes>),
    Stream(Pin<Box<B>>),
}

impl<B> AuthzBody<B> {
    fn whole(bytes: Bytes) -> AuthzBody<B> {
        AuthzBody {
            kind: Kind::Whole((!bytes.is_empty()).then_some(bytes)),
        }
    }

    fn stream(body: B) -> AuthzBody<B> {
        AuthzBody {
            kind: Kind::Stream(Box::pin(body)),
        }
    }
}

impl<B: Body<Data = Bytes>> Body for AuthzBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole(bytes) => bytes.is_none(),
            Kind::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Stream(body) => body.size_hint(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower_service::Service<http::Request<B>> for AuthzService<S>
where
    S: tower_service::Service<http::Request<AuthzBody<B>>, Response = http::Response<RB>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: std::fmt::Display,
{
    type Response = http::Response<AuthzBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was made ready runs this request (tower's rule).
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(exchange(self.chain.clone(), ready, request))
    }
}

async fn exchange<S, B, RB>(
    chain: AuthzChain,
    mut inner: S,
    request: http::Request<B>,
) -> Result<http::Response<AuthzBody<RB>>, S::Error>
where
    S: tower_service::Service<http::Request<AuthzBody<B>>, Response = http::Response<RB>>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
    RB: Body<Data = Bytes>,
    RB::Error: std::fmt::Display,
{
    if chain.snapshot().is_empty() {
        let response = inner.call(request.map(AuthzBody::stream)).await?;
        return Ok(response.map(AuthzBody::stream));
    }
    let (head, body) = request.into_parts();
    let uri = head.uri.to_string();
    let (authorized, body) = if chain.shows_body(&uri, &head.headers) {
        let bytes = match read_request_body(&chain, &head, body).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!("AuthZRequest for {} {uri} returned error: {e}", head.method);
                return Ok(error_response(&e));
            }
        };
        let authorized = chain.authorize_request(&head, Some(&bytes)).await;
        (authorized, AuthzBody::whole(bytes))
    } else {
        let declared = body.size_hint().exact();
        let authorized = match declared_mismatch(&head.headers, declared) {
            Some(e) => Err(e),
            None => chain.authorize_request(&head, None).await,
        };
        (authorized, AuthzBody::stream(body))
    };
    let mut authorized = match authorized {
        Ok(a) => a,
        Err(e) => return Ok(error_response(&e)),
    };
    let response = inner.call(http::Request::from_parts(head, body)).await?;
    if !authorized.checks_response() {
        return Ok(response.map(AuthzBody::stream));
    }
    let (parts, body) = response.into_parts();
    let body = if chain.shows_body(&uri, &parts.headers) {
        let limit = chain.options().max_response_size;
        let bytes = match read_bounded(body, limit, None).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge) => {
                return Ok(error_response(
                    &AuthzErrorKind::ResponseTooLarge { limit }.into(),
                ));
            }
            Err(ReadError::Body(e)) | Err(ReadError::Timeout(e)) => {
                return Ok(error_response(
                    &AuthzErrorKind::ResponseUnreadable { reason: e }.into(),
                ));
            }
        };
        if let Err(e) = authorized
            .authorize_response(parts.status, &parts.headers, Some(&bytes))
            .await
        {
            return Ok(error_response(&e));
        }
        AuthzBody::whole(bytes)
    } else {
        if let Err(e) = authorized
            .authorize_response(parts.status, &parts.headers, None)
            .await
        {
            return Ok(error_response(&e));
        }
        AuthzBody::stream(body)
    };
    Ok(http::Response::from_parts(parts, body))
}

/// A body whose exact size is known must match its `Content-Length`.
fn declared_mismatch(headers: &http::HeaderMap, exact: Option<u64>) -> Option<AuthzError> {
    let exact = exact?;
    let declared = headers.get(header::CONTENT_LENGTH)?;
    (declared.as_bytes() != exact.to_string().as_bytes()).then(|| {
        AuthzError::framing(format!(
            "Content-Length says {} bytes but the body has {exact}",
            String::from_utf8_lossy(declared.as_bytes())
        ))
    })
}

async fn read_request_body<B>(
    chain: &AuthzChain,
    head: &http::request::Parts,
    body: B,
) -> Result<Bytes, AuthzError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    rules::check_framing(head.version, &head.headers, None)?;
    if let Some(e) = declared_mismatch(&head.headers, body.size_hint().exact()) {
        return Err(e);
    }
    let limit = chain.options().max_body_size;
    let too_large = || AuthzError::from(AuthzErrorKind::BodyTooLarge { limit });
    // A declared length over the limit is refused without reading a byte.
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    match read_bounded(body, limit, chain.options().body_timeout).await {
        Ok(bytes) => Ok(bytes),
        Err(ReadError::TooLarge) => Err(too_large()),
        Err(ReadError::Body(e)) => Err(AuthzError::framing(format!(
            "the request body could not be read whole: {e}"
        ))),
        Err(ReadError::Timeout(e)) => Err(AuthzError::framing(e)),
    }
}

enum ReadError {
    TooLarge,
    Body(String),
    Timeout(String),
}

/// Reads a body whole, up to `limit` bytes (trailers are dropped).
async fn read_bounded<B>(body: B, limit: usize, bound: Option<Duration>) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    match bound {
        Some(bound) => tokio::time::timeout(bound, read).await.unwrap_or_else(|_| {
            Err(ReadError::Timeout(format!(
                "the request body was not received whole within {}",
                go_duration(bound)
            )))
        }),
        None => read.await,
    }
}

/// Docker's error answer: the error's status, `application/json`,
/// `{"message":"…"}`.
fn error_response<RB>(error: &AuthzError) -> http::Response<AuthzBody<RB>> {
    let mut response = http::Response::new(AuthzBody::whole(Bytes::from(error.json_body())));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

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

use super::{AuthzChain, AuthzError, AuthzErrorKind, Seen, rules, shows_body};

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

/// A body that was read whole (and shown to the plugins), streams through
/// unread, or both: the first bytes of an oversized body that
/// [`AuthzOptions::forward_unshown_bodies`](super::AuthzOptions) let
/// through, then the rest.
pub struct AuthzBody<B> {
    read: Option<Bytes>,
    rest: Option<Pin<Box<B>>>,
}

impl<B> AuthzBody<B> {
    fn whole(bytes: Bytes) -> AuthzBody<B> {
        AuthzBody {
            read: (!bytes.is_empty()).then_some(bytes),
            rest: None,
        }
    }

    fn stream(body: B) -> AuthzBody<B> {
        AuthzBody::resume(Bytes::new(), Box::pin(body))
    }

    fn resume(read: Bytes, rest: Pin<Box<B>>) -> AuthzBody<B> {
        AuthzBody {
            read: (!read.is_empty()).then_some(read),
            rest: Some(rest),
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
        let this = self.get_mut();
        if let Some(bytes) = this.read.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        match &mut this.rest {
            Some(rest) => rest.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let read = self.read.as_ref().map_or(0, |b| b.len() as u64);
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.size_hint());
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint.set_lower(rest.lower().saturating_add(read));
        hint
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
    let mut body = Box::pin(body);
    let uri = rules::request_uri(&head);
    let authorized = if shows_body(&uri, &head.headers) {
        match read_request_body(&chain, &head, &mut body).await {
            Ok(Read::Whole(bytes)) => {
                let authorized = chain
                    .authorize_seen(&head, Some(&bytes), Seen::Whole(&bytes))
                    .await;
                authorized.map(|a| (a, AuthzBody::whole(bytes)))
            }
            Ok(Read::TooLarge(prefix)) => {
                let authorized = chain.authorize_seen(&head, None, Seen::TooLarge).await;
                authorized.map(|a| (a, AuthzBody::resume(prefix, body)))
            }
            Err(e) => {
                tracing::error!("AuthZRequest for {} {uri} returned error: {e}", head.method);
                Err(e)
            }
        }
    } else {
        match declared_mismatch(&head.headers, body.size_hint().exact()) {
            Some(e) => {
                tracing::error!("AuthZRequest for {} {uri} returned error: {e}", head.method);
                Err(e)
            }
            None => chain
                .authorize_seen(&head, None, Seen::Unread)
                .await
                .map(|a| (a, AuthzBody::resume(Bytes::new(), body))),
        }
    };
    let (mut authorized, body) = match authorized {
        Ok(pair) => pair,
        Err(e) => return Ok(error_response(&e)),
    };
    let response = inner.call(http::Request::from_parts(head, body)).await?;
    if !authorized.checks_response() {
        return Ok(response.map(AuthzBody::stream));
    }
    let (parts, body) = response.into_parts();
    let mut body = Box::pin(body);
    let shown = shows_body(&uri, &parts.headers);
    let (whole, body) = if shown {
        let limit = chain.options().max_response_size;
        match read_bounded(&mut body, limit, None).await {
            Ok(Read::Whole(bytes)) => (Some(bytes.clone()), AuthzBody::whole(bytes)),
            Ok(Read::TooLarge(prefix)) => (None, AuthzBody::resume(prefix, body)),
            Err(e) => {
                let reason = match e {
                    ReadError::Body(e) | ReadError::Timeout(e) => e,
                };
                let e = AuthzErrorKind::ResponseUnreadable { reason }.into();
                return Ok(error_response(&e));
            }
        }
    } else {
        (None, AuthzBody::resume(Bytes::new(), body))
    };
    let seen = match &whole {
        Some(bytes) => Seen::Whole(bytes),
        None if shown => Seen::TooLarge,
        None => Seen::Unread,
    };
    if let Err(e) = authorized
        .authorize_response_seen(parts.status, &parts.headers, seen)
        .await
    {
        return Ok(error_response(&e));
    }
    Ok(http::Response::from_parts(parts, body))
}

/// A body whose exact size is known must match its `Content-Length`.
fn declared_mismatch(headers: &http::HeaderMap, exact: Option<u64>) -> Option<AuthzError> {
    match (rules::declared_length(headers), exact) {
        (Err(e), _) => Some(e),
        (Ok(Some(declared)), Some(exact)) if declared != exact => Some(AuthzError::framing(
            format!("Content-Length says {declared} bytes but the body has {exact}"),
        )),
        _ => None,
    }
}

/// What reading a body up to the limit gave.
enum Read {
    /// The whole body.
    Whole(Bytes),
    /// More than the limit: the bytes read so far (the rest is unread).
    TooLarge(Bytes),
}

enum ReadError {
    Body(String),
    Timeout(String),
}

async fn read_request_body<B>(
    chain: &AuthzChain,
    head: &http::request::Parts,
    body: &mut Pin<Box<B>>,
) -> Result<Read, AuthzError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    rules::check_framing(head.version, &head.headers, None)?;
    if let Some(e) = declared_mismatch(&head.headers, body.size_hint().exact()) {
        return Err(e);
    }
    let options = chain.options();
    let limit = options.max_body_size;
    // A declared length over the limit is judged from the head alone.
    if body.size_hint().lower() > limit as u64 {
        return Ok(Read::TooLarge(Bytes::new()));
    }
    let read = read_bounded(body, limit, options.body_timeout).await;
    read.map_err(|e| match e {
        ReadError::Body(e) => {
            AuthzError::framing(format!("the request body could not be read whole: {e}"))
        }
        ReadError::Timeout(e) => AuthzError::framing(e),
    })
}

/// Reads a body up to `limit` bytes (trailers are dropped), leaving the
/// rest of an oversized one unread in `body`.
async fn read_bounded<B>(
    body: &mut Pin<Box<B>>,
    limit: usize,
    bound: Option<Duration>,
) -> Result<Read, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok(Read::TooLarge(buf.freeze()));
                }
            }
        }
        Ok(Read::Whole(buf.freeze()))
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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;
    use http_body_util::Full;

    use super::*;

    fn frames<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Vec<Bytes>
    where
        B::Error: std::fmt::Debug,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().now_or_never().flatten() {
            out.push(frame.unwrap().into_data().unwrap());
        }
        assert!(body.is_end_stream());
        out
    }

    #[test]
    fn bodies_give_what_was_read_then_the_rest_with_exact_sizes() {
        // the inner service and the client get every byte, once, in order
        let whole = AuthzBody::<Full<Bytes>>::whole(Bytes::from_static(b"{}"));
        assert_eq!(whole.size_hint().exact(), Some(2));
        assert_eq!(frames(whole), [Bytes::from_static(b"{}")]);
        let empty = AuthzBody::<Full<Bytes>>::whole(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));

        let rest = Full::new(Bytes::from_static(b"world"));
        let resumed = AuthzBody::resume(Bytes::from_static(b"hello "), Box::pin(rest));
        assert_eq!(resumed.size_hint().exact(), Some(11));
        assert!(!resumed.is_end_stream());
        assert_eq!(frames(resumed), [&b"hello "[..], &b"world"[..]]);

        let streamed = AuthzBody::stream(Full::new(Bytes::from_static(b"tar")));
        assert_eq!(streamed.size_hint().exact(), Some(3));
        assert_eq!(frames(streamed), [&b"tar"[..]]);
    }

    #[test]
    fn a_declared_length_must_match_an_exact_body() {
        // beyond Docker: the framing rule, for bodies not framed by hyper
        let mut headers = http::HeaderMap::new();
        assert!(declared_mismatch(&headers, Some(3)).is_none());
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("003"));
        assert!(declared_mismatch(&headers, Some(3)).is_none());
        assert!(declared_mismatch(&headers, None).is_none());
        let err = declared_mismatch(&headers, Some(4)).unwrap();
        assert_eq!(
            err.to_string(),
            "request refused before authorization: Content-Length says 3 bytes but the body has 4"
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("+3"));
        assert!(declared_mismatch(&headers, Some(3)).is_some());
    }
}

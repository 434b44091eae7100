//! One HTTP request in, one response out: the protocol rules of spec §4
//! from the plugin's side.
//!
//! - Only `POST` (anything else is `405`).
//! - The path is `/<Subsystem>.<Method>`; the `Host` header (empty from
//!   Docker 20.10, `plugin.moby.localhost` from newer engines, `host:port`
//!   on tcp) and `Accept` are never looked at.
//! - Replies carry `Content-Type: application/vnd.docker.plugins.v1.1+json`.
//! - A [`PluginError`] is its status (500 unless chosen) with
//!   `{"Err":"<message>"}`; a body that does not decode is a 400 the same
//!   way; a body over the limit is a 413 (refused from its
//!   `Content-Length` before any of it is read, or stopped at the cap
//!   while reading a chunked one), a body that does not arrive within the
//!   body-read timeout a 408; both close the connection, since the rest of
//!   the body is never read.
//! - The body is read (within those limits) before the method is looked
//!   up, so no answer leaves an unread body for the next request to trip
//!   on.
//! - An unknown method is Go's `404 page not found\n` (text/plain), byte
//!   for byte what go-plugins-helpers' mux answers, so engines see the
//!   familiar `<Method>: 404 page not found` and libnetwork's
//!   `IsNotFound` treats optional methods as absent.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE as CT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::conn::Limits;
use crate::plugin::{BoxFuture, Route};
use crate::reply::{CONTENT_TYPE, OutBody};
use crate::{Plugin, PluginError, Reply};

/// The body of Go's `http.NotFound`.
const NOT_FOUND_BODY: &str = "404 page not found\n";

pub(crate) async fn handle(
    plugin: Arc<Plugin>,
    limits: Limits,
    req: Request<Incoming>,
) -> Response<OutBody> {
    let start = Instant::now();
    let method = req
        .uri()
        .path()
        .strip_prefix('/')
        .unwrap_or(req.uri().path())
        .to_owned();
    let resp = respond(&plugin, limits, &method, req).await;
    tracing::debug!(
        method = %method,
        status = resp.status().as_u16(),
        elapsed_us = start.elapsed().as_micros() as u64,
        "plugin call"
    );
    resp
}

async fn respond(
    plugin: &Plugin,
    limits: Limits,
    method: &str,
    req: Request<Incoming>,
) -> Response<OutBody> {
    let max_body = limits.max_body;
    let req_method = req.method().clone();
    if req.body().size_hint().lower() > max_body as u64 {
        return closing(error_response(&too_large(max_body)));
    }
    let read = Limited::new(req.into_body(), max_body).collect();
    let read = match limits.body_read_timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(r) => r,
            Err(_) => {
                return closing(error_response(&PluginError::with_status(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("request body not received within {limit:?}"),
                )));
            }
        },
        None => read.await,
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return closing(error_response(&too_large(max_body)));
        }
        Err(e) => {
            return closing(error_response(&PluginError::with_status(
                StatusCode::BAD_REQUEST,
                format!("reading request body: {e}"),
            )));
        }
    };
    if req_method != Method::POST {
        let mut resp = error_response(&PluginError::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {req_method} not allowed: plugin calls are POST"),
        ));
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let handler = match plugin.route(method) {
        Route::NotFound => return not_found(),
        Route::Activate(reply) => return ok_response(reply),
        Route::Handler(h) => h,
    };
    match Contained(Some(handler(body))).await {
        Ok(Ok(reply)) => ok_response(reply),
        Ok(Err(e)) => {
            if e.status().is_server_error() {
                tracing::warn!(method, error = %e, "plugin call failed");
            }
            error_response(&e)
        }
        Err(panic) => {
            tracing::error!(method, error = %panic, "plugin handler panicked");
            error_response(&PluginError::new(format!(
                "{method}: plugin handler panicked"
            )))
        }
    }
}

fn too_large(max_body: usize) -> PluginError {
    PluginError::with_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {max_body} bytes"),
    )
}

/// Marks `resp` as the connection's last: the request's body was not read
/// to its end, so what follows on the stream cannot be trusted as the next
/// request.
fn closing(mut resp: Response<OutBody>) -> Response<OutBody> {
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A handler run as if on a task of its own, without one: a panic in
/// plugin code becomes a 500 instead of a dropped connection (which Docker
/// would retry, body and all), and if the call is dropped before the
/// handler finishes (the engine hung up, or gave up at its timeout), the
/// rest is spawned, so it runs to the end rather than stopping half-way
/// through, say, creating a volume. Polling it on the connection's task
/// saves a task and a wake-up of another worker thread on every call.
struct Contained(Option<BoxFuture<Result<Reply, PluginError>>>);

impl Future for Contained {
    /// The handler's result, or the panic's message.
    type Output = Result<Result<Reply, PluginError>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handler) = self.0.as_mut() else {
            return Poll::Ready(Err("polled after completion".to_owned()));
        };
        let polled = panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)));
        let out = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => Ok(result),
            Err(payload) => Err(panic_message(payload.as_ref())),
        };
        // Finished or panicked: nothing is left to hand over on drop.
        self.0 = None;
        Poll::Ready(out)
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        if let Some(rest) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = rest.await;
            });
        }
    }
}

/// A panic's message, as tokio's `JoinError` shows it.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

fn ok_response(reply: Reply) -> Response<OutBody> {
    let mut resp = Response::new(OutBody::from_reply(reply.body));
    resp.headers_mut().insert(CT, reply.content_type);
    resp
}

/// `{"Err":"<message>"}\n` with the error's status and the plugin media
/// type, as go-plugins-helpers' `EncodeResponse` writes it.
pub(crate) fn error_response(e: &PluginError) -> Response<OutBody> {
    #[derive(serde::Serialize)]
    struct ErrBody<'a> {
        #[serde(rename = "Err")]
        err: &'a str,
    }
    let body = plugin_proto::encode_args(Some(&ErrBody { err: e.message() }))
        .unwrap_or_else(|_| Bytes::from_static(b"{\"Err\":\"plugin error\"}\n"));
    let mut resp = Response::new(OutBody::full(body));
    *resp.status_mut() = e.status();
    resp.headers_mut()
        .insert(CT, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

fn not_found() -> Response<OutBody> {
    let mut resp = Response::new(OutBody::full(Bytes::from_static(NOT_FOUND_BODY.as_bytes())));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    let h = resp.headers_mut();
    h.insert(CT, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

//! The engine side of authorization plugins: Docker's `pkg/authorization`
//! as an ordered chain that fails closed.
//!
//! An [`AuthzChain`] holds plugin names in order and resolves each through
//! the [`Registry`] (`get(name, "authz")`) when it is asked. Before the
//! engine handles a request, [`AuthzChain::authorize_request`] sends
//! `AuthZPlugin.AuthZReq` to each plugin in turn; the first denial or
//! failure stops the chain. After the handler,
//! [`Authorized::authorize_response`] sends `AuthZPlugin.AuthZRes`, with the
//! same request fields plus the response's, to each plugin in turn. Texts,
//! ordering, the 4 MiB body limit, which bodies are shown (JSON only, never
//! the `/auth` endpoint's) and how headers are flattened are Docker's.
//!
//! Where Docker lets a request through that the plugins did not see as it
//! is, the chain refuses it (divergences in `docs/divergences.md`):
//!
//! - a body whose framing does not match it (a `Content-Length` of 0 with a
//!   body, a shorter or longer one, two of them, a body without framing)
//!   is refused before any plugin is asked (CVE-2024-41110);
//! - a JSON body over the limit is refused (CVE-2026-34040), and one the
//!   caller did not read is refused too (moby#41452);
//! - a plugin that is missing, refuses connections, does not answer within
//!   [`AuthzOptions::call_timeout`], answers a non-200 status, garbage, or a
//!   reply with `Err` set, fails the exchange;
//! - a plugin whose lookup failed is looked up again at the next request
//!   (Docker remembers the first lookup error forever).
//!
//! As in Docker, only JSON bodies are shown: an engine's handler that reads
//! JSON must refuse a body of another `Content-Type` (Docker's
//! `CheckForJSON`), or the plugins never see what it reads.
//!
//! With the `tower` feature, [`AuthzLayer`] puts the chain in front of any
//! `tower` service over `http` (hyper, axum).
//!
//! **What it must never do:** let a request reach the handler, or a
//! response reach the client, that every plugin did not approve as it is;
//! show a plugin the `Authorization` or registry credential headers.

mod error;
pub(crate) mod rules;
#[cfg(feature = "tower")]
mod tower;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use plugin_proto::authz::{AuthZReq, AuthZRes, PeerCertificate, Request, Response};
use plugin_proto::retry::go_duration;
use plugin_proto::{Call, kinds};

use crate::Registry;

pub use error::{AuthzError, AuthzErrorKind};
use rules::flatten_headers;
pub use rules::{MAX_BODY_SIZE, shows_body};
#[cfg(feature = "tower")]
pub use tower::{AuthzBody, AuthzLayer, AuthzService};

/// The chain's limits and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthzOptions {
    /// The largest request body shown to the plugins; a larger one is
    /// refused (Docker's `maxBodySize`, 4 MiB).
    pub max_body_size: usize,
    /// The largest response body shown to the plugins; a larger one is
    /// refused (Docker buffers 64 KiB and streams the rest to the client
    /// before any plugin has seen it). 16 MiB by default.
    pub max_response_size: usize,
    /// Bound on one plugin's answer, lookup included; `None` waits forever,
    /// as Docker does. 60 s by default.
    pub call_timeout: Option<Duration>,
    /// Bound on reading a request body whole (the `tower` adapter); a
    /// client announcing more bytes than it sends is refused when it
    /// expires. 60 s by default.
    pub body_timeout: Option<Duration>,
    /// The explicit opt-in to Docker's old leniency: a JSON body over the
    /// limit (or one the caller did not read) is not refused but forwarded
    /// without being shown, and the plugins are told so by an
    /// [`BODY_OMITTED_HEADER`] entry in `RequestHeaders` (or
    /// `ResponseHeaders`) saying why. A plugin that must see bodies denies
    /// such requests. Off by default; framing that does not match the body
    /// is refused either way.
    pub forward_unshown_bodies: bool,
}

/// The header the plugins see, in `RequestHeaders` or `ResponseHeaders`,
/// when [`AuthzOptions::forward_unshown_bodies`] let a JSON body through
/// without showing it; its value says why (`request body larger than
/// 4194304 bytes`). A client's own header of that name is never shown.
pub const BODY_OMITTED_HEADER: &str = "X-Authz-Body-Omitted";

/// How much of a JSON body the caller has.
#[derive(Clone, Copy)]
pub(crate) enum Seen<'a> {
    /// All of it.
    Whole(&'a [u8]),
    /// More than the limit (only the opt-in forwards it).
    TooLarge,
    /// None: it streams unread.
    Unread,
}

impl<'a> Seen<'a> {
    fn from_option(body: Option<&'a [u8]>, limit: usize) -> Seen<'a> {
        match body {
            Some(b) if b.len() > limit => Seen::TooLarge,
            Some(b) => Seen::Whole(b),
            None => Seen::Unread,
        }
    }
}

impl Default for AuthzOptions {
    fn default() -> Self {
        AuthzOptions {
            max_body_size: MAX_BODY_SIZE,
            max_response_size: 16 * 1024 * 1024,
            call_timeout: Some(Duration::from_secs(60)),
            body_timeout: Some(Duration::from_secs(60)),
            forward_unshown_bodies: false,
        }
    }
}

impl AuthzOptions {
    /// These options with another per-plugin call bound.
    pub fn with_call_timeout(mut self, timeout: impl Into<Option<Duration>>) -> AuthzOptions {
        self.call_timeout = timeout.into();
        self
    }

    /// These options with other body limits (request, response).
    pub fn with_limits(mut self, request: usize, response: usize) -> AuthzOptions {
        self.max_body_size = request;
        self.max_response_size = response;
        self
    }

    /// These options with [`forward_unshown_bodies`](Self::forward_unshown_bodies)
    /// set: oversized or unread JSON bodies are forwarded unshown, marked.
    pub fn forwarding_unshown_bodies(mut self, yes: bool) -> AuthzOptions {
        self.forward_unshown_bodies = yes;
        self
    }

    /// These options with another bound on reading a request body.
    pub fn with_body_timeout(mut self, timeout: impl Into<Option<Duration>>) -> AuthzOptions {
        self.body_timeout = timeout.into();
        self
    }
}

/// Who is asking, as the engine's authentication found out. Put it in the
/// request's extensions; without it the plugins see no user, as Docker's
/// plugins do for a client without a TLS certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthzIdentity {
    /// `User` (Docker: the first peer certificate's common name).
    pub user: String,
    /// `UserAuthNMethod` (Docker: `TLS`).
    pub authn_method: String,
    /// `RequestPeerCertificates`: the client's TLS chain.
    pub peer_certificates: Vec<PeerCertificate>,
}

impl AuthzIdentity {
    /// A user authenticated by `method` (Docker uses `TLS`), with its
    /// certificate chain.
    pub fn new(
        user: impl Into<String>,
        method: impl Into<String>,
        peer_certificates: Vec<PeerCertificate>,
    ) -> AuthzIdentity {
        AuthzIdentity {
            user: user.into(),
            authn_method: method.into(),
            peer_certificates,
        }
    }
}

/// An ordered chain of authorization plugins (Docker's authorization
/// `Middleware`). Cheap to clone: clones share the plugin list.
///
/// ```no_run
/// use plugin_registry::authz::AuthzChain;
/// use plugin_registry::{Policy, Registry, discovery::LocalRegistry};
///
/// # async fn demo(head: http::request::Parts, body: bytes::Bytes) -> Result<(), plugin_registry::authz::AuthzError> {
/// let registry = Registry::new(LocalRegistry::new(), Policy::default());
/// let chain = AuthzChain::new(registry, ["opa", "audit"]);
/// let mut exchange = chain.authorize_request(&head, Some(&body)).await?;
/// // ... run the handler ...
/// exchange
///     .authorize_response(http::StatusCode::OK, &http::HeaderMap::new(), Some(b"{}"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthzChain {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    options: AuthzOptions,
    plugins: Mutex<Arc<[String]>>,
}

impl AuthzChain {
    /// A chain of `names`, in order, resolved through `registry`, with the
    /// default [`AuthzOptions`].
    pub fn new<I, S>(registry: Registry, names: I) -> AuthzChain
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AuthzChain::with_options(registry, names, AuthzOptions::default())
    }

    /// A chain with other limits and bounds.
    pub fn with_options<I, S>(registry: Registry, names: I, options: AuthzOptions) -> AuthzChain
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AuthzChain {
            inner: Arc::new(Inner {
                registry,
                options,
                plugins: Mutex::new(dedup(names)),
            }),
        }
    }

    /// The limits and bounds in force.
    pub fn options(&self) -> &AuthzOptions {
        &self.inner.options
    }

    /// The plugin names, in order.
    pub fn plugins(&self) -> Vec<String> {
        self.snapshot().to_vec()
    }

    /// Docker's `SetPlugins`: replaces the chain (duplicates dropped, first
    /// kept). Exchanges in flight finish their request with the old list
    /// and ask the new one about their response, as in Docker.
    pub fn set_plugins<I, S>(&self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *self.lock() = dedup(names);
    }

    /// Docker's `RemovePlugin`: drops `name` from the chain.
    pub fn remove_plugin(&self, name: &str) {
        let mut plugins = self.lock();
        let kept: Vec<String> = plugins.iter().filter(|p| *p != name).cloned().collect();
        *plugins = kept.into();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<[String]>> {
        self.inner
            .plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Arc<[String]> {
        self.lock().clone()
    }

    /// Docker's `AuthZRequest`: asks every plugin, in order, whether the
    /// request may be handled. `body` is the whole body the handler will
    /// read, or `None` when the caller streams it unread, which is allowed
    /// only where the plugins are not shown it ([`shows_body`]).
    ///
    /// With no plugins in the chain, nothing is checked, as in Docker.
    pub async fn authorize_request(
        &self,
        head: &http::request::Parts,
        body: Option<&[u8]>,
    ) -> Result<Authorized, AuthzError> {
        let seen = Seen::from_option(body, self.inner.options.max_body_size);
        self.authorize_seen(head, body, seen).await
    }

    /// [`authorize_request`](Self::authorize_request) with the caller's
    /// knowledge of the body spelled out (the tower adapter holds only the
    /// first bytes of an oversized one); `framed` is the whole body, when
    /// there is one, to check against the headers.
    pub(crate) async fn authorize_seen(
        &self,
        head: &http::request::Parts,
        framed: Option<&[u8]>,
        seen: Seen<'_>,
    ) -> Result<Authorized, AuthzError> {
        let plugins = self.snapshot();
        if plugins.is_empty() {
            return Ok(Authorized {
                chain: None,
                request: Request::default(),
            });
        }
        let request_uri = rules::request_uri(head);
        let result = self
            .check_request(&plugins, head, &request_uri, framed, seen)
            .await;
        if let Err(e) = &result {
            tracing::error!(
                "AuthZRequest for {} {request_uri} returned error: {e}",
                head.method
            );
        }
        result
    }

    async fn check_request(
        &self,
        plugins: &[String],
        head: &http::request::Parts,
        request_uri: &str,
        framed: Option<&[u8]>,
        seen: Seen<'_>,
    ) -> Result<Authorized, AuthzError> {
        rules::check_framing(head.version, &head.headers, framed)?;
        let mut headers = flatten_headers(&head.headers, true);
        headers.remove(BODY_OMITTED_HEADER);
        let mut shown = Vec::new();
        if shows_body(request_uri, &head.headers) {
            let options = &self.inner.options;
            shown = shown_body(
                seen,
                Side::Request,
                options.max_body_size,
                options,
                &mut headers,
            )?;
        }
        let identity = head
            .extensions
            .get::<AuthzIdentity>()
            .cloned()
            .unwrap_or_default();
        let mut message = AuthZReq(Request {
            user: identity.user,
            user_authn_method: identity.authn_method,
            request_method: head.method.to_string(),
            request_uri: request_uri.to_owned(),
            request_body: shown,
            request_headers: headers,
            request_peer_certificates: identity.peer_certificates,
            ..Request::default()
        });
        for name in plugins {
            tracing::debug!("AuthZ request using plugin {name}");
            self.ask(name, &message).await?;
        }
        Ok(Authorized {
            chain: Some(self.clone()),
            request: std::mem::take(&mut message.0),
        })
    }

    /// The one place a plugin is called: resolve it (every time, so a
    /// plugin that comes back is found), call it within the bound, read the
    /// verdict. The call's part of the bound is the client's
    /// [`deadline`](plugin_client::CallRequest::deadline), which ends the
    /// client's retries itself, so the registry still learns of a plugin
    /// that died or moved (D11) and the next request looks it up again.
    async fn ask<C: Call<Reply = Response>>(
        &self,
        name: &str,
        message: &C,
    ) -> Result<(), AuthzError> {
        let start = tokio::time::Instant::now();
        let bound = self.inner.options.call_timeout;
        let late = |bound| format!("{}: no answer within {}", C::METHOD, go_duration(bound));
        let lookup = self.inner.registry.get(name, kinds::AUTHZ);
        // A lookup given up on is safe to drop: an activation under way
        // finishes on a task of its own.
        let plugin = match bound {
            Some(bound) => match tokio::time::timeout(bound, lookup).await {
                Ok(found) => found,
                Err(_) => return Err(AuthzError::plugin_failed(name, late(bound))),
            },
            None => lookup.await,
        };
        let plugin = plugin.map_err(|e| AuthzError::plugin_failed(name, e))?;
        let mut call = plugin.client().call(message);
        if let Some(bound) = bound {
            call = call.deadline(bound.saturating_sub(start.elapsed()));
        }
        let reply = call.await.map_err(|e| match bound {
            // The client's text names the time left after the lookup; the
            // chain's names its bound, and why the plugin was not reached.
            Some(bound) if e.is_deadline() => {
                let mut text = late(bound);
                if e.is_connect()
                    && let Some(last) = std::error::Error::source(&e)
                {
                    text = format!("{text}: {last}");
                }
                AuthzError::plugin_failed(name, text)
            }
            _ => AuthzError::plugin_failed(name, e),
        })?;
        if !reply.err.is_empty() {
            return Err(AuthzError::plugin_failed(name, &reply.err));
        }
        if !reply.allow {
            return Err(AuthzError::denied(name, &reply.msg));
        }
        Ok(())
    }
}

impl std::fmt::Debug for AuthzChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzChain")
            .field("plugins", &self.snapshot())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Side {
    Request,
    Response,
}

/// What the plugins are shown of a JSON body: all of it, or, with the
/// opt-in, nothing, and [`BODY_OMITTED_HEADER`] in `headers` says why.
fn shown_body(
    seen: Seen<'_>,
    side: Side,
    limit: usize,
    options: &AuthzOptions,
    headers: &mut BTreeMap<String, String>,
) -> Result<Vec<u8>, AuthzError> {
    let what = match side {
        Side::Request => "request",
        Side::Response => "response",
    };
    let omitted = match seen {
        Seen::Whole(body) => return Ok(body.to_vec()),
        _ if !options.forward_unshown_bodies => {
            return Err(match (seen, side) {
                (Seen::Unread, _) => AuthzErrorKind::BodyNotRead { what },
                (_, Side::Request) => AuthzErrorKind::BodyTooLarge { limit },
                (_, Side::Response) => AuthzErrorKind::ResponseTooLarge { limit },
            }
            .into());
        }
        Seen::TooLarge => format!("{what} body larger than {limit} bytes"),
        Seen::Unread => format!("{what} body not read"),
    };
    headers.insert(BODY_OMITTED_HEADER.to_owned(), omitted);
    Ok(Vec::new())
}

fn dedup<I, S>(names: I) -> Arc<[String]>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.into();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out.into()
}

/// A request every plugin allowed; ask them about its response with
/// [`authorize_response`](Self::authorize_response).
#[derive(Clone, Debug)]
pub struct Authorized {
    /// `None` when the chain was empty at request time: Docker then skips
    /// the response check too.
    chain: Option<AuthzChain>,
    request: Request,
}

impl Authorized {
    /// Whether the response will be put to the plugins (Docker skips it
    /// when the chain is empty).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    fn checks_response(&self) -> bool {
        self.chain
            .as_ref()
            .is_some_and(|c| !c.snapshot().is_empty())
    }
    /// What the plugins were shown (the `AuthZReq` body).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Docker's `AuthZResponse`: asks every plugin now in the chain, in
    /// order, whether the response may be sent. `body` is the whole
    /// response body, or `None` when it is streamed unread, allowed only
    /// where the plugins are not shown it ([`shows_body`] on the response's
    /// headers). The client must get nothing of the response unless this
    /// returns `Ok`.
    pub async fn authorize_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), AuthzError> {
        let limit = match &self.chain {
            Some(chain) => chain.inner.options.max_response_size,
            None => return Ok(()),
        };
        self.authorize_response_seen(status, headers, Seen::from_option(body, limit))
            .await
    }

    pub(crate) async fn authorize_response_seen(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        seen: Seen<'_>,
    ) -> Result<(), AuthzError> {
        let Some(chain) = self.chain.clone() else {
            return Ok(());
        };
        let plugins = chain.snapshot();
        if plugins.is_empty() {
            tracing::debug!("There are no authz plugins in the chain");
            return Ok(());
        }
        let result = self
            .check_response(&chain, &plugins, status, headers, seen)
            .await;
        if let Err(e) = &result {
            tracing::error!(
                "AuthZResponse for {} {} returned error: {e}",
                self.request.request_method,
                self.request.request_uri
            );
        }
        result
    }

    async fn check_response(
        &mut self,
        chain: &AuthzChain,
        plugins: &[String],
        status: StatusCode,
        headers: &HeaderMap,
        seen: Seen<'_>,
    ) -> Result<(), AuthzError> {
        let mut response_headers = flatten_headers(headers, false);
        response_headers.remove(BODY_OMITTED_HEADER);
        let mut response_body = Vec::new();
        if shows_body(&self.request.request_uri, headers) {
            let options = &chain.inner.options;
            let limit = options.max_response_size;
            response_body =
                shown_body(seen, Side::Response, limit, options, &mut response_headers)?;
        }
        let mut request = std::mem::take(&mut self.request);
        request.response_status_code = i64::from(status.as_u16());
        request.response_headers = response_headers;
        request.response_body = response_body;
        let message = AuthZRes(request);
        let mut result = Ok(());
        for name in plugins {
            tracing::debug!("AuthZ response using plugin {name}");
            result = chain.ask(name, &message).await;
            if result.is_err() {
                break;
            }
        }
        self.request = message.0;
        result
    }
}

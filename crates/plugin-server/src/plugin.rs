//! Registration: what a plugin implements and which handler answers each
//! `Subsystem.Method`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use plugin_proto::{ACTIVATE_METHOD, Call, Manifest};
use serde::de::DeserializeOwned;

use crate::{BuildError, PluginError, Reply};

/// A boxed, sendable future (the type-erased form of every handler).
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A type-erased handler: request body in, reply out.
pub(crate) type Handler = Arc<dyn Fn(Bytes) -> BoxFuture<Result<Reply, PluginError>> + Send + Sync>;

/// Decodes a request body the way the kit's typed handlers do.
///
/// - An empty (or all-whitespace) body is the default request. Docker sends
///   no body for some calls (`NetworkDriver.GetCapabilities`), and a
///   hand-written `curl -X POST` sends none either; go-plugins-helpers
///   answers those with `400 EOF`, the kit does not.
/// - Otherwise Go's `encoding/json` rules apply
///   ([`plugin_proto::decode_message`]): first value only,
///   case-insensitive keys, unknown keys ignored, `null` as the zero value.
///
/// A body that does not decode is a `400` whose `Err` says why.
pub fn decode_request<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, PluginError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    plugin_proto::decode_message(body).map_err(|e| {
        PluginError::with_status(StatusCode::BAD_REQUEST, format!("bad request body: {e}"))
    })
}

/// Collects handlers and the kinds to announce, then checks them
/// ([`PluginBuilder::build`]).
///
/// Registering a subsystem ([`volume`](PluginBuilder::volume),
/// [`network`](PluginBuilder::network), …) adds its kind to the manifest,
/// in registration order, and a handler for each of its methods.
#[must_use = "a builder does nothing until `build` is called"]
pub struct PluginBuilder {
    routes: Vec<(String, Handler)>,
    kinds: Vec<String>,
    errors: Vec<BuildError>,
}

impl Default for PluginBuilder {
    fn default() -> Self {
        PluginBuilder::new()
    }
}

impl fmt::Debug for PluginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginBuilder")
            .field(
                "methods",
                &self.routes.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl PluginBuilder {
    /// An empty builder: no kinds, no methods.
    pub fn new() -> PluginBuilder {
        PluginBuilder {
            routes: Vec::new(),
            kinds: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Adds `kind` to the activation manifest (once; later duplicates are
    /// ignored). Subsystem registrations do this themselves; use it for
    /// kinds served with [`raw`](PluginBuilder::raw) handlers, such as
    /// `GraphDriver`.
    pub fn implements(mut self, kind: impl Into<String>) -> PluginBuilder {
        let kind = kind.into();
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
        self
    }

    /// Registers a typed handler for the request type `C`, at
    /// [`C::METHOD`](Call::METHOD). The body is decoded with
    /// [`decode_request`]; the reply is encoded as go-plugins-helpers does.
    /// A reply whose `Err` field is set is still sent with status 200 (the
    /// 200-with-`Err` convention); return a [`PluginError`] for a 500.
    pub fn handle<C, F, Fut>(self, f: F) -> PluginBuilder
    where
        C: Call + DeserializeOwned + Default + Send + 'static,
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Reply, PluginError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(
            move |body: Bytes| -> BoxFuture<Result<Reply, PluginError>> {
                match decode_request::<C>(&body) {
                    Err(e) => Box::pin(std::future::ready(Err(e))),
                    Ok(req) => {
                        let fut = f(req);
                        Box::pin(async move { Reply::json(&fut.await?) })
                    }
                }
            },
        );
        self.insert(C::METHOD, handler)
    }

    /// Registers a raw handler for `method` (`Subsystem.Method`, with or
    /// without a leading `/`): it gets the request body as sent and returns
    /// the reply as is. The escape hatch for methods the kit does not type.
    ///
    /// An invalid method name, or one already registered, makes
    /// [`build`](PluginBuilder::build) fail.
    pub fn raw<F, Fut>(self, method: &str, f: F) -> PluginBuilder
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, PluginError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |body| Box::pin(f(body)));
        self.insert(method, handler)
    }

    fn insert(mut self, method: &str, handler: Handler) -> PluginBuilder {
        match plugin_proto::validate_method(method) {
            Err(e) => self.errors.push(BuildError::InvalidMethod(e.to_string())),
            Ok(m) if m == ACTIVATE_METHOD => self.errors.push(BuildError::ReservedMethod),
            Ok(m) if self.routes.iter().any(|(r, _)| r == m) => {
                self.errors.push(BuildError::DuplicateMethod(m.to_owned()));
            }
            Ok(m) => self.routes.push((m.to_owned(), handler)),
        }
        self
    }

    /// Checks the registrations and builds the plugin. The first problem
    /// found is returned.
    pub fn build(mut self) -> Result<Plugin, BuildError> {
        if !self.errors.is_empty() {
            return Err(self.errors.swap_remove(0));
        }
        let manifest = Manifest::new(self.kinds);
        let activate = plugin_proto::encode_args(Some(&manifest))
            .map_err(|e| BuildError::Manifest(e.to_string()))?;
        Ok(Plugin {
            routes: self.routes.into_iter().collect(),
            manifest,
            activate,
        })
    }
}

/// A plugin ready to serve: its manifest and a handler per method.
///
/// Cheap to share (`Arc` it); a [`Server`](crate::Server) serves it on any
/// number of listeners, and [`call`](Plugin::call) dispatches in-process.
pub struct Plugin {
    routes: HashMap<String, Handler>,
    manifest: Manifest,
    activate: Bytes,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<_> = self.routes.keys().collect();
        methods.sort();
        f.debug_struct("Plugin")
            .field("manifest", &self.manifest)
            .field("methods", &methods)
            .finish()
    }
}

impl Plugin {
    /// A builder.
    pub fn builder() -> PluginBuilder {
        PluginBuilder::new()
    }

    /// What `Plugin.Activate` answers: the registered kinds, in
    /// registration order.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The registered methods, sorted (`Plugin.Activate` not included).
    pub fn methods(&self) -> Vec<&str> {
        let mut m: Vec<&str> = self.routes.keys().map(String::as_str).collect();
        m.sort_unstable();
        m
    }

    /// Dispatches one call in-process, as the server does for
    /// `POST /<method>`: `Plugin.Activate` answers the manifest; an
    /// unknown method is a 404 error.
    pub async fn call(&self, method: &str, body: impl Into<Bytes>) -> Result<Reply, PluginError> {
        let method = method.strip_prefix('/').unwrap_or(method);
        match self.route(method) {
            Route::Activate(reply) => Ok(reply),
            Route::Handler(h) => h(body.into()).await,
            Route::NotFound => Err(PluginError::with_status(
                StatusCode::NOT_FOUND,
                "404 page not found",
            )),
        }
    }

    pub(crate) fn route(&self, method: &str) -> Route {
        if method == ACTIVATE_METHOD {
            return Route::Activate(Reply::bytes(self.activate.clone()));
        }
        match self.routes.get(method) {
            Some(h) => Route::Handler(h.clone()),
            None => Route::NotFound,
        }
    }
}

pub(crate) enum Route {
    Activate(Reply),
    Handler(Handler),
    NotFound,
}

/// Registers one typed handler per request type, each calling a method of
/// a shared driver: `routes!(builder, driver; Req => |d, r| body; …)`.
macro_rules! routes {
    ($builder:expr, $driver:expr; $($req:ty => |$d:ident, $r:pat_param| $body:expr;)*) => {{
        let driver = ::std::sync::Arc::new($driver);
        let builder = $builder;
        $(
            let builder = {
                let driver = driver.clone();
                builder.handle::<$req, _, _>(move |$r: $req| {
                    let $d = driver.clone();
                    async move { $body }
                })
            };
        )*
        let _ = driver;
        builder
    }};
}
pub(crate) use routes;

/// Maps a unit success to the `{}` reply of methods that answer only `Err`.
pub(crate) fn done(_: ()) -> plugin_proto::ErrResponse {
    plugin_proto::ErrResponse::default()
}

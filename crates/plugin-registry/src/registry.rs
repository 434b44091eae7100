//! The registry: resolve, activate once, cache, run handlers, list.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use plugin_client::retry::{self, Failed};
use plugin_client::{Client, ClientBuilder};
use plugin_discovery::{DirView, LocalRegistry, PluginSpec};
use plugin_proto::Manifest;
use tokio::sync::{broadcast, watch};

use crate::Plugin;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, Eviction};
use crate::handler::Handler;
use crate::listing::{ListState, Listing};
use crate::plugin::Handshake;
use crate::policy::{LookupWait, Policy};
use crate::telemetry;
use crate::watch::DirWatch;

/// Resolves plugins by name, activates each once, runs extension-point
/// handlers and lists plugins by kind.
///
/// Cheap to clone: clones share one cache. Every method needs a tokio
/// runtime. The caller that starts an activation drives it; if that caller
/// gives up (drops its future), the rest moves to a spawned task, so the
/// other waiters are never left hanging.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// Answers kept until inotify reports a change (never stale).
    local: DirView,
    policy: Policy,
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    /// Numbers the plugins stored, so an eviction hook removes its own
    /// plugin and never a newer one of the same name.
    next_id: AtomicU64,
}

/// How many events a subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 64;

#[derive(Default)]
struct State {
    plugins: HashMap<String, Slot>,
    handlers: Vec<Registered>,
    next_handler: u64,
    failures: HashMap<String, Failure>,
}

#[derive(Clone)]
struct Registered {
    id: u64,
    kind: String,
    handler: Arc<dyn Handler>,
}

#[derive(Clone)]
struct Failure {
    // The negative cache's expiry is a deadline: tokio's clock, so that it
    // follows a paused test clock like every other timeout here.
    at: tokio::time::Instant,
    state: ListState,
    error: Error,
}

/// A stored plugin and the progress of its activation.
#[derive(Clone)]
struct Slot {
    id: u64,
    plugin: Arc<Plugin>,
    progress: watch::Receiver<Progress>,
}

#[derive(Clone)]
enum Progress {
    Handshaking,
    /// The manifest is in; handlers are running.
    Handshaken,
    Done(Result<(), Error>),
}

/// How a load was started: `get` may wait for the name to appear; a listing
/// never waits and may skip retrying refused sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Get,
    List,
}

tokio::task_local! {
    /// Set while a task runs extension-point handlers, so that a handler
    /// calling back into the registry is not made to wait for itself.
    static IN_HANDLERS: ();
}

impl Registry {
    /// A registry over `local`'s directories with `policy`.
    pub fn new(local: LocalRegistry, policy: Policy) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                local: DirView::new(local),
                policy,
                state: Mutex::new(State::default()),
                events: broadcast::channel(EVENT_BACKLOG).0,
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// The registry's [`Event`]s from now on: activations, and evictions
    /// with their reason (a plugin that could no longer be reached, or
    /// [`Registry::evict`]). Events are not stored for late subscribers;
    /// a subscriber more than 64 events behind misses the oldest.
    ///
    /// ```no_run
    /// # async fn f(registry: plugin_registry::Registry) {
    /// use plugin_registry::{Event, Eviction};
    ///
    /// let mut events = registry.subscribe();
    /// while let Ok(event) = events.recv().await {
    ///     if let Event::Evicted { name, reason: Eviction::Unreachable { error } } = event {
    ///         tracing::warn!("plugin {name} is gone: {error}");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The discovery layer this registry resolves names with.
    pub fn local(&self) -> &LocalRegistry {
        self.inner.local.local()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Docker's `Get(name, kind)` (checklist 29–33): resolves `name`,
    /// activates it once (concurrent callers share one handshake), runs due
    /// handlers, and checks that it implements `kind`.
    pub async fn get(&self, name: &str, kind: &str) -> Result<Arc<Plugin>, Error> {
        if name.is_empty() {
            return Err(ErrorKind::EmptyName.into());
        }
        let plugin = self.load(name, Mode::Get).await?;
        if plugin.implements(kind) {
            tracing::debug!("{name} implements: {kind}");
            Ok(plugin)
        } else {
            Err(ErrorKind::NotImplemented {
                name: name.to_owned(),
                kind: kind.to_owned(),
            }
            .into())
        }
    }

    /// Every plugin that implements `kind` (checklist 35, divergences D9 and
    /// D10): each name once, in scan order. Per-plugin failures are logged
    /// and skipped; only a scan error fails the listing.
    pub async fn get_all(&self, kind: &str) -> Result<Vec<Arc<Plugin>>, Error> {
        let listings = self.list(kind).await?;
        Ok(listings
            .into_iter()
            .filter(|l| l.state == ListState::Ok)
            .filter_map(|l| l.plugin)
            .filter(|p| p.implements(kind))
            .collect())
    }

    /// What [`Registry::get_all`] saw for every discovered name, for
    /// operators: ok (with the plugin and latency), skipped (its `.json`
    /// spec declares other kinds), refused, missing, timeout or error.
    pub async fn list(&self, kind: &str) -> Result<Vec<Listing>, Error> {
        let start = Instant::now();
        let names = self.inner.local.scan()?;
        let mut seen = HashSet::new();
        let unique: Vec<String> = names
            .into_iter()
            .filter(|n| seen.insert(n.clone()))
            .collect();
        let listings = join_all(unique.into_iter().map(|name| self.list_one(name, kind))).await;
        telemetry::record_listing(kind, start.elapsed());
        Ok(listings)
    }

    async fn list_one(&self, name: String, kind: &str) -> Listing {
        let start = Instant::now();
        let policy = &self.inner.policy;
        let stored = self.lock().plugins.get(&name).cloned();
        if stored.is_none()
            && let Some(f) = self.cached_failure(&name)
        {
            return Listing::failed(name, f.state, f.error, Duration::ZERO, true);
        }
        let load = async {
            match stored {
                Some(slot) => self.wait(slot).await,
                None => {
                    let spec = self.inner.local.plugin(&name)?;
                    if policy.trust_declared_implements
                        && let Some(declared) = spec.implements()
                        && !declared.iter().any(|k| k == kind)
                    {
                        return Ok(None);
                    }
                    self.insert_or_join(spec, Mode::List).await
                }
            }
            .map(Some)
        };
        let result = match policy.list_timeout {
            Some(limit) => match tokio::time::timeout(limit, load).await {
                Ok(r) => r,
                Err(_) => Err(ErrorKind::ListTimeout {
                    name: name.clone(),
                    after: limit,
                }
                .into()),
            },
            None => load.await,
        };
        let latency = start.elapsed();
        match result {
            Ok(Some(plugin)) => {
                self.lock().failures.remove(&name);
                Listing::ok(name, plugin, latency)
            }
            Ok(None) => Listing::skipped(name, latency),
            Err(error) => {
                // Docker logs each failure with its plain text (checklist 37).
                tracing::error!("{error}");
                let state = ListState::of(&error);
                if !policy.negative_ttl.is_zero() {
                    let failure = Failure {
                        at: tokio::time::Instant::now(),
                        state,
                        error: error.clone(),
                    };
                    self.lock().failures.insert(name.clone(), failure);
                }
                Listing::failed(name, state, error, latency, false)
            }
        }
    }

    fn cached_failure(&self, name: &str) -> Option<Failure> {
        let ttl = self.inner.policy.negative_ttl;
        let mut state = self.lock();
        match state.failures.get(name) {
            Some(f) if f.at.elapsed() < ttl => Some(f.clone()),
            Some(_) => {
                state.failures.remove(name);
                None
            }
            None => None,
        }
    }

    /// Registers `handler` for plugins implementing `kind` and runs it, before
    /// returning, for every plugin already activated that implements it.
    /// Plugins activated later run it during their activation. Each handler
    /// runs exactly once per plugin (checklist 34, divergence D12).
    pub async fn handle(&self, kind: &str, handler: impl Handler) {
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let (id, due) = {
            let mut state = self.lock();
            let id = state.next_handler;
            state.next_handler += 1;
            state.handlers.push(Registered {
                id,
                kind: kind.to_owned(),
                handler: handler.clone(),
            });
            let due: Vec<Arc<Plugin>> = state
                .plugins
                .values()
                .filter(|s| s.plugin.implements(kind))
                .map(|s| s.plugin.clone())
                .collect();
            (id, due)
        };
        for plugin in due {
            if plugin.claim_handler(id) {
                IN_HANDLERS.scope((), handler.run(plugin)).await;
            }
        }
    }

    /// The plugins stored right now (activated or activating).
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        let mut all: Vec<_> = self
            .lock()
            .plugins
            .values()
            .map(|s| s.plugin.clone())
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Forgets `name`, so the next `get` resolves and activates it again.
    /// Returns whether it was stored; if it was activated, subscribers get
    /// [`Event::Evicted`] with [`Eviction::Requested`].
    pub fn evict(&self, name: &str) -> bool {
        let removed = self.lock().plugins.remove(name);
        if let Some(slot) = &removed
            && slot.plugin.manifest().is_some()
        {
            telemetry::record_eviction(name, &Eviction::Requested);
            let _ = self.inner.events.send(Event::Evicted {
                name: name.to_owned(),
                reason: Eviction::Requested,
            });
        }
        removed.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn load(&self, name: &str, mode: Mode) -> Result<Arc<Plugin>, Error> {
        let stored = self.lock().plugins.get(name).cloned();
        if let Some(slot) = stored {
            return self.wait(slot).await;
        }
        let spec = self.resolve(name).await?;
        self.insert_or_join(spec, mode).await
    }

    /// Resolves `name` under the lookup policy (divergence D8).
    async fn resolve(&self, name: &str) -> Result<PluginSpec, Error> {
        let local = &self.inner.local;
        match self.inner.policy.lookup {
            LookupWait::FailFast => Ok(local.plugin(name)?),
            LookupWait::Docker(policy) => {
                let found = retry::run(policy, || async {
                    // Docker retries on any error, not only not-found.
                    local.plugin(name).map_err(|error| Failed::Locate {
                        error,
                        name: name.to_owned(),
                    })
                })
                .await;
                Ok(found?)
            }
            LookupWait::Watch(limit) => {
                let deadline = tokio::time::Instant::now() + limit;
                let mut watch = DirWatch::new(local.local());
                loop {
                    match local.plugin(name) {
                        Ok(spec) => return Ok(spec),
                        // An invalid name never becomes valid; anything else
                        // (a spec being written, say) may still change.
                        Err(e) if e.is_invalid_name() => return Err(e.into()),
                        Err(e) => {
                            if !watch.changed_before(deadline).await {
                                return Err(e.into());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stores a freshly resolved plugin and activates it, or joins the
    /// activation of the one another caller stored first (Docker drops the
    /// fresh object the same way).
    async fn insert_or_join(&self, spec: PluginSpec, mode: Mode) -> Result<Arc<Plugin>, Error> {
        let stored = self.lock().plugins.get(spec.name()).cloned();
        if let Some(slot) = stored {
            return self.wait(slot).await;
        }
        // The client is made outside the lock: it reads TLS files. A spec
        // whose client cannot be made fails here and is never stored.
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let builder = self.client_builder(spec.name(), id);
        let plugin = Arc::new(Plugin::from_spec(spec, &builder)?);
        let (slot, lead) = {
            let mut state = self.lock();
            if let Some(existing) = state.plugins.get(plugin.name()) {
                (existing.clone(), None)
            } else {
                let (tx, rx) = watch::channel(Progress::Handshaking);
                let slot = Slot {
                    id,
                    plugin: plugin.clone(),
                    progress: rx,
                };
                state.plugins.insert(plugin.name().to_owned(), slot.clone());
                (slot, Some((plugin, tx)))
            }
        };
        if let Some((plugin, tx)) = lead {
            // The caller that stored the plugin drives its activation
            // itself (no spawn, no cross-thread wake-up on the fast path);
            // if it stops waiting, `Driven` hands the rest to a task.
            Driven(Some(Box::pin(self.clone().activate(plugin, tx, mode)))).await;
        }
        self.wait(slot).await
    }

    async fn wait(&self, slot: Slot) -> Result<Arc<Plugin>, Error> {
        let in_handlers = IN_HANDLERS.try_with(|_| ()).is_ok();
        let mut progress = slot.progress;
        let outcome = progress
            .wait_for(|p| match p {
                Progress::Handshaking => false,
                Progress::Handshaken => in_handlers,
                Progress::Done(_) => true,
            })
            .await
            .map(|p| p.clone());
        match outcome {
            Ok(Progress::Done(Err(e))) => Err(e),
            Ok(_) => Ok(slot.plugin),
            Err(_) => Err(ErrorKind::Abandoned(slot.plugin.name().to_owned()).into()),
        }
    }

    /// The activation task: client, handshake, handlers. A failure removes
    /// the plugin so the next `get` starts over (checklist 30).
    async fn activate(self, plugin: Arc<Plugin>, tx: watch::Sender<Progress>, mode: Mode) {
        // If this task dies (a handler panics, the runtime shuts down), the
        // plugin must not stay stored with an activation nobody finishes.
        let guard = Unfinished {
            registry: &self,
            plugin: &plugin,
            tx: &tx,
        };
        match self.handshake(&plugin, mode).await {
            Ok(manifest) => {
                plugin.set_manifest(manifest);
                tx.send_replace(Progress::Handshaken);
                IN_HANDLERS.scope((), self.run_due_handlers(&plugin)).await;
                tx.send_replace(Progress::Done(Ok(())));
                let _ = self.inner.events.send(Event::Activated {
                    name: plugin.name().to_owned(),
                });
            }
            Err(e) => {
                self.remove_if_same(&plugin);
                tx.send_replace(Progress::Done(Err(e)));
            }
        }
        std::mem::forget(guard);
    }

    async fn handshake(&self, plugin: &Plugin, mode: Mode) -> Result<Manifest, Error> {
        let policy = &self.inner.policy;
        let handshake = Handshake {
            timeout: policy.handshake_timeout,
            retry_refused: mode == Mode::Get || policy.list_retries_refused,
        };
        let builder = Client::builder().retry(policy.retry);
        plugin.handshake(builder, &handshake).await
    }

    /// The builder of the client of plugin `name`, to be stored as `id`:
    /// the policy's retries and per-attempt call timeout and, unless the
    /// policy keeps dead plugins, the hooks that evict it when it died or
    /// moved (divergence D11).
    fn client_builder(&self, name: &str, id: u64) -> ClientBuilder {
        let policy = &self.inner.policy;
        let builder = Client::builder()
            .retry(policy.retry)
            .timeout(policy.call_timeout);
        if !policy.evict_dead {
            return builder;
        }
        let dead = Arc::downgrade(&self.inner);
        let moved = dead.clone();
        let (dead_name, moved_name) = (name.to_owned(), name.to_owned());
        builder
            .on_connect_failure(Arc::new(move |error: &plugin_client::Error| {
                let reason = Eviction::Unreachable {
                    error: error.to_string(),
                };
                evict(&dead, &dead_name, id, reason);
            }))
            .on_timeout(Arc::new(move |error: &plugin_client::Error| {
                evict_if_moved(&moved, &moved_name, id, error);
            }))
    }

    async fn run_due_handlers(&self, plugin: &Arc<Plugin>) {
        let Some(manifest) = plugin.manifest() else {
            return;
        };
        let handlers = self.lock().handlers.clone();
        // Docker's order: by the plugin's Implements, then registration.
        for kind in &manifest.implements {
            for h in handlers.iter().filter(|h| &h.kind == kind) {
                if plugin.claim_handler(h.id) {
                    h.handler.run(plugin.clone()).await;
                }
            }
        }
    }

    fn remove_if_same(&self, plugin: &Arc<Plugin>) {
        remove_if_same(&mut self.lock(), plugin);
    }
}

/// Clears up after an activation task that ended without a result.
struct Unfinished<'a> {
    registry: &'a Registry,
    plugin: &'a Arc<Plugin>,
    tx: &'a watch::Sender<Progress>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        self.registry.remove_if_same(self.plugin);
        let abandoned = ErrorKind::Abandoned(self.plugin.name().to_owned());
        self.tx.send_replace(Progress::Done(Err(abandoned.into())));
    }
}

fn remove_if_same(state: &mut State, plugin: &Arc<Plugin>) {
    let same = state
        .plugins
        .get(plugin.name())
        .is_some_and(|s| Arc::ptr_eq(&s.plugin, plugin));
    if same {
        state.plugins.remove(plugin.name());
    }
}

/// Divergence D11: a plugin whose calls could not connect after their
/// retries is forgotten, so the next `get` finds it again wherever it now
/// lives. Only the activated plugin stored as `id` is evicted: a call
/// failing on an older client of the same name leaves a newer one alone.
fn evict(registry: &Weak<Inner>, name: &str, id: u64, reason: Eviction) {
    let Some(inner) = registry.upgrade() else {
        return;
    };
    let evicted = {
        let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ours = state
            .plugins
            .get(name)
            .is_some_and(|s| s.id == id && s.plugin.manifest().is_some());
        ours && state.plugins.remove(name).is_some()
    };
    if evicted {
        tracing::warn!(
            plugin = name,
            "evicting plugin that can no longer be reached"
        );
        telemetry::record_eviction(name, &reason);
        let _ = inner.events.send(Event::Evicted {
            name: name.to_owned(),
            reason,
        });
    }
}

/// Divergence D11, for a call that timed out: a plugin wedged at an
/// address its files no longer name (it was restarted elsewhere, or is
/// gone) is forgotten like a dead one. A plugin that is merely slow, at the
/// address its files still name, is kept.
fn evict_if_moved(registry: &Weak<Inner>, name: &str, id: u64, error: &plugin_client::Error) {
    let Some(inner) = registry.upgrade() else {
        return;
    };
    let cached = {
        let state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.plugins.get(name) {
            Some(s) if s.id == id => s.plugin.clone(),
            _ => return,
        }
    };
    // Read outside the lock: discovery reads the plugin directories.
    let moved = inner
        .local
        .plugin(name)
        .map_or(true, |found| found.address() != cached.address());
    if moved {
        let reason = Eviction::Moved {
            error: error.to_string(),
        };
        evict(registry, name, id, reason);
    }
}

/// An activation polled by the caller that started it, which saves a task
/// spawn and a cross-thread wake-up on the common path. Dropped before it
/// finishes (the caller gave up), it spawns what is left so the callers that
/// joined it still get an answer. A panic inside it (a handler's) is
/// contained as a spawned task's would be: the activation's guard reports
/// it abandoned, and the caller gets that error instead of the panic.
struct Driven(Option<BoxFuture>);

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Future for Driven {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(fut) = self.0.as_mut() {
            let polled = panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            if let Ok(Poll::Pending) = polled {
                return Poll::Pending;
            }
            // Finished, or panicked: dropping it runs the activation's guard.
            self.0 = None;
        }
        Poll::Ready(())
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        if let Some(rest) = self.0.take() {
            // Without a runtime (it is shutting down) the rest is dropped,
            // and the activation's guard reports it abandoned.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(rest);
            }
        }
    }
}

//! A v1 plugin and its activation handshake (checklist 36).
//!
//! A [`Plugin`] is created with its client, from a spec (by the registry)
//! or from an address ([`Plugin::connect`]), so whoever holds one can call
//! it; the handshake then fills in its manifest.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use plugin_client::{Client, ClientBuilder, IntoAddress};
use plugin_discovery::{PluginSpec, Source};
use plugin_proto::{ACTIVATE_METHOD, Address, Manifest, PROTOCOL_SCHEME, TlsOptions};

use crate::error::Error;
use crate::policy::Policy;

/// A v1 plugin: its name, where it lives, its client and, once activated,
/// its manifest. The registry hands out `Arc<Plugin>`; the same object is
/// shared by every caller until the plugin is evicted.
#[derive(Debug)]
pub struct Plugin {
    name: String,
    address: Address,
    tls: Option<TlsOptions>,
    source: Option<Source>,
    declared: Option<Vec<String>>,
    client: Client,
    manifest: OnceLock<Manifest>,
    handlers_run: Mutex<HashSet<u64>>,
}

/// How one handshake is made.
pub(crate) struct Handshake {
    /// Bound on each attempt.
    pub(crate) timeout: Option<Duration>,
    /// Whether a refused connection or a missing socket is retried.
    pub(crate) retry_refused: bool,
}

impl Plugin {
    /// The seed's `NewLocalPlugin` made usable: the plugin at `address`,
    /// activated (`POST /Plugin.Activate`, retried on Docker's schedule,
    /// each attempt bounded by [`Policy::default`]'s handshake timeout),
    /// without discovery and outside any registry. TLS is Docker's
    /// `NewLocalPlugin` default: `https://` addresses are not verified.
    ///
    /// The address is a string to parse or an `Address`; one that does not
    /// parse fails as a client error ([`is_config`]).
    ///
    /// [`is_config`]: plugin_client::Error::is_config
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), plugin_registry::Error> {
    /// use plugin_registry::{Plugin, VolumeDriver};
    ///
    /// let plugin = Plugin::connect("memvol", "unix:///run/my-engine/memvol.sock").await?;
    /// assert!(plugin.implements("VolumeDriver"));
    /// let volumes = VolumeDriver::new(&plugin)?.list().await?;
    /// # let _ = volumes;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        name: impl Into<String>,
        address: impl IntoAddress,
    ) -> Result<Arc<Plugin>, Error> {
        let policy = Policy::default();
        let builder = Client::builder().retry(policy.retry);
        let tls = Some(TlsOptions::insecure());
        let plugin = Plugin::build(name.into(), address, tls, None, None, &builder)?;
        let handshake = Handshake {
            timeout: policy.handshake_timeout,
            retry_refused: true,
        };
        let manifest = plugin.handshake(builder, &handshake).await?;
        plugin.set_manifest(manifest);
        Ok(Arc::new(plugin))
    }

    /// The plugin `spec` describes, its client made by `builder`. Fails,
    /// before anything is dialled, on what makes a client impossible (TLS
    /// files that do not load, an address that cannot be dialled).
    pub(crate) fn from_spec(spec: PluginSpec, builder: &ClientBuilder) -> Result<Plugin, Error> {
        Plugin::build(
            spec.name().to_owned(),
            spec.address().clone(),
            spec.tls().cloned(),
            Some(spec.source().clone()),
            spec.implements().map(<[String]>::to_vec),
            builder,
        )
    }

    fn build(
        name: String,
        address: impl IntoAddress,
        tls: Option<TlsOptions>,
        source: Option<Source>,
        declared: Option<Vec<String>>,
        builder: &ClientBuilder,
    ) -> Result<Plugin, Error> {
        let client = builder.clone().build(address, tls.as_ref())?;
        Ok(Plugin {
            name,
            address: client.address().clone(),
            tls,
            source,
            declared,
            client,
            manifest: OnceLock::new(),
            handlers_run: Mutex::new(HashSet::new()),
        })
    }

    /// `POST /Plugin.Activate` and its manifest. The handshake goes over a
    /// connection of its own, closed once the reply is read (a client with
    /// a pool of 0, from `builder`): an activated plugin that is not called
    /// holds no socket and no connection buffers.
    pub(crate) async fn handshake(
        &self,
        builder: ClientBuilder,
        handshake: &Handshake,
    ) -> Result<Manifest, Error> {
        let client = builder
            .pool_max_idle(0)
            .build(self.address.clone(), self.tls.as_ref())?;
        let mut call = client
            .call(ACTIVATE_METHOD)
            .retry_connection_refused(handshake.retry_refused);
        if let Some(t) = handshake.timeout {
            call = call.timeout(t);
        }
        let reply = call.await?;
        Ok(Manifest::decode(&reply)?)
    }

    /// The name the plugin was found under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address (Docker's `Plugin.Addr`).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Its TLS options (Docker's `Plugin.TLSConfig`).
    pub fn tls_options(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The file it was discovered from; `None` for [`Plugin::connect`].
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// The kinds its `.json` spec declared, if any (an extension).
    pub fn declared_implements(&self) -> Option<&[String]> {
        self.declared.as_deref()
    }

    /// The activation reply; `None` until activated.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.get()
    }

    /// Whether the activated plugin implements `kind` (exact and
    /// case-sensitive; checklist 33). `false` before activation.
    pub fn implements(&self, kind: &str) -> bool {
        self.manifest().is_some_and(|m| m.implements(kind))
    }

    /// Its client (checklist 36), ready to call: every `Plugin` is created
    /// with one.
    ///
    /// ```no_run
    /// # async fn f(plugin: &plugin_registry::Plugin) -> Result<(), plugin_registry::client::Error> {
    /// use plugin_registry::proto::volume::ListRequest;
    ///
    /// let volumes = plugin.client().call(&ListRequest {}).await?;
    /// # let _ = volumes;
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `moby.plugins.http/v1` (checklist 36).
    pub fn protocol(&self) -> &'static str {
        PROTOCOL_SCHEME
    }

    /// Always `true`: this registry holds v1 plugins (checklist 36).
    pub fn is_v1(&self) -> bool {
        true
    }

    /// v1 plugins run on the host, so paths are not rewritten (checklist 36).
    pub fn scoped_path<'a>(&self, path: &'a Path) -> &'a Path {
        path
    }

    /// Like [`Plugin::scoped_path`] for owned paths.
    pub fn scoped_path_buf(&self, path: PathBuf) -> PathBuf {
        path
    }

    pub(crate) fn set_manifest(&self, manifest: Manifest) {
        let _ = self.manifest.set(manifest);
    }

    /// Marks handler `id` as run for this plugin; `true` the first time only,
    /// which is what makes each handler run exactly once per plugin.
    pub(crate) fn claim_handler(&self, id: u64) -> bool {
        self.handlers_run
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }
}

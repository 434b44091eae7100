//! An activated (or activating) v1 plugin (checklist 36).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use plugin_client::Client;
use plugin_discovery::{PluginSpec, Source};
use plugin_proto::{Address, Manifest, PROTOCOL_SCHEME, TlsOptions};

/// A v1 plugin: its name, where it lives, and, once activated, its client
/// and manifest. The registry hands out `Arc<Plugin>`; the same object is
/// shared by every caller until the plugin is evicted.
#[derive(Debug)]
pub struct Plugin {
    name: String,
    address: Address,
    tls: Option<TlsOptions>,
    source: Option<Source>,
    declared: Option<Vec<String>>,
    client: OnceLock<Client>,
    manifest: OnceLock<Manifest>,
    handlers_run: Mutex<HashSet<u64>>,
}

impl Plugin {
    /// The seed's `NewLocalPlugin`: a plugin at `address` with Docker's TLS
    /// default (`InsecureSkipVerify`), for engines that know where a plugin
    /// lives without discovery.
    pub fn new_local(name: impl Into<String>, address: Address) -> Plugin {
        Plugin::build(
            name.into(),
            address,
            Some(TlsOptions::insecure()),
            None,
            None,
        )
    }

    pub(crate) fn from_spec(spec: PluginSpec) -> Plugin {
        Plugin::build(
            spec.name().to_owned(),
            spec.address().clone(),
            spec.tls().cloned(),
            Some(spec.source().clone()),
            spec.implements().map(<[String]>::to_vec),
        )
    }

    fn build(
        name: String,
        address: Address,
        tls: Option<TlsOptions>,
        source: Option<Source>,
        declared: Option<Vec<String>>,
    ) -> Plugin {
        Plugin {
            name,
            address,
            tls,
            source,
            declared,
            client: OnceLock::new(),
            manifest: OnceLock::new(),
            handlers_run: Mutex::new(HashSet::new()),
        }
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

    /// The file it was discovered from; `None` for [`Plugin::new_local`].
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

    /// Its client; `None` until activation (checklist 36).
    pub fn client(&self) -> Option<&Client> {
        self.client.get()
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

    pub(crate) fn set_client(&self, client: Client) -> &Client {
        self.client.get_or_init(|| client)
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

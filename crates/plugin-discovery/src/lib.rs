//! Docker-exact v1 plugin discovery: which plugins a host has, and where a
//! plugin name leads.
//!
//! **Engines should depend on `plugin-registry`**, which resolves,
//! activates and caches plugins and re-exports this crate as
//! `plugin_registry::discovery`. Use this crate alone for tools that only
//! inspect plugin directories.
//!
//! Docker finds v1 plugins in two places (spec §1): unix sockets in
//! `/run/docker/plugins`, and `.spec` or `.json` files in
//! `/etc/docker/plugins` then `/usr/lib/docker/plugins` (other directories
//! when rootless or on Windows, see [`specs_paths`]). This crate reproduces
//! Docker's rules byte for byte where a user can observe them:
//!
//! - [`LocalRegistry::scan`] lists names with Docker's order, its
//!   duplicates, and its quirks (socket `d.bar` lists as `d`; a directory
//!   `y.json/` lists as `y`; `m/{m.abc,m.json}` lists nothing);
//! - [`LocalRegistry::plugin`] resolves one name: sockets first, then each
//!   spec directory's `.spec`, `<name>/.spec`, `.json`, `<name>/.json`; the
//!   first candidate that exists wins and its error is final;
//! - [`LocalRegistry::explain`] shows every candidate and what was found
//!   there, for operators' tools;
//! - [`DirView`] gives the same answers as `scan` and `plugin`, kept in
//!   memory until inotify reports a change in the directories (one system
//!   call per call while nothing changes, never a stale answer).
//!
//! Where Docker has a known problem, this crate diverges, and each change is
//! in the project's divergence table: plugin names that would escape the
//! directories are rejected ([`DiscoveryError::is_invalid_name`]); a spec
//! candidate that is not a regular file is refused without being opened (a
//! FIFO cannot block discovery); spec files over [`MAX_SPEC_SIZE`] are
//! refused; addresses Docker would misread are rejected when the spec is
//! read (`plugin-proto`'s rules); the rootless config directory is the
//! intended one.
//!
//! **What it must never do:** open a connection (a socket is found by its
//! file type alone; whether anything listens is the client's business),
//! give an answer older than the last change to the directories
//! ([`LocalRegistry`] reads the file system on every call, as Docker's
//! does; [`DirView`] keeps answers only while inotify vouches for them),
//! or do any IO other than synchronous `std` file-system reads and
//! inotify.
//!
//! ```no_run
//! use plugin_discovery::LocalRegistry;
//!
//! let registry = LocalRegistry::new();
//! for name in registry.scan()? {
//!     match registry.plugin(&name) {
//!         Ok(spec) => tracing::info!("{name}: {}", spec.address()),
//!         Err(e) => tracing::warn!("{e}"),
//!     }
//! }
//! # Ok::<(), plugin_discovery::DiscoveryError>(())
//! ```

#![forbid(unsafe_code)]

mod dirs;
mod error;
mod explain;
mod gopath;
mod name;
mod scan;
mod view;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use plugin_proto::{Address, SpecContent, TlsOptions, parse_json_spec, parse_spec};

pub use dirs::{specs_paths, specs_paths_from};
pub use error::{DiscoveryError, DiscoveryErrorKind, FileKind};
pub use explain::{Candidate, Explanation, Finding};
/// The default directories, defined once in `plugin-proto` for both sides.
pub use plugin_proto::{DEFAULT_SOCKET_DIR, DEFAULT_SPEC_DIRS};
pub use view::DirView;

use error::Repr;

/// The largest spec file read, in bytes (64 KiB). Docker reads any size;
/// a real spec is a few hundred bytes, and a runaway file must not be
/// loaded into the engine's memory (divergence).
pub const MAX_SPEC_SIZE: u64 = 64 * 1024;

/// Docker's `LocalRegistry`: a socket directory and spec directories, in
/// priority order.
///
/// It holds only the directory names; nothing is cached, so each
/// [`scan`](Self::scan) and [`plugin`](Self::plugin) reads the file system
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRegistry {
    socket_dir: PathBuf,
    spec_dirs: Vec<PathBuf>,
    /// `None`: detect from `/proc/self/uid_map` when it matters.
    user_namespace: Option<bool>,
}

impl Default for LocalRegistry {
    fn default() -> Self {
        LocalRegistry::new()
    }
}

impl LocalRegistry {
    /// Docker's `NewLocalRegistry()`: the socket directory
    /// [`DEFAULT_SOCKET_DIR`] and the spec directories [`specs_paths`] gives
    /// for the environment as it is now (checklist 1–3).
    pub fn new() -> LocalRegistry {
        LocalRegistry::with_dirs(DEFAULT_SOCKET_DIR, specs_paths())
    }

    /// A registry over other directories (tests, `plugctl --socket-dir`,
    /// engines with their own layout). Spec directories are searched in the
    /// order given. Directories should be absolute: a socket found under a
    /// relative directory has a relative `unix://` address, as in Docker.
    pub fn with_dirs(
        socket_dir: impl Into<PathBuf>,
        spec_dirs: impl IntoIterator<Item = impl Into<PathBuf>>,
    ) -> LocalRegistry {
        LocalRegistry {
            socket_dir: socket_dir.into(),
            spec_dirs: spec_dirs.into_iter().map(Into::into).collect(),
            user_namespace: None,
        }
    }

    /// Overrides user-namespace detection, which decides whether
    /// [`scan`](Self::scan) skips a spec directory it may not read
    /// (checklist 8). By default it is detected like Go's
    /// `userns.RunningInUserNS()`, only when such an error happens.
    pub fn with_user_namespace(mut self, in_user_namespace: bool) -> LocalRegistry {
        self.user_namespace = Some(in_user_namespace);
        self
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The spec directories, in priority order.
    pub fn spec_dirs(&self) -> &[PathBuf] {
        &self.spec_dirs
    }

    pub(crate) fn in_user_namespace(&self) -> bool {
        self.user_namespace.unwrap_or_else(dirs::running_in_user_ns)
    }

    /// Resolves one plugin name, as Docker's `LocalRegistry.Plugin` does
    /// (spec §1.3; checklist 9–11, 14):
    ///
    /// 1. `<sockets>/<name>.sock`, then `<sockets>/<name>/<name>.sock`: the
    ///    first that is a socket (following symlinks) gives the address
    ///    `unix://<path>` with [`TlsOptions::insecure`].
    /// 2. For each spec directory: `<name>.spec`, `<name>/<name>.spec`,
    ///    `<name>.json`, `<name>/<name>.json`. The first that exists
    ///    (following symlinks; a dangling symlink does not exist) is read,
    ///    and any error reading or parsing it is returned: there is no fall
    ///    through to later candidates.
    /// 3. Otherwise the error is Docker's `could not find plugin <name> in
    ///    v1 plugin registry: plugin not found`
    ///    ([`is_not_found`](DiscoveryError::is_not_found)).
    ///
    /// Divergences: the name is checked first
    /// ([`is_invalid_name`](DiscoveryError::is_invalid_name)); a winning spec
    /// candidate that is not a regular file, or is over [`MAX_SPEC_SIZE`],
    /// is an error without being read; addresses are validated by
    /// `plugin-proto`.
    pub fn plugin(&self, name: &str) -> Result<PluginSpec, DiscoveryError> {
        name::validate(name)?;
        for (path, kind) in self.candidates(name) {
            if kind == SourceKind::Socket {
                if is_socket_path(&path) {
                    tracing::trace!("plugin {name}: socket {}", path.display());
                    return Ok(PluginSpec::socket(name, path));
                }
            } else if let Ok(metadata) = fs::metadata(&path) {
                tracing::trace!("plugin {name}: spec {}", path.display());
                return read_spec(name, path, kind, &metadata);
            }
        }
        Err(DiscoveryError::not_found(name))
    }

    /// Every path [`plugin`](Self::plugin) may try for `name`, in Docker's
    /// order. The name must be valid.
    pub(crate) fn candidates<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (PathBuf, SourceKind)> + 'a {
        let sockets = plugin_paths(&self.socket_dir, name, ".sock")
            .into_iter()
            .map(|p| (p, SourceKind::Socket));
        let specs = self.spec_dirs.iter().flat_map(move |dir| {
            let spec = plugin_paths(dir, name, ".spec").map(|p| (p, SourceKind::Spec));
            let json = plugin_paths(dir, name, ".json").map(|p| (p, SourceKind::Json));
            spec.into_iter().chain(json)
        });
        sockets.chain(specs)
    }
}

/// Docker's `pluginPaths`: `<base>/<name><ext>` and
/// `<base>/<name>/<name><ext>`, joined and cleaned like `filepath.Join`.
fn plugin_paths(base: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    let file = OsString::from(format!("{name}{ext}"));
    [
        gopath::join(base, &[&file]),
        gopath::join(base, &[OsStr::new(name), &file]),
    ]
}

/// `os.Stat(p)` succeeds and the mode has `ModeSocket`.
fn is_socket_path(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| FileKind::of(m.file_type()) == FileKind::Socket)
}

/// Reads and parses the winning spec candidate. `metadata` comes from
/// following symlinks, so a symlink to a FIFO is seen as a FIFO and never
/// opened.
fn read_spec(
    name: &str,
    path: PathBuf,
    kind: SourceKind,
    metadata: &fs::Metadata,
) -> Result<PluginSpec, DiscoveryError> {
    if !metadata.is_file() {
        return Err(Repr::NotRegularFile {
            kind: FileKind::of(metadata.file_type()),
            path,
        }
        .into());
    }
    if metadata.len() > MAX_SPEC_SIZE {
        return Err(Repr::TooLarge {
            path,
            limit: MAX_SPEC_SIZE,
        }
        .into());
    }
    let bytes = read_bounded(&path)?;
    let parsed: Result<SpecContent, _> = match kind {
        SourceKind::Json => parse_json_spec(&bytes),
        _ => parse_spec(&bytes),
    };
    match parsed {
        Ok(content) => Ok(PluginSpec {
            name: name.to_owned(),
            address: content.address,
            tls: content.tls,
            implements: content.implements,
            source: Source { kind, path },
        }),
        Err(source) => Err(Repr::Spec { path, source }.into()),
    }
}

/// Reads at most [`MAX_SPEC_SIZE`] + 1 bytes, checking the opened file's
/// type again: the file may have been swapped since it was examined, and
/// its size may have grown (metadata alone is not trusted).
fn read_bounded(path: &Path) -> Result<Vec<u8>, Repr> {
    let read_err = |op, source| Repr::Read {
        op,
        path: path.to_path_buf(),
        source,
    };
    let file = open_without_blocking(path).map_err(|e| read_err("open", e))?;
    let metadata = file.metadata().map_err(|e| read_err("stat", e))?;
    if !metadata.is_file() {
        return Err(Repr::NotRegularFile {
            path: path.to_path_buf(),
            kind: FileKind::of(metadata.file_type()),
        });
    }
    let capacity = metadata.len().min(MAX_SPEC_SIZE) as usize + 1;
    let mut bytes = Vec::with_capacity(capacity);
    (&file)
        .take(MAX_SPEC_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err("read", e))?;
    if bytes.len() as u64 > MAX_SPEC_SIZE {
        return Err(Repr::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_SPEC_SIZE,
        });
    }
    Ok(bytes)
}

/// Opens for reading with `O_NONBLOCK` where its value is known without
/// libc, so that a file swapped for a FIFO after it was examined still
/// cannot block the open. `O_NONBLOCK` does nothing to regular files.
fn open_without_blocking(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            target_arch = "riscv64",
            target_arch = "powerpc64",
            target_arch = "s390x",
            target_arch = "loongarch64"
        )
    ))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // asm-generic O_NONBLOCK.
        options.custom_flags(0o4000);
    }
    #[cfg(target_vendor = "apple")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(0x0004);
    }
    options.open(path)
}

/// A resolved plugin: what Docker's `Plugin` holds after discovery, plus
/// where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    name: String,
    address: Address,
    tls: Option<TlsOptions>,
    source: Source,
    implements: Option<Vec<String>>,
}

impl PluginSpec {
    fn socket(name: &str, path: PathBuf) -> PluginSpec {
        PluginSpec {
            name: name.to_owned(),
            // Docker: NewLocalPlugin(name, "unix://"+p) (checklist 11).
            address: Address::unix(&path),
            tls: Some(TlsOptions::insecure()),
            source: Source {
                kind: SourceKind::Socket,
                path,
            },
            implements: None,
        }
    }

    /// The name it was resolved by (never the `Name` of a `.json` file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address; its text is Docker's `Plugin.Addr`.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// TLS options: [`TlsOptions::insecure`] for sockets and `.spec` files
    /// (Docker's `NewLocalPlugin` default), a `.json` file's own options,
    /// or `None` for a `.json` file without `TLSConfig`.
    pub fn tls(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The socket or file the plugin was found at.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Extension: the subsystems a `.json` spec declares in `Implements`,
    /// if it does (Docker ignores that field and always asks the plugin).
    pub fn implements(&self) -> Option<&[String]> {
        self.implements.as_deref()
    }
}

/// Where a plugin was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    kind: SourceKind,
    path: PathBuf,
}

impl Source {
    /// Socket, `.spec` or `.json`.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The socket or spec file's path, as Docker joined it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The three kinds of v1 plugin definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// A unix socket in the socket directory.
    Socket,
    /// A `.spec` file holding an address.
    Spec,
    /// A `.json` file holding an address and TLS options.
    Json,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Socket => "socket",
            SourceKind::Spec => "spec",
            SourceKind::Json => "json",
        })
    }
}

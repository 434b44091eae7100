//! Temporary plugin directory trees: a socket directory and two spec
//! directories under a short directory in `/tmp`, never the host's
//! `/run/docker/plugins` or `/etc/docker/plugins`.
//!
//! ```
//! use plugin_tests::tree::PluginTree;
//!
//! let tree = PluginTree::new();
//! let _listener = tree.live_socket("run/echo.sock"); // keep it alive
//! tree.write_spec(0, "web", "tcp://127.0.0.1:8080");
//! let registry = tree.registry();
//! assert_eq!(registry.scan().unwrap(), ["echo", "web"]);
//! ```
//!
//! Paths given to the helpers are relative to [`PluginTree::root`], so a
//! socket in the socket directory is `"run/x.sock"` and a spec in the
//! second spec directory is `"lib/x.spec"`. Parent directories are created
//! as needed. Paths stay short: unix socket paths are limited to 108
//! bytes.

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use plugin_discovery::LocalRegistry;

/// The socket directory, relative to the root.
pub const RUN: &str = "run";
/// The first (highest priority) spec directory, relative to the root.
pub const ETC: &str = "etc";
/// The second spec directory, relative to the root.
pub const LIB: &str = "lib";

/// A fresh directory `/tmp/<prefix>XXXXXX`, removed when dropped: short,
/// because unix socket paths are limited to 108 bytes (a `TMPDIR` may be
/// long). Every test that binds sockets makes its directories here.
pub fn short_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create a temporary directory in /tmp")
}

/// A temporary tree `<root>/{run,etc,lib}`, removed when dropped.
#[derive(Debug)]
pub struct PluginTree {
    root: tempfile::TempDir,
}

impl Default for PluginTree {
    fn default() -> Self {
        PluginTree::new()
    }
}

impl PluginTree {
    /// Creates the tree with its three directories.
    pub fn new() -> PluginTree {
        let root = short_tempdir("pt");
        let tree = PluginTree { root };
        for dir in [RUN, ETC, LIB] {
            tree.mkdir(dir);
        }
        tree
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `<root>/<rel>`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root().join(rel)
    }

    /// The socket directory, `<root>/run`.
    pub fn socket_dir(&self) -> PathBuf {
        self.path(RUN)
    }

    /// Spec directory `i`: 0 is `<root>/etc`, 1 is `<root>/lib`.
    pub fn spec_dir(&self, i: usize) -> PathBuf {
        self.path([ETC, LIB][i])
    }

    /// A registry over the socket directory and both spec directories.
    pub fn registry(&self) -> LocalRegistry {
        LocalRegistry::with_dirs(self.socket_dir(), [self.spec_dir(0), self.spec_dir(1)])
    }

    /// Writes a file, creating its parent directories; returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        self.parent(&path);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes `<spec dir i>/<name>.spec` (`name` may be `k/k`).
    pub fn write_spec(&self, dir: usize, name: &str, text: &str) -> PathBuf {
        self.write(self.spec_dir(dir).join(format!("{name}.spec")), text)
    }

    /// Writes `<spec dir i>/<name>.json` (`name` may be `k/k`).
    pub fn write_json(&self, dir: usize, name: &str, text: &str) -> PathBuf {
        self.write(self.spec_dir(dir).join(format!("{name}.json")), text)
    }

    /// Creates a directory and its parents; returns its path.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Creates a symlink at `rel` pointing to `target` (used as given, so
    /// it may be relative to the link's directory); returns the link's path.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.path(rel);
        self.parent(&path);
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        path
    }

    /// Creates a named pipe (FIFO) at `rel`; returns its path.
    pub fn fifo(&self, rel: impl AsRef<Path>) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let path = self.path(rel);
        self.parent(&path);
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
        // SAFETY: `c_path` is a valid NUL-terminated string for the call.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
        assert_eq!(
            rc,
            0,
            "mkfifo {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        path
    }

    /// Binds a unix socket at `rel` that accepts connections for as long as
    /// the caller keeps the listener (for tokio:
    /// `set_nonblocking(true)` then `tokio::net::UnixListener::from_std`).
    pub fn live_socket(&self, rel: impl AsRef<Path>) -> UnixListener {
        let path = self.path(rel);
        self.parent(&path);
        UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()))
    }

    /// Leaves a socket file at `rel` that nothing listens on: connecting
    /// to it is refused, as with a plugin that died without cleaning up.
    pub fn stale_socket(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.path(rel);
        drop(self.live_socket(&path));
        path
    }

    fn parent(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
    }
}

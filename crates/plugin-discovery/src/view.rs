//! [`DirView`]: [`LocalRegistry`]'s answers kept in memory for as long as
//! inotify vouches that the directories have not changed.
//!
//! Why it is never stale: the kernel queues an inotify event inside the
//! very system call that creates, removes, renames, writes or re-moderates
//! a file, before that call returns. Every [`DirView::scan`] and
//! [`DirView::plugin`] first drains the queue (one non-blocking `read`), so
//! a change that completed before the call began is always seen, and any
//! event at all drops everything kept. Watches are added before anything
//! is read: the directories themselves when the view starts (or the
//! nearest existing parent of a missing one), a plugin's own subdirectory
//! (`<dir>/<name>/`) at its first lookup, every subdirectory at the first
//! scan. What inotify cannot vouch for is never kept: an answer that
//! involved a symbolic link (whose target may live anywhere) or a
//! directory that could not be watched is read from the disk again at
//! every call, as [`LocalRegistry`] does. Without inotify (another OS, or
//! `inotify_init` failing) the view always reads through.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::{DiscoveryError, LocalRegistry, PluginSpec};

/// Lookups kept at most; past it the map starts again (a caller asking for
/// endless distinct missing names must not grow the engine's memory).
const MAX_KEPT_LOOKUPS: usize = 4096;

/// [`LocalRegistry`] with its answers kept until the directories change.
///
/// The same answers as [`LocalRegistry::scan`] and
/// [`LocalRegistry::plugin`], at the cost of one system call per call
/// while nothing changes. Found plugins and not-found answers are kept;
/// other errors are not.
///
/// ```no_run
/// use plugin_discovery::{DirView, LocalRegistry};
///
/// let view = DirView::new(LocalRegistry::new());
/// let names = view.scan()?; // reads the directories, starts watching
/// let again = view.scan()?; // from memory, unless something changed
/// assert_eq!(names, again);
/// # Ok::<(), plugin_discovery::DiscoveryError>(())
/// ```
#[derive(Debug)]
pub struct DirView {
    local: LocalRegistry,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `None` before the first call, and for good once inotify failed.
    watch: Option<watch::Watch>,
    /// inotify failed: read through from now on.
    unwatchable: bool,
    /// The directories (or the parents of missing ones) are watched.
    roots: bool,
    scan: Option<Vec<String>>,
    plugins: HashMap<String, Option<PluginSpec>>,
}

impl DirView {
    /// A view of `local`'s directories. Nothing is read or watched until
    /// the first call.
    pub fn new(local: LocalRegistry) -> DirView {
        DirView {
            local,
            state: Mutex::new(State::default()),
        }
    }

    /// The directories this view reads.
    pub fn local(&self) -> &LocalRegistry {
        &self.local
    }

    /// [`LocalRegistry::scan`], from memory when nothing changed since the
    /// last scan.
    pub fn scan(&self) -> Result<Vec<String>, DiscoveryError> {
        let mut state = self.fresh();
        if let Some(names) = &state.scan {
            return Ok(names.clone());
        }
        let covered = state.roots
            && state
                .watch
                .as_mut()
                .is_some_and(|w| w.cover_scan(&self.local));
        let names = self.local.scan()?;
        if covered {
            state.scan = Some(names.clone());
        }
        Ok(names)
    }

    /// [`LocalRegistry::plugin`], from memory when nothing changed since
    /// `name` was last looked up.
    pub fn plugin(&self, name: &str) -> Result<PluginSpec, DiscoveryError> {
        let mut state = self.fresh();
        if let Some(kept) = state.plugins.get(name) {
            return kept.clone().ok_or_else(|| DiscoveryError::not_found(name));
        }
        let covered = state.roots
            && crate::name::validate(name).is_ok()
            && state
                .watch
                .as_mut()
                .is_some_and(|w| w.cover_name(&self.local, name));
        let result = self.local.plugin(name);
        let keep = match &result {
            _ if !covered => None,
            Ok(spec) => Some(Some(spec.clone())),
            Err(e) if e.is_not_found() => Some(None),
            Err(_) => None,
        };
        if let Some(kept) = keep {
            if state.plugins.len() >= MAX_KEPT_LOOKUPS {
                state.plugins.clear();
            }
            state.plugins.insert(name.to_owned(), kept);
        }
        result
    }

    /// Whether the directories are watched, so answers that involve no
    /// symbolic link are kept. For diagnostics.
    pub fn is_watching(&self) -> bool {
        self.fresh().roots
    }

    /// The state with every change that happened so far accounted for.
    fn fresh(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.unwatchable {
            return state;
        }
        let changed = match &mut state.watch {
            None => true,
            Some(w) => w.drain().unwrap_or(true),
        };
        if changed {
            state.scan = None;
            state.plugins.clear();
            // Watches first, then any reading: a change after this point
            // is queued and seen by the next call.
            match watch::Watch::establish(&self.local) {
                Ok((w, roots)) => {
                    state.watch = Some(w);
                    state.roots = roots;
                }
                Err(e) => {
                    tracing::debug!(
                        "cannot watch plugin directories, reading them every time: {e}"
                    );
                    state.watch = None;
                    state.roots = false;
                    state.unwatchable = true;
                }
            }
        }
        state
    }
}

#[cfg(target_os = "linux")]
mod watch {
    use std::fs;
    use std::io;
    use std::path::Path;

    use inotify::{Inotify, WatchMask};

    use crate::{LocalRegistry, SourceKind};

    // What changes what a scan or lookup sees. Opening and reading (our own
    // scans) are left out, or the view would invalidate itself. Events on
    // a directory's entries (MODIFY, CLOSE_WRITE, ATTRIB) make the kernel
    // flag every cached child (`fsnotify_set_children_dentry_flags`), a
    // walk of 11,000 entries on a large spec directory; so the directories
    // are watched for entries coming and going only, a kept spec file for
    // its content and mode, and each directory's own mode through its
    // parent.

    /// The socket and spec directories: entries created, removed, renamed;
    /// the directory itself removed or renamed.
    fn dir_mask() -> WatchMask {
        WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::MASK_ADD
    }

    /// A directory's parent (its entries are the directories: few), and a
    /// plugin's own subdirectory (small): everything.
    fn full_mask() -> WatchMask {
        dir_mask() | WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::ATTRIB
    }

    /// A kept spec file: its content and mode.
    fn file_mask() -> WatchMask {
        WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::ATTRIB | WatchMask::MASK_ADD
    }

    #[derive(Debug)]
    pub(super) struct Watch {
        inotify: Inotify,
        buf: Vec<u8>,
    }

    impl Watch {
        /// A fresh inotify instance watching the directories. `Err` only
        /// when inotify itself is unavailable; the flag says whether every
        /// directory (or the nearest parent of a missing one) is watched.
        pub(super) fn establish(local: &LocalRegistry) -> io::Result<(Watch, bool)> {
            let mut w = Watch {
                inotify: Inotify::init()?,
                buf: vec![0; 4096],
            };
            let mut all = true;
            for root in roots(local) {
                all &= w.watch_root(root);
            }
            Ok((w, all))
        }

        fn add(&mut self, path: &Path, mask: WatchMask) -> bool {
            self.inotify.watches().add(path, mask).is_ok()
        }

        fn watch_root(&mut self, root: &Path) -> bool {
            if is_symlink(root) {
                return false;
            }
            // The nearest existing parent: the directory's own mode, its
            // replacement, or a missing directory appearing.
            let parent = root.ancestors().skip(1).find(|a| a.is_dir());
            if !parent.is_some_and(|a| self.add(a, full_mask())) {
                return false;
            }
            match self.inotify.watches().add(root, dir_mask()) {
                Ok(_) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            }
        }

        /// Before a lookup of `name`: watches its subdirectories
        /// (`<dir>/<name>/`); `false` if one cannot be watched or a
        /// candidate path is a symbolic link.
        pub(super) fn cover_name(&mut self, local: &LocalRegistry, name: &str) -> bool {
            for root in roots(local) {
                let sub = root.join(name);
                let covered = match fs::symlink_metadata(&sub) {
                    Ok(m) if m.is_dir() => self.add(&sub, full_mask()),
                    Ok(m) => !m.file_type().is_symlink(),
                    Err(_) => true,
                };
                if !covered {
                    return false;
                }
            }
            // A spec file that may be read is watched for its content.
            local
                .candidates(name)
                .all(|(path, kind)| match fs::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() => false,
                    Ok(m) if m.is_file() && kind != SourceKind::Socket => {
                        self.add(&path, file_mask())
                    }
                    _ => true,
                })
        }

        /// Before a scan: watches every subdirectory; `false` if one
        /// cannot be read or watched, or a socket a scan would follow
        /// (`<sockets>/<d>/<d>.sock`) is a symbolic link. (The scan itself
        /// never follows any other link: it goes by `readdir` types and,
        /// in spec subdirectories, by names.)
        pub(super) fn cover_scan(&mut self, local: &LocalRegistry) -> bool {
            for root in roots(local) {
                let entries = match fs::read_dir(root) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(_) => return false,
                };
                for entry in entries {
                    let Ok(entry) = entry else { return false };
                    if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let sub = entry.path();
                    if !self.add(&sub, full_mask()) {
                        return false;
                    }
                    if root == local.socket_dir() {
                        let mut file = entry.file_name();
                        file.push(".sock");
                        if is_symlink(&sub.join(file)) {
                            return false;
                        }
                    }
                }
            }
            true
        }

        /// Reads every queued event; `true` if there was any.
        pub(super) fn drain(&mut self) -> io::Result<bool> {
            let mut changed = false;
            loop {
                match self.inotify.read_events(&mut self.buf) {
                    Ok(mut events) => changed |= events.next().is_some(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(changed),
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn roots(local: &LocalRegistry) -> impl Iterator<Item = &Path> {
        std::iter::once(local.socket_dir()).chain(local.spec_dirs().iter().map(|p| &**p))
    }

    fn is_symlink(path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    }
}

#[cfg(not(target_os = "linux"))]
mod watch {
    use std::io;

    use crate::LocalRegistry;

    /// No inotify: the view reads through.
    #[derive(Debug)]
    pub(super) struct Watch;

    impl Watch {
        pub(super) fn establish(_: &LocalRegistry) -> io::Result<(Watch, bool)> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub(super) fn drain(&mut self) -> io::Result<bool> {
            Ok(true)
        }

        pub(super) fn cover_name(&mut self, _: &LocalRegistry, _: &str) -> bool {
            false
        }

        pub(super) fn cover_scan(&mut self, _: &LocalRegistry) -> bool {
            false
        }
    }
}

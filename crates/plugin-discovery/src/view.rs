//! [`DirView`]: [`LocalRegistry`]'s answers kept in memory for as long as
//! inotify vouches that the directories have not changed.
//!
//! Why it is never stale: the kernel queues an inotify event inside the
//! very system call that creates, removes, renames, writes or re-moderates
//! a file, before that call returns. Every [`DirView::scan`] and
//! [`DirView::plugin`] first drains the queue (one non-blocking `read`), so
//! a change that completed before the call began is always seen, and any
//! event at all drops everything kept. What inotify cannot vouch for is
//! never kept: if a directory could not be watched, or a symbolic link
//! (whose target may live anywhere) sits where a lookup or scan would
//! follow it, calls read the disk as [`LocalRegistry`] does, until the
//! next change lets the view try again. Without inotify (another OS, or
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
    /// The watches cover everything the answers depend on.
    trusted: bool,
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
        if !state.trusted {
            return self.local.scan();
        }
        if let Some(names) = &state.scan {
            return Ok(names.clone());
        }
        let names = self.local.scan()?;
        state.scan = Some(names.clone());
        Ok(names)
    }

    /// [`LocalRegistry::plugin`], from memory when nothing changed since
    /// `name` was last looked up.
    pub fn plugin(&self, name: &str) -> Result<PluginSpec, DiscoveryError> {
        let mut state = self.fresh();
        if !state.trusted {
            return self.local.plugin(name);
        }
        if let Some(kept) = state.plugins.get(name) {
            return kept.clone().ok_or_else(|| DiscoveryError::not_found(name));
        }
        let result = self.local.plugin(name);
        let keep = match &result {
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

    /// Whether answers are currently kept (the directories are watched and
    /// nothing inotify cannot see is involved). For diagnostics.
    pub fn is_watching(&self) -> bool {
        self.fresh().trusted
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
                Ok((w, trusted)) => {
                    state.watch = Some(w);
                    state.trusted = trusted;
                }
                Err(e) => {
                    tracing::debug!(
                        "cannot watch plugin directories, reading them every time: {e}"
                    );
                    state.watch = None;
                    state.trusted = false;
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

    use crate::LocalRegistry;

    /// Everything that changes what a scan or lookup sees. Opening and
    /// reading (our own scans) are left out, or the view would invalidate
    /// itself.
    fn mask() -> WatchMask {
        WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::MODIFY
            | WatchMask::CLOSE_WRITE
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
    }

    #[derive(Debug)]
    pub(super) struct Watch {
        inotify: Inotify,
        buf: Vec<u8>,
    }

    impl Watch {
        /// A fresh inotify instance watching the directories and their
        /// subdirectories (lookups and scans go one level down). `Err`
        /// only when inotify itself is unavailable; the flag says whether
        /// the watches cover everything.
        pub(super) fn establish(local: &LocalRegistry) -> io::Result<(Watch, bool)> {
            let mut w = Watch {
                inotify: Inotify::init()?,
                buf: vec![0; 4096],
            };
            let mut trusted = true;
            let roots =
                std::iter::once(local.socket_dir()).chain(local.spec_dirs().iter().map(|p| &**p));
            for root in roots {
                trusted &= w.watch_root(root);
            }
            Ok((w, trusted))
        }

        fn add(&mut self, dir: &Path) -> io::Result<()> {
            self.inotify.watches().add(dir, mask()).map(drop)
        }

        /// Watches `root` and its subdirectories; `false` when something
        /// cannot be covered.
        fn watch_root(&mut self, root: &Path) -> bool {
            if fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink()) {
                return false;
            }
            match self.add(root) {
                Ok(()) => {}
                // A missing directory may appear: watch the nearest
                // existing ancestor for it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return root
                        .ancestors()
                        .skip(1)
                        .find(|a| a.is_dir())
                        .is_some_and(|a| self.add(a).is_ok());
                }
                Err(_) => return false,
            }
            let Ok(entries) = fs::read_dir(root) else {
                return false;
            };
            for entry in entries {
                let Ok(entry) = entry else { return false };
                match entry.file_type() {
                    Ok(t) if t.is_symlink() => return false,
                    Ok(t) if t.is_dir() => {
                        let sub = entry.path();
                        if self.add(&sub).is_err() || !no_symlinks_in(&sub) {
                            return false;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return false,
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

    fn no_symlinks_in(dir: &Path) -> bool {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .into_iter()
                .all(|e| e.and_then(|e| e.file_type()).is_ok_and(|t| !t.is_symlink()))
        })
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
    }
}

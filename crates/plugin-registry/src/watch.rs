//! Waiting for a plugin to appear: file-system notifications on the socket
//! and spec directories, with polling as the fallback (divergence D8).

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use plugin_discovery::LocalRegistry;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Polling interval when every directory is watched (a safety net only).
const SAFETY_POLL: Duration = Duration::from_millis(250);
/// Polling interval when some directory could not be watched (missing, or
/// no inotify).
const FALLBACK_POLL: Duration = Duration::from_millis(25);

pub(crate) struct DirWatch {
    // Kept alive for its callback; dropping it stops the watch.
    _watcher: Option<notify::RecommendedWatcher>,
    changed: Arc<Notify>,
    poll: Duration,
}

impl DirWatch {
    pub(crate) fn new(local: &LocalRegistry) -> DirWatch {
        let changed = Arc::new(Notify::new());
        let signal = changed.clone();
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            // notify_one keeps a permit when nobody waits, so no event is lost
            // between two lookups.
            signal.notify_one();
        });
        let mut all_watched = true;
        let watcher = match watcher {
            Ok(mut w) => {
                let dirs = std::iter::once(local.socket_dir())
                    .chain(local.spec_dirs().iter().map(|p| p.as_path()));
                for dir in dirs {
                    if w.watch(dir, RecursiveMode::Recursive).is_err() {
                        all_watched = false;
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::debug!("cannot watch plugin directories, polling instead: {e}");
                all_watched = false;
                None
            }
        };
        let poll = if all_watched {
            SAFETY_POLL
        } else {
            FALLBACK_POLL
        };
        DirWatch {
            _watcher: watcher,
            changed,
            poll,
        }
    }

    /// Waits until something in the directories may have changed, or the
    /// polling interval passes; `false` once `deadline` has passed.
    pub(crate) async fn changed_before(&mut self, deadline: Instant) -> bool {
        if Instant::now() >= deadline {
            return false;
        }
        let tick = (Instant::now() + self.poll).min(deadline);
        tokio::select! {
            () = self.changed.notified() => {}
            () = tokio::time::sleep_until(tick) => {}
        }
        // One more lookup follows even when the deadline woke us, so a
        // plugin that appeared at the last moment is still found.
        true
    }
}
